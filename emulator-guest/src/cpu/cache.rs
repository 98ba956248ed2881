//! The decoded-block cache.
//!
//! A block is a run of instructions starting at some pc and ending after the first
//! instruction that leaves it unconditionally (a jump, ecall, ebreak, fence.i, an illegal
//! instruction: `Op::ends_block`), after `MAX_BLOCK` instructions, or before an instruction
//! that cannot be fetched. Conditional branches do not end a block: a taken branch leaves
//! it, a branch not taken goes on with the next instruction (a superblock, so a loop body
//! with early exits is one dispatch from the run loop, not one per branch). A block that
//! does not end in an `END` op gets a `Fallthrough` pseudo-op naming the next pc, so the
//! interpreter always leaves a block through an `END` op or a taken branch, and never
//! walks off its end.
//!
//! The builder turns decoded `Insn`s into `Uop`s, which know where they are: their offset
//! in the block, and pc-relative immediates made absolute.
//!
//! All blocks' ops live in one arena (`uops`); `blocks` indexes it. Lookups go through a
//! direct-mapped table keyed by pc, backed by a hash map. The whole cache is dropped when
//! `Memory::code_generation` changes (a change to an executable page), on `fence.i`, and
//! when the arena grows past `MAX_UOPS`.

use super::decode::{decode, insn_len, Insn, Op};
use crate::mem::{Fault, Memory};
use std::collections::HashMap;

/// Most instructions per block (also bounds how late the budget is checked). With at most
/// 4 bytes each, every offset in a block fits `Uop::off`.
pub const MAX_BLOCK: usize = 63;
const _: () = assert!(MAX_BLOCK * 4 <= u8::MAX as usize);
/// Flush everything when the arena holds this many ops (16 bytes each).
const MAX_UOPS: usize = 1 << 22;
const FAST_BITS: u32 = 14;
const FAST_SIZE: usize = 1 << FAST_BITS;

/// One instruction of a block, as the interpreter runs it (16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uop {
    pub op: Op,
    pub rd: u8,
    pub rs1: u8,
    pub rs2: u8,
    pub rs3: u8,
    /// FP rounding-mode field.
    pub rm: u8,
    /// Its index in the block: how many of the block's instructions run before it.
    pub idx: u8,
    /// Byte offset of this instruction from the block's pc.
    pub off: u8,
    /// The decoded immediate (`Insn::imm`), except that it is absolute where the
    /// instruction is pc-relative: a branch's or `jal`'s target, `auipc`'s value (which
    /// becomes an `Li`), and a `Fallthrough`'s next pc.
    pub imm: i64,
}

impl Uop {
    fn at(d: Insn, idx: usize, off: u64) -> Uop {
        Uop {
            op: d.op,
            rd: d.rd,
            rs1: d.rs1,
            rs2: d.rs2,
            rs3: d.rs3,
            rm: d.rm,
            idx: idx as u8,
            off: off as u8,
            imm: d.imm,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub pc: u64,
    /// The pc after its last instruction (the link value of a block-ending jump).
    pub end: u64,
    /// Range in the arena (including a trailing `Fallthrough`).
    pub start: u32,
    pub len: u32,
    /// Translated code that starts here and may run (`aot`), if any.
    pub aot: Option<super::aot::Entry>,
}

pub struct Cache {
    pub uops: Vec<Uop>,
    pub blocks: Vec<Block>,
    map: HashMap<u64, u32>,
    /// Direct-mapped (pc, block index); pc = u64::MAX when empty (pcs are even).
    fast: Vec<(u64, u32)>,
    /// The `Memory::code_generation` these blocks were decoded under.
    pub generation: u64,
    /// Blocks entered since `Cpu::run` last added them to the counters, and the same
    /// for translated code (see `Counters`).
    pub entered: u64,
    pub aot_calls: u64,
    pub aot_insns: u64,
    pub aot_interp: u64,
    /// Translated entries by pc, for translated code itself (emptied with the blocks).
    pub jumps: super::aot::Jumps,
}

impl Cache {
    pub fn new(generation: u64) -> Cache {
        Cache {
            uops: Vec::new(),
            blocks: Vec::new(),
            map: HashMap::new(),
            fast: vec![(u64::MAX, 0); FAST_SIZE],
            generation,
            entered: 0,
            aot_calls: 0,
            aot_insns: 0,
            aot_interp: 0,
            jumps: Default::default(),
        }
    }

    pub fn flush(&mut self) {
        super::count(|c| c.flushes += 1);
        self.uops.clear();
        self.blocks.clear();
        self.map.clear();
        self.fast.fill((u64::MAX, 0));
        self.jumps.clear();
    }

    /// The index of the block starting at `pc`, decoding it if needed. Fails only if the
    /// first instruction cannot be fetched.
    #[inline]
    pub fn lookup(&mut self, pc: u64, mem: &mut Memory) -> Result<u32, Fault> {
        let slot = ((pc >> 1) as usize) & (FAST_SIZE - 1);
        let (p, b) = self.fast[slot];
        if p == pc {
            return Ok(b);
        }
        self.lookup_slow(pc, mem, slot)
    }

    #[cold]
    fn lookup_slow(&mut self, pc: u64, mem: &mut Memory, slot: usize) -> Result<u32, Fault> {
        let b = match self.map.get(&pc) {
            Some(&b) => b,
            None => {
                if self.uops.len() > MAX_UOPS {
                    self.flush();
                }
                let b = self.build(pc, mem)?;
                super::count(|c| c.decoded += 1);
                self.map.insert(pc, b);
                b
            }
        };
        self.fast[slot] = (pc, b);
        Ok(b)
    }

    fn build(&mut self, pc: u64, mem: &mut Memory) -> Result<u32, Fault> {
        let start = self.uops.len();
        let mut p = pc;
        loop {
            if self.uops.len() - start == MAX_BLOCK {
                self.push_fallthrough(start, pc, p);
                break;
            }
            let bits = match mem.fetch_insn(p) {
                Ok(b) => b,
                Err(f) if p == pc => return Err(f),
                Err(_) => {
                    // The fault is reported when execution gets there.
                    self.push_fallthrough(start, pc, p);
                    break;
                }
            };
            let mut u = Uop::at(decode(bits), self.uops.len() - start, p - pc);
            let rel = |imm: i64| p.wrapping_add(imm as u64) as i64;
            match u.op {
                Op::Jal => u.imm = rel(u.imm),
                _ if u.op.is_branch() => u.imm = rel(u.imm),
                Op::Auipc => {
                    u.op = Op::Li;
                    u.imm = rel(u.imm);
                }
                _ => {}
            }
            self.uops.push(u);
            p = p.wrapping_add(insn_len(bits as u16) as u64);
            if u.op.ends_block() {
                break;
            }
        }
        // The interpreter relies on this: it walks a block without checking for its end.
        assert!(self.uops.last().is_some_and(|u| u.op.ends_block()));
        let idx = self.blocks.len() as u32;
        self.blocks.push(Block {
            pc,
            end: p,
            start: start as u32,
            len: (self.uops.len() - start) as u32,
            aot: super::aot::entry(pc, mem),
        });
        Ok(idx)
    }

    fn push_fallthrough(&mut self, start: usize, pc: u64, next: u64) {
        let at = Uop::at(
            Insn::new(Op::Fallthrough),
            self.uops.len() - start,
            next - pc,
        );
        self.uops.push(Uop {
            imm: next as i64,
            ..at
        });
    }
}
