//! Signal numbers, names and the per-process signal state.
//!
//! So far signals are recorded but not delivered to handlers: a fault or an illegal
//! instruction ends the process as if no handler were installed. Delivery (signal frames,
//! `rt_sigreturn`) comes with the processes work.

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGUSR1: i32 = 10;
pub const SIGSEGV: i32 = 11;
pub const SIGUSR2: i32 = 12;
pub const SIGPIPE: i32 = 13;
pub const SIGALRM: i32 = 14;
pub const SIGTERM: i32 = 15;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGSTOP: i32 = 19;
pub const SIGTSTP: i32 = 20;
pub const SIGURG: i32 = 23;
pub const SIGWINCH: i32 = 28;
pub const NSIG: usize = 64;

/// `AT_MINSIGSTKSZ` for riscv64 (the signal frame with the FP state).
pub const MINSIGSTKSZ: u64 = 2048;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

const NAMES: [&str; 32] = [
    "0",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

pub fn signal_name(sig: i32) -> String {
    match usize::try_from(sig).ok().and_then(|s| NAMES.get(s)) {
        Some(n) => n.to_string(),
        None => format!("SIGRT{}", sig - 32),
    }
}

/// `struct sigaction` as the kernel sees it on riscv64.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub mask: u64,
}

/// What a signal does when it is not caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGSTOP | SIGTSTP | 21 | 22 => DefaultAction::Stop,
        SIGCONT => DefaultAction::Continue,
        _ => DefaultAction::Terminate,
    }
}

#[derive(Debug, Clone)]
pub struct SignalState {
    pub actions: [SigAction; NSIG + 1],
    /// Blocked signals (bit `sig - 1`).
    pub mask: u64,
    /// `sigaltstack`: (sp, flags, size).
    pub altstack: (u64, u32, u64),
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [SigAction::default(); NSIG + 1],
            mask: 0,
            altstack: (0, 2 /* SS_DISABLE */, 0),
        }
    }
}

impl SignalState {
    /// `execve` resets caught signals to the default; ignored ones stay ignored.
    pub fn reset_on_exec(&mut self) {
        for a in self.actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
            }
        }
        self.altstack = (0, 2, 0);
    }

    /// `true` if `sig` is ignored (explicitly, or by default).
    pub fn ignored(&self, sig: i32) -> bool {
        let a = self.actions[sig as usize];
        a.handler == SIG_IGN
            || (a.handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore)
    }
}
