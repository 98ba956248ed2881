//! The guest's file tree: the image (read-only bundle) under an in-memory writable layer,
//! plus `/dev`, and mount points for synthetic file systems (`/proc`, `/sys`) whose nodes a
//! `Provider` makes on demand.
//!
//! Linux semantics this emulates: one tmpfs-like tree whose initial contents are the
//! image. Nodes are made lazily from the bundle the first time a directory is looked into,
//! so start-up costs nothing per file. A file's data stays in the bundle until the file is
//! first written (copy-up); renames, unlinks and new files only change the in-memory tree.
//! A bundle inode is made into at most one live node, so hardlinks stay hardlinks.
//!
//! Synthetic nodes (`Content::Synthetic`) sit in the tree like others (they have a parent
//! and a name, so `..` and paths work), but are in no directory's entry table: looking into
//! a synthetic directory, listing it or following a synthetic link asks the `Provider` the
//! caller passes (the process's view for `/proc`). Nodes carry the device of their mount,
//! so `st_dev` tells mounts apart and links across them are refused (`EXDEV`).
//!
//! This module knows nothing about processes or file descriptors.

use std::any::Any;
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::{Rc, Weak};

use crate::bundle::{mode::*, Bundle};
use crate::linux::errno::*;
use crate::mem::{SharedPage, PAGE_SIZE};

mod volume;
pub use volume::{host_path, refresh as host_refresh, HostNode, Volume, VOLUME_DEV};
/// Shared mappings of volume files.
pub mod host_pages {
    pub use super::volume::{pages_truncated, pages_written, shared_page, sync_all, sync_pages};
}

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

/// What a device node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Null,
    Zero,
    /// Reads zeros; writes fail with `ENOSPC`.
    Full,
    /// `random` and `urandom`: the host's randomness.
    Random,
    /// The terminal (`/dev/tty`, `/dev/pts/0`): the host's terminal on stdin and stdout.
    Tty,
}

/// A regular file's bytes: the image's, until first written, then a copy of its own; plus
/// the pages that shared mappings of it (`MAP_SHARED`) map, which hold the newest bytes of
/// their range. Every read and write goes through here, so the two stay one file: a read
/// first takes in what the mappings wrote (`flush`), a write is passed on to the mapped
/// pages (`update`).
pub struct FileData {
    store: Store,
    /// The image's bytes not yet checked against their checksum: bundle inode, checksum
    /// (`verify`, at the first use of the bytes).
    unverified: Option<(u32, crate::bundle::Inode)>,
    /// Mapped pages by page index.
    pages: BTreeMap<u64, SharedPage>,
    /// Pages of the memory budget its own bytes take (`reserve`).
    charged: u64,
}

/// The largest file the in-memory layer holds: a module's memory is 4 GiB, and a file's
/// bytes are one buffer that must be able to grow (a copy of 1 GiB needs room for both).
pub const MAX_MEMORY_FILE: u64 = if cfg!(target_arch = "wasm32") {
    1 << 30
} else {
    1 << 32
};

enum Store {
    /// Still the image's bytes.
    Lower(&'static [u8]),
    /// Written since start.
    Upper(Vec<u8>),
}

impl FileData {
    /// The image's bytes.
    pub fn lower(b: &'static [u8]) -> FileData {
        FileData {
            store: Store::Lower(b),
            unverified: None,
            pages: BTreeMap::new(),
            charged: 0,
        }
    }

    /// A file of its own holding `v`.
    pub fn upper(v: Vec<u8>) -> FileData {
        // Bytes handed in are counted as they are.
        let charged = (v.len() as u64).div_ceil(PAGE_SIZE);
        crate::mem::budget::charge_file(charged);
        FileData {
            store: Store::Upper(v),
            unverified: None,
            pages: BTreeMap::new(),
            charged,
        }
    }

    /// Makes sure the memory budget holds `new_len` bytes of the file's own (the image's
    /// bytes cost nothing until copied): ENOSPC when they do not fit (the files of the
    /// in-memory layer may fill half the memory limit, as a tmpfs); EFBIG past
    /// `MAX_MEMORY_FILE`. Call before an `update` that grows the file.
    pub fn reserve(&mut self, new_len: u64) -> Result<(), Errno> {
        if new_len > MAX_MEMORY_FILE {
            return Err(EFBIG);
        }
        let need = new_len.max(self.len()).div_ceil(PAGE_SIZE);
        if need > self.charged {
            if !crate::mem::budget::try_charge_file(need - self.charged) {
                return Err(ENOSPC);
            }
            self.charged = need;
        }
        Ok(())
    }

    /// Makes the budget hold what the file's own bytes take now (gives back what a
    /// shrink freed; counts a copy-up nobody reserved for).
    fn settle(&mut self) {
        let have = match &self.store {
            Store::Lower(_) => 0,
            Store::Upper(v) => (v.len() as u64).div_ceil(PAGE_SIZE),
        };
        if have < self.charged {
            crate::mem::budget::release_file(self.charged - have);
        } else {
            crate::mem::budget::charge_file(have - self.charged);
        }
        self.charged = have;
    }

    /// `true` while the bytes are still the image's.
    pub fn is_lower(&self) -> bool {
        matches!(self.store, Store::Lower(_))
    }

    pub fn len(&self) -> u64 {
        match &self.store {
            Store::Lower(b) => b.len() as u64,
            Store::Upper(v) => v.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes in what shared mappings wrote, and forgets pages nobody maps any more.
    fn flush(&mut self) {
        if self.pages.is_empty() {
            return;
        }
        let mut pages = std::mem::take(&mut self.pages);
        let v = self.copy_up();
        let len = v.len() as u64;
        for (&i, page) in &pages {
            let at = i * PAGE_SIZE;
            if at < len {
                let n = (len - at).min(PAGE_SIZE) as usize;
                page.read(0, &mut v[at as usize..at as usize + n]);
            }
        }
        pages.retain(|_, page| page.users() > 1);
        self.pages = pages;
    }

    /// The image's bytes of bundle inode `ino`, checked against its checksum when first
    /// used.
    pub fn lower_checked(b: &'static [u8], ino: u32, inode: crate::bundle::Inode) -> FileData {
        let mut d = FileData::lower(b);
        d.unverified = Some((ino, inode));
        d
    }

    /// Checks the image's bytes the first time they are used. A mismatch means the module
    /// file is damaged: nothing read from it can be trusted, so the run ends (status 125)
    /// with a line saying so, rather than giving a program wrong bytes.
    fn verify(&mut self) {
        let Some((ino, inode)) = self.unverified.take() else {
            return;
        };
        if let Store::Lower(b) = self.store {
            if let Err(e) = crate::bundle::Bundle::verify_file(ino, &inode, b) {
                let _ = crate::host::write(2, format!("rvbox: damaged module: {e}\n").as_bytes());
                crate::host::exit(crate::boot::STATUS_RVBOX_FAILED);
            }
        }
    }

    fn copy_up(&mut self) -> &mut Vec<u8> {
        self.verify();
        if let Store::Lower(b) = self.store {
            self.store = Store::Upper(b.to_vec());
        }
        match &mut self.store {
            Store::Upper(v) => v,
            Store::Lower(_) => unreachable!(),
        }
    }

    /// The bytes as they are now.
    pub fn bytes(&mut self) -> &[u8] {
        self.verify();
        self.flush();
        match &self.store {
            Store::Lower(b) => b,
            Store::Upper(v) => v,
        }
    }

    /// The bytes as they are now: the image's own bytes borrowed in place (they never
    /// change), or a copy of what has been written.
    pub fn snapshot(&mut self) -> FileBytes {
        self.verify();
        self.flush();
        match &self.store {
            Store::Lower(b) => FileBytes::Image(b),
            Store::Upper(v) => FileBytes::Copy(v.clone()),
        }
    }

    /// Changes the bytes (copied up on first use) with `f`; mapped pages see the change
    /// (their bytes past the end of the file read as zeros).
    pub fn update<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        self.flush();
        let v = self.copy_up();
        let r = f(v);
        let v = match &self.store {
            Store::Upper(v) => v,
            Store::Lower(_) => unreachable!(),
        };
        let len = v.len() as u64;
        for (&i, page) in &self.pages {
            let at = i * PAGE_SIZE;
            let n = len.saturating_sub(at).min(PAGE_SIZE) as usize;
            if n > 0 {
                page.write(0, &v[at as usize..at as usize + n]);
            }
            page.zero_from(n);
        }
        self.settle();
        r
    }

    /// The page with index `i` of the file, for a shared mapping: the one other mappings
    /// map if there is one, else a new one holding the file's bytes there.
    pub fn shared_page(&mut self, i: u64) -> SharedPage {
        self.verify();
        self.flush();
        if let Some(p) = self.pages.get(&i) {
            return p.clone();
        }
        let b = match &self.store {
            Store::Lower(b) => b,
            Store::Upper(v) => v.as_slice(),
        };
        let at = (i * PAGE_SIZE).min(b.len() as u64) as usize;
        let end = (at + PAGE_SIZE as usize).min(b.len());
        let page = SharedPage::new(&b[at..end]);
        self.pages.insert(i, page.clone());
        page
    }
}

impl Drop for FileData {
    fn drop(&mut self) {
        crate::mem::budget::release_file(self.charged);
    }
}

/// A file's bytes at one moment (see `FileData::snapshot`).
pub enum FileBytes {
    Image(&'static [u8]),
    Copy(Vec<u8>),
}

impl FileBytes {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            FileBytes::Image(b) => b,
            FileBytes::Copy(v) => v,
        }
    }

    /// The image's bytes, if these are they (and so can back memory pages in place).
    pub fn image(&self) -> Option<&'static [u8]> {
        match self {
            FileBytes::Image(b) => Some(b),
            FileBytes::Copy(_) => None,
        }
    }
}

pub struct Dir {
    pub entries: BTreeMap<Vec<u8>, Node>,
    /// The bundle directory not yet read into `entries`.
    pending_lower: Option<u32>,
    parent: Weak<Inode>,
}

/// A node a `Provider` made (or the mount point it makes them under): where it is in the
/// tree, and what the provider knows it as.
pub struct Synthetic {
    up: Up,
    pub name: Vec<u8>,
    /// The provider's own description of the node.
    pub key: Rc<dyn Any>,
    /// `st_size` (Linux shows 0 for proc files, 64 for `/proc/PID/fd` links).
    pub size: u64,
    /// A file's contents as taken when it was opened (what a Linux `seq_file` does).
    pub snapshot: Option<Vec<u8>>,
}

enum Up {
    /// Made on demand: in no entry table, so it keeps its parent alive without a cycle.
    Node(Node),
    /// A mount point, linked in its parent's entries as a directory is.
    Mount(Weak<Inode>),
}

impl Synthetic {
    /// Reads the snapshot at `at`.
    pub fn read_at(&self, at: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let data = self.snapshot.as_deref().ok_or(EISDIR)?;
        let start = at.min(data.len() as u64) as usize;
        let k = buf.len().min(data.len() - start);
        buf[..k].copy_from_slice(&data[start..start + k]);
        Ok(k)
    }
}

pub enum Content {
    Dir(Dir),
    File(FileData),
    Symlink(Vec<u8>),
    Device(Device),
    /// A fifo or socket from the image: metadata only.
    Special,
    Synthetic(Synthetic),
    /// A file or directory of a volume (a host directory mounted in the tree).
    Host(HostNode),
}

pub struct Inode {
    pub ino: u64,
    /// `st_dev`: the mount the node is on (a new node takes its directory's when first
    /// linked).
    pub dev: Cell<u32>,
    pub meta: RefCell<Meta>,
    pub content: RefCell<Content>,
    /// For a non-directory: the directory and name it was last linked or looked up under,
    /// which is what `/proc/PID/fd` and `maps` show as its path (directories know their
    /// parent instead).
    seen_at: RefCell<(Weak<Inode>, Vec<u8>)>,
}

impl Inode {
    fn new(ino: u64, dev: u32, meta: Meta, content: Content) -> Node {
        Rc::new(Inode {
            ino,
            dev: Cell::new(dev),
            meta: RefCell::new(meta),
            content: RefCell::new(content),
            seen_at: RefCell::new((Weak::new(), Vec::new())),
        })
    }

    /// Records `name` in `dir` as where an unlinked node lives, for the path
    /// `/proc/PID/fd` shows (an `O_TMPFILE` file is `DIR/#INO (deleted)` on Linux).
    pub fn set_seen_at(&self, dir: &Node, name: &[u8]) {
        *self.seen_at.borrow_mut() = (Rc::downgrade(dir), name.to_vec());
    }

    /// A node made by a provider under `parent`: owned by root, times now, one link (two
    /// for a directory). The provider adjusts the metadata as it needs.
    pub fn synthetic(
        parent: &Node,
        name: &[u8],
        mode: u32,
        ino: u64,
        dev: u32,
        key: Rc<dyn Any>,
    ) -> Node {
        let now = Timespec::now();
        let meta = Meta {
            mode,
            uid: 0,
            gid: 0,
            nlink: if mode & S_IFMT == S_IFDIR { 2 } else { 1 },
            rdev: 0,
            atime: now,
            mtime: now,
            ctime: now,
        };
        Inode::new(
            ino,
            dev,
            meta,
            Content::Synthetic(Synthetic {
                up: Up::Node(parent.clone()),
                name: name.to_vec(),
                key,
                size: 0,
                snapshot: None,
            }),
        )
    }

    /// A copy of the synthetic node `node` holding `data`, for one open file.
    pub fn with_snapshot(node: &Node, data: Vec<u8>) -> Result<Node, Errno> {
        let content = match &*node.content.borrow() {
            Content::Synthetic(s) => Content::Synthetic(Synthetic {
                up: match &s.up {
                    Up::Node(n) => Up::Node(n.clone()),
                    Up::Mount(w) => Up::Mount(w.clone()),
                },
                name: s.name.clone(),
                key: s.key.clone(),
                size: s.size,
                snapshot: Some(data),
            }),
            _ => return Err(EINVAL),
        };
        Ok(Inode::new(
            node.ino,
            node.dev.get(),
            *node.meta.borrow(),
            content,
        ))
    }

    pub fn file_type(&self) -> u32 {
        self.meta.borrow().mode & S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }
    pub fn is_synthetic(&self) -> bool {
        matches!(&*self.content.borrow(), Content::Synthetic(_))
    }
    /// `true` for a node of a volume.
    pub fn is_host(&self) -> bool {
        matches!(&*self.content.borrow(), Content::Host(_))
    }
    /// The provider's key of a synthetic node.
    pub fn synthetic_key(&self) -> Option<Rc<dyn Any>> {
        match &*self.content.borrow() {
            Content::Synthetic(s) => Some(s.key.clone()),
            _ => None,
        }
    }
    pub fn size(&self) -> u64 {
        match &*self.content.borrow() {
            Content::File(d) => d.len(),
            Content::Symlink(t) => t.len() as u64,
            Content::Dir(d) => 4096.max(d.entries.len() as u64 * 32),
            Content::Synthetic(s) => s.size,
            Content::Host(h) => h.size(),
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

/// Makes the nodes of synthetic file systems for the one who walks the tree (the process
/// whose view `/proc/self` is).
pub trait Provider {
    /// The entry `name` (not `.` or `..`) of the synthetic directory `dir`.
    fn lookup(&self, dir: &Node, name: &[u8]) -> Result<Node, Errno>;
    /// The entries of the synthetic directory `dir`, in the order `getdents` gives them.
    fn list(&self, dir: &Node) -> Result<Vec<(Vec<u8>, Node)>, Errno>;
    /// Where the synthetic link `link` leads.
    fn follow(&self, link: &Node) -> Result<Jump, Errno>;
    /// Brings the metadata of a mount point up to date when it is looked up (its link
    /// count follows its subdirectories).
    fn refresh(&self, _mount: &Node) {}
}

/// Where following a synthetic link leads.
pub enum Jump {
    /// A path, resolved as a symlink's target is (from the link's directory).
    Path(Vec<u8>),
    /// A node itself, whatever its name is now (Linux's "magic links": `/proc/PID/fd/N`,
    /// `cwd`, `exe`).
    Node(Node),
}

/// The provider for walks done for no process (start-up): synthetic directories look empty.
pub struct NoProcess;

impl Provider for NoProcess {
    fn lookup(&self, _dir: &Node, _name: &[u8]) -> Result<Node, Errno> {
        Err(ENOENT)
    }
    fn list(&self, _dir: &Node) -> Result<Vec<(Vec<u8>, Node)>, Errno> {
        Ok(Vec::new())
    }
    fn follow(&self, _link: &Node) -> Result<Jump, Errno> {
        Err(ENOENT)
    }
}

/// Device numbers (`st_dev`, minor of major 0) of the mounts.
pub mod dev {
    pub const ROOT: u32 = 0x2a;
    pub const PROC: u32 = 0x2b;
    pub const DEV: u32 = 0x2c;
    pub const PTS: u32 = 0x2d;
    pub const SHM: u32 = 0x2e;
    pub const SYS: u32 = 0x2f;
    pub const CGROUP: u32 = 0x30;
}

/// One mount of the guest's tree, as `/proc/PID/mountinfo` shows it. The layout is Docker's:
/// an overlay root (the image under the in-memory layer), `/proc`, a tmpfs `/dev` with
/// `devpts` and `shm`, and a read-only `/sys` with the cgroup2 tree.
#[derive(Debug, Clone)]
pub struct Mount {
    pub id: u32,
    pub parent: u32,
    pub dev: u32,
    pub target: Cow<'static, str>,
    pub fstype: &'static str,
    pub source: &'static str,
    /// Per-mount options (mountinfo field 6).
    pub mnt_opts: &'static str,
    /// Superblock options (mountinfo's last field).
    pub sb_opts: &'static str,
    /// Options as `/proc/mounts` shows them.
    pub opts: &'static str,
    /// `statfs` `f_type`.
    pub magic: u64,
}

impl Mount {
    pub fn read_only(&self) -> bool {
        self.mnt_opts.starts_with("ro")
    }
}

pub const MOUNTS: &[Mount] = &[
    Mount {
        id: 400,
        parent: 399,
        dev: dev::ROOT,
        target: Cow::Borrowed("/"),
        fstype: "overlay",
        source: "overlay",
        mnt_opts: "rw,relatime",
        sb_opts: "rw",
        opts: "rw,relatime",
        magic: 0x794c_7630,
    },
    Mount {
        id: 401,
        parent: 400,
        dev: dev::PROC,
        target: Cow::Borrowed("/proc"),
        fstype: "proc",
        source: "proc",
        mnt_opts: "rw,nosuid,nodev,noexec,relatime",
        sb_opts: "rw",
        opts: "rw,nosuid,nodev,noexec,relatime",
        magic: 0x9fa0,
    },
    Mount {
        id: 402,
        parent: 400,
        dev: dev::DEV,
        target: Cow::Borrowed("/dev"),
        fstype: "tmpfs",
        source: "tmpfs",
        mnt_opts: "rw,nosuid",
        sb_opts: "rw,mode=755,inode64",
        opts: "rw,nosuid,mode=755,inode64",
        magic: 0x0102_1994,
    },
    Mount {
        id: 403,
        parent: 402,
        dev: dev::PTS,
        target: Cow::Borrowed("/dev/pts"),
        fstype: "devpts",
        source: "devpts",
        mnt_opts: "rw,nosuid,noexec,relatime",
        sb_opts: "rw,gid=5,mode=620,ptmxmode=666",
        opts: "rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666",
        magic: 0x1cd1,
    },
    Mount {
        id: 404,
        parent: 400,
        dev: dev::SYS,
        target: Cow::Borrowed("/sys"),
        fstype: "sysfs",
        source: "sysfs",
        mnt_opts: "ro,nosuid,nodev,noexec,relatime",
        sb_opts: "ro",
        opts: "ro,nosuid,nodev,noexec,relatime",
        magic: 0x6265_6572,
    },
    Mount {
        id: 405,
        parent: 404,
        dev: dev::CGROUP,
        target: Cow::Borrowed("/sys/fs/cgroup"),
        fstype: "cgroup2",
        source: "cgroup",
        mnt_opts: "ro,nosuid,nodev,noexec,relatime",
        sb_opts: "rw,nsdelegate",
        opts: "ro,nosuid,nodev,noexec,relatime,nsdelegate",
        magic: 0x6367_7270,
    },
    Mount {
        id: 406,
        parent: 402,
        dev: dev::SHM,
        target: Cow::Borrowed("/dev/shm"),
        fstype: "tmpfs",
        source: "shm",
        mnt_opts: "rw,nosuid,nodev,noexec,relatime",
        sb_opts: "rw,inode64",
        opts: "rw,nosuid,nodev,noexec,relatime,inode64",
        magic: 0x0102_1994,
    },
];

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
    /// `/dev/pts/0`, when the host gave a terminal.
    terminal: Option<Node>,
    /// The volumes' mounts, in the order they were mounted (after [`MOUNTS`]).
    volume_mounts: RefCell<Vec<Mount>>,
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
    /// A tree over `bundle`, with `/dev` and `/tmp` as a container has them; `/dev/pts/0`
    /// if `terminal` (the host's stdin, stdout or stderr is a terminal).
    pub fn new(bundle: Bundle<'static>, terminal: bool) -> Result<Vfs, crate::bundle::BundleError> {
        let root_ino = bundle.inode(0)?;
        let mut vfs = Vfs {
            bundle,
            root: Inode::new(
                1,
                dev::ROOT,
                meta_from_bundle(&root_ino),
                Content::Dir(Dir {
                    entries: BTreeMap::new(),
                    pending_lower: Some(0),
                    parent: Weak::new(),
                }),
            ),
            next_ino: Cell::new(bundle.inode_count() as u64 + 1),
            from_lower: RefCell::new(HashMap::new()),
            terminal: None,
            volume_mounts: RefCell::new(Vec::new()),
        };
        vfs.from_lower
            .borrow_mut()
            .insert(0, Rc::downgrade(&vfs.root));
        vfs.terminal = vfs.setup_synthetic(terminal);
        Ok(vfs)
    }

    /// The mount whose nodes have device `dev` (the root's for an unknown one).
    pub fn mount_of(&self, dev: u32) -> Mount {
        if dev >= VOLUME_DEV {
            if let Some(m) = self.volume_mounts.borrow().iter().find(|m| m.dev == dev) {
                return m.clone();
            }
        }
        MOUNTS
            .iter()
            .find(|m| m.dev == dev)
            .unwrap_or(&MOUNTS[0])
            .clone()
    }

    /// Every mount, as `/proc/PID/mountinfo` lists them: the container's, then volumes.
    pub fn mounts(&self) -> Vec<Mount> {
        let volumes = self.volume_mounts.borrow();
        MOUNTS.iter().chain(volumes.iter()).cloned().collect()
    }

    /// The bytes and inodes of the image (the root's read-only lower layer).
    pub fn image_size(&self) -> (u64, u64) {
        (
            self.bundle.bytes().len() as u64,
            self.bundle.inode_count() as u64,
        )
    }

    /// Makes `/dev` and `/tmp`; returns `/dev/pts/0` if there is a terminal.
    fn setup_synthetic(&self, terminal: bool) -> Option<Node> {
        let root = &self.root;
        // The image's root keeps its metadata; what we add here is not a change the guest made.
        let root_meta = *root.meta.borrow();
        // /dev is always ours, whatever the image has there.
        self.drop_entry(b"dev");
        let dev = self.new_dir(root, 0o755);
        dev.dev.set(dev::DEV);
        self.link_new(root, b"dev", &dev);
        // (name, device, major, minor) with Linux's device numbers.
        for (name, device, major, minor) in [
            (&b"null"[..], Device::Null, 1, 3),
            (b"zero", Device::Zero, 1, 5),
            (b"full", Device::Full, 1, 7),
            (b"random", Device::Random, 1, 8),
            (b"urandom", Device::Random, 1, 9),
            (b"tty", Device::Tty, 5, 0),
        ] {
            let n = self.new_node(S_IFCHR | 0o666, Content::Device(device));
            n.meta.borrow_mut().rdev = (minor & 0xff) | (major << 8);
            self.link_new(&dev, name, &n);
        }
        // As on Linux, the standard streams are links into the process's descriptors.
        for (name, target) in [
            (&b"stdin"[..], &b"/proc/self/fd/0"[..]),
            (b"stdout", b"/proc/self/fd/1"),
            (b"stderr", b"/proc/self/fd/2"),
            (b"fd", b"/proc/self/fd"),
        ] {
            let n = self.new_node(S_IFLNK | 0o777, Content::Symlink(target.to_vec()));
            self.link_new(&dev, name, &n);
        }
        let shm = self.new_dir(&dev, 0o1777);
        shm.dev.set(dev::SHM);
        self.link_new(&dev, b"shm", &shm);
        let pts = self.new_dir(&dev, 0o755);
        pts.dev.set(dev::PTS);
        self.link_new(&dev, b"pts", &pts);
        let tty = terminal.then(|| {
            // The host's terminal as the container's: root:tty, crw--w----, 136:0.
            let n = self.new_node(S_IFCHR | 0o620, Content::Device(Device::Tty));
            {
                let mut m = n.meta.borrow_mut();
                m.rdev = 136 << 8;
                m.gid = 5;
            }
            self.link_new(&pts, b"0", &n);
            n
        });
        // A writable /tmp, also when the image has none.
        match self.lookup(&NoProcess, root, b"tmp") {
            Ok(t) if t.is_dir() => {}
            _ => {
                self.drop_entry(b"tmp");
                let tmp = self.new_dir(root, 0o1777);
                self.link_new(root, b"tmp", &tmp);
            }
        }
        *root.meta.borrow_mut() = root_meta;
        self.count_root_links();
        tty
    }

    /// Removes the root's entry `name` (from the image), if any.
    fn drop_entry(&self, name: &[u8]) {
        let _ = self.load(&self.root);
        if let Content::Dir(d) = &mut *self.root.content.borrow_mut() {
            d.entries.remove(name);
        }
    }

    /// Links a node made at start-up (the directory cannot refuse it).
    fn link_new(&self, dir: &Node, name: &[u8], node: &Node) {
        self.link(dir, name, node)
            .expect("start-up links go into real directories");
    }

    /// The root's link count: 2 and one per subdirectory, as its entries are now.
    fn count_root_links(&self) {
        let subdirs = match &*self.root.content.borrow() {
            Content::Dir(d) => d.entries.values().filter(|n| n.is_dir()).count() as u32,
            _ => 0,
        };
        self.root.meta.borrow_mut().nlink = 2 + subdirs;
    }

    /// Mounts a synthetic file system at the root's entry `name` (`proc`, `sys`), replacing
    /// what the image has there. Returns the mount point, whose key the provider knows.
    pub fn mount(&self, name: &[u8], perm: u32, dev: u32, key: Rc<dyn Any>) -> Node {
        self.drop_entry(name);
        let node = Inode::synthetic(&self.root, name, S_IFDIR | perm, 1, dev, key);
        if let Content::Synthetic(s) = &mut *node.content.borrow_mut() {
            s.up = Up::Mount(Rc::downgrade(&self.root));
        }
        if let Content::Dir(d) = &mut *self.root.content.borrow_mut() {
            d.entries.insert(name.to_vec(), node.clone());
        }
        self.count_root_links();
        node
    }

    pub fn root(&self) -> Node {
        self.root.clone()
    }

    /// `/dev/pts/0`, the terminal, if the host gave one.
    pub fn terminal(&self) -> Option<Node> {
        self.terminal.clone()
    }

    fn alloc_ino(&self) -> u64 {
        let i = self.next_ino.get();
        self.next_ino.set(i + 1);
        i
    }

    /// A new node not yet linked anywhere (nlink 0), owned by root, times now.
    pub fn new_node(&self, mode: u32, content: Content) -> Node {
        let now = Timespec::now();
        Inode::new(
            self.alloc_ino(),
            dev::ROOT,
            Meta {
                mode,
                uid: 0,
                gid: 0,
                nlink: 0,
                rdev: 0,
                atime: now,
                mtime: now,
                ctime: now,
            },
            content,
        )
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
        n.dev.set(parent.dev.get());
        n.meta.borrow_mut().nlink = 1; // its "."
        n
    }

    /// Makes the node for bundle inode `ino`, entry `name` of `parent` (or returns the live
    /// one).
    fn node_from_lower(&self, ino: u32, parent: &Node, name: &[u8]) -> Result<Node, Errno> {
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
            S_IFREG => Content::File(FileData::lower_checked(
                self.bundle.file_data(&b).map_err(|_| EIO)?,
                ino,
                b,
            )),
            S_IFLNK => Content::Symlink(self.bundle.symlink_target(&b).map_err(|_| EIO)?.to_vec()),
            _ => Content::Special,
        };
        let n = Inode::new(ino as u64 + 1, dev::ROOT, meta_from_bundle(&b), content);
        if !n.is_dir() {
            *n.seen_at.borrow_mut() = (Rc::downgrade(parent), name.to_vec());
        }
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
            entries.insert(e.name.to_vec(), self.node_from_lower(e.ino, dir, e.name)?);
        }
        if let Content::Dir(d) = &mut *dir.content.borrow_mut() {
            d.entries = entries;
            d.pending_lower = None;
        }
        Ok(())
    }

    /// The entries of a directory (loaded if needed), in name order; a synthetic
    /// directory's from `ctx`.
    pub fn list(&self, ctx: &dyn Provider, dir: &Node) -> Result<Vec<(Vec<u8>, Node)>, Errno> {
        if dir.is_synthetic() {
            if !dir.is_dir() {
                return Err(ENOTDIR);
            }
            return ctx.list(dir);
        }
        if dir.is_host() {
            return self.host_list(dir);
        }
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
            Content::Synthetic(s) => match &s.up {
                Up::Node(n) => n.clone(),
                Up::Mount(w) => w.upgrade().unwrap_or_else(|| self.root.clone()),
            },
            Content::Host(h) => h.up().unwrap_or_else(|| self.root.clone()),
            _ => self.root.clone(),
        }
    }

    /// Looks one name up in a directory (a synthetic one through `ctx`). `.` and `..` work.
    pub fn lookup(&self, ctx: &dyn Provider, dir: &Node, name: &[u8]) -> Result<Node, Errno> {
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
        if dir.is_synthetic() {
            return ctx.lookup(dir, name);
        }
        if dir.is_host() {
            return self.host_lookup(dir, name);
        }
        self.load(dir)?;
        let node = match &*dir.content.borrow() {
            Content::Dir(d) => d.entries.get(name).cloned().ok_or(ENOENT)?,
            _ => return Err(ENOTDIR),
        };
        if node.is_synthetic() {
            ctx.refresh(&node);
        } else if !node.is_dir() {
            let mut seen = node.seen_at.borrow_mut();
            if seen.1 != name || !std::ptr::eq(seen.0.as_ptr(), Rc::as_ptr(dir)) {
                *seen = (Rc::downgrade(dir), name.to_vec());
            }
        }
        Ok(node)
    }

    /// Resolves `path` from `cwd` (absolute paths from the root), following symlinks in
    /// the middle, and at the end if `follow` says so. Synthetic directories and links are
    /// `ctx`'s.
    pub fn resolve(
        &self,
        ctx: &dyn Provider,
        cwd: &Node,
        path: &[u8],
        follow: Follow,
    ) -> Result<Node, Errno> {
        let mut budget = MAX_SYMLINKS;
        self.walk(ctx, cwd, path, follow, &mut budget)
    }

    fn walk(
        &self,
        ctx: &dyn Provider,
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
            let next = self.lookup(ctx, &cur, comp)?;
            if next.file_type() != S_IFLNK || (last && follow == Follow::No && !trailing_slash) {
                cur = next;
                continue;
            }
            if *budget == 0 {
                return Err(ELOOP);
            }
            *budget -= 1;
            let target = if next.is_host() {
                Jump::Path(self.host_readlink(&next)?)
            } else {
                match &*next.content.borrow() {
                    Content::Symlink(t) => Jump::Path(t.clone()),
                    Content::Synthetic(_) => ctx.follow(&next)?,
                    _ => return Err(EIO),
                }
            };
            cur = match target {
                Jump::Path(t) => self.walk(ctx, &cur, &t, Follow::Yes, budget)?,
                Jump::Node(n) => n,
            };
        }
        if trailing_slash && !cur.is_dir() {
            return Err(ENOTDIR);
        }
        Ok(cur)
    }

    /// Resolves all but the last component of `path`: the directory it names an entry of,
    /// and the entry's name. A path ending in `/` or `.` or `..` has no such name: EEXIST
    /// for creation is the caller's call; here such names are returned as they are.
    pub fn resolve_parent(
        &self,
        ctx: &dyn Provider,
        cwd: &Node,
        path: &[u8],
    ) -> Result<(Node, Vec<u8>), Errno> {
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
            self.resolve(ctx, cwd, dir_part, Follow::Yes)?
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

    /// Why entries cannot be added to (`create`) or removed from a synthetic directory:
    /// a read-only mount refuses both with EROFS; procfs has no such entries (ENOENT) and
    /// removes none (EPERM).
    fn refusal(&self, dir: &Node, create: bool) -> Errno {
        if self.mount_of(dir.dev.get()).read_only() {
            EROFS
        } else if create {
            ENOENT
        } else {
            EPERM
        }
    }

    /// Adds entry `name` -> `node` to `dir` (which must not have it). A node linked for
    /// the first time joins `dir`'s mount. Returns the node the entry names: `node`, or in
    /// a volume the volume's node for the file made on the host from `node`.
    pub fn link(&self, dir: &Node, name: &[u8], node: &Node) -> Result<Node, Errno> {
        if dir.is_synthetic() {
            return Err(self.refusal(dir, true));
        }
        if dir.is_host() {
            return self.host_link(dir, name, node);
        }
        if node.is_host() {
            return Err(EXDEV);
        }
        if node.meta.borrow().nlink == 0 {
            node.dev.set(dir.dev.get());
        }
        if let Content::Dir(d) = &mut *node.content.borrow_mut() {
            d.parent = Rc::downgrade(dir);
            dir.meta.borrow_mut().nlink += 1; // the child's ".."
            node.meta.borrow_mut().nlink += 1;
        } else {
            node.meta.borrow_mut().nlink += 1;
            *node.seen_at.borrow_mut() = (Rc::downgrade(dir), name.to_vec());
        }
        if let Content::Dir(d) = &mut *dir.content.borrow_mut() {
            d.entries.insert(name.to_vec(), node.clone());
        }
        dir.touch_mtime();
        node.touch_ctime();
        Ok(node.clone())
    }

    /// Removes entry `name` from `dir`, returning the node it named.
    pub fn unlink_entry(&self, dir: &Node, name: &[u8]) -> Result<Node, Errno> {
        if dir.is_synthetic() {
            return Err(self.refusal(dir, false));
        }
        if dir.is_host() {
            return self.host_unlink(dir, name);
        }
        self.load(dir)?;
        let node = match &mut *dir.content.borrow_mut() {
            Content::Dir(d) => {
                // A volume's mount point stays (Linux: EBUSY).
                if d.entries.get(name).is_some_and(|n| n.is_host()) {
                    return Err(EBUSY);
                }
                d.entries.remove(name).ok_or(ENOENT)?
            }
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

    /// `true` if `dir` has no entries. A synthetic directory is never removable.
    pub fn is_empty_dir(&self, dir: &Node) -> Result<bool, Errno> {
        if dir.is_synthetic() {
            return Err(self.refusal(dir, false));
        }
        if dir.is_host() {
            return self.host_is_empty(dir);
        }
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
            let up = self.parent(&cur);
            if Rc::ptr_eq(&up, &cur) {
                return false;
            }
            cur = up;
        }
    }

    /// The name `node` has in `parent`.
    fn name_in(node: &Node, parent: &Node) -> Option<Vec<u8>> {
        match &*node.content.borrow() {
            Content::Synthetic(s) => return Some(s.name.clone()),
            Content::Host(h) => {
                if let Some(n) = h.name() {
                    return Some(n);
                }
            }
            _ => {}
        }
        match &*parent.content.borrow() {
            Content::Dir(d) => d
                .entries
                .iter()
                .find(|(_, n)| Rc::ptr_eq(n, node))
                .map(|(k, _)| k.clone()),
            _ => None,
        }
    }

    /// The absolute path of a directory (for `getcwd`) or of a synthetic node.
    pub fn path_of(&self, dir: &Node) -> Vec<u8> {
        let mut parts = Vec::new();
        let mut cur = dir.clone();
        while !Rc::ptr_eq(&cur, &self.root) {
            let parent = self.parent(&cur);
            match Self::name_in(&cur, &parent) {
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

    /// The path of any node, as Linux shows an open file's (`/proc/PID/fd`, `maps`,
    /// `exe`): a file's is where it was last linked or looked up, with " (deleted)" once it
    /// has no links left.
    pub fn path_of_node(&self, node: &Node) -> Vec<u8> {
        if node.is_dir() || node.is_synthetic() || node.is_host() {
            return self.path_of(node);
        }
        let (dir, name) = node.seen_at.borrow().clone();
        let mut p = match dir.upgrade() {
            Some(d) => self.path_of(&d),
            None => Vec::new(),
        };
        if !p.ends_with(b"/") {
            p.push(b'/');
        }
        p.extend_from_slice(&name);
        if node.meta.borrow().nlink == 0 {
            p.extend_from_slice(b" (deleted)");
        }
        p
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
pub(crate) mod tests {
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
    pub(crate) fn vfs() -> Vfs {
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
            spec(
                0o755,
                NodeSpec::File {
                    len: 5,
                    sum: crate::bundle::checksum(b"hello"),
                },
            ),
            spec(0o755, NodeSpec::Dir(vec![(b"f".to_vec(), 6)])),
            spec(
                0o644,
                NodeSpec::File {
                    len: 3,
                    sum: crate::bundle::checksum(b"abc"),
                },
            ),
        ];
        let l = layout(&inodes, b"");
        let mut bytes = l.head.clone();
        bytes.resize(l.total_len as usize, 0);
        for (i, data) in [(4, &b"hello"[..]), (6, b"abc")] {
            let off = l.file_offsets[i].unwrap() as usize;
            bytes[off..off + data.len()].copy_from_slice(data);
        }
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        Vfs::new(Bundle::new(bytes).unwrap(), false).unwrap()
    }

    fn data(n: &Node) -> Vec<u8> {
        match &mut *n.content.borrow_mut() {
            Content::File(d) => d.bytes().to_vec(),
            _ => panic!("not a file"),
        }
    }

    #[test]
    fn resolves_symlinks_dots_and_hardlinks() {
        let v = vfs();
        let root = v.root();
        let prog = v
            .resolve(&NoProcess, &root, b"/bin/prog", Follow::Yes)
            .unwrap();
        assert_eq!(data(&prog), b"hello");
        let link = v
            .resolve(&NoProcess, &root, b"usr/bin/../bin/./link", Follow::Yes)
            .unwrap();
        assert!(Rc::ptr_eq(&prog, &link), "a hardlink is one node");
        assert_eq!(prog.meta.borrow().nlink, 2);
        let bin = v.resolve(&NoProcess, &root, b"/bin", Follow::No).unwrap();
        assert_eq!(bin.file_type(), S_IFLNK);
        assert_eq!(
            v.resolve(&NoProcess, &root, b"/../../etc/f", Follow::Yes)
                .unwrap()
                .size(),
            3
        );
        assert_eq!(
            v.resolve(&NoProcess, &root, b"/etc/f/", Follow::Yes).err(),
            Some(ENOTDIR)
        );
        assert_eq!(
            v.resolve(&NoProcess, &root, b"/nope/f", Follow::Yes).err(),
            Some(ENOENT)
        );
        let usr_bin = v.resolve(&NoProcess, &root, b"/bin/", Follow::No).unwrap();
        assert_eq!(v.path_of(&usr_bin), b"/usr/bin");
    }

    #[test]
    fn synthetic_dev_and_tmp() {
        let v = vfs();
        let root = v.root();
        let null = v
            .resolve(&NoProcess, &root, b"/dev/null", Follow::Yes)
            .unwrap();
        assert!(matches!(
            &*null.content.borrow(),
            Content::Device(Device::Null)
        ));
        assert_eq!(null.meta.borrow().rdev, 0x103);
        let tmp = v.resolve(&NoProcess, &root, b"/tmp", Follow::Yes).unwrap();
        assert_eq!(tmp.meta.borrow().mode, S_IFDIR | 0o1777);
        assert_eq!(
            root.meta.borrow().mtime.sec,
            7,
            "the image's root keeps its mtime"
        );
    }

    #[test]
    fn shared_pages_and_file_bytes_stay_one_file() {
        let mut d = FileData::upper(b"0123456789".to_vec());
        let page = d.shared_page(0);
        // What a mapping writes, a read sees (only up to the end of the file).
        page.write(2, b"ab");
        page.write(20, b"past the end");
        assert_eq!(d.bytes(), b"01ab456789");
        // What a write writes, the mapping sees; the page past the end reads zeros.
        d.update(|v| v[0] = b'X');
        let mut b = [0u8; 4];
        page.read(0, &mut b);
        assert_eq!(&b, b"X1ab");
        page.read(20, &mut b);
        assert_eq!(b, [0; 4]);
        // Two mappings of the same page share it; a file that grows shows its new bytes.
        assert_eq!(d.shared_page(0).users(), page.users());
        d.update(|v| v.resize(PAGE_SIZE as usize + 3, b'y'));
        let second = d.shared_page(1);
        second.read(0, &mut b);
        assert_eq!(&b, b"yyy\0");
        // Nobody maps them any more: the file forgets them, keeping their bytes.
        drop((page, second));
        assert_eq!(&d.bytes()[..4], b"X1ab");
        assert!(d.pages.is_empty());
    }

    #[test]
    fn file_bytes_count_against_the_memory_budget() {
        use crate::mem::budget;
        budget::set_limit(64 * PAGE_SIZE, budget::Source::Host);
        let before = budget::used();
        let mut d = FileData::upper(Vec::new());
        // Files may fill half the limit.
        assert_eq!(d.reserve(32 * PAGE_SIZE), Ok(()));
        d.update(|v| v.resize(32 * PAGE_SIZE as usize, 1));
        assert_eq!(budget::used() - before, 32 * PAGE_SIZE);
        assert_eq!(budget::files(), 32 * PAGE_SIZE);
        assert_eq!(d.reserve(32 * PAGE_SIZE + 1), Err(ENOSPC));
        // Shrinking gives back; dropping gives back all.
        d.update(|v| v.truncate(PAGE_SIZE as usize));
        assert_eq!(budget::used() - before, PAGE_SIZE);
        assert_eq!(d.reserve(MAX_MEMORY_FILE + 1), Err(EFBIG));
        drop(d);
        assert_eq!(budget::used(), before);
        budget::set_limit(budget::INITIAL_LIMIT, budget::Source::Default);
    }

    #[test]
    fn copy_up_leaves_the_bundle_and_hardlinks_see_the_write() {
        let v = vfs();
        let root = v.root();
        let prog = v
            .resolve(&NoProcess, &root, b"/usr/bin/prog", Follow::Yes)
            .unwrap();
        if let Content::File(d) = &mut *prog.content.borrow_mut() {
            assert!(d.is_lower());
            d.update(|v| v.extend_from_slice(b" world"));
        }
        let link = v
            .resolve(&NoProcess, &root, b"/usr/bin/link", Follow::Yes)
            .unwrap();
        assert_eq!(data(&link), b"hello world");
    }

    #[test]
    fn unlink_and_link_move_entries() {
        let v = vfs();
        let root = v.root();
        let etc = v.resolve(&NoProcess, &root, b"/etc", Follow::Yes).unwrap();
        let tmp = v.resolve(&NoProcess, &root, b"/tmp", Follow::Yes).unwrap();
        let f = v.unlink_entry(&etc, b"f").unwrap();
        v.link(&tmp, b"g", &f).unwrap();
        assert_eq!(
            v.resolve(&NoProcess, &root, b"/etc/f", Follow::Yes).err(),
            Some(ENOENT)
        );
        assert_eq!(
            data(
                &v.resolve(&NoProcess, &root, b"/tmp/g", Follow::Yes)
                    .unwrap()
            ),
            b"abc"
        );
        assert!(v.is_empty_dir(&etc).unwrap());
        let usr = v.resolve(&NoProcess, &root, b"/usr", Follow::Yes).unwrap();
        let bin = v
            .resolve(&NoProcess, &root, b"/usr/bin", Follow::Yes)
            .unwrap();
        assert!(v.is_ancestor(&usr, &bin));
        assert!(!v.is_ancestor(&bin, &usr));
    }

    /// A provider with one synthetic directory `d` holding a file `f` and a magic link
    /// `l` to `/etc/f`.
    struct Toy<'a>(&'a Vfs);

    impl Provider for Toy<'_> {
        fn lookup(&self, dir: &Node, name: &[u8]) -> Result<Node, Errno> {
            let mode = match name {
                b"d" => S_IFDIR | 0o555,
                b"f" => S_IFREG | 0o444,
                b"l" => S_IFLNK | 0o777,
                b"up" => S_IFLNK | 0o777,
                _ => return Err(ENOENT),
            };
            Ok(Inode::synthetic(
                dir,
                name,
                mode,
                100 + name[0] as u64,
                dir.dev.get(),
                Rc::new(()),
            ))
        }
        fn list(&self, dir: &Node) -> Result<Vec<(Vec<u8>, Node)>, Errno> {
            ["d", "f", "l"]
                .iter()
                .map(|n| Ok((n.as_bytes().to_vec(), self.lookup(dir, n.as_bytes())?)))
                .collect()
        }
        fn follow(&self, link: &Node) -> Result<Jump, Errno> {
            match &*link.content.borrow() {
                Content::Synthetic(s) if s.name == b"up" => Ok(Jump::Path(b"../etc".to_vec())),
                _ => Ok(Jump::Node(self.0.resolve(
                    &NoProcess,
                    &self.0.root(),
                    b"/etc/f",
                    Follow::Yes,
                )?)),
            }
        }
    }

    #[test]
    fn synthetic_trees_resolve_through_the_provider() {
        let v = vfs();
        let root = v.root();
        let m = v.mount(b"syn", 0o555, dev::PROC, Rc::new(()));
        let toy = Toy(&v);
        assert_eq!(
            root.meta.borrow().nlink,
            2 + 5,
            "usr, etc, dev, tmp and syn"
        );
        // Without the provider the tree is empty.
        assert_eq!(
            v.resolve(&NoProcess, &root, b"/syn/d", Follow::Yes).err(),
            Some(ENOENT)
        );
        let d = v.resolve(&toy, &root, b"/syn/d/d/d", Follow::Yes).unwrap();
        assert_eq!(v.path_of(&d), b"/syn/d/d/d");
        assert_eq!(d.dev.get(), dev::PROC);
        let up = v.resolve(&toy, &d, b"../..", Follow::Yes).unwrap();
        assert_eq!(v.path_of(&up), b"/syn/d");
        assert!(Rc::ptr_eq(
            &v.resolve(&toy, &d, b"../../..", Follow::Yes).unwrap(),
            &m
        ));
        // A magic link jumps to the node itself, in the middle of a path too.
        let f = v
            .resolve(&NoProcess, &root, b"/etc/f", Follow::Yes)
            .unwrap();
        let via = v.resolve(&toy, &root, b"/syn/d/l", Follow::Yes).unwrap();
        assert!(Rc::ptr_eq(&via, &f));
        let l = v.resolve(&toy, &root, b"/syn/d/l", Follow::No).unwrap();
        assert_eq!(l.file_type(), S_IFLNK);
        assert_eq!(
            v.resolve(&toy, &root, b"/syn/l/x", Follow::Yes).err(),
            Some(ENOTDIR)
        );
        // A path target is walked from the link's directory.
        let etc = v.resolve(&toy, &root, b"/syn/d/up/f", Follow::Yes);
        assert_eq!(etc.err(), Some(ENOENT), "/syn/etc does not exist");
        let etc = v.resolve(&toy, &root, b"/syn/up", Follow::Yes).unwrap();
        assert_eq!(v.path_of(&etc), b"/etc");
        assert_eq!(v.list(&toy, &m).unwrap().len(), 3);
        // Nothing is created in or removed from it.
        let n = v.new_node(S_IFREG | 0o644, Content::File(FileData::upper(Vec::new())));
        assert_eq!(v.link(&d, b"new", &n).err(), Some(ENOENT));
        assert_eq!(v.unlink_entry(&d, b"f").err(), Some(EPERM));
        let ro = v.mount(b"ro", 0o555, dev::SYS, Rc::new(()));
        assert_eq!(v.link(&ro, b"new", &n).err(), Some(EROFS));
        assert_eq!(n.meta.borrow().nlink, 0);
    }

    #[test]
    fn nodes_join_their_mount_and_know_their_path() {
        let v = vfs();
        let root = v.root();
        let shm = v
            .resolve(&NoProcess, &root, b"/dev/shm", Follow::Yes)
            .unwrap();
        assert_eq!(shm.dev.get(), dev::SHM);
        let n = v.new_node(S_IFREG | 0o644, Content::File(FileData::upper(Vec::new())));
        v.link(&shm, b"seg", &n).unwrap();
        assert_eq!(n.dev.get(), dev::SHM);
        assert_eq!(v.path_of_node(&n), b"/dev/shm/seg");
        // A file of the image is named as it was last reached.
        let prog = v
            .resolve(&NoProcess, &root, b"/bin/link", Follow::Yes)
            .unwrap();
        assert_eq!(v.path_of_node(&prog), b"/usr/bin/link");
        v.resolve(&NoProcess, &root, b"/usr/bin/prog", Follow::Yes)
            .unwrap();
        assert_eq!(v.path_of_node(&prog), b"/usr/bin/prog");
        let etc = v.resolve(&NoProcess, &root, b"/etc", Follow::Yes).unwrap();
        let f = v.unlink_entry(&etc, b"f").unwrap();
        assert_eq!(v.path_of_node(&f), b"/etc/f (deleted)");
        let null = v
            .resolve(&NoProcess, &root, b"/dev/null", Follow::Yes)
            .unwrap();
        assert_eq!(
            (null.dev.get(), v.path_of_node(&null)),
            (dev::DEV, b"/dev/null".to_vec())
        );
        assert_eq!(v.mount_of(dev::SHM).target, "/dev/shm");
        assert!(v.mount_of(dev::SYS).read_only() && !v.mount_of(dev::ROOT).read_only());
    }
}
