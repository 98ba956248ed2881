//! Memory system calls: brk, mmap, munmap, mprotect, mremap, madvise, msync.

use super::errno::*;
use super::mm::{SharedFile, Vma, VmaKind, MMAP_MIN};
use super::syscalls::SysResult;
use super::Process;
use crate::mem::{prot, PAGE_SIZE, USER_END};
use crate::vfs::{Content, FileBytes};

const PROT_MASK: u64 = 7;
const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_TYPE: u64 = 0x0f;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_NORESERVE: u64 = 0x4000;
const MAP_FIXED_NOREPLACE: u64 = 0x100000;

fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE_SIZE - 1).map(|v| v & !(PAGE_SIZE - 1))
}

/// brk(2).
pub fn brk(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let want = a[0];
    let mm = &mut p.mm;
    if want < mm.brk_start {
        return Ok(mm.brk);
    }
    let Some(new_end) = page_up(want) else {
        return Ok(mm.brk);
    };
    let old_end = page_up(mm.brk).unwrap();
    if new_end > old_end {
        // Growth larger than the whole memory limit fails, as Linux's heuristic
        // overcommit refuses it.
        let limit = crate::mem::budget::limit();
        if new_end > USER_END
            || new_end - old_end > limit
            || !mm.is_free(old_end, new_end - old_end)
        {
            return Ok(mm.brk);
        }
        mm.map_fixed(
            &mut p.mem,
            old_end,
            new_end - old_end,
            prot::READ | prot::WRITE,
            VmaKind::Heap,
        );
    } else if new_end < old_end {
        mm.unmap(&mut p.mem, new_end, old_end - new_end);
    }
    mm.brk = want;
    Ok(want)
}

/// mmap(2).
pub fn mmap(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let (addr, len, pr, flags, fd, off) = (a[0], a[1], a[2], a[3], a[4] as i32, a[5]);
    if len == 0 || pr & !PROT_MASK != 0 && pr & !(PROT_MASK | 0x0100_0000 | 0x0200_0000) != 0 {
        return Err(EINVAL);
    }
    let len = page_up(len).ok_or(ENOMEM)?;
    if off % PAGE_SIZE != 0 {
        return Err(EINVAL);
    }
    if len > USER_END {
        return Err(ENOMEM);
    }
    let kind = flags & MAP_TYPE;
    if kind != MAP_SHARED && kind != MAP_PRIVATE && kind != MAP_SHARED_VALIDATE {
        return Err(EINVAL);
    }
    let shared = kind != MAP_PRIVATE;
    let pr = pr as u8 & 7;
    let mut anon = flags & MAP_ANONYMOUS != 0;
    // A shared mapping of a file maps the file's own pages (`shared_file`); a private one
    // the image's bytes in place, or a copy (`data`).
    let mut shared_file = None;
    let (vkind, data): (VmaKind, Option<FileBytes>) = if anon {
        (VmaKind::Anon, None)
    } else {
        let file = p.fds.get(fd)?;
        if !file.readable() {
            return Err(EACCES);
        }
        let Some(node) = file.node().cloned() else {
            return Err(ENODEV);
        };
        if shared && pr & prot::WRITE != 0 && !file.writable() {
            return Err(EACCES);
        }
        let name = String::from_utf8_lossy(&p.vfs.path_of_node(&node)).into_owned();
        let bytes = if shared && file.host.is_some() {
            // A volume's file: the pages its node keeps for shared mappings.
            shared_file = Some(SharedFile(node.clone()));
            None
        } else if let Some(host) = &file.host {
            // A volume's file, privately: a copy of the mapped range (what it holds now).
            let size = crate::hostfs::fstat(host)?.size;
            let end = off.saturating_add(len).min(size);
            let mut v = vec![0u8; end.saturating_sub(off) as usize];
            let mut at = 0;
            while at < v.len() {
                let n = crate::hostfs::pread(host, &mut v[at..], off + at as u64)?;
                if n == 0 {
                    break;
                }
                at += n;
            }
            v.truncate(at);
            Some(FileBytes::Copy(v))
        } else {
            match &mut *node.content.borrow_mut() {
                // The image's bytes never change while the file is not written, so a read-only
                // shared mapping of them may borrow them as a private one does.
                Content::File(d) if shared && (pr & prot::WRITE != 0 || !d.is_lower()) => {
                    shared_file = Some(SharedFile(node.clone()));
                    None
                }
                Content::File(d) => Some(match d.snapshot() {
                    FileBytes::Image(b) => {
                        let start = (off.min(b.len() as u64)) as usize;
                        let end = (off.saturating_add(len).min(b.len() as u64)) as usize;
                        FileBytes::Image(&b[start..end])
                    }
                    FileBytes::Copy(mut v) => {
                        let start = (off.min(v.len() as u64)) as usize;
                        let end = (off.saturating_add(len).min(v.len() as u64)) as usize;
                        v.truncate(end);
                        v.drain(..start);
                        FileBytes::Copy(v)
                    }
                }),
                // Mapping /dev/zero is anonymous memory (shared or not).
                Content::Device(crate::vfs::Device::Zero) => {
                    anon = true;
                    None
                }
                _ => return Err(ENODEV),
            }
        };
        (VmaKind::File(name), bytes)
    };
    let start = if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        if addr % PAGE_SIZE != 0 {
            return Err(EINVAL);
        }
        if addr < MMAP_MIN {
            return Err(EPERM);
        }
        if addr.checked_add(len).is_none_or(|e| e > USER_END) {
            return Err(ENOMEM);
        }
        if flags & MAP_FIXED == 0 && !p.mm.is_free(addr, len) {
            return Err(EEXIST);
        }
        addr
    } else {
        p.mm.find_free(len, (addr != 0).then_some(addr))
            .ok_or(ENOMEM)?
    };
    // Overcommit accounting as Linux's heuristic does it: only memory the process could
    // write privately counts, and MAP_NORESERVE opts out (a big PROT_NONE reservation is
    // free). Pages count against the limit when first written.
    let accounted = pr & prot::WRITE != 0 && (!shared || anon);
    if accounted && flags & MAP_NORESERVE == 0 && len > p.mem_limit() {
        return Err(ENOMEM);
    }
    if let Some(file) = shared_file {
        let vma = Vma {
            end: start + len,
            prot: pr,
            kind: vkind,
            offset: off,
            shared_file: Some(file),
        };
        p.mm.insert(&mut p.mem, start, vma);
        map_file_pages(p, start, start + len);
        return Ok(start);
    }
    let offset = if anon { 0 } else { off };
    p.mm.map_fixed_at(&mut p.mem, start, len, pr, vkind, offset);
    if shared && anon {
        // Shared anonymous memory stays shared with the children a fork makes.
        p.mem.set_shared(start, len);
    }
    match data {
        // Whole pages of image bytes are read in place; the partial last page is copied.
        Some(FileBytes::Image(b)) => {
            let whole = b.len() - b.len() % PAGE_SIZE as usize;
            if whole > 0 {
                p.mem.map_borrowed(start, &b[..whole], pr);
            }
            if whole < b.len() {
                p.mem
                    .poke(start + whole as u64, &b[whole..])
                    .map_err(|_| ENOMEM)?;
            }
        }
        Some(FileBytes::Copy(v)) if !v.is_empty() => {
            p.mem.poke(start, &v).map_err(|_| ENOMEM)?;
        }
        _ => {}
    }
    Ok(start)
}

/// Maps the pages the file has in the shared file mappings over `[start, end)`; the pages
/// past its end stay inaccessible, so that touching one faults (`shared_file_fault`: SIGBUS,
/// or the page if the file has grown since).
fn map_file_pages(p: &mut Process, start: u64, end: u64) {
    let vmas: Vec<(u64, Vma)> =
        p.mm.vmas()
            .filter(|(s, v)| v.end > start && *s < end && v.shared_file.is_some())
            .map(|(s, v)| (s, v.clone()))
            .collect();
    for (s, v) in vmas {
        let (lo, hi) = (s.max(start), v.end.min(end));
        let file = v.shared_file.as_ref().expect("filtered").0.clone();
        let size = file_size(&file);
        let mut pages = Vec::new();
        let mut at = lo;
        while at < hi {
            let off = v.offset + (at - s);
            if off >= size {
                break;
            }
            let Some(page) = file_page(&file, off / PAGE_SIZE) else {
                break;
            };
            pages.push(page);
            at += PAGE_SIZE;
        }
        p.mem.map_shared_pages(lo, &pages, v.prot);
        if at < hi {
            p.mem.protect(at, hi - at, prot::NONE);
        }
    }
}

/// The size of a file shared mappings map (a volume's as the host has it now).
fn file_size(file: &crate::vfs::Node) -> u64 {
    crate::vfs::host_refresh(file, None);
    file.size()
}

/// Page `i` of a file for a shared mapping (`None` if a volume's host file cannot give it).
fn file_page(file: &crate::vfs::Node, i: u64) -> Option<crate::mem::SharedPage> {
    if file.is_host() {
        return crate::vfs::host_pages::shared_page(file, i).ok();
    }
    match &mut *file.content.borrow_mut() {
        Content::File(d) => Some(d.shared_page(i)),
        _ => None,
    }
}

/// The volume files that shared mappings over `[start, end)` map.
fn volume_files(p: &Process, start: u64, end: u64) -> Vec<crate::vfs::Node> {
    p.mm.vmas()
        .filter(|(s, v)| v.end > start && *s < end)
        .filter_map(|(_, v)| v.shared_file.as_ref().map(|f| f.0.clone()))
        .filter(|n| n.is_host())
        .collect()
}

impl Process {
    /// A fault on a page of a shared file mapping that is not mapped yet because it lay
    /// past the end of the file: `Some(true)` if the file has grown since (the page is
    /// mapped now, and the access may be retried), `Some(false)` if it is still past the
    /// end (SIGBUS, as Linux), `None` if the fault is not of this kind.
    pub fn shared_file_fault(&mut self, f: crate::mem::Fault) -> Option<bool> {
        use crate::mem::Access;
        if !f.mapped {
            return None;
        }
        let (s, v) = self.mm.vma_at(f.addr)?;
        let file = v.shared_file.as_ref()?.0.clone();
        let need = match f.access {
            Access::Read => prot::READ,
            Access::Write => prot::WRITE,
            Access::Exec => prot::EXEC,
        };
        if v.prot & need == 0 {
            return None;
        }
        let page = f.addr & !(PAGE_SIZE - 1);
        let off = v.offset + (page - s);
        let prot = v.prot;
        if off >= file_size(&file) {
            return Some(false);
        }
        let Some(pg) = file_page(&file, off / PAGE_SIZE) else {
            return Some(false);
        };
        self.mem.map_shared_pages(page, &[pg], prot);
        Some(true)
    }
}

/// munmap(2).
pub fn munmap(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let (addr, len) = (a[0], a[1]);
    if addr % PAGE_SIZE != 0 || len == 0 {
        return Err(EINVAL);
    }
    let len = page_up(len).ok_or(EINVAL)?;
    if addr.checked_add(len).is_none_or(|e| e > USER_END) {
        return Err(EINVAL);
    }
    let files = volume_files(p, addr, addr + len);
    p.mm.unmap(&mut p.mem, addr, len);
    // A volume's host file gets what the mapping wrote now, not only when next read.
    for n in files {
        let _ = crate::vfs::host_pages::sync_pages(&n);
    }
    Ok(0)
}

/// mprotect(2).
pub fn mprotect(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let (addr, len, pr) = (a[0], a[1], a[2]);
    if addr % PAGE_SIZE != 0 || pr & !(PROT_MASK | 0x0100_0000 | 0x0200_0000) != 0 {
        return Err(EINVAL);
    }
    let len = page_up(len).ok_or(ENOMEM)?;
    if len == 0 {
        return Ok(0);
    }
    if addr.checked_add(len).is_none_or(|e| e > USER_END) {
        return Err(ENOMEM);
    }
    if !p.mm.protect(&mut p.mem, addr, len, pr as u8 & 7) {
        return Err(ENOMEM);
    }
    map_file_pages(p, addr, addr + len);
    Ok(0)
}

/// mremap(2).
pub fn mremap(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const MREMAP_MAYMOVE: u64 = 1;
    const MREMAP_FIXED: u64 = 2;
    let (old, old_len, new_len, flags) = (a[0], a[1], a[2], a[3]);
    if old % PAGE_SIZE != 0
        || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED) != 0
        || flags == MREMAP_FIXED
    {
        return Err(EINVAL);
    }
    let old_len = page_up(old_len).ok_or(EINVAL)?;
    let new_len = page_up(new_len).ok_or(EINVAL)?;
    if new_len == 0 || old_len == 0 {
        return Err(EINVAL);
    }
    let Some((_, vma)) = p.mm.vma_at(old) else {
        return Err(EFAULT);
    };
    if !p.mm.is_mapped(old, old_len) {
        return Err(EFAULT);
    }
    let (pr, kind, file) = (vma.prot, vma.kind.clone(), vma.shared_file.clone());
    let offset = p.mm.offset_at(old);
    if let Some(file) = file {
        // A shared file mapping moves or grows over the file's pages; nothing to copy.
        return remap_shared_file(
            p,
            (old, old_len, new_len, flags, a[4]),
            pr,
            kind,
            offset,
            file,
        );
    }
    if new_len <= old_len {
        if new_len < old_len {
            p.mm.unmap(&mut p.mem, old + new_len, old_len - new_len);
        }
        return Ok(old);
    }
    // As mmap: private writable memory growing by more than the whole limit fails.
    if pr & prot::WRITE != 0 && new_len - old_len > crate::mem::budget::limit() {
        return Err(ENOMEM);
    }
    // Grow in place if the pages after it are free.
    if flags & MREMAP_FIXED == 0
        && p.mm.is_free(old + old_len, new_len - old_len)
        && old + new_len <= USER_END
    {
        // Map only the tail: the existing pages keep their contents.
        let tail = new_len - old_len;
        p.mm.map_fixed_at(&mut p.mem, old + old_len, tail, pr, kind, offset + old_len);
        return Ok(old);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(ENOMEM);
    }
    let new = if flags & MREMAP_FIXED != 0 {
        let n = a[4];
        if !n.is_multiple_of(PAGE_SIZE) || n.checked_add(new_len).is_none_or(|e| e > USER_END) {
            return Err(EINVAL);
        }
        n
    } else {
        p.mm.find_free(new_len, None).ok_or(ENOMEM)?
    };
    // Copy the contents (readable or not) to the new place.
    let mut buf = vec![0u8; old_len as usize];
    // Read regardless of protection: make it readable for the copy.
    p.mem.protect(old, old_len, prot::READ);
    let r = p.mem.read_bytes(old, &mut buf);
    p.mm.unmap(&mut p.mem, old, old_len);
    r.map_err(|_| EFAULT)?;
    p.mm.map_fixed_at(&mut p.mem, new, new_len, pr, kind, offset);
    p.mem.poke(new, &buf).map_err(|_| ENOMEM)?;
    Ok(new)
}

/// mremap(2) of a shared file mapping `(old, old_len, new_len, flags, new_address)`.
fn remap_shared_file(
    p: &mut Process,
    (old, old_len, new_len, flags, fixed): (u64, u64, u64, u64, u64),
    pr: u8,
    kind: VmaKind,
    offset: u64,
    file: SharedFile,
) -> SysResult {
    const MREMAP_MAYMOVE: u64 = 1;
    const MREMAP_FIXED: u64 = 2;
    if new_len <= old_len {
        if new_len < old_len {
            p.mm.unmap(&mut p.mem, old + new_len, old_len - new_len);
        }
        return Ok(old);
    }
    let new = if flags & MREMAP_FIXED != 0 {
        if !fixed.is_multiple_of(PAGE_SIZE)
            || fixed.checked_add(new_len).is_none_or(|e| e > USER_END)
        {
            return Err(EINVAL);
        }
        fixed
    } else if p.mm.is_free(old + old_len, new_len - old_len) && old + new_len <= USER_END {
        old
    } else if flags & MREMAP_MAYMOVE != 0 {
        p.mm.find_free(new_len, None).ok_or(ENOMEM)?
    } else {
        return Err(ENOMEM);
    };
    if new != old {
        p.mm.unmap(&mut p.mem, old, old_len);
    }
    let vma = Vma {
        end: new + new_len,
        prot: pr,
        kind,
        offset,
        shared_file: Some(file),
    };
    p.mm.insert(&mut p.mem, new, vma);
    map_file_pages(p, new, new + new_len);
    Ok(new)
}

/// madvise(2).
pub fn madvise(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const MADV_DONTNEED: u64 = 4;
    const MADV_FREE: u64 = 8;
    let (addr, len, advice) = (a[0], a[1], a[2]);
    if addr % PAGE_SIZE != 0 {
        return Err(EINVAL);
    }
    let len = page_up(len).ok_or(EINVAL)?;
    if !p.mm.is_mapped(addr, len) {
        return Err(ENOMEM);
    }
    if advice == MADV_DONTNEED || advice == MADV_FREE {
        // Private anonymous pages read as zero afterwards: map them afresh, keeping each
        // VMA's protection and kind.
        let mut at = addr;
        while at < addr + len {
            let (_, vma) = p.mm.vma_at(at).expect("checked mapped");
            let end = vma.end.min(addr + len);
            let (pr, kind) = (vma.prot, vma.kind.clone());
            if matches!(kind, VmaKind::Anon | VmaKind::Heap | VmaKind::Stack) {
                p.mm.map_fixed(&mut p.mem, at, end - at, pr, kind);
            }
            at = end;
        }
    }
    Ok(0)
}

/// msync(2): private and anonymous mappings have nothing to write back; shared mappings
/// of volume files are written back to the host.
pub fn msync(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if !a[0].is_multiple_of(PAGE_SIZE) || a[2] & !7 != 0 {
        return Err(EINVAL);
    }
    let len = page_up(a[1]).ok_or(ENOMEM)?;
    if !p.mm.is_mapped(a[0], len) {
        return Err(ENOMEM);
    }
    for n in volume_files(p, a[0], a[0] + len) {
        crate::vfs::host_pages::sync_pages(&n).map_err(|_| EIO)?;
    }
    Ok(0)
}
