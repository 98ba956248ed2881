//! The RV64IMAFDC (RV64GC) interpreter. It knows nothing about Linux: an `ecall` simply
//! stops `Cpu::run` with `Exit::Ecall`.

use crate::mem::{Fault, Memory};

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

/// The architectural state of one hart.
#[derive(Clone)]
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
}
