//! The decoded-block cache.
//!
//! A block is a run of instructions starting at some pc and ending after the first
//! control transfer (branch, jump, ecall, ebreak, fence.i, an illegal instruction), after
//! `MAX_BLOCK` instructions, or before an instruction that cannot be fetched. A block that
//! does not end in a control transfer gets a `Fallthrough` pseudo-op naming the next pc, so
//! the interpreter always leaves a block through its last op.
//!
//! All blocks' instructions live in one arena (`insns`); `blocks` indexes it. Lookups go
//! through a direct-mapped table keyed by pc, backed by a hash map. The whole cache is
//! dropped when `Memory::code_generation` changes (a change to an executable page), on `fence.i`,
//! and when the arena grows past `MAX_INSNS`.

use super::decode::{decode, insn_len, Insn, Op};
use crate::mem::{Fault, Memory};
use std::collections::HashMap;

/// Most instructions per block (also bounds how late the budget is checked).
pub const MAX_BLOCK: usize = 64;
/// Flush everything when the arena holds this many instructions (16 bytes each).
const MAX_INSNS: usize = 1 << 22;
const FAST_BITS: u32 = 14;
const FAST_SIZE: usize = 1 << FAST_BITS;

#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub pc: u64,
    /// Range in the arena (including a trailing `Fallthrough`).
    pub start: u32,
    pub len: u32,
}

pub struct Cache {
    pub insns: Vec<Insn>,
    pub blocks: Vec<Block>,
    map: HashMap<u64, u32>,
    /// Direct-mapped (pc, block index); pc = u64::MAX when empty (pcs are even).
    fast: Vec<(u64, u32)>,
    /// The `Memory::code_generation` these blocks were decoded under.
    pub generation: u64,
}

impl Cache {
    pub fn new(generation: u64) -> Cache {
        Cache {
            insns: Vec::new(),
            blocks: Vec::new(),
            map: HashMap::new(),
            fast: vec![(u64::MAX, 0); FAST_SIZE],
            generation,
        }
    }

    pub fn flush(&mut self) {
        self.insns.clear();
        self.blocks.clear();
        self.map.clear();
        self.fast.fill((u64::MAX, 0));
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
                if self.insns.len() > MAX_INSNS {
                    self.flush();
                }
                let b = self.build(pc, mem)?;
                self.map.insert(pc, b);
                b
            }
        };
        self.fast[slot] = (pc, b);
        Ok(b)
    }

    fn build(&mut self, pc: u64, mem: &mut Memory) -> Result<u32, Fault> {
        let start = self.insns.len();
        let mut p = pc;
        let mut n = 0;
        loop {
            if n == MAX_BLOCK {
                self.push_fallthrough(pc, p);
                break;
            }
            let bits = match mem.fetch_insn(p) {
                Ok(b) => b,
                Err(f) if n == 0 => return Err(f),
                Err(_) => {
                    // The fault is reported when execution gets there.
                    self.push_fallthrough(pc, p);
                    break;
                }
            };
            let len = insn_len(bits as u16);
            let mut insn = decode(bits);
            insn.off = (p - pc) as u16;
            let ends = match insn.op {
                Op::Beq | Op::Bne | Op::Blt | Op::Bge | Op::Bltu | Op::Bgeu => {
                    insn.imm = p.wrapping_add(insn.imm as u64) as i64;
                    insn.rd = len;
                    true
                }
                Op::Jal => {
                    insn.imm = p.wrapping_add(insn.imm as u64) as i64;
                    insn.rs2 = len;
                    true
                }
                Op::Jalr => {
                    insn.rs2 = len;
                    true
                }
                Op::Li if insn.is_auipc() => {
                    insn.imm = p.wrapping_add(insn.imm as u64) as i64;
                    insn.rs1 = 0;
                    false
                }
                Op::Ecall | Op::Ebreak | Op::Illegal | Op::FenceI => true,
                _ => false,
            };
            self.insns.push(insn);
            n += 1;
            p = p.wrapping_add(len as u64);
            if ends {
                break;
            }
        }
        let idx = self.blocks.len() as u32;
        self.blocks.push(Block {
            pc,
            start: start as u32,
            len: (self.insns.len() - start) as u32,
        });
        Ok(idx)
    }

    fn push_fallthrough(&mut self, pc: u64, next: u64) {
        self.insns.push(Insn {
            off: (next - pc) as u16,
            imm: next as i64,
            ..Insn::new(Op::Fallthrough)
        });
    }
}
