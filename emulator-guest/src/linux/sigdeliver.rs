//! Delivering a caught signal to a task: ending the system call it waits in (`EINTR`, or a
//! restart with `SA_RESTART`), then building the signal frame (`sigframe.rs`) so the
//! handler runs and returns through `rt_sigreturn`. Also the calls that take signals
//! synchronously: rt_sigreturn, rt_sigtimedwait, rt_sigqueueinfo.

use super::errno::*;
use super::kernel::{self, PendingSignal, SigSource};
use super::sigframe::{self, SigInfo};
use super::signal::*;
use super::syscalls::SysResult;
use super::Process;

/// Calls that Linux never restarts after a handler ran (`-ERESTARTNOHAND` and
/// `-ERESTART_RESTARTBLOCK`): they end with `EINTR` even under `SA_RESTART`.
fn restartable(nr: u64) -> bool {
    !matches!(
        nr,
        22 /* epoll_pwait */ | 72 /* pselect6 */ | 73 /* ppoll */ | 101 /* nanosleep */
            | 115 /* clock_nanosleep */ | 133 /* rt_sigsuspend */ | 137 /* rt_sigtimedwait */
            | 441 /* epoll_pwait2 */
    )
}

/// The `siginfo_t` for a pending signal.
pub fn siginfo(s: &PendingSignal) -> SigInfo {
    let sig = s.sig;
    match s.source {
        SigSource::User { pid, uid } | SigSource::HostPipe { pid, uid } => {
            SigInfo::user(sig, pid, uid)
        }
        SigSource::Tkill { pid, uid } => SigInfo::tkill(sig, pid, uid),
        SigSource::Kernel => SigInfo::kernel(sig),
        SigSource::Fault { code, addr } => SigInfo::fault(sig, code, addr),
        SigSource::Child {
            pid,
            uid,
            code,
            status,
        } => SigInfo::child(pid, uid, code, status, 0, 0),
        SigSource::Timer { id, overrun, value } => SigInfo::timer(sig, id, overrun, value),
        SigSource::Queued(b) => {
            SigInfo::from_bytes(sig, &b).unwrap_or_else(|_| SigInfo::kernel(sig))
        }
    }
}

/// Runs the handler `act` for `s` on this task.
pub fn deliver(p: &mut Process, s: PendingSignal, act: SigAction) {
    let sig = s.sig;
    if p.wait.blocked && p.wait.progress > 0 {
        // A write interrupted after some bytes went returns their count.
        p.cpu.x[10] = p.wait.progress as u64;
        p.cpu.pc += 4;
        p.end_wait();
    } else if p.wait.blocked {
        let nr = p.wait.nr;
        if act.flags & SA_RESTART == 0 || !restartable(nr) {
            // nanosleep and relative clock_nanosleep report the time left.
            let rem = match nr {
                101 => p.cpu.x[11],
                115 if p.cpu.x[11] & 1 == 0 => p.cpu.x[13],
                _ => 0,
            };
            if rem != 0 {
                let left = p
                    .wait
                    .deadline
                    .map_or(0, |d| d.saturating_sub(crate::host::now_monotonic_ns()));
                let _ = p.mem.write_bytes(rem, &super::abi::ns_to_timespec(left));
            }
            p.cpu.x[10] = (-(EINTR as i64)) as u64;
            p.cpu.pc += 4;
        }
        // Else the pc stays on the ecall: after the handler the call runs again.
        p.end_wait();
    }
    let saved_mask = p.saved_mask.take().unwrap_or(p.signals.mask);
    let info = siginfo(&s);
    let alt = p.signals.altstack;
    match sigframe::setup_frame(
        &mut p.cpu,
        &mut p.mem,
        sig,
        &info,
        &act,
        saved_mask,
        &alt,
        sigframe::TRAMPOLINE,
    ) {
        Ok(()) => {
            p.signals.mask = handler_mask(p.signals.mask, sig, &act);
            p.signals.altstack.disarm_after_delivery();
            if act.flags & SA_RESETHAND != 0 {
                set_action(p, sig, SigAction::default());
            }
        }
        Err(f) => {
            // As Linux's force_sigsegv: the process dies of SIGSEGV.
            let why = format!(
                "no room for the frame of {} at 0x{:x} (stack overflow?)",
                signal_name(sig),
                f.addr
            );
            p.fatal(SIGSEGV, &why);
        }
    }
}

/// Sets the action of `sig` for this task and every task sharing its handlers.
pub fn set_action(p: &mut Process, sig: i32, act: SigAction) {
    p.signals.actions[sig as usize] = act;
    let k = p.kernel.clone();
    let mut kb = k.borrow_mut();
    for t in kb.parked.values_mut() {
        if std::rc::Rc::ptr_eq(&t.sighand_share, &p.sighand_share) {
            t.signals.actions[sig as usize] = act;
        }
    }
}

/// rt_sigreturn(2): back from a handler to what it interrupted.
pub fn rt_sigreturn(p: &mut Process, _a: &[u64; 6]) -> SysResult {
    match sigframe::restore_frame(&mut p.cpu, &mut p.mem) {
        Ok(r) => {
            p.signals.mask = r.mask & !UNBLOCKABLE;
            let mask = p.signals.mask;
            p.take_shared_signals(|sig| mask & sigbit(sig) == 0);
            let sp = p.cpu.x[2];
            p.signals.altstack.restore(r.stack, sp);
            // a0 as the frame had it (the dispatcher writes the result to a0).
            Ok(p.cpu.x[10])
        }
        Err(_) => {
            p.fatal(SIGSEGV, "rt_sigreturn: the signal frame is not valid");
            Ok(0)
        }
    }
}

/// rt_sigtimedwait(2): takes a pending signal of `set`, waiting for one.
pub fn rt_sigtimedwait(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if a[3] != 8 {
        return Err(EINVAL);
    }
    let set = p.mem.read_u64(a[0]).map_err(|_| EFAULT)? & !UNBLOCKABLE;
    p.take_shared_signals(|sig| set & sigbit(sig) != 0);
    // The lowest signal first; among queued real-time ones, the oldest.
    let first = p
        .pending
        .iter()
        .enumerate()
        .filter(|(_, s)| set & sigbit(s.sig) != 0)
        .min_by_key(|(i, s)| (s.sig, *i))
        .map(|(i, _)| i);
    if let Some(i) = first {
        let s = p.pending.remove(i);
        if a[1] != 0 {
            p.mem
                .write_bytes(a[1], &siginfo(&s).to_bytes())
                .map_err(|_| EFAULT)?;
        }
        return Ok(s.sig as u64);
    }
    let timeout = if a[2] == 0 {
        None
    } else {
        Some(super::sys_proc::read_timespec_ns(p, a[2])?)
    };
    if timeout == Some(0) {
        return Err(EAGAIN);
    }
    p.wait_deadline(timeout);
    if p.wait_timed_out() {
        return Err(EAGAIN);
    }
    Err(EBLOCK)
}

/// rt_sigqueueinfo(2): a signal with the caller's siginfo to a process.
pub fn rt_sigqueueinfo(p: &mut Process, a: &[u64; 6]) -> SysResult {
    queue_info(p, a[0] as i32, None, a[1], a[2])
}

/// rt_tgsigqueueinfo(2): the same to one thread.
pub fn rt_tgsigqueueinfo(p: &mut Process, a: &[u64; 6]) -> SysResult {
    queue_info(p, a[0] as i32, Some(a[1] as i32), a[2], a[3])
}

fn queue_info(p: &mut Process, pid: i32, tid: Option<i32>, sig: u64, info: u64) -> SysResult {
    if sig > NSIG as u64 {
        return Err(EINVAL);
    }
    let sig = sig as i32;
    if sig == 0 {
        // Only checks that the target exists.
        let kb = p.kernel.borrow();
        let ok = match tid {
            None => kb.procs.contains_key(&pid),
            Some(t) => kb.procs.get(&pid).is_some_and(|e| e.threads.contains(&t)),
        };
        return if ok { Ok(0) } else { Err(ESRCH) };
    }
    let mut b = [0u8; 128];
    p.mem.read_bytes(info, &mut b).map_err(|_| EFAULT)?;
    let code = i32::from_le_bytes(b[8..12].try_into().unwrap());
    // Only the kernel may claim SI_USER or kernel codes for another process.
    if (code >= 0 || code == -6/* SI_TKILL */) && pid != p.pid {
        return Err(EPERM);
    }
    b[0..4].copy_from_slice(&sig.to_le_bytes());
    let k = p.kernel.clone();
    let mut kb = k.borrow_mut();
    let src = SigSource::Queued(b);
    let ok = match tid {
        None => kernel::queue_to_process(&mut kb, Some(p), pid, sig, src),
        Some(t) => {
            let owns = kb.procs.get(&pid).is_some_and(|e| e.threads.contains(&t));
            owns && kernel::queue_to_thread(&mut kb, Some(p), t, sig, src)
        }
    };
    if ok {
        Ok(0)
    } else {
        Err(ESRCH)
    }
}
