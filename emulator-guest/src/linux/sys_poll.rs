//! Readiness system calls: ppoll, pselect6, and epoll.
//!
//! Each open file reports its readiness (`OpenFile::poll`): pipes, sockets and eventfds
//! from their state, files and devices always ready, host stdin through the host (the
//! module then sleeps in the host, without spinning). When nothing is ready the call waits
//! for its timeout; with no timeout and nothing the host can wake, it would wait forever:
//! that is `EBLOCK` (see `errno.rs`), a deadlock while this is the only process.
//!
//! The signal mask argument of ppoll, pselect6 and epoll_pwait replaces the caller's mask
//! while the call waits, as `rt_sigsuspend` does: a signal it unblocks interrupts the call
//! (EINTR) and its handler runs with that mask, the old one coming back with `rt_sigreturn`;
//! if the call returns otherwise the old mask comes back at once.

use std::rc::Rc;

use super::epoll::{Epoll, EPOLLEXCLUSIVE, EPOLLONESHOT, EPOLLWAKEUP};
use super::errno::*;
use super::fd::*;
use super::syscalls::SysResult;
use super::Process;

/// Polls `fds` (fd, events) until one is ready or the timeout passes; returns revents.
fn do_poll(
    p: &mut Process,
    fds: &[(i32, u16)],
    timeout_ns: Option<u64>,
) -> Result<Vec<u16>, Errno> {
    let mut rev: Vec<Option<u16>> = fds
        .iter()
        .map(|&(fd, ev)| {
            if fd < 0 {
                return Some(0);
            }
            match p.fds.get(fd) {
                Err(_) => Some(POLLNVAL),
                // Without read interest, host stdin's readiness does not matter.
                Ok(f) if ev & (POLLIN | POLLRDNORM) == 0 => {
                    Some(f.poll_with(false) & (ev | POLLERR | POLLHUP))
                }
                Ok(f) => f.poll().map(|m| m & (ev | POLLERR | POLLHUP)),
            }
        })
        .collect();
    let wants_stdin = rev.iter().any(Option::is_none);
    if wants_stdin {
        let ready = super::tty::stdin_ready(p);
        for (r, &(fd, ev)) in rev.iter_mut().zip(fds) {
            if r.is_none() {
                let now = p.fds.get(fd).map_or(0, |f| f.poll_with(ready));
                *r = Some(now & (ev | POLLERR | POLLHUP));
            }
        }
    }
    if !rev.iter().any(|r| r.is_some_and(|v| v != 0)) {
        let on = fds
            .iter()
            .filter_map(|&(fd, ev)| Some((fd, p.fds.get(fd).ok()?, ev)))
            .collect();
        p.wait.on = Some(super::kernel::WaitOn::Poll(on));
        wait_more(p, timeout_ns, wants_stdin)?;
    }
    Ok(rev.into_iter().map(|r| r.unwrap_or(0)).collect())
}

/// Nothing is ready: the caller waits (`EBLOCK`, retried by the scheduler when something
/// changes, host stdin becomes readable if `stdin`, or the deadline passes), unless the
/// timeout (counted from the first attempt) is over: then `Ok`, with nothing ready.
pub(super) fn wait_more(
    p: &mut Process,
    timeout_ns: Option<u64>,
    stdin: bool,
) -> Result<(), Errno> {
    if timeout_ns == Some(0) {
        return Ok(());
    }
    p.wait_deadline(timeout_ns);
    if p.wait_timed_out() {
        return Ok(());
    }
    p.wait.stdin |= stdin;
    Err(EBLOCK)
}

fn timeout_arg(p: &mut Process, addr: u64) -> Result<Option<u64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    super::sys_proc::read_timespec_ns(p, addr).map(Some)
}

/// Runs `call` with the signal mask at `addr` (a full 8-byte `sigset_t`, or none) in place
/// of the caller's while it waits (see the module's comment).
fn with_sigmask(
    p: &mut Process,
    addr: u64,
    size: u64,
    call: impl FnOnce(&mut Process) -> SysResult,
) -> SysResult {
    if addr != 0 && !p.wait.blocked {
        if size != 8 {
            return Err(EINVAL);
        }
        let set = p.mem.read_u64(addr).map_err(|_| EFAULT)?;
        p.saved_mask = Some(p.signals.mask);
        p.signals.mask = set & !super::signal::UNBLOCKABLE;
        let mask = p.signals.mask;
        p.take_shared_signals(|sig| mask & super::signal::sigbit(sig) == 0);
    }
    let r = call(p);
    if r != Err(EBLOCK) {
        if let Some(m) = p.saved_mask.take() {
            p.signals.mask = m;
        }
    }
    r
}

/// ppoll(2).
pub fn ppoll(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let n = a[1] as usize;
    if n > NOFILE {
        return Err(EINVAL);
    }
    let timeout = timeout_arg(p, a[2])?;
    with_sigmask(p, a[3], a[4], |p| ppoll_fds(p, a, n, timeout))
}

fn ppoll_fds(p: &mut Process, a: &[u64; 6], n: usize, timeout: Option<u64>) -> SysResult {
    let mut fds = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let fd = p.mem.read_u32(a[0] + i * 8).map_err(|_| EFAULT)? as i32;
        let ev = p.mem.read_u16(a[0] + i * 8 + 4).map_err(|_| EFAULT)?;
        fds.push((fd, ev));
    }
    let rev = do_poll(p, &fds, timeout)?;
    let mut count = 0;
    for (i, r) in rev.iter().enumerate() {
        p.mem
            .write_u16(a[0] + i as u64 * 8 + 6, *r)
            .map_err(|_| EFAULT)?;
        if *r != 0 {
            count += 1;
        }
    }
    Ok(count)
}

/// pselect6(2).
pub fn pselect6(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let nfds = a[0] as i32;
    if nfds < 0 {
        return Err(EINVAL);
    }
    let nfds = (nfds as usize).min(NOFILE);
    let timeout = timeout_arg(p, a[4])?;
    // The sixth argument points to { const sigset_t *ss; size_t ss_len }.
    let (ss, len) = if a[5] != 0 {
        (
            p.mem.read_u64(a[5]).map_err(|_| EFAULT)?,
            p.mem.read_u64(a[5] + 8).map_err(|_| EFAULT)?,
        )
    } else {
        (0, 0)
    };
    with_sigmask(p, ss, len, |p| select_fds(p, a, nfds, timeout))
}

fn select_fds(p: &mut Process, a: &[u64; 6], nfds: usize, timeout: Option<u64>) -> SysResult {
    const IN: u16 = POLLIN | POLLRDNORM | POLLHUP | POLLERR;
    const OUT: u16 = POLLOUT | POLLWRNORM | POLLERR;
    const EX: u16 = POLLPRI;
    let words = nfds.div_ceil(64);
    let mut sets = [Vec::new(), Vec::new(), Vec::new()];
    for (k, set) in sets.iter_mut().enumerate() {
        let addr = a[1 + k];
        for w in 0..words as u64 {
            set.push(if addr == 0 {
                0
            } else {
                p.mem.read_u64(addr + w * 8).map_err(|_| EFAULT)?
            });
        }
    }
    let mut fds = Vec::new();
    for fd in 0..nfds {
        let bit = |s: &Vec<u64>| s[fd / 64] >> (fd % 64) & 1 != 0;
        let want = [bit(&sets[0]), bit(&sets[1]), bit(&sets[2])];
        if want.iter().any(|&b| b) {
            if p.fds.get(fd as i32).is_err() {
                return Err(EBADF);
            }
            let ev = if want[0] { IN } else { 0 }
                | if want[1] { OUT } else { 0 }
                | if want[2] { EX } else { 0 };
            fds.push((fd as i32, ev, want));
        }
    }
    let pairs: Vec<(i32, u16)> = fds.iter().map(|&(fd, ev, _)| (fd, ev)).collect();
    let rev = do_poll(p, &pairs, timeout)?;
    let mut out = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let mut count = 0;
    for (&(fd, _, want), r) in fds.iter().zip(rev) {
        let (w, b) = (fd as usize / 64, fd as usize % 64);
        for (k, mask) in [IN, OUT, EX].into_iter().enumerate() {
            if want[k] && r & mask != 0 {
                out[k][w] |= 1 << b;
                count += 1;
            }
        }
    }
    for (k, set) in out.iter().enumerate() {
        let addr = a[1 + k];
        if addr != 0 {
            for (w, v) in set.iter().enumerate() {
                p.mem
                    .write_u64(addr + w as u64 * 8, *v)
                    .map_err(|_| EFAULT)?;
            }
        }
    }
    Ok(count)
}

/// epoll_create1(2).
pub fn epoll_create1(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let flags = a[0] as u32;
    if flags & !O_CLOEXEC != 0 {
        return Err(EINVAL);
    }
    let file = OpenFile::new(FileKind::Epoll(Epoll::new()), O_RDWR);
    Ok(p.fds.install(file, flags & O_CLOEXEC != 0, 0)? as u64)
}

fn epoll_of(p: &Process, epfd: i32) -> Result<Rc<OpenFile>, Errno> {
    let f = p.fds.get(epfd)?;
    match f.kind {
        FileKind::Epoll(_) => Ok(f),
        _ => Err(EINVAL),
    }
}

fn as_epoll(f: &OpenFile) -> &Epoll {
    match &f.kind {
        FileKind::Epoll(e) => e,
        _ => unreachable!("checked by epoll_of"),
    }
}

/// epoll_ctl(2).
pub fn epoll_ctl(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const ADD: u64 = 1;
    const DEL: u64 = 2;
    const MOD: u64 = 3;
    let (epfd, op, fd) = (a[0] as i32, a[1], a[2] as i32);
    let epf = p.fds.get(epfd)?;
    let target = p.fds.get(fd)?;
    let (events, data) = if op == DEL {
        (0, 0)
    } else {
        let ev = p.mem.read_u32(a[3]).map_err(|_| EFAULT)?;
        let data = p.mem.read_u64(a[3] + 8).map_err(|_| EFAULT)?;
        (ev & !EPOLLWAKEUP, data)
    };
    let ep = match &epf.kind {
        FileKind::Epoll(e) => e,
        _ => return Err(EINVAL),
    };
    if Rc::ptr_eq(&epf, &target) {
        return Err(EINVAL);
    }
    if events & EPOLLEXCLUSIVE != 0 {
        if op == MOD {
            return Err(EINVAL);
        }
        if events & EPOLLONESHOT != 0 || matches!(target.kind, FileKind::Epoll(_)) {
            return Err(EINVAL);
        }
    }
    match op {
        ADD => {
            if let FileKind::Epoll(inner) = &target.kind {
                if inner.reached_from(ep) {
                    return Err(ELOOP);
                }
            }
            ep.add(fd, &target, events, data)?
        }
        MOD => ep.modify(fd, &target, events, data)?,
        DEL => ep.delete(fd, &target)?,
        _ => return Err(EINVAL),
    }
    Ok(0)
}

fn epoll_wait_common(
    p: &mut Process,
    epfd: i32,
    events: u64,
    max: i32,
    timeout_ns: Option<u64>,
) -> SysResult {
    if max <= 0 || max as usize > (i32::MAX as usize) / 16 {
        return Err(EINVAL);
    }
    let f = epoll_of(p, epfd)?;
    let ep = as_epoll(&f);
    let max = max as usize;
    let stdin = ep.watches_stdin();
    let stdin_now = stdin && super::tty::stdin_ready(p);
    let got = ep.collect(max, stdin_now, true);
    if got.is_empty() {
        wait_more(p, timeout_ns, stdin)?;
    }
    for (i, (ev, data)) in got.iter().enumerate() {
        let at = events + i as u64 * 16;
        p.mem.write_u32(at, *ev).map_err(|_| EFAULT)?;
        p.mem.write_u64(at + 8, *data).map_err(|_| EFAULT)?;
    }
    Ok(got.len() as u64)
}

/// epoll_pwait(2).
pub fn epoll_pwait(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let ms = a[3] as i32;
    let timeout = (ms >= 0).then(|| ms as u64 * 1_000_000);
    with_sigmask(p, a[4], a[5], |p| {
        epoll_wait_common(p, a[0] as i32, a[1], a[2] as i32, timeout)
    })
}

/// epoll_pwait2(2): the timeout is a `timespec`.
pub fn epoll_pwait2(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let timeout = timeout_arg(p, a[3])?;
    with_sigmask(p, a[4], a[5], |p| {
        epoll_wait_common(p, a[0] as i32, a[1], a[2] as i32, timeout)
    })
}
