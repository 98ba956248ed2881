//! The process table and the scheduler: many guest processes and threads in one instance.
//!
//! Every task (a thread; a process is a thread group) is a `Process`: the registers, the
//! signal state and what the task sees. Exactly one task runs at a time. The others are
//! *parked* in `Kernel::parked`, and what they share with others lives in *homes*
//! (`Process::vm` for the address space, `Process::files` for the descriptor table): a
//! running task checks its address space and descriptors out of their homes and back in when
//! it stops, so threads (`CLONE_VM`, `CLONE_FILES`) see one and the same `Memory` and
//! `FdTable` while handlers keep using plain `p.mem` and `p.fds`.
//!
//! Scheduling is round-robin with an instruction budget (`SLICE`), so a spinning task cannot
//! starve the others. A system call that would wait returns the internal `EBLOCK`: the task
//! parks with its `pc` still on the `ecall`, and is *retried* (the call runs again, seeing
//! `Process::wait` from the first attempt: its deadline, futex wake-up...) when anything
//! may have changed: the event count moved (`wake.rs`: an object changed, a call completed, a task
//! ended), its
//! deadline passed, host stdin became ready, or a signal came. When every task waits, the
//! module waits in the host (`poll_oneoff` on stdin and the clock): never a busy spin. When
//! every task waits and nothing can ever wake one, that is a deadlock: rvbox says so and
//! ends the run.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::rc::Rc;

use super::errno::*;
use super::sigframe::{
    BUS_ADRERR, CLD_CONTINUED, CLD_EXITED, CLD_KILLED, CLD_STOPPED, ILL_ILLOPC, SEGV_ACCERR,
    SEGV_MAPERR, TRAP_BRKPT,
};
use super::signal::*;
use super::{ExitReason, Process};
use crate::cpu::Exit;
use crate::host;

/// Instructions a task runs before the next one gets its turn.
pub const SLICE: u64 = 1 << 20;

/// Where a signal came from (what its `siginfo_t` says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigSource {
    /// kill(2), and SIGPIPE (SI_USER, with the sender's pid and uid).
    User { pid: i32, uid: u32 },
    /// SIGPIPE for a write to a host stream the host closed (seen as `User`): rvbox's
    /// own way of ending a run whose output is gone, so pid 1 is not spared it.
    HostPipe { pid: i32, uid: u32 },
    /// tkill/tgkill (SI_TKILL).
    Tkill { pid: i32, uid: u32 },
    /// The kernel: SIGALRM, a terminal's SIGINT... (SI_KERNEL).
    Kernel,
    /// A fault: `code` is SEGV_MAPERR, ILL_ILLOPC..., `addr` the faulting address.
    Fault { code: i32, addr: u64 },
    /// A child changed state (SIGCHLD): `code` is CLD_*.
    Child {
        pid: i32,
        uid: u32,
        code: i32,
        status: i32,
    },
    /// rt_sigqueueinfo: the caller's own siginfo.
    Queued([u8; 128]),
    /// A POSIX timer expired (SI_TIMER).
    Timer { id: i32, overrun: i32, value: u64 },
}

/// A POSIX timer (timer_create).
#[derive(Debug, Clone, Copy)]
pub struct PosixTimer {
    /// Absolute CLOCK_REALTIME times are kept relative to the monotonic clock.
    pub realtime: bool,
    /// The signal (0 for SIGEV_NONE), its value, and a thread for SIGEV_THREAD_ID.
    pub sig: i32,
    pub value: u64,
    pub tid: Option<i32>,
    /// When it expires next (monotonic ns) and its interval (0: once).
    pub deadline: Option<u64>,
    pub interval: u64,
    /// Expirations missed while its signal was pending.
    pub overrun: i32,
}

/// A signal waiting for delivery to one task.
#[derive(Debug, Clone, Copy)]
pub struct PendingSignal {
    pub sig: i32,
    pub source: SigSource,
    /// Sent to the process, not to this thread: another thread of it that does not block
    /// it (or waits for it) may take it (`take_shared_signals`).
    pub shared: bool,
}

/// What a task that returned `EBLOCK` waits for. Kept across retries of the same call and
/// reset when the call completes.
#[derive(Default)]
pub struct Wait {
    /// The end of a FIFO whose open waits for the other side (counted meanwhile).
    pub fifo: Option<super::pipe::PipeEnd>,
    /// The call returned `EBLOCK` at least once: this is a retry.
    pub blocked: bool,
    /// The system call number.
    pub nr: u64,
    /// `wake::events()` when it last blocked: it is retried once that moves.
    pub events: u64,
    /// When the wait times out (monotonic ns).
    pub deadline: Option<u64>,
    /// The deadline was computed (on the first attempt).
    pub deadline_set: bool,
    /// Host stdin becoming readable may end the wait.
    pub stdin: bool,
    /// Bytes a blocking pipe write has written so far (it returns when all are).
    pub progress: usize,
    /// The descriptors' objects it waits on, when it is that kind of wait (for the
    /// deadlock report).
    pub on: Option<WaitOn>,
}

/// What a parked call waits on, when that is the objects behind descriptors.
pub enum WaitOn {
    /// read, write and the like on one descriptor.
    File {
        fd: i32,
        file: Rc<super::fd::OpenFile>,
        write: bool,
    },
    /// poll, select, epoll_wait: any of these descriptors, for these events.
    Poll(Vec<(i32, Rc<super::fd::OpenFile>, u16)>),
}

/// A thread group (what has a pid), alive or a zombie.
#[derive(Debug, Clone)]
pub struct ProcEntry {
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// Live threads (tids); empty for a zombie.
    pub threads: Vec<i32>,
    /// Set when the whole group ends (exit_group, a fatal signal, the last thread gone).
    pub zombie: Option<ExitReason>,
    /// exit_group or a fatal signal: every thread ends with this.
    pub group_exit: Option<ExitReason>,
    /// How the leader thread ended (the status if the group ends thread by thread).
    pub leader_exit: Option<ExitReason>,
    /// Signal the parent gets when this process ends (SIGCHLD, or clone's CSIGNAL).
    pub exit_signal: i32,
    /// Stopped by a stop signal.
    pub stopped: bool,
    /// A stop (the signal) not yet reported to `wait(WUNTRACED)`.
    pub stop_report: Option<i32>,
    /// A continue not yet reported to `wait(WCONTINUED)`.
    pub cont_report: bool,
    /// Has called execve (setpgid on it from the parent is then EACCES).
    pub execed: bool,
    /// The name, kept for the zombie.
    pub comm: Vec<u8>,
    /// User id, for siginfo of SIGCHLD.
    pub uid: u32,
    /// Instructions run by its threads, and by its reaped children.
    pub instret: u64,
    pub children_instret: u64,
    /// Host time its threads ran (their CPU time), and its reaped children's.
    pub cpu_ns: u64,
    pub children_cpu_ns: u64,
    /// ITIMER_REAL: when it fires next (monotonic ns) and its interval (0: once).
    pub itimer_real: Option<(u64, u64)>,
    /// ITIMER_VIRTUAL and ITIMER_PROF: CPU time left (ns) and interval. Both count the
    /// same CPU time (the guest's system calls run in the same host time as its code).
    pub itimer_cpu: [Option<(u64, u64)>; 2],
    /// POSIX timers by id.
    pub timers: Vec<Option<PosixTimer>>,
    /// PR_SET_PDEATHSIG: the signal this process gets when its parent dies.
    pub pdeathsig: i32,
}

impl ProcEntry {
    /// A live process of one thread, `tid`, running task `p`'s program (its name and
    /// user), whose parent gets SIGCHLD when it ends.
    pub fn new(ppid: i32, pgid: i32, sid: i32, tid: i32, p: &Process) -> ProcEntry {
        ProcEntry {
            ppid,
            pgid,
            sid,
            threads: vec![tid],
            zombie: None,
            group_exit: None,
            leader_exit: None,
            exit_signal: SIGCHLD,
            stopped: false,
            stop_report: None,
            cont_report: false,
            execed: true,
            comm: p.comm.clone(),
            uid: p.creds.uid,
            instret: 0,
            children_instret: 0,
            cpu_ns: 0,
            children_cpu_ns: 0,
            itimer_cpu: [None; 2],
            itimer_real: None,
            timers: Vec::new(),
            pdeathsig: 0,
        }
    }
}

/// A task waiting in `FUTEX_WAIT`.
#[derive(Debug, Clone)]
pub struct FutexWaiter {
    pub tid: i32,
    /// The address space (`Rc::as_ptr` of its home) and the address.
    pub key: (usize, u64),
    pub bitset: u32,
}

pub struct Kernel {
    /// Tasks that are not running, by tid.
    pub parked: BTreeMap<i32, Box<Process>>,
    /// Thread groups by pid, zombies included.
    pub procs: BTreeMap<i32, ProcEntry>,
    /// Live tids in round-robin order.
    order: VecDeque<i32>,
    next_id: i32,
    pub futex_waiters: Vec<FutexWaiter>,
    /// Tasks a `FUTEX_WAKE` woke (their wait returns 0 when retried).
    pub futex_woken: HashSet<i32>,
    /// How pid 1 ended: the end of the run.
    pub init_exit: Option<ExitReason>,
    /// Instructions run by every task so far.
    pub instret: u64,
    /// When the running task's turn began (monotonic ns): its CPU time so far in this turn
    /// is the time since.
    pub turn_start: u64,
    /// The most host memory guest pages used at once in one address space.
    pub peak_resident: u64,
    /// The terminal, when the host gave the module one (`tty.rs`).
    pub terminal: Option<super::tty::Terminal>,
    /// When the run must end (monotonic ns; `RVBOX_TIMEOUT`).
    pub run_deadline: Option<u64>,
    /// The run ended at `run_deadline`.
    pub timed_out: bool,
    /// Check the wake-up invariant whenever every task waits (`RVBOX_CHECK`, see
    /// `check_wakeups`).
    pub check: bool,
    /// The settings `TCGETS`/`TCSETS` keep for a host terminal that the guest does not run
    /// (without `RVBOX_TTY`): not applied, but one set per run, as a terminal's settings
    /// belong to the device, not to the process that set them.
    pub host_termios: super::abi::Termios,
}

/// How a task's turn ended.
enum Turn {
    /// Budget used up, or it yielded.
    Ran,
    /// Waits (`EBLOCK`, a vfork child, a stop).
    Parked,
    /// The task ended.
    Exited,
}

impl Kernel {
    pub fn new() -> Rc<RefCell<Kernel>> {
        Rc::new(RefCell::new(Kernel {
            parked: BTreeMap::new(),
            procs: BTreeMap::new(),
            order: VecDeque::new(),
            next_id: 1,
            futex_waiters: Vec::new(),
            futex_woken: HashSet::new(),
            init_exit: None,
            instret: 0,
            turn_start: 0,
            peak_resident: 0,
            terminal: None,
            run_deadline: None,
            timed_out: false,
            check: cfg!(debug_assertions),
            host_termios: super::abi::Termios::default(),
        }))
    }

    /// A fresh pid/tid.
    pub fn alloc_id(&mut self) -> i32 {
        loop {
            let id = self.next_id;
            self.next_id = if self.next_id >= PID_MAX { 2 } else { id + 1 };
            if !self.procs.contains_key(&id) && !self.parked.contains_key(&id) {
                return id;
            }
        }
    }

    /// Adds a new task, parked, at the end of the run queue.
    pub fn add_task(&mut self, p: Box<Process>) {
        self.order.push_back(p.tid);
        self.parked.insert(p.tid, p);
    }

    /// Pids of the live (not zombie) processes in process group `pgid`.
    pub fn pgrp_members(&self, pgid: i32) -> Vec<i32> {
        self.procs
            .iter()
            .filter(|(_, e)| e.pgid == pgid && e.zombie.is_none())
            .map(|(&pid, _)| pid)
            .collect()
    }

    fn forget_futex_wait(&mut self, tid: i32) {
        self.futex_waiters.retain(|w| w.tid != tid);
        self.futex_woken.remove(&tid);
    }
}

/// The largest pid (`/proc/sys/kernel/pid_max` default for small machines).
pub const PID_MAX: i32 = 32768;

/// Runs the first process (pid 1) and everything it starts, until pid 1 ends or the run's
/// deadline (`Kernel::run_deadline`) passes. Returns how pid 1 ended; at the deadline, as
/// if SIGKILL had ended every process (nothing of theirs runs any more, no handler),
/// with `Kernel::timed_out` set.
pub fn run(mut first: Process) -> ExitReason {
    let k = first.kernel.clone();
    {
        let mut kb = k.borrow_mut();
        let pid = kb.alloc_id();
        first.pid = pid;
        first.tid = pid;
        let entry = ProcEntry::new(0, pid, pid, pid, &first);
        kb.procs.insert(pid, entry);
        // Its session's controlling terminal, as a container runtime makes it.
        if let Some(t) = kb.terminal.as_mut() {
            t.tty.attach(pid, pid);
        }
        first.check_in();
        kb.add_task(Box::new(first));
    }
    let mut last = 0usize;
    loop {
        if let Some(e) = k.borrow().init_exit {
            return e;
        }
        let deadline = k.borrow().run_deadline;
        if deadline.is_some_and(|d| host::now_monotonic_ns() >= d) {
            k.borrow_mut().timed_out = true;
            return ExitReason::Signaled(SIGKILL);
        }
        fire_timers(&k);
        super::tty::pump_if_due(&mut k.borrow_mut());
        let Some(tid) = pick(&k, &mut last) else {
            if k.borrow().check {
                if let Some(e) = check_wakeups(&k) {
                    return e;
                }
            }
            if !idle(&k) {
                return deadlock(&k);
            }
            continue;
        };
        let mut p = k
            .borrow_mut()
            .parked
            .remove(&tid)
            .expect("picked task is parked");
        p.check_out();
        let before = p.cpu.instret;
        let t0 = host::now_monotonic_ns();
        k.borrow_mut().turn_start = t0;
        let turn = p.turn();
        {
            let mut kb = k.borrow_mut();
            let ran = p.cpu.instret - before;
            let spent = host::now_monotonic_ns().saturating_sub(t0);
            kb.instret += ran;
            kb.peak_resident = kb.peak_resident.max(p.mem.resident_bytes());
            p.task.cpu_ns += spent;
            if let Some(e) = kb.procs.get_mut(&p.pid) {
                e.instret += ran;
                e.cpu_ns += spent;
            }
            charge_cpu_timers(&mut kb, &mut p, spent);
        }
        match turn {
            Turn::Exited => {
                p.thread_exit_cleanup();
                p.check_in();
                finish_task(&k, p);
            }
            Turn::Ran | Turn::Parked => {
                p.check_in();
                k.borrow_mut().parked.insert(tid, p);
            }
        }
    }
}

/// Counts `spent` ns of CPU time against `p`'s process's ITIMER_VIRTUAL and ITIMER_PROF;
/// one that runs out sends SIGVTALRM or SIGPROF and is rearmed with its interval.
fn charge_cpu_timers(kb: &mut Kernel, p: &mut Process, spent: u64) {
    let pid = p.pid;
    let Some(e) = kb.procs.get_mut(&pid) else {
        return;
    };
    let mut fired = Vec::new();
    for (i, t) in e.itimer_cpu.iter_mut().enumerate() {
        let Some((left, interval)) = *t else { continue };
        if left > spent {
            *t = Some((left - spent, interval));
            continue;
        }
        // As Linux, a timer whose period is shorter than the time charged fires once.
        *t = (interval > 0).then_some((interval, interval));
        fired.push(if i == 0 { SIGVTALRM } else { SIGPROF });
    }
    for sig in fired {
        // The task that ran is not parked yet: it is handed in as the running one.
        queue_to_process(kb, Some(&mut *p), pid, sig, SigSource::Kernel);
    }
}

/// Sends SIGALRM for every ITIMER_REAL that has expired, and rearms interval timers;
/// counts the expirations of timerfds.
fn fire_timers(k: &Rc<RefCell<Kernel>>) {
    let mut kb = k.borrow_mut();
    let now = host::now_monotonic_ns();
    super::timerfd::fire(now);
    let due: Vec<i32> = kb
        .procs
        .iter()
        .filter(|(_, e)| e.zombie.is_none() && e.itimer_real.is_some_and(|(d, _)| d <= now))
        .map(|(&pid, _)| pid)
        .collect();
    for pid in due {
        let e = kb.procs.get_mut(&pid).unwrap();
        let (d, interval) = e.itimer_real.unwrap();
        e.itimer_real = (interval > 0).then(|| {
            // Missed periods are skipped, as Linux counts them as overruns.
            let late = (now - d) / interval;
            (d + (late + 1) * interval, interval)
        });
        queue_to_process(&mut kb, None, pid, SIGALRM, SigSource::Kernel);
    }
    let mut fired = Vec::new();
    for (&pid, e) in kb.procs.iter_mut() {
        if e.zombie.is_some() {
            continue;
        }
        for (id, t) in e.timers.iter_mut().enumerate() {
            let Some(t) = t else { continue };
            let Some(d) = t.deadline.filter(|&d| d <= now) else {
                continue;
            };
            let late = (now - d).checked_div(t.interval).unwrap_or(0);
            t.deadline = (t.interval > 0).then(|| d + (late + 1) * t.interval);
            if t.sig != 0 {
                fired.push((pid, id as i32, *t, late as i32));
            }
        }
    }
    for (pid, id, t, late) in fired {
        let src = SigSource::Timer {
            id,
            overrun: late,
            value: t.value,
        };
        match t.tid {
            Some(tid) => {
                queue_to_thread(&mut kb, None, tid, t.sig, src);
            }
            None => {
                queue_to_process(&mut kb, None, pid, t.sig, src);
            }
        }
    }
}

/// The next task to run, round robin from after `last`; `None` if every task waits.
fn pick(k: &Rc<RefCell<Kernel>>, last: &mut usize) -> Option<i32> {
    let kb = k.borrow();
    let n = kb.order.len();
    let now = host::now_monotonic_ns();
    let mut stdin_ready: Option<bool> = None;
    for i in 0..n {
        let idx = (*last + 1 + i) % n;
        let tid = kb.order[idx];
        let Some(t) = kb.parked.get(&tid) else {
            continue;
        };
        if runnable(&kb, t, now, &mut stdin_ready) {
            *last = idx;
            return Some(tid);
        }
    }
    None
}

fn runnable(kb: &Kernel, t: &Process, now: u64, stdin_ready: &mut Option<bool>) -> bool {
    if t.exit.is_some() || t.has_pending(SIGKILL) {
        return true;
    }
    if kb.procs.get(&t.pid).is_some_and(|e| e.stopped) {
        return false;
    }
    if let Some(child) = t.vfork_child {
        // The parent of a vfork waits until the child execs or ends.
        if kb
            .parked
            .get(&child)
            .is_some_and(|c| c.vfork_parent.is_some())
        {
            return false;
        }
    }
    if !t.wait.blocked {
        return true;
    }
    if t.wait.events != super::wake::events() || t.deliverable_signal().is_some() {
        return true;
    }
    if t.wait.deadline.is_some_and(|d| now >= d) {
        return true;
    }
    if t.wait.stdin {
        return *stdin_ready.get_or_insert_with(|| super::tty::stdin_ready_now(kb));
    }
    false
}

/// Every task waits: wait in the host for what can end a wait (stdin, a deadline).
/// `false` if nothing can.
fn idle(k: &Rc<RefCell<Kernel>>) -> bool {
    let kb = k.borrow();
    let mut deadline: Option<u64> = kb
        .procs
        .values()
        .filter(|e| e.zombie.is_none())
        .flat_map(|e| {
            let timers = e.timers.iter().flatten().filter_map(|t| t.deadline);
            e.itimer_real.map(|(d, _)| d).into_iter().chain(timers)
        })
        .chain(super::timerfd::next_deadline())
        .min();
    // A terminal's input is taken even when nobody reads (^C); its readers wait for the
    // terminal, not for host stdin.
    let terminal = kb.terminal.is_some();
    let mut stdin = super::tty::wants_host_input(&kb);
    for t in kb.parked.values() {
        if kb.procs.get(&t.pid).is_some_and(|e| e.stopped) {
            continue;
        }
        if t.wait.blocked {
            if let Some(d) = t.wait.deadline {
                deadline = Some(deadline.map_or(d, |x: u64| x.min(d)));
            }
            stdin |= t.wait.stdin && !terminal;
        }
    }
    // Whatever the tasks wait for, the run's deadline ends the wait (but does not turn a
    // deadlock into a wait).
    if stdin || deadline.is_some() {
        if let Some(end) = kb.run_deadline {
            deadline = Some(deadline.map_or(end, |d| d.min(end)));
        }
    }
    drop(kb);
    let now = host::now_monotonic_ns();
    let timeout = deadline.map(|d| d.saturating_sub(now));
    if stdin {
        if host::wait_stdin(timeout) && terminal {
            super::tty::pump(&mut k.borrow_mut(), None);
        }
        true
    } else if let Some(t) = timeout {
        host::sleep_ns(t);
        true
    } else {
        false
    }
}

/// Every task waits for something only another task could do.
fn deadlock(k: &Rc<RefCell<Kernel>>) -> ExitReason {
    let kb = k.borrow();
    let mut msg = String::from(
        "rvbox: deadlock: every process waits for another and none can run; ending the run\n",
    );
    for t in kb.parked.values() {
        let call = super::syscalls::by_number(t.wait.nr).map_or("?", |s| s.name);
        let what = if kb.procs.get(&t.pid).is_some_and(|e| e.stopped) {
            "stopped".to_string()
        } else if t.vfork_child.is_some() {
            "waits for its vfork child".to_string()
        } else {
            format!("waits in {call}{}", describe_wait(&kb, t))
        };
        msg += &format!(
            "rvbox:   pid {} tid {} ({}) {what}\n",
            t.pid,
            t.tid,
            String::from_utf8_lossy(&t.comm)
        );
    }
    let _ = host::write(2, msg.as_bytes());
    ExitReason::Signaled(SIGKILL)
}

/// What a parked task waits on, for the deadlock report: the objects and their state
/// (which pipe, how full, which processes hold each end), or nothing.
fn describe_wait(kb: &Kernel, t: &Process) -> String {
    match &t.wait.on {
        None => String::new(),
        Some(WaitOn::File { fd, file, write }) => {
            let dir = if *write { "writing" } else { "reading" };
            format!(" ({dir} fd {fd}: {})", describe_file(kb, file))
        }
        Some(WaitOn::Poll(files)) => {
            let all: Vec<String> = files
                .iter()
                .map(|(fd, f, ev)| {
                    format!("fd {fd} for {}: {}", poll_events(*ev), describe_file(kb, f))
                })
                .collect();
            format!(" ({})", all.join("; "))
        }
    }
}

fn poll_events(ev: u16) -> String {
    use super::fd::{POLLIN, POLLOUT, POLLPRI};
    let mut v = Vec::new();
    for (bit, name) in [(POLLIN, "in"), (POLLPRI, "pri"), (POLLOUT, "out")] {
        if ev & bit != 0 {
            v.push(name);
        }
    }
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join("+")
    }
}

/// A descriptor's object and its state: for a pipe or FIFO its fill level and who holds
/// each end (every process's descriptor table is searched).
fn describe_file(kb: &Kernel, file: &super::fd::OpenFile) -> String {
    use super::fd::FileKind;
    let FileKind::Pipe(end) = &file.kind else {
        let name = file
            .anon_name()
            .map(|n| String::from_utf8_lossy(&n).into_owned());
        return name.unwrap_or_else(|| "a file".into());
    };
    let pipe = &end.pipe;
    let name = match &pipe.node {
        Some(_) => format!("fifo:[{}]", pipe.ino),
        None => format!("pipe:[{}]", pipe.ino),
    };
    let q = pipe.queue();
    let (mut readers, mut writers) = (Vec::new(), Vec::new());
    let mut seen = HashSet::new();
    for t in kb.parked.values() {
        if !seen.insert(Rc::as_ptr(&t.files) as usize) {
            continue;
        }
        let files = t.files.borrow();
        let Some(table) = files.as_ref() else {
            continue;
        };
        for (fd, entry) in table.fds() {
            if let FileKind::Pipe(e) = &entry.file.kind {
                if Rc::ptr_eq(&e.pipe, pipe) {
                    let who = format!("pid {} fd {fd}", t.pid);
                    if e.read {
                        readers.push(who.clone());
                    }
                    if e.write {
                        writers.push(who);
                    }
                }
            }
        }
    }
    let list = |v: Vec<String>, n: u32| {
        if v.is_empty() && n == 0 {
            "none".to_string()
        } else if v.is_empty() {
            format!("{n} open, in no descriptor table")
        } else {
            v.join(", ")
        }
    };
    format!(
        "{name}, {} of {} bytes queued; read end: {}; write end: {}",
        q.len(),
        q.capacity(),
        list(readers, pipe.readers()),
        list(writers, pipe.writers())
    )
}

/// The wake-up invariant: **a parked call, retried when nothing has happened since it
/// parked, parks again** (and changes nothing). When every task waits, each waiting call
/// (other than those waiting for host stdin or a deadline, which the host ends) is
/// retried once as a spurious wake-up would; one that completes, or that changes an
/// object while it parks again, had been able to go on and nobody woke it: a lost
/// wake-up, a bug of rvbox's. With `RVBOX_CHECK=1` (and in debug builds) the run ends
/// there with a report, so the stress suite catches the bug where it happens, not as a
/// deadlock or a hang later.
fn check_wakeups(k: &Rc<RefCell<Kernel>>) -> Option<ExitReason> {
    let tids: Vec<i32> = {
        let kb = k.borrow();
        kb.parked
            .values()
            .filter(|t| {
                t.wait.blocked
                    && !t.wait.stdin
                    && t.wait.deadline.is_none()
                    && t.exit.is_none()
                    && t.vfork_child.is_none()
                    && t.deliverable_signal().is_none()
                    && !kb.procs.get(&t.pid).is_some_and(|e| e.stopped)
            })
            .map(|t| t.tid)
            .collect()
    };
    for tid in tids {
        let (call, comm, pid, what) = {
            let kb = k.borrow();
            let t = &kb.parked[&tid];
            (
                super::syscalls::by_number(t.wait.nr).map_or("?", |s| s.name),
                String::from_utf8_lossy(&t.comm).into_owned(),
                t.pid,
                describe_wait(&kb, t),
            )
        };
        let mut p = k.borrow_mut().parked.remove(&tid).expect("parked");
        p.check_out();
        let before = super::wake::events();
        p.retry_call();
        let completed = !p.wait.blocked;
        let changed = super::wake::events() != before;
        p.check_in();
        k.borrow_mut().parked.insert(tid, p);
        if completed || changed {
            let how = if completed {
                "could complete"
            } else {
                "changed an object"
            };
            let msg = format!(
                "rvbox: internal error: lost wake-up: pid {pid} tid {tid} ({comm}) waited in \
                 {call}{what} and {how}, but nothing had woken it\n"
            );
            let _ = host::write(2, msg.as_bytes());
            return Some(ExitReason::Exited(125));
        }
    }
    None
}

/// Removes a task that ended; when it was its group's last thread, the process becomes a
/// zombie: its parent is told, its children go to pid 1.
fn finish_task(k: &Rc<RefCell<Kernel>>, p: Box<Process>) {
    let mut kb = k.borrow_mut();
    super::wake::changed();
    let tid = p.tid;
    let pid = p.pid;
    let reason = p.exit.expect("finished task has an exit reason");
    kb.order.retain(|&t| t != tid);
    kb.forget_futex_wait(tid);
    let group_exit = p.exit_group;
    let Some(e) = kb.procs.get_mut(&pid) else {
        return;
    };
    e.threads.retain(|&t| t != tid);
    if tid == pid {
        e.leader_exit = Some(reason);
    }
    if group_exit && e.group_exit.is_none() {
        e.group_exit = Some(reason);
    }
    let others: Vec<i32> = e.threads.clone();
    let status = e.group_exit;
    if let Some(status) = status {
        // Every other thread of the group ends too.
        for t in &others {
            if let Some(o) = kb.parked.get_mut(t) {
                o.exit.get_or_insert(status);
            }
        }
    }
    if !others.is_empty() {
        return;
    }
    // The last thread: the process ends.
    let e = kb.procs.get_mut(&pid).unwrap();
    let status = e.group_exit.or(e.leader_exit).unwrap_or(reason);
    e.zombie = Some(status);
    e.stopped = false;
    let ppid = e.ppid;
    let exit_signal = e.exit_signal;
    drop(p);
    if pid == 1 {
        kb.init_exit = Some(status);
        return;
    }
    // Orphans go to pid 1 (Linux's reaper when there is no subreaper).
    let orphans: Vec<i32> = kb
        .procs
        .iter()
        .filter(|(_, c)| c.ppid == pid)
        .map(|(&c, _)| c)
        .collect();
    let mut zombie_orphans = Vec::new();
    let mut death_signals = Vec::new();
    for c in orphans {
        let ce = kb.procs.get_mut(&c).unwrap();
        ce.ppid = 1;
        if ce.zombie.is_some() {
            zombie_orphans.push(c);
        } else if ce.pdeathsig != 0 {
            death_signals.push((c, ce.pdeathsig));
        }
    }
    for (c, sig) in death_signals {
        queue_to_process(&mut kb, None, c, sig, SigSource::Kernel);
    }
    for c in zombie_orphans {
        notify_parent(&mut kb, c, 1, SIGCHLD);
    }
    notify_parent(&mut kb, pid, ppid, exit_signal);
    // A vfork parent waiting for this child may go on.
    if let Some(parent) = kb.parked.values_mut().find(|t| t.vfork_child == Some(tid)) {
        parent.vfork_child = None;
    }
}

/// Tells `ppid` that its child `pid` ended: the exit signal, or an automatic reap when the
/// parent ignores SIGCHLD (or set SA_NOCLDWAIT).
fn notify_parent(kb: &mut Kernel, pid: i32, ppid: i32, exit_signal: i32) {
    let Some(child) = kb.procs.get(&pid) else {
        return;
    };
    let status = child.zombie.expect("notified child is a zombie");
    let uid = child.uid;
    let Some(parent_tid) = kb.procs.get(&ppid).and_then(|e| e.threads.first().copied()) else {
        // No live parent: nobody will reap it.
        kb.procs.remove(&pid);
        return;
    };
    let parent = kb.parked.get(&parent_tid).expect("live threads are parked");
    let act = parent.signals.actions[SIGCHLD as usize];
    let ignored = act.handler == SIG_IGN;
    let auto_reap = exit_signal == SIGCHLD && (ignored || act.flags & SA_NOCLDWAIT != 0);
    if auto_reap {
        let instret = kb.procs.remove(&pid).map_or((0, 0), |c| {
            (c.instret + c.children_instret, c.cpu_ns + c.children_cpu_ns)
        });
        if let Some(pe) = kb.procs.get_mut(&ppid) {
            pe.children_instret += instret.0;
            pe.children_cpu_ns += instret.1;
        }
    }
    // With SA_NOCLDWAIT and a handler, the handler still hears of the exit (Linux's
    // do_notify_parent drops the signal only when SIGCHLD is ignored).
    if exit_signal != 0 && !(auto_reap && ignored) {
        let (code, st) = match status {
            ExitReason::Exited(c) => (CLD_EXITED, c),
            ExitReason::Signaled(s) => (CLD_KILLED, s),
        };
        let src = SigSource::Child {
            pid,
            uid,
            code,
            status: st,
        };
        queue_to_process(kb, None, ppid, exit_signal, src);
    }
}

/// Runs `f` on task `tid`: the running task `cur` or a parked one.
pub fn with_task<R>(
    kb: &mut Kernel,
    cur: Option<&mut Process>,
    tid: i32,
    f: impl FnOnce(&mut Process) -> R,
) -> Option<R> {
    match cur {
        Some(c) if c.tid == tid => Some(f(c)),
        _ => kb.parked.get_mut(&tid).map(|t| f(t)),
    }
}

/// Sends `sig` to process `pid` (process-directed: one of its threads that does not block
/// it takes it). Applies what sending does at once (SIGCONT continues a stopped process,
/// stop signals cancel a pending SIGCONT); ignored signals are dropped here.
pub fn queue_to_process(
    kb: &mut Kernel,
    mut cur: Option<&mut Process>,
    pid: i32,
    sig: i32,
    source: SigSource,
) -> bool {
    let Some(e) = kb.procs.get(&pid) else {
        return false;
    };
    if e.zombie.is_some() {
        return true;
    }
    let threads = e.threads.clone();
    if sig == 0 {
        return true;
    }
    prepare_signal(kb, cur.as_deref_mut(), pid, sig);
    // The thread to take it: the first one that does not block it, else the leader.
    let mut target = threads[0];
    for &t in &threads {
        let blocks = with_task(kb, cur.as_deref_mut(), t, |t| t.blocks(sig)).unwrap_or(true);
        if !blocks {
            target = t;
            break;
        }
    }
    queue_signal(kb, cur, target, sig, source, true);
    true
}

/// Sends `sig` to one thread.
pub fn queue_to_thread(
    kb: &mut Kernel,
    cur: Option<&mut Process>,
    tid: i32,
    sig: i32,
    source: SigSource,
) -> bool {
    queue_signal(kb, cur, tid, sig, source, false)
}

/// Queues `sig` on thread `tid`; `shared` if it was sent to the whole process.
fn queue_signal(
    kb: &mut Kernel,
    cur: Option<&mut Process>,
    tid: i32,
    sig: i32,
    source: SigSource,
    shared: bool,
) -> bool {
    super::wake::changed();
    with_task(kb, cur, tid, |t| {
        // Ignored and not blocked: dropped now (a blocked one stays pending: the action
        // may change before it is unblocked). The same for what the container's init is
        // spared.
        if !t.blocks(sig)
            && ((t.signals.ignored(sig) && sig != SIGKILL) || t.spared_as_init(sig, &source))
        {
            return;
        }
        let standard = sig < 32;
        if standard && t.has_pending(sig) {
            return;
        }
        t.pending.push(PendingSignal {
            sig,
            source,
            shared,
        });
    })
    .is_some()
}

/// What generating `sig` for process `pid` does at once, before delivery.
fn prepare_signal(kb: &mut Kernel, mut cur: Option<&mut Process>, pid: i32, sig: i32) {
    let Some(e) = kb.procs.get(&pid) else {
        return;
    };
    let threads = e.threads.clone();
    let ppid = e.ppid;
    if sig == SIGCONT || sig == SIGKILL {
        for &t in &threads {
            with_task(kb, cur.as_deref_mut(), t, |t| {
                t.pending.retain(|s| !is_stop_signal(s.sig));
            });
        }
        let e = kb.procs.get_mut(&pid).unwrap();
        if e.stopped {
            e.stopped = false;
            e.stop_report = None;
            e.cont_report = true;
            let uid = e.uid;
            // The parent learns of it (unless it asked not to).
            if sig == SIGCONT {
                notify_stop_change(kb, cur, pid, ppid, uid, CLD_CONTINUED, SIGCONT);
            }
        }
    } else if is_stop_signal(sig) {
        for &t in &threads {
            with_task(kb, cur.as_deref_mut(), t, |t| {
                t.pending.retain(|s| s.sig != SIGCONT);
            });
        }
    }
}

/// SIGCHLD with CLD_STOPPED/CLD_CONTINUED to the parent, unless it set SA_NOCLDSTOP.
fn notify_stop_change(
    kb: &mut Kernel,
    mut cur: Option<&mut Process>,
    pid: i32,
    ppid: i32,
    uid: u32,
    code: i32,
    status: i32,
) {
    let Some(parent_tid) = kb.procs.get(&ppid).and_then(|e| e.threads.first().copied()) else {
        return;
    };
    let flags = with_task(kb, cur.as_deref_mut(), parent_tid, |t| {
        t.signals.actions[SIGCHLD as usize].flags
    })
    .unwrap_or(0);
    if flags & SA_NOCLDSTOP == 0 {
        let src = SigSource::Child {
            pid,
            uid,
            code,
            status,
        };
        queue_to_process(kb, cur, ppid, SIGCHLD, src);
    }
}

pub fn is_stop_signal(sig: i32) -> bool {
    matches!(sig, SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU)
}

/// Sends `sig` to every process in group `pgid` (a terminal's ^C, `kill(-pgid)`). `false`
/// if the group has no process.
pub fn signal_pgrp(p: &mut Process, pgid: i32, sig: i32, source: SigSource) -> bool {
    let k = p.kernel.clone();
    let mut kb = k.borrow_mut();
    let members = kb.pgrp_members(pgid);
    for &pid in &members {
        queue_to_process(&mut kb, Some(p), pid, sig, source);
    }
    !members.is_empty()
}

impl Process {
    /// Moves the address space and descriptor table out of their homes into this task.
    pub fn check_out(&mut self) {
        let (mem, mm) = self
            .vm
            .borrow_mut()
            .take()
            .expect("the address space is in its home while no task of it runs");
        self.mem = mem;
        self.mm = mm;
        self.fds = self
            .files
            .borrow_mut()
            .take()
            .expect("the descriptor table is in its home while no task of it runs");
        // An LR reservation does not survive a switch (SC then fails, as allowed).
        self.cpu.reservation = None;
    }

    /// Puts the address space and descriptor table back in their homes.
    pub fn check_in(&mut self) {
        let mem = std::mem::take(&mut self.mem);
        let mm = std::mem::take(&mut self.mm);
        *self.vm.borrow_mut() = Some((mem, mm));
        *self.files.borrow_mut() = Some(std::mem::take(&mut self.fds));
    }

    /// `true` if `sig` is pending for this task.
    pub fn has_pending(&self, sig: i32) -> bool {
        self.pending.iter().any(|s| s.sig == sig)
    }

    /// `true` if this task blocks `sig` (SIGKILL and SIGSTOP cannot be blocked).
    pub fn blocks(&self, sig: i32) -> bool {
        self.signals.mask & sigbit(sig) & !UNBLOCKABLE != 0
    }

    /// The first pending signal this task does not block: synchronous (fault) signals
    /// first, then the lowest number, as Linux picks.
    pub fn deliverable_signal(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, s) in self.pending.iter().enumerate() {
            if self.blocks(s.sig) {
                continue;
            }
            if matches!(s.source, SigSource::Fault { .. }) {
                return Some(i);
            }
            if best.is_none_or(|b| s.sig < self.pending[b].sig) {
                best = Some(i);
            }
        }
        best
    }

    /// The set of pending signals (bit `sig - 1`), for sigpending and /proc: this thread's
    /// and those sent to the process that another thread holds.
    pub fn pending_set(&self) -> u64 {
        let own = self.pending.iter().fold(0, |m, s| m | sigbit(s.sig));
        let kb = self.kernel.borrow();
        let Some(e) = kb.procs.get(&self.pid) else {
            return own;
        };
        e.threads
            .iter()
            .filter_map(|t| kb.parked.get(t))
            .flat_map(|t| t.pending.iter().filter(|s| s.shared))
            .fold(own, |m, s| m | sigbit(s.sig))
    }

    /// Takes over the signals sent to the process that other threads hold but block, for
    /// which `want` is true: a process-directed signal belongs to whichever thread can
    /// take it first (it was queued on one that blocks it only because all did then).
    pub fn take_shared_signals(&mut self, want: impl Fn(i32) -> bool) {
        let k = self.kernel.clone();
        let mut kb = k.borrow_mut();
        let Some(e) = kb.procs.get(&self.pid) else {
            return;
        };
        let threads: Vec<i32> = e
            .threads
            .iter()
            .copied()
            .filter(|&t| t != self.tid)
            .collect();
        for t in threads {
            let Some(other) = kb.parked.get_mut(&t) else {
                continue;
            };
            let mut i = 0;
            while i < other.pending.len() {
                let s = other.pending[i];
                if s.shared && want(s.sig) && other.blocks(s.sig) {
                    other.pending.remove(i);
                    if s.sig >= 32 || !self.has_pending(s.sig) {
                        self.pending.push(s);
                    }
                } else {
                    i += 1;
                }
            }
        }
    }

    /// The deadline of the current wait: `timeout_ns` from the first attempt of the call.
    pub fn wait_deadline(&mut self, timeout_ns: Option<u64>) -> Option<u64> {
        if !self.wait.deadline_set {
            self.wait.deadline_set = true;
            self.wait.deadline = timeout_ns.map(|t| host::now_monotonic_ns().saturating_add(t));
        }
        self.wait.deadline
    }

    /// Sets an absolute deadline for the current wait (on its first attempt).
    pub fn wait_until(&mut self, deadline_ns: Option<u64>) -> Option<u64> {
        if !self.wait.deadline_set {
            self.wait.deadline_set = true;
            self.wait.deadline = deadline_ns;
        }
        self.wait.deadline
    }

    /// `true` once the current wait's deadline has passed.
    pub fn wait_timed_out(&self) -> bool {
        self.wait
            .deadline
            .is_some_and(|d| host::now_monotonic_ns() >= d)
    }

    /// The parent's pid (0 for pid 1).
    pub fn ppid(&self) -> i32 {
        self.kernel
            .borrow()
            .procs
            .get(&self.pid)
            .map_or(0, |e| e.ppid)
    }

    /// Runs this task for one turn.
    fn turn(&mut self) -> Turn {
        let start = self.cpu.instret;
        if self.wait.blocked && self.exit.is_none() && self.deliverable_signal().is_some() {
            // As on Linux, a woken call first looks again whether it can finish (a child
            // that exited, data that came); only if it would still wait does the signal
            // interrupt it.
            self.retry_call();
        }
        loop {
            // (Only this task's own delivery can stop its group while it runs.)
            let stopped = self.exit.is_none() && self.handle_signals();
            if self.exit.is_some() {
                return Turn::Exited;
            }
            if stopped {
                return Turn::Parked;
            }
            let used = self.cpu.instret - start;
            if used >= SLICE {
                return Turn::Ran;
            }
            match self.cpu.run(&mut self.mem, SLICE - used) {
                Exit::Budget => return Turn::Ran,
                Exit::Ecall => {
                    let (pc, nr) = (self.cpu.pc, self.cpu.x[17]);
                    match self.dispatch_ecall() {
                        None => {}
                        Some(Err(EBLOCK)) => {
                            // Park on the ecall; the call runs again when retried.
                            let events = super::wake::events();
                            self.wait.blocked = true;
                            self.wait.nr = nr;
                            self.wait.events = events;
                            return Turn::Parked;
                        }
                        Some(ret) => {
                            self.complete_syscall(pc, ret);
                            if self.vfork_child.is_some() || self.yield_now {
                                self.yield_now = false;
                                return Turn::Parked;
                            }
                        }
                    }
                }
                Exit::IllegalInstruction { bits } => {
                    let width = if bits & 3 == 3 { 8 } else { 4 };
                    let msg = format!(
                        "illegal instruction 0x{bits:0width$x} at pc 0x{:x}",
                        self.cpu.pc
                    );
                    self.fault_signal(SIGILL, ILL_ILLOPC, self.cpu.pc, &msg);
                }
                Exit::Ebreak => {
                    let msg = format!("breakpoint (ebreak) at pc 0x{:x}", self.cpu.pc);
                    self.fault_signal(SIGTRAP, TRAP_BRKPT, self.cpu.pc, &msg);
                }
                Exit::Fault(f) => {
                    if let Some(grown) = self.shared_file_fault(f) {
                        if !grown {
                            let msg = format!(
                                "bus error: access to 0x{:x} past the end of a mapped file at pc 0x{:x}",
                                f.addr, self.cpu.pc
                            );
                            self.fault_signal(SIGBUS, BUS_ADRERR, f.addr, &msg);
                        }
                    } else if f.access == crate::mem::Access::Write
                        && self.mem.out_of_memory(f.addr)
                    {
                        crate::mem::budget::take_refused();
                        self.out_of_memory();
                    } else {
                        let what = match f.access {
                            crate::mem::Access::Read => "read from",
                            crate::mem::Access::Write => "write to",
                            crate::mem::Access::Exec => "execute at",
                        };
                        let why = if f.mapped {
                            "not permitted"
                        } else {
                            "not mapped"
                        };
                        let msg = format!(
                            "segmentation fault: {what} 0x{:x} ({why}) at pc 0x{:x}",
                            f.addr, self.cpu.pc
                        );
                        let code = if f.mapped { SEGV_ACCERR } else { SEGV_MAPERR };
                        self.fault_signal(SIGSEGV, code, f.addr, &msg);
                    }
                }
            }
        }
    }

    /// Runs the system call the registers name (a7, a0-a5), at an `ecall`.
    fn dispatch_ecall(&mut self) -> Option<Result<u64, Errno>> {
        crate::mem::budget::take_refused();
        let x = &self.cpu.x;
        let (nr, args) = (x[17], [x[10], x[11], x[12], x[13], x[14], x[15]]);
        super::syscalls::dispatch(self, nr, &args)
    }

    /// Runs the call the task is parked on again; completes it unless it would still wait.
    fn retry_call(&mut self) {
        let pc = self.cpu.pc;
        match self.dispatch_ecall() {
            None | Some(Err(EBLOCK)) => {}
            Some(ret) => self.complete_syscall(pc, ret),
        }
    }

    /// Puts a system call's result in a0 and moves past the ecall. A call that failed
    /// with EFAULT because the memory budget had no frame for the caller's buffer ends
    /// the caller instead, as a page fault there would have.
    fn complete_syscall(&mut self, pc: u64, ret: Result<u64, Errno>) {
        if ret == Err(EFAULT) && crate::mem::budget::take_refused() {
            self.end_wait();
            self.out_of_memory();
            return;
        }
        self.cpu.x[10] = match ret {
            Ok(v) => v,
            Err(e) => (-(e as i64)) as u64,
        };
        // A call that changed the pc (execve, rt_sigreturn) already set it.
        if self.cpu.pc == pc {
            self.cpu.pc = pc + 4;
        }
        self.end_wait();
        super::wake::changed();
    }

    /// Notes, when `e` is `EBLOCK`, that the call waits on descriptor `fd`'s object (for
    /// the deadlock report).
    pub fn waits_on(&mut self, e: Errno, fd: i32, file: &Rc<super::fd::OpenFile>, write: bool) {
        if e == EBLOCK {
            self.wait.on = Some(WaitOn::File {
                fd,
                file: file.clone(),
                write,
            });
        }
    }

    /// The current call no longer waits.
    pub fn end_wait(&mut self) {
        if self.wait.blocked || self.wait.deadline_set {
            let tid = self.tid;
            self.kernel.borrow_mut().forget_futex_wait(tid);
        }
        self.wait = Wait::default();
    }

    /// The memory budget has no frame for a page this task writes: it dies of SIGKILL, as
    /// a container's memory cgroup's OOM killer would end it, with a line on stderr saying
    /// so for any process (its parent would only report "Killed").
    fn out_of_memory(&mut self) {
        let line = format!(
            "rvbox: {} (pid {}) killed by SIGKILL: out of memory: {} is used up\n",
            String::from_utf8_lossy(&self.comm),
            self.pid,
            crate::mem::budget::describe()
        );
        let _ = host::write(2, line.as_bytes());
        self.kill_group(ExitReason::Signaled(SIGKILL));
    }

    /// A synchronous signal from a fault. Fatal (with a message saying why) unless the
    /// program has a handler for it that it does not block.
    pub fn fault_signal(&mut self, sig: i32, code: i32, addr: u64, why: &str) {
        let act = self.signals.actions[sig as usize];
        let caught = act.handler != SIG_DFL && act.handler != SIG_IGN && !self.blocks(sig);
        if caught {
            self.pending.insert(
                0,
                PendingSignal {
                    sig,
                    source: SigSource::Fault { code, addr },
                    shared: false,
                },
            );
        } else {
            self.fatal(sig, why);
        }
    }

    /// `true` if this task is of the container's init and so does not take `sig` from
    /// `source`. Linux spares a PID namespace's init (`SIGNAL_UNKILLABLE`, pid 1 under
    /// Docker) every signal it has no handler for, SIGKILL and SIGSTOP included, unless
    /// the kernel sent one of these two (`sig_task_ignored`; `get_signal` drops the rest
    /// at delivery even then). Faults still end it (`fault_signal`, as `force_sig` clears
    /// `SIGNAL_UNKILLABLE`), and so does a closed host stream's SIGPIPE (`HostPipe`).
    fn spared_as_init(&self, sig: i32, source: &SigSource) -> bool {
        let forced = match source {
            SigSource::Fault { .. } | SigSource::HostPipe { .. } => true,
            SigSource::Kernel => sig == SIGKILL || sig == SIGSTOP,
            _ => false,
        };
        self.pid == 1 && self.signals.actions[sig as usize].handler == SIG_DFL && !forced
    }

    /// Delivers the pending signals this task does not block.
    /// `true` if a stop signal stopped the process.
    fn handle_signals(&mut self) -> bool {
        while let Some(i) = self.deliverable_signal() {
            let s = self.pending.remove(i);
            let sig = s.sig;
            let act = self.signals.actions[sig as usize];
            if self.spared_as_init(sig, &s.source) {
                // Queued while blocked (or before the handler was reset): dropped now.
                continue;
            }
            if sig == SIGKILL {
                self.kill_group(ExitReason::Signaled(SIGKILL));
                return false;
            }
            if act.handler == SIG_IGN {
                continue;
            }
            if act.handler == SIG_DFL {
                match default_action(sig) {
                    DefaultAction::Ignore | DefaultAction::Continue => continue,
                    DefaultAction::Terminate => {
                        self.kill_group(ExitReason::Signaled(sig));
                        return false;
                    }
                    DefaultAction::Stop => {
                        self.stop_group(sig);
                        return true;
                    }
                }
            }
            super::sigdeliver::deliver(self, s, act);
            if self.exit.is_some() {
                return false;
            }
        }
        false
    }

    /// Ends the whole thread group with `reason`.
    pub fn kill_group(&mut self, reason: ExitReason) {
        self.exit = Some(reason);
        self.exit_group = true;
    }

    /// Stops the whole process (a stop signal's default action).
    fn stop_group(&mut self, sig: i32) {
        let k = self.kernel.clone();
        let mut kb = k.borrow_mut();
        let pid = self.pid;
        let Some(e) = kb.procs.get_mut(&pid) else {
            return;
        };
        if e.stopped {
            return;
        }
        e.stopped = true;
        e.stop_report = Some(sig);
        e.cont_report = false;
        let (ppid, uid) = (e.ppid, e.uid);
        super::wake::changed();
        notify_stop_change(&mut kb, Some(self), pid, ppid, uid, CLD_STOPPED, sig);
    }

    /// What a thread leaves behind when it ends: `clear_child_tid` is zeroed and its
    /// futex woken (how `pthread_join` learns of the end), and a vfork parent may go on.
    fn thread_exit_cleanup(&mut self) {
        self.exit_robust_list();
        if self.clear_child_tid != 0 {
            let addr = self.clear_child_tid;
            if self.mem.write_u32(addr, 0).is_ok() {
                let key = super::sys_proc::futex_key(self, addr, false);
                futex_wake(self, key, 1, u32::MAX);
            }
        }
        self.release_vfork_parent();
    }

    /// Marks the robust futexes the thread still holds (`set_robust_list`) as their owner
    /// dead and wakes a waiter of each, as Linux's `exit_robust_list` does (also at
    /// execve). The next locker gets `EOWNERDEAD`.
    pub fn exit_robust_list(&mut self) {
        const FUTEX_WAITERS: u32 = 0x8000_0000;
        const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
        const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
        const ROBUST_LIST_LIMIT: usize = 2048;
        let (head, len) = std::mem::take(&mut self.robust_list);
        if head == 0 || len != 24 {
            return;
        }
        let (Ok(first), Ok(offset), Ok(pending)) = (
            self.mem.read_u64(head),
            self.mem.read_u64(head + 8),
            self.mem.read_u64(head + 16),
        ) else {
            return;
        };
        let tid = self.tid as u32;
        let death = |p: &mut Process, entry: u64| {
            let uaddr = (entry & !1).wrapping_add(offset);
            let Ok(v) = p.mem.read_u32(uaddr) else { return };
            if v & FUTEX_TID_MASK != tid {
                return;
            }
            if p.mem
                .write_u32(uaddr, (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED)
                .is_err()
            {
                return;
            }
            // Priority-inheritance futexes (bit 0 of the entry) are not woken here.
            if v & FUTEX_WAITERS != 0 && entry & 1 == 0 {
                let key = super::sys_proc::futex_key(p, uaddr, false);
                futex_wake(p, key, 1, u32::MAX);
            }
        };
        let mut entry = first;
        let mut n = 0;
        while entry != head && entry != 0 && n < ROBUST_LIST_LIMIT {
            let Ok(next) = self.mem.read_u64(entry & !1) else {
                break;
            };
            // The one being taken or released right now is handled last.
            if entry != pending {
                death(self, entry);
            }
            entry = next;
            n += 1;
        }
        if pending != 0 {
            death(self, pending);
        }
    }

    /// Lets the parent of a vfork go on (the child called execve or ended).
    pub fn release_vfork_parent(&mut self) {
        if let Some(parent) = self.vfork_parent.take() {
            let k = self.kernel.clone();
            let mut kb = k.borrow_mut();
            super::wake::changed();
            if let Some(t) = kb.parked.get_mut(&parent) {
                t.vfork_child = None;
            }
        }
    }
}

/// Wakes up to `n` waiters on `key` whose bitset meets `bitset`; returns how many.
pub fn futex_wake(p: &mut Process, key: (usize, u64), n: u32, bitset: u32) -> u32 {
    let k = p.kernel.clone();
    let mut kb = k.borrow_mut();
    let mut woken = 0;
    let mut i = 0;
    while i < kb.futex_waiters.len() && woken < n {
        let w = &kb.futex_waiters[i];
        if w.key == key && w.bitset & bitset != 0 {
            let w = kb.futex_waiters.remove(i);
            kb.futex_woken.insert(w.tid);
            woken += 1;
        } else {
            i += 1;
        }
    }
    if woken > 0 {
        super::wake::changed();
    }
    woken
}
