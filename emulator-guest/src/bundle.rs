//! The bundle: the image's root filesystem in a form the guest can use in place.
//!
//! The converter writes it into the module as one data segment; the guest reads it where it
//! lies in linear memory, without parsing or copying anything up front. All numbers are
//! little-endian. Layout:
//!
//! ```text
//! header   (HEADER_LEN bytes)  magic, version, table offsets (see `Header`)
//! inodes   (INODE_LEN each)    inode 0 is the root directory
//! dirents  (DIRENT_LEN each)   each directory's entries are contiguous and sorted by name
//! names    (bytes)             entry names and symlink targets
//! config   (bytes)             the image's run configuration (JSON), see converter `meta`
//! data     (page-aligned)      regular file contents, each file starting on a 4 KiB page
//! ```
//!
//! File data is page-aligned (relative to the bundle start, which the converter places
//! page-aligned in memory), so file pages can be mapped into the guest without copying.
//!
//! **The reader trusts nothing**: every offset is bounds-checked, so a damaged bundle gives
//! errors, never out-of-bounds reads.
//!
//! **Damage is detected** (format 2): the header holds a `checksum` of everything before
//! the file data (header fields, tables, names, config), checked by `Bundle::new`, and
//! each regular file's inode holds the checksum of its contents, checked by the guest the
//! first time the file's bytes are used (`Bundle::verify_file`). A module is a file that
//! is copied, downloaded and cached: a flipped bit must be an error, not a wrong result
//! or a directory loop. The checksum is for damage, not for tampering (who can change a
//! module can change its code as well): the module id in the `rvbox` section, a sha256
//! over guest code and bundle, names the content for that.

pub const MAGIC: [u8; 8] = *b"RVBXBNDL";
pub const VERSION: u32 = 2;
pub const HEADER_LEN: usize = 96;
pub const INODE_LEN: usize = 64;
pub const DIRENT_LEN: usize = 16;
pub const DATA_ALIGN: u64 = 4096;

/// File type bits of `st_mode` (as in Linux).
pub mod mode {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFSOCK: u32 = 0o140000;
    pub const S_IFLNK: u32 = 0o120000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFBLK: u32 = 0o060000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_IFIFO: u32 = 0o010000;
}
use mode::*;

/// One inode as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inode {
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    /// Regular file: length in bytes; symlink: target length; directory: entry count.
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Device number of a character or block device (Linux `new_encode_dev`).
    pub rdev: u32,
    /// Regular file: offset of the data in the bundle; directory: index of the first
    /// dirent; symlink: offset of the target in the names table.
    pub a: u64,
    /// Directory: number of entries; otherwise 0.
    pub b: u64,
    /// Regular file: `checksum` of its contents; otherwise 0.
    pub sum: u64,
}

impl Inode {
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.mode.to_le_bytes());
        out.extend_from_slice(&self.uid.to_le_bytes());
        out.extend_from_slice(&self.gid.to_le_bytes());
        out.extend_from_slice(&self.nlink.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.mtime.to_le_bytes());
        out.extend_from_slice(&self.mtime_nsec.to_le_bytes());
        out.extend_from_slice(&self.rdev.to_le_bytes());
        out.extend_from_slice(&self.a.to_le_bytes());
        out.extend_from_slice(&self.b.to_le_bytes());
        out.extend_from_slice(&self.sum.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Inode {
        Inode {
            mode: le32(b, 0),
            uid: le32(b, 4),
            gid: le32(b, 8),
            nlink: le32(b, 12),
            size: le64(b, 16),
            mtime: le64(b, 24) as i64,
            mtime_nsec: le32(b, 32),
            rdev: le32(b, 36),
            a: le64(b, 40),
            b: le64(b, 48),
            sum: le64(b, 56),
        }
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Header {
    inode_count: u32,
    dirent_count: u32,
    inodes_off: u64,
    dirents_off: u64,
    names_off: u64,
    names_len: u64,
    config_off: u64,
    config_len: u64,
    data_off: u64,
    total_len: u64,
    /// `checksum` of the header's other fields and of everything from the inode table to
    /// the file data.
    checksum: u64,
}

/// Where the header's checksum field is.
const CHECKSUM_AT: usize = 88;

/// A 64-bit checksum for detecting damage: four lanes of xor-multiply-rotate over
/// little-endian words, then mixed with the length. Every step is a bijection of a lane's
/// state, so any change confined to one 8-byte word always changes the result; other
/// changes go unseen with a chance of about 2^-64. Several GB/s natively, fast enough in
/// Wasm to check a file the first time it is read.
pub fn checksum(data: &[u8]) -> u64 {
    let mut c = Checksum::new();
    c.update(data);
    c.finish()
}

/// `checksum` over data that comes in pieces.
#[derive(Clone)]
pub struct Checksum {
    lane: [u64; 4],
    buf: [u8; 32],
    fill: usize,
    len: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Checksum::new()
    }
}

impl Checksum {
    const M: u64 = 0x9fb2_1c65_1e98_df25;

    pub fn new() -> Checksum {
        Checksum {
            lane: [
                0x243f_6a88_85a3_08d3,
                0x1319_8a2e_0370_7344,
                0xa409_3822_299f_31d0,
                0x082e_fa98_ec4e_6c89,
            ],
            buf: [0; 32],
            fill: 0,
            len: 0,
        }
    }

    #[inline(always)]
    fn block(lane: &mut [u64; 4], b: &[u8]) {
        let b: &[u8; 32] = b.try_into().expect("a 32-byte block");
        for (i, l) in lane.iter_mut().enumerate() {
            let w = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
            *l = ((*l ^ w).wrapping_mul(Self::M)).rotate_left(29);
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.fill > 0 {
            let k = (32 - self.fill).min(data.len());
            self.buf[self.fill..self.fill + k].copy_from_slice(&data[..k]);
            self.fill += k;
            data = &data[k..];
            if self.fill < 32 {
                return;
            }
            let buf = self.buf;
            Self::block(&mut self.lane, &buf);
            self.fill = 0;
        }
        let mut blocks = data.chunks_exact(32);
        for b in &mut blocks {
            Self::block(&mut self.lane, b);
        }
        let rest = blocks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.fill = rest.len();
    }

    pub fn finish(mut self) -> u64 {
        self.buf[self.fill..].fill(0);
        let buf = self.buf;
        Self::block(&mut self.lane, &buf);
        let fmix = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut h = self.len;
        for (i, l) in self.lane.iter().enumerate() {
            // Each lane's term is a bijection of the lane: one lane's change changes the sum.
            h = h.wrapping_add(fmix(l.wrapping_add(i as u64)));
        }
        fmix(h)
    }
}

/// The header checksum: over `head`, the bytes before the file data, with the checksum
/// field itself taken as zero.
fn head_checksum(head: &[u8]) -> u64 {
    let mut fields = [0u8; HEADER_LEN];
    fields.copy_from_slice(&head[..HEADER_LEN]);
    fields[CHECKSUM_AT..CHECKSUM_AT + 8].fill(0);
    checksum(&fields) ^ checksum(&head[HEADER_LEN..]).rotate_left(1)
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.extend_from_slice(&MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&self.inode_count.to_le_bytes());
        h.extend_from_slice(&self.dirent_count.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        for v in [
            self.inodes_off,
            self.dirents_off,
            self.names_off,
            self.names_len,
            self.config_off,
            self.config_len,
            self.data_off,
            self.total_len,
        ] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h.resize(HEADER_LEN, 0);
        h[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&self.checksum.to_le_bytes());
        h
    }
}

/// Why a bundle could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    BadMagic,
    BadVersion(u32),
    /// A table or record points outside the bundle.
    OutOfBounds(&'static str),
    /// The tables do not match the header's checksum.
    BadChecksum,
    /// A file's contents do not match their checksum: inode, length.
    BadFile(u32, u64),
}

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleError::BadMagic => write!(f, "not an rvbox filesystem bundle"),
            BundleError::BadVersion(v) => {
                write!(f, "bundle version {v}, this emulator reads {VERSION}")
            }
            BundleError::OutOfBounds(what) => write!(f, "damaged bundle: {what} out of bounds"),
            BundleError::BadChecksum => write!(
                f,
                "damaged bundle: its tables do not match their checksum (the module file is \
                 corrupt: convert the image again)"
            ),
            BundleError::BadFile(ino, len) => write!(
                f,
                "damaged bundle: the contents of a file (inode {ino}, {len} bytes) do not \
                 match their checksum (the module file is corrupt: convert the image again)"
            ),
        }
    }
}

impl std::error::Error for BundleError {}

/// A read-only view of a bundle.
#[derive(Clone, Copy)]
pub struct Bundle<'a> {
    bytes: &'a [u8],
    h: Header,
}

/// One directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirent<'a> {
    pub name: &'a [u8],
    pub ino: u32,
}

impl<'a> Bundle<'a> {
    /// Checks the header and the table bounds.
    pub fn new(bytes: &'a [u8]) -> Result<Bundle<'a>, BundleError> {
        if bytes.len() < HEADER_LEN || bytes[..8] != MAGIC {
            return Err(BundleError::BadMagic);
        }
        let version = le32(bytes, 8);
        if version != VERSION {
            return Err(BundleError::BadVersion(version));
        }
        let h = Header {
            inode_count: le32(bytes, 12),
            dirent_count: le32(bytes, 16),
            inodes_off: le64(bytes, 24),
            dirents_off: le64(bytes, 32),
            names_off: le64(bytes, 40),
            names_len: le64(bytes, 48),
            config_off: le64(bytes, 56),
            config_len: le64(bytes, 64),
            data_off: le64(bytes, 72),
            total_len: le64(bytes, 80),
            checksum: le64(bytes, CHECKSUM_AT),
        };
        let len = bytes.len() as u64;
        let fits = |off: u64, n: u64| off.checked_add(n).is_some_and(|end| end <= len);
        if h.total_len != len {
            return Err(BundleError::OutOfBounds("total length"));
        }
        if !fits(h.inodes_off, h.inode_count as u64 * INODE_LEN as u64) || h.inode_count == 0 {
            return Err(BundleError::OutOfBounds("inode table"));
        }
        if !fits(h.dirents_off, h.dirent_count as u64 * DIRENT_LEN as u64) {
            return Err(BundleError::OutOfBounds("dirent table"));
        }
        if !fits(h.names_off, h.names_len) {
            return Err(BundleError::OutOfBounds("names"));
        }
        if !fits(h.config_off, h.config_len) {
            return Err(BundleError::OutOfBounds("config"));
        }
        if h.data_off < HEADER_LEN as u64 || h.data_off > len {
            return Err(BundleError::OutOfBounds("file data"));
        }
        if head_checksum(&bytes[..h.data_off as usize]) != h.checksum {
            return Err(BundleError::BadChecksum);
        }
        let b = Bundle { bytes, h };
        if !b.inode(0)?.is_dir() {
            return Err(BundleError::OutOfBounds("root directory"));
        }
        Ok(b)
    }

    /// The whole bundle.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn inode_count(&self) -> u32 {
        self.h.inode_count
    }

    /// The run configuration JSON the converter stored.
    pub fn config(&self) -> &'a [u8] {
        &self.bytes[self.h.config_off as usize..(self.h.config_off + self.h.config_len) as usize]
    }

    pub fn inode(&self, ino: u32) -> Result<Inode, BundleError> {
        if ino >= self.h.inode_count {
            return Err(BundleError::OutOfBounds("inode number"));
        }
        let at = self.h.inodes_off as usize + ino as usize * INODE_LEN;
        Ok(Inode::decode(&self.bytes[at..at + INODE_LEN]))
    }

    fn name(&self, off: u64, len: u64) -> Result<&'a [u8], BundleError> {
        let end = off
            .checked_add(len)
            .filter(|&e| e <= self.h.names_len)
            .ok_or(BundleError::OutOfBounds("name"))?;
        Ok(&self.bytes[(self.h.names_off + off) as usize..(self.h.names_off + end) as usize])
    }

    fn dirent(&self, index: u64) -> Result<Dirent<'a>, BundleError> {
        if index >= self.h.dirent_count as u64 {
            return Err(BundleError::OutOfBounds("dirent"));
        }
        let at = self.h.dirents_off as usize + index as usize * DIRENT_LEN;
        let b = &self.bytes[at..at + DIRENT_LEN];
        Ok(Dirent {
            name: self.name(le32(b, 0) as u64, le32(b, 4) as u64)?,
            ino: le32(b, 8),
        })
    }

    /// The entries of directory `dir`, sorted by name.
    pub fn entries(
        &self,
        dir: &Inode,
    ) -> impl Iterator<Item = Result<Dirent<'a>, BundleError>> + 'a {
        let this = *self;
        let (first, n) = if dir.is_dir() { (dir.a, dir.b) } else { (0, 0) };
        (first..first.saturating_add(n)).map(move |i| this.dirent(i))
    }

    /// Looks `name` up in directory `dir` (binary search).
    pub fn lookup(&self, dir: &Inode, name: &[u8]) -> Result<Option<u32>, BundleError> {
        if !dir.is_dir() {
            return Ok(None);
        }
        let (mut lo, mut hi) = (dir.a, dir.a.saturating_add(dir.b));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let d = self.dirent(mid)?;
            match d.name.cmp(name) {
                std::cmp::Ordering::Equal => return Ok(Some(d.ino)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// The contents of a regular file.
    pub fn file_data(&self, inode: &Inode) -> Result<&'a [u8], BundleError> {
        if inode.file_type() != S_IFREG {
            return Ok(&[]);
        }
        let end = inode
            .a
            .checked_add(inode.size)
            .filter(|&e| e <= self.bytes.len() as u64)
            .ok_or(BundleError::OutOfBounds("file data"))?;
        Ok(&self.bytes[inode.a as usize..end as usize])
    }

    /// Checks a regular file's contents (`file_data`) against the checksum in its inode.
    pub fn verify_file(ino: u32, inode: &Inode, data: &[u8]) -> Result<(), BundleError> {
        if checksum(data) == inode.sum {
            Ok(())
        } else {
            Err(BundleError::BadFile(ino, inode.size))
        }
    }

    /// The target of a symlink.
    pub fn symlink_target(&self, inode: &Inode) -> Result<&'a [u8], BundleError> {
        if inode.file_type() != S_IFLNK {
            return Ok(&[]);
        }
        self.name(inode.a, inode.size)
    }
}

/// What the writer needs to know about each inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSpec {
    /// Entries: (name, index of the inode in the spec list). Need not be sorted.
    Dir(Vec<(Vec<u8>, u32)>),
    File {
        len: u64,
        /// `checksum` of the contents.
        sum: u64,
    },
    Symlink(Vec<u8>),
    CharDev {
        rdev: u32,
    },
    BlockDev {
        rdev: u32,
    },
    Fifo,
}

/// An inode to write: permission bits (0o7777), owner, mtime and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InodeSpec {
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub node: NodeSpec,
}

/// The result of laying a bundle out: `head` is every byte before the file data; file `i`'s
/// data goes at `file_offsets[i]`; the gaps are zero.
#[derive(Debug)]
pub struct Layout {
    pub head: Vec<u8>,
    /// Offset of each inode's data (regular files only).
    pub file_offsets: Vec<Option<u64>>,
    pub total_len: u64,
}

/// Lays out a bundle for `inodes` (inode 0 must be the root directory) and `config`.
/// The caller writes `head`, then each file's contents at its offset, zero-padding between.
pub fn layout(inodes: &[InodeSpec], config: &[u8]) -> Layout {
    assert!(matches!(
        inodes.first().map(|i| &i.node),
        Some(NodeSpec::Dir(_))
    ));
    let mut nlink = vec![0u32; inodes.len()];
    nlink[0] = 1; // the root's ".." is itself
    for spec in inodes {
        if let NodeSpec::Dir(entries) = &spec.node {
            for &(_, child) in entries {
                nlink[child as usize] += 1;
            }
        }
    }
    let mut names = Vec::new();
    let mut dirents = Vec::new();
    let mut raw = Vec::with_capacity(inodes.len());
    let mut dirent_count = 0u64;
    for (i, spec) in inodes.iter().enumerate() {
        let (ftype, size, rdev, a, b) = match &spec.node {
            NodeSpec::Dir(entries) => {
                let mut sorted: Vec<&(Vec<u8>, u32)> = entries.iter().collect();
                sorted.sort_by(|x, y| x.0.cmp(&y.0));
                let first = dirent_count;
                for (name, child) in sorted {
                    dirents.extend_from_slice(&(names.len() as u32).to_le_bytes());
                    dirents.extend_from_slice(&(name.len() as u32).to_le_bytes());
                    dirents.extend_from_slice(&child.to_le_bytes());
                    dirents.extend_from_slice(&0u32.to_le_bytes());
                    names.extend_from_slice(name);
                    dirent_count += 1;
                    if matches!(inodes[*child as usize].node, NodeSpec::Dir(_)) {
                        nlink[i] += 1; // the child's ".."
                    }
                }
                nlink[i] += 1; // "."
                (
                    S_IFDIR,
                    entries.len() as u64,
                    0,
                    first,
                    entries.len() as u64,
                )
            }
            NodeSpec::File { len, .. } => (S_IFREG, *len, 0, 0, 0),
            NodeSpec::Symlink(target) => {
                let off = names.len() as u64;
                names.extend_from_slice(target);
                (S_IFLNK, target.len() as u64, 0, off, 0)
            }
            NodeSpec::CharDev { rdev } => (S_IFCHR, 0, *rdev, 0, 0),
            NodeSpec::BlockDev { rdev } => (S_IFBLK, 0, *rdev, 0, 0),
            NodeSpec::Fifo => (S_IFIFO, 0, 0, 0, 0),
        };
        raw.push(Inode {
            mode: ftype | (spec.perm & 0o7777),
            uid: spec.uid,
            gid: spec.gid,
            nlink: 0,
            size,
            mtime: spec.mtime,
            mtime_nsec: spec.mtime_nsec,
            rdev,
            a,
            b,
            sum: match spec.node {
                NodeSpec::File { sum, .. } => sum,
                _ => 0,
            },
        });
    }
    let inodes_off = HEADER_LEN as u64;
    let dirents_off = inodes_off + (raw.len() * INODE_LEN) as u64;
    let names_off = dirents_off + dirents.len() as u64;
    let config_off = names_off + names.len() as u64;
    let data_off = (config_off + config.len() as u64).next_multiple_of(DATA_ALIGN);
    let mut file_offsets = vec![None; raw.len()];
    let mut at = data_off;
    for (i, ino) in raw.iter_mut().enumerate() {
        ino.nlink = nlink[i];
        if ino.file_type() == S_IFREG {
            ino.a = at;
            file_offsets[i] = Some(at);
            at = (at + ino.size).next_multiple_of(DATA_ALIGN);
        }
    }
    let total_len = at;
    let h = Header {
        inode_count: raw.len() as u32,
        dirent_count: dirent_count as u32,
        inodes_off,
        dirents_off,
        names_off,
        names_len: names.len() as u64,
        config_off,
        config_len: config.len() as u64,
        data_off,
        total_len,
        checksum: 0,
    };
    let mut head = h.encode();
    for ino in &raw {
        ino.encode(&mut head);
    }
    head.extend_from_slice(&dirents);
    head.extend_from_slice(&names);
    head.extend_from_slice(config);
    head.resize(data_off as usize, 0);
    let sum = head_checksum(&head);
    head[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
    Layout {
        head,
        file_offsets,
        total_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(node: NodeSpec) -> InodeSpec {
        InodeSpec {
            perm: 0o755,
            uid: 0,
            gid: 0,
            mtime: 1,
            mtime_nsec: 2,
            node,
        }
    }

    /// Builds a bundle in memory the way the converter does.
    fn build(inodes: &[InodeSpec], files: &[(usize, &[u8])]) -> Vec<u8> {
        let l = layout(inodes, b"{}");
        let mut out = l.head.clone();
        out.resize(l.total_len as usize, 0);
        for &(i, data) in files {
            let off = l.file_offsets[i].unwrap() as usize;
            out[off..off + data.len()].copy_from_slice(data);
        }
        out
    }

    #[test]
    fn round_trip() {
        let inodes = vec![
            spec(NodeSpec::Dir(vec![
                (b"zeta".to_vec(), 1),
                (b"bin".to_vec(), 2),
            ])),
            spec(NodeSpec::File {
                len: 5,
                sum: checksum(b"hello"),
            }),
            spec(NodeSpec::Dir(vec![
                (b"sh".to_vec(), 3),
                (b"hard".to_vec(), 1),
                (b"e".to_vec(), 4),
            ])),
            spec(NodeSpec::Symlink(b"../zeta".to_vec())),
            spec(NodeSpec::File {
                len: 0,
                sum: checksum(b""),
            }),
        ];
        let bytes = build(&inodes, &[(1, b"hello")]);
        let b = Bundle::new(&bytes).unwrap();
        assert_eq!(b.config(), b"{}");
        let root = b.inode(0).unwrap();
        assert_eq!(root.nlink, 3);
        let names: Vec<_> = b.entries(&root).map(|d| d.unwrap().name).collect();
        assert_eq!(names, [&b"bin"[..], b"zeta"]);
        let bin = b.inode(b.lookup(&root, b"bin").unwrap().unwrap()).unwrap();
        assert!(b.lookup(&root, b"nope").unwrap().is_none());
        let zeta = b.inode(b.lookup(&root, b"zeta").unwrap().unwrap()).unwrap();
        assert_eq!(zeta.nlink, 2, "hardlinked twice");
        assert_eq!(zeta.a % DATA_ALIGN, 0);
        assert_eq!(b.file_data(&zeta).unwrap(), b"hello");
        let sh = b.inode(b.lookup(&bin, b"sh").unwrap().unwrap()).unwrap();
        assert_eq!(b.symlink_target(&sh).unwrap(), b"../zeta");
        assert_eq!(sh.mode, S_IFLNK | 0o755);
        assert_eq!(b.lookup(&bin, b"hard").unwrap(), Some(1));
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let inodes = vec![
            spec(NodeSpec::Dir(vec![(b"f".to_vec(), 1)])),
            spec(NodeSpec::File {
                len: 3,
                sum: checksum(b"abc"),
            }),
        ];
        let good = build(&inodes, &[(1, b"abc")]);
        assert_eq!(Bundle::new(&good[..50]).err(), Some(BundleError::BadMagic));
        assert!(Bundle::new(&good[..good.len() - 1]).is_err());
        // Point the file past the end (and make the checksum fit): a bounds error.
        let mut bad = good.clone();
        let at = HEADER_LEN + INODE_LEN + 40;
        bad[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let data_off = le64(&bad, 72) as usize;
        let sum = head_checksum(&bad[..data_off]);
        bad[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
        let b = Bundle::new(&bad).unwrap();
        assert!(b.file_data(&b.inode(1).unwrap()).is_err());
        assert!(b.inode(2).is_err());
    }

    #[test]
    fn every_flipped_bit_of_the_tables_is_seen() {
        let inodes = vec![
            spec(NodeSpec::Dir(vec![(b"f".to_vec(), 1), (b"l".to_vec(), 2)])),
            spec(NodeSpec::File {
                len: 3,
                sum: checksum(b"abc"),
            }),
            spec(NodeSpec::Symlink(b"f".to_vec())),
        ];
        let good = build(&inodes, &[(1, b"abc")]);
        let data_off = le64(&good, 72) as usize;
        for byte in 8..data_off {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                assert!(Bundle::new(&bad).is_err(), "bit {bit} of byte {byte}");
            }
        }
        // File data: checked when the file is first used.
        let b = Bundle::new(&good).unwrap();
        let f = b.inode(1).unwrap();
        assert_eq!(Bundle::verify_file(1, &f, b.file_data(&f).unwrap()), Ok(()));
        assert_eq!(
            Bundle::verify_file(1, &f, b"abd"),
            Err(BundleError::BadFile(1, 3))
        );
    }

    #[test]
    fn checksum_in_pieces_is_checksum_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for cut in [0, 1, 31, 32, 33, 64, 999, 1000] {
            for cut2 in [cut, (cut + 5).min(1000), 1000] {
                let mut c = Checksum::new();
                c.update(&data[..cut]);
                c.update(&data[cut..cut2]);
                c.update(&data[cut2..]);
                assert_eq!(c.finish(), checksum(&data), "cuts {cut} {cut2}");
            }
        }
        // The length counts: trailing zeros are not padding.
        assert_ne!(checksum(b"a"), checksum(b"a\0"));
        assert_ne!(checksum(b""), checksum(&[0; 32]));
        // Every single flipped bit changes it.
        for i in 0..data.len() * 8 {
            let mut d = data.clone();
            d[i / 8] ^= 1 << (i % 8);
            assert_ne!(checksum(&d), checksum(&data));
        }
    }
}

/// How the container starts: the image config's Entrypoint, Cmd, Env, WorkingDir and User,
/// stored in the bundle's config area (length-prefixed, no parser needed in the guest).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub entrypoint: Vec<Vec<u8>>,
    pub cmd: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    pub working_dir: Vec<u8>,
    pub user: Vec<u8>,
}

impl RunConfig {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = b"RVCF".to_vec();
        let put = |out: &mut Vec<u8>, s: &[u8]| {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s);
        };
        for list in [&self.entrypoint, &self.cmd, &self.env] {
            out.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for s in list {
                put(&mut out, s);
            }
        }
        put(&mut out, &self.working_dir);
        put(&mut out, &self.user);
        out
    }

    pub fn decode(b: &[u8]) -> Result<RunConfig, BundleError> {
        let bad = BundleError::OutOfBounds("run config");
        if !b.starts_with(b"RVCF") {
            return Err(bad);
        }
        let mut at = 4usize;
        let u32_ = |at: &mut usize| -> Result<usize, BundleError> {
            let v = b.get(*at..*at + 4).ok_or(bad.clone())?;
            *at += 4;
            Ok(u32::from_le_bytes(v.try_into().unwrap()) as usize)
        };
        let mut lists = Vec::new();
        let mut strings = Vec::new();
        for i in 0..5 {
            let n = if i < 3 { u32_(&mut at)? } else { 1 };
            let mut list = Vec::new();
            for _ in 0..n {
                let len = u32_(&mut at)?;
                let s = b
                    .get(at..at.checked_add(len).ok_or(bad.clone())?)
                    .ok_or(bad.clone())?;
                at += len;
                list.push(s.to_vec());
            }
            if i < 3 {
                lists.push(list);
            } else {
                strings.push(list.pop().unwrap());
            }
        }
        let user = strings.pop().unwrap();
        let working_dir = strings.pop().unwrap();
        let env = lists.pop().unwrap();
        let cmd = lists.pop().unwrap();
        let entrypoint = lists.pop().unwrap();
        Ok(RunConfig {
            entrypoint,
            cmd,
            env,
            working_dir,
            user,
        })
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn run_config_round_trip_and_damage() {
        let c = RunConfig {
            entrypoint: vec![b"/bin/sh".to_vec(), b"-c".to_vec()],
            cmd: vec![],
            env: vec![b"PATH=/bin".to_vec()],
            working_dir: b"/w".to_vec(),
            user: b"1000:1000".to_vec(),
        };
        let e = c.encode();
        assert_eq!(RunConfig::decode(&e).unwrap(), c);
        assert!(RunConfig::decode(&e[..e.len() - 1]).is_err());
        assert!(RunConfig::decode(b"{}").is_err());
    }
}
