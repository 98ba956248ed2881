//! The process's mappings (VMAs), as Linux's `mm` keeps them: what `/proc/self/maps`
//! shows, where `mmap` without an address puts things (top-down below the stack), and the
//! program break. Pages themselves live in `mem::Memory`; every change here is mirrored
//! there.

use std::collections::BTreeMap;

use crate::mem::{Memory, PAGE_SIZE, USER_END};
use crate::vfs::Node;

/// What a mapping is, for `/proc/self/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmaKind {
    Anon,
    Heap,
    Stack,
    /// The signal-return trampoline page (`sigframe::map_trampoline`), shown as Linux
    /// shows its vDSO.
    Vdso,
    File(String),
}

#[derive(Debug, Clone)]
pub struct Vma {
    pub end: u64,
    pub prot: u8,
    pub kind: VmaKind,
    /// For a file mapping: the file offset mapped at the VMA's start.
    pub offset: u64,
    /// For a shared file mapping (`MAP_SHARED`): the file, whose pages it maps.
    pub shared_file: Option<SharedFile>,
}

/// The file of a shared file mapping.
#[derive(Clone)]
pub struct SharedFile(pub Node);

impl std::fmt::Debug for SharedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedFile(ino {})", self.0.ino)
    }
}

impl SharedFile {
    fn same(a: &Option<SharedFile>, b: &Option<SharedFile>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => std::rc::Rc::ptr_eq(&a.0, &b.0),
            _ => false,
        }
    }
}

/// Lowest address `mmap` hands out (Linux `mmap_min_addr` is 64 KiB).
pub const MMAP_MIN: u64 = 0x10000;
/// The top of the initial stack.
pub const STACK_TOP: u64 = USER_END - PAGE_SIZE;
/// How much stack is reserved (it costs nothing until touched).
pub const STACK_SIZE: u64 = 8 << 20;
/// `mmap` allocates downwards from here (below the stack and a gap, as Linux does).
pub const MMAP_BASE: u64 = STACK_TOP - STACK_SIZE - (128 << 20);

#[derive(Clone)]
pub struct Mm {
    vmas: BTreeMap<u64, Vma>,
    pub brk_start: u64,
    pub brk: u64,
}

impl Default for Mm {
    fn default() -> Self {
        Self::new()
    }
}

impl Mm {
    pub fn new() -> Mm {
        Mm {
            vmas: BTreeMap::new(),
            brk_start: 0,
            brk: 0,
        }
    }

    pub fn vmas(&self) -> impl Iterator<Item = (u64, &Vma)> {
        self.vmas.iter().map(|(&s, v)| (s, v))
    }

    /// Splits the VMA containing `addr` so that one starts exactly at `addr`.
    fn split_at(&mut self, addr: u64) {
        let Some((&start, v)) = self.vmas.range(..addr).next_back() else {
            return;
        };
        if v.end > addr {
            let tail = Vma {
                end: v.end,
                offset: match v.kind {
                    VmaKind::File(_) => v.offset + (addr - start),
                    _ => 0,
                },
                ..v.clone()
            };
            self.vmas.get_mut(&start).unwrap().end = addr;
            self.vmas.insert(addr, tail);
        }
    }

    /// Removes `[addr, addr+len)` from the VMA list (not from memory).
    fn carve(&mut self, addr: u64, len: u64) {
        let end = addr + len;
        self.split_at(addr);
        self.split_at(end);
        let inside: Vec<u64> = self.vmas.range(addr..end).map(|(&s, _)| s).collect();
        for s in inside {
            self.vmas.remove(&s);
        }
    }

    /// `true` if `b` (starting at `b_start`) continues `a` (starting at `a_start`): same
    /// protection and kind, and for files the next offsets.
    fn continues(a_start: u64, a: &Vma, b_start: u64, b: &Vma) -> bool {
        a.end == b_start
            && a.prot == b.prot
            && a.kind == b.kind
            && SharedFile::same(&a.shared_file, &b.shared_file)
            && (!matches!(a.kind, VmaKind::File(_)) || a.offset + (b_start - a_start) == b.offset)
    }

    /// Merges the VMA at `start` with its neighbours where they are the same.
    fn merge_around(&mut self, start: u64) {
        let Some(v) = self.vmas.get(&start).cloned() else {
            return;
        };
        // With the next one.
        if let Some(n) = self.vmas.get(&v.end).cloned() {
            if Self::continues(start, &v, v.end, &n) {
                self.vmas.remove(&v.end);
                self.vmas.get_mut(&start).unwrap().end = n.end;
            }
        }
        // With the previous one.
        if let Some((&ps, p)) = self.vmas.range(..start).next_back() {
            if Self::continues(ps, p, start, &v) {
                let end = self.vmas.remove(&start).unwrap().end;
                self.vmas.get_mut(&ps).unwrap().end = end;
            }
        }
    }

    /// Maps fresh zero pages at `[addr, addr+len)`, replacing what was there.
    pub fn map_fixed(&mut self, mem: &mut Memory, addr: u64, len: u64, prot: u8, kind: VmaKind) {
        self.map_fixed_at(mem, addr, len, prot, kind, 0);
    }

    /// `map_fixed` for a file mapping of the file's bytes from `offset`.
    pub fn map_fixed_at(
        &mut self,
        mem: &mut Memory,
        addr: u64,
        len: u64,
        prot: u8,
        kind: VmaKind,
        offset: u64,
    ) {
        self.insert(
            mem,
            addr,
            Vma {
                end: addr + len,
                prot,
                kind,
                offset,
                shared_file: None,
            },
        );
    }

    /// Puts `vma` at `addr` in place of what was there, with fresh zero pages (a shared
    /// file mapping then maps the file's pages over them).
    pub fn insert(&mut self, mem: &mut Memory, addr: u64, vma: Vma) {
        let (len, prot) = (vma.end - addr, vma.prot);
        self.carve(addr, len);
        self.vmas.insert(addr, vma);
        self.merge_around(addr);
        mem.map(addr, len, prot);
    }

    /// The file offset mapped at `addr` (0 outside file mappings).
    pub fn offset_at(&self, addr: u64) -> u64 {
        match self.vma_at(addr) {
            Some((s, v)) if matches!(v.kind, VmaKind::File(_)) => v.offset + (addr - s),
            _ => 0,
        }
    }

    /// Unmaps `[addr, addr+len)`.
    pub fn unmap(&mut self, mem: &mut Memory, addr: u64, len: u64) {
        self.carve(addr, len);
        mem.unmap(addr, len);
    }

    /// Changes the protection of `[addr, addr+len)`; `false` if part of it is unmapped
    /// (nothing is changed then... Linux changes the part before the hole; we change none).
    pub fn protect(&mut self, mem: &mut Memory, addr: u64, len: u64, prot: u8) -> bool {
        if !self.is_mapped(addr, len) {
            return false;
        }
        let end = addr + len;
        self.split_at(addr);
        self.split_at(end);
        let inside: Vec<u64> = self.vmas.range(addr..end).map(|(&s, _)| s).collect();
        for s in &inside {
            self.vmas.get_mut(s).unwrap().prot = prot;
        }
        for s in inside {
            self.merge_around(s);
        }
        mem.protect(addr, len, prot);
        true
    }

    /// `true` if every byte of `[addr, addr+len)` is in some VMA.
    pub fn is_mapped(&self, addr: u64, len: u64) -> bool {
        let end = addr + len;
        let mut at = addr;
        if let Some((_, v)) = self.vmas.range(..=at).next_back() {
            if v.end > at {
                at = v.end;
            }
        }
        while at < end {
            match self.vmas.get(&at) {
                Some(v) => at = v.end,
                None => return false,
            }
        }
        true
    }

    /// `true` if no byte of `[addr, addr+len)` is mapped.
    pub fn is_free(&self, addr: u64, len: u64) -> bool {
        let end = addr + len;
        if let Some((_, v)) = self.vmas.range(..addr).next_back() {
            if v.end > addr {
                return false;
            }
        }
        self.vmas.range(addr..end).next().is_none()
    }

    /// The VMA containing `addr`.
    pub fn vma_at(&self, addr: u64) -> Option<(u64, &Vma)> {
        let (&s, v) = self.vmas.range(..=addr).next_back()?;
        (v.end > addr).then_some((s, v))
    }

    /// Finds room for `len` bytes: at `hint` if it is free, else the highest free range
    /// below `MMAP_BASE`.
    pub fn find_free(&self, len: u64, hint: Option<u64>) -> Option<u64> {
        if let Some(h) = hint {
            let h = h & !(PAGE_SIZE - 1);
            if h >= MMAP_MIN && h.checked_add(len)? <= USER_END && self.is_free(h, len) {
                return Some(h);
            }
        }
        let mut top = MMAP_BASE;
        // Walk down over the VMAs below `top`.
        for (&s, v) in self.vmas.range(..MMAP_BASE).rev() {
            if v.end <= top && top - v.end >= len {
                return Some(top - len);
            }
            top = top.min(s);
        }
        (top >= MMAP_MIN + len).then(|| top - len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::prot;

    #[test]
    fn map_protect_unmap_keep_vmas_exact() {
        let mut mem = Memory::new();
        let mut mm = Mm::new();
        mm.map_fixed(&mut mem, 0x10000, 0x4000, prot::READ, VmaKind::Anon);
        mm.map_fixed(&mut mem, 0x14000, 0x1000, prot::READ, VmaKind::Anon);
        assert_eq!(mm.vmas().count(), 1, "adjacent equal VMAs merge");
        assert!(mm.protect(&mut mem, 0x11000, 0x1000, prot::READ | prot::WRITE));
        assert_eq!(mm.vmas().count(), 3);
        assert!(mm.protect(&mut mem, 0x11000, 0x1000, prot::READ));
        assert_eq!(mm.vmas().count(), 1);
        mm.unmap(&mut mem, 0x12000, 0x1000);
        assert!(!mm.is_mapped(0x10000, 0x5000));
        assert!(mm.is_mapped(0x13000, 0x2000));
        assert!(!mm.protect(&mut mem, 0x10000, 0x5000, prot::NONE));
        assert!(mm.is_free(0x12000, 0x1000));
    }

    #[test]
    fn find_free_goes_top_down() {
        let mut mem = Memory::new();
        let mut mm = Mm::new();
        let a = mm.find_free(0x2000, None).unwrap();
        assert_eq!(a, MMAP_BASE - 0x2000);
        mm.map_fixed(&mut mem, a, 0x2000, prot::READ, VmaKind::Anon);
        let b = mm.find_free(0x1000, None).unwrap();
        assert_eq!(b, a - 0x1000);
        assert_eq!(mm.find_free(0x1000, Some(0x500000)), Some(0x500000));
    }
}
