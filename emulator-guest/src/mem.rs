//! Guest memory: a 39-bit (Sv39 user half) virtual address space made of 4 KiB pages.
//!
//! Linux semantics this emulates: every page is either unmapped or mapped with a protection
//! (`PROT_READ`, `PROT_WRITE`, `PROT_EXEC`, or none). An access that the protection does not
//! allow, or to an unmapped page, is a fault that the Linux layer turns into `SIGSEGV`
//! (`SEGV_ACCERR` or `SEGV_MAPERR`). Anonymous pages cost no host memory until they are
//! written: until then they read as zeros from one shared zero page.
//!
//! This module knows nothing about Linux, files or processes; it is only pages and
//! permissions. The Linux layer (`linux::mm`) keeps the mappings (VMAs) and calls `map`,
//! `unmap` and `protect` here.
//!
//! Pages of a read-only file mapping can *borrow* their bytes from the image bundle (which
//! lives as long as the program): they cost no host memory until written, and the first
//! write copies the page (copy-on-write), as a private file mapping does on Linux.
//!
//! `fork` makes a copy-on-write copy of an address space: both share every written frame
//! (reference-counted) and the first write on either side copies the page, unless the page
//! belongs to a shared mapping (`MAP_SHARED`), whose frames stay shared.
//!
//! The guest's memory budget ([`budget`]) is one count for every address space: each host
//! frame holding guest data (a page's own frame, a copy made on write, a shared page)
//! counts once however many address spaces map it, and a first write that needs a frame
//! beyond the budget faults (`Memory::out_of_memory` tells such a fault apart).
//!
//! Speed: loads, stores and instruction fetches go through small direct-mapped TLBs that
//! cache the host address of a guest page, one per access kind, so the permission check is
//! done once per page and not once per access. Every change to the page tables flushes them.
//! An aligned access that hits is one compare and one add (`TlbEntry::aligned`); a
//! misaligned one takes the slow path, which still serves it from the TLB when it stays
//! within the page.

use std::cell::UnsafeCell;
use std::ptr;
use std::rc::Rc;

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
const PAGE_MASK: u64 = PAGE_SIZE - 1;
/// One past the highest user address (Linux riscv64 with Sv39: `TASK_SIZE` = 256 GiB).
pub const USER_END: u64 = 1 << 38;

const L2_BITS: u32 = 12;
const L2_SIZE: usize = 1 << L2_BITS;
const L1_SIZE: usize = 1 << (38 - PAGE_SHIFT - L2_BITS);
/// Entries per TLB (one per access kind): 2048 pages, 8 MiB of each kind. 256 (1 MiB)
/// missed on 2% of sqlite3's instructions.
const TLB_SIZE: usize = 2048;

/// Page protection bits, as in `mmap(2)`.
pub mod prot {
    pub const NONE: u8 = 0;
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const EXEC: u8 = 4;
    /// Internal: the page is mapped (so `NONE` is told apart from unmapped).
    pub(crate) const MAPPED: u8 = 0x80;
    /// Internal: the page belongs to a shared mapping; `fork` shares its frame.
    pub(crate) const SHARED: u8 = 0x40;
    /// Internal: the page's frame may also be another address space's (after `fork`):
    /// copied before it is written.
    pub(crate) const COW: u8 = 0x20;
    /// The bits `mmap`'s protection uses.
    pub(crate) const RWX: u8 = READ | WRITE | EXEC;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Exec,
}

/// A guest memory access that the page tables do not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The faulting guest address (the first byte that could not be accessed).
    pub addr: u64,
    pub access: Access,
    /// `true` if the page was mapped but its protection forbade the access (`SEGV_ACCERR`);
    /// `false` if nothing was mapped there (`SEGV_MAPERR`).
    pub mapped: bool,
}

/// A host page holding guest data. Shared (`Rc`) between address spaces after `fork`; all
/// access goes through raw pointers from `ptr()`, and the emulator is single-threaded.
#[repr(C, align(16))]
struct Frame(UnsafeCell<[u8; PAGE_SIZE as usize]>);

static ZERO_PAGE: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];

impl Frame {
    /// A new frame, counted in the [`budget`] until it is dropped.
    fn zeroed() -> Rc<Frame> {
        let f = Rc::<Frame>::new_zeroed();
        budget::USED.with(|u| u.set(u.get() + 1));
        // SAFETY: all-zero bytes are a valid `Frame` (a byte array in an `UnsafeCell`).
        unsafe { f.assume_init() }
    }

    fn ptr(&self) -> *mut u8 {
        self.0.get() as *mut u8
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        budget::USED.with(|u| u.set(u.get() - 1));
    }
}

/// The guest's memory budget: how many host frames hold guest data, in every address
/// space together, and how many may.
///
/// Linux semantics this stands for: a container's memory cgroup (`docker run --memory`),
/// whose limit counts each page once, however many processes map it. A page fault that
/// would take the guest over the limit ends the faulting process (the kernel layer sends
/// SIGKILL, as the cgroup's OOM killer would); an `mmap` or `brk` of private writable
/// memory larger than the whole limit fails up front (`ENOMEM`), as Linux's heuristic
/// overcommit refuses one allocation larger than all of RAM.
///
/// The emulator is single-threaded, so the count is a per-thread value (unit tests,
/// each on a thread of its own, each get their own budget).
pub mod budget {
    use super::PAGE_SIZE;
    use std::cell::Cell;

    /// The limit a thread starts with (the emulator sets its own at boot).
    pub const INITIAL_LIMIT: u64 = 2 << 30;

    /// Where the limit came from, for messages.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Source {
        /// rvbox's default: what the module's memory leaves room for.
        Default,
        /// The host asked for it (`RVBOX_MEMORY`, `rvbox run --memory`).
        Host,
    }

    thread_local! {
        /// Frames holding guest data now (made by `Frame::zeroed`, gone when dropped).
        pub(super) static USED: Cell<u64> = const { Cell::new(0) };
        /// Of those, pages of file bytes in the in-memory layer (`try_charge_file`).
        static FILES: Cell<u64> = const { Cell::new(0) };
        static LIMIT: Cell<u64> = const { Cell::new(INITIAL_LIMIT / PAGE_SIZE) };
        static SOURCE: Cell<Source> = const { Cell::new(Source::Default) };
        /// A frame was refused since the last `take_refused`.
        static REFUSED: Cell<bool> = const { Cell::new(false) };
    }

    /// Sets the limit, in bytes (rounded down to whole pages).
    pub fn set_limit(bytes: u64, source: Source) {
        LIMIT.with(|l| l.set(bytes / PAGE_SIZE));
        SOURCE.with(|s| s.set(source));
    }

    /// The limit in bytes.
    pub fn limit() -> u64 {
        LIMIT.with(Cell::get) * PAGE_SIZE
    }

    /// Bytes of host memory holding guest data now.
    pub fn used() -> u64 {
        USED.with(Cell::get) * PAGE_SIZE
    }

    /// Where the limit came from.
    pub fn source() -> Source {
        SOURCE.with(Cell::get)
    }

    /// `true` if one more frame fits; else remembers the refusal (see `take_refused`).
    pub(super) fn room_for_one() -> bool {
        let room = USED.with(Cell::get) < LIMIT.with(Cell::get);
        if !room {
            REFUSED.with(|r| r.set(true));
        }
        room
    }

    /// Takes `pages` pages of the budget for the bytes of files in the in-memory layer;
    /// `false`, taking nothing, if they do not fit: files may fill half the limit (as a
    /// tmpfs is half the memory by default), and not what processes use.
    pub fn try_charge_file(pages: u64) -> bool {
        let limit = LIMIT.with(Cell::get);
        let fits = FILES.with(Cell::get).saturating_add(pages) <= limit / 2
            && USED.with(Cell::get).saturating_add(pages) <= limit;
        if fits {
            charge_file(pages);
        }
        fits
    }

    /// Counts `pages` pages of file bytes even if they do not fit (they exist already).
    pub fn charge_file(pages: u64) {
        USED.with(|u| u.set(u.get().saturating_add(pages)));
        FILES.with(|u| u.set(u.get().saturating_add(pages)));
    }

    /// Gives back pages of file bytes.
    pub fn release_file(pages: u64) {
        USED.with(|u| u.set(u.get().saturating_sub(pages)));
        FILES.with(|u| u.set(u.get().saturating_sub(pages)));
    }

    /// Bytes of files in the in-memory layer (part of `used`).
    pub fn files() -> u64 {
        FILES.with(Cell::get) * PAGE_SIZE
    }

    /// Whether a frame was refused since the last call: a system call that failed with
    /// `EFAULT` writing to the caller's memory ran out of memory rather than into a bad
    /// address.
    pub fn take_refused() -> bool {
        REFUSED.with(|r| r.replace(false))
    }

    /// What the limit is, for a message: "the container's memory limit of 64 MiB
    /// (--memory)".
    pub fn describe() -> String {
        let mib = limit() >> 20;
        match source() {
            Source::Host => format!("the container's memory limit of {mib} MiB (--memory)"),
            Source::Default => format!(
                "rvbox's default memory limit of {mib} MiB (what the module's 4 GiB leave; \
                 choose one with --memory)"
            ),
        }
    }
}

/// What backs a mapped page.
enum Backing {
    /// Never written: reads see zeros.
    Zero,
    /// A host frame, this address space's alone unless the page is `COW` or `SHARED`.
    Owned(Rc<Frame>),
    /// `PAGE_SIZE` bytes of a `&'static [u8]` (image file data), read in place and copied
    /// on the first write.
    Borrowed(&'static [u8; PAGE_SIZE as usize]),
}

impl Backing {
    /// Drops the page's contents; `true` if it had a host frame of its own.
    fn release(&mut self) -> bool {
        matches!(std::mem::replace(self, Backing::Zero), Backing::Owned(_))
    }
}

struct L2 {
    frames: Vec<Backing>,
    prot: Vec<u8>,
}

impl L2 {
    fn new() -> Box<L2> {
        Box::new(L2 {
            frames: (0..L2_SIZE).map(|_| Backing::Zero).collect(),
            prot: vec![0; L2_SIZE],
        })
    }

    /// A frame the page may be written through: made (zeroed or copied from its borrowed
    /// bytes) if needed, or copied if another address space may share it (`COW`).
    /// `in_use` counts the address space's pages with a frame. With `limited`, `None`
    /// when the [`budget`] has no room for a new frame.
    fn owned_frame(&mut self, i: usize, in_use: &mut u64, limited: bool) -> Option<*mut u8> {
        let cow = self.prot[i] & prot::COW != 0;
        if let Backing::Owned(f) = &mut self.frames[i] {
            if !cow || Rc::strong_count(f) == 1 {
                self.prot[i] &= !prot::COW;
                return Some(f.ptr());
            }
            // Shared with another address space since a fork: this one gets a copy (it
            // already counts the page, so `in_use` does not change; the budget does).
            if limited && !budget::room_for_one() {
                return None;
            }
            let copy = Frame::zeroed();
            // SAFETY: two distinct live frames of PAGE_SIZE bytes.
            unsafe { ptr::copy_nonoverlapping(f.ptr(), copy.ptr(), PAGE_SIZE as usize) };
            let base = copy.ptr();
            *f = copy;
            self.prot[i] &= !prot::COW;
            return Some(base);
        }
        if limited && !budget::room_for_one() {
            return None;
        }
        *in_use += 1;
        let f = Frame::zeroed();
        if let Backing::Borrowed(b) = self.frames[i] {
            // SAFETY: `b` and the new frame are distinct PAGE_SIZE-byte buffers.
            unsafe { ptr::copy_nonoverlapping(b.as_ptr(), f.ptr(), PAGE_SIZE as usize) };
        }
        let base = f.ptr();
        self.frames[i] = Backing::Owned(f);
        self.prot[i] &= !prot::COW;
        Some(base)
    }
}

/// A page of a file that shared mappings (`MAP_SHARED`) map: every address space mapping
/// it reads and writes the same host frame, and the file (`vfs::FileData`) keeps it too.
#[derive(Clone)]
pub struct SharedPage(Rc<Frame>);

impl SharedPage {
    /// A page holding `data` (at most a page), zeros after it.
    pub fn new(data: &[u8]) -> SharedPage {
        let f = Frame::zeroed();
        let n = data.len().min(PAGE_SIZE as usize);
        // SAFETY: the new frame has PAGE_SIZE bytes and `n <= PAGE_SIZE`; `data` is a
        // distinct Rust slice.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), f.ptr(), n) };
        SharedPage(f)
    }

    /// Copies `buf.len()` bytes from offset `off` of the page.
    pub fn read(&self, off: usize, buf: &mut [u8]) {
        assert!(off + buf.len() <= PAGE_SIZE as usize);
        // SAFETY: in bounds (checked above); the frame is only accessed through raw
        // pointers and the emulator is single-threaded, so nothing aliases mutably now.
        unsafe { ptr::copy_nonoverlapping(self.0.ptr().add(off), buf.as_mut_ptr(), buf.len()) };
    }

    /// Copies `data` to offset `off` of the page.
    pub fn write(&self, off: usize, data: &[u8]) {
        assert!(off + data.len() <= PAGE_SIZE as usize);
        // SAFETY: as in `read`.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), self.0.ptr().add(off), data.len()) };
    }

    /// Zeroes the page from offset `off` on.
    pub fn zero_from(&self, off: usize) {
        let off = off.min(PAGE_SIZE as usize);
        // SAFETY: as in `read`; `off..PAGE_SIZE` is within the frame.
        unsafe { ptr::write_bytes(self.0.ptr().add(off), 0, PAGE_SIZE as usize - off) };
    }

    /// How many hold the page: the file, and every address space mapping it.
    pub fn users(&self) -> usize {
        Rc::strong_count(&self.0)
    }
}

/// One TLB entry: a guest page and where its bytes are. `bias` is the frame's host address
/// minus the page's guest address, so a guest address in the page becomes a host pointer
/// with one add (`bias + addr`, as qemu's TLB addend), on wasm32 and 64-bit hosts alike.
#[derive(Clone, Copy)]
#[repr(C)]
struct TlbEntry {
    /// The page's guest address (low `PAGE_SHIFT` bits zero); `u64::MAX` when empty, which
    /// no masked address equals (its low bits are at most 7).
    page: u64,
    bias: *mut u8,
}

/// What the memory slow paths did, over every address space of this instance (for
/// `RVBOX_STATS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// TLB fills: page-table walks after a TLB miss.
    pub tlb_fills: u64,
    /// Accesses that took the slow path (a TLB miss, a misaligned access, a copy).
    pub slow: u64,
    /// Whole-TLB flushes (a page-table change of many pages, a fork).
    pub tlb_flushes: u64,
}

thread_local! {
    static COUNTERS: std::cell::Cell<Counters> =
        const { std::cell::Cell::new(Counters { tlb_fills: 0, slow: 0, tlb_flushes: 0 }) };
}

/// The counters so far.
pub fn counters() -> Counters {
    COUNTERS.with(|c| c.get())
}

fn count(f: impl FnOnce(&mut Counters)) {
    update(&COUNTERS, f);
}

/// Changes a thread-local counter set in place (the cpu's and this module's).
pub(crate) fn update<T: Copy>(
    key: &'static std::thread::LocalKey<std::cell::Cell<T>>,
    f: impl FnOnce(&mut T),
) {
    key.with(|c| {
        let mut v = c.get();
        f(&mut v);
        c.set(v);
    });
}

const TLB_EMPTY: TlbEntry = TlbEntry {
    page: u64::MAX,
    bias: ptr::null_mut(),
};

impl TlbEntry {
    fn new(vpn: u64, base: *mut u8) -> TlbEntry {
        let page = vpn << PAGE_SHIFT;
        TlbEntry {
            page,
            bias: base.wrapping_sub(page as usize),
        }
    }

    /// `true` if the entry holds `vpn`.
    #[inline(always)]
    fn holds(&self, vpn: u64) -> bool {
        self.page == vpn << PAGE_SHIFT
    }

    /// The host address of `addr` if the entry holds its page and the `n`-byte access at
    /// `addr` is aligned (so it cannot cross into the next page); one compare.
    #[inline(always)]
    fn aligned(&self, addr: u64, n: u64) -> Option<*mut u8> {
        (addr & (!PAGE_MASK | (n - 1)) == self.page).then(|| self.bias.wrapping_add(addr as usize))
    }

    /// As `aligned`, for any access that stays within the page.
    #[inline]
    fn within(&self, addr: u64, n: u64) -> Option<*mut u8> {
        (addr & !PAGE_MASK == self.page && (addr & PAGE_MASK) + n <= PAGE_SIZE)
            .then(|| self.bias.wrapping_add(addr as usize))
    }
}

/// The TLB slot of page `vpn`: its low bits folded with the next ones, because ld.so maps
/// libraries at a fixed distance below the stack, and with the low bits alone the stack's
/// top page and a library's data page took turns in one slot (1.7 million fills each in
/// a sqlite3 run).
#[inline(always)]
fn tlb_slot(vpn: u64) -> usize {
    ((vpn ^ (vpn >> TLB_SIZE.trailing_zeros())) as usize) & (TLB_SIZE - 1)
}

/// The TLBs of an address space, one per access kind. Translated code reads the read and
/// write TLBs in place: the layout is `cpu::aot_abi`'s.
#[repr(C)]
pub struct Tlbs {
    read: [TlbEntry; TLB_SIZE],
    write: [TlbEntry; TLB_SIZE],
    exec: [TlbEntry; TLB_SIZE],
}

// The layout translated code assumes (`cpu::aot_abi`).
const _: () = {
    use crate::cpu::aot_abi as abi;
    assert!(TLB_SIZE as u64 == abi::TLB_SLOTS);
    assert!(std::mem::size_of::<TlbEntry>() as u64 == abi::TLB_ENTRY);
    assert!(std::mem::offset_of!(TlbEntry, bias) as u64 == abi::TLB_BIAS);
    assert!(std::mem::offset_of!(Tlbs, write) as u64 == abi::TLB_WRITE);
    assert!(PAGE_SHIFT as u64 == abi::PAGE_SHIFT);
};

impl Tlbs {
    const EMPTY: Tlbs = Tlbs {
        read: [TLB_EMPTY; TLB_SIZE],
        write: [TLB_EMPTY; TLB_SIZE],
        exec: [TLB_EMPTY; TLB_SIZE],
    };

    /// Forgets page `vpn`.
    fn forget(&mut self, vpn: u64) {
        let slot = tlb_slot(vpn);
        for t in [&mut self.read, &mut self.write, &mut self.exec] {
            if t[slot].holds(vpn) {
                t[slot] = TLB_EMPTY;
            }
        }
    }
}

/// A guest address space.
pub struct Memory {
    l1: Vec<Option<Box<L2>>>,
    /// Boxed (together 96 KiB, too much to move around by value) and made on the first
    /// fill, so an empty address space (what a task that is not running leaves in its
    /// place) costs nothing.
    tlb: Option<Box<Tlbs>>,
    /// Pages of this address space with a frame (its resident set: a frame shared with
    /// other address spaces counts in each, as Linux's RSS does; the [`budget`] counts
    /// it once).
    frames_in_use: u64,
    /// Bumped whenever a mapping changes in a way that can change what code is at an address:
    /// an unmap, remap or protection change of a page that was executable. (Decoded blocks
    /// only ever hold instructions fetched from executable pages, so changes to other pages,
    /// such as malloc's mmap/munmap of data, leave them valid.) Decoded-instruction caches
    /// compare it.
    code_generation: u64,
}

impl Default for Memory {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! access_fns {
    ($read:ident, $write:ident, $t:ty) => {
        #[inline(always)]
        pub fn $read(&mut self, addr: u64) -> Result<$t, Fault> {
            const N: u64 = std::mem::size_of::<$t>() as u64;
            let e = self.tlb_entry(addr, |t| &t.read);
            match e.aligned(addr, N) {
                // SAFETY: the TLB entry is valid, so its page is a live, readable 4 KiB
                // frame of this address space, and an aligned access stays inside it.
                Some(p) => Ok(unsafe { ptr::read_unaligned(p as *const $t) }),
                None => {
                    let mut b = [0u8; N as usize];
                    self.read_slow(addr, &mut b, Access::Read)?;
                    Ok(<$t>::from_le_bytes(b))
                }
            }
        }

        #[inline(always)]
        pub fn $write(&mut self, addr: u64, val: $t) -> Result<(), Fault> {
            const N: u64 = std::mem::size_of::<$t>() as u64;
            let e = self.tlb_entry(addr, |t| &t.write);
            match e.aligned(addr, N) {
                Some(p) => {
                    // SAFETY: the TLB entry is valid, so its page is a live frame owned by
                    // this address space and writable, and an aligned access stays inside.
                    unsafe { ptr::write_unaligned(p as *mut $t, val) };
                    Ok(())
                }
                None => self.write_slow(addr, &val.to_le_bytes(), true),
            }
        }
    };
}

impl Memory {
    /// The entry of `addr`'s slot in one TLB (`pick` chooses it); an empty entry while
    /// this space has no TLBs yet.
    #[inline(always)]
    fn tlb_entry(&self, addr: u64, pick: impl Fn(&Tlbs) -> &[TlbEntry; TLB_SIZE]) -> &TlbEntry {
        match &self.tlb {
            Some(t) => &pick(t)[tlb_slot(addr >> PAGE_SHIFT)],
            None => &TLB_EMPTY,
        }
    }

    pub fn new() -> Memory {
        Memory {
            // Made on the first mapping: an empty address space costs nothing (a process
            // that is not running holds one in place of its own).
            l1: Vec::new(),
            tlb: None,
            frames_in_use: 0,
            code_generation: 0,
        }
    }

    /// Bytes of this address space's pages that have a frame (its resident set).
    pub fn resident_bytes(&self) -> u64 {
        self.frames_in_use * PAGE_SIZE
    }

    /// Changes whenever code at some address may have changed (see the field's doc).
    #[inline]
    pub fn code_generation(&self) -> u64 {
        self.code_generation
    }

    access_fns!(read_u8, write_u8, u8);
    access_fns!(read_u16, write_u16, u16);
    access_fns!(read_u32, write_u32, u32);
    access_fns!(read_u64, write_u64, u64);

    /// The TLBs, made if this space has none yet, for translated code to read in place.
    /// The pointer stays valid until the next system call (nothing between replaces them).
    pub fn tlbs(&mut self) -> *const Tlbs {
        &**self.tlb.get_or_insert_with(|| Box::new(Tlbs::EMPTY))
    }

    /// Where the bytes of the executable page holding `addr` are, if the page reads a
    /// file's bytes in place (`map_borrowed`) and has never been written: what translated
    /// code needs to know that the code at `addr` is the file's.
    pub fn exec_borrowed(&self, addr: u64) -> Option<*const u8> {
        let (l2, i) = self.pte(addr >> PAGE_SHIFT)?;
        let p = l2.prot[i];
        if p & (prot::MAPPED | prot::EXEC) != prot::MAPPED | prot::EXEC {
            return None;
        }
        match l2.frames[i] {
            Backing::Borrowed(b) => Some(b.as_ptr()),
            _ => None,
        }
    }

    /// Fetches 16 bits of instruction at `addr` (which must be 2-byte aligned), checking
    /// execute permission.
    #[inline(always)]
    pub fn fetch_u16(&mut self, addr: u64) -> Result<u16, Fault> {
        let e = self.tlb_entry(addr, |t| &t.exec);
        if let Some(p) = e.aligned(addr, 2) {
            // SAFETY: valid exec TLB entry: its page is a live executable frame, and an
            // aligned access stays inside it.
            Ok(unsafe { ptr::read_unaligned(p as *const u16) })
        } else {
            let mut b = [0u8; 2];
            self.read_slow(addr, &mut b, Access::Exec)?;
            Ok(u16::from_le_bytes(b))
        }
    }

    /// Fetches a whole instruction at `addr`: 16 bits if compressed, else 32 bits. The upper
    /// half of a 32-bit instruction may lie on the next page, which must be executable too.
    #[inline(always)]
    pub fn fetch_insn(&mut self, addr: u64) -> Result<u32, Fault> {
        let lo = self.fetch_u16(addr)?;
        if lo & 3 != 3 {
            return Ok(lo as u32);
        }
        let hi = self.fetch_u16(addr.wrapping_add(2))?;
        Ok(lo as u32 | (hi as u32) << 16)
    }

    fn pte(&self, vpn: u64) -> Option<(&L2, usize)> {
        let i1 = (vpn >> L2_BITS) as usize;
        let l2 = self.l1.get(i1)?.as_deref()?;
        Some((l2, (vpn as usize) & (L2_SIZE - 1)))
    }

    /// The protection of the page holding `addr`, or `None` if it is unmapped.
    pub fn prot_at(&self, addr: u64) -> Option<u8> {
        let (l2, i) = self.pte(addr >> PAGE_SHIFT)?;
        let p = l2.prot[i];
        (p & prot::MAPPED != 0).then_some(p & prot::RWX)
    }

    /// Resolves `vpn` for `access`, allocating the frame if the page is written for the
    /// first time, and fills the TLB. Returns the host address of the page.
    fn translate(&mut self, vpn: u64, access: Access) -> Result<*mut u8, Fault> {
        count(|c| c.tlb_fills += 1);
        let fault = |mapped| Fault {
            addr: vpn << PAGE_SHIFT,
            access,
            mapped,
        };
        let i1 = (vpn >> L2_BITS) as usize;
        let i2 = (vpn as usize) & (L2_SIZE - 1);
        let Some(Some(l2)) = self.l1.get_mut(i1) else {
            return Err(fault(false));
        };
        let p = l2.prot[i2];
        if p & prot::MAPPED == 0 {
            return Err(fault(false));
        }
        let need = match access {
            Access::Read => prot::READ,
            Access::Write => prot::WRITE,
            Access::Exec => prot::EXEC,
        };
        if p & need == 0 {
            return Err(fault(true));
        }
        let base = match &mut l2.frames[i2] {
            Backing::Owned(f) if access != Access::Write || p & prot::COW == 0 => f.ptr(),
            // First write to a zero or borrowed page: it gets a frame of its own.
            _ if access == Access::Write => {
                match l2.owned_frame(i2, &mut self.frames_in_use, true) {
                    Some(base) => base,
                    // Out of guest memory: reported as a fault on a mapped page; the
                    // Linux layer tells this apart with `out_of_memory()`.
                    None => return Err(fault(true)),
                }
            }
            // Never written: reads see the shared zero page, and borrowed pages their
            // borrowed bytes. Neither is ever written through this pointer: a write always
            // takes the branch above, and only frames that are this space's to write (not
            // `COW`) enter the write TLB.
            Backing::Zero => ZERO_PAGE.as_ptr() as *mut u8,
            Backing::Borrowed(b) => b.as_ptr() as *mut u8,
            Backing::Owned(_) => unreachable!("a COW write takes the branch above"),
        };
        let slot = tlb_slot(vpn);
        let entry = TlbEntry::new(vpn, base);
        let tlb = self.tlb.get_or_insert_with(|| Box::new(Tlbs::EMPTY));
        match access {
            Access::Read => tlb.read[slot] = entry,
            Access::Write => {
                tlb.write[slot] = entry;
                // The page now has its own frame: a cached zero-page read entry is stale.
                if tlb.read[slot].holds(vpn) {
                    tlb.read[slot] = entry;
                }
                if tlb.exec[slot].holds(vpn) {
                    tlb.exec[slot] = entry;
                }
            }
            Access::Exec => tlb.exec[slot] = entry,
        }
        Ok(base)
    }

    /// `true` if a write fault at `addr` came from the [`budget`] running out rather than
    /// from the page protection.
    pub fn out_of_memory(&self, addr: u64) -> bool {
        self.prot_at(addr).is_some_and(|p| p & prot::WRITE != 0)
    }

    #[cold]
    fn read_slow(&mut self, addr: u64, buf: &mut [u8], access: Access) -> Result<(), Fault> {
        count(|c| c.slow += 1);
        // A misaligned access within a page the TLB holds.
        let e = match access {
            Access::Read => self.tlb_entry(addr, |t| &t.read),
            Access::Exec => self.tlb_entry(addr, |t| &t.exec),
            Access::Write => unreachable!("reads only"),
        };
        if let Some(p) = e.within(addr, buf.len() as u64) {
            // SAFETY: a valid TLB entry's page is a live frame of PAGE_SIZE bytes, and the
            // access stays inside it; the destination is a distinct Rust slice.
            unsafe { ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
            return Ok(());
        }
        let mut done = 0;
        while done < buf.len() {
            let a = addr.wrapping_add(done as u64);
            if a >= USER_END {
                return Err(Fault {
                    addr: a,
                    access,
                    mapped: false,
                });
            }
            let base = self.translate(a >> PAGE_SHIFT, access).map_err(|mut f| {
                f.addr = a;
                f
            })?;
            let off = (a & PAGE_MASK) as usize;
            let n = (PAGE_SIZE as usize - off).min(buf.len() - done);
            // SAFETY: `base` is a live frame (or the zero frame) of PAGE_SIZE bytes and
            // `off + n <= PAGE_SIZE`; the destination is a distinct Rust slice.
            unsafe { ptr::copy_nonoverlapping(base.add(off), buf[done..].as_mut_ptr(), n) };
            done += n;
        }
        Ok(())
    }

    #[cold]
    fn write_slow(&mut self, addr: u64, data: &[u8], check: bool) -> Result<(), Fault> {
        count(|c| c.slow += 1);
        if check {
            // A misaligned access within a page the TLB holds.
            let e = self.tlb_entry(addr, |t| &t.write);
            if let Some(p) = e.within(addr, data.len() as u64) {
                // SAFETY: a valid write-TLB entry's page is a live frame of PAGE_SIZE bytes
                // owned by this address space; the access stays inside it.
                unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
                return Ok(());
            }
        }
        let mut done = 0;
        while done < data.len() {
            let a = addr.wrapping_add(done as u64);
            let fault = Fault {
                addr: a,
                access: Access::Write,
                mapped: false,
            };
            if a >= USER_END {
                return Err(fault);
            }
            let base = if check {
                self.translate(a >> PAGE_SHIFT, Access::Write)
                    .map_err(|f| Fault { addr: a, ..f })?
            } else {
                self.frame_for_poke(a >> PAGE_SHIFT).ok_or(fault)?
            };
            let off = (a & PAGE_MASK) as usize;
            let n = (PAGE_SIZE as usize - off).min(data.len() - done);
            // SAFETY: `base` is a live frame owned by this address space (never the zero
            // frame: both paths allocate before writing) and `off + n <= PAGE_SIZE`.
            unsafe { ptr::copy_nonoverlapping(data[done..].as_ptr(), base.add(off), n) };
            done += n;
        }
        Ok(())
    }

    /// The frame of a mapped page, allocated if needed, ignoring its protection.
    fn frame_for_poke(&mut self, vpn: u64) -> Option<*mut u8> {
        let i1 = (vpn >> L2_BITS) as usize;
        let i2 = (vpn as usize) & (L2_SIZE - 1);
        let l2 = self.l1.get_mut(i1)?.as_mut()?;
        if l2.prot[i2] & prot::MAPPED == 0 {
            return None;
        }
        if let Backing::Owned(f) = &mut l2.frames[i2] {
            if l2.prot[i2] & prot::COW == 0 {
                return Some(f.ptr());
            }
        }
        // The loader is not bound by the guest's memory limit.
        let base = l2.owned_frame(i2, &mut self.frames_in_use, false)?;
        // A zero-page or borrowed entry may be cached for reads of this page.
        if let Some(t) = &mut self.tlb {
            t.forget(vpn);
        }
        Some(base)
    }

    /// Copies guest memory into `buf`, as `copy_from_user` does (needs `PROT_READ`).
    pub fn read_bytes(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.read_slow(addr, buf, Access::Read)
    }

    /// Copies `data` into guest memory, as `copy_to_user` does (needs `PROT_WRITE`).
    pub fn write_bytes(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        self.write_slow(addr, data, true)
    }

    /// Writes into mapped pages whatever their protection (the ELF loader filling a
    /// read-only segment, the kernel writing a signal frame is *not* this).
    pub fn poke(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        self.write_slow(addr, data, false)
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
    /// `Ok(None)` if no NUL was found within `max` bytes.
    pub fn read_cstr(&mut self, addr: u64, max: usize) -> Result<Option<Vec<u8>>, Fault> {
        let mut out = Vec::new();
        let mut a = addr;
        while out.len() < max {
            // Read up to the end of the page at a time.
            let n = ((PAGE_SIZE - (a & PAGE_MASK)) as usize).min(max - out.len());
            let mut chunk = vec![0u8; n];
            self.read_bytes(a, &mut chunk)?;
            if let Some(z) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..z]);
                return Ok(Some(out));
            }
            out.extend_from_slice(&chunk);
            a += n as u64;
        }
        Ok(None)
    }

    /// Maps `[addr, addr+len)` (page-aligned) as fresh zero-filled pages with `prot`,
    /// replacing whatever was there.
    pub fn map(&mut self, addr: u64, len: u64, p: u8) {
        debug_assert!(addr & PAGE_MASK == 0 && len & PAGE_MASK == 0);
        debug_assert!(addr + len <= USER_END);
        self.for_pages(addr, len, true, |l2, i, in_use| {
            if l2.frames[i].release() {
                *in_use -= 1;
            }
            l2.prot[i] = p | prot::MAPPED;
        });
    }

    /// Maps `[addr, addr+len)` (page-aligned) with `prot`, replacing whatever was there, with
    /// pages that read the bytes of `data` in place (`data.len() == len`) until first
    /// written. Nothing is copied and no host memory is used.
    pub fn map_borrowed(&mut self, addr: u64, data: &'static [u8], p: u8) {
        let len = data.len() as u64;
        debug_assert!(addr & PAGE_MASK == 0 && len & PAGE_MASK == 0);
        let mut pages = data.chunks_exact(PAGE_SIZE as usize);
        self.for_pages(addr, len, true, |l2, i, in_use| {
            if l2.frames[i].release() {
                *in_use -= 1;
            }
            let page = pages.next().expect("one chunk per page");
            l2.frames[i] = Backing::Borrowed(page.try_into().expect("a whole page"));
            l2.prot[i] = p | prot::MAPPED;
        });
    }

    /// Maps `pages` (one per page) at `addr` with `p`, replacing whatever was there, as a
    /// shared mapping: writes go to the pages themselves, and `fork` shares them.
    pub fn map_shared_pages(&mut self, addr: u64, pages: &[SharedPage], p: u8) {
        debug_assert!(addr & PAGE_MASK == 0);
        let mut it = pages.iter();
        self.for_pages(
            addr,
            pages.len() as u64 * PAGE_SIZE,
            true,
            |l2, i, in_use| {
                if !l2.frames[i].release() {
                    *in_use += 1;
                }
                let page = it.next().expect("one page per page");
                l2.frames[i] = Backing::Owned(page.0.clone());
                l2.prot[i] = p | prot::MAPPED | prot::SHARED;
            },
        );
    }

    /// The identity of the byte at `addr` for a futex that is not process-private: the
    /// same in every address space that maps the page, if it belongs to a shared mapping
    /// (`None` for a private page, keyed by address space and address instead).
    pub fn shared_key(&mut self, addr: u64) -> Option<usize> {
        let vpn = addr >> PAGE_SHIFT;
        let i1 = (vpn >> L2_BITS) as usize;
        let i2 = (vpn as usize) & (L2_SIZE - 1);
        let l2 = self.l1.get_mut(i1)?.as_mut()?;
        if l2.prot[i2] & (prot::MAPPED | prot::SHARED) != prot::MAPPED | prot::SHARED {
            return None;
        }
        if !matches!(l2.frames[i2], Backing::Owned(_)) {
            // Made now, so that every sharer names the same frame.
            l2.owned_frame(i2, &mut self.frames_in_use, false)?;
            if let Some(t) = &mut self.tlb {
                t.forget(vpn);
            }
        }
        let l2 = self.l1[i1].as_ref()?;
        match &l2.frames[i2] {
            Backing::Owned(f) => Some(f.ptr() as usize + (addr & PAGE_MASK) as usize),
            _ => None,
        }
    }

    /// Marks the mapped pages of `[addr, addr+len)` as belonging to a shared mapping:
    /// `fork` shares their frames instead of copying them on write.
    pub fn set_shared(&mut self, addr: u64, len: u64) {
        self.for_pages(addr, len, false, |l2, i, _| {
            if l2.prot[i] & prot::MAPPED != 0 {
                l2.prot[i] |= prot::SHARED;
            }
        });
    }

    /// A copy-on-write copy of this address space, as `fork` makes: frames written so far
    /// are shared by both and copied by whichever side writes first; frames of shared
    /// mappings stay shared for good (a never-written one is made now, so that both sides
    /// see each other's writes).
    pub fn fork(&mut self) -> Memory {
        let mut child = Memory::new();
        child.l1 = (0..L1_SIZE).map(|_| None).collect();
        child.code_generation = self.code_generation;
        for (i1, slot) in self.l1.iter_mut().enumerate() {
            let Some(l2) = slot else { continue };
            let mut c = L2::new();
            for i in 0..L2_SIZE {
                let p = l2.prot[i];
                if p & prot::MAPPED == 0 {
                    continue;
                }
                if p & prot::SHARED != 0 && !matches!(l2.frames[i], Backing::Owned(_)) {
                    // Not subject to the limit: the page exists already, as far as the
                    // guest can tell.
                    l2.owned_frame(i, &mut self.frames_in_use, false);
                }
                c.frames[i] = match &l2.frames[i] {
                    Backing::Zero => Backing::Zero,
                    Backing::Borrowed(b) => Backing::Borrowed(b),
                    Backing::Owned(f) => {
                        child.frames_in_use += 1;
                        if p & prot::SHARED == 0 {
                            l2.prot[i] |= prot::COW;
                        }
                        Backing::Owned(f.clone())
                    }
                };
                c.prot[i] = l2.prot[i];
            }
            child.l1[i1] = Some(c);
        }
        // Pages this space could write in place are now copy-on-write.
        self.flush_tlb();
        child
    }

    /// Unmaps `[addr, addr+len)` (page-aligned). Unmapped pages in the range are fine.
    pub fn unmap(&mut self, addr: u64, len: u64) {
        self.for_pages(addr, len, false, |l2, i, in_use| {
            if l2.frames[i].release() {
                *in_use -= 1;
            }
            l2.prot[i] = 0;
        });
    }

    /// Changes the protection of the mapped pages in `[addr, addr+len)`.
    pub fn protect(&mut self, addr: u64, len: u64, p: u8) {
        self.for_pages(addr, len, false, |l2, i, _| {
            if l2.prot[i] & prot::MAPPED != 0 {
                l2.prot[i] = (l2.prot[i] & !prot::RWX) | p;
            }
        });
    }

    /// `true` if every page in `[addr, addr+len)` is mapped.
    pub fn is_mapped(&self, addr: u64, len: u64) -> bool {
        let mut a = addr & !PAGE_MASK;
        while a < addr + len {
            if self.prot_at(a).is_none() {
                return false;
            }
            a += PAGE_SIZE;
        }
        true
    }

    fn for_pages(
        &mut self,
        addr: u64,
        len: u64,
        create: bool,
        mut f: impl FnMut(&mut L2, usize, &mut u64),
    ) {
        let end = (addr + len).min(USER_END);
        let mut vpn = addr >> PAGE_SHIFT;
        let mut was_exec = false;
        if self.l1.is_empty() {
            if !create {
                return;
            }
            self.l1 = (0..L1_SIZE).map(|_| None).collect();
        }
        let first = vpn;
        while vpn << PAGE_SHIFT < end {
            let i1 = (vpn >> L2_BITS) as usize;
            let slot = &mut self.l1[i1];
            if slot.is_none() {
                if !create {
                    // Skip the whole empty L2 table.
                    vpn = ((vpn >> L2_BITS) + 1) << L2_BITS;
                    continue;
                }
                *slot = Some(L2::new());
            }
            let l2 = slot.as_mut().unwrap();
            let i = (vpn as usize) & (L2_SIZE - 1);
            was_exec |= l2.prot[i] & prot::EXEC != 0;
            f(l2, i, &mut self.frames_in_use);
            vpn += 1;
        }
        // A few pages (malloc's typical mmap, munmap, mprotect) are forgotten one by one;
        // more, and emptying the whole TLB is cheaper.
        if vpn - first <= 64 {
            if let Some(t) = &mut self.tlb {
                for v in first..vpn {
                    t.forget(v);
                }
            }
        } else {
            self.flush_tlb();
        }
        if was_exec {
            self.code_generation += 1;
        }
    }

    /// Forgets every cached translation.
    pub fn flush_tlb(&mut self) {
        if let Some(t) = &mut self.tlb {
            count(|c| c.tlb_flushes += 1);
            **t = Tlbs::EMPTY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_ld_so_places_apart_do_not_share_a_tlb_slot() {
        // The pages of a sqlite3 run that took turns in one slot: the stack's top page and
        // a library's data page, 136 MiB apart.
        let mut m = Memory::new();
        let (stack, lib) = (0x3f_ffff_c000u64, 0x3f_f77f_c000u64);
        m.map(stack, PAGE_SIZE, prot::READ | prot::WRITE);
        m.map(lib, PAGE_SIZE, prot::READ | prot::WRITE);
        m.read_u64(stack).unwrap();
        m.read_u64(lib).unwrap();
        let before = counters().tlb_fills;
        for _ in 0..1000 {
            m.read_u64(stack).unwrap();
            m.read_u64(lib).unwrap();
        }
        assert_eq!(counters().tlb_fills, before, "both stay in the TLB");
        // A change to one page forgets only that page.
        m.protect(lib, PAGE_SIZE, prot::READ);
        m.read_u64(stack).unwrap();
        assert_eq!(counters().tlb_fills, before);
        assert!(m.write_u64(lib, 1).is_err());
        assert_eq!(m.read_u64(lib), Ok(0));
    }

    #[test]
    fn misaligned_accesses_in_a_page_and_across_pages() {
        let mut m = Memory::new();
        m.map(0x1000, 0x2000, prot::READ | prot::WRITE);
        m.write_u64(0x1000, 0x0807_0605_0403_0201).unwrap();
        // Fill the TLBs, then misaligned accesses inside the page.
        assert_eq!(m.read_u8(0x1000), Ok(1));
        assert_eq!(m.read_u32(0x1001), Ok(0x0504_0302));
        assert_eq!(m.read_u16(0x1007), Ok(0x08));
        m.write_u32(0x1003, 0xaabb_ccdd).unwrap();
        assert_eq!(m.read_u64(0x1000), Ok(0x08aa_bbcc_dd03_0201));
        // Across the page boundary, and at the very end of the mapping.
        m.write_u64(0x1ffc, u64::MAX).unwrap();
        assert_eq!(m.read_u64(0x1ffc), Ok(u64::MAX));
        assert_eq!(m.read_u32(0x2ffd).unwrap_err().addr, 0x3000);
        assert_eq!(m.write_u16(0x2fff, 0).unwrap_err().addr, 0x3000);
        // A hostile address near the top of the address space faults, never wraps.
        assert!(m.read_u64(u64::MAX - 3).is_err());
        assert!(m.read_u8(0xffff_ffff_ffff_f000).is_err());
        // A read-only page: a misaligned store faults after a read filled the read TLB.
        m.protect(0x1000, 0x1000, prot::READ);
        assert_eq!(m.read_u32(0x1001), Ok(0xccdd_0302));
        assert_eq!(m.write_u32(0x1001, 0).unwrap_err().mapped, true);
    }

    #[test]
    fn unmapped_faults_and_mapped_reads_zero() {
        let mut m = Memory::new();
        assert_eq!(
            m.read_u32(0x1000),
            Err(Fault {
                addr: 0x1000,
                access: Access::Read,
                mapped: false
            })
        );
        m.map(0x1000, 0x2000, prot::READ | prot::WRITE);
        assert_eq!(m.read_u64(0x1ff8), Ok(0));
        assert_eq!(m.resident_bytes(), 0);
        m.write_u32(0x1ffe, 0xdeadbeef).unwrap(); // crosses a page boundary
        assert_eq!(m.read_u32(0x1ffe), Ok(0xdeadbeef));
        assert_eq!(m.read_u16(0x2000), Ok(0xdead));
        assert_eq!(m.resident_bytes(), 2 * PAGE_SIZE);
    }

    #[test]
    fn protection_is_enforced() {
        let mut m = Memory::new();
        m.map(0x10000, 0x1000, prot::READ);
        assert!(m.write_u8(0x10000, 1).unwrap_err().mapped);
        assert!(m.fetch_u16(0x10000).is_err());
        m.poke(0x10000, &[0x13, 0, 0, 0]).unwrap();
        m.protect(0x10000, 0x1000, prot::READ | prot::EXEC);
        assert_eq!(m.fetch_insn(0x10000), Ok(0x13));
        m.unmap(0x10000, 0x1000);
        assert!(!m.read_u8(0x10000).unwrap_err().mapped);
    }

    #[test]
    fn zero_page_read_then_write_sees_write() {
        let mut m = Memory::new();
        m.map(0x4000, 0x1000, prot::READ | prot::WRITE);
        assert_eq!(m.read_u8(0x4010), Ok(0));
        m.write_u8(0x4010, 7).unwrap();
        assert_eq!(m.read_u8(0x4010), Ok(7));
    }

    #[test]
    fn borrowed_pages_are_read_in_place_and_copied_on_write() {
        static DATA: [u8; 2 * PAGE_SIZE as usize] = {
            let mut d = [0u8; 2 * PAGE_SIZE as usize];
            d[0] = 0x13;
            d[PAGE_SIZE as usize] = 0xaa;
            d
        };
        let mut m = Memory::new();
        m.map_borrowed(0x10000, &DATA, prot::READ | prot::EXEC);
        assert_eq!(m.fetch_insn(0x10000), Ok(0x13));
        assert_eq!(m.read_u8(0x11000), Ok(0xaa));
        assert_eq!(m.resident_bytes(), 0);
        // A store needs PROT_WRITE like any other page.
        assert!(m.write_u8(0x11000, 1).unwrap_err().mapped);
        m.protect(0x10000, 0x2000, prot::READ | prot::WRITE);
        m.write_u8(0x11001, 0x55).unwrap();
        assert_eq!(m.read_u16(0x11000), Ok(0x55aa));
        assert_eq!(m.resident_bytes(), PAGE_SIZE);
        // The borrowed bytes are untouched; the loader's poke copies too.
        assert_eq!(DATA[PAGE_SIZE as usize + 1], 0);
        m.poke(0x10001, &[9]).unwrap();
        assert_eq!(m.read_u16(0x10000), Ok(0x0913));
        assert_eq!(m.resident_bytes(), 2 * PAGE_SIZE);
        m.unmap(0x10000, 0x2000);
        assert_eq!(m.resident_bytes(), 0);
    }

    #[test]
    fn only_changes_to_executable_pages_invalidate_code() {
        let mut m = Memory::new();
        let g = m.code_generation();
        m.map(0x10000, 0x2000, prot::READ | prot::WRITE);
        m.protect(0x10000, 0x1000, prot::READ);
        m.unmap(0x11000, 0x1000);
        assert_eq!(m.code_generation(), g, "data pages only");
        m.map(0x20000, 0x1000, prot::READ | prot::EXEC);
        assert_eq!(
            m.code_generation(),
            g,
            "nothing was decoded from a page not yet mapped"
        );
        m.protect(0x20000, 0x1000, prot::READ);
        assert_ne!(m.code_generation(), g);
        let g = m.code_generation();
        m.protect(0x20000, 0x1000, prot::READ | prot::EXEC);
        assert_eq!(m.code_generation(), g);
        m.map(0x20000, 0x1000, prot::READ | prot::WRITE);
        assert_ne!(m.code_generation(), g, "an executable page replaced");
        let g = m.code_generation();
        m.map(0x30000, 0x1000, prot::READ | prot::EXEC);
        m.unmap(0x30000, 0x1000);
        assert_ne!(m.code_generation(), g, "an executable page unmapped");
    }

    #[test]
    fn limit_gives_out_of_memory() {
        budget::set_limit(PAGE_SIZE, budget::Source::Host);
        let mut m = Memory::new();
        m.map(0x4000, 0x2000, prot::READ | prot::WRITE);
        m.write_u8(0x4000, 1).unwrap();
        assert!(!budget::take_refused());
        let f = m.write_u8(0x5000, 1).unwrap_err();
        assert!(m.out_of_memory(f.addr));
        assert!(budget::take_refused());
        assert!(!budget::take_refused(), "taken");
        assert_eq!(
            budget::describe(),
            "the container's memory limit of 0 MiB (--memory)"
        );
        // Freeing a page makes room again.
        m.unmap(0x4000, 0x1000);
        m.write_u8(0x5000, 1).unwrap();
    }

    /// One budget for every address space: frames shared after a fork count once, the
    /// copies made on write count, and frames come back when their last user goes.
    #[test]
    fn budget_is_global_and_counts_each_frame_once() {
        budget::set_limit(4 * PAGE_SIZE, budget::Source::Host);
        let mut a = Memory::new();
        a.map(0x10000, 0x4000, prot::READ | prot::WRITE);
        a.write_u8(0x10000, 1).unwrap();
        a.write_u8(0x11000, 1).unwrap();
        assert_eq!(budget::used(), 2 * PAGE_SIZE);
        let mut b = a.fork();
        assert_eq!(budget::used(), 2 * PAGE_SIZE, "shared after the fork");
        assert_eq!(
            b.resident_bytes(),
            2 * PAGE_SIZE,
            "but in both resident sets"
        );
        b.write_u8(0x10000, 2).unwrap(); // a copy
        assert_eq!(budget::used(), 3 * PAGE_SIZE);
        b.write_u8(0x12000, 2).unwrap();
        assert_eq!(budget::used(), 4 * PAGE_SIZE);
        // Full: neither a fresh page nor a copy on write fits, in either space.
        let f = a.write_u8(0x13000, 1).unwrap_err();
        assert!(a.out_of_memory(f.addr));
        let f = b.write_u8(0x11000, 1).unwrap_err();
        assert!(b.out_of_memory(f.addr));
        assert_eq!(b.read_u8(0x11000), Ok(1), "reads still work");
        // The loader and fork are not refused, but are counted.
        b.poke(0x13000, &[1]).unwrap();
        assert_eq!(budget::used(), 5 * PAGE_SIZE);
        drop(b);
        assert_eq!(budget::used(), 2 * PAGE_SIZE);
        a.write_u8(0x13000, 1).unwrap();
        let page = SharedPage::new(b"x");
        assert_eq!(
            budget::used(),
            4 * PAGE_SIZE,
            "a shared page is a frame too"
        );
        drop(page);
        drop(a);
        assert_eq!(budget::used(), 0);
    }

    #[test]
    fn fork_is_copy_on_write_and_shared_pages_stay_shared() {
        let mut a = Memory::new();
        a.map(0x10000, 0x3000, prot::READ | prot::WRITE);
        a.set_shared(0x12000, 0x1000);
        a.write_u64(0x10000, 1).unwrap();
        assert_eq!(a.read_u64(0x10000), Ok(1)); // in the TLBs before the fork
        let mut b = a.fork();
        assert_eq!(b.read_u64(0x10000), Ok(1));
        assert_eq!(b.read_u64(0x11000), Ok(0));
        // Private: each side's writes are its own, whichever writes first.
        a.write_u64(0x10000, 2).unwrap();
        assert_eq!(b.read_u64(0x10000), Ok(1));
        b.write_u64(0x10008, 3).unwrap();
        assert_eq!(a.read_u64(0x10008), Ok(0));
        assert_eq!(a.read_u64(0x10000), Ok(2));
        b.write_u64(0x11000, 4).unwrap();
        assert_eq!(a.read_u64(0x11000), Ok(0));
        // Shared: never written before the fork, still one page for both.
        a.write_u64(0x12000, 5).unwrap();
        assert_eq!(b.read_u64(0x12000), Ok(5));
        b.write_u64(0x12008, 6).unwrap();
        assert_eq!(a.read_u64(0x12008), Ok(6));
        // A protection change keeps the page shared.
        b.protect(0x12000, 0x1000, prot::READ);
        b.protect(0x12000, 0x1000, prot::READ | prot::WRITE);
        b.write_u64(0x12010, 7).unwrap();
        assert_eq!(a.read_u64(0x12010), Ok(7));
        // After the child is gone the parent writes its frames in place again.
        let c = a.fork();
        drop(b);
        drop(c);
        a.write_u64(0x10000, 8).unwrap();
        assert_eq!(a.read_u64(0x10000), Ok(8));
    }
}
