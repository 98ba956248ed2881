//! Loading ELF64 RISC-V executables as Linux's `binfmt_elf` does: `PT_LOAD` segments at
//! their addresses (`ET_EXEC`) or at a load bias (`ET_DYN`: PIE and the dynamic linker),
//! bss zeroed, the program interpreter (`PT_INTERP`) loaded too, and the initial stack
//! with argv, envp and the auxiliary vector.

use crate::linux::errno::*;
use crate::linux::mm::{Mm, VmaKind};
use crate::mem::{prot, Memory, PAGE_SIZE};

const EM_RISCV: u16 = 243;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// Where an `ET_DYN` main program goes (Linux `ELF_ET_DYN_BASE` for riscv64 Sv39).
pub const ET_DYN_BASE: u64 = 0x2a_aaaa_a000;

/// A parsed ELF header and its program headers.
pub struct Elf<'a> {
    data: &'a [u8],
    pub e_type: u16,
    pub entry: u64,
    pub phoff: u64,
    pub phnum: u16,
    pub phentsize: u16,
    pub phdrs: Vec<Phdr>,
}

#[derive(Debug, Clone, Copy)]
pub struct Phdr {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

fn u16_at(d: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(d[o..o + 2].try_into().unwrap())
}
fn u32_at(d: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(d[o..o + 4].try_into().unwrap())
}
fn u64_at(d: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(d[o..o + 8].try_into().unwrap())
}

impl<'a> Elf<'a> {
    /// Parses an ELF64 little-endian RISC-V executable. ENOEXEC if it is not one.
    pub fn parse(data: &'a [u8]) -> Result<Elf<'a>, Errno> {
        if data.len() < 64 || &data[..4] != b"\x7fELF" {
            return Err(ENOEXEC);
        }
        if data[4] != 2 || data[5] != 1 || u16_at(data, 18) != EM_RISCV {
            return Err(ENOEXEC); // not ELF64 little-endian RISC-V
        }
        let e_type = u16_at(data, 16);
        if e_type != ET_EXEC && e_type != ET_DYN {
            return Err(ENOEXEC);
        }
        let phoff = u64_at(data, 32);
        let phentsize = u16_at(data, 54);
        let phnum = u16_at(data, 56);
        if phentsize as usize != 56 || phnum == 0 || phnum > 128 {
            return Err(ENOEXEC);
        }
        let end = phoff
            .checked_add(phnum as u64 * 56)
            .filter(|&e| e <= data.len() as u64)
            .ok_or(ENOEXEC)?;
        let _ = end;
        let phdrs = (0..phnum as usize)
            .map(|i| {
                let o = phoff as usize + i * 56;
                Phdr {
                    p_type: u32_at(data, o),
                    flags: u32_at(data, o + 4),
                    offset: u64_at(data, o + 8),
                    vaddr: u64_at(data, o + 16),
                    filesz: u64_at(data, o + 32),
                    memsz: u64_at(data, o + 40),
                }
            })
            .collect();
        Ok(Elf {
            data,
            e_type,
            entry: u64_at(data, 24),
            phoff,
            phnum,
            phentsize,
            phdrs,
        })
    }

    /// The `PT_INTERP` path, if any.
    pub fn interp(&self) -> Result<Option<&'a [u8]>, Errno> {
        let Some(p) = self.phdrs.iter().find(|p| p.p_type == PT_INTERP) else {
            return Ok(None);
        };
        let s = self
            .data
            .get(p.offset as usize..(p.offset + p.filesz) as usize)
            .ok_or(ENOEXEC)?;
        let s = s.split(|&b| b == 0).next().unwrap_or(&[]);
        Ok(Some(s))
    }

    /// `true` if `PT_GNU_STACK` asks for an executable stack.
    pub fn exec_stack(&self) -> bool {
        self.phdrs
            .iter()
            .find(|p| p.p_type == PT_GNU_STACK)
            .is_some_and(|p| p.flags & PF_X != 0)
    }

    fn load_span(&self) -> (u64, u64) {
        let loads = self.phdrs.iter().filter(|p| p.p_type == PT_LOAD);
        let lo = loads.clone().map(|p| p.vaddr).min().unwrap_or(0) & !(PAGE_SIZE - 1);
        let hi = loads.map(|p| p.vaddr + p.memsz).max().unwrap_or(0);
        (lo, hi)
    }
}

/// What loading put where.
pub struct Loaded {
    /// Added to every address of the image (0 for `ET_EXEC`).
    pub bias: u64,
    pub entry: u64,
    /// Address of the program headers in memory (`AT_PHDR`).
    pub phdr: u64,
    pub phnum: u16,
    /// End of the highest segment (the program break starts after it).
    pub end: u64,
}

fn seg_prot(flags: u32) -> u8 {
    let mut p = 0;
    if flags & PF_R != 0 {
        p |= prot::READ;
    }
    if flags & PF_W != 0 {
        p |= prot::WRITE;
    }
    if flags & PF_X != 0 {
        p |= prot::EXEC;
    }
    p
}

/// Maps the `PT_LOAD` segments of `elf`. `ET_DYN` images go at `dyn_base` (or wherever
/// `mm` finds room when `dyn_base` is `None`). When `image` holds the same bytes as
/// `elf` for the life of the program (an image file not written since start), whole pages
/// of file data are mapped from it in place (`Memory::map_borrowed`), copied only when
/// written.
pub fn load(
    elf: &Elf,
    image: Option<&'static [u8]>,
    mem: &mut Memory,
    mm: &mut Mm,
    dyn_base: Option<u64>,
    name: &str,
) -> Result<Loaded, Errno> {
    let (lo, hi) = elf.load_span();
    if hi <= lo {
        return Err(ENOEXEC);
    }
    let span = (hi - lo).next_multiple_of(PAGE_SIZE);
    let bias = if elf.e_type == ET_DYN {
        let base = match dyn_base {
            Some(b) => b,
            None => mm.find_free(span, None).ok_or(ENOMEM)?,
        };
        base - lo
    } else {
        0
    };
    // Segments may share a page (the end of one and the start of the next): such a page is
    // mapped once, with the union of their protections, and gets both segments' bytes.
    let mut mapped: Vec<(u64, u64)> = Vec::new();
    let mut borrowed = std::collections::BTreeSet::new();
    for p in elf.phdrs.iter().filter(|p| p.p_type == PT_LOAD) {
        if p.filesz > p.memsz {
            return Err(ENOEXEC);
        }
        let start = (p.vaddr + bias) & !(PAGE_SIZE - 1);
        let end = (p.vaddr + bias)
            .checked_add(p.memsz)
            .ok_or(ENOEXEC)?
            .next_multiple_of(PAGE_SIZE);
        if end > crate::mem::USER_END || end <= start {
            return Err(ENOEXEC);
        }
        let pr = seg_prot(p.flags);
        // Pages with bytes of the file map it (at the matching offset); the bss pages after
        // them are anonymous, as Linux maps them.
        let file_end = (p.vaddr + bias + p.filesz).next_multiple_of(PAGE_SIZE);
        let mut page = start;
        while page < end {
            if mapped.iter().any(|&(s, e)| s <= page && page < e) {
                let old = mem.prot_at(page).unwrap_or(0);
                mm.protect(mem, page, PAGE_SIZE, old | pr);
            } else if p.filesz > 0 && page < file_end {
                let offset = (p.offset & !(PAGE_SIZE - 1)) + (page - start);
                let kind = VmaKind::File(name.to_string());
                mm.map_fixed_at(mem, page, PAGE_SIZE, pr, kind, offset);
                // The page holds only this segment's file bytes: map them in place.
                let inside = offset >= p.offset && offset + PAGE_SIZE <= p.offset + p.filesz;
                if let Some(bytes) = image.filter(|_| inside) {
                    let bytes = &bytes[offset as usize..(offset + PAGE_SIZE) as usize];
                    mem.map_borrowed(page, bytes, pr);
                    borrowed.insert(page);
                }
            } else {
                mm.map_fixed(mem, page, PAGE_SIZE, pr, VmaKind::Anon);
            }
            page += PAGE_SIZE;
        }
        mapped.push((start, end));
    }
    for p in elf.phdrs.iter().filter(|p| p.p_type == PT_LOAD) {
        let bytes = elf
            .data
            .get(p.offset as usize..(p.offset + p.filesz) as usize)
            .ok_or(ENOEXEC)?;
        // Page by page, skipping pages that already read these bytes in place.
        let mut addr = p.vaddr + bias;
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = ((PAGE_SIZE - addr % PAGE_SIZE) as usize).min(rest.len());
            if !borrowed.contains(&(addr & !(PAGE_SIZE - 1))) {
                mem.poke(addr, &rest[..n]).map_err(|_| EFAULT)?;
            }
            addr += n as u64;
            rest = &rest[n..];
        }
    }
    let phdr = match elf.phdrs.iter().find(|p| p.p_type == PT_PHDR) {
        Some(p) => p.vaddr + bias,
        None => elf
            .phdrs
            .iter()
            .find(|p| {
                p.p_type == PT_LOAD && p.offset <= elf.phoff && elf.phoff < p.offset + p.filesz
            })
            .map(|p| p.vaddr + bias + (elf.phoff - p.offset))
            .unwrap_or(0),
    };
    Ok(Loaded {
        bias,
        entry: elf.entry + bias,
        phdr,
        phnum: elf.phnum,
        end: hi + bias,
    })
}

// Auxiliary vector keys.
pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// `AT_HWCAP` for RV64IMAFDC: one bit per single-letter extension.
pub const HWCAP: u64 = {
    let mut h = 0;
    let exts = b"imafdc";
    let mut i = 0;
    while i < exts.len() {
        h |= 1 << (exts[i] - b'a');
        i += 1;
    }
    h
};

/// The longest argument or environment string, its NUL included (Linux's `MAX_ARG_STRLEN`).
pub const MAX_ARG_STRLEN: usize = 32 * PAGE_SIZE as usize;

/// Whether the file name, arguments and environment of an exec fit on the new stack as
/// Linux lets them (`bprm_stack_limits`, `copy_strings`): each string at most
/// `MAX_ARG_STRLEN` with its NUL, and all the strings with their NULs plus a pointer for
/// each argument (at least one) and variable within a quarter of the stack limit (8 MiB,
/// `RLIMIT_STACK`, so 2 MiB: `ARG_MAX` as `getconf` reports it). E2BIG if not.
pub fn check_arg_space(filename: &[u8], argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Result<(), Errno> {
    let limit = (super::mm::STACK_SIZE as usize / 4).max(32 * PAGE_SIZE as usize);
    let pointers = (argv.len().max(1) + envp.len()) * 8;
    let mut total = pointers;
    for s in std::iter::once(filename)
        .chain(argv.iter().map(|a| a.as_slice()))
        .chain(envp.iter().map(|e| e.as_slice()))
    {
        if s.len() + 1 > MAX_ARG_STRLEN {
            return Err(E2BIG);
        }
        total += s.len() + 1;
    }
    if total > limit {
        return Err(E2BIG);
    }
    Ok(())
}

/// Builds the initial stack below `top` as Linux does (strings, random bytes, then 16-byte
/// aligned argc, argv, envp, auxv). Returns the stack pointer.
pub fn build_stack(
    mem: &mut Memory,
    top: u64,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    auxv: &[(u64, u64)],
    execfn: &[u8],
) -> Result<u64, Errno> {
    let mut sp = top;
    let mut push_bytes = |mem: &mut Memory, b: &[u8]| -> Result<u64, Errno> {
        sp -= b.len() as u64;
        mem.write_bytes(sp, b).map_err(|_| EFAULT)?;
        Ok(sp)
    };
    let cstr = |s: &[u8]| {
        let mut v = s.to_vec();
        v.push(0);
        v
    };
    let execfn_at = push_bytes(mem, &cstr(execfn))?;
    let mut env_ptrs = Vec::new();
    for e in envp.iter().rev() {
        env_ptrs.push(push_bytes(mem, &cstr(e))?);
    }
    env_ptrs.reverse();
    let mut arg_ptrs = Vec::new();
    for a in argv.iter().rev() {
        arg_ptrs.push(push_bytes(mem, &cstr(a))?);
    }
    arg_ptrs.reverse();
    let mut random = [0u8; 16];
    crate::host::random(&mut random);
    let random_at = push_bytes(mem, &random)?;

    let mut words: Vec<u64> = Vec::new();
    words.push(argv.len() as u64);
    words.extend(&arg_ptrs);
    words.push(0);
    words.extend(&env_ptrs);
    words.push(0);
    for &(k, v) in auxv {
        words.push(k);
        words.push(v);
    }
    words.extend([AT_RANDOM, random_at, AT_EXECFN, execfn_at, AT_NULL, 0]);
    let mut sp = (random_at - words.len() as u64 * 8) & !15;
    let start = sp;
    for w in words {
        mem.write_u64(sp, w).map_err(|_| EFAULT)?;
        sp += 8;
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arg_space_is_linux_s_two_mib_and_128_kib_a_string() {
        // "/bin/true\0" + "true\0" + one pointer, and `n` bytes of one variable + pointer.
        let fixed = 10 + 5 + 8 + 8;
        let var = |n: usize| vec![vec![b'x'; n - 1]];
        let argv = [b"true".to_vec()];
        assert_eq!(
            check_arg_space(b"/bin/true", &argv, &var(MAX_ARG_STRLEN)),
            Ok(())
        );
        assert_eq!(
            check_arg_space(b"/bin/true", &argv, &var(MAX_ARG_STRLEN + 1)),
            Err(E2BIG)
        );
        let many = |total: usize| {
            let n = (total - fixed) / 109;
            let mut env = vec![vec![b'x'; 100]; n];
            env.push(vec![b'y'; total - fixed - n * 109 - 1]);
            env
        };
        assert_eq!(check_arg_space(b"/bin/true", &argv, &many(2 << 20)), Ok(()));
        assert_eq!(
            check_arg_space(b"/bin/true", &argv, &many((2 << 20) + 1)),
            Err(E2BIG)
        );
        // argc 0 still counts one pointer (only "true\0" is not there).
        assert_eq!(
            check_arg_space(b"/bin/true", &[], &many((2 << 20) + 5)),
            Ok(())
        );
        assert_eq!(
            check_arg_space(b"/bin/true", &[], &many((2 << 20) + 6)),
            Err(E2BIG)
        );
    }
}
