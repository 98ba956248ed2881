//! The riscv64 signal frame: what a handler finds on its stack and what `rt_sigreturn`
//! reads back, byte for byte as Linux 6.12 writes it (`setup_rt_frame` and
//! `rt_sigreturn` in arch/riscv/kernel/signal.c) on a hart with F and D and without V.
//! Also `siginfo_t`, and the trampoline page a handler returns through.
//!
//! These are pure functions over `Cpu` and `Memory`: **this module does not know about
//! processes, pending signals or the scheduler**, which decide when to deliver.
//!
//! The frame, `struct rt_sigframe { siginfo_t info; struct ucontext uc; }`, is
//! `FRAME_SIZE` = 1088 bytes at a 16-byte aligned address just below the interrupted sp
//! (riscv has no red zone), or just below the top of the alternate stack:
//!
//! | offset | field                                                                 |
//! |--------|-----------------------------------------------------------------------|
//! | 0      | `siginfo_t` (128 bytes)                                               |
//! | 128    | `uc_flags` (0)                                                        |
//! | 136    | `uc_link` (NULL)                                                      |
//! | 144    | `uc_stack`: `ss_sp`, `ss_flags` (int), `ss_size`: the altstack at delivery |
//! | 168    | `uc_sigmask` (8 bytes), then 120 bytes kept for a larger sigset      |
//! | 304    | `uc_mcontext.sc_regs`: pc, then x1..x31 (8 bytes each)                |
//! | 560    | `sc_fpregs.d.f[32]` (8 bytes each)                                    |
//! | 816    | `sc_fpregs.d.fcsr` (u32)                                              |
//! | 1076   | `sc_extdesc.reserved` (0; `rt_sigreturn` wants 0)                     |
//! | 1080   | the END context header `{magic 0, size 0}`: no V state follows        |
//!
//! (`uc_mcontext` is at 176 inside `ucontext`: 16-byte aligned because of the Q-sized
//! `union __riscv_fp_state`, 528 bytes, of which the kernel writes the D part.) Linux
//! leaves the bytes it does not write (the sigset padding, the FP union past the D state)
//! as they were on the stack; we write zeros there.
//!
//! The handler starts with pc = handler, ra = the trampoline, sp = the frame,
//! a0 = the signal, a1 = &frame.info, a2 = &frame.uc; every other register, the FP
//! registers and fcsr keep their interrupted values.
//!
//! # Delivering a signal (what the scheduler does, as Linux `arch_do_signal_or_restart`)
//! 1. Dequeue the signal; if its action has SA_RESETHAND, reset the action to SIG_DFL
//!    (the copy in hand is used for this delivery).
//! 2. If the task was in a system call that wants a restart (Linux's internal
//!    ERESTARTSYS / ERESTARTNOINTR / ERESTARTNOHAND / ERESTART_RESTARTBLOCK): restart it
//!    (a0 = the original a0, pc = the `ecall`) for ERESTARTNOINTR, and for ERESTARTSYS
//!    if the action has SA_RESTART; otherwise a0 = -EINTR and pc = after the `ecall`.
//!    Then `setup_frame` saves exactly those registers.
//! 3. `setup_frame(.., saved_mask = the mask to restore after the handler ..)`: the
//!    current mask, or during rt_sigsuspend / ppoll / pselect6 / epoll_pwait the mask
//!    from before the call. If it fails, the task gets SIGSEGV as `SigInfo::kernel`
//!    (Linux `force_sigsegv`; if the signal was SIGSEGV its handler is reset first).
//! 4. Then the mask becomes `handler_mask(mask now, sig, &act)` and
//!    `AltStack::disarm_after_delivery` runs.
//!
//! `rt_sigreturn` is `restore_frame`: the pc it restores is final (do not add 4 after the
//! `ecall`), its "return value" is the restored a0 (leave a0 alone), and its result must
//! never be treated as a restartable error.

use super::errno::{Errno, E2BIG};
use super::mm::{Mm, VmaKind, MMAP_BASE};
use super::signal::*;
use crate::cpu::Cpu;
use crate::mem::{prot, Access, Fault, Memory, PAGE_SIZE, USER_END};

// `si_code` values (include/uapi/asm-generic/siginfo.h). Negative: sent by a process.
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TIMER: i32 = -2;
pub const SI_MESGQ: i32 = -3;
pub const SI_ASYNCIO: i32 = -4;
pub const SI_SIGIO: i32 = -5;
pub const SI_TKILL: i32 = -6;
pub const SI_DETHREAD: i32 = -7;
pub const SI_ASYNCNL: i32 = -60;

pub const ILL_ILLOPC: i32 = 1;
pub const ILL_ILLOPN: i32 = 2;
pub const ILL_ILLADR: i32 = 3;
pub const ILL_ILLTRP: i32 = 4;
pub const ILL_PRVOPC: i32 = 5;
pub const ILL_PRVREG: i32 = 6;
pub const ILL_COPROC: i32 = 7;
pub const ILL_BADSTK: i32 = 8;

pub const FPE_INTDIV: i32 = 1;
pub const FPE_INTOVF: i32 = 2;
pub const FPE_FLTDIV: i32 = 3;
pub const FPE_FLTOVF: i32 = 4;
pub const FPE_FLTUND: i32 = 5;
pub const FPE_FLTRES: i32 = 6;
pub const FPE_FLTINV: i32 = 7;
pub const FPE_FLTSUB: i32 = 8;

pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;

pub const BUS_ADRALN: i32 = 1;
pub const BUS_ADRERR: i32 = 2;
pub const BUS_OBJERR: i32 = 3;

pub const TRAP_BRKPT: i32 = 1;
pub const TRAP_TRACE: i32 = 2;

pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_TRAPPED: i32 = 4;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;

pub const POLL_IN: i32 = 1;
pub const POLL_OUT: i32 = 2;
pub const POLL_MSG: i32 = 3;
pub const POLL_ERR: i32 = 4;
pub const POLL_PRI: i32 = 5;
pub const POLL_HUP: i32 = 6;

/// `sizeof(struct rt_sigframe)` (16-byte multiple), also what a 6.12 kernel on a hart
/// without V reports as `AT_MINSIGSTKSZ`.
pub const FRAME_SIZE: u64 = 1088;

// Offsets inside the frame (see the table in the module documentation).
const UC: usize = 128;
const UC_STACK: usize = UC + 16;
const UC_SIGMASK: usize = UC + 40;
const UC_MCONTEXT: usize = UC + 176;
const SC_REGS: usize = UC_MCONTEXT;
const SC_FPREGS: usize = UC_MCONTEXT + 256;
const SC_FCSR: usize = SC_FPREGS + 256;
const SC_EXT_RESERVED: usize = SC_FPREGS + 516;
const SC_EXT_HDR: usize = SC_FPREGS + 520;

/// `END_MAGIC`: the context header that ends the extension list.
const END_MAGIC: u32 = 0;
const END_HDR_SIZE: u32 = 0;

/// `siginfo_t` (128 bytes on riscv64): `si_signo`, `si_errno`, `si_code` at 0, 4, 8, then
/// the `_sifields` union at 16. Like Linux (`struct kernel_siginfo`), only the first 48
/// bytes carry anything: the rest reads back as zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    /// `_sifields`, bytes 16..48 of the `siginfo_t`.
    fields: [u8; 32],
}

// Field offsets inside `siginfo_t` (union members at 16).
const SI_PID: usize = 16; // _kill, _rt, _sigchld: pid_t
const SI_UID: usize = 20; // _kill, _rt, _sigchld: uid_t
const SI_TIMERID: usize = 16; // _timer: timer_t (int)
const SI_OVERRUN: usize = 20; // _timer: int
const SI_VALUE: usize = 24; // _rt, _timer: union sigval
const SI_STATUS: usize = 24; // _sigchld: int
const SI_UTIME: usize = 32; // _sigchld: clock_t (long)
const SI_STIME: usize = 40; // _sigchld: clock_t
const SI_ADDR: usize = 16; // _sigfault: void *

impl SigInfo {
    pub const SIZE: usize = 128;

    fn new(sig: i32, code: i32) -> SigInfo {
        SigInfo {
            signo: sig,
            errno: 0,
            code,
            fields: [0; 32],
        }
    }

    fn put(mut self, off: usize, bytes: &[u8]) -> SigInfo {
        self.fields[off - 16..off - 16 + bytes.len()].copy_from_slice(bytes);
        self
    }

    fn get<const N: usize>(&self, off: usize) -> [u8; N] {
        self.fields[off - 16..off - 16 + N].try_into().unwrap()
    }

    /// `kill(2)` (SI_USER) from process `pid` of user `uid`. The kernel also sends
    /// SIGPIPE this way, as if the writer sent it to itself.
    pub fn user(sig: i32, pid: i32, uid: u32) -> SigInfo {
        Self::new(sig, SI_USER)
            .put(SI_PID, &pid.to_le_bytes())
            .put(SI_UID, &uid.to_le_bytes())
    }

    /// `tkill(2)` / `tgkill(2)` (SI_TKILL), so also `raise(3)`.
    pub fn tkill(sig: i32, pid: i32, uid: u32) -> SigInfo {
        Self::user(sig, pid, uid).with_code(SI_TKILL)
    }

    /// A signal the kernel sends on its own (SI_KERNEL, no sender): SIGALRM of
    /// `alarm`/ITIMER_REAL, SIGINT/SIGQUIT/SIGTSTP from the tty, SIGKILL of the OOM path,
    /// the SIGSEGV forced when a frame cannot be written.
    pub fn kernel(sig: i32) -> SigInfo {
        Self::new(sig, SI_KERNEL)
    }

    /// A synchronous fault (Linux `force_sig_fault`): SIGSEGV with SEGV_MAPERR or
    /// SEGV_ACCERR and the data address; SIGBUS with BUS_ADRALN or BUS_ADRERR; SIGILL
    /// ILL_ILLOPC and SIGTRAP TRAP_BRKPT (`ebreak`) with the pc of the instruction.
    pub fn fault(sig: i32, code: i32, addr: u64) -> SigInfo {
        Self::new(sig, code).put(SI_ADDR, &addr.to_le_bytes())
    }

    /// The SIGSEGV of a memory fault: SEGV_ACCERR if something is mapped there,
    /// SEGV_MAPERR if not; `si_addr` is the faulting address.
    pub fn segv(f: &Fault) -> SigInfo {
        let code = if f.mapped { SEGV_ACCERR } else { SEGV_MAPERR };
        Self::fault(SIGSEGV, code, f.addr)
    }

    /// SIGCHLD for child `pid` (of user `uid`): `code` is CLD_EXITED (status = exit
    /// code), CLD_KILLED / CLD_DUMPED (status = the signal), CLD_STOPPED (status = the
    /// stop signal) or CLD_CONTINUED (status = SIGCONT); `utime`/`stime` are the child's
    /// CPU times in clock ticks (USER_HZ, 100 per second).
    pub fn child(pid: i32, uid: u32, code: i32, status: i32, utime: i64, stime: i64) -> SigInfo {
        Self::new(SIGCHLD, code)
            .put(SI_PID, &pid.to_le_bytes())
            .put(SI_UID, &uid.to_le_bytes())
            .put(SI_STATUS, &status.to_le_bytes())
            .put(SI_UTIME, &utime.to_le_bytes())
            .put(SI_STIME, &stime.to_le_bytes())
    }

    /// A POSIX timer expiry (SI_TIMER): the timer id, the overrun count, and the
    /// `sigev_value` given to `timer_create`.
    pub fn timer(sig: i32, timerid: i32, overrun: i32, sigval: u64) -> SigInfo {
        Self::new(sig, SI_TIMER)
            .put(SI_TIMERID, &timerid.to_le_bytes())
            .put(SI_OVERRUN, &overrun.to_le_bytes())
            .put(SI_VALUE, &sigval.to_le_bytes())
    }

    /// `sigqueue(3)` (SI_QUEUE) with its value.
    pub fn queue(sig: i32, pid: i32, uid: u32, sigval: u64) -> SigInfo {
        Self::user(sig, pid, uid)
            .with_code(SI_QUEUE)
            .put(SI_VALUE, &sigval.to_le_bytes())
    }

    fn with_code(mut self, code: i32) -> SigInfo {
        self.code = code;
        self
    }

    /// `si_pid` (kill, tkill, queue, child).
    pub fn pid(&self) -> i32 {
        i32::from_le_bytes(self.get(SI_PID))
    }

    /// `si_uid` (kill, tkill, queue, child).
    pub fn uid(&self) -> u32 {
        u32::from_le_bytes(self.get(SI_UID))
    }

    /// `si_status` (child).
    pub fn status(&self) -> i32 {
        i32::from_le_bytes(self.get(SI_STATUS))
    }

    /// `si_addr` (faults).
    pub fn addr(&self) -> u64 {
        u64::from_le_bytes(self.get(SI_ADDR))
    }

    /// `si_value` (queue, timer).
    pub fn value(&self) -> u64 {
        u64::from_le_bytes(self.get(SI_VALUE))
    }

    /// The `siginfo_t` bytes (Linux `copy_siginfo_to_user`).
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..4].copy_from_slice(&self.signo.to_le_bytes());
        b[4..8].copy_from_slice(&self.errno.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        b[16..48].copy_from_slice(&self.fields);
        b
    }

    /// A `siginfo_t` from user memory for signal `sig` (`rt_sigqueueinfo`,
    /// `rt_tgsigqueueinfo`; Linux `copy_siginfo_from_user`): `si_signo` becomes `sig`,
    /// and E2BIG if `si_code` is one Linux does not know and bytes past the 48 it keeps
    /// are not zero (they could not be passed on). Permission checks on `si_code` are
    /// the caller's.
    pub fn from_bytes(sig: i32, b: &[u8; Self::SIZE]) -> Result<SigInfo, Errno> {
        let i32_at = |o: usize| i32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let code = i32_at(8);
        if !known_layout(sig, code) && b[48..].iter().any(|&x| x != 0) {
            return Err(E2BIG);
        }
        Ok(SigInfo {
            signo: sig,
            errno: i32_at(4),
            code,
            fields: b[16..48].try_into().unwrap(),
        })
    }
}

/// Linux `known_siginfo_layout`: the `si_code`s whose union member the kernel knows.
fn known_layout(sig: i32, code: i32) -> bool {
    if code == SI_KERNEL {
        return true;
    }
    if code > SI_USER {
        // The number of codes of each signal that has its own (NSIGILL, NSIGFPE, ...).
        let limit = match sig {
            SIGILL => 11,
            SIGFPE => 15,
            SIGSEGV => 10,
            SIGBUS => 5,
            SIGTRAP => 6,
            SIGCHLD => 6,
            SIGSYS => 2,
            _ => 6, // NSIGPOLL
        };
        return code <= limit;
    }
    code >= SI_DETHREAD || code == SI_ASYNCNL
}

/// Where the trampoline page goes: the bottom of the gap between the mmap area and the
/// stack. `Mm::find_free` only hands out addresses below `MMAP_BASE`, so it never lands
/// here, and a hinted `mmap` sees the VMA. (Linux puts its vDSO at the top of the mmap
/// area; here the interpreter may already be there when `execve` maps this.)
pub const TRAMPOLINE: u64 = MMAP_BASE;

/// `__vdso_rt_sigreturn` (arch/riscv/kernel/vdso/rt_sigreturn.S): `li a7, 139` (the
/// `addi` form, which libgcc's unwinder recognises as a signal frame) and `ecall`.
pub const TRAMPOLINE_CODE: [u32; 2] = [0x08b0_0893, 0x0000_0073];

static TRAMPOLINE_PAGE: [u8; PAGE_SIZE as usize] = trampoline_page();

const fn trampoline_page() -> [u8; PAGE_SIZE as usize] {
    let mut page = [0u8; PAGE_SIZE as usize];
    let mut i = 0;
    while i < 8 {
        page[i] = TRAMPOLINE_CODE[i / 4].to_le_bytes()[i % 4];
        i += 1;
    }
    page
}

/// Maps the read+exec page holding the `rt_sigreturn` trampoline (shown as `[vdso]`) and
/// returns the address handlers return to. Called by `execve` for the new image; there is
/// no real vDSO, so no AT_SYSINFO_EHDR. The page costs no memory (it is borrowed).
pub fn map_trampoline(mem: &mut Memory, mm: &mut Mm) -> u64 {
    let p = prot::READ | prot::EXEC;
    mm.map_fixed(mem, TRAMPOLINE, PAGE_SIZE, p, VmaKind::Vdso);
    mem.map_borrowed(TRAMPOLINE, &TRAMPOLINE_PAGE, p);
    TRAMPOLINE
}

/// Where the frame goes for a thread at `sp` (Linux `get_sigframe`), or `None` if it
/// cannot go anywhere: a thread on its alternate stack that would overflow it, or an
/// address outside user space.
fn frame_address(sp: u64, act: &SigAction, alt: &AltStack) -> Option<u64> {
    if alt.on_alt_stack(sp) && !alt.on_alt_stack(sp.wrapping_sub(FRAME_SIZE)) {
        return None;
    }
    // X/Open: switch to the alternate stack if asked and not already on it.
    let top = if act.flags & SA_ONSTACK != 0 && alt.size != 0 && !alt.on_alt_stack(sp) {
        alt.sp.wrapping_add(alt.size)
    } else {
        sp
    };
    let frame = top.checked_sub(FRAME_SIZE)? & !0xf;
    (frame + FRAME_SIZE <= USER_END).then_some(frame)
}

fn put(b: &mut [u8], off: usize, bytes: &[u8]) {
    b[off..off + bytes.len()].copy_from_slice(bytes);
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// Writes the frame for handling `sig` with `act` and points the registers at the
/// handler (Linux `setup_rt_frame`). `saved_mask` is the mask `rt_sigreturn` will
/// restore, `alt` the thread's alternate stack (saved in `uc_stack` as it is now),
/// `trampoline` what `map_trampoline` returned. On a fault nothing is changed but
/// possibly part of the frame; the caller forces SIGSEGV.
#[allow(clippy::too_many_arguments)]
pub fn setup_frame(
    cpu: &mut Cpu,
    mem: &mut Memory,
    sig: i32,
    info: &SigInfo,
    act: &SigAction,
    saved_mask: u64,
    alt: &AltStack,
    trampoline: u64,
) -> Result<(), Fault> {
    let sp = cpu.x[2];
    let frame = frame_address(sp, act, alt).ok_or(Fault {
        addr: sp.wrapping_sub(FRAME_SIZE),
        access: Access::Write,
        mapped: false,
    })?;
    let mut b = [0u8; FRAME_SIZE as usize];
    put(&mut b, 0, &info.to_bytes());
    // uc_flags and uc_link stay 0.
    put(&mut b, UC_STACK, &alt.to_bytes());
    put(&mut b, UC_SIGMASK, &saved_mask.to_le_bytes());
    put(&mut b, SC_REGS, &cpu.pc.to_le_bytes());
    for i in 1..32 {
        put(&mut b, SC_REGS + 8 * i, &cpu.x[i].to_le_bytes());
    }
    for i in 0..32 {
        put(&mut b, SC_FPREGS + 8 * i, &cpu.f[i].to_le_bytes());
    }
    put(&mut b, SC_FCSR, &cpu.fcsr.to_le_bytes());
    // sc_extdesc.reserved and the END header {END_MAGIC, END_HDR_SIZE} are zeros.
    mem.write_bytes(frame, &b)?;

    cpu.pc = act.handler;
    cpu.x[1] = trampoline;
    cpu.x[2] = frame;
    cpu.x[10] = sig as u64;
    cpu.x[11] = frame;
    cpu.x[12] = frame + UC as u64;
    // Returning to user mode drops the LR reservation.
    cpu.reservation = None;
    Ok(())
}

/// What `rt_sigreturn` hands back besides the registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// `uc_sigmask`, without SIGKILL and SIGSTOP: the mask to set.
    pub mask: u64,
    /// `uc_stack`, to re-apply with `AltStack::restore` (at the restored sp).
    pub stack: AltStack,
}

/// Why `rt_sigreturn` refused a frame; Linux answers all of them with SIGSEGV
/// (`force_sig(SIGSEGV)`: SI_KERNEL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadFrame {
    /// The frame is not readable (or not in user space).
    Fault(Fault),
    /// `sc_extdesc.reserved` is not zero.
    Reserved(u32),
    /// A context header other than END (this hart has no V state to restore).
    Extension { magic: u32, size: u32 },
}

/// `rt_sigreturn`: reads the frame at sp and restores pc, x1..x31, f0..f31 and fcsr
/// from it. On `BadFrame` some registers may already be restored, as on Linux.
pub fn restore_frame(cpu: &mut Cpu, mem: &mut Memory) -> Result<Restored, BadFrame> {
    let frame = cpu.x[2];
    if frame
        .checked_add(FRAME_SIZE)
        .is_none_or(|end| end > USER_END)
    {
        return Err(BadFrame::Fault(Fault {
            addr: frame,
            access: Access::Read,
            mapped: false,
        }));
    }
    // Linux reads uc_stack, uc_sigmask, sc_regs, the D state, the reserved word and the
    // headers: all inside [UC_STACK, FRAME_SIZE), whose pages are those of the pieces.
    let mut b = [0u8; FRAME_SIZE as usize];
    mem.read_bytes(frame + UC_STACK as u64, &mut b[UC_STACK..])
        .map_err(BadFrame::Fault)?;
    let mask = u64_at(&b, UC_SIGMASK) & !UNBLOCKABLE;
    cpu.pc = u64_at(&b, SC_REGS);
    for i in 1..32 {
        cpu.x[i] = u64_at(&b, SC_REGS + 8 * i);
    }
    for i in 0..32 {
        cpu.f[i] = u64_at(&b, SC_FPREGS + 8 * i);
    }
    // fscsr keeps frm and fflags only.
    cpu.fcsr = u32_at(&b, SC_FCSR) & 0xff;
    cpu.reservation = None;
    let reserved = u32_at(&b, SC_EXT_RESERVED);
    if reserved != 0 {
        return Err(BadFrame::Reserved(reserved));
    }
    let (magic, size) = (u32_at(&b, SC_EXT_HDR), u32_at(&b, SC_EXT_HDR + 4));
    if magic != END_MAGIC || size != END_HDR_SIZE {
        return Err(BadFrame::Extension { magic, size });
    }
    let stack = AltStack::from_bytes(b[UC_STACK..UC_STACK + AltStack::SIZE].try_into().unwrap());
    Ok(Restored { mask, stack })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::Exit;
    use crate::mem::prot::{EXEC, READ, WRITE};

    const STACK_LO: u64 = 0x6fff_0000;
    const STACK_HI: u64 = 0x7000_0000;
    const HANDLER: u64 = 0x10100;
    const SAVED_MASK: u64 = 1 << 22; // SIGURG

    /// A stack filled with 0xaa and registers that all differ.
    fn setup() -> (Cpu, Memory) {
        let mut mem = Memory::new();
        mem.map(STACK_LO, STACK_HI - STACK_LO, READ | WRITE);
        mem.write_bytes(STACK_LO, &vec![0xaa; (STACK_HI - STACK_LO) as usize])
            .unwrap();
        let mut cpu = Cpu::new();
        for i in 1..32 {
            cpu.x[i] = 0x1000_0000_0000_0000 | (i as u64) << 8 | i as u64;
        }
        for i in 0..32 {
            cpu.f[i] = 0x4000_0000_0000_0000 | i as u64;
        }
        cpu.fcsr = 0x21;
        cpu.pc = 0x10044;
        // 8 modulo 16: the frame is aligned down.
        cpu.x[2] = STACK_HI - 0x108;
        (cpu, mem)
    }

    fn act(flags: u64) -> SigAction {
        SigAction {
            handler: HANDLER,
            flags: SA_SIGINFO | flags,
            mask: 1 << 11, // SIGUSR2
        }
    }

    fn read(mem: &mut Memory, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        mem.read_bytes(addr, &mut b).unwrap();
        b
    }

    fn at32(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    fn at64(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    fn deliver(
        cpu: &mut Cpu,
        mem: &mut Memory,
        a: &SigAction,
        alt: &AltStack,
    ) -> Result<(), Fault> {
        let info = SigInfo::tkill(SIGUSR1, 42, 1000);
        setup_frame(cpu, mem, SIGUSR1, &info, a, SAVED_MASK, alt, TRAMPOLINE)
    }

    #[test]
    fn setup_frame_writes_the_linux_layout_and_the_handler_registers() {
        let (mut cpu, mut mem) = setup();
        let before = cpu.clone();
        deliver(&mut cpu, &mut mem, &act(0), &AltStack::default()).unwrap();
        // get_sigframe: (sp - sizeof(struct rt_sigframe)) & ~15.
        let frame = (STACK_HI - 0x108 - 1088) & !15;
        assert_eq!(frame, 0x6fff_fab0);
        assert_eq!(cpu.pc, HANDLER);
        assert_eq!(cpu.x[1], TRAMPOLINE, "ra");
        assert_eq!(cpu.x[2], frame, "sp");
        assert_eq!(cpu.x[10], SIGUSR1 as u64, "a0");
        assert_eq!(cpu.x[11], frame, "a1 = &frame->info");
        assert_eq!(cpu.x[12], frame + 128, "a2 = &frame->uc");
        for i in (3..10).chain(13..32) {
            assert_eq!(cpu.x[i], before.x[i], "x{i} is left alone");
        }
        assert_eq!(cpu.f, before.f, "the handler keeps the FP registers");
        assert_eq!(cpu.fcsr, 0x21, "and fcsr");

        let b = read(&mut mem, frame, 1088);
        // siginfo_t
        assert_eq!(at32(&b, 0), 10); // si_signo
        assert_eq!(at32(&b, 4), 0); // si_errno
        assert_eq!(at32(&b, 8) as i32, -6); // si_code = SI_TKILL
        assert_eq!(at32(&b, 16), 42); // si_pid
        assert_eq!(at32(&b, 20), 1000); // si_uid
        assert!(b[24..128].iter().all(|&x| x == 0), "rest of siginfo_t");
        // struct ucontext at 128
        assert_eq!(at64(&b, 128), 0); // uc_flags
        assert_eq!(at64(&b, 136), 0); // uc_link
        assert_eq!(at64(&b, 144), 0); // uc_stack.ss_sp
        assert_eq!(at32(&b, 152), SS_DISABLE); // uc_stack.ss_flags
        assert_eq!(at64(&b, 160), 0); // uc_stack.ss_size
        assert_eq!(at64(&b, 168), SAVED_MASK); // uc_sigmask
        assert!(
            b[176..304].iter().all(|&x| x == 0),
            "__unused up to uc_mcontext"
        );
        // uc_mcontext at 128 + 176: sc_regs
        assert_eq!(at64(&b, 304), 0x10044); // sc_regs.pc
        for i in 1..32 {
            assert_eq!(at64(&b, 304 + 8 * i), before.x[i], "sc_regs x{i}");
        }
        // sc_fpregs at 304 + 256
        for i in 0..32 {
            assert_eq!(at64(&b, 560 + 8 * i), before.f[i], "sc_fpregs.d.f[{i}]");
        }
        assert_eq!(at32(&b, 816), 0x21); // sc_fpregs.d.fcsr
        assert!(
            b[820..1076].iter().all(|&x| x == 0),
            "rest of the Q-sized union"
        );
        assert_eq!(at32(&b, 1076), 0); // sc_extdesc.reserved
        assert_eq!(at32(&b, 1080), 0); // sc_extdesc.hdr.magic = END_MAGIC
        assert_eq!(at32(&b, 1084), 0); // sc_extdesc.hdr.size = END_HDR_SIZE
                                       // Nothing outside the frame is touched: not below it, not the alignment gap above.
        assert!(read(&mut mem, frame - 64, 64).iter().all(|&x| x == 0xaa));
        assert!(read(&mut mem, frame + 1088, 8).iter().all(|&x| x == 0xaa));
    }

    #[test]
    fn restore_frame_reads_back_what_the_handler_changed() {
        let (mut cpu, mut mem) = setup();
        let before = cpu.clone();
        let alt = AltStack {
            sp: 0x5000_0000,
            flags: 0,
            size: 0x1_0000,
        };
        deliver(&mut cpu, &mut mem, &act(0), &alt).unwrap();
        let frame = cpu.x[2];
        // The handler edits its ucontext, and scribbles on registers.
        mem.write_u64(frame + 304, 0x20000).unwrap(); // sc_regs.pc
        mem.write_u64(frame + 304 + 18 * 8, 0x5152).unwrap(); // sc_regs.s2
        mem.write_u64(frame + 560 + 8 * 8, 0x4045_0000_0000_0000)
            .unwrap(); // f[8]
        mem.write_u32(frame + 816, 0x142).unwrap(); // fcsr; bits above 7 are dropped
        mem.write_u64(frame + 168, (1 << 8) | (1 << 18)).unwrap(); // uc_sigmask: SIGKILL, SIGSTOP
        cpu.x[5] = 0;
        cpu.f[3] = 0;
        cpu.fcsr = 0;
        cpu.reservation = Some(frame);
        let r = restore_frame(&mut cpu, &mut mem).unwrap();
        assert_eq!(cpu.pc, 0x20000);
        assert_eq!(cpu.x[18], 0x5152);
        assert_eq!(cpu.f[8], 0x4045_0000_0000_0000);
        assert_eq!(cpu.fcsr, 0x42);
        assert_eq!(cpu.reservation, None);
        for i in (1..32).filter(|&i| i != 18) {
            assert_eq!(cpu.x[i], before.x[i], "x{i} restored");
        }
        for i in (0..32).filter(|&i| i != 8) {
            assert_eq!(cpu.f[i], before.f[i], "f{i} restored");
        }
        assert_eq!(r.mask, 0, "SIGKILL and SIGSTOP cannot be blocked");
        assert_eq!(r.stack, alt, "uc_stack as saved");
    }

    #[test]
    fn the_alternate_stack_is_used_with_sa_onstack_when_not_already_on_it() {
        let alt_lo = 0x5000_0000;
        let alt = AltStack {
            sp: alt_lo,
            flags: 0,
            size: 0x1_0000,
        };
        let run = |a: &SigAction, alt: &AltStack, sp: u64| {
            let (mut cpu, mut mem) = setup();
            mem.map(alt_lo, 0x1_0000, READ | WRITE);
            cpu.x[2] = sp;
            let r = deliver(&mut cpu, &mut mem, a, alt);
            let uc_stack = read(&mut mem, cpu.x[2] + 144, 24);
            r.map(|()| {
                (
                    cpu.x[2],
                    AltStack::from_bytes(&uc_stack.try_into().unwrap()),
                )
            })
        };
        let normal = STACK_HI - 0x100;
        // SA_ONSTACK: the frame goes just below the top of the alternate stack, and
        // uc_stack holds the stack as it was (flags as set, not SS_ONSTACK).
        let (frame, saved) = run(&act(SA_ONSTACK), &alt, normal).unwrap();
        assert_eq!(frame, alt_lo + 0x1_0000 - 1088);
        assert_eq!(saved, alt);
        // Without SA_ONSTACK: the normal stack.
        assert_eq!(run(&act(0), &alt, normal).unwrap().0, normal - 1088);
        // Already on it (a nested signal): below the current sp.
        let on = alt_lo + 0x8000;
        assert_eq!(run(&act(SA_ONSTACK), &alt, on).unwrap().0, on - 1088);
        // A disabled stack is never used.
        let off = AltStack::default();
        assert_eq!(
            run(&act(SA_ONSTACK), &off, normal).unwrap().0,
            normal - 1088
        );
        // SS_AUTODISARM: never "on" it, so a handler always starts at the top.
        let auto = AltStack {
            flags: SS_AUTODISARM,
            ..alt
        };
        let (frame, saved) = run(&act(SA_ONSTACK), &auto, on).unwrap();
        assert_eq!(frame, alt_lo + 0x1_0000 - 1088);
        assert_eq!(saved.flags, SS_AUTODISARM);
        // On it with no room left for a frame: the kernel's -1 frame, a fault.
        assert!(run(&act(SA_ONSTACK), &alt, alt_lo + 1000).is_err());
        assert!(run(&act(0), &alt, alt_lo + 1000).is_err());
    }

    #[test]
    fn a_frame_that_cannot_be_written_is_a_fault_and_changes_no_register() {
        let (mut cpu, mut mem) = setup();
        let before = cpu.clone();
        // Unmapped below the stack.
        cpu.x[2] = STACK_LO + 64;
        let e = deliver(&mut cpu, &mut mem, &act(0), &AltStack::default()).unwrap_err();
        assert!(!e.mapped);
        assert_eq!(e.access, Access::Write);
        assert_eq!(cpu.pc, before.pc);
        assert_eq!(cpu.x[1], before.x[1]);
        assert_eq!(cpu.x[2], STACK_LO + 64);
        // A read-only stack.
        mem.protect(STACK_LO, STACK_HI - STACK_LO, READ);
        cpu.x[2] = STACK_HI - 0x100;
        let e = deliver(&mut cpu, &mut mem, &act(0), &AltStack::default()).unwrap_err();
        assert!(e.mapped);
        // sp below the frame size: the address wraps, outside user space.
        cpu.x[2] = 512;
        assert!(deliver(&mut cpu, &mut mem, &act(0), &AltStack::default()).is_err());
        assert_eq!(cpu.pc, before.pc);
    }

    #[test]
    fn restore_frame_refuses_what_linux_refuses() {
        let (mut cpu, mut mem) = setup();
        deliver(&mut cpu, &mut mem, &act(0), &AltStack::default()).unwrap();
        let frame = cpu.x[2];
        let good = read(&mut mem, frame, 1088);
        let mut attempt = |off: u64, val: u32| {
            mem.write_bytes(frame, &good).unwrap();
            mem.write_u32(frame + off, val).unwrap();
            cpu.x[2] = frame;
            restore_frame(&mut cpu, &mut mem)
        };
        assert_eq!(attempt(1076, 1), Err(BadFrame::Reserved(1)));
        assert_eq!(
            attempt(1080, 0x5346_5457), // RISCV_V_MAGIC: no V on this hart
            Err(BadFrame::Extension {
                magic: 0x5346_5457,
                size: 0
            })
        );
        assert_eq!(
            attempt(1084, 8),
            Err(BadFrame::Extension { magic: 0, size: 8 })
        );
        assert!(attempt(0, 0xdead).is_ok(), "siginfo is not read back");
        // Not mapped, and outside user space.
        cpu.x[2] = 0x1000;
        assert!(matches!(
            restore_frame(&mut cpu, &mut mem),
            Err(BadFrame::Fault(_))
        ));
        cpu.x[2] = USER_END - 64;
        assert!(matches!(
            restore_frame(&mut cpu, &mut mem),
            Err(BadFrame::Fault(_))
        ));
        // The frame's last bytes are past the end of the stack mapping.
        cpu.x[2] = STACK_HI - 1000;
        assert!(matches!(
            restore_frame(&mut cpu, &mut mem),
            Err(BadFrame::Fault(_))
        ));
    }

    #[test]
    fn siginfo_layouts() {
        let b = SigInfo::user(SIGTERM, 7, 1000).to_bytes();
        assert_eq!(
            (at32(&b, 0), at32(&b, 8), at32(&b, 16), at32(&b, 20)),
            (15, 0, 7, 1000)
        );
        let b = SigInfo::kernel(SIGALRM).to_bytes();
        assert_eq!((at32(&b, 0), at32(&b, 8)), (14, 0x80));
        assert!(b[12..].iter().all(|&x| x == 0));
        let b = SigInfo::segv(&Fault {
            addr: 0x10,
            access: Access::Write,
            mapped: false,
        })
        .to_bytes();
        // si_addr at 16
        assert_eq!(
            (at32(&b, 0), at32(&b, 8), at64(&b, 16)),
            (11, SEGV_MAPERR as u32, 0x10)
        );
        let i = SigInfo::segv(&Fault {
            addr: 0x3000,
            access: Access::Read,
            mapped: true,
        });
        assert_eq!((i.code, i.addr()), (SEGV_ACCERR, 0x3000));
        let b = SigInfo::fault(SIGILL, ILL_ILLOPC, 0x10040).to_bytes();
        assert_eq!((at32(&b, 0), at32(&b, 8), at64(&b, 16)), (4, 1, 0x10040));
        // _sigchld: pid 16, uid 20, status 24, utime 32, stime 40.
        let c = SigInfo::child(99, 1000, CLD_EXITED, 3, 12, 34);
        let b = c.to_bytes();
        assert_eq!(
            (
                at32(&b, 0),
                at32(&b, 8),
                at32(&b, 16),
                at32(&b, 20),
                at32(&b, 24)
            ),
            (17, 1, 99, 1000, 3)
        );
        assert_eq!((at64(&b, 32), at64(&b, 40)), (12, 34));
        assert_eq!((c.pid(), c.uid(), c.status()), (99, 1000, 3));
        // _timer: tid 16, overrun 20, sigval 24.
        let b = SigInfo::timer(SIGALRM, 3, 2, 0xfeed).to_bytes();
        assert_eq!(
            (at32(&b, 8) as i32, at32(&b, 16), at32(&b, 20), at64(&b, 24)),
            (SI_TIMER, 3, 2, 0xfeed)
        );
        // _rt: pid 16, uid 20, sigval 24.
        let q = SigInfo::queue(SIGUSR1, 5, 6, 0xbeef);
        let b = q.to_bytes();
        assert_eq!(
            (at32(&b, 8) as i32, at32(&b, 16), at32(&b, 20), at64(&b, 24)),
            (SI_QUEUE, 5, 6, 0xbeef)
        );
        assert_eq!(q.value(), 0xbeef);
        assert_eq!(SigInfo::tkill(SIGUSR1, 5, 6).code, SI_TKILL);
    }

    #[test]
    fn siginfo_from_user_bytes() {
        let q = SigInfo::queue(SIGUSR1, 5, 6, 0xbeef);
        let mut b = q.to_bytes();
        // si_signo comes from the system call's argument.
        let r = SigInfo::from_bytes(SIGUSR2, &b).unwrap();
        assert_eq!(
            r,
            SigInfo {
                signo: SIGUSR2,
                ..q
            }
        );
        // Past the 48 bytes kept: dropped for a known layout...
        b[100] = 1;
        assert_eq!(SigInfo::from_bytes(SIGUSR1, &b).unwrap(), q);
        // ...E2BIG for an unknown one (si_code -8 for SIGUSR1, 12 for SIGSEGV).
        b[8..12].copy_from_slice(&(-8i32).to_le_bytes());
        assert_eq!(SigInfo::from_bytes(SIGUSR1, &b), Err(E2BIG));
        b[8..12].copy_from_slice(&12i32.to_le_bytes());
        assert_eq!(SigInfo::from_bytes(SIGSEGV, &b), Err(E2BIG));
        b[100] = 0;
        assert_eq!(SigInfo::from_bytes(SIGSEGV, &b).unwrap().code, 12);
        for (sig, code, known) in [
            (SIGSEGV, 10, true),
            (SIGSEGV, 11, false),
            (SIGUSR1, 6, true), // the SIGPOLL codes
            (SIGUSR1, 7, false),
            (SIGUSR1, SI_KERNEL, true),
            (SIGUSR1, SI_DETHREAD, true),
            (SIGUSR1, SI_ASYNCNL, true),
            (SIGCHLD, CLD_CONTINUED, true),
        ] {
            assert_eq!(known_layout(sig, code), known, "signal {sig} code {code}");
        }
    }

    #[test]
    fn the_trampoline_is_a_vma_that_mmap_never_hands_out() {
        let mut mem = Memory::new();
        let mut mm = Mm::new();
        let t = map_trampoline(&mut mem, &mut mm);
        assert_eq!(t, TRAMPOLINE);
        assert_eq!(t % PAGE_SIZE, 0);
        let (start, v) = mm.vma_at(t).unwrap();
        assert_eq!((start, v.end, v.prot), (t, t + PAGE_SIZE, READ | EXEC));
        assert_eq!(v.kind, VmaKind::Vdso);
        assert_eq!(mem.fetch_insn(t), Ok(0x08b0_0893)); // li a7, 139 (addi a7, zero, 139)
        assert_eq!(mem.fetch_insn(t + 4), Ok(0x0000_0073)); // ecall
        assert!(mem.write_u32(t, 0).is_err(), "not writable");
        // Top-down mmap starts right below it; a hint on it is not honoured.
        assert_eq!(mm.find_free(0x4000, None), Some(t - 0x4000));
        let h = mm.find_free(PAGE_SIZE, Some(t)).unwrap();
        assert!(h + PAGE_SIZE <= t || h >= t + PAGE_SIZE);
        // It stays clear of the stack.
        assert!(t + PAGE_SIZE <= crate::linux::mm::STACK_TOP - crate::linux::mm::STACK_SIZE);
    }

    /// A whole round trip on the interpreter: a program sends itself SIGUSR1 with
    /// `kill`; the handler (real RISC-V code) checks its registers, edits the saved s2,
    /// fs0 and fcsr in its ucontext and returns through the trampoline, whose
    /// `rt_sigreturn` brings the program back after its `ecall` with the edited values.
    /// The offsets the handler uses (uc + 320 = gregs[18], uc + 496 = fpregs.d.f[8],
    /// uc + 688 = fpregs.d.fcsr) are glibc's `ucontext_t`.
    ///
    /// Cross-check with qemu-riscv64 7.2, which implements the kernel's frame layout:
    /// tests/guest/sigframe_layout.c printed sizeof(siginfo_t) 128, sizeof(ucontext_t)
    /// 960, uc_stack/uc_sigmask/uc_mcontext at 16/40/176 in ucontext_t, __fpregs at 256
    /// and fcsr at 512 in mcontext_t, uc - info = 128, a 16-byte aligned frame, saved sp
    /// = the interrupted sp, saved pc = after the ecall, trampoline words 0x08b00893
    /// 0x00000073, uc_stack {NULL, SS_DISABLE, 0} without an alternate stack, reserved
    /// words 0, and sigreturn restoring the edited s2, fs0, fcsr. Its "frame size" is
    /// 832: qemu's own sigcontext omits the Q-sized part of the FP union; Linux 6.12
    /// reserves sizeof(struct rt_sigframe) = 128 + 960 = 1088, which is what we use.
    #[test]
    fn end_to_end_on_the_interpreter() {
        // main: s2 = 0x1234, fs0 = pi, fcsr = 0x21, kill(42, SIGUSR1), ebreak.
        const MAIN: [u32; 18] = [
            0x00001937, 0x2349091b, // li s2, 0x1234
            0x002002b7, 0x4912829b, 0x00f29293, 0xed528293, // li t0, 0x400921fb54442d18
            0x00e29293, 0x44328293, 0x00c29293, 0xd1828293, //
            0xf2028453, // fmv.d.x fs0, t0
            0x02100293, 0x00329073, // li t0, 0x21; fscsr t0
            0x02a00513, 0x00a00593, 0x08100893, // li a0, 42; li a1, 10; li a7, 129
            0x00000073, 0x00100073, // ecall; ebreak
        ];
        // handler: store a0, a1, a2, sp, ra and the saved s2 at 0x20000, then edit
        // the ucontext, clobber s2 and fs0, ret.
        const HANDLER_CODE: [u32; 20] = [
            0x00020e37, // lui t3, 0x20
            0x00ae3023, 0x00be3423, 0x00ce3823, // sd a0, 0(t3); sd a1, 8(t3); sd a2, 16(t3)
            0x002e3c23, 0x021e3023, // sd sp, 24(t3); sd ra, 32(t3)
            0x14063283, 0x025e3423, // ld t0, 320(a2); sd t0, 40(t3)
            0x00007337, 0x7773031b, 0x14663023, // li t1, 0x7777; sd t1, 320(a2)
            0x00004337, 0x0453031b, 0x03031313, // li t1, 0x4045000000000000 (42.0)
            0x1e663823, // sd t1, 496(a2)
            0x04200313, 0x2a662823, // li t1, 0x42; sw t1, 688(a2)
            0xf2000453, 0x00000913, // fmv.d.x fs0, zero; li s2, 0
            0x00008067, // ret
        ];
        let (code, scratch, sp0) = (0x10000u64, 0x20000u64, STACK_HI - 0x100);
        let mut mem = Memory::new();
        let mut mm = Mm::new();
        mem.map(code, PAGE_SIZE, READ | WRITE | EXEC);
        let words = |w: &[u32]| w.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        mem.write_bytes(code, &words(&MAIN)).unwrap();
        mem.write_bytes(HANDLER, &words(&HANDLER_CODE)).unwrap();
        mem.protect(code, PAGE_SIZE, READ | EXEC);
        mem.map(scratch, PAGE_SIZE, READ | WRITE);
        mem.map(STACK_LO, STACK_HI - STACK_LO, READ | WRITE);
        let tramp = map_trampoline(&mut mem, &mut mm);
        let mut cpu = Cpu::new();
        cpu.pc = code;
        cpu.x[2] = sp0;
        let action = SigAction {
            handler: HANDLER,
            flags: SA_SIGINFO,
            mask: 0,
        };
        let (mut delivered, mut returned) = (0, 0);
        let mut mask = 0u64;
        loop {
            match cpu.run(&mut mem, 10_000) {
                Exit::Ecall if cpu.x[17] == 129 => {
                    // kill(42, SIGUSR1): returns 0, then the signal is delivered.
                    assert_eq!((cpu.x[10], cpu.x[11]), (42, 10));
                    cpu.pc += 4;
                    cpu.x[10] = 0;
                    let info = SigInfo::user(SIGUSR1, 42, 0);
                    let alt = AltStack::default();
                    setup_frame(
                        &mut cpu, &mut mem, SIGUSR1, &info, &action, mask, &alt, tramp,
                    )
                    .unwrap();
                    mask = handler_mask(mask, SIGUSR1, &action);
                    delivered += 1;
                }
                Exit::Ecall if cpu.x[17] == 139 => {
                    assert_eq!(cpu.pc, tramp + 4, "the trampoline's ecall");
                    let r = restore_frame(&mut cpu, &mut mem).unwrap();
                    mask = r.mask;
                    returned += 1;
                }
                Exit::Ebreak => break,
                e => panic!("unexpected {e:?} at {:#x}", cpu.pc),
            }
        }
        assert_eq!((delivered, returned), (1, 1));
        assert_eq!(mask, 0);
        let frame = (sp0 - 1088) & !15;
        let mut seen = [0u8; 48];
        mem.read_bytes(scratch, &mut seen).unwrap();
        assert_eq!(at64(&seen, 0), 10, "handler a0");
        assert_eq!(at64(&seen, 8), frame, "handler a1");
        assert_eq!(at64(&seen, 16), frame + 128, "handler a2");
        assert_eq!(at64(&seen, 24), frame, "handler sp");
        assert_eq!(at64(&seen, 32), tramp, "handler ra");
        assert_eq!(at64(&seen, 40), 0x1234, "saved s2");
        assert_eq!(cpu.pc, code + 0x44, "back at the ebreak after the ecall");
        assert_eq!(cpu.x[2], sp0);
        assert_eq!(cpu.x[10], 0, "kill's result");
        assert_eq!(cpu.x[17], 129, "a7 as before the signal");
        assert_eq!(cpu.x[18], 0x7777, "s2 as the handler set it in the frame");
        assert_eq!(cpu.f[8], 0x4045_0000_0000_0000, "fs0 = 42.0 from the frame");
        assert_eq!(cpu.fcsr, 0x42);
    }
}
