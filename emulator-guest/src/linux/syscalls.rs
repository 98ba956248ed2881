//! The system call table, as data: number, name, handler and how complete it is.
//! `rvbox syscalls` prints it. A number with no handler returns `-ENOSYS`, logged once when
//! `RVBOX_LOG` is set.

use std::sync::OnceLock;

use super::errno::*;
use super::{sys_file as f, sys_misc as m, sys_mm as mm, Process};

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

const SINGLE: &str = "one process: no other processes or threads yet";

table! {
    17 getcwd => Some(f::getcwd), Full;
    19 eventfd2 => None, No;
    20 epoll_create1 => None, No;
    21 epoll_ctl => None, No;
    22 epoll_pwait => None, No;
    23 dup => Some(f::dup), Full;
    24 dup3 => Some(f::dup3), Full;
    25 fcntl => Some(f::fcntl), Partial("F_DUPFD*, F_GETFD/SETFD, F_GETFL/SETFL; locks are granted (one process)");
    26 inotify_init1 => None, No;
    29 ioctl => Some(f::ioctl), Partial("terminal: TCGETS/TCSETS*, TIOCGWINSZ, TIOCGPGRP/TIOCSPGRP; FIONREAD, FIOCLEX/FIONCLEX");
    32 flock => Some(f::flock), Partial("granted at once: one process");
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
    56 openat => Some(f::openat), Partial("no O_TMPFILE");
    57 close => Some(f::close), Full;
    59 pipe2 => None, No;
    61 getdents64 => Some(f::getdents64), Full;
    62 lseek => Some(f::lseek), Partial("no SEEK_DATA/SEEK_HOLE");
    63 read => Some(f::read), Full;
    64 write => Some(f::write), Full;
    65 readv => Some(f::readv), Full;
    66 writev => Some(f::writev), Full;
    67 pread64 => Some(f::pread64), Full;
    68 pwrite64 => Some(f::pwrite64), Full;
    69 preadv => Some(f::preadv), Full;
    70 pwritev => Some(f::pwritev), Full;
    71 sendfile => Some(f::sendfile), Full;
    72 pselect6 => Some(f::pselect6), Partial("host stdin waits in the host; files, devices and stdout are always ready");
    73 ppoll => Some(f::ppoll), Partial("host stdin waits in the host; files, devices and stdout are always ready");
    78 readlinkat => Some(f::readlinkat), Full;
    79 newfstatat => Some(f::newfstatat), Full;
    80 fstat => Some(f::fstat), Full;
    81 sync => Some(f::sync), Full;
    82 fsync => Some(f::fsync), Full;
    83 fdatasync => Some(f::fsync), Full;
    88 utimensat => Some(f::utimensat), Full;
    93 exit => Some(m::exit), Partial(SINGLE);
    94 exit_group => Some(m::exit_group), Full;
    96 set_tid_address => Some(m::set_tid_address), Partial(SINGLE);
    98 futex => Some(m::futex), Partial(SINGLE);
    99 set_robust_list => Some(m::set_robust_list), Partial(SINGLE);
    101 nanosleep => Some(m::nanosleep), Full;
    113 clock_gettime => Some(m::clock_gettime), Full;
    114 clock_getres => Some(m::clock_getres), Full;
    115 clock_nanosleep => Some(m::clock_nanosleep), Full;
    123 sched_getaffinity => Some(m::sched_getaffinity), Full;
    124 sched_yield => Some(m::sched_yield), Full;
    129 kill => Some(m::kill), Partial("to itself only; handlers are not run yet");
    130 tkill => Some(m::tkill), Partial("to itself only; handlers are not run yet");
    131 tgkill => Some(m::tgkill), Partial("to itself only; handlers are not run yet");
    132 sigaltstack => Some(m::sigaltstack), Full;
    134 rt_sigaction => Some(m::rt_sigaction), Partial("recorded; handlers are not run yet");
    135 rt_sigprocmask => Some(m::rt_sigprocmask), Full;
    139 rt_sigreturn => None, No;
    143 setregid => Some(m::setregid), Full;
    144 setgid => Some(m::setgid), Full;
    145 setreuid => Some(m::setreuid), Full;
    146 setuid => Some(m::setuid), Full;
    147 setresuid => Some(m::setresuid), Full;
    148 getresuid => Some(m::getresuid), Full;
    149 setresgid => Some(m::setresgid), Full;
    150 getresgid => Some(m::getresgid), Full;
    153 times => Some(m::times), Full;
    154 setpgid => Some(m::setpgid), Partial(SINGLE);
    155 getpgid => Some(m::getpgid), Partial(SINGLE);
    156 getsid => Some(m::getsid), Partial(SINGLE);
    157 setsid => Some(m::setsid), Partial(SINGLE);
    158 getgroups => Some(m::getgroups), Full;
    159 setgroups => Some(m::setgroups), Full;
    160 uname => Some(m::uname), Full;
    161 sethostname => Some(m::sethostname), Full;
    163 getrlimit => Some(m::getrlimit), Full;
    164 setrlimit => Some(m::setrlimit), Partial("recorded, not enforced");
    165 getrusage => Some(m::getrusage), Partial("user time only");
    166 umask => Some(m::umask), Full;
    167 prctl => Some(m::prctl), Partial("PR_SET_NAME, PR_GET_NAME");
    169 gettimeofday => Some(m::gettimeofday), Full;
    172 getpid => Some(m::getpid), Full;
    173 getppid => Some(m::getppid), Full;
    174 getuid => Some(m::getuid), Full;
    175 geteuid => Some(m::geteuid), Full;
    176 getgid => Some(m::getgid), Full;
    177 getegid => Some(m::getegid), Full;
    178 gettid => Some(m::gettid), Full;
    179 sysinfo => Some(m::sysinfo), Full;
    198 socket => None, No;
    199 socketpair => None, No;
    214 brk => Some(mm::brk), Full;
    215 munmap => Some(mm::munmap), Full;
    216 mremap => Some(mm::mremap), Partial("private mappings");
    220 clone => None, No;
    221 execve => Some(m::execve), Full;
    222 mmap => Some(mm::mmap), Partial("private file mappings read image pages in place (copy-on-write); shared writable file mappings are refused (ENODEV, logged); overcommit accounting as Linux heuristic mode");
    226 mprotect => Some(mm::mprotect), Full;
    227 msync => Some(mm::msync), Full;
    233 madvise => Some(mm::madvise), Partial("MADV_DONTNEED zeroes anonymous pages; other advice is accepted and ignored");
    260 wait4 => Some(m::wait4), Partial("no children yet: ECHILD");
    261 prlimit64 => Some(m::prlimit64), Partial("limits are recorded, not enforced");
    276 renameat2 => Some(f::renameat2), Partial("RENAME_NOREPLACE; not RENAME_EXCHANGE/WHITEOUT");
    278 getrandom => Some(m::getrandom), Full;
    258 riscv_hwprobe => None, No;
    259 riscv_flush_icache => Some(m::riscv_flush_icache), Full;
    279 memfd_create => None, No;
    291 statx => Some(f::statx), Full;
    293 rseq => None, No;
    435 clone3 => None, No;
    439 faccessat2 => Some(f::faccessat2), Full;
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
