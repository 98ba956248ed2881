//! Process, identity, time, signal and other system calls.

use super::abi;
use super::errno::*;
use super::signal::*;
use super::syscalls::SysResult;
use super::Process;
use crate::host;

/// riscv_flush_icache(2): code written since the last flush becomes visible.
pub fn riscv_flush_icache(p: &mut Process, _a: &[u64; 6]) -> SysResult {
    p.cpu.flush_icache();
    Ok(0)
}

use super::abi::clock::*;

fn clock_ns(p: &Process, clock: u64) -> Result<u64, Errno> {
    match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE => Ok(host::now_realtime_ns()),
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME => {
            Ok(host::now_monotonic_ns())
        }
        CLOCK_PROCESS_CPUTIME_ID => Ok(cpu_time_ns(p, Cpu::Process)),
        CLOCK_THREAD_CPUTIME_ID => Ok(cpu_time_ns(p, Cpu::Thread)),
        _ => Err(EINVAL),
    }
}

/// Whose CPU time.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Cpu {
    Thread,
    Process,
    Children,
}

/// CPU time (ns): the host time the caller's task, its process's tasks or its reaped
/// children ran (`Kernel::run` adds each turn's), with the caller's running turn so far.
pub(super) fn cpu_time_ns(p: &Process, who: Cpu) -> u64 {
    let kb = p.kernel.borrow();
    let now = host::now_monotonic_ns().saturating_sub(kb.turn_start);
    // (A task not yet in the process table, as in unit tests, is its own process.)
    let e = kb.procs.get(&p.pid);
    match who {
        Cpu::Thread => p.task.cpu_ns + now,
        Cpu::Process => e.map_or(p.task.cpu_ns, |e| e.cpu_ns) + now,
        Cpu::Children => e.map_or(0, |e| e.children_cpu_ns),
    }
}

/// clock_gettime(2).
pub fn clock_gettime(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let ns = clock_ns(p, a[0])?;
    p.mem
        .write_bytes(a[1], &abi::ns_to_timespec(ns))
        .map_err(|_| EFAULT)?;
    Ok(0)
}

/// clock_getres(2).
pub fn clock_getres(p: &mut Process, a: &[u64; 6]) -> SysResult {
    clock_ns(p, a[0])?;
    if a[1] != 0 {
        p.mem
            .write_bytes(a[1], &abi::ns_to_timespec(1))
            .map_err(|_| EFAULT)?;
    }
    Ok(0)
}

/// gettimeofday(2).
pub fn gettimeofday(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if a[0] != 0 {
        let ns = host::now_realtime_ns();
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
        b[8..].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
        p.mem.write_bytes(a[0], &b).map_err(|_| EFAULT)?;
    }
    if a[1] != 0 {
        p.mem.write_bytes(a[1], &[0u8; 8]).map_err(|_| EFAULT)?;
    }
    Ok(0)
}

/// times(2): clock ticks (100 a second) of user time of the process and of its reaped
/// children (system time is 0: the guest's calls run in its own host time); returns the
/// ticks since boot.
pub fn times(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let ticks = host::now_monotonic_ns() / 10_000_000;
    if a[0] != 0 {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&(cpu_time_ns(p, Cpu::Process) / 10_000_000).to_le_bytes());
        b[16..24].copy_from_slice(&(cpu_time_ns(p, Cpu::Children) / 10_000_000).to_le_bytes());
        p.mem.write_bytes(a[0], &b).map_err(|_| EFAULT)?;
    }
    Ok(ticks)
}

/// getrusage(2).
pub fn getrusage(p: &mut Process, a: &[u64; 6]) -> SysResult {
    // struct rusage: ru_utime, ru_stime (timeval each), then 14 longs.
    let who = match a[0] as i64 {
        0 => Cpu::Process,
        -1 => Cpu::Children,
        1 => Cpu::Thread,
        _ => return Err(EINVAL),
    };
    let ns = cpu_time_ns(p, who);
    let mut b = [0u8; 144];
    b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    b[8..16].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
    // ru_maxrss in KiB.
    b[32..40].copy_from_slice(&(p.mem.resident_bytes() / 1024).to_le_bytes());
    p.mem.write_bytes(a[1], &b).map_err(|_| EFAULT)?;
    Ok(0)
}

/// sched_getaffinity(2): one CPU.
pub fn sched_getaffinity(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if a[1] < 8 || !a[1].is_multiple_of(8) {
        return Err(EINVAL);
    }
    let mut mask = vec![0u8; a[1].min(128) as usize];
    mask[0] = 1;
    p.mem.write_bytes(a[2], &mask).map_err(|_| EFAULT)?;
    Ok(mask.len() as u64)
}

/// rt_sigaction(2).
pub fn rt_sigaction(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let sig = a[0] as usize;
    if sig == 0 || sig > NSIG || a[3] != 8 {
        return Err(EINVAL);
    }
    let old = p.signals.actions[sig];
    if a[1] != 0 {
        if sig == SIGKILL as usize || sig == SIGSTOP as usize {
            return Err(EINVAL);
        }
        // struct sigaction: handler, flags, mask (riscv64 has no sa_restorer).
        let handler = p.mem.read_u64(a[1]).map_err(|_| EFAULT)?;
        let flags = p.mem.read_u64(a[1] + 8).map_err(|_| EFAULT)?;
        let mask = p.mem.read_u64(a[1] + 16).map_err(|_| EFAULT)?;
        let act = SigAction {
            handler,
            flags: flags & UAPI_SA_FLAGS,
            mask: mask & !UNBLOCKABLE,
        };
        super::sigdeliver::set_action(p, sig as i32, act);
        if p.signals.ignored(sig as i32) {
            // Setting a signal to be ignored discards it where it is pending (POSIX).
            let s = sig as i32;
            p.pending.retain(|x| x.sig != s);
        }
    }
    if a[2] != 0 {
        for (i, v) in [old.handler, old.flags, old.mask].iter().enumerate() {
            p.mem
                .write_u64(a[2] + i as u64 * 8, *v)
                .map_err(|_| EFAULT)?;
        }
    }
    Ok(0)
}

/// rt_sigprocmask(2).
pub fn rt_sigprocmask(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if a[3] != 8 {
        return Err(EINVAL);
    }
    let old = p.signals.mask;
    if a[1] != 0 {
        let set = p.mem.read_u64(a[1]).map_err(|_| EFAULT)?;
        let unblockable = (1u64 << (SIGKILL - 1)) | (1u64 << (SIGSTOP - 1));
        p.signals.mask = match a[0] {
            0 => old | set,
            1 => old & !set,
            2 => set,
            _ => return Err(EINVAL),
        } & !unblockable;
        let mask = p.signals.mask;
        p.take_shared_signals(|sig| mask & (1u64 << (sig - 1)) == 0);
    }
    if a[2] != 0 {
        p.mem.write_u64(a[2], old).map_err(|_| EFAULT)?;
    }
    Ok(0)
}

/// sigaltstack(2).
pub fn sigaltstack(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let new = if a[0] != 0 {
        let mut b = [0u8; AltStack::SIZE];
        p.mem.read_bytes(a[0], &mut b).map_err(|_| EFAULT)?;
        Some(AltStack::from_bytes(&b))
    } else {
        None
    };
    let sp = p.cpu.x[2];
    let old = p.signals.altstack.report(sp);
    if let Some(new) = new {
        p.signals.altstack.set(new, sp)?;
    }
    if a[1] != 0 {
        p.mem
            .write_bytes(a[1], &old.to_bytes())
            .map_err(|_| EFAULT)?;
    }
    Ok(0)
}

macro_rules! getter {
    ($name:ident, $e:expr) => {
        pub fn $name(p: &mut Process, _a: &[u64; 6]) -> SysResult {
            #[allow(clippy::redundant_closure_call)]
            Ok(($e)(p) as u64)
        }
    };
}

getter!(getuid, |p: &Process| p.creds.uid);
getter!(geteuid, |p: &Process| p.creds.euid);
getter!(getgid, |p: &Process| p.creds.gid);
getter!(getegid, |p: &Process| p.creds.egid);

/// setuid(2).
pub fn setuid(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let uid = a[0] as u32;
    let c = &mut p.creds;
    if c.euid == 0 {
        c.uid = uid;
        c.euid = uid;
        c.suid = uid;
    } else if uid == c.uid || uid == c.suid {
        c.euid = uid;
    } else {
        return Err(EPERM);
    }
    Ok(0)
}

/// setgid(2).
pub fn setgid(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let gid = a[0] as u32;
    let root = p.creds.euid == 0;
    let c = &mut p.creds;
    if root {
        c.gid = gid;
        c.egid = gid;
        c.sgid = gid;
    } else if gid == c.gid || gid == c.sgid {
        c.egid = gid;
    } else {
        return Err(EPERM);
    }
    Ok(0)
}

/// Applies a set*id triple: `u32::MAX` keeps a value; unprivileged callers may only pick
/// one of their current ids.
fn set_ids(root: bool, cur: [u32; 3], new: [u32; 3]) -> Result<[u32; 3], Errno> {
    let mut out = cur;
    for i in 0..3 {
        if new[i] == u32::MAX {
            continue;
        }
        if !root && !cur.contains(&new[i]) {
            return Err(EPERM);
        }
        out[i] = new[i];
    }
    Ok(out)
}

/// setresuid(2).
pub fn setresuid(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let c = &mut p.creds;
    let r = set_ids(
        c.euid == 0,
        [c.uid, c.euid, c.suid],
        [a[0] as u32, a[1] as u32, a[2] as u32],
    )?;
    [c.uid, c.euid, c.suid] = r;
    Ok(0)
}

/// setresgid(2).
pub fn setresgid(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let root = p.creds.euid == 0;
    let c = &mut p.creds;
    let r = set_ids(
        root,
        [c.gid, c.egid, c.sgid],
        [a[0] as u32, a[1] as u32, a[2] as u32],
    )?;
    [c.gid, c.egid, c.sgid] = r;
    Ok(0)
}

/// setreuid(2).
pub fn setreuid(p: &mut Process, a: &[u64; 6]) -> SysResult {
    setresuid(p, &[a[0], a[1], u32::MAX as u64, 0, 0, 0])
}

/// setregid(2).
pub fn setregid(p: &mut Process, a: &[u64; 6]) -> SysResult {
    setresgid(p, &[a[0], a[1], u32::MAX as u64, 0, 0, 0])
}

fn put_ids(p: &mut Process, addrs: &[u64], ids: [u32; 3]) -> SysResult {
    for (addr, id) in addrs.iter().zip(ids) {
        p.mem.write_u32(*addr, id).map_err(|_| EFAULT)?;
    }
    Ok(0)
}

/// getresuid(2).
pub fn getresuid(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let c = p.creds.clone();
    put_ids(p, &a[..3], [c.uid, c.euid, c.suid])
}

/// getresgid(2).
pub fn getresgid(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let c = p.creds.clone();
    put_ids(p, &a[..3], [c.gid, c.egid, c.sgid])
}

/// getgroups(2).
pub fn getgroups(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let groups = p.creds.groups.clone();
    if a[0] == 0 {
        return Ok(groups.len() as u64);
    }
    if (a[0] as usize) < groups.len() {
        return Err(EINVAL);
    }
    for (i, g) in groups.iter().enumerate() {
        p.mem
            .write_u32(a[1] + i as u64 * 4, *g)
            .map_err(|_| EFAULT)?;
    }
    Ok(groups.len() as u64)
}

/// setgroups(2).
pub fn setgroups(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if p.creds.euid != 0 {
        return Err(EPERM);
    }
    if a[0] > 65536 {
        return Err(EINVAL);
    }
    let mut g = Vec::with_capacity(a[0] as usize);
    for i in 0..a[0] {
        g.push(p.mem.read_u32(a[1] + i * 4).map_err(|_| EFAULT)?);
    }
    p.creds.groups = g;
    Ok(0)
}

/// uname(2).
pub fn uname(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let host = p.hostname.clone();
    let u = abi::utsname([
        b"Linux",
        &host,
        super::procfs::KERNEL_RELEASE.as_bytes(),
        super::procfs::KERNEL_VERSION.as_bytes(),
        b"riscv64",
        b"(none)",
    ]);
    p.mem.write_bytes(a[0], &u).map_err(|_| EFAULT)?;
    Ok(0)
}

/// sethostname(2).
pub fn sethostname(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if p.creds.euid != 0 {
        return Err(EPERM);
    }
    if a[1] > 64 {
        return Err(EINVAL);
    }
    let mut b = vec![0u8; a[1] as usize];
    p.mem.read_bytes(a[0], &mut b).map_err(|_| EFAULT)?;
    p.hostname = b;
    Ok(0)
}

const RLIM_INFINITY: u64 = u64::MAX;

pub(super) fn rlimit(_p: &Process, res: u64) -> Result<(u64, u64), Errno> {
    Ok(match res {
        3 => (8 << 20, RLIM_INFINITY), // RLIMIT_STACK
        7 => (super::fd::NOFILE as u64, super::fd::NOFILE as u64), // RLIMIT_NOFILE
        // RLIMIT_AS is unlimited, as in a container: the memory limit is the memory
        // cgroup's (`mem::budget`), and reserving address space costs nothing.
        0..=15 => (RLIM_INFINITY, RLIM_INFINITY),
        _ => return Err(EINVAL),
    })
}

/// prlimit64(2).
pub fn prlimit64(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if a[0] != 0 && a[0] as i32 != p.pid {
        return Err(ESRCH);
    }
    let (cur, max) = rlimit(p, a[1])?;
    if a[2] != 0 {
        p.log_once(format!(
            "prlimit64: setting resource {} is recorded nowhere",
            a[1]
        ));
    }
    if a[3] != 0 {
        p.mem.write_u64(a[3], cur).map_err(|_| EFAULT)?;
        p.mem.write_u64(a[3] + 8, max).map_err(|_| EFAULT)?;
    }
    Ok(0)
}

/// getrlimit(2).
pub fn getrlimit(p: &mut Process, a: &[u64; 6]) -> SysResult {
    prlimit64(p, &[0, a[0], 0, a[1], 0, 0])
}

/// setrlimit(2).
pub fn setrlimit(p: &mut Process, a: &[u64; 6]) -> SysResult {
    rlimit(p, a[0])?;
    Ok(0)
}

/// sysinfo(2).
pub fn sysinfo(p: &mut Process, a: &[u64; 6]) -> SysResult {
    // struct sysinfo: uptime, loads[3], totalram, freeram, sharedram, bufferram,
    // totalswap, freeswap (longs), procs (u16), pad, totalhigh, freehigh, mem_unit (u32).
    let mut b = [0u8; 112];
    let uptime = host::now_monotonic_ns() / 1_000_000_000;
    let total = p.mem_limit();
    let free = total.saturating_sub(crate::mem::budget::used());
    b[0..8].copy_from_slice(&uptime.to_le_bytes());
    b[32..40].copy_from_slice(&total.to_le_bytes());
    b[40..48].copy_from_slice(&free.to_le_bytes());
    b[80..82].copy_from_slice(&1u16.to_le_bytes());
    b[104..108].copy_from_slice(&1u32.to_le_bytes());
    p.mem.write_bytes(a[0], &b).map_err(|_| EFAULT)?;
    Ok(0)
}

/// umask(2).
pub fn umask(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let old = p.umask();
    p.set_umask(a[0] as u32 & 0o777);
    Ok(old as u64)
}

/// prctl(2).
pub fn prctl(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const PR_SET_PDEATHSIG: u64 = 1;
    const PR_GET_PDEATHSIG: u64 = 2;
    const PR_SET_NAME: u64 = 15;
    const PR_GET_NAME: u64 = 16;
    const PR_SET_NO_NEW_PRIVS: u64 = 38;
    const PR_GET_NO_NEW_PRIVS: u64 = 39;
    match a[0] {
        PR_SET_PDEATHSIG => {
            if a[1] > NSIG as u64 {
                return Err(EINVAL);
            }
            let pid = p.pid;
            p.kernel.borrow_mut().procs.get_mut(&pid).unwrap().pdeathsig = a[1] as i32;
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            let pid = p.pid;
            let sig = p.kernel.borrow().procs[&pid].pdeathsig;
            p.mem.write_u32(a[1], sig as u32).map_err(|_| EFAULT)?;
            Ok(0)
        }
        PR_SET_NAME => {
            // At most 15 bytes are taken, whether or not a NUL follows.
            let mut b = [0u8; 16];
            for (i, c) in b.iter_mut().take(15).enumerate() {
                *c = p.mem.read_u8(a[1] + i as u64).map_err(|_| EFAULT)?;
                if *c == 0 {
                    break;
                }
            }
            p.comm = b.iter().take_while(|&&c| c != 0).copied().collect();
            Ok(0)
        }
        PR_GET_NAME => {
            let mut b = p.comm.clone();
            b.resize(16, 0);
            p.mem.write_bytes(a[1], &b).map_err(|_| EFAULT)?;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS => {
            if a[1] != 1 || a[2..5].iter().any(|&v| v != 0) {
                return Err(EINVAL);
            }
            p.task.no_new_privs = true;
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => {
            if a[1..5].iter().any(|&v| v != 0) {
                return Err(EINVAL);
            }
            Ok(p.task.no_new_privs as u64)
        }
        op => {
            p.log_once(format!("prctl: option {op} is not supported"));
            Err(EINVAL)
        }
    }
}

/// getrandom(2).
pub fn getrandom(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let n = (a[1] as usize).min(1 << 20);
    let mut b = vec![0u8; n];
    host::random(&mut b);
    p.mem.write_bytes(a[0], &b).map_err(|_| EFAULT)?;
    Ok(n as u64)
}

/// execve(2).
pub fn execve(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let path = p.path_arg(a[0])?;
    // As Linux, the file is looked up before the arguments are copied (ENOENT before E2BIG).
    let cwd = p.cwd();
    p.resolve(&cwd, &path, crate::vfs::Follow::Yes)?;
    exec_with(p, &path, a[1], a[2])
}

/// Copies the arguments and environment and replaces the program.
fn exec_with(p: &mut Process, path: &[u8], argv: u64, envp: u64) -> SysResult {
    let mut argv = read_strv(p, argv)?;
    let envp = read_strv(p, envp)?;
    // Linux (since 5.18) never starts a program with argc 0: it gets one empty argument.
    if argv.is_empty() {
        argv.push(Vec::new());
    }
    p.exec(path, argv, envp)?;
    Ok(0)
}

/// execveat(2): `path` relative to `dirfd`, or with `AT_EMPTY_PATH` the file `dirfd` is
/// open on (fexecve).
pub fn execveat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
    const AT_EMPTY_PATH: u64 = 0x1000;
    let (dirfd, flags) = (a[0] as i32, a[4]);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let path = p.path_arg(a[1])?;
    let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 {
        crate::vfs::Follow::No
    } else {
        crate::vfs::Follow::Yes
    };
    // An absolute path for `exec`, which resolves from the working directory.
    let full = if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(ENOENT);
        }
        let node = if dirfd == super::sys_file::AT_FDCWD {
            p.cwd()
        } else {
            p.fds.get(dirfd)?.node().cloned().ok_or(EACCES)?
        };
        p.vfs.path_of_node(&node)
    } else if path.starts_with(b"/") || dirfd == super::sys_file::AT_FDCWD {
        path
    } else {
        let dir = p.fds.get(dirfd)?.node().cloned().ok_or(EBADF)?;
        if !dir.is_dir() {
            return Err(ENOTDIR);
        }
        let mut full = p.vfs.path_of(&dir);
        if !full.ends_with(b"/") {
            full.push(b'/');
        }
        full.extend_from_slice(&path);
        full
    };
    let cwd = p.cwd();
    let node = p.resolve(&cwd, &full, follow)?;
    if node.file_type() == crate::bundle::mode::S_IFLNK {
        return Err(ELOOP);
    }
    exec_with(p, &full, a[2], a[3])
}

/// Reads a NULL-terminated array of strings (argv, envp), bounding what it copies (the
/// limits of Linux on all of them together are `elf::check_arg_space`'s).
fn read_strv(p: &mut Process, mut addr: u64) -> Result<Vec<Vec<u8>>, Errno> {
    const ARG_MAX: usize = 2 << 20;
    let mut out = Vec::new();
    let mut total = 0;
    if addr == 0 {
        return Ok(out);
    }
    loop {
        let ptr = p.mem.read_u64(addr).map_err(|_| EFAULT)?;
        if ptr == 0 {
            return Ok(out);
        }
        let s = p
            .mem
            .read_cstr(ptr, super::elf::MAX_ARG_STRLEN)
            .map_err(|_| EFAULT)?
            .ok_or(E2BIG)?;
        total += s.len() + 1 + 8;
        if total > ARG_MAX {
            return Err(E2BIG);
        }
        out.push(s);
        addr += 8;
    }
}

impl Process {
    /// The guest's memory limit in bytes (its RAM, as `sysinfo` and `/proc/meminfo` say):
    /// the budget every process's pages count against (`mem::budget`).
    pub fn mem_limit(&self) -> u64 {
        crate::mem::budget::limit()
    }
}
