//! Ahead-of-time translation: the image's RISC-V code to Wasm functions inside the module.
//!
//! - `elf`: what a file's headers say (code, function starts, needed libraries).
//! - `emit`: one group of guest code (a function, or a piece of a long one) to one Wasm
//!   function.
//! - here: which files to translate (`Mode`, `--aot-include`), and the index the guest
//!   reads to find a translation (`rvbox_guest::cpu::aot_abi` has its layout).
//!
//! What the translator does not know: Linux, the VFS, where a file will be mapped. It
//! keys translations by the file's place in the bundle and its ELF addresses; the guest
//! uses one only when the pages it covers are that file's bytes, mapped in place
//! (`emulator-guest/src/cpu/aot.rs`). A file it cannot read is skipped, never an error:
//! it still runs, interpreted.

pub mod elf;
pub mod emit;

use crate::tree::{NodeId, NodeKind, Tree};
use rvbox_guest::cpu::aot_abi as abi;
use std::collections::{BTreeSet, HashSet};

/// Which ELF files get translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// None: everything is interpreted (the default: translated code makes a module's
    /// first compile about ten times longer, see README "Translation").
    #[default]
    None,
    /// The entrypoint's program, its interpreter and the libraries it needs.
    Entry,
    /// Every RISC-V ELF file in the image.
    All,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "none" => Ok(Mode::None),
            "entry" => Ok(Mode::Entry),
            "all" => Ok(Mode::All),
            _ => Err(format!("--aot takes none, entry or all, not {s:?}")),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub mode: Mode,
    /// More files, by glob over absolute paths (`*` within a component, `**` across).
    pub include: Vec<String>,
}

/// The translated code of a module.
#[derive(Debug, Default)]
pub struct Translation {
    /// Function bodies, as code section entries; function k fills table slot base + k.
    pub bodies: Vec<Vec<u8>>,
    /// The index (see `aot_abi`).
    pub index: Vec<u8>,
    /// Files translated, and files skipped with the reason.
    pub files: Vec<String>,
    pub skipped: Vec<(String, String)>,
    /// Guest instructions translated.
    pub insns: usize,
    /// Bytes of guest code covered.
    pub code_bytes: u64,
    /// The type index the bodies call translated functions by (`module::aot_type_index`).
    pub type_index: u32,
}

/// Most bytes of guest code per Wasm function: long functions are split (big Wasm
/// functions compile slowly and V8 dislikes deep `br_table`s).
const GROUP_BYTES: usize = 4 << 10;

/// `glob` (with `*`, `**`, `?`) matches `path`.
pub fn glob_match(glob: &str, path: &str) -> bool {
    fn m(g: &[u8], p: &[u8]) -> bool {
        match g {
            [] => p.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=p.len()).any(|i| m(rest, &p[i..])),
            [b'*', rest @ ..] => {
                for i in 0..=p.len() {
                    if m(rest, &p[i..]) {
                        return true;
                    }
                    if i < p.len() && p[i] == b'/' {
                        break;
                    }
                }
                false
            }
            [b'?', rest @ ..] => !p.is_empty() && p[0] != b'/' && m(rest, &p[1..]),
            [c, rest @ ..] => p.first() == Some(c) && m(rest, &p[1..]),
        }
    }
    m(glob.as_bytes(), path.as_bytes())
}

const LIB_DIRS: &[&str] = &[
    "/lib/riscv64-linux-gnu",
    "/usr/lib/riscv64-linux-gnu",
    "/lib64/lp64d",
    "/usr/lib64/lp64d",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

fn read_head(tree: &Tree, id: NodeId) -> Option<Vec<u8>> {
    match tree.node(id).kind {
        NodeKind::File { .. } => tree.file_contents(id).ok(),
        _ => None,
    }
}

/// The files `Mode::Entry` picks: the program `argv0` names (searched in `path` if it has
/// no `/`), its interpreter, and the libraries they need, transitively.
pub fn entry_closure(tree: &Tree, argv0: &str, path: &str) -> HashSet<NodeId> {
    let mut out = HashSet::new();
    let first = if argv0.contains('/') {
        tree.resolve(argv0.as_bytes())
    } else {
        path.split(':').find_map(|d| {
            let id = tree.resolve(format!("{d}/{argv0}").as_bytes())?;
            matches!(tree.node(id).kind, NodeKind::File { .. }).then_some(id)
        })
    };
    let mut queue: Vec<NodeId> = first.into_iter().collect();
    while let Some(id) = queue.pop() {
        if !out.insert(id) {
            continue;
        }
        let Some(bytes) = read_head(tree, id) else {
            continue;
        };
        let Ok(e) = elf::parse(&bytes) else {
            continue;
        };
        let mut deps: Vec<NodeId> = e
            .interp
            .iter()
            .filter_map(|i| tree.resolve(i.as_bytes()))
            .collect();
        for lib in &e.needed {
            if let Some(id) = LIB_DIRS
                .iter()
                .find_map(|d| tree.resolve(format!("{d}/{lib}").as_bytes()))
            {
                deps.push(id);
            }
        }
        queue.extend(deps.into_iter().filter(|d| !out.contains(d)));
    }
    out
}

/// A file that may be translated: its path, node, and data offset in the bundle.
pub struct Candidate {
    pub path: String,
    pub node: NodeId,
    pub bundle_off: u64,
}

/// Translates the candidates `pick` accepts, for a module whose translated functions
/// have type index `ty`.
pub fn translate(
    tree: &Tree,
    candidates: &[Candidate],
    pick: &dyn Fn(&Candidate) -> bool,
    ty: u32,
) -> Translation {
    let mut t = Translation {
        type_index: ty,
        ..Default::default()
    };
    // (bundle offset, vaddr, len, function, blocks)
    let mut groups: Vec<(u64, u64, u32, u32, Vec<u16>)> = Vec::new();
    let mut seen = BTreeSet::new();
    for c in candidates {
        if !pick(c) || !seen.insert(c.node) {
            continue;
        }
        let Some(bytes) = read_head(tree, c.node) else {
            continue;
        };
        if !elf::is_riscv_elf(&bytes) {
            continue;
        }
        let e = match elf::parse(&bytes) {
            Ok(e) => e,
            Err(why) => {
                t.skipped.push((c.path.clone(), why));
                continue;
            }
        };
        let slice =
            |code: &elf::Code| bytes.get(code.offset as usize..(code.offset + code.len) as usize);
        // Where control can come from elsewhere: direct targets in the whole file (a
        // branch from a function's cold part back into it), function starts, and code
        // addresses in data (function pointers, jump tables).
        let mut targets = e.starts.clone();
        targets.extend_from_slice(&e.pointed);
        for code in &e.code {
            if let Some(data) = slice(code) {
                emit::direct_targets(data, code.vaddr, &mut targets);
            }
        }
        targets.sort_unstable();
        targets.dedup();
        for code in &e.code {
            let Some(data) = slice(code) else {
                continue;
            };
            t.code_bytes += code.len;
            // Function ranges: from each start to the next.
            let mut cuts: Vec<u64> = e
                .starts
                .iter()
                .copied()
                .filter(|&s| s > code.vaddr && s < code.vaddr + code.len)
                .map(|s| s - code.vaddr)
                .collect();
            cuts.push(code.len);
            let mut from = 0u64;
            for to in cuts {
                let mut at = from;
                while at < to {
                    let piece = &data[at as usize..to as usize];
                    let (len, g) = emit::group(piece, code.vaddr + at, GROUP_BYTES, &targets, ty);
                    if let Some(g) = g {
                        t.insns += g.insns;
                        groups.push((
                            c.bundle_off + code.offset + at,
                            code.vaddr + at,
                            len as u32,
                            t.bodies.len() as u32,
                            g.blocks,
                        ));
                        t.bodies.push(g.body);
                    }
                    at += len as u64;
                }
                from = to;
            }
        }
        t.files.push(c.path.clone());
    }
    groups.sort_by_key(|g| g.0);
    let offsets: usize = groups.iter().map(|g| g.4.len()).sum();
    let mut ix = Vec::with_capacity(abi::INDEX_HEAD + groups.len() * abi::GROUP_LEN + offsets * 2);
    ix.extend_from_slice(&abi::INDEX_MAGIC);
    ix.extend_from_slice(&(groups.len() as u32).to_le_bytes());
    ix.extend_from_slice(&(offsets as u32).to_le_bytes());
    let mut first = 0u32;
    for g in &groups {
        ix.extend_from_slice(&g.0.to_le_bytes());
        ix.extend_from_slice(&g.1.to_le_bytes());
        ix.extend_from_slice(&g.2.to_le_bytes());
        ix.extend_from_slice(&g.3.to_le_bytes());
        ix.extend_from_slice(&first.to_le_bytes());
        ix.extend_from_slice(&(g.4.len() as u32).to_le_bytes());
        first += g.4.len() as u32;
    }
    for g in &groups {
        for o in &g.4 {
            ix.extend_from_slice(&o.to_le_bytes());
        }
    }
    t.index = ix;
    t
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("/usr/bin/*", "/usr/bin/python3"));
        assert!(!glob_match("/usr/bin/*", "/usr/bin/x/y"));
        assert!(glob_match(
            "/usr/lib/**/libz.so*",
            "/usr/lib/riscv64-linux-gnu/libz.so.1"
        ));
        assert!(glob_match("**/sqlite3", "/usr/bin/sqlite3"));
        assert!(glob_match("/bin/?ash", "/bin/bash"));
        assert!(!glob_match("/bin/?ash", "/bin/ash"));
    }
}
