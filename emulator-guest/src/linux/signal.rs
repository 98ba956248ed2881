//! Signal numbers, names, `sigaction` flags, the alternate signal stack and the
//! per-process signal state. The signal frame itself (what a handler finds on its stack,
//! what `rt_sigreturn` reads back) is `sigframe.rs`.

use super::errno::{Errno, EINVAL, ENOMEM, EPERM};

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
pub const SIGTTIN: i32 = 21;
pub const SIGTTOU: i32 = 22;
pub const SIGURG: i32 = 23;
pub const SIGXCPU: i32 = 24;
pub const SIGXFSZ: i32 = 25;
pub const SIGVTALRM: i32 = 26;
pub const SIGPROF: i32 = 27;
pub const SIGWINCH: i32 = 28;
pub const SIGIO: i32 = 29;
pub const SIGPWR: i32 = 30;
pub const SIGSYS: i32 = 31;
pub const NSIG: usize = 64;

/// The smallest alternate stack `sigaltstack` accepts (uapi `MINSIGSTKSZ`). The frame
/// itself is smaller: `sigframe::FRAME_SIZE`.
pub const MINSIGSTKSZ: u64 = 2048;

/// The bit of `sig` in a signal mask.
pub const fn sigbit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// The signals no mask can block.
pub const UNBLOCKABLE: u64 = sigbit(SIGKILL) | sigbit(SIGSTOP);

// `sa_flags` (asm-generic values, which riscv64 uses).
pub const SA_NOCLDSTOP: u64 = 0x0000_0001;
pub const SA_NOCLDWAIT: u64 = 0x0000_0002;
pub const SA_SIGINFO: u64 = 0x0000_0004;
/// Rejected-flag probe bit: never kept, so a program can tell which flags the kernel knows.
pub const SA_UNSUPPORTED: u64 = 0x0000_0400;
pub const SA_EXPOSE_TAGBITS: u64 = 0x0000_0800;
/// Obsolete: riscv64 does not have it (handlers return through the vDSO trampoline), so
/// it is not in `UAPI_SA_FLAGS` and `rt_sigaction` drops it.
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
/// The flags `rt_sigaction` keeps on riscv64; it clears the others, in the new action and
/// in the old one it reports (Linux `UAPI_SA_FLAGS`, since 5.11).
pub const UAPI_SA_FLAGS: u64 = SA_NOCLDSTOP
    | SA_NOCLDWAIT
    | SA_SIGINFO
    | SA_ONSTACK
    | SA_RESTART
    | SA_NODEFER
    | SA_RESETHAND
    | SA_EXPOSE_TAGBITS;

// `ss_flags` of `stack_t`.
pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;
/// Disarm the alternate stack while a handler runs on it (Linux 4.7).
pub const SS_AUTODISARM: u32 = 1 << 31;
/// The flag bits that may be or-ed into the mode (Linux `SS_FLAG_BITS`).
const SS_FLAG_BITS: u32 = SS_AUTODISARM;

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

/// The mask a handler runs with: the current mask, plus the action's `sa_mask`, plus the
/// signal itself unless `SA_NODEFER`; SIGKILL and SIGSTOP are never blocked (Linux
/// `signal_delivered`). The mask before delivery is what the frame saves.
pub fn handler_mask(current: u64, sig: i32, act: &SigAction) -> u64 {
    let mut m = current | act.mask;
    if act.flags & SA_NODEFER == 0 {
        m |= sigbit(sig);
    }
    m & !UNBLOCKABLE
}

/// A thread's alternate signal stack, as Linux keeps it (`sas_ss_sp`, `sas_ss_size`,
/// `sas_ss_flags`); also the `stack_t` of `sigaltstack(2)` and of `uc_stack`. A disabled
/// stack has `size` 0: that, not the flags, is what makes it disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub flags: u32,
    pub size: u64,
}

impl Default for AltStack {
    /// No alternate stack (after `fork` of a thread, and after `execve`).
    fn default() -> Self {
        AltStack {
            sp: 0,
            flags: SS_DISABLE,
            size: 0,
        }
    }
}

impl AltStack {
    /// `sizeof(stack_t)`: `ss_sp` at 0, `int ss_flags` at 8, `ss_size` at 16.
    pub const SIZE: usize = 24;

    /// `true` if `sp` is on this alternate stack (Linux `on_sig_stack`). A stack with
    /// `SS_AUTODISARM` never counts: it is disarmed while a handler runs on it, so if
    /// it is armed we cannot be on it.
    pub fn on_alt_stack(&self, sp: u64) -> bool {
        if self.flags & SS_AUTODISARM != 0 {
            return false;
        }
        sp > self.sp && sp - self.sp <= self.size
    }

    /// `ss_flags` as `sigaltstack(2)` reports them for a thread at `sp`: SS_DISABLE,
    /// SS_ONSTACK or 0, plus SS_AUTODISARM if it was set.
    pub fn reported_flags(&self, sp: u64) -> u32 {
        let mode = if self.size == 0 {
            SS_DISABLE
        } else if self.on_alt_stack(sp) {
            SS_ONSTACK
        } else {
            0
        };
        mode | (self.flags & SS_FLAG_BITS)
    }

    /// The old stack `sigaltstack(2)` reports for a thread at `sp`.
    pub fn report(&self, sp: u64) -> AltStack {
        AltStack {
            flags: self.reported_flags(sp),
            ..*self
        }
    }

    /// Installs `new` as `sigaltstack(2)` does for a thread at `sp` (Linux
    /// `do_sigaltstack`): EPERM while running on the current alternate stack, EINVAL for
    /// an unknown mode, ENOMEM for a stack smaller than MINSIGSTKSZ. SS_DISABLE clears the
    /// address and size.
    pub fn set(&mut self, new: AltStack, sp: u64) -> Result<(), Errno> {
        if self.on_alt_stack(sp) {
            return Err(EPERM);
        }
        let mode = new.flags & !SS_FLAG_BITS;
        if mode != 0 && mode != SS_ONSTACK && mode != SS_DISABLE {
            return Err(EINVAL);
        }
        if *self == new {
            return Ok(());
        }
        if mode == SS_DISABLE {
            *self = AltStack {
                sp: 0,
                flags: new.flags,
                size: 0,
            };
            return Ok(());
        }
        // Linux also requires `size > sigframe::FRAME_SIZE` (DYNAMIC_SIGFRAME), which
        // MINSIGSTKSZ already implies.
        if new.size < MINSIGSTKSZ {
            return Err(ENOMEM);
        }
        *self = new;
        Ok(())
    }

    /// What `rt_sigreturn` does with the frame's `uc_stack` once the registers (so `sp`)
    /// are restored (Linux `restore_altstack`): `set`, errors ignored.
    pub fn restore(&mut self, saved: AltStack, sp: u64) {
        let _ = self.set(saved, sp);
    }

    /// After a handler's frame is written: an SS_AUTODISARM stack is disarmed until the
    /// handler's `rt_sigreturn` restores it from `uc_stack` (Linux `signal_delivered`).
    pub fn disarm_after_delivery(&mut self) {
        if self.flags & SS_AUTODISARM != 0 {
            *self = AltStack::default();
        }
    }

    /// The `stack_t` bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..8].copy_from_slice(&self.sp.to_le_bytes());
        b[8..12].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.size.to_le_bytes());
        b
    }

    /// Reads a `stack_t`.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> AltStack {
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        AltStack {
            sp: u64_at(0),
            flags: u32::from_le_bytes(b[8..12].try_into().unwrap()),
            size: u64_at(16),
        }
    }
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
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        SIGCONT => DefaultAction::Continue,
        _ => DefaultAction::Terminate,
    }
}

#[derive(Debug, Clone)]
pub struct SignalState {
    pub actions: [SigAction; NSIG + 1],
    /// Blocked signals (bit `sig - 1`).
    pub mask: u64,
    /// `sigaltstack`.
    pub altstack: AltStack,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [SigAction::default(); NSIG + 1],
            mask: 0,
            altstack: AltStack::default(),
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
        self.altstack = AltStack::default();
    }

    /// `true` if `sig` is ignored (explicitly, or by default).
    pub fn ignored(&self, sig: i32) -> bool {
        let a = self.actions[sig as usize];
        a.handler == SIG_IGN
            || (a.handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_mask_adds_sa_mask_and_the_signal_unless_nodefer() {
        let act = SigAction {
            handler: 0x1000,
            flags: SA_SIGINFO,
            mask: sigbit(SIGUSR2) | sigbit(SIGKILL),
        };
        let cur = sigbit(SIGURG) | sigbit(SIGSTOP);
        assert_eq!(
            handler_mask(cur, SIGUSR1, &act),
            sigbit(SIGURG) | sigbit(SIGUSR2) | sigbit(SIGUSR1),
            "SIGKILL and SIGSTOP are never blocked"
        );
        let nodefer = SigAction {
            flags: SA_NODEFER,
            ..act
        };
        assert_eq!(
            handler_mask(cur, SIGUSR1, &nodefer),
            sigbit(SIGURG) | sigbit(SIGUSR2)
        );
        assert_eq!(sigbit(64), 1 << 63, "SIGRTMAX is the top bit");
    }

    #[test]
    fn altstack_set_and_report_as_do_sigaltstack() {
        let mut alt = AltStack::default();
        let sp = 0x7fff_0000;
        assert_eq!(alt.report(sp), AltStack::default(), "disabled: SS_DISABLE");
        let ss = AltStack {
            sp: 0x5000_0000,
            flags: 0,
            size: 0x1_0000,
        };
        assert_eq!(alt.set(AltStack { size: 2047, ..ss }, sp), Err(ENOMEM));
        assert_eq!(alt.set(AltStack { flags: 4, ..ss }, sp), Err(EINVAL));
        assert_eq!(alt.set(AltStack { flags: 3, ..ss }, sp), Err(EINVAL));
        assert_eq!(alt, AltStack::default(), "errors change nothing");
        assert_eq!(alt.set(ss, sp), Ok(()));
        assert_eq!(alt.report(sp).flags, 0);
        // On it: the top is inside (sp > ss_sp && sp - ss_sp <= size), the base is not.
        assert!(alt.on_alt_stack(0x5001_0000));
        assert!(alt.on_alt_stack(0x5000_0001));
        assert!(!alt.on_alt_stack(0x5000_0000));
        assert!(!alt.on_alt_stack(0x5001_0001));
        assert_eq!(alt.report(0x5000_8000).flags, SS_ONSTACK);
        assert_eq!(alt.set(AltStack::default(), 0x5000_8000), Err(EPERM));
        // SS_ONSTACK as the mode is accepted (old programs) and kept.
        let onstack = AltStack {
            flags: SS_ONSTACK,
            ..ss
        };
        assert_eq!(alt.set(onstack, sp), Ok(()));
        assert_eq!(alt.report(sp).flags, 0);
        // SS_DISABLE clears the address and size, whatever was passed.
        assert_eq!(
            alt.set(
                AltStack {
                    flags: SS_DISABLE,
                    ..ss
                },
                sp
            ),
            Ok(())
        );
        assert_eq!(alt, AltStack::default());
    }

    #[test]
    fn autodisarm_is_never_on_and_disarms_on_delivery() {
        let mut alt = AltStack::default();
        let ss = AltStack {
            sp: 0x5000_0000,
            flags: SS_AUTODISARM,
            size: 0x1_0000,
        };
        alt.set(ss, 0x7fff_0000).unwrap();
        assert!(!alt.on_alt_stack(0x5000_8000));
        assert_eq!(alt.report(0x5000_8000).flags, SS_AUTODISARM);
        // Changing it while running on it is allowed (that is the point of the flag).
        alt.disarm_after_delivery();
        assert_eq!(alt, AltStack::default());
        assert_eq!(alt.report(0x5000_8000).flags, SS_DISABLE);
        // rt_sigreturn puts it back from uc_stack.
        alt.restore(ss, 0x7fff_0000);
        assert_eq!(alt, ss);
        // A stack without the flag is kept on delivery.
        let mut plain = AltStack { flags: 0, ..ss };
        plain.disarm_after_delivery();
        assert_eq!(plain.flags, 0);
        assert_eq!(plain.size, 0x1_0000);
    }

    #[test]
    fn stack_t_bytes() {
        let ss = AltStack {
            sp: 0x1122_3344_5566_7788,
            flags: SS_AUTODISARM | SS_ONSTACK,
            size: 0x9000,
        };
        let b = ss.to_bytes();
        assert_eq!(&b[0..8], &0x1122_3344_5566_7788u64.to_le_bytes()); // ss_sp
        assert_eq!(&b[8..12], &0x8000_0001u32.to_le_bytes()); // int ss_flags
        assert_eq!(&b[12..16], &[0; 4]); // padding
        assert_eq!(&b[16..24], &0x9000u64.to_le_bytes()); // ss_size
        assert_eq!(AltStack::from_bytes(&b), ss);
    }
}
