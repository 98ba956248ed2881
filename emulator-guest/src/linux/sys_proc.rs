//! Processes and threads: clone/clone3 (fork, vfork, threads), exit, wait4/waitid, ids,
//! process groups and sessions, kill/tkill/tgkill, futex, and the calls that sleep.
//!
//! The process table and the scheduler are in `kernel.rs`; this file is the system call
//! surface over them. A call that must wait returns `EBLOCK` and is retried by the
//! scheduler (`Process::wait` says what the first attempt decided).

use std::cell::RefCell;
use std::rc::Rc;

use super::errno::*;
use super::kernel::{self, *};
use super::sigframe::{CLD_CONTINUED, CLD_EXITED, CLD_KILLED, CLD_STOPPED};
use super::signal::*;
use super::syscalls::SysResult;
use super::{ExitReason, Process};
use crate::host;

// clone(2) flags.
const CSIGNAL: u64 = 0xff;
const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_NEWNS: u64 = 0x20000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;
/// Namespace and cgroup flags: a container's processes may not make namespaces.
const CLONE_NAMESPACES: u64 = CLONE_NEWNS | 0x0200_0000 /* NEWCGROUP */ | 0x0400_0000 /* NEWUTS */
    | 0x0800_0000 /* NEWIPC */ | 0x1000_0000 /* NEWUSER */ | 0x2000_0000 /* NEWPID */
    | 0x4000_0000 /* NEWNET */ | 0x80 /* NEWTIME */;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

struct CloneArgs {
    flags: u64,
    exit_signal: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
}

/// clone(2): on riscv64 the arguments are (flags, stack, parent_tid, tls, child_tid).
pub fn clone(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let args = CloneArgs {
        flags: a[0] & !CSIGNAL,
        exit_signal: a[0] & CSIGNAL,
        stack: a[1],
        parent_tid: a[2],
        tls: a[3],
        child_tid: a[4],
    };
    do_clone(p, args)
}

/// clone3(2).
pub fn clone3(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let size = a[1];
    // CLONE_ARGS_SIZE_VER0 is 64 bytes; later versions add set_tid and cgroup.
    if !(64..=4096).contains(&size) {
        return Err(EINVAL);
    }
    let mut b = vec![0u8; size as usize];
    p.mem.read_bytes(a[0], &mut b).map_err(|_| EFAULT)?;
    let field = |i: usize| {
        b.get(i * 8..i * 8 + 8)
            .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()))
    };
    // Bytes past what we know must be zero (the kernel's rule for extensible structs).
    if b.len() > 88 && b[88..].iter().any(|&c| c != 0) {
        return Err(E2BIG);
    }
    let (flags, exit_signal, stack, stack_size) = (field(0), field(4), field(5), field(6));
    // The legacy flags (32 bits) and the two clone3 added; anything else is unknown.
    if flags & !(0xffff_ffff | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) != 0 {
        return Err(EINVAL);
    }
    if field(8) != 0 || field(9) != 0 {
        // set_tid: choosing pids needs CAP_SYS_ADMIN in the pid namespace.
        return Err(EPERM);
    }
    if flags & CLONE_INTO_CGROUP != 0 {
        p.log_once("clone3: CLONE_INTO_CGROUP is not supported".into());
        return Err(EOPNOTSUPP);
    }
    if exit_signal > NSIG as u64 || (stack == 0) != (stack_size == 0) {
        return Err(EINVAL);
    }
    if flags & CLONE_PIDFD != 0 {
        p.log_once("clone3: CLONE_PIDFD (pidfds) is not supported".into());
        return Err(EOPNOTSUPP);
    }
    let args = CloneArgs {
        flags,
        exit_signal,
        stack: if stack == 0 { 0 } else { stack + stack_size },
        parent_tid: field(3),
        child_tid: field(2),
        tls: field(7),
    };
    do_clone(p, args)
}

fn do_clone(p: &mut Process, c: CloneArgs) -> SysResult {
    let f = c.flags;
    // The kernel's consistency rules (copy_process).
    if f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0 {
        return Err(EINVAL);
    }
    if f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0 {
        return Err(EINVAL);
    }
    if f & CLONE_CLEAR_SIGHAND != 0 && f & CLONE_SIGHAND != 0 {
        return Err(EINVAL);
    }
    if f & CLONE_NAMESPACES != 0 {
        // No capabilities in the container's user namespace.
        return Err(EPERM);
    }
    if f & (CLONE_PIDFD | CLONE_INTO_CGROUP) != 0 {
        p.log_once("clone: CLONE_PIDFD is not supported".into());
        return Err(EINVAL);
    }
    // Accepted without effect, as Linux with no tracer, no System V semaphore undo lists
    // and one I/O context: CLONE_PTRACE, CLONE_UNTRACED, CLONE_DETACHED, CLONE_SYSVSEM,
    // CLONE_IO. A thread's exit signal is ignored, as on Linux.
    let k = p.kernel.clone();
    let mut kb = k.borrow_mut();
    if kb.parked.len() + 1 >= MAX_TASKS {
        return Err(EAGAIN);
    }
    let tid = kb.alloc_id();
    let thread = f & CLONE_THREAD != 0;
    let pid = if thread { p.pid } else { tid };

    let vm = if f & CLONE_VM != 0 {
        p.vm.clone()
    } else {
        Rc::new(RefCell::new(Some((p.mem.fork(), p.mm.clone()))))
    };
    let files = if f & CLONE_FILES != 0 {
        p.files.clone()
    } else {
        Rc::new(RefCell::new(Some(p.fds.clone())))
    };
    let mut cpu = p.cpu.clone();
    cpu.x[10] = 0;
    cpu.pc = p.cpu.pc + 4;
    cpu.instret = 0;
    if c.stack != 0 {
        cpu.x[2] = c.stack;
    }
    if f & CLONE_SETTLS != 0 {
        cpu.x[4] = c.tls;
    }
    let mut signals = p.signals.clone();
    if f & CLONE_CLEAR_SIGHAND != 0 {
        for a in signals.actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
        }
    }
    if f & CLONE_VM != 0 && f & CLONE_VFORK == 0 {
        // A thread (or CLONE_VM process) starts without the alternate stack.
        signals.altstack = SignalState::default().altstack;
    }
    let child = Process {
        cpu,
        mem: Default::default(),
        mm: Default::default(),
        fds: Default::default(),
        vm,
        files,
        sighand_share: if f & CLONE_SIGHAND != 0 {
            p.sighand_share.clone()
        } else {
            Rc::new(())
        },
        vfs: p.vfs.clone(),
        fs: if f & CLONE_FS != 0 {
            p.fs.clone()
        } else {
            Rc::new(p.fs.copy())
        },
        pid,
        tid,
        kernel: p.kernel.clone(),
        started_ns: host::now_monotonic_ns(),
        creds: p.creds.clone(),
        signals,
        task: p.task.clone(),
        exit: None,
        exit_group: false,
        pending: Vec::new(),
        saved_mask: None,
        wait: Default::default(),
        clear_child_tid: if f & CLONE_CHILD_CLEARTID != 0 {
            c.child_tid
        } else {
            0
        },
        robust_list: (0, 0),
        vfork_child: None,
        vfork_parent: (f & CLONE_VFORK != 0).then_some(p.tid),
        yield_now: false,
        comm: p.comm.clone(),
        exe: p.exe.clone(),
        exe_node: p.exe_node.clone(),
        image: p.image.clone(),
        hostname: p.hostname.clone(),
        host_env: p.host_env.clone(),
        logged: p.logged.clone(),
        log: p.log,
        strace: p.strace,
    };
    let mut child = Box::new(child);
    if f & CLONE_PARENT_SETTID != 0 {
        p.mem
            .write_u32(c.parent_tid, tid as u32)
            .map_err(|_| EFAULT)?;
    }
    if f & CLONE_CHILD_SETTID != 0 {
        // In the child's memory: the same as ours with CLONE_VM.
        if f & CLONE_VM != 0 {
            p.mem
                .write_u32(c.child_tid, tid as u32)
                .map_err(|_| EFAULT)?;
        } else {
            let mut home = child.vm.borrow_mut();
            let (mem, _) = home.as_mut().unwrap();
            mem.write_u32(c.child_tid, tid as u32).map_err(|_| EFAULT)?;
        }
    }
    if thread {
        let e = kb.procs.get_mut(&pid).expect("caller's process exists");
        e.threads.push(tid);
    } else {
        let me = kb
            .procs
            .get(&p.pid)
            .expect("caller's process exists")
            .clone();
        let ppid = if f & CLONE_PARENT != 0 {
            me.ppid
        } else {
            p.pid
        };
        let mut e = ProcEntry::new(ppid, me.pgid, me.sid, tid, p);
        e.exit_signal = c.exit_signal as i32;
        e.execed = false;
        kb.procs.insert(pid, e);
    }
    if f & CLONE_VM != 0 {
        // rseq is per thread: a new thread registers its own.
        child.task.rseq = None;
    }
    // A new task has used no CPU time.
    child.task.cpu_ns = 0;
    kb.add_task(child);
    super::wake::changed();
    if f & CLONE_VFORK != 0 {
        p.vfork_child = Some(tid);
    } else if !thread {
        // The child runs before the parent goes on: on Linux it starts at once on another
        // CPU, so a parent that signals its new child right away (a shell's
        // `sleep 10 & kill -INT $!`) finds it past its start-up (here: SIGINT ignored).
        p.yield_now = true;
    }
    Ok(tid as u64)
}

/// Tasks at most (`RLIMIT_NPROC` is not per user here: one container).
const MAX_TASKS: usize = 4096;

/// exit(2): this thread ends.
pub fn exit(p: &mut Process, a: &[u64; 6]) -> SysResult {
    p.exit = Some(ExitReason::Exited(a[0] as i32 & 0xff));
    Ok(0)
}

/// exit_group(2): every thread of the process ends.
pub fn exit_group(p: &mut Process, a: &[u64; 6]) -> SysResult {
    p.kill_group(ExitReason::Exited(a[0] as i32 & 0xff));
    Ok(0)
}

/// set_tid_address(2).
pub fn set_tid_address(p: &mut Process, a: &[u64; 6]) -> SysResult {
    p.clear_child_tid = a[0];
    Ok(p.tid as u64)
}

/// set_robust_list(2).
pub fn set_robust_list(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if a[1] != 24 {
        return Err(EINVAL);
    }
    p.robust_list = (a[0], a[1]);
    Ok(0)
}

/// get_robust_list(2), for the caller only.
pub fn get_robust_list(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if a[0] != 0 && a[0] as i32 != p.tid {
        return Err(ESRCH);
    }
    p.mem.write_u64(a[1], p.robust_list.0).map_err(|_| EFAULT)?;
    p.mem.write_u64(a[2], 24).map_err(|_| EFAULT)?;
    Ok(0)
}

pub fn getpid(p: &mut Process, _a: &[u64; 6]) -> SysResult {
    Ok(p.pid as u64)
}

pub fn gettid(p: &mut Process, _a: &[u64; 6]) -> SysResult {
    Ok(p.tid as u64)
}

pub fn getppid(p: &mut Process, _a: &[u64; 6]) -> SysResult {
    Ok(p.ppid() as u64)
}

/// The process `pid` names for the *id calls (0: the caller).
fn proc_of(p: &Process, pid: u64) -> Result<i32, Errno> {
    let pid = pid as i32;
    if pid < 0 {
        return Err(ESRCH);
    }
    let pid = if pid == 0 { p.pid } else { pid };
    // Zombies keep their ids (Linux answers getpgid/getsid for them).
    if p.kernel.borrow().procs.contains_key(&pid) {
        Ok(pid)
    } else {
        Err(ESRCH)
    }
}

/// getpgid(2).
pub fn getpgid(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let pid = proc_of(p, a[0])?;
    Ok(p.kernel.borrow().procs[&pid].pgid as u64)
}

/// getsid(2).
pub fn getsid(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let pid = proc_of(p, a[0])?;
    Ok(p.kernel.borrow().procs[&pid].sid as u64)
}

/// setpgid(2), with Linux's rules: the caller or a child of it that has not exec'd, in
/// the caller's session; the group must exist in the session (or be the process's own id).
pub fn setpgid(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let pid = if a[0] as i32 == 0 { p.pid } else { a[0] as i32 };
    let pgid = if a[1] as i32 == 0 { pid } else { a[1] as i32 };
    if pgid < 0 || (a[0] as i32) < 0 {
        return Err(EINVAL);
    }
    let k = p.kernel.clone();
    let mut kb = k.borrow_mut();
    let me = kb.procs[&p.pid].clone();
    let Some(target) = kb.procs.get(&pid).cloned() else {
        return Err(ESRCH);
    };
    if pid != p.pid {
        if target.ppid != p.pid {
            return Err(ESRCH);
        }
        if target.sid != me.sid {
            return Err(EPERM);
        }
        if target.execed {
            return Err(EACCES);
        }
    }
    if target.sid == pid {
        // A session leader cannot change its group.
        return Err(EPERM);
    }
    if pgid != pid
        && !kb
            .procs
            .values()
            .any(|e| e.pgid == pgid && e.sid == me.sid && e.zombie.is_none())
    {
        return Err(EPERM);
    }
    kb.procs.get_mut(&pid).unwrap().pgid = pgid;
    Ok(0)
}

/// setsid(2).
pub fn setsid(p: &mut Process, _a: &[u64; 6]) -> SysResult {
    let k = p.kernel.clone();
    let mut kb = k.borrow_mut();
    let pid = p.pid;
    if kb.procs.values().any(|e| e.pgid == pid) {
        // Already a group leader (or its id is some group's): EPERM.
        return Err(EPERM);
    }
    let e = kb.procs.get_mut(&pid).unwrap();
    e.sid = pid;
    e.pgid = pid;
    Ok(pid as u64)
}

/// Sends `sig` as kill(2) does: `pid` > 0 one process, 0 the caller's group, -1 every
/// process but pid 1 and the caller, < -1 group `-pid`.
pub fn kill(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    let sig = check_sig(a[1])?;
    let src = SigSource::User {
        pid: p.pid,
        uid: p.creds.uid,
    };
    let k = p.kernel.clone();
    let mut kb = k.borrow_mut();
    let targets: Vec<i32> = if pid > 0 {
        vec![pid]
    } else if pid == 0 {
        let pg = kb.procs[&p.pid].pgid;
        kb.pgrp_members(pg)
    } else if pid == -1 {
        kb.procs
            .iter()
            .filter(|(&q, e)| q != 1 && q != p.pid && e.zombie.is_none())
            .map(|(&q, _)| q)
            .collect()
    } else {
        kb.pgrp_members(pid.wrapping_neg())
    };
    let mut any = false;
    for t in targets {
        any |= queue_to_process(&mut kb, Some(p), t, sig, src);
    }
    if !any && pid != -1 {
        return Err(ESRCH);
    }
    Ok(0)
}

fn check_sig(sig: u64) -> Result<i32, Errno> {
    if sig > NSIG as u64 {
        return Err(EINVAL);
    }
    Ok(sig as i32)
}

/// tkill(2).
pub fn tkill(p: &mut Process, a: &[u64; 6]) -> SysResult {
    thread_kill(p, None, a[0] as i32, a[1])
}

/// tgkill(2).
pub fn tgkill(p: &mut Process, a: &[u64; 6]) -> SysResult {
    thread_kill(p, Some(a[0] as i32), a[1] as i32, a[2])
}

fn thread_kill(p: &mut Process, tgid: Option<i32>, tid: i32, sig: u64) -> SysResult {
    let sig = check_sig(sig)?;
    if tid <= 0 || tgid.is_some_and(|g| g <= 0) {
        return Err(EINVAL);
    }
    let src = SigSource::Tkill {
        pid: p.pid,
        uid: p.creds.uid,
    };
    let k = p.kernel.clone();
    let mut kb = k.borrow_mut();
    let owner = kb
        .procs
        .iter()
        .find(|(_, e)| e.threads.contains(&tid))
        .map(|(&pid, _)| pid)
        .ok_or(ESRCH)?;
    if tgid.is_some_and(|g| g != owner) {
        return Err(ESRCH);
    }
    if sig != 0 {
        queue_to_thread(&mut kb, Some(p), tid, sig, src);
    }
    Ok(0)
}

// wait options.
const WNOHANG: u64 = 1;
const WUNTRACED: u64 = 2;
const WEXITED: u64 = 4;
const WCONTINUED: u64 = 8;
const WNOWAIT: u64 = 0x0100_0000;
const WNOTHREAD: u64 = 0x2000_0000;
const WALL: u64 = 0x4000_0000;
const WCLONE: u64 = 0x8000_0000;

/// Which children a wait is for.
enum Which {
    Any,
    Pid(i32),
    Pgid(i32),
}

/// A child state change a wait reports.
struct Report {
    pid: i32,
    uid: u32,
    /// The wait4 status word.
    status: i32,
    /// CLD_* for waitid.
    code: i32,
    /// The exit status or signal, for waitid.
    value: i32,
    /// CPU time of the child and its reaped children (ns).
    cpu_ns: u64,
}

/// Looks for a child state change matching `which` and `options`. `Ok(None)` with
/// `WNOHANG` when children exist but none changed; `EBLOCK` to wait for one.
fn do_wait(p: &mut Process, which: Which, options: u64) -> Result<Option<Report>, Errno> {
    let k = p.kernel.clone();
    let mut kb = k.borrow_mut();
    let me = p.pid;
    let my_pgid = kb.procs[&me].pgid;
    let candidates: Vec<i32> = kb
        .procs
        .iter()
        .filter(|(&c, e)| {
            e.ppid == me
                && match which {
                    Which::Any => true,
                    Which::Pid(q) => c == q,
                    Which::Pgid(0) => e.pgid == my_pgid,
                    Which::Pgid(g) => e.pgid == g,
                }
                // A "clone" child (exit signal other than SIGCHLD) only with __WCLONE,
                // the others only without; __WALL takes both.
                && (options & WALL != 0 || ((e.exit_signal != SIGCHLD) == (options & WCLONE != 0)))
        })
        .map(|(&c, _)| c)
        .collect();
    let _ = WNOTHREAD;
    if candidates.is_empty() {
        return Err(ECHILD);
    }
    for c in candidates {
        let e = kb.procs.get_mut(&c).unwrap();
        if let Some(z) = e.zombie {
            if options & WEXITED == 0 {
                continue;
            }
            let (status, code, value) = match z {
                ExitReason::Exited(s) => ((s & 0xff) << 8, CLD_EXITED, s & 0xff),
                ExitReason::Signaled(s) => (s & 0x7f, CLD_KILLED, s),
            };
            let r = Report {
                pid: c,
                uid: e.uid,
                status,
                code,
                value,
                cpu_ns: e.cpu_ns + e.children_cpu_ns,
            };
            let instret = e.instret + e.children_instret;
            if options & WNOWAIT == 0 {
                kb.procs.remove(&c);
                if let Some(me) = kb.procs.get_mut(&me) {
                    me.children_instret += instret;
                    me.children_cpu_ns += r.cpu_ns;
                }
            }
            return Ok(Some(r));
        }
        if options & WUNTRACED != 0 {
            if let Some(sig) = e.stop_report {
                if options & WNOWAIT == 0 {
                    e.stop_report = None;
                }
                return Ok(Some(Report {
                    pid: c,
                    uid: e.uid,
                    status: (sig << 8) | 0x7f,
                    code: CLD_STOPPED,
                    value: sig,
                    cpu_ns: e.cpu_ns,
                }));
            }
        }
        if options & WCONTINUED != 0 && e.cont_report {
            if options & WNOWAIT == 0 {
                e.cont_report = false;
            }
            return Ok(Some(Report {
                pid: c,
                uid: e.uid,
                status: 0xffff,
                code: CLD_CONTINUED,
                value: SIGCONT,
                cpu_ns: e.cpu_ns,
            }));
        }
    }
    if options & WNOHANG != 0 {
        return Ok(None);
    }
    Err(EBLOCK)
}

/// wait4(2).
pub fn wait4(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    let options = a[2] as u32 as u64;
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(EINVAL);
    }
    let which = match pid {
        -1 => Which::Any,
        0 => Which::Pgid(0),
        q if q > 0 => Which::Pid(q),
        q => Which::Pgid(q.wrapping_neg()),
    };
    let Some(r) = do_wait(p, which, options | WEXITED)? else {
        return Ok(0);
    };
    if a[1] != 0 {
        p.mem.write_u32(a[1], r.status as u32).map_err(|_| EFAULT)?;
    }
    if a[3] != 0 {
        write_rusage(p, a[3], r.cpu_ns)?;
    }
    Ok(r.pid as u64)
}

/// waitid(2).
pub fn waitid(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const P_ALL: u64 = 0;
    const P_PID: u64 = 1;
    const P_PGID: u64 = 2;
    let options = a[3] as u32 as u64;
    if options & !(WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE)
        != 0
        || options & (WUNTRACED | WEXITED | WCONTINUED) == 0
    {
        return Err(EINVAL);
    }
    let id = a[1] as i32;
    let which = match a[0] {
        P_ALL => Which::Any,
        P_PID if id > 0 => Which::Pid(id),
        P_PGID if id >= 0 => Which::Pgid(id),
        P_PID | P_PGID => return Err(EINVAL),
        _ => {
            p.log_once(format!("waitid: id type {} is not supported", a[0]));
            return Err(EINVAL);
        }
    };
    let r = do_wait(p, which, options)?;
    if a[2] != 0 {
        let mut info = [0u8; 128];
        if let Some(r) = &r {
            info[0..4].copy_from_slice(&SIGCHLD.to_le_bytes());
            info[8..12].copy_from_slice(&r.code.to_le_bytes());
            info[16..20].copy_from_slice(&r.pid.to_le_bytes());
            info[20..24].copy_from_slice(&r.uid.to_le_bytes());
            info[24..28].copy_from_slice(&r.value.to_le_bytes());
        }
        p.mem.write_bytes(a[2], &info).map_err(|_| EFAULT)?;
    }
    if a[4] != 0 {
        let ns = r.as_ref().map_or(0, |r| r.cpu_ns);
        write_rusage(p, a[4], ns)?;
    }
    Ok(0)
}

/// A `struct rusage` with `cpu_ns` of user time and nothing else.
pub fn write_rusage(p: &mut Process, addr: u64, cpu_ns: u64) -> Result<(), Errno> {
    let mut b = [0u8; 144];
    let us = cpu_ns / 1000;
    b[0..8].copy_from_slice(&(us / 1_000_000).to_le_bytes());
    b[8..16].copy_from_slice(&(us % 1_000_000).to_le_bytes());
    p.mem.write_bytes(addr, &b).map_err(|_| EFAULT)
}

// futex(2) operations.
const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;

/// The key a futex at `uaddr` is known by: for a process-private one (or one in private
/// memory), the address space and the address; for a shared one in a page of a shared
/// mapping, the page's frame, which every process mapping it names alike (Linux's
/// inode or mm-based keys).
pub(super) fn futex_key(p: &mut Process, uaddr: u64, private: bool) -> (usize, u64) {
    if !private {
        if let Some(k) = p.mem.shared_key(uaddr) {
            return (k, 0);
        }
    }
    (Rc::as_ptr(&p.vm) as usize, uaddr)
}

/// futex(2): WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP, WAIT_BITSET, WAKE_BITSET.
pub fn futex(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let uaddr = a[0];
    let op = a[1] & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let private = a[1] & FUTEX_PRIVATE_FLAG != 0;
    let key = futex_key(p, uaddr, private);
    if !uaddr.is_multiple_of(4) {
        return Err(EINVAL);
    }
    match op {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = futex_bitset(op, a[5])?;
            if p.wait.blocked {
                // A retry: woken, timed out, or still waiting.
                let tid = p.tid;
                if p.kernel.borrow_mut().futex_woken.remove(&tid) {
                    return Ok(0);
                }
                if p.wait_timed_out() {
                    return Err(ETIMEDOUT);
                }
                return Err(EBLOCK);
            }
            let v = p.mem.read_u32(uaddr).map_err(|_| EFAULT)?;
            if v != a[2] as u32 {
                return Err(EAGAIN);
            }
            let deadline = if a[3] == 0 {
                None
            } else {
                let t = read_timespec_ns(p, a[3])?;
                Some(if op == FUTEX_WAIT {
                    host::now_monotonic_ns().saturating_add(t)
                } else if a[1] & FUTEX_CLOCK_REALTIME != 0 {
                    // An absolute CLOCK_REALTIME time, turned into monotonic.
                    let now_rt = host::now_realtime_ns();
                    host::now_monotonic_ns().saturating_add(t.saturating_sub(now_rt))
                } else {
                    t
                })
            };
            p.wait_until(deadline);
            if p.wait_timed_out() {
                return Err(ETIMEDOUT);
            }
            let tid = p.tid;
            let mut kb = p.kernel.borrow_mut();
            kb.futex_woken.remove(&tid);
            kb.futex_waiters.push(FutexWaiter { tid, key, bitset });
            Err(EBLOCK)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = futex_bitset(op, a[5])?;
            Ok(kernel::futex_wake(p, key, a[2] as u32, bitset) as u64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            if op == FUTEX_CMP_REQUEUE {
                let v = p.mem.read_u32(uaddr).map_err(|_| EFAULT)?;
                if v != a[5] as u32 {
                    return Err(EAGAIN);
                }
            }
            let (nwake, nrequeue) = (a[2] as u32, a[3] as u32);
            if (nwake as i32) < 0 || (nrequeue as i32) < 0 {
                return Err(EINVAL);
            }
            let woken = kernel::futex_wake(p, key, nwake, u32::MAX);
            let key2 = futex_key(p, a[4], private);
            let mut moved = 0;
            let mut kb = p.kernel.borrow_mut();
            for w in kb.futex_waiters.iter_mut() {
                if moved >= nrequeue {
                    break;
                }
                if w.key == key {
                    w.key = key2;
                    moved += 1;
                }
            }
            Ok((woken + moved) as u64)
        }
        FUTEX_WAKE_OP => {
            let uaddr2 = a[4];
            let encoded = a[5] as u32;
            let old = p.mem.read_u32(uaddr2).map_err(|_| EFAULT)?;
            let shift = encoded >> 31 != 0;
            let opkind = (encoded >> 28) & 7;
            let cmp = (encoded >> 24) & 15;
            let mut oparg = (encoded >> 12) & 0xfff;
            let cmparg = encoded & 0xfff;
            // Sign-extend the 12-bit arguments, as the kernel does.
            let sext = |v: u32| ((v << 20) as i32 >> 20) as u32;
            oparg = sext(oparg);
            let cmparg = sext(cmparg);
            if shift {
                oparg = 1u32.wrapping_shl(oparg & 31);
            }
            let new = match opkind {
                0 => oparg,
                1 => old.wrapping_add(oparg),
                2 => old | oparg,
                3 => old & !oparg,
                4 => old ^ oparg,
                _ => return Err(ENOSYS),
            };
            p.mem.write_u32(uaddr2, new).map_err(|_| EFAULT)?;
            let (o, c) = (old as i32, cmparg as i32);
            let hit = match cmp {
                0 => o == c,
                1 => o != c,
                2 => o < c,
                3 => o <= c,
                4 => o > c,
                5 => o >= c,
                _ => return Err(ENOSYS),
            };
            let mut n = kernel::futex_wake(p, key, a[2] as u32, u32::MAX);
            if hit {
                let key2 = futex_key(p, uaddr2, private);
                n += kernel::futex_wake(p, key2, a[3] as u32, u32::MAX);
            }
            Ok(n as u64)
        }
        _ => {
            p.log_once(format!("futex: operation {op} is not supported: ENOSYS"));
            Err(ENOSYS)
        }
    }
}

/// The bitset of a futex operation: every bit for WAIT/WAKE, the argument for the
/// *_BITSET forms (where 0 is `EINVAL`).
fn futex_bitset(op: u64, arg: u64) -> Result<u32, Errno> {
    match op {
        FUTEX_WAIT_BITSET | FUTEX_WAKE_BITSET if arg as u32 == 0 => Err(EINVAL),
        FUTEX_WAIT_BITSET | FUTEX_WAKE_BITSET => Ok(arg as u32),
        _ => Ok(u32::MAX),
    }
}

/// Reads a `struct timespec` as nanoseconds (`EINVAL` if it is not a valid one).
pub(super) fn read_timespec_ns(p: &mut Process, addr: u64) -> Result<u64, Errno> {
    let sec = p.mem.read_u64(addr).map_err(|_| EFAULT)? as i64;
    let nsec = p.mem.read_u64(addr + 8).map_err(|_| EFAULT)? as i64;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec as u64))
}

/// Sleeps until the deadline (set on the first attempt) passes.
fn sleep_until(p: &mut Process, deadline: Option<u64>) -> SysResult {
    p.wait_until(deadline);
    if p.wait_timed_out() {
        return Ok(0);
    }
    Err(EBLOCK)
}

/// nanosleep(2).
pub fn nanosleep(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if !p.wait.deadline_set {
        let t = read_timespec_ns(p, a[0])?;
        p.wait_deadline(Some(t));
    }
    let d = p.wait.deadline;
    sleep_until(p, d)
}

/// clock_nanosleep(2).
pub fn clock_nanosleep(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const TIMER_ABSTIME: u64 = 1;
    const CLOCK_REALTIME: u64 = 0;
    if !p.wait.deadline_set {
        if a[0] > 11 || matches!(a[0], 2 | 3) {
            // Unknown clocks, and sleeping on CPU-time clocks, are refused.
            return Err(EINVAL);
        }
        let t = read_timespec_ns(p, a[2])?;
        let now = host::now_monotonic_ns();
        let deadline = if a[1] & TIMER_ABSTIME != 0 {
            if a[0] == CLOCK_REALTIME {
                now.saturating_add(t.saturating_sub(host::now_realtime_ns()))
            } else {
                t
            }
        } else {
            now.saturating_add(t)
        };
        p.wait_until(Some(deadline));
    }
    let d = p.wait.deadline;
    sleep_until(p, d)
}

/// sched_yield(2): the next task runs.
pub fn sched_yield(p: &mut Process, _a: &[u64; 6]) -> SysResult {
    p.yield_now = true;
    Ok(0)
}

/// rt_sigsuspend(2): waits for a signal with the given mask in place.
pub fn rt_sigsuspend(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if a[1] != 8 {
        return Err(EINVAL);
    }
    if !p.wait.blocked {
        let set = p.mem.read_u64(a[0]).map_err(|_| EFAULT)?;
        p.saved_mask = Some(p.signals.mask);
        p.signals.mask = set & !UNBLOCKABLE;
    }
    let mask = p.signals.mask;
    p.take_shared_signals(|sig| mask & sigbit(sig) == 0);
    // Ends (EINTR) when a handler runs: the delivery code interrupts it.
    Err(EBLOCK)
}

/// rt_sigpending(2).
pub fn rt_sigpending(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if a[1] > 8 {
        return Err(EINVAL);
    }
    let set = p.pending_set() & p.signals.mask;
    let b = set.to_le_bytes();
    p.mem
        .write_bytes(a[0], &b[..a[1] as usize])
        .map_err(|_| EFAULT)?;
    Ok(0)
}

const ITIMER_REAL: u64 = 0;

/// Timer `which` of the caller as (value, interval) in ns, value 0 when disarmed. The CPU
/// timers count down by the caller's turns; the running turn is counted as it goes.
fn itimer_now(p: &Process, which: u64) -> (u64, u64) {
    let kb = p.kernel.borrow();
    let e = &kb.procs[&p.pid];
    if which == ITIMER_REAL {
        return match e.itimer_real {
            Some((d, i)) => (d.saturating_sub(host::now_monotonic_ns()).max(1), i),
            None => (0, 0),
        };
    }
    match e.itimer_cpu[which as usize - 1] {
        Some((left, i)) => {
            let now = host::now_monotonic_ns().saturating_sub(kb.turn_start);
            (left.saturating_sub(now).max(1), i)
        }
        None => (0, 0),
    }
}

/// Writes a `struct itimerval` (interval first, then value; timevals).
fn put_itimerval(p: &mut Process, addr: u64, (value, interval): (u64, u64)) -> Result<(), Errno> {
    let mut b = [0u8; 32];
    for (i, ns) in [interval, value].into_iter().enumerate() {
        // Round up to whole microseconds, as the kernel does for a running timer.
        let us = ns.div_ceil(1000);
        b[i * 16..i * 16 + 8].copy_from_slice(&(us / 1_000_000).to_le_bytes());
        b[i * 16 + 8..i * 16 + 16].copy_from_slice(&(us % 1_000_000).to_le_bytes());
    }
    p.mem.write_bytes(addr, &b).map_err(|_| EFAULT)
}

/// getitimer(2).
pub fn getitimer(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if a[0] > 2 {
        return Err(EINVAL);
    }
    let v = itimer_now(p, a[0]);
    put_itimerval(p, a[1], v)?;
    Ok(0)
}

/// setitimer(2): ITIMER_REAL (SIGALRM, wall time), ITIMER_VIRTUAL (SIGVTALRM) and
/// ITIMER_PROF (SIGPROF), both counting the process's CPU time: the host time its tasks
/// run, system calls included (there is no separate kernel time here).
pub fn setitimer(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let which = a[0];
    if which > 2 {
        return Err(EINVAL);
    }
    let old = itimer_now(p, which);
    if a[1] != 0 {
        let mut tv = [0u64; 4];
        for (i, v) in tv.iter_mut().enumerate() {
            *v = p.mem.read_u64(a[1] + i as u64 * 8).map_err(|_| EFAULT)?;
        }
        if tv[1] >= 1_000_000 || tv[3] >= 1_000_000 || (tv[0] as i64) < 0 || (tv[2] as i64) < 0 {
            return Err(EINVAL);
        }
        let interval = tv[0].saturating_mul(1_000_000_000) + tv[1] * 1000;
        let value = tv[2].saturating_mul(1_000_000_000) + tv[3] * 1000;
        let mut kb = p.kernel.borrow_mut();
        if which == ITIMER_REAL {
            let timer =
                (value > 0).then(|| (host::now_monotonic_ns().saturating_add(value), interval));
            kb.procs.get_mut(&p.pid).unwrap().itimer_real = timer;
        } else {
            // Counted from now: the running turn's time so far is not charged to it.
            let ran = host::now_monotonic_ns().saturating_sub(kb.turn_start);
            let timer = (value > 0).then(|| (value.saturating_add(ran), interval));
            kb.procs.get_mut(&p.pid).unwrap().itimer_cpu[which as usize - 1] = timer;
        }
    }
    if a[2] != 0 {
        put_itimerval(p, a[2], old)?;
    }
    Ok(0)
}

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD_ID: i32 = 4;

/// timer_create(2): CLOCK_REALTIME/MONOTONIC/BOOTTIME timers that signal the process
/// (SIGEV_SIGNAL), a thread (SIGEV_THREAD_ID, which glibc's SIGEV_THREAD uses) or nobody.
pub fn timer_create(p: &mut Process, a: &[u64; 6]) -> SysResult {
    use super::abi::clock::*;
    let clock = a[0];
    if !matches!(
        clock,
        CLOCK_REALTIME
            | CLOCK_MONOTONIC
            | CLOCK_MONOTONIC_RAW
            | CLOCK_REALTIME_COARSE
            | CLOCK_MONOTONIC_COARSE
            | CLOCK_BOOTTIME
    ) {
        p.log_once(format!("timer_create: clock {clock} is not supported"));
        return Err(EINVAL);
    }
    let realtime = matches!(clock, CLOCK_REALTIME | CLOCK_REALTIME_COARSE);
    let (mut sig, mut value, mut notify, mut tid) = (SIGALRM, 0, SIGEV_SIGNAL, None);
    if a[1] != 0 {
        value = p.mem.read_u64(a[1]).map_err(|_| EFAULT)?;
        sig = p.mem.read_u32(a[1] + 8).map_err(|_| EFAULT)? as i32;
        notify = p.mem.read_u32(a[1] + 12).map_err(|_| EFAULT)? as i32;
        if notify == SIGEV_THREAD_ID {
            tid = Some(p.mem.read_u32(a[1] + 16).map_err(|_| EFAULT)? as i32);
        }
    }
    match notify {
        SIGEV_NONE => sig = 0,
        SIGEV_SIGNAL | SIGEV_THREAD_ID => {
            if sig <= 0 || sig as usize > NSIG {
                return Err(EINVAL);
            }
        }
        _ => return Err(EINVAL),
    }
    let k = p.kernel.clone();
    let mut kb = k.borrow_mut();
    if let Some(t) = tid {
        if !kb.procs[&p.pid].threads.contains(&t) {
            return Err(EINVAL);
        }
    }
    let e = kb.procs.get_mut(&p.pid).unwrap();
    let id = match e.timers.iter().position(Option::is_none) {
        Some(i) => i,
        None => {
            e.timers.push(None);
            e.timers.len() - 1
        }
    };
    if a[1] == 0 {
        value = id as u64;
    }
    e.timers[id] = Some(PosixTimer {
        realtime,
        sig,
        value,
        tid,
        deadline: None,
        interval: 0,
        overrun: 0,
    });
    drop(kb);
    p.mem.write_u32(a[2], id as u32).map_err(|_| EFAULT)?;
    Ok(0)
}

fn with_timer<R>(
    p: &Process,
    id: u64,
    f: impl FnOnce(&mut Option<PosixTimer>) -> R,
) -> Result<R, Errno> {
    let mut kb = p.kernel.borrow_mut();
    let e = kb.procs.get_mut(&p.pid).unwrap();
    match e.timers.get_mut(id as usize) {
        Some(t @ Some(_)) => Ok(f(t)),
        _ => Err(EINVAL),
    }
}

/// The (value, interval) of a timer as an itimerspec.
fn put_itimerspec(p: &mut Process, addr: u64, t: &PosixTimer) -> Result<(), Errno> {
    let left = t
        .deadline
        .map_or(0, |d| d.saturating_sub(host::now_monotonic_ns()).max(1));
    put_itimerspec_ns(p, addr, left, t.interval)
}

/// When a timer set to `value` ns expires (monotonic ns; `None`: disarmed): `value` from
/// now, or at `value` on its clock if `abstime` (CLOCK_REALTIME if `realtime`, kept relative
/// to the monotonic clock as of now).
pub(super) fn timer_deadline(value: u64, abstime: bool, realtime: bool) -> Option<u64> {
    let now = host::now_monotonic_ns();
    if value == 0 {
        None
    } else if abstime && realtime {
        Some(now.saturating_add(value.saturating_sub(host::now_realtime_ns())))
    } else if abstime {
        Some(value)
    } else {
        Some(now.saturating_add(value))
    }
}

/// Writes (value, interval), in ns, as a `struct itimerspec`.
pub(super) fn put_itimerspec_ns(
    p: &mut Process,
    addr: u64,
    value: u64,
    interval: u64,
) -> Result<(), Errno> {
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(&super::abi::ns_to_timespec(interval));
    b[16..].copy_from_slice(&super::abi::ns_to_timespec(value));
    p.mem.write_bytes(addr, &b).map_err(|_| EFAULT)
}

/// timer_settime(2).
pub fn timer_settime(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const TIMER_ABSTIME: u64 = 1;
    let old = with_timer(p, a[0], |t| t.unwrap())?;
    let interval = read_timespec_ns(p, a[2])?;
    let value = read_timespec_ns(p, a[2] + 16)?;
    let deadline = timer_deadline(value, a[1] & TIMER_ABSTIME != 0, old.realtime);
    with_timer(p, a[0], |t| {
        let t = t.as_mut().unwrap();
        t.deadline = deadline;
        t.interval = interval;
        t.overrun = 0;
    })?;
    if a[3] != 0 {
        put_itimerspec(p, a[3], &old)?;
    }
    Ok(0)
}

/// timer_gettime(2).
pub fn timer_gettime(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let t = with_timer(p, a[0], |t| t.unwrap())?;
    put_itimerspec(p, a[1], &t)?;
    Ok(0)
}

/// timer_getoverrun(2).
pub fn timer_getoverrun(p: &mut Process, a: &[u64; 6]) -> SysResult {
    Ok(with_timer(p, a[0], |t| t.unwrap().overrun)? as u64)
}

/// timer_delete(2).
pub fn timer_delete(p: &mut Process, a: &[u64; 6]) -> SysResult {
    with_timer(p, a[0], |t| *t = None)?;
    Ok(0)
}
