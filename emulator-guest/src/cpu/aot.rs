//! Finding and calling the code the converter translated ahead of time
//! (converter/src/aot/; the contract is `aot_abi`).
//!
//! The index names translations by the bundle offset of the code they were made from. A
//! translation of a group of code is used at `pc` only if every page the group covers is,
//! in this address space, an executable page reading that file's bytes in place
//! (`Memory::exec_borrowed`), all at the same distance from the bundle: then the bytes
//! the hart would fetch are exactly the bytes that were translated, wherever the loader
//! put the file. A page that was written (copied), remapped or made from anything else
//! fails the check, and its code is interpreted. The decoded-block cache remembers the
//! answer per block (`Block::aot`) and forgets it with the block: on `fence.i` and on any
//! change to an executable mapping (`Memory::code_generation`).
//!
//! Natively there is no translated code: `entry` is always `None`.

use super::aot_abi as abi;
use crate::mem::{Memory, PAGE_SIZE};

/// A translated entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The function's slot in the Wasm function table.
    pub slot: u32,
    /// The block to start at.
    pub block: u32,
    /// Guest address minus ELF address for this mapping.
    pub bias: u64,
}

/// One entry of a hart's jump cache (`aot_abi::JUMP_*`).
#[derive(Clone, Copy)]
#[repr(C)]
struct Jump {
    pc: u64,
    slot: u32,
    block: u32,
    bias: u64,
    _pad: u64,
}

const NO_JUMP: Jump = Jump {
    pc: abi::JUMP_EMPTY,
    slot: 0,
    block: 0,
    bias: 0,
    _pad: 0,
};

/// A hart's jump cache: translated entries by guest pc, read by translated code when it
/// jumps out of its own code (`aot_abi`). It holds only entries `entry` gave for the
/// current address space, and it is part of the decoded-block cache: emptied with it
/// (`clear`), dropped with it. Allocated at the first entry.
#[derive(Default)]
pub struct Jumps(Vec<Jump>);

impl Jumps {
    /// The first entry of `pc`'s set.
    fn set(pc: u64) -> usize {
        let set = pc.wrapping_mul(abi::JUMP_HASH) >> (64 - abi::JUMP_SETS.trailing_zeros());
        set as usize * abi::JUMP_WAYS as usize
    }

    /// Remembers that `e` runs at `pc` (in the set's first way; the entry there moves to
    /// the second).
    pub fn remember(&mut self, pc: u64, e: Entry) {
        if self.0.is_empty() {
            self.0 = vec![NO_JUMP; (abi::JUMP_SETS * abi::JUMP_WAYS) as usize];
        }
        let at = Self::set(pc);
        if self.0[at].pc != pc {
            self.0[at + 1] = self.0[at];
        }
        self.0[at] = Jump {
            pc,
            slot: e.slot,
            block: e.block,
            bias: e.bias,
            _pad: 0,
        };
    }

    pub fn clear(&mut self) {
        self.0.fill(NO_JUMP);
    }

    /// The entry remembered at `pc` (what translated code finds).
    #[cfg(test)]
    fn get(&self, pc: u64) -> Option<Entry> {
        let at = Self::set(pc);
        let j = self.0.get(at..at + 2)?.iter().find(|j| j.pc == pc)?;
        Some(Entry {
            slot: j.slot,
            block: j.block,
            bias: j.bias,
        })
    }

    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

/// The parsed index.
struct Index {
    bytes: &'static [u8],
    groups: usize,
    table_base: u32,
    bundle: &'static [u8],
}

struct Group {
    bundle_off: u64,
    vaddr: u64,
    len: u64,
    func: u32,
    first: usize,
    count: usize,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Index {
    /// Checks the index's shape once; afterwards every read is in bounds.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    fn new(bytes: &'static [u8], table_base: u32, bundle: &'static [u8]) -> Option<Index> {
        if bytes.len() < abi::INDEX_HEAD || bytes[..8] != abi::INDEX_MAGIC {
            return None;
        }
        let groups = le32(bytes, 8) as usize;
        let offsets = le32(bytes, 12) as usize;
        let need = abi::INDEX_HEAD + groups * abi::GROUP_LEN + offsets * 2;
        if bytes.len() != need {
            return None;
        }
        let ix = Index {
            bytes,
            groups,
            table_base,
            bundle,
        };
        for g in 0..groups {
            let gr = ix.group(g);
            if gr.first + gr.count > offsets
                || gr.len > abi::MAX_GROUP_BYTES
                || table_base.checked_add(gr.func).is_none()
            {
                return None;
            }
        }
        Some(ix)
    }

    fn group(&self, g: usize) -> Group {
        let at = abi::INDEX_HEAD + g * abi::GROUP_LEN;
        let b = self.bytes;
        Group {
            bundle_off: le64(b, at),
            vaddr: le64(b, at + 8),
            len: le32(b, at + 16) as u64,
            func: le32(b, at + 20),
            first: le32(b, at + 24) as usize,
            count: le32(b, at + 28) as usize,
        }
    }

    fn offset(&self, k: usize) -> u64 {
        let at = abi::INDEX_HEAD + self.groups * abi::GROUP_LEN + 2 * k;
        u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]) as u64
    }

    /// The group holding bundle offset `off`, if any.
    fn find(&self, off: u64) -> Option<Group> {
        // The first group starting after `off`; the one before it may hold `off`.
        let (mut lo, mut hi) = (0, self.groups);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.group(mid).bundle_off <= off {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let g = self.group(lo.checked_sub(1)?);
        (off < g.bundle_off + g.len).then_some(g)
    }

    fn entry(&self, pc: u64, mem: &Memory) -> Result<Entry, &'static str> {
        let start = self.bundle.as_ptr() as usize;
        let page = mem
            .exec_borrowed(pc)
            .ok_or("the page is not a file's, read in place")? as usize;
        let off = (page + (pc % PAGE_SIZE) as usize)
            .checked_sub(start)
            .filter(|&o| o < self.bundle.len())
            .ok_or("the page is not the bundle's")? as u64;
        let g = self.find(off).ok_or("no translated code there")?;
        let rel = off - g.bundle_off;
        // The block starting exactly there.
        let offsets = g.first..g.first + g.count;
        let k = {
            let (mut lo, mut hi) = (offsets.start, offsets.end);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if self.offset(mid) < rel {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            (lo < offsets.end && self.offset(lo) == rel)
                .then_some(lo - g.first)
                .ok_or("not the start of a translated block")?
        };
        // Every page of the group must read the file's bytes, in place, at one distance.
        let base = pc - rel;
        let mut p = base & !(PAGE_SIZE - 1);
        while p < base + g.len {
            let want = start as u64 + g.bundle_off + p.wrapping_sub(base);
            if mem.exec_borrowed(p).map(|b| b as usize as u64) != Some(want) {
                return Err("a page of its group is not the file's bytes in place");
            }
            p += PAGE_SIZE;
        }
        if let Some((lo, hi)) = crate::knobs::aot_functions() {
            if !(lo..hi).contains(&g.func) {
                return Err("RVBOX_AOT_FUNCTIONS leaves its function out");
            }
        }
        Ok(Entry {
            slot: self.table_base + g.func,
            block: k as u32,
            bias: base.wrapping_sub(g.vaddr),
        })
    }
}

#[cfg(target_arch = "wasm32")]
fn index() -> Option<&'static Index> {
    static INDEX: std::sync::OnceLock<Option<Index>> = std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| {
            if !crate::knobs::aot_enabled() {
                return None;
            }
            let (bytes, base) = crate::host::embedded_aot()?;
            Index::new(bytes, base, crate::host::embedded_bundle()?)
        })
        .as_ref()
}

#[cfg(not(target_arch = "wasm32"))]
fn index() -> Option<&'static Index> {
    None
}

/// The translated entry point at `pc`, if there is one and it may run here.
pub fn entry(pc: u64, mem: &Memory) -> Option<Entry> {
    match index()?.entry(pc, mem) {
        Ok(e) => Some(e),
        Err(why) => {
            if crate::knobs::Log::get().aot {
                static SAID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                if SAID.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 300 {
                    let line = format!("rvbox: aot: {pc:#x} interpreted: {why}\n");
                    let _ = crate::host::write(2, line.as_bytes());
                }
            }
            None
        }
    }
}

/// Runs translated code from `e` with at most about `budget` instructions, and whatever
/// translated code `jumps` leads it on to; returns `aot_abi::JUMP` or `aot_abi::INTERP`,
/// with the hart's pc, registers and instret as the code left them.
#[cfg(target_arch = "wasm32")]
pub fn call(e: Entry, cpu: &mut super::Cpu, mem: &mut Memory, budget: u64, jumps: &Jumps) -> u32 {
    type Translated = extern "C" fn(*mut super::Cpu, *const crate::mem::Tlbs, u32, u64, u64) -> u32;
    let tlbs = mem.tlbs();
    cpu.aot_jumps = jumps.addr();
    // SAFETY: on wasm32 a function pointer is an index into the function table, and the
    // converter put a function of exactly this type (`aot_abi`) at every slot the index
    // names (`Index::new` checked that the index came from the converter's locator).
    // The function reads and writes only `Cpu`'s registers, pc and instret at the
    // offsets `aot_abi` states (checked below at compile time), and reads the TLBs and
    // the pages their valid entries point to, as the interpreter's fast paths do. It
    // goes on only to the table slots of `jumps`, which holds entries `entry` checked
    // for this address space (the decoded-block cache's, emptied with it).
    let f: Translated = unsafe { std::mem::transmute::<usize, Translated>(e.slot as usize) };
    f(cpu, tlbs, e.block, e.bias, budget)
}

#[cfg(not(target_arch = "wasm32"))]
pub fn call(_: Entry, _: &mut super::Cpu, _: &mut Memory, _: u64, _: &Jumps) -> u32 {
    unreachable!("no translated code outside Wasm")
}

const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(super::Cpu, x) as u64 == abi::X);
    assert!(offset_of!(super::Cpu, f) as u64 == abi::F);
    assert!(offset_of!(super::Cpu, pc) as u64 == abi::PC);
    assert!(offset_of!(super::Cpu, instret) as u64 == abi::INSTRET);
    assert!(offset_of!(super::Cpu, aot_jumps) as u64 == abi::JUMPS);
    assert!(std::mem::size_of::<Jump>() as u64 == abi::JUMP_ENTRY);
    assert!(offset_of!(Jump, slot) as u64 == abi::JUMP_FUNC);
    assert!(offset_of!(Jump, block) as u64 == abi::JUMP_BLOCK);
    assert!(offset_of!(Jump, bias) as u64 == abi::JUMP_BIAS);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jump_cache_holds_the_last_two_entries_per_set_until_cleared() {
        let mut j = Jumps::default();
        let e = |slot| Entry {
            slot,
            block: 3,
            bias: 0x1000,
        };
        assert_eq!(j.get(0x1_0000), None, "empty until the first entry");
        j.remember(0x1_0000, e(7));
        assert_eq!(j.get(0x1_0000), Some(e(7)));
        assert_eq!(j.get(0x1_0002), None);
        // Two more pcs of the same set: the oldest of the three goes.
        let mut same = (0x1_0002..)
            .step_by(2)
            .filter(|&p| Jumps::set(p) == Jumps::set(0x1_0000));
        let (b, c) = (same.next().unwrap(), same.next().unwrap());
        j.remember(b, e(8));
        assert_eq!(j.get(0x1_0000), Some(e(7)));
        assert_eq!(j.get(b), Some(e(8)));
        j.remember(b, e(9));
        assert_eq!(j.get(0x1_0000), Some(e(7)), "an update keeps the other way");
        j.remember(c, e(10));
        assert_eq!(j.get(0x1_0000), None);
        assert_eq!((j.get(b), j.get(c)), (Some(e(9)), Some(e(10))));
        let other = c;
        j.clear();
        assert_eq!(j.get(other), None);
        assert_eq!(j.get(0), None);
    }
}
