//! `rvbox inspect --files`: the file tree a module carries, read back from its bundle, so
//! tests and users see exactly what the guest will see.

use serde::Serialize;
use sha2::{Digest, Sha256};

use rvbox_guest::bundle::{mode, Bundle, Inode};

/// One entry of the bundled tree.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path in the guest (`/` for the root).
    pub path: String,
    /// `dir`, `file`, `symlink`, `char`, `block`, `fifo`, `socket`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Permission bits with setuid/setgid/sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Regular file: bytes; others 0.
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Inode number in the bundle: entries with the same one are hardlinks.
    pub ino: u32,
    pub nlink: u32,
    /// Symlink target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Regular file: sha256 of the content (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Device: (major, minor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdev: Option<(u32, u32)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("no rvbox bundle in this module")]
    NoBundle,
    #[error("damaged bundle: {0}")]
    Bundle(String),
}

fn kind_name(ino: &Inode) -> &'static str {
    match ino.file_type() {
        mode::S_IFDIR => "dir",
        mode::S_IFREG => "file",
        mode::S_IFLNK => "symlink",
        mode::S_IFCHR => "char",
        mode::S_IFBLK => "block",
        mode::S_IFIFO => "fifo",
        _ => "socket",
    }
}

/// Linux `new_decode_dev`.
fn decode_dev(rdev: u32) -> (u32, u32) {
    (
        (rdev & 0xfff00) >> 8,
        (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
    )
}

/// Every entry of the module's tree, depth-first in name order. With `hashes`, regular
/// files get their sha256.
pub fn list(module: &[u8], hashes: bool) -> Result<Vec<Entry>, ListError> {
    let bytes = rvbox_guest::native::find_bundle(module).ok_or(ListError::NoBundle)?;
    let b = Bundle::new(bytes).map_err(|e| ListError::Bundle(e.to_string()))?;
    let err = |e: rvbox_guest::bundle::BundleError| ListError::Bundle(e.to_string());
    let mut out = Vec::new();
    let mut stack: Vec<(String, u32)> = vec![("/".into(), 0)];
    while let Some((path, ino_nr)) = stack.pop() {
        let ino = b.inode(ino_nr).map_err(err)?;
        let kind = kind_name(&ino);
        let mut e = Entry {
            path: path.clone(),
            kind,
            mode: ino.mode & 0o7777,
            uid: ino.uid,
            gid: ino.gid,
            size: if kind == "file" { ino.size } else { 0 },
            mtime: ino.mtime,
            mtime_nsec: ino.mtime_nsec,
            ino: ino_nr,
            nlink: ino.nlink,
            target: None,
            sha256: None,
            rdev: None,
        };
        match kind {
            "symlink" => {
                let t = b.symlink_target(&ino).map_err(err)?;
                e.target = Some(String::from_utf8_lossy(t).into_owned());
            }
            "file" if hashes => {
                let data = b.file_data(&ino).map_err(err)?;
                Bundle::verify_file(ino_nr, &ino, data).map_err(err)?;
                e.sha256 = Some(hex::encode(Sha256::digest(data)));
            }
            "char" | "block" => e.rdev = Some(decode_dev(ino.rdev)),
            "dir" => {
                let mut children = Vec::new();
                for d in b.entries(&ino) {
                    let d = d.map_err(err)?;
                    let name = String::from_utf8_lossy(d.name);
                    let child = if path == "/" {
                        format!("/{name}")
                    } else {
                        format!("{path}/{name}")
                    };
                    children.push((child, d.ino));
                }
                // Pop in name order.
                stack.extend(children.into_iter().rev());
            }
            _ => {}
        }
        out.push(e);
    }
    Ok(out)
}

/// `ls -l`-like one-line form of an entry.
pub fn line(e: &Entry) -> String {
    let t = match e.kind {
        "dir" => 'd',
        "file" => '-',
        "symlink" => 'l',
        "char" => 'c',
        "block" => 'b',
        "fifo" => 'p',
        _ => 's',
    };
    let mut s = format!(
        "{t}{:04o} {:>5}:{:<5} {:>10} {} {}",
        e.mode, e.uid, e.gid, e.size, e.mtime, e.path
    );
    if let Some(target) = &e.target {
        s.push_str(" -> ");
        s.push_str(target);
    }
    if let Some((ma, mi)) = e.rdev {
        s.push_str(&format!(" ({ma},{mi})"));
    }
    s
}
