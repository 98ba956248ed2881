//! The RV64IMAFDC (RV64GC) interpreter. It knows nothing about Linux: an `ecall` simply
//! stops `Cpu::run` with `Exit::Ecall`.
//!
//! Structure:
//! - `ops`: the one list of operations (names, operand forms, flags) everything else reads.
//! - `decode`: instruction words (and RVC halfwords, via expansion) to a compact `Insn`.
//! - `cache`: decoded blocks (`Uop`s), keyed by pc; flushed when `Memory::code_generation`
//!   changes or on `fence.i` / `flush_icache`.
//! - `sem`: the integer semantics with corner cases (division, high multiplies), as
//!   functions the interpreter inlines and a translator mirrors.
//! - `exec`: the interpreter loop (`Cpu::run`).
//! - `fp`: software IEEE-754 arithmetic for exact rounding modes and flags.
//! - `disasm`: a short objdump-like disassembler for error messages.
//! - `aot`, `aot_abi`: finding and calling code the converter translated to Wasm; the
//!   interpreter runs whatever has no translation, and is the reference for it.

mod aot;
pub mod aot_abi;
mod cache;
pub mod decode;
pub mod disasm;
mod exec;
pub mod fp;
pub mod ops;
pub mod sem;

pub use disasm::disasm;

use crate::mem::Fault;
use std::cell::Cell;
use std::time::Instant;

/// What the interpreter did, over every hart of this instance (for `RVBOX_STATS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Blocks entered by the run loop (each a lookup and a dispatch to its first op).
    pub blocks: u64,
    /// Blocks decoded (block-cache misses).
    pub decoded: u64,
    /// Whole-cache flushes (`fence.i`, a code change, a full arena).
    pub flushes: u64,
    /// Calls of translated code, instructions it ran, and its returns asking the
    /// interpreter to run an instruction it does not translate (or a slow memory access).
    pub aot_calls: u64,
    pub aot_insns: u64,
    pub aot_interp: u64,
}

thread_local! {
    static COUNTERS: Cell<Counters> = const {
        Cell::new(Counters { blocks: 0, decoded: 0, flushes: 0, aot_calls: 0, aot_insns: 0, aot_interp: 0 })
    };
}

/// The counters so far.
pub fn counters() -> Counters {
    COUNTERS.with(|c| c.get())
}

fn count(f: impl FnOnce(&mut Counters)) {
    crate::mem::update(&COUNTERS, f);
}

/// Why `Cpu::run` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `ecall` at `pc` (pc still points at the ecall; the caller advances it by 4).
    Ecall,
    /// `ebreak` (pc points at it).
    Ebreak,
    /// An instruction that is not valid RV64GC; `pc` points at it.
    IllegalInstruction { bits: u32 },
    /// A load, store or fetch fault; `pc` points at the faulting instruction.
    Fault(Fault),
    /// The instruction budget ran out; `pc` is the next instruction to run.
    Budget,
}

/// The architectural state of one hart. `repr(C)`: translated code reads and writes the
/// registers, pc and instret in place (`aot_abi` has the offsets).
#[repr(C)]
pub struct Cpu {
    /// Integer registers; `x[0]` is always 0 when read.
    pub x: [u64; 32],
    /// Float registers, raw 64-bit (single-precision values are NaN-boxed).
    pub f: [u64; 32],
    pub pc: u64,
    /// `fcsr`: bits 0-4 fflags, bits 5-7 frm.
    pub fcsr: u32,
    /// Instructions retired (`instret`, also used for `cycle`).
    pub instret: u64,
    /// Where the hart's jump cache is (`aot::Jumps`), for translated code; set on every
    /// call into it.
    pub aot_jumps: usize,
    /// The LR/SC reservation: the address of the last LR, if still valid.
    pub reservation: Option<u64>,
    /// Origin of `rdtime` (10 MHz).
    start: Instant,
    /// Decoded blocks; `None` only while `run` has it out.
    cache: Option<Box<cache::Cache>>,
}

impl Clone for Cpu {
    /// Copies the architectural state; the clone starts with an empty decode cache.
    fn clone(&self) -> Cpu {
        Cpu {
            x: self.x,
            f: self.f,
            pc: self.pc,
            fcsr: self.fcsr,
            instret: self.instret,
            aot_jumps: 0,
            reservation: self.reservation,
            start: self.start,
            cache: None,
        }
    }
}

impl Default for Cpu {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pc={:#x} instret={} fcsr={:#x}",
            self.pc, self.instret, self.fcsr
        )?;
        for (i, v) in self.x.iter().enumerate() {
            write!(f, "{}x{i}={v:#x}", if i % 4 == 0 { "\n" } else { " " })?;
        }
        Ok(())
    }
}

impl Cpu {
    pub fn new() -> Cpu {
        Cpu {
            x: [0; 32],
            f: [0; 32],
            pc: 0,
            fcsr: 0,
            instret: 0,
            aot_jumps: 0,
            reservation: None,
            start: Instant::now(),
            cache: None,
        }
    }

    /// Forgets all decoded code (what `fence.i` does). The Linux layer calls this for the
    /// `riscv_flush_icache` system call.
    pub fn flush_icache(&mut self) {
        if let Some(c) = &mut self.cache {
            c.flush();
        }
    }

    /// `rdtime`: 10 MHz ticks since this hart was created.
    pub fn time(&self) -> u64 {
        (self.start.elapsed().as_nanos() / 100) as u64
    }
}
