//! What the translator needs from a RISC-V ELF file, read with every offset checked: the
//! executable code (from the section headers, or the executable segments when there are
//! none), where functions start (the `.eh_frame_hdr` search table, symbol tables, the
//! entry point), and the libraries it needs (`PT_INTERP`, `DT_NEEDED`). Anything malformed
//! is an `Err` with a reason; the caller skips the file for translation.

const EM_RISCV: u16 = 243;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
const PF_X: u32 = 1;
const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;
const SHT_RELA: u32 = 4;
const R_RISCV_RELATIVE: u64 = 3;
const SHF_ALLOC: u64 = 2;
const SHF_EXECINSTR: u64 = 4;
const STT_FUNC: u8 = 2;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

/// A run of executable code: `len` bytes at file offset `offset`, loaded at `vaddr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub offset: u64,
    pub vaddr: u64,
    pub len: u64,
}

#[derive(Debug, Default)]
pub struct Elf {
    pub code: Vec<Code>,
    /// Addresses where functions start, sorted, without duplicates.
    pub starts: Vec<u64>,
    /// Code addresses that data points at (`R_RISCV_RELATIVE` addends: function
    /// pointers, jump tables), sorted, without duplicates.
    pub pointed: Vec<u64>,
    /// `PT_INTERP`'s path, if any.
    pub interp: Option<String>,
    /// `DT_NEEDED` names.
    pub needed: Vec<String>,
}

struct Seg {
    ty: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

fn get<const N: usize>(b: &[u8], at: u64) -> Result<[u8; N], String> {
    let at = usize::try_from(at).map_err(|_| "offset out of range")?;
    b.get(at..at.checked_add(N).ok_or("offset out of range")?)
        .map(|s| s.try_into().expect("N bytes"))
        .ok_or_else(|| format!("truncated at {at:#x}"))
}
fn u16_at(b: &[u8], at: u64) -> Result<u16, String> {
    get::<2>(b, at).map(u16::from_le_bytes)
}
fn u32_at(b: &[u8], at: u64) -> Result<u32, String> {
    get::<4>(b, at).map(u32::from_le_bytes)
}
fn u64_at(b: &[u8], at: u64) -> Result<u64, String> {
    get::<8>(b, at).map(u64::from_le_bytes)
}

/// `true` if `b` starts like a 64-bit little-endian RISC-V ELF file.
pub fn is_riscv_elf(b: &[u8]) -> bool {
    b.len() >= 20
        && b[..4] == *b"\x7fELF"
        && b[4] == 2
        && b[5] == 1
        && u16::from_le_bytes([b[18], b[19]]) == EM_RISCV
}

fn cstr(b: &[u8], at: u64) -> Option<String> {
    let s = b.get(usize::try_from(at).ok()?..)?;
    let end = s.iter().position(|&c| c == 0)?;
    String::from_utf8(s[..end].to_vec()).ok()
}

/// Reads `b`, a whole ELF file.
pub fn parse(b: &[u8]) -> Result<Elf, String> {
    if !is_riscv_elf(b) {
        return Err("not a 64-bit little-endian RISC-V ELF file".into());
    }
    let entry = u64_at(b, 24)?;
    let phoff = u64_at(b, 32)?;
    let shoff = u64_at(b, 40)?;
    let phentsize = u16_at(b, 54)? as u64;
    let phnum = u16_at(b, 56)? as u64;
    let shentsize = u16_at(b, 58)? as u64;
    let shnum = u16_at(b, 60)? as u64;
    if phnum > 0 && phentsize < 56 {
        return Err("bad program header size".into());
    }
    let mut segs = Vec::new();
    for i in 0..phnum {
        let at = phoff
            .checked_add(i * phentsize)
            .ok_or("program headers out of range")?;
        segs.push(Seg {
            ty: u32_at(b, at)?,
            flags: u32_at(b, at + 4)?,
            offset: u64_at(b, at + 8)?,
            vaddr: u64_at(b, at + 16)?,
            filesz: u64_at(b, at + 32)?,
        });
    }
    let file_len = b.len() as u64;
    let in_file = |off: u64, len: u64| off.checked_add(len).is_some_and(|e| e <= file_len);
    // Executable segments, as the loader maps them.
    let exec: Vec<&Seg> = segs
        .iter()
        .filter(|s| s.ty == PT_LOAD && s.flags & PF_X != 0 && in_file(s.offset, s.filesz))
        .collect();
    if exec.is_empty() {
        return Err("no executable segment".into());
    }
    // vaddr -> file offset, through any loaded segment.
    let file_off = |vaddr: u64, len: u64| -> Option<u64> {
        segs.iter()
            .filter(|s| s.ty == PT_LOAD)
            .find(|s| {
                vaddr >= s.vaddr
                    && vaddr
                        .checked_add(len)
                        .is_some_and(|e| e <= s.vaddr.saturating_add(s.filesz))
            })
            .map(|s| s.offset.wrapping_add(vaddr - s.vaddr))
            .filter(|&o| in_file(o, len))
    };
    let in_exec = |vaddr: u64, len: u64| {
        exec.iter().find(|s| {
            vaddr >= s.vaddr
                && vaddr
                    .checked_add(len)
                    .is_some_and(|e| e <= s.vaddr.saturating_add(s.filesz))
        })
    };

    let mut elf = Elf::default();
    let mut starts = Vec::new();
    if in_exec(entry, 2).is_some() {
        starts.push(entry);
    }

    // Sections, if the file has them: executable ones are the code, symbol tables name
    // functions.
    let mut sections = Vec::new();
    if shnum > 0 && shoff != 0 {
        if shentsize < 64 {
            return Err("bad section header size".into());
        }
        for i in 0..shnum {
            let at = shoff
                .checked_add(i * shentsize)
                .ok_or("section headers out of range")?;
            sections.push((
                u32_at(b, at + 4)?,  // type
                u64_at(b, at + 8)?,  // flags
                u64_at(b, at + 16)?, // addr
                u64_at(b, at + 24)?, // offset
                u64_at(b, at + 32)?, // size
                u32_at(b, at + 40)?, // link
            ));
        }
    }
    for &(ty, flags, addr, offset, size, _) in &sections {
        if ty == SHT_PROGBITS
            && flags & (SHF_ALLOC | SHF_EXECINSTR) == SHF_ALLOC | SHF_EXECINSTR
            && size > 0
        {
            // Only code that the executable segments load, at the offset they load it from.
            let Some(seg) = in_exec(addr, size) else {
                continue;
            };
            if seg.offset + (addr - seg.vaddr) != offset {
                continue;
            }
            elf.code.push(Code {
                offset,
                vaddr: addr,
                len: size,
            });
            starts.push(addr);
        }
        if ty == SHT_RELA && in_file(offset, size) {
            for k in 0..size / 24 {
                let at = offset + k * 24;
                if u64_at(b, at + 8)? & 0xffff_ffff == R_RISCV_RELATIVE {
                    let addend = u64_at(b, at + 16)?;
                    if in_exec(addend, 2).is_some() {
                        elf.pointed.push(addend & !1);
                    }
                }
            }
        }
        if (ty == SHT_SYMTAB || ty == SHT_DYNSYM) && in_file(offset, size) {
            for k in 0..size / 24 {
                let at = offset + k * 24;
                let info = get::<1>(b, at + 4)?[0];
                let value = u64_at(b, at + 8)?;
                if info & 0xf == STT_FUNC && value != 0 && in_exec(value, 2).is_some() {
                    starts.push(value & !1);
                }
            }
        }
    }
    if elf.code.is_empty() {
        // No section headers (or none usable): the executable segments themselves.
        for s in &exec {
            elf.code.push(Code {
                offset: s.offset,
                vaddr: s.vaddr,
                len: s.filesz,
            });
            starts.push(s.vaddr);
        }
    }
    elf.code.sort_by_key(|c| c.vaddr);
    if elf
        .code
        .windows(2)
        .any(|w| w[0].vaddr + w[0].len > w[1].vaddr)
    {
        return Err("overlapping code sections".into());
    }

    for s in &segs {
        match s.ty {
            PT_GNU_EH_FRAME => {
                if let Some(off) = file_off(s.vaddr, s.filesz) {
                    eh_frame_hdr(b, off, s.vaddr, s.filesz, &mut starts);
                }
            }
            PT_INTERP if in_file(s.offset, s.filesz) => elf.interp = cstr(b, s.offset),
            PT_DYNAMIC if in_file(s.offset, s.filesz) => {
                let mut needed = Vec::new();
                let mut strtab = None;
                for k in 0..s.filesz / 16 {
                    let tag = u64_at(b, s.offset + k * 16)?;
                    let val = u64_at(b, s.offset + k * 16 + 8)?;
                    match tag {
                        0 => break,
                        DT_NEEDED => needed.push(val),
                        DT_STRTAB => strtab = Some(val),
                        _ => {}
                    }
                }
                if let Some(tab) = strtab.and_then(|t| file_off(t, 1)) {
                    elf.needed = needed
                        .into_iter()
                        .filter_map(|n| cstr(b, tab.checked_add(n)?))
                        .collect();
                }
            }
            _ => {}
        }
    }
    starts.retain(|&a| elf.code.iter().any(|c| a >= c.vaddr && a < c.vaddr + c.len));
    starts.sort_unstable();
    starts.dedup();
    elf.starts = starts;
    elf.pointed.sort_unstable();
    elf.pointed.dedup();
    Ok(elf)
}

/// Adds the function starts of `.eh_frame_hdr`'s binary-search table (`len` bytes at file
/// offset `off`, loaded at `vaddr`), in the one encoding toolchains write for it
/// (`DW_EH_PE_datarel | DW_EH_PE_sdata4`); other encodings add nothing.
fn eh_frame_hdr(b: &[u8], off: u64, vaddr: u64, len: u64, starts: &mut Vec<u64>) {
    let Ok([version, ptr_enc, count_enc, table_enc]) = get::<4>(b, off) else {
        return;
    };
    if version != 1 || table_enc != 0x3b || len < 12 {
        return;
    }
    // eh_frame_ptr (4 bytes if sdata4 or udata4, else we cannot skip it safely).
    if ptr_enc & 0x0f != 0x0b && ptr_enc & 0x0f != 0x03 {
        return;
    }
    if count_enc & 0x0f != 0x03 && count_enc & 0x0f != 0x0b {
        return;
    }
    let Ok(count) = u32_at(b, off + 8) else {
        return;
    };
    let count = (count as u64).min((len - 12) / 8);
    for i in 0..count {
        let Ok(rel) = u32_at(b, off + 12 + i * 8) else {
            return;
        };
        starts.push(vaddr.wrapping_add(rel as i32 as i64 as u64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(b"").is_err());
        assert!(parse(b"\x7fELF").is_err());
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18] = 243;
        // Program headers pointing far outside the file.
        h[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        h[54] = 56;
        h[56] = 3;
        assert!(parse(&h).is_err());
        // Every truncation of a header with one executable segment is an error or a
        // parse, never a panic.
        let mut f = h.clone();
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[56] = 1;
        f.resize(64 + 56, 0);
        f[64..68].copy_from_slice(&PT_LOAD.to_le_bytes());
        f[68..72].copy_from_slice(&(PF_X | 4).to_le_bytes());
        f[96..104].copy_from_slice(&(120u64).to_le_bytes()); // filesz: the whole file
        for n in 0..f.len() {
            let _ = parse(&f[..n]);
        }
        let e = parse(&f).expect("a minimal file parses");
        assert_eq!(
            e.code,
            vec![Code {
                offset: 0,
                vaddr: 0,
                len: 120
            }]
        );
    }
}
