//! The guest's file tree: the image (read-only bundle) under an in-memory writable layer,
//! plus synthetic `/dev`.
//!
//! Linux semantics this emulates: one tmpfs-like tree whose initial contents are the
//! image. Nodes are made lazily from the bundle the first time a directory is looked into,
//! so start-up costs nothing per file. A file's data stays in the bundle until the file is
//! first written (copy-up); renames, unlinks and new files only change the in-memory tree.
//! A bundle inode is made into at most one live node, so hardlinks stay hardlinks.
//!
//! This module knows nothing about processes or file descriptors.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::{Rc, Weak};

use crate::bundle::{mode::*, Bundle};
use crate::linux::errno::*;

pub type Node = Rc<Inode>;

/// A point in time (seconds and nanoseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
}

impl Timespec {
    pub fn now() -> Timespec {
        let ns = crate::host::now_realtime_ns();
        Timespec {
            sec: (ns / 1_000_000_000) as i64,
            nsec: (ns % 1_000_000_000) as u32,
        }
    }
}

/// Metadata of a node; what `stat` reports (the size comes from the content).
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// File type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub rdev: u32,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

/// A synthetic device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Null,
    Zero,
    Full,
    Random,
    /// Opening it opens the process's file descriptor `n` again (`/dev/stdin`, `/dev/tty`).
    FdAlias(u32),
}

pub enum FileData {
    /// Still the image's bytes.
    Lower(&'static [u8]),
    /// Written since start.
    Upper(Vec<u8>),
}

impl FileData {
    pub fn bytes(&self) -> &[u8] {
        match self {
            FileData::Lower(b) => b,
            FileData::Upper(v) => v,
        }
    }

    /// The bytes, copied up on first use.
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        if let FileData::Lower(b) = *self {
            *self = FileData::Upper(b.to_vec());
        }
        match self {
            FileData::Upper(v) => v,
            FileData::Lower(_) => unreachable!(),
        }
    }
}

pub struct Dir {
    pub entries: BTreeMap<Vec<u8>, Node>,
    /// The bundle directory not yet read into `entries`.
    pending_lower: Option<u32>,
    parent: Weak<Inode>,
}

pub enum Content {
    Dir(Dir),
    File(FileData),
    Symlink(Vec<u8>),
    Device(Device),
    /// A fifo or socket from the image: metadata only.
    Special,
}

pub struct Inode {
    pub ino: u64,
    pub meta: RefCell<Meta>,
    pub content: RefCell<Content>,
}

impl Inode {
    pub fn file_type(&self) -> u32 {
        self.meta.borrow().mode & S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }
    pub fn size(&self) -> u64 {
        match &*self.content.borrow() {
            Content::File(d) => d.bytes().len() as u64,
            Content::Symlink(t) => t.len() as u64,
            Content::Dir(d) => 4096.max(d.entries.len() as u64 * 32),
            _ => 0,
        }
    }
    pub fn touch_mtime(&self) {
        let now = Timespec::now();
        let mut m = self.meta.borrow_mut();
        m.mtime = now;
        m.ctime = now;
    }
    pub fn touch_ctime(&self) {
        self.meta.borrow_mut().ctime = Timespec::now();
    }
}

/// The longest path and name Linux accepts.
pub const PATH_MAX: usize = 4096;
pub const NAME_MAX: usize = 255;
const MAX_SYMLINKS: u32 = 40;

pub struct Vfs {
    bundle: Bundle<'static>,
    root: Node,
    next_ino: Cell<u64>,
    /// Bundle inode -> the live node made from it.
    from_lower: RefCell<HashMap<u32, Weak<Inode>>>,
}

/// How `resolve` treats the last path component.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Follow a final symlink (`stat`, `open`).
    Yes,
    /// Return a final symlink itself (`lstat`, `O_NOFOLLOW`, `readlink`).
    No,
}

impl Vfs {
    /// A tree over `bundle`, with `/dev` and `/tmp` as a container has them.
    pub fn new(bundle: Bundle<'static>) -> Result<Vfs, crate::bundle::BundleError> {
        let root_ino = bundle.inode(0)?;
        let vfs = Vfs {
            bundle,
            root: Rc::new(Inode {
                ino: 1,
                meta: RefCell::new(meta_from_bundle(&root_ino)),
                content: RefCell::new(Content::Dir(Dir {
                    entries: BTreeMap::new(),
                    pending_lower: Some(0),
                    parent: Weak::new(),
                })),
            }),
            next_ino: Cell::new(bundle.inode_count() as u64 + 1),
            from_lower: RefCell::new(HashMap::new()),
        };
        vfs.from_lower
            .borrow_mut()
            .insert(0, Rc::downgrade(&vfs.root));
        vfs.setup_synthetic();
        Ok(vfs)
    }

    fn setup_synthetic(&self) {
        let root = &self.root;
        // The image's root keeps its metadata; what we add here is not a change the guest made.
        let root_meta = *root.meta.borrow();
        // /dev is always synthetic, whatever the image has there.
        if let Ok(old) = self.lookup(root, b"dev") {
            let _ = old;
            if let Content::Dir(d) = &mut *root.content.borrow_mut() {
                d.entries.remove(&b"dev"[..]);
            }
        }
        let dev = self.new_dir(root, 0o755);
        self.link(root, b"dev", &dev);
        // (name, device, major, minor) with Linux's device numbers. /dev/stdin and friends
        // are symlinks to /proc/self/fd/N on Linux; without /proc they alias the fd.
        for (name, device, major, minor) in [
            (&b"null"[..], Device::Null, 1, 3),
            (b"zero", Device::Zero, 1, 5),
            (b"full", Device::Full, 1, 7),
            (b"random", Device::Random, 1, 8),
            (b"urandom", Device::Random, 1, 9),
            (b"tty", Device::FdAlias(0), 5, 0),
            (b"stdin", Device::FdAlias(0), 136, 0),
            (b"stdout", Device::FdAlias(1), 136, 0),
            (b"stderr", Device::FdAlias(2), 136, 0),
        ] {
            let n = self.new_node(S_IFCHR | 0o666, Content::Device(device));
            n.meta.borrow_mut().rdev = (minor & 0xff) | (major << 8);
            self.link(&dev, name, &n);
        }
        let shm = self.new_dir(&dev, 0o1777);
        self.link(&dev, b"shm", &shm);
        let pts = self.new_dir(&dev, 0o755);
        self.link(&dev, b"pts", &pts);
        // A writable /tmp, also when the image has none.
        match self.lookup(root, b"tmp") {
            Ok(t) if t.is_dir() => {}
            _ => {
                if let Content::Dir(d) = &mut *root.content.borrow_mut() {
                    d.entries.remove(&b"tmp"[..]);
                }
                let tmp = self.new_dir(root, 0o1777);
                self.link(root, b"tmp", &tmp);
            }
        }
        let subdirs = match &*root.content.borrow() {
            Content::Dir(d) => d.entries.values().filter(|n| n.is_dir()).count() as u32,
            _ => 0,
        };
        *root.meta.borrow_mut() = Meta {
            nlink: 2 + subdirs,
            ..root_meta
        };
    }

    pub fn root(&self) -> Node {
        self.root.clone()
    }

    fn alloc_ino(&self) -> u64 {
        let i = self.next_ino.get();
        self.next_ino.set(i + 1);
        i
    }

    /// A new node not yet linked anywhere (nlink 0), owned by root, times now.
    pub fn new_node(&self, mode: u32, content: Content) -> Node {
        let now = Timespec::now();
        Rc::new(Inode {
            ino: self.alloc_ino(),
            meta: RefCell::new(Meta {
                mode,
                uid: 0,
                gid: 0,
                nlink: 0,
                rdev: 0,
                atime: now,
                mtime: now,
                ctime: now,
            }),
            content: RefCell::new(content),
        })
    }

    /// A new empty directory whose parent will be `parent`.
    pub fn new_dir(&self, parent: &Node, perm: u32) -> Node {
        let n = self.new_node(
            S_IFDIR | perm,
            Content::Dir(Dir {
                entries: BTreeMap::new(),
                pending_lower: None,
                parent: Rc::downgrade(parent),
            }),
        );
        n.meta.borrow_mut().nlink = 1; // its "."
        n
    }

    /// Makes the node for bundle inode `ino` (or returns the live one).
    fn node_from_lower(&self, ino: u32, parent: &Node) -> Result<Node, Errno> {
        if let Some(n) = self.from_lower.borrow().get(&ino).and_then(Weak::upgrade) {
            return Ok(n);
        }
        let b = self.bundle.inode(ino).map_err(|_| EIO)?;
        let content = match b.file_type() {
            S_IFDIR => Content::Dir(Dir {
                entries: BTreeMap::new(),
                pending_lower: Some(ino),
                parent: Rc::downgrade(parent),
            }),
            S_IFREG => Content::File(FileData::Lower(self.bundle.file_data(&b).map_err(|_| EIO)?)),
            S_IFLNK => Content::Symlink(self.bundle.symlink_target(&b).map_err(|_| EIO)?.to_vec()),
            _ => Content::Special,
        };
        let n = Rc::new(Inode {
            ino: ino as u64 + 1,
            meta: RefCell::new(meta_from_bundle(&b)),
            content: RefCell::new(content),
        });
        self.from_lower.borrow_mut().insert(ino, Rc::downgrade(&n));
        Ok(n)
    }

    /// Reads a directory's bundle entries into it, once.
    fn load(&self, dir: &Node) -> Result<(), Errno> {
        let pending = match &*dir.content.borrow() {
            Content::Dir(d) => d.pending_lower,
            _ => return Err(ENOTDIR),
        };
        let Some(lower) = pending else { return Ok(()) };
        let b = self.bundle.inode(lower).map_err(|_| EIO)?;
        let mut entries = BTreeMap::new();
        for e in self.bundle.entries(&b) {
            let e = e.map_err(|_| EIO)?;
            entries.insert(e.name.to_vec(), self.node_from_lower(e.ino, dir)?);
        }
        if let Content::Dir(d) = &mut *dir.content.borrow_mut() {
            d.entries = entries;
            d.pending_lower = None;
        }
        Ok(())
    }

    /// The entries of a directory (loaded if needed), in name order.
    pub fn list(&self, dir: &Node) -> Result<Vec<(Vec<u8>, Node)>, Errno> {
        self.load(dir)?;
        match &*dir.content.borrow() {
            Content::Dir(d) => Ok(d
                .entries
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()),
            _ => Err(ENOTDIR),
        }
    }

    /// The parent of a directory (the root's parent is the root).
    pub fn parent(&self, dir: &Node) -> Node {
        match &*dir.content.borrow() {
            Content::Dir(d) => d.parent.upgrade().unwrap_or_else(|| self.root.clone()),
            _ => self.root.clone(),
        }
    }

    /// Looks one name up in a directory. `.` and `..` work.
    pub fn lookup(&self, dir: &Node, name: &[u8]) -> Result<Node, Errno> {
        if !dir.is_dir() {
            return Err(ENOTDIR);
        }
        match name {
            b"" | b"." => return Ok(dir.clone()),
            b".." => return Ok(self.parent(dir)),
            _ => {}
        }
        if name.len() > NAME_MAX {
            return Err(ENAMETOOLONG);
        }
        self.load(dir)?;
        match &*dir.content.borrow() {
            Content::Dir(d) => d.entries.get(name).cloned().ok_or(ENOENT),
            _ => Err(ENOTDIR),
        }
    }

    /// Resolves `path` from `cwd` (absolute paths from the root), following symlinks in
    /// the middle, and at the end if `follow` says so.
    pub fn resolve(&self, cwd: &Node, path: &[u8], follow: Follow) -> Result<Node, Errno> {
        let mut budget = MAX_SYMLINKS;
        self.walk(cwd, path, follow, &mut budget)
    }

    fn walk(
        &self,
        cwd: &Node,
        path: &[u8],
        follow: Follow,
        budget: &mut u32,
    ) -> Result<Node, Errno> {
        if path.is_empty() {
            return Err(ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(ENAMETOOLONG);
        }
        let mut cur = if path[0] == b'/' {
            self.root.clone()
        } else {
            cwd.clone()
        };
        let comps: Vec<&[u8]> = path
            .split(|&c| c == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let trailing_slash = path.ends_with(b"/");
        for (i, comp) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let next = self.lookup(&cur, comp)?;
            let target = if let Content::Symlink(t) = &*next.content.borrow() {
                Some(t.clone())
            } else {
                None
            };
            match target {
                Some(t) if !last || follow == Follow::Yes || trailing_slash => {
                    if *budget == 0 {
                        return Err(ELOOP);
                    }
                    *budget -= 1;
                    cur = self.walk(&cur, &t, Follow::Yes, budget)?;
                }
                _ => cur = next,
            }
        }
        if trailing_slash && !cur.is_dir() {
            return Err(ENOTDIR);
        }
        Ok(cur)
    }

    /// Resolves all but the last component of `path`: the directory it names an entry of,
    /// and the entry's name. A path ending in `/` or `.` or `..` has no such name: EEXIST
    /// for creation is the caller's call; here such names are returned as they are.
    pub fn resolve_parent(&self, cwd: &Node, path: &[u8]) -> Result<(Node, Vec<u8>), Errno> {
        if path.is_empty() {
            return Err(ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(ENAMETOOLONG);
        }
        let trimmed = {
            let mut p = path;
            while p.len() > 1 && p.ends_with(b"/") {
                p = &p[..p.len() - 1];
            }
            p
        };
        let (dir_part, name) = match trimmed.iter().rposition(|&c| c == b'/') {
            Some(i) => (&trimmed[..i + 1], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        let dir = if dir_part.is_empty() {
            cwd.clone()
        } else {
            self.resolve(cwd, dir_part, Follow::Yes)?
        };
        if !dir.is_dir() {
            return Err(ENOTDIR);
        }
        if name.len() > NAME_MAX {
            return Err(ENAMETOOLONG);
        }
        let name = if name.is_empty() {
            b".".to_vec()
        } else {
            name.to_vec()
        };
        Ok((dir, name))
    }

    /// Adds entry `name` -> `node` to `dir` (which must not have it).
    pub fn link(&self, dir: &Node, name: &[u8], node: &Node) {
        if let Content::Dir(d) = &mut *node.content.borrow_mut() {
            d.parent = Rc::downgrade(dir);
            dir.meta.borrow_mut().nlink += 1; // the child's ".."
            node.meta.borrow_mut().nlink += 1;
        } else {
            node.meta.borrow_mut().nlink += 1;
        }
        if let Content::Dir(d) = &mut *dir.content.borrow_mut() {
            d.entries.insert(name.to_vec(), node.clone());
        }
        dir.touch_mtime();
        node.touch_ctime();
    }

    /// Removes entry `name` from `dir`, returning the node it named.
    pub fn unlink_entry(&self, dir: &Node, name: &[u8]) -> Result<Node, Errno> {
        self.load(dir)?;
        let node = match &mut *dir.content.borrow_mut() {
            Content::Dir(d) => d.entries.remove(name).ok_or(ENOENT)?,
            _ => return Err(ENOTDIR),
        };
        if node.is_dir() {
            dir.meta.borrow_mut().nlink -= 1;
            node.meta.borrow_mut().nlink = 0;
        } else {
            let mut m = node.meta.borrow_mut();
            m.nlink = m.nlink.saturating_sub(1);
        }
        dir.touch_mtime();
        node.touch_ctime();
        Ok(node)
    }

    /// `true` if `dir` has no entries.
    pub fn is_empty_dir(&self, dir: &Node) -> Result<bool, Errno> {
        self.load(dir)?;
        match &*dir.content.borrow() {
            Content::Dir(d) => Ok(d.entries.is_empty()),
            _ => Err(ENOTDIR),
        }
    }

    /// `true` if `a` is `b` or one of `b`'s ancestors.
    pub fn is_ancestor(&self, a: &Node, b: &Node) -> bool {
        let mut cur = b.clone();
        loop {
            if Rc::ptr_eq(&cur, a) {
                return true;
            }
            if Rc::ptr_eq(&cur, &self.root) {
                return false;
            }
            cur = self.parent(&cur);
        }
    }

    /// The absolute path of a directory (for `getcwd`).
    pub fn path_of(&self, dir: &Node) -> Vec<u8> {
        let mut parts = Vec::new();
        let mut cur = dir.clone();
        while !Rc::ptr_eq(&cur, &self.root) {
            let parent = self.parent(&cur);
            let name = match &*parent.content.borrow() {
                Content::Dir(d) => d
                    .entries
                    .iter()
                    .find(|(_, n)| Rc::ptr_eq(n, &cur))
                    .map(|(k, _)| k.clone()),
                _ => None,
            };
            match name {
                Some(n) => parts.push(n),
                None => break, // unlinked
            }
            if Rc::ptr_eq(&parent, &cur) {
                break;
            }
            cur = parent;
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        out
    }
}

fn meta_from_bundle(b: &crate::bundle::Inode) -> Meta {
    let t = Timespec {
        sec: b.mtime,
        nsec: b.mtime_nsec,
    };
    Meta {
        mode: b.mode,
        uid: b.uid,
        gid: b.gid,
        nlink: b.nlink,
        rdev: b.rdev,
        atime: t,
        mtime: t,
        ctime: t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{layout, InodeSpec, NodeSpec};

    fn spec(perm: u32, node: NodeSpec) -> InodeSpec {
        InodeSpec {
            perm,
            uid: 0,
            gid: 0,
            mtime: 7,
            mtime_nsec: 0,
            node,
        }
    }

    /// / { bin -> usr/bin, usr/ { bin/ { prog, link (hardlink of prog) } }, etc/ { f } }
    fn vfs() -> Vfs {
        let inodes = vec![
            spec(
                0o755,
                NodeSpec::Dir(vec![
                    (b"bin".to_vec(), 1),
                    (b"usr".to_vec(), 2),
                    (b"etc".to_vec(), 5),
                ]),
            ),
            spec(0o777, NodeSpec::Symlink(b"usr/bin".to_vec())),
            spec(0o755, NodeSpec::Dir(vec![(b"bin".to_vec(), 3)])),
            spec(
                0o755,
                NodeSpec::Dir(vec![(b"prog".to_vec(), 4), (b"link".to_vec(), 4)]),
            ),
            spec(0o755, NodeSpec::File { len: 5 }),
            spec(0o755, NodeSpec::Dir(vec![(b"f".to_vec(), 6)])),
            spec(0o644, NodeSpec::File { len: 3 }),
        ];
        let l = layout(&inodes, b"");
        let mut bytes = l.head.clone();
        bytes.resize(l.total_len as usize, 0);
        for (i, data) in [(4, &b"hello"[..]), (6, b"abc")] {
            let off = l.file_offsets[i].unwrap() as usize;
            bytes[off..off + data.len()].copy_from_slice(data);
        }
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        Vfs::new(Bundle::new(bytes).unwrap()).unwrap()
    }

    fn data(n: &Node) -> Vec<u8> {
        match &*n.content.borrow() {
            Content::File(d) => d.bytes().to_vec(),
            _ => panic!("not a file"),
        }
    }

    #[test]
    fn resolves_symlinks_dots_and_hardlinks() {
        let v = vfs();
        let root = v.root();
        let prog = v.resolve(&root, b"/bin/prog", Follow::Yes).unwrap();
        assert_eq!(data(&prog), b"hello");
        let link = v
            .resolve(&root, b"usr/bin/../bin/./link", Follow::Yes)
            .unwrap();
        assert!(Rc::ptr_eq(&prog, &link), "a hardlink is one node");
        assert_eq!(prog.meta.borrow().nlink, 2);
        let bin = v.resolve(&root, b"/bin", Follow::No).unwrap();
        assert_eq!(bin.file_type(), S_IFLNK);
        assert_eq!(
            v.resolve(&root, b"/../../etc/f", Follow::Yes)
                .unwrap()
                .size(),
            3
        );
        assert_eq!(
            v.resolve(&root, b"/etc/f/", Follow::Yes).err(),
            Some(ENOTDIR)
        );
        assert_eq!(
            v.resolve(&root, b"/nope/f", Follow::Yes).err(),
            Some(ENOENT)
        );
        let usr_bin = v.resolve(&root, b"/bin/", Follow::No).unwrap();
        assert_eq!(v.path_of(&usr_bin), b"/usr/bin");
    }

    #[test]
    fn synthetic_dev_and_tmp() {
        let v = vfs();
        let root = v.root();
        let null = v.resolve(&root, b"/dev/null", Follow::Yes).unwrap();
        assert!(matches!(
            &*null.content.borrow(),
            Content::Device(Device::Null)
        ));
        assert_eq!(null.meta.borrow().rdev, 0x103);
        let tmp = v.resolve(&root, b"/tmp", Follow::Yes).unwrap();
        assert_eq!(tmp.meta.borrow().mode, S_IFDIR | 0o1777);
        assert_eq!(
            root.meta.borrow().mtime.sec,
            7,
            "the image's root keeps its mtime"
        );
    }

    #[test]
    fn copy_up_leaves_the_bundle_and_hardlinks_see_the_write() {
        let v = vfs();
        let root = v.root();
        let prog = v.resolve(&root, b"/usr/bin/prog", Follow::Yes).unwrap();
        if let Content::File(d) = &mut *prog.content.borrow_mut() {
            assert!(matches!(d, FileData::Lower(_)));
            d.bytes_mut().extend_from_slice(b" world");
        }
        let link = v.resolve(&root, b"/usr/bin/link", Follow::Yes).unwrap();
        assert_eq!(data(&link), b"hello world");
    }

    #[test]
    fn unlink_and_link_move_entries() {
        let v = vfs();
        let root = v.root();
        let etc = v.resolve(&root, b"/etc", Follow::Yes).unwrap();
        let tmp = v.resolve(&root, b"/tmp", Follow::Yes).unwrap();
        let f = v.unlink_entry(&etc, b"f").unwrap();
        v.link(&tmp, b"g", &f);
        assert_eq!(v.resolve(&root, b"/etc/f", Follow::Yes).err(), Some(ENOENT));
        assert_eq!(
            data(&v.resolve(&root, b"/tmp/g", Follow::Yes).unwrap()),
            b"abc"
        );
        assert!(v.is_empty_dir(&etc).unwrap());
        let usr = v.resolve(&root, b"/usr", Follow::Yes).unwrap();
        let bin = v.resolve(&root, b"/usr/bin", Follow::Yes).unwrap();
        assert!(v.is_ancestor(&usr, &bin));
        assert!(!v.is_ancestor(&bin, &usr));
    }
}
