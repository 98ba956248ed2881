//! The Linux personality: a guest process, its start-up, and its system calls.
//!
//! `kernel::run` drives the tasks (`Process`: one thread each) and handles what stops the
//! CPU: `ecall` (a system call, looked up in `syscalls::TABLE`), faults and illegal
//! instructions (signals), and the instruction budget.

pub mod abi;
pub mod elf;
pub mod epoll;
pub mod errno;
pub mod eventfd;
pub mod fd;
pub mod kernel;
pub mod mm;
pub mod pipe;
pub mod procfs;
mod sigdeliver;
pub mod sigframe;
pub mod signal;
mod sys_file;
mod sys_misc;
mod sys_mm;
mod sys_net;
mod sys_pipe;
mod sys_poll;
mod sys_proc;
mod sys_task;
mod sys_xattr;
pub mod syscalls;
pub mod timerfd;
pub mod tty;
pub mod unix;
pub mod wake;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use crate::cpu::Cpu;
use crate::mem::{prot, Memory, PAGE_SIZE};
use crate::vfs::{Follow, Node, Vfs};
use errno::*;
use fd::FdTable;
use mm::{Mm, VmaKind};
use signal::*;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// `exit(status)`.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
}

impl ExitReason {
    /// The status a shell reports: the exit status, or 128 + the signal number.
    pub fn shell_status(self) -> i32 {
        match self {
            ExitReason::Exited(s) => s & 0xff,
            ExitReason::Signaled(sig) => 128 + sig,
        }
    }
}

/// User and group identity.
#[derive(Debug, Clone, Default)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub groups: Vec<u32>,
}

/// One task (thread) and everything it sees. See `kernel` for how tasks share the address
/// space and descriptor table (`vm`, `files`) and how they are scheduled.
pub struct Process {
    pub cpu: Cpu,
    /// The address space and descriptor table, checked out of `vm` and `files` while the
    /// task runs (empty placeholders while it is parked).
    pub mem: Memory,
    pub mm: Mm,
    pub fds: FdTable,
    pub vm: Rc<RefCell<Option<(Memory, Mm)>>>,
    pub files: Rc<RefCell<Option<FdTable>>>,
    /// Identity of what `CLONE_SIGHAND` shares (the actions): changes are copied to every
    /// task with the same token.
    pub sighand_share: Rc<()>,
    pub vfs: Rc<Vfs>,
    /// The working directory and umask: shared by the tasks of a `CLONE_FS` clone (the
    /// threads of a process), as Linux's `fs_struct`.
    pub fs: Rc<FsContext>,
    /// Thread group id (what getpid returns) and thread id.
    pub pid: i32,
    pub tid: i32,
    pub kernel: Rc<RefCell<kernel::Kernel>>,
    /// When the process was created (monotonic ns, "since boot").
    pub started_ns: u64,
    pub creds: Creds,
    pub signals: SignalState,
    /// Scheduling, rseq and other per-task state (`sys_task.rs`).
    pub task: sys_task::TaskState,
    /// Set when the task has ended; with `exit_group`, its whole thread group ends.
    pub exit: Option<ExitReason>,
    pub exit_group: bool,
    /// Signals waiting for delivery to this task.
    pub pending: Vec<kernel::PendingSignal>,
    /// The mask to restore after the handler of the signal that ends an rt_sigsuspend.
    pub saved_mask: Option<u64>,
    /// What the current system call waits for, if it returned `EBLOCK`.
    pub wait: kernel::Wait,
    /// `set_tid_address` / `CLONE_CHILD_CLEARTID`: zeroed and futex-woken at exit.
    pub clear_child_tid: u64,
    /// `set_robust_list`: the head and its length.
    pub robust_list: (u64, u64),
    /// A vfork parent waits for this child to exec or end.
    pub vfork_child: Option<i32>,
    /// A vfork child: the parent it lets go on when it execs or ends.
    pub vfork_parent: Option<i32>,
    /// End the turn after this system call (sched_yield).
    pub yield_now: bool,
    /// Name (`comm`) and path of the running program, and its file (`/proc/PID/exe`).
    pub comm: Vec<u8>,
    pub exe: Vec<u8>,
    pub exe_node: Option<Node>,
    /// Where `execve` put the program, its arguments and environment.
    pub image: procfs::ExecLayout,
    pub hostname: Vec<u8>,
    /// Environment of the module (the host's view), for `COLUMNS`/`LINES`.
    pub host_env: Vec<(String, String)>,
    logged: HashSet<String>,
    log: bool,
    /// `RVBOX_LOG=strace`: print every system call.
    pub strace: bool,
}

/// What `CLONE_FS` shares: the working directory and the umask (the root is always the
/// image's: no chroot).
pub struct FsContext {
    cwd: RefCell<Node>,
    umask: Cell<u32>,
}

impl FsContext {
    /// A copy of its own (a clone without `CLONE_FS`, a fork).
    pub fn copy(&self) -> FsContext {
        FsContext {
            cwd: RefCell::new(self.cwd.borrow().clone()),
            umask: Cell::new(self.umask.get()),
        }
    }
}

impl Process {
    /// The working directory.
    pub fn cwd(&self) -> Node {
        self.fs.cwd.borrow().clone()
    }

    /// Changes the working directory of every task sharing this one's `FsContext`.
    pub fn set_cwd(&self, dir: Node) {
        *self.fs.cwd.borrow_mut() = dir;
    }

    pub fn umask(&self) -> u32 {
        self.fs.umask.get()
    }

    pub fn set_umask(&self, mask: u32) {
        self.fs.umask.set(mask);
    }

    /// The first process of a run (pid 1 once `kernel::run` starts it).
    pub fn new(vfs: Rc<Vfs>) -> Process {
        let cwd = vfs.root();
        Process {
            cpu: Cpu::new(),
            mem: Memory::new(),
            mm: Mm::new(),
            fds: FdTable::with_stdio(),
            vm: Rc::new(RefCell::new(None)),
            files: Rc::new(RefCell::new(None)),
            sighand_share: Rc::new(()),
            vfs,
            fs: Rc::new(FsContext {
                cwd: RefCell::new(cwd),
                umask: Cell::new(0o022),
            }),
            pid: 1,
            tid: 1,
            kernel: kernel::Kernel::new(),
            started_ns: crate::host::now_monotonic_ns(),
            creds: Creds::default(),
            signals: SignalState::default(),
            task: sys_task::TaskState::default(),
            exit: None,
            exit_group: false,
            pending: Vec::new(),
            saved_mask: None,
            wait: kernel::Wait::default(),
            clear_child_tid: 0,
            robust_list: (0, 0),
            vfork_child: None,
            vfork_parent: None,
            yield_now: false,
            comm: Vec::new(),
            exe: Vec::new(),
            exe_node: None,
            image: procfs::ExecLayout::default(),
            hostname: b"rvbox".to_vec(),
            host_env: Vec::new(),
            logged: HashSet::new(),
            log: crate::knobs::Log::get().on,
            strace: crate::knobs::Log::get().strace,
        }
    }

    /// Logs `msg` once per distinct message, when `RVBOX_LOG` is set.
    pub fn log_once(&mut self, msg: String) {
        if self.log && self.logged.insert(msg.clone()) {
            let _ = crate::host::write(2, format!("rvbox: {msg}\n").as_bytes());
        }
    }

    /// Resolves a program name as `execvp` and container runtimes do: a name with a `/`
    /// is a path; otherwise it is looked up in `PATH` of `env`.
    pub fn find_program(&self, name: &[u8], env: &[Vec<u8>]) -> Result<Vec<u8>, Errno> {
        if name.contains(&b'/') {
            return Ok(name.to_vec());
        }
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix(b"PATH="))
            .unwrap_or(b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        for dir in path.split(|&c| c == b':') {
            let mut p = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            p.push(b'/');
            p.extend_from_slice(name);
            if let Ok(n) = self.resolve(&self.cwd(), &p, Follow::Yes) {
                if n.file_type() == crate::bundle::mode::S_IFREG
                    && n.meta.borrow().mode & 0o111 != 0
                {
                    return Ok(p);
                }
            }
        }
        Err(ENOENT)
    }

    /// Replaces the process image with the program at `path` (`execve`).
    pub fn exec(
        &mut self,
        path: &[u8],
        argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
    ) -> Result<(), Errno> {
        self.exec_depth(path, argv, envp, 0)
    }

    fn exec_depth(
        &mut self,
        path: &[u8],
        mut argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
        depth: u32,
    ) -> Result<(), Errno> {
        let node = self.resolve(&self.cwd(), path, Follow::Yes)?;
        if node.is_dir() {
            return Err(EACCES);
        }
        if node.file_type() != crate::bundle::mode::S_IFREG || node.meta.borrow().mode & 0o111 == 0
        {
            return Err(EACCES);
        }
        // (For a script, with its interpreter's arguments: within a few bytes of Linux's
        // count, which adds them to the first.)
        elf::check_arg_space(path, &argv, &envp)?;
        let file = self.vfs.file_bytes(&node)?;
        let data = file.as_slice();
        if data.starts_with(b"#!") {
            if depth >= 4 {
                return Err(ELOOP);
            }
            let line_end = data
                .iter()
                .position(|&c| c == b'\n')
                .unwrap_or(data.len())
                .min(256);
            let line = &data[2..line_end];
            let line = trim(line);
            let (interp, arg) = match line.iter().position(|c| c.is_ascii_whitespace()) {
                Some(i) => (&line[..i], Some(trim(&line[i..]))),
                None => (line, None),
            };
            if interp.is_empty() {
                return Err(ENOEXEC);
            }
            let mut new_argv = vec![interp.to_vec()];
            if let Some(a) = arg.filter(|a| !a.is_empty()) {
                new_argv.push(a.to_vec());
            }
            new_argv.push(path.to_vec());
            if !argv.is_empty() {
                argv.remove(0);
            }
            new_argv.extend(argv);
            let interp = interp.to_vec();
            return self.exec_depth(&interp, new_argv, envp, depth + 1);
        }
        let elf = elf::Elf::parse(data)?;
        let interp_data = match elf.interp()? {
            Some(p) => {
                let n = self.resolve(&self.cwd(), p, Follow::Yes)?;
                let d = self.vfs.file_bytes(&n)?;
                Some((self.vfs.path_of_node(&n), d))
            }
            None => None,
        };
        // Point of no return: the old image goes, and with it the robust futexes held.
        self.exit_robust_list();
        let mut mem = Memory::new();
        let mut mm = Mm::new();
        // Mappings and /proc/PID/exe name the file itself (symlinks resolved), as Linux does.
        let exe = self.vfs.path_of_node(&node);
        let name = String::from_utf8_lossy(&exe).into_owned();
        let dyn_base = (elf.e_type == 3).then_some(elf::ET_DYN_BASE);
        let main = elf::load(&elf, file.image(), &mut mem, &mut mm, dyn_base, &name)?;
        let (entry, base) = match &interp_data {
            Some((ipath, idata)) => {
                let ielf = elf::Elf::parse(idata.as_slice())?;
                let l = elf::load(
                    &ielf,
                    idata.image(),
                    &mut mem,
                    &mut mm,
                    None,
                    &String::from_utf8_lossy(ipath),
                )?;
                (l.entry, l.bias)
            }
            None => (main.entry, 0),
        };
        // The stack.
        let stack_lo = mm::STACK_TOP - mm::STACK_SIZE;
        let stack_prot = prot::READ | prot::WRITE | if elf.exec_stack() { prot::EXEC } else { 0 };
        mm.map_fixed(
            &mut mem,
            stack_lo,
            mm::STACK_SIZE,
            stack_prot,
            VmaKind::Stack,
        );
        sigframe::map_trampoline(&mut mem, &mut mm);
        let auxv = [
            (elf::AT_PHDR, main.phdr),
            (elf::AT_PHENT, 56),
            (elf::AT_PHNUM, main.phnum as u64),
            (elf::AT_PAGESZ, PAGE_SIZE),
            (elf::AT_BASE, base),
            (elf::AT_FLAGS, 0),
            (elf::AT_ENTRY, main.entry),
            (elf::AT_UID, self.creds.uid as u64),
            (elf::AT_EUID, self.creds.euid as u64),
            (elf::AT_GID, self.creds.gid as u64),
            (elf::AT_EGID, self.creds.egid as u64),
            (elf::AT_HWCAP, elf::HWCAP),
            (elf::AT_HWCAP2, 0),
            (elf::AT_CLKTCK, 100),
            (elf::AT_SECURE, 0),
            (elf::AT_MINSIGSTKSZ, sigframe::FRAME_SIZE),
        ];
        let sp = elf::build_stack(&mut mem, mm::STACK_TOP, &argv, &envp, &auxv, path)?;
        let image = procfs::ExecLayout::new(&elf.phdrs, main.bias, &mut mem, sp);
        let brk = main.end.next_multiple_of(PAGE_SIZE);
        mm.brk_start = brk;
        mm.brk = brk;

        self.leave_shared_on_exec();
        self.mem = mem;
        self.mm = mm;
        let instret = self.cpu.instret;
        self.cpu = Cpu::new();
        self.cpu.instret = instret;
        self.cpu.pc = entry;
        self.cpu.x[2] = sp;
        self.exe = exe;
        self.exe_node = Some(node);
        self.image = image;
        let base_name = path.rsplit(|&c| c == b'/').next().unwrap_or(path);
        self.comm = base_name.iter().take(15).copied().collect();
        self.signals.reset_on_exec();
        self.task.on_exec();
        // Close-on-exec descriptors.
        let cloexec: Vec<i32> = self
            .fds
            .fds()
            .filter(|(_, e)| e.cloexec)
            .map(|(fd, _)| fd)
            .collect();
        for fd in cloexec {
            let _ = self.fds.close(fd);
        }
        if let Some(e) = self.kernel.borrow_mut().procs.get_mut(&self.pid) {
            e.execed = true;
            e.comm = self.comm.clone();
        }
        self.release_vfork_parent();
        Ok(())
    }

    /// What `execve` does before the new image replaces the old: the other threads of the
    /// group end, and an address space or descriptor table shared with other processes
    /// (vfork, `CLONE_VM`/`CLONE_FILES` without threads) stays theirs: this task gets its
    /// own.
    fn leave_shared_on_exec(&mut self) {
        let k = self.kernel.clone();
        let mut kb = k.borrow_mut();
        if let Some(e) = kb.procs.get(&self.pid) {
            let others: Vec<i32> = e
                .threads
                .iter()
                .copied()
                .filter(|&t| t != self.tid)
                .collect();
            for t in others {
                kb.parked.remove(&t);
            }
            let e = kb.procs.get_mut(&self.pid).unwrap();
            e.threads = vec![self.pid];
            kb.futex_waiters.retain(|w| w.tid != self.tid);
        }
        drop(kb);
        if self.tid != self.pid {
            // The exec'ing thread takes over the leader's id, as on Linux.
            self.tid = self.pid;
        }
        if Rc::strong_count(&self.vm) > 1 {
            let mem = std::mem::take(&mut self.mem);
            let mm = std::mem::take(&mut self.mm);
            *self.vm.borrow_mut() = Some((mem, mm));
            self.vm = Rc::new(RefCell::new(None));
        }
        if Rc::strong_count(&self.files) > 1 {
            let fds = self.fds.clone();
            *self.files.borrow_mut() = Some(std::mem::replace(&mut self.fds, fds));
            self.files = Rc::new(RefCell::new(None));
        }
        // Handlers are reset by exec, so the actions are no longer shared.
        self.sighand_share = Rc::new(());
    }

    /// Ends the process with signal `sig`. For pid 1, the program the user started, rvbox
    /// says why on stderr (or with `RVBOX_LOG` for any process); other processes die
    /// quietly, as on Linux, where their parent (a shell) reports it.
    pub fn fatal(&mut self, sig: i32, why: &str) {
        if self.pid != 1 && !self.log {
            self.kill_group(ExitReason::Signaled(sig));
            return;
        }
        let line = format!(
            "rvbox: {} (pid {}) killed by {}: {}\n",
            String::from_utf8_lossy(&self.comm),
            self.pid,
            signal_name(sig),
            why
        );
        let _ = crate::host::write(2, line.as_bytes());
        self.kill_group(ExitReason::Signaled(sig));
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}
