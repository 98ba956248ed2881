//! The system call table, as data: number, name, handler and how complete it is.
//! `rvbox syscalls` prints it. A number with no handler returns `-ENOSYS`, logged once when
//! `RVBOX_LOG` is set.

use std::sync::OnceLock;

use super::errno::*;
use super::{
    sigdeliver as sig, sys_file as f, sys_misc as m, sys_mm as mm, sys_net as net,
    sys_pipe as pipe, sys_poll as poll, sys_proc as proc, sys_task as task, sys_xattr as x,
    Process,
};

pub type SysResult = Result<u64, Errno>;
pub type Handler = fn(&mut Process, &[u64; 6]) -> SysResult;

/// How much of a system call is implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Full,
    /// Implemented, with the limits the note says.
    Partial(&'static str),
    /// Returns `-ENOSYS`.
    No,
}

pub struct Syscall {
    pub nr: u32,
    pub name: &'static str,
    pub handler: Option<Handler>,
    pub support: Support,
}

macro_rules! table {
    ($( $nr:literal $name:ident => $handler:expr, $support:expr; )*) => {
        /// Every system call rvbox knows by name, by number.
        pub static TABLE: &[Syscall] = &[
            $( Syscall { nr: $nr, name: stringify!($name), handler: $handler, support: $support }, )*
        ];
    };
}

use Support::*;

/// What becomes of a call that would wait for another process or thread.
const SOCK: &str = "AF_UNIX only; no control messages (SCM_RIGHTS, SCM_CREDENTIALS: EOPNOTSUPP)";
const XATTR: &str = "no file has extended attributes: get ENODATA, list empty, set EOPNOTSUPP";
const POLL: &str =
    "pipes, sockets, eventfds, timerfds report real readiness, host stdin the host's; files \
    are always ready";
const SCHED: &str = "one CPU: policies and priorities are recorded, they change nothing";

table! {
    5 setxattr => Some(x::setxattr), Partial(XATTR);
    6 lsetxattr => Some(x::lsetxattr), Partial(XATTR);
    7 fsetxattr => Some(x::fsetxattr), Partial(XATTR);
    8 getxattr => Some(x::getxattr), Partial(XATTR);
    9 lgetxattr => Some(x::lgetxattr), Partial(XATTR);
    10 fgetxattr => Some(x::fgetxattr), Partial(XATTR);
    11 listxattr => Some(x::listxattr), Partial(XATTR);
    12 llistxattr => Some(x::llistxattr), Partial(XATTR);
    13 flistxattr => Some(x::flistxattr), Partial(XATTR);
    14 removexattr => Some(x::removexattr), Partial(XATTR);
    15 lremovexattr => Some(x::lremovexattr), Partial(XATTR);
    16 fremovexattr => Some(x::fremovexattr), Partial(XATTR);
    17 getcwd => Some(f::getcwd), Full;
    19 eventfd2 => Some(pipe::eventfd2), Full;
    20 epoll_create1 => Some(poll::epoll_create1), Full;
    21 epoll_ctl => Some(poll::epoll_ctl), Full;
    22 epoll_pwait => Some(poll::epoll_pwait), Partial(POLL);
    23 dup => Some(f::dup), Full;
    24 dup3 => Some(f::dup3), Full;
    25 fcntl => Some(f::fcntl), Partial("F_DUPFD*, F_GETFD/SETFD, F_GETFL/SETFL, F_GETPIPE_SZ/SETPIPE_SZ, F_ADD_SEALS/GET_SEALS; record locks are granted at once, not enforced between processes yet");
    26 inotify_init1 => None, No;
    29 ioctl => Some(f::ioctl), Partial("terminal (with RVBOX_TTY=1, Linux's N_TTY in tty.rs): TCGETS/TCSETS*, TCGETS2/TCSETS2*, TIOCGWINSZ/TIOCSWINSZ, TIOCGPGRP/TIOCSPGRP, TIOCSCTTY, TIOCNOTTY, TIOCGSID, TCFLSH, TCXONC, TCSBRK, TIOCSTI, TIOCOUTQ, TIOC[GS]ETD, TIOC[NG]EXCL; without it only TCGETS/TCSETS* (kept, not applied), TIOCGWINSZ, TIOCGPGRP; FIONREAD, FIONBIO, FIOCLEX/FIONCLEX, SIOCOUTQ");
    32 flock => Some(f::flock), Partial("granted at once, not enforced between processes yet");
    33 mknodat => Some(f::mknodat), Partial("fifos and regular files only");
    34 mkdirat => Some(f::mkdirat), Full;
    35 unlinkat => Some(f::unlinkat), Full;
    36 symlinkat => Some(f::symlinkat), Full;
    37 linkat => Some(f::linkat), Full;
    38 renameat => Some(f::renameat), Full;
    39 umount2 => None, No;
    40 mount => None, No;
    43 statfs => Some(f::statfs), Full;
    44 fstatfs => Some(f::fstatfs), Full;
    45 truncate => Some(f::truncate), Full;
    46 ftruncate => Some(f::ftruncate), Full;
    47 fallocate => Some(f::fallocate), Partial("mode 0 and FALLOC_FL_KEEP_SIZE");
    48 faccessat => Some(f::faccessat), Full;
    49 chdir => Some(f::chdir), Full;
    50 fchdir => Some(f::fchdir), Full;
    51 chroot => None, No;
    52 fchmod => Some(f::fchmod), Full;
    53 fchmodat => Some(f::fchmodat), Full;
    54 fchownat => Some(f::fchownat), Full;
    55 fchown => Some(f::fchown), Full;
    56 openat => Some(f::openat), Full;
    57 close => Some(f::close), Full;
    59 pipe2 => Some(pipe::pipe2), Partial("a blocking write of more than PIPE_BUF that only partly fits returns the part written (Linux would wait to write the rest)");
    61 getdents64 => Some(f::getdents64), Full;
    62 lseek => Some(f::lseek), Full;
    63 read => Some(f::read), Full;
    64 write => Some(f::write), Full;
    65 readv => Some(f::readv), Full;
    66 writev => Some(f::writev), Full;
    67 pread64 => Some(f::pread64), Full;
    68 pwrite64 => Some(f::pwrite64), Full;
    69 preadv => Some(f::preadv), Full;
    70 pwritev => Some(f::pwritev), Full;
    71 sendfile => Some(f::sendfile), Full;
    72 pselect6 => Some(poll::pselect6), Partial(POLL);
    73 ppoll => Some(poll::ppoll), Partial(POLL);
    78 readlinkat => Some(f::readlinkat), Full;
    79 newfstatat => Some(f::newfstatat), Full;
    80 fstat => Some(f::fstat), Full;
    81 sync => Some(f::sync), Full;
    82 fsync => Some(f::fsync), Full;
    83 fdatasync => Some(f::fsync), Full;
    85 timerfd_create => Some(pipe::timerfd_create), Full;
    86 timerfd_settime => Some(pipe::timerfd_settime), Full;
    87 timerfd_gettime => Some(pipe::timerfd_gettime), Full;
    88 utimensat => Some(f::utimensat), Full;
    92 personality => Some(task::personality), Partial("recorded; the flags change nothing");
    93 exit => Some(proc::exit), Full;
    94 exit_group => Some(proc::exit_group), Full;
    95 waitid => Some(proc::waitid), Partial("P_ALL, P_PID, P_PGID (no P_PIDFD)");
    96 set_tid_address => Some(proc::set_tid_address), Full;
    98 futex => Some(proc::futex), Full;
    99 set_robust_list => Some(proc::set_robust_list), Full;
    100 get_robust_list => Some(proc::get_robust_list), Partial("the caller's only");
    101 nanosleep => Some(proc::nanosleep), Full;
    107 timer_create => Some(proc::timer_create), Partial("CLOCK_REALTIME/MONOTONIC/BOOTTIME; SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEV_NONE");
    108 timer_gettime => Some(proc::timer_gettime), Full;
    109 timer_getoverrun => Some(proc::timer_getoverrun), Partial("always 0 (missed periods are counted in the siginfo only)");
    110 timer_settime => Some(proc::timer_settime), Full;
    111 timer_delete => Some(proc::timer_delete), Full;
    113 clock_gettime => Some(m::clock_gettime), Full;
    114 clock_getres => Some(m::clock_getres), Full;
    102 getitimer => Some(proc::getitimer), Full;
    103 setitimer => Some(proc::setitimer), Partial("ITIMER_VIRTUAL and ITIMER_PROF count the same CPU time (no system time)");
    115 clock_nanosleep => Some(proc::clock_nanosleep), Full;
    118 sched_setparam => Some(task::sched_setparam), Partial(SCHED);
    119 sched_setscheduler => Some(task::sched_setscheduler), Partial(SCHED);
    120 sched_getscheduler => Some(task::sched_getscheduler), Full;
    121 sched_getparam => Some(task::sched_getparam), Full;
    122 sched_setaffinity => Some(task::sched_setaffinity), Full;
    123 sched_getaffinity => Some(m::sched_getaffinity), Full;
    124 sched_yield => Some(proc::sched_yield), Full;
    125 sched_get_priority_max => Some(task::sched_get_priority_max), Full;
    126 sched_get_priority_min => Some(task::sched_get_priority_min), Full;
    127 sched_rr_get_interval => Some(task::sched_rr_get_interval), Full;
    129 kill => Some(proc::kill), Full;
    130 tkill => Some(proc::tkill), Full;
    131 tgkill => Some(proc::tgkill), Full;
    132 sigaltstack => Some(m::sigaltstack), Full;
    134 rt_sigaction => Some(m::rt_sigaction), Full;
    133 rt_sigsuspend => Some(proc::rt_sigsuspend), Full;
    135 rt_sigprocmask => Some(m::rt_sigprocmask), Full;
    136 rt_sigpending => Some(proc::rt_sigpending), Full;
    137 rt_sigtimedwait => Some(sig::rt_sigtimedwait), Full;
    138 rt_sigqueueinfo => Some(sig::rt_sigqueueinfo), Full;
    139 rt_sigreturn => Some(sig::rt_sigreturn), Full;
    140 setpriority => Some(task::setpriority), Partial(SCHED);
    141 getpriority => Some(task::getpriority), Full;
    143 setregid => Some(m::setregid), Full;
    144 setgid => Some(m::setgid), Full;
    145 setreuid => Some(m::setreuid), Full;
    146 setuid => Some(m::setuid), Full;
    147 setresuid => Some(m::setresuid), Full;
    148 getresuid => Some(m::getresuid), Full;
    149 setresgid => Some(m::setresgid), Full;
    150 getresgid => Some(m::getresgid), Full;
    153 times => Some(m::times), Full;
    154 setpgid => Some(proc::setpgid), Full;
    155 getpgid => Some(proc::getpgid), Full;
    156 getsid => Some(proc::getsid), Full;
    157 setsid => Some(proc::setsid), Full;
    158 getgroups => Some(m::getgroups), Full;
    159 setgroups => Some(m::setgroups), Full;
    160 uname => Some(m::uname), Full;
    161 sethostname => Some(m::sethostname), Full;
    163 getrlimit => Some(m::getrlimit), Full;
    164 setrlimit => Some(m::setrlimit), Partial("recorded, not enforced");
    165 getrusage => Some(m::getrusage), Partial("user time (the host time the tasks ran) and maxrss only");
    166 umask => Some(m::umask), Full;
    167 prctl => Some(m::prctl), Partial("PR_SET_NAME, PR_GET_NAME, PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS");
    168 getcpu => Some(task::getcpu), Full;
    169 gettimeofday => Some(m::gettimeofday), Full;
    172 getpid => Some(proc::getpid), Full;
    173 getppid => Some(proc::getppid), Full;
    174 getuid => Some(m::getuid), Full;
    175 geteuid => Some(m::geteuid), Full;
    176 getgid => Some(m::getgid), Full;
    177 getegid => Some(m::getegid), Full;
    178 gettid => Some(proc::gettid), Full;
    179 sysinfo => Some(m::sysinfo), Full;
    198 socket => Some(net::socket), Partial("AF_UNIX only (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET); other families: EAFNOSUPPORT");
    199 socketpair => Some(net::socketpair), Partial("AF_UNIX only; other families: EAFNOSUPPORT");
    200 bind => Some(net::bind), Partial(SOCK);
    201 listen => Some(net::listen), Partial(SOCK);
    202 accept => Some(net::accept), Partial(SOCK);
    203 connect => Some(net::connect), Partial(SOCK);
    204 getsockname => Some(net::getsockname), Partial(SOCK);
    205 getpeername => Some(net::getpeername), Partial(SOCK);
    206 sendto => Some(net::sendto), Partial(SOCK);
    207 recvfrom => Some(net::recvfrom), Partial(SOCK);
    208 setsockopt => Some(net::setsockopt), Partial("SOL_SOCKET: buffer sizes (recorded), timeouts, and options that change nothing for AF_UNIX; other levels ENOPROTOOPT");
    209 getsockopt => Some(net::getsockopt), Partial("SOL_SOCKET: type, domain, protocol, error, buffer sizes, timeouts, SO_PEERCRED, SO_ACCEPTCONN; other levels ENOPROTOOPT");
    210 shutdown => Some(net::shutdown), Partial(SOCK);
    211 sendmsg => Some(net::sendmsg), Partial(SOCK);
    212 recvmsg => Some(net::recvmsg), Partial(SOCK);
    214 brk => Some(mm::brk), Full;
    215 munmap => Some(mm::munmap), Full;
    216 mremap => Some(mm::mremap), Full;
    220 clone => Some(proc::clone), Partial("no CLONE_PIDFD, no namespaces (EPERM)");
    221 execve => Some(m::execve), Full;
    222 mmap => Some(mm::mmap), Partial("private file mappings read image pages in place (copy-on-write); shared file mappings map the file's own pages (coherent with read/write, SIGBUS past the end), but pages past the end when a file shrinks stay readable; overcommit accounting as Linux heuristic mode");
    223 fadvise64 => Some(f::fadvise64), Full;
    226 mprotect => Some(mm::mprotect), Full;
    227 msync => Some(mm::msync), Full;
    232 mincore => Some(task::mincore), Partial("every mapped page is reported resident");
    233 madvise => Some(mm::madvise), Partial("MADV_DONTNEED zeroes anonymous pages; other advice is accepted and ignored");
    240 rt_tgsigqueueinfo => Some(sig::rt_tgsigqueueinfo), Full;
    242 accept4 => Some(net::accept4), Partial(SOCK);
    243 recvmmsg => Some(net::recvmmsg), Partial("as recvmsg; after the first message it stops at one that would wait (as MSG_WAITFORONE); the timeout is ignored");
    258 riscv_hwprobe => Some(task::riscv_hwprobe), Full;
    259 riscv_flush_icache => Some(m::riscv_flush_icache), Full;
    260 wait4 => Some(proc::wait4), Full;
    261 prlimit64 => Some(m::prlimit64), Partial("limits are recorded, not enforced");
    269 sendmmsg => Some(net::sendmmsg), Partial(SOCK);
    276 renameat2 => Some(f::renameat2), Full;
    278 getrandom => Some(m::getrandom), Full;
    279 memfd_create => Some(pipe::memfd_create), Partial("no MFD_HUGETLB");
    281 execveat => Some(m::execveat), Full;
    283 membarrier => Some(task::membarrier), Full;
    291 statx => Some(f::statx), Full;
    293 rseq => Some(task::rseq), Partial("registration writes CPU 0; nothing ever preempts a critical section, so none is aborted");
    434 pidfd_open => None, No;
    435 clone3 => Some(proc::clone3), Partial("no CLONE_PIDFD, CLONE_INTO_CGROUP or set_tid");
    436 close_range => Some(f::close_range), Full;
    439 faccessat2 => Some(f::faccessat2), Full;
    441 epoll_pwait2 => Some(poll::epoll_pwait2), Partial(POLL);
    452 fchmodat2 => Some(f::fchmodat2), Full;
}

fn lookup_table() -> &'static [Option<&'static Syscall>] {
    static T: OnceLock<Vec<Option<&'static Syscall>>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v = vec![None; 512];
        for s in TABLE {
            v[s.nr as usize] = Some(s);
        }
        v
    })
}

/// The table entry for `nr`.
pub fn by_number(nr: u64) -> Option<&'static Syscall> {
    lookup_table().get(nr as usize).copied().flatten()
}

/// Runs system call `nr`. `None` if the process ended (there is no one to return to).
pub fn dispatch(p: &mut Process, nr: u64, args: &[u64; 6]) -> Option<SysResult> {
    let r = match by_number(nr) {
        Some(Syscall {
            handler: Some(h), ..
        }) => h(p, args),
        Some(s) => {
            p.log_once(format!(
                "system call {} ({}) is not implemented: ENOSYS",
                s.name, s.nr
            ));
            Err(ENOSYS)
        }
        None => {
            p.log_once(format!("unknown system call {nr}: ENOSYS"));
            Err(ENOSYS)
        }
    };
    if p.strace {
        let name = by_number(nr).map_or("?", |s| s.name);
        let shown = match r {
            Ok(v) => format!("{:#x}", v),
            Err(e) => format!("-{e}"),
        };
        let line = format!(
            "rvbox: strace: {name}({:#x}, {:#x}, {:#x}, {:#x}) = {shown}\n",
            args[0], args[1], args[2], args[3]
        );
        let _ = crate::host::write(2, line.as_bytes());
    }
    if p.exit.is_some() {
        None
    } else {
        Some(r)
    }
}
