//! Emitting a module: the embedded guest module, plus the `rvbox` metadata section in
//! front, plus one more data segment holding the filesystem bundle.
//!
//! Where the bundle goes: at the end of the guest's initial linear memory (its original
//! minimum size, a 64 KiB boundary), and the memory minimum grows to cover it. The guest's
//! allocator only ever takes memory from `memory.grow`, which returns pages above the new
//! minimum, so nothing else uses those addresses. The guest learns the address from a
//! locator static (`RVBOX_BUNDLE` in `emulator-guest/src/host.rs`) whose magic bytes we find
//! in the guest's data segments and patch. A wasm host maps page-aligned data segments
//! copy-on-write (wasmtime's `memory_init_cow`), so a large image costs no start-up copy.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};
use wasm_encoder::Encode;
use wasmparser::{Parser, Payload};

use crate::aot::Translation;
use crate::meta::ModuleMeta;

/// The guest emulator for wasm32-wasip1, built by `build.rs`.
pub const GUEST_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rvbox-guest.wasm"));

/// Magic bytes at the start of the guest's bundle locator; followed by the bundle's address
/// and length (u64 little-endian each). Keep in sync with `rvbox_guest::host`.
pub const LOCATOR_MAGIC: &[u8; 16] = b"rvbox-bundle-loc";
/// The same for the translation index: address, length, and the table slot of the first
/// translated function. Keep in sync with `rvbox_guest::host::RVBOX_AOT`.
pub const AOT_LOCATOR_MAGIC: &[u8; 16] = b"rvbox-aot-index!";

const WASM_PAGE: u64 = 65536;
/// Linear memory a module may use in all (wasm32); the bundle must leave room for the guest.
const MAX_BUNDLE_END: u64 = 3 << 30;

/// sha256 of the embedded guest module (hex).
pub fn guest_hash() -> String {
    hex::encode(Sha256::digest(GUEST_WASM))
}

/// The type index translated functions get in a module made from the embedded guest:
/// one more type after the guest's own.
pub fn aot_type_index() -> u32 {
    type_count(GUEST_WASM).unwrap_or(0)
}

fn type_count(guest: &[u8]) -> Option<u32> {
    Parser::new(0).parse_all(guest).find_map(|p| match p {
        Ok(Payload::TypeSection(r)) => Some(r.count()),
        _ => None,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error(
        "the image is too large for a wasm32 module: {0} MiB of files (at most about 3 GiB fit)"
    )]
    TooLarge(u64),
    #[error("the embedded guest module is malformed: {0}")]
    BadGuest(String),
    #[error("writing the module: {0}")]
    Io(#[from] io::Error),
}

fn bad(e: impl std::fmt::Display) -> ModuleError {
    ModuleError::BadGuest(e.to_string())
}

fn write_section(out: &mut impl Write, id: u8, body: &[u8]) -> io::Result<()> {
    let mut head = vec![id];
    (body.len() as u32).encode(&mut head);
    out.write_all(&head)?;
    out.write_all(body)
}

/// Writes a module to `out`: `meta` first, then the guest with `bundle` (of `bundle_len`
/// bytes, read to its end) added as a data segment, and the translated code `aot` as
/// functions in the guest's function table, with its index as one more data segment.
pub fn write_module(
    out: &mut impl Write,
    meta: &ModuleMeta,
    bundle: &mut impl Read,
    bundle_len: u64,
    aot: &Translation,
) -> Result<(), ModuleError> {
    write_module_with(out, GUEST_WASM, meta, bundle, bundle_len, aot)
}

/// Rewrites a section whose body is a vector: its entries as they are, then `extra` more
/// (already encoded).
fn extend_vector(
    out: &mut impl Write,
    id: u8,
    guest: &[u8],
    range: std::ops::Range<usize>,
    count: u32,
    extra: u32,
    tail: &[u8],
) -> io::Result<()> {
    let raw = &guest[range];
    let old = &raw[encoded(&count).len()..];
    let mut body = encoded(&(count + extra));
    body.extend_from_slice(old);
    body.extend_from_slice(tail);
    write_section(out, id, &body)
}

/// `write_module` for a given guest module (tests use small ones).
pub fn write_module_with(
    out: &mut impl Write,
    guest: &[u8],
    meta: &ModuleMeta,
    bundle: &mut impl Read,
    bundle_len: u64,
    aot: &Translation,
) -> Result<(), ModuleError> {
    // First pass: find the memory minimum, the locators, the function and table counts.
    let mut mem_min = None;
    let mut locator_at = None;
    let mut aot_locator_at = None;
    let mut type_count = None;
    let mut imported_funcs = 0u32;
    let mut defined_funcs = 0u32;
    let mut table_min = None;
    for payload in Parser::new(0).parse_all(guest) {
        match payload.map_err(bad)? {
            Payload::TypeSection(r) => type_count = Some(r.count()),
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    if matches!(imp.map_err(bad)?.ty, wasmparser::TypeRef::Func(_)) {
                        imported_funcs += 1;
                    }
                }
            }
            Payload::FunctionSection(r) => defined_funcs = r.count(),
            Payload::TableSection(r) => {
                for t in r {
                    let t = t.map_err(bad)?;
                    if table_min.is_none() {
                        table_min = Some(t.ty.initial);
                    }
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    let m = m.map_err(bad)?;
                    if mem_min.is_some() || m.memory64 || m.shared {
                        return Err(bad("expected exactly one 32-bit unshared memory"));
                    }
                    mem_min = Some(m.initial);
                }
            }
            Payload::DataSection(r) => {
                for d in r {
                    let d = d.map_err(bad)?;
                    let base = d.range.end - d.data.len();
                    for (magic, at, what) in [
                        (LOCATOR_MAGIC, &mut locator_at, "bundle locator"),
                        (
                            AOT_LOCATOR_MAGIC,
                            &mut aot_locator_at,
                            "translation locator",
                        ),
                    ] {
                        let mut hits = d.data.windows(16).enumerate().filter(|(_, w)| w == magic);
                        if let Some((i, _)) = hits.next() {
                            if at.is_some() || hits.next().is_some() {
                                return Err(bad(format!("{what} found twice")));
                            }
                            *at = Some(base + i);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mem_min = mem_min.ok_or_else(|| bad("no memory"))?;
    let locator_at = locator_at.ok_or_else(|| bad("no bundle locator"))?;
    let addr = mem_min * WASM_PAGE;
    let n_aot = aot.bodies.len() as u32;
    // The index goes after the bundle, 8-aligned.
    let index_addr = (addr + bundle_len).next_multiple_of(8);
    let end = if n_aot > 0 {
        index_addr + aot.index.len() as u64
    } else {
        addr + bundle_len
    };
    if end > MAX_BUNDLE_END {
        return Err(ModuleError::TooLarge(bundle_len >> 20));
    }
    let new_min = end.div_ceil(WASM_PAGE);

    let mut patched = guest.to_vec();
    patched[locator_at + 16..locator_at + 24].copy_from_slice(&addr.to_le_bytes());
    patched[locator_at + 24..locator_at + 32].copy_from_slice(&bundle_len.to_le_bytes());
    let (aot_type_index, table_base) = if n_aot > 0 {
        let at = aot_locator_at.ok_or_else(|| bad("no translation locator"))?;
        let base = table_min.ok_or_else(|| bad("no function table"))?;
        patched[at + 16..at + 24].copy_from_slice(&index_addr.to_le_bytes());
        patched[at + 24..at + 32].copy_from_slice(&(aot.index.len() as u64).to_le_bytes());
        patched[at + 32..at + 40].copy_from_slice(&base.to_le_bytes());
        let ty = type_count.ok_or_else(|| bad("no type section"))?;
        if ty != aot.type_index {
            return Err(bad(format!(
                "the translation calls type {}, the module's is {ty}",
                aot.type_index
            )));
        }
        (ty, base)
    } else {
        (0, 0)
    };
    let first_aot_func = imported_funcs + defined_funcs;
    let guest = &patched[..];

    out.write_all(&guest[..8])?;
    let mut custom = Vec::new();
    crate::meta::SECTION.encode(&mut custom);
    custom.extend_from_slice(&serde_json::to_vec(meta).expect("meta serialises"));
    write_section(out, 0, &custom)?;

    let mut wrote_data = false;
    for payload in Parser::new(0).parse_all(guest) {
        let payload = payload.map_err(bad)?;
        match &payload {
            Payload::Version { .. } | Payload::End(_) => continue,
            Payload::TypeSection(r) if n_aot > 0 => {
                extend_vector(out, 1, guest, r.range(), r.count(), 1, &encoded_type())?;
            }
            Payload::FunctionSection(r) if n_aot > 0 => {
                let mut tail = Vec::new();
                for _ in 0..n_aot {
                    aot_type_index.encode(&mut tail);
                }
                extend_vector(out, 3, guest, r.range(), r.count(), n_aot, &tail)?;
            }
            Payload::TableSection(r) if n_aot > 0 => {
                let mut body = encoded(&r.count());
                for (i, t) in r.clone().into_iter().enumerate() {
                    let t = t.map_err(bad)?;
                    if !matches!(t.init, wasmparser::TableInit::RefNull) || t.ty.table64 {
                        return Err(bad("unexpected function table"));
                    }
                    let grow = if i == 0 { n_aot as u64 } else { 0 };
                    wasm_encoder::TableType {
                        element_type: wasm_encoder::RefType::FUNCREF,
                        table64: false,
                        minimum: t.ty.initial + grow,
                        maximum: t.ty.maximum.map(|m| m + grow),
                        shared: false,
                    }
                    .encode(&mut body);
                }
                write_section(out, 4, &body)?;
            }
            Payload::ElementSection(r) if n_aot > 0 => {
                // One more active segment: table 0 from `table_base`, our functions.
                let mut tail = encoded(&0u32);
                wasm_encoder::ConstExpr::i32_const(table_base as i32).encode(&mut tail);
                n_aot.encode(&mut tail);
                for k in 0..n_aot {
                    (first_aot_func + k).encode(&mut tail);
                }
                extend_vector(out, 9, guest, r.range(), r.count(), 1, &tail)?;
            }
            Payload::CodeSectionStart { count, range, .. } if n_aot > 0 => {
                let mut tail = Vec::new();
                for b in &aot.bodies {
                    tail.extend_from_slice(b);
                }
                extend_vector(out, 10, guest, range.clone(), *count, n_aot, &tail)?;
            }
            Payload::CodeSectionEntry(_) if n_aot > 0 => continue,
            Payload::MemorySection(r) => {
                let mut body = Vec::new();
                r.count().encode(&mut body);
                for m in r.clone() {
                    let m = m.map_err(bad)?;
                    wasm_encoder::MemoryType {
                        minimum: new_min.max(m.initial),
                        maximum: m.maximum.map(|max| max.max(new_min)),
                        memory64: false,
                        shared: false,
                        page_size_log2: None,
                    }
                    .encode(&mut body);
                }
                write_section(out, 5, &body)?;
            }
            Payload::DataCountSection { count, .. } => {
                let extra = if n_aot > 0 { 2 } else { 1 };
                write_section(out, 12, &encoded(&(count + extra)))?;
            }
            Payload::DataSection(r) => {
                // Old segments as they are, then ours, streamed.
                let raw_segments = &guest[r.range().start..r.range().end];
                let mut count_len = Vec::new();
                r.count().encode(&mut count_len);
                let old = &raw_segments[count_len.len()..];
                let mut body_head = Vec::new();
                (r.count() + if n_aot > 0 { 2 } else { 1 }).encode(&mut body_head);
                body_head.extend_from_slice(old);
                body_head.push(0); // active, memory 0
                wasm_encoder::ConstExpr::i32_const(addr as u32 as i32).encode(&mut body_head);
                (bundle_len as u32).encode(&mut body_head);
                let mut index_seg = Vec::new();
                if n_aot > 0 {
                    index_seg.push(0);
                    wasm_encoder::ConstExpr::i32_const(index_addr as u32 as i32)
                        .encode(&mut index_seg);
                    (aot.index.len() as u32).encode(&mut index_seg);
                    index_seg.extend_from_slice(&aot.index);
                }
                let size = body_head.len() as u64 + bundle_len + index_seg.len() as u64;
                let mut head = vec![11u8];
                u32::try_from(size)
                    .map_err(|_| ModuleError::TooLarge(bundle_len >> 20))?
                    .encode(&mut head);
                out.write_all(&head)?;
                out.write_all(&body_head)?;
                let copied = io::copy(&mut bundle.take(bundle_len), out)?;
                if copied != bundle_len {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "bundle shorter than its length",
                    )
                    .into());
                }
                out.write_all(&index_seg)?;
                wrote_data = true;
            }
            _ => {
                if let Some((id, range)) = payload.as_section() {
                    let mut head = vec![id];
                    (range.len() as u32).encode(&mut head);
                    out.write_all(&head)?;
                    out.write_all(&guest[range])?;
                }
            }
        }
    }
    if !wrote_data {
        return Err(bad("no data section"));
    }
    Ok(())
}

/// The type of a translated function (see `rvbox_guest::cpu::aot_abi`), encoded:
/// `(i32 cpu, i32 tlbs, i32 entry, i64 bias, i64 budget) -> i32`.
fn encoded_type() -> Vec<u8> {
    const I32: u8 = 0x7f;
    const I64: u8 = 0x7e;
    vec![0x60, 5, I32, I32, I32, I64, I64, 1, I32]
}

fn encoded(x: &impl Encode) -> Vec<u8> {
    let mut v = Vec::new();
    x.encode(&mut v);
    v
}

/// Finds the bundle inside a module's bytes (for `rvbox inspect`).
pub use rvbox_guest::native::find_bundle;

#[cfg(test)]
mod tests {
    use super::GUEST_WASM;
    use wasmparser::{KnownCustom, Name, Parser, Payload};

    /// The names of the guest's functions, from its name section.
    fn function_names() -> Vec<String> {
        let mut names = Vec::new();
        for payload in Parser::new(0).parse_all(GUEST_WASM) {
            let Payload::CustomSection(c) = payload.unwrap() else {
                continue;
            };
            let KnownCustom::Name(reader) = c.as_known() else {
                continue;
            };
            for name in reader {
                if let Name::Function(map) = name.unwrap() {
                    for n in map {
                        names.push(n.unwrap().name.to_string());
                    }
                }
            }
        }
        names
    }

    /// `Cpu::run` stays a function of its own (emulator-guest/src/cpu/exec.rs says why:
    /// inlined into the kernel's loop, V8 never moved the interpreter to its optimizing
    /// tier, and Node and browsers ran at less than half speed).
    #[test]
    fn the_interpreter_loop_is_a_function_that_returns() {
        let names = function_names();
        assert!(names.len() > 100, "the guest has a name section");
        assert!(
            names
                .iter()
                .any(|n| n.contains("cpu4exec") && n.contains("Cpu$GT$3run17h")),
            "Cpu::run was inlined away"
        );
    }
}
