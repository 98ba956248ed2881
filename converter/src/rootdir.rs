//! `dir:PATH`: a plain root filesystem directory on the host, read into a `Tree` as it is.
//!
//! Every entry is taken with its host metadata (mode including setuid/setgid/sticky, uid,
//! gid, mtime), the way `tar --numeric-owner` would archive it: a tree unpacked by a
//! non-root user is owned by that user in the guest. Symlinks are read, never followed;
//! hardlinked files stay one node; device nodes and fifos are kept as metadata; sockets
//! are skipped (tar skips them too). Nothing is written to the host but the tree's spool.
//!
//! The platform is checked from the ELF files met on the way: a tree with ELF programs
//! but none for RISC-V is refused, naming the machines found.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::ConvertError;
use crate::layers::LayerProgress;
use crate::tree::{Meta, NodeId, NodeKind, Tree};

const EM_RISCV: u16 = 243;

fn meta_of(md: &fs::Metadata) -> Meta {
    Meta {
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime: md.mtime(),
        mtime_nsec: md.mtime_nsec().clamp(0, 999_999_999) as u32,
    }
}

/// The ELF machine of a file's first bytes, if it is an ELF file.
fn elf_machine(head: &[u8]) -> Option<u16> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return None;
    }
    Some(match head[5] {
        2 => u16::from_be_bytes([head[18], head[19]]),
        _ => u16::from_le_bytes([head[18], head[19]]),
    })
}

fn machine_name(m: u16) -> String {
    match m {
        3 => "386".into(),
        40 => "arm".into(),
        62 => "amd64".into(),
        183 => "arm64".into(),
        8 => "mips".into(),
        20 | 21 => "ppc64".into(),
        22 => "s390x".into(),
        258 => "loong64".into(),
        m => format!("ELF machine {m}"),
    }
}

/// Reads the directory `root` into a tree. `max_size` bounds the bytes of file content.
pub fn read(
    root: &Path,
    reference: &str,
    max_size: u64,
    progress: &mut dyn FnMut(LayerProgress),
) -> Result<Tree, ConvertError> {
    let mut tree = Tree::new().map_err(ConvertError::Spool)?;
    let root_md = fs::metadata(root).map_err(|e| ConvertError::io(root, e))?;
    tree.node_mut(tree.root()).meta = meta_of(&root_md);
    let mut links: HashMap<(u64, u64), NodeId> = HashMap::new();
    let mut machines: HashMap<u16, u64> = HashMap::new();
    let mut bytes = 0u64;
    let mut entries = 0u64;
    let label = format!("dir:{}", root.display());
    let mut report = |bytes: u64, entries: u64, done: bool| {
        progress(LayerProgress {
            index: 0,
            count: 1,
            digest: label.clone(),
            bytes_read: bytes,
            size: bytes,
            entries,
            done,
        })
    };
    report(0, 0, false);
    let mut stack: Vec<(PathBuf, NodeId)> = vec![(root.to_path_buf(), tree.root())];
    while let Some((dir, dir_id)) = stack.pop() {
        let rd = fs::read_dir(&dir).map_err(|e| ConvertError::io(&dir, e))?;
        let mut names: Vec<(Vec<u8>, PathBuf)> = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| ConvertError::io(&dir, e))?;
            names.push((ent.file_name().as_bytes().to_vec(), ent.path()));
        }
        names.sort();
        for (name, path) in names {
            let md = fs::symlink_metadata(&path).map_err(|e| ConvertError::io(&path, e))?;
            let ft = md.file_type();
            let meta = meta_of(&md);
            if !ft.is_dir() && md.nlink() > 1 {
                if let Some(&id) = links.get(&(md.dev(), md.ino())) {
                    link(&mut tree, dir_id, name, id);
                    continue;
                }
            }
            let kind = if ft.is_dir() {
                NodeKind::Dir(Default::default())
            } else if ft.is_symlink() {
                let t = fs::read_link(&path).map_err(|e| ConvertError::io(&path, e))?;
                NodeKind::Symlink(t.as_os_str().as_bytes().to_vec())
            } else if ft.is_file() {
                if bytes + md.len() > max_size {
                    return Err(ConvertError::TooLarge {
                        what: format!("{reference} (at {})", path.display()),
                        limit: max_size,
                    });
                }
                let mut f = File::open(&path).map_err(|e| ConvertError::io(&path, e))?;
                let mut head = [0u8; 20];
                let n = f.read(&mut head).map_err(|e| ConvertError::io(&path, e))?;
                if let Some(m) = elf_machine(&head[..n]) {
                    *machines.entry(m).or_default() += 1;
                }
                f.rewind().map_err(|e| ConvertError::io(&path, e))?;
                // A file that grows while it is read is taken at its size when listed.
                let mut limited = f.take(md.len());
                let (offset, len) = tree
                    .spool_from(&mut limited)
                    .map_err(|e| ConvertError::io(&path, e))?;
                bytes += len;
                NodeKind::File { offset, len }
            } else if ft.is_char_device() || ft.is_block_device() {
                let rdev = md.rdev();
                let (major, minor) = (libc_major(rdev), libc_minor(rdev));
                if ft.is_char_device() {
                    NodeKind::CharDev { major, minor }
                } else {
                    NodeKind::BlockDev { major, minor }
                }
            } else if ft.is_fifo() {
                NodeKind::Fifo
            } else {
                continue; // a socket
            };
            let is_dir = matches!(kind, NodeKind::Dir(_));
            let id = tree.add(meta, kind);
            link(&mut tree, dir_id, name, id);
            if !is_dir && md.nlink() > 1 {
                links.insert((md.dev(), md.ino()), id);
            }
            if is_dir {
                stack.push((path, id));
            }
            entries += 1;
            if entries.is_multiple_of(256) {
                report(bytes, entries, false);
            }
        }
    }
    if !machines.is_empty() && !machines.contains_key(&EM_RISCV) {
        let mut found: Vec<(u16, u64)> = machines.into_iter().collect();
        found.sort_by_key(|&(m, n)| (std::cmp::Reverse(n), m));
        return Err(ConvertError::NoPlatform {
            reference: reference.to_string(),
            available: found
                .iter()
                .map(|&(m, n)| format!("linux/{} ({n} ELF files)", machine_name(m)))
                .collect(),
        });
    }
    tree.finish_spool().map_err(ConvertError::Spool)?;
    report(bytes, entries, true);
    Ok(tree)
}

fn link(tree: &mut Tree, dir: NodeId, name: Vec<u8>, id: NodeId) {
    if let NodeKind::Dir(children) = &mut tree.node_mut(dir).kind {
        children.insert(name, id);
    }
}

/// glibc's `gnu_dev_major`/`gnu_dev_minor`.
fn libc_major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)) as u32
}

fn libc_minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)) as u32
}
