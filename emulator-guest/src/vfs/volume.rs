//! Volumes: host directories mounted into the guest's tree, as `docker run -v HOST:GUEST`
//! mounts them.
//!
//! A volume's nodes (`Content::Host`) hold no data and no entry tables: each is the host
//! file it names, reached by its path relative to the volume's directory. Looking a name
//! up asks the host (one `lstat`), listing reads the host directory, and every change
//! (create, write, truncate, rename, unlink, times) is made on the host at once, so the
//! host sees what the guest wrote as soon as the call returns, and the guest sees what
//! the host changed meanwhile. One host file is one node while it is in use (nodes are
//! found again by host inode number), so hard links and open files behave.
//!
//! WASI tells file types, sizes, link counts and times, but no permission bits and no
//! owners. A volume's files belong to the container's user; a directory shows 0755, a
//! file 0755 if it starts like a program (`#!` or an ELF header) and 0644 otherwise.
//! chmod and chown change what the guest sees for the rest of the run, not the host.
//! FIFOs, sockets and devices cannot be made in a volume (EPERM).
//!
//! **Symlinks in a volume stay in the volume**, under every host: a symlink whose target
//! is absolute or leads out of the volume (`..` past its root, counted from the link's
//! directory) is refused with EPERM when the guest makes one, and when it reads or follows
//! one the host made. Relative links within the volume work as on Linux. (Docker would
//! resolve such a link in the container's tree; WASI hosts differ here: wasmtime refuses
//! to read absolute targets, so as not to show the guest host paths, and Node's uvwasi
//! refuses to create escaping ones. rvbox takes the strict side of both, so a module
//! behaves the same under every host, and a volume's links never name host paths.)
//!
//! Shared mappings (`MAP_SHARED`) of a volume file map pages the node keeps (as
//! `FileData` does for the tree's files). What the mappings write reaches the host when the
//! file is next read or synced (`read`, `fsync`, `msync`, `munmap`) and when the run ends;
//! a `write` is passed on to the mapped pages at once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use super::*;
use crate::hostfs::{self, HostFd, HostStat, Kind, OpenHow};
use crate::mem::SharedPage;

#[cfg(test)]
mod symlink_tests {
    use super::stays_in_volume;

    #[test]
    fn symlinks_that_leave_the_volume_are_refused() {
        for (rel, target) in [
            (&b"a"[..], &b"b"[..]),
            (b"d/a", b"../b"),
            (b"d/e/a", b"../../x/./y"),
            (b"a", b"."),
        ] {
            assert_eq!(
                stays_in_volume(rel, target),
                Ok(()),
                "{rel:?} -> {target:?}"
            );
        }
        for (rel, target) in [
            (&b"a"[..], &b"/etc/passwd"[..]),
            (b"a", b".."),
            (b"d/a", b"../../b"),
            (b"e", b"../../../../../.."),
            (b"d/a", b"x/../../../d"),
        ] {
            assert!(
                stays_in_volume(rel, target).is_err(),
                "{rel:?} -> {target:?}"
            );
        }
    }
}

/// Device numbers of volumes: `VOLUME_DEV + i` for the i-th.
pub const VOLUME_DEV: u32 = 0x40;

/// A mounted host directory.
pub struct Volume {
    /// The host directory's descriptor (a WASI preopen).
    pub dir: i32,
    /// The descriptor when we opened it ourselves (natively); preopens stay the host's.
    _owned: Option<HostFd>,
    pub dev: u32,
    pub read_only: bool,
    /// Owner (uid, gid) of files whose owner was not changed in this run.
    owner: (u32, u32),
    /// Host inode -> the live node for it.
    nodes: RefCell<HashMap<u64, Weak<Inode>>>,
    /// Host inode -> permission bits and owner as the guest sees them (guessed once, or
    /// set by chmod/chown/creation in this run).
    attrs: RefCell<HashMap<u64, Attrs>>,
    /// The tree directory the volume is mounted on an entry of.
    parent: Weak<Inode>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Attrs {
    perm: u32,
    uid: u32,
    gid: u32,
}

/// `Ok` if symlink `rel` (a path relative to the volume's root) with `target` points
/// inside the volume, counting components lexically from the link's directory; EPERM if
/// the target is absolute or climbs out (see the module doc).
fn stays_in_volume(rel: &[u8], target: &[u8]) -> Result<(), Errno> {
    if target.starts_with(b"/") {
        return Err(EPERM);
    }
    let parent = rel
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(&b""[..], |i| &rel[..i]);
    let mut depth: i64 = 0;
    let parts = parent
        .split(|&b| b == b'/')
        .chain(target.split(|&b| b == b'/'));
    for c in parts {
        match c {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return Err(EPERM);
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// A node of a volume.
pub struct HostNode {
    pub vol: Rc<Volume>,
    /// The directory and name it was last reached by; `None` for the volume's root.
    at: RefCell<Option<(Node, Vec<u8>)>>,
    size: Cell<u64>,
    /// Pages shared mappings map, by page index.
    pages: RefCell<BTreeMap<u64, SharedPage>>,
}

impl HostNode {
    pub fn size(&self) -> u64 {
        self.size.get()
    }

    /// Its path relative to the volume's directory (`.` for the root).
    pub fn rel_path(&self) -> Vec<u8> {
        match &*self.at.borrow() {
            None => b".".to_vec(),
            Some((dir, name)) => {
                let mut p = match &*dir.content.borrow() {
                    Content::Host(h) if h.at.borrow().is_some() => {
                        let mut p = h.rel_path();
                        p.push(b'/');
                        p
                    }
                    _ => Vec::new(),
                };
                p.extend_from_slice(name);
                p
            }
        }
    }

    /// The path of `name` in this directory, relative to the volume's directory.
    fn child_path(&self, name: &[u8]) -> Vec<u8> {
        let mut p = if self.at.borrow().is_some() {
            let mut p = self.rel_path();
            p.push(b'/');
            p
        } else {
            Vec::new()
        };
        p.extend_from_slice(name);
        p
    }

    /// The tree directory this node was reached from.
    pub(super) fn up(&self) -> Option<Node> {
        match &*self.at.borrow() {
            Some((d, _)) => Some(d.clone()),
            None => self.vol.parent.upgrade(),
        }
    }

    /// Its name, if it is not the root.
    pub(super) fn name(&self) -> Option<Vec<u8>> {
        self.at.borrow().as_ref().map(|(_, n)| n.clone())
    }
}

/// The volume node of `node`, if it is one: (volume, path relative to its directory).
pub fn host_path(node: &Node) -> Option<(Rc<Volume>, Vec<u8>)> {
    match &*node.content.borrow() {
        Content::Host(h) => Some((h.vol.clone(), h.rel_path())),
        _ => None,
    }
}

impl Volume {
    fn type_bits(kind: Kind) -> u32 {
        match kind {
            Kind::Dir => S_IFDIR,
            Kind::File => S_IFREG,
            Kind::Symlink => S_IFLNK,
            // A FIFO or socket of the host: shown as a FIFO it cannot open.
            Kind::Other => S_IFIFO,
        }
    }

    /// The guest's view of the permissions and owner of host file `rel`.
    fn attrs_of(&self, st: &HostStat, rel: &[u8]) -> Attrs {
        if let Some(a) = self.attrs.borrow().get(&st.ino) {
            return *a;
        }
        let perm = match st.kind {
            Kind::Dir => 0o755,
            Kind::Symlink => 0o777,
            Kind::Other => 0o644,
            Kind::File => {
                let mut head = [0u8; 4];
                let looks_runnable = hostfs::open_at(
                    self.dir,
                    rel,
                    OpenHow {
                        read: true,
                        ..Default::default()
                    },
                )
                .and_then(|fd| hostfs::pread(&fd, &mut head, 0))
                .is_ok_and(|n| head[..n].starts_with(b"#!") || head[..n] == *b"\x7fELF");
                if looks_runnable {
                    0o755
                } else {
                    0o644
                }
            }
        };
        let a = Attrs {
            perm,
            uid: self.owner.0,
            gid: self.owner.1,
        };
        self.attrs.borrow_mut().insert(st.ino, a);
        a
    }

    fn meta_of(&self, st: &HostStat, rel: &[u8]) -> Meta {
        let a = self.attrs_of(st, rel);
        Meta {
            mode: Self::type_bits(st.kind) | a.perm,
            uid: a.uid,
            gid: a.gid,
            nlink: st.nlink.min(u32::MAX as u64) as u32,
            rdev: 0,
            atime: st.atime,
            mtime: st.mtime,
            ctime: st.ctime,
        }
    }

    /// The node for host file `st` reached as `at` (`None`: the root), made or found again.
    fn node_for(self: &Rc<Self>, st: &HostStat, at: Option<(Node, Vec<u8>)>) -> Node {
        let rel = match &at {
            None => b".".to_vec(),
            Some((dir, name)) => match &*dir.content.borrow() {
                Content::Host(h) => h.child_path(name),
                _ => name.clone(),
            },
        };
        let meta = self.meta_of(st, &rel);
        let live = self.nodes.borrow().get(&st.ino).and_then(Weak::upgrade);
        if let Some(n) = live {
            // The same host file, perhaps renamed or reached by another link meanwhile.
            if n.file_type() == meta.mode & S_IFMT {
                if let Content::Host(h) = &*n.content.borrow() {
                    if at.is_some() {
                        *h.at.borrow_mut() = at;
                    }
                    h.size.set(st.size);
                }
                *n.meta.borrow_mut() = meta;
                return n;
            }
        }
        let n = Inode::new(
            st.ino,
            self.dev,
            meta,
            Content::Host(HostNode {
                vol: self.clone(),
                at: RefCell::new(at),
                size: Cell::new(st.size),
                pages: RefCell::new(BTreeMap::new()),
            }),
        );
        let mut nodes = self.nodes.borrow_mut();
        if nodes.len() >= 4096 && nodes.len().is_power_of_two() {
            nodes.retain(|_, w| w.strong_count() > 0);
        }
        nodes.insert(st.ino, Rc::downgrade(&n));
        n
    }

    /// Records the guest's view of `node`'s permissions and owner (after chmod, chown or
    /// creation).
    fn keep_attrs(&self, node: &Node) {
        let m = *node.meta.borrow();
        self.attrs.borrow_mut().insert(
            node.ino,
            Attrs {
                perm: m.mode & 0o7777,
                uid: m.uid,
                gid: m.gid,
            },
        );
    }

    fn check_writable(&self) -> Result<(), Errno> {
        if self.read_only {
            Err(EROFS)
        } else {
            Ok(())
        }
    }
}

thread_local! {
    /// Volume files with pages that shared mappings map (written back when the run ends).
    static MAPPED: RefCell<Vec<Weak<Inode>>> = const { RefCell::new(Vec::new()) };
}

fn host_node<R>(node: &Node, f: impl FnOnce(&HostNode) -> R) -> Option<R> {
    match &*node.content.borrow() {
        Content::Host(h) => Some(f(h)),
        _ => None,
    }
}

impl Vfs {
    /// Mounts host directory `dir` (a descriptor) at `guest` (an absolute path), making the
    /// directories above it if needed; what the image had there is hidden. Its files
    /// belong to `owner` (uid, gid).
    pub fn mount_volume(
        &self,
        guest: &[u8],
        dir: i32,
        owned: Option<HostFd>,
        read_only: bool,
        owner: (u32, u32),
    ) -> Result<(), String> {
        let shown = String::from_utf8_lossy(guest).into_owned();
        if !guest.starts_with(b"/") {
            return Err(format!(
                "volume {shown:?}: the path in the container must be absolute"
            ));
        }
        let comps: Vec<&[u8]> = guest
            .split(|&c| c == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect();
        if comps.iter().any(|c| *c == b"..") {
            return Err(format!("volume {shown:?}: the path must not contain '..'"));
        }
        let Some((name, dirs)) = comps.split_last() else {
            return Err("a volume cannot be mounted on / (the image is the root)".into());
        };
        if matches!(comps[0], b"proc" | b"dev" | b"sys") {
            return Err(format!(
                "volume {shown:?}: /{} belongs to the container runtime",
                String::from_utf8_lossy(comps[0])
            ));
        }
        let st = hostfs::stat_at(dir, b".").map_err(|e| {
            format!("volume {shown:?}: the host directory cannot be read (errno {e})")
        })?;
        if st.kind != Kind::Dir {
            return Err(format!(
                "volume {shown:?}: the host side is not a directory"
            ));
        }
        // The directories above it, in the tree (not in another volume).
        let mut cur = self.root();
        for c in dirs {
            if cur.is_host() {
                return Err(format!(
                    "volume {shown:?}: inside another volume (not supported)"
                ));
            }
            cur = match self.lookup(&NoProcess, &cur, c) {
                Ok(n) if n.is_dir() => n,
                Ok(n) if n.file_type() == S_IFLNK => {
                    return Err(format!(
                        "volume {shown:?}: /{} is a symlink in the image",
                        String::from_utf8_lossy(c)
                    ))
                }
                Ok(_) => {
                    return Err(format!(
                        "volume {shown:?}: a file of the image is in the way"
                    ))
                }
                Err(_) => {
                    let d = self.new_dir(&cur, 0o755);
                    self.link(&cur, c, &d).map_err(|e| {
                        format!("volume {shown:?}: cannot make its directory (errno {e})")
                    })?
                }
            };
        }
        if cur.is_host() || cur.is_synthetic() {
            return Err(format!(
                "volume {shown:?}: inside another volume (not supported)"
            ));
        }
        let index = self.volume_mounts.borrow().len() as u32;
        let dev = VOLUME_DEV + index;
        let parent_mount = self.mount_of(cur.dev.get()).id;
        let opts = if read_only {
            "ro,relatime"
        } else {
            "rw,relatime"
        };
        let mount = Mount {
            id: 410 + index,
            parent: parent_mount,
            dev,
            target: normalized(&comps).into(),
            fstype: "wasi",
            source: "volume",
            mnt_opts: opts,
            sb_opts: opts,
            opts,
            magic: 0x5741_5349,
        };
        let vol = Rc::new(Volume {
            dir,
            _owned: owned,
            dev,
            read_only,
            owner,
            nodes: RefCell::new(HashMap::new()),
            attrs: RefCell::new(HashMap::new()),
            parent: Rc::downgrade(&cur),
        });
        let root = vol.node_for(&st, None);
        self.load(&cur)
            .map_err(|e| format!("volume {shown:?}: errno {e}"))?;
        if let Content::Dir(d) = &mut *cur.content.borrow_mut() {
            if d.entries.insert(name.to_vec(), root).is_none() {
                cur.meta.borrow_mut().nlink += 1;
            }
        }
        self.volume_mounts.borrow_mut().push(mount);
        Ok(())
    }

    /// Entry `name` of volume directory `dir`.
    pub(super) fn host_lookup(&self, dir: &Node, name: &[u8]) -> Result<Node, Errno> {
        let (vol, rel) = host_node(dir, |h| (h.vol.clone(), h.child_path(name))).ok_or(EIO)?;
        let st = hostfs::stat_at(vol.dir, &rel)?;
        Ok(vol.node_for(&st, Some((dir.clone(), name.to_vec()))))
    }

    /// The entries of volume directory `dir` as nodes.
    pub(super) fn host_list(&self, dir: &Node) -> Result<Vec<(Vec<u8>, Node)>, Errno> {
        let mut out = Vec::new();
        for e in self.host_dirents(dir)? {
            // An entry removed meanwhile is left out.
            if let Ok(n) = self.host_lookup(dir, &e.0) {
                out.push((e.0, n));
            }
        }
        Ok(out)
    }

    /// The entries of volume directory `dir` as (name, inode, file type bits), sorted by
    /// name, without making nodes (what `getdents` needs).
    pub fn host_dirents(&self, dir: &Node) -> Result<Vec<(Vec<u8>, u64, u32)>, Errno> {
        let (vol, rel) = host_path(dir).ok_or(ENOTDIR)?;
        let mut v: Vec<_> = hostfs::read_dir(vol.dir, &rel)?
            .into_iter()
            .map(|e| (e.name, e.ino, Volume::type_bits(e.kind)))
            .collect();
        v.sort();
        Ok(v)
    }

    pub(super) fn host_is_empty(&self, dir: &Node) -> Result<bool, Errno> {
        let (vol, rel) = host_path(dir).ok_or(ENOTDIR)?;
        Ok(hostfs::read_dir(vol.dir, &rel)?.is_empty())
    }

    /// Makes `node` entry `name` of volume directory `dir`: a hard link of a node of the
    /// same volume, or a new directory, file or symlink made on the host from a node not
    /// linked anywhere yet. Returns the volume's node for it.
    pub(super) fn host_link(&self, dir: &Node, name: &[u8], node: &Node) -> Result<Node, Errno> {
        let (vol, rel) = host_node(dir, |h| (h.vol.clone(), h.child_path(name))).ok_or(EIO)?;
        vol.check_writable()?;
        if let Some((other, from)) = host_path(node) {
            if !Rc::ptr_eq(&other, &vol) {
                return Err(EXDEV);
            }
            hostfs::link_at(vol.dir, &from, &rel)?;
        } else {
            // Only a node made just now (a directory counts its own "."): an existing one
            // of another mount cannot be linked here.
            let fresh = node.meta.borrow().nlink <= u32::from(node.is_dir());
            if !fresh {
                return Err(EXDEV);
            }
            match &mut *node.content.borrow_mut() {
                Content::Dir(_) => hostfs::mkdir_at(vol.dir, &rel)?,
                Content::File(d) => {
                    let fd = hostfs::open_at(
                        vol.dir,
                        &rel,
                        OpenHow {
                            write: true,
                            create_excl: true,
                            ..Default::default()
                        },
                    )?;
                    let bytes = d.bytes();
                    if !bytes.is_empty() {
                        hostfs::pwrite_all(&fd, bytes, 0)?;
                    }
                }
                Content::Symlink(t) => {
                    stays_in_volume(&rel, t)?;
                    hostfs::symlink_at(t, vol.dir, &rel)?
                }
                _ => return Err(EPERM),
            }
        }
        let st = hostfs::stat_at(vol.dir, &rel)?;
        let n = vol.node_for(&st, Some((dir.clone(), name.to_vec())));
        if !node.is_host() {
            // A new file: the mode and owner the guest asked for.
            let m = *node.meta.borrow();
            {
                let mut nm = n.meta.borrow_mut();
                nm.mode = (nm.mode & S_IFMT) | (m.mode & 0o7777);
                nm.uid = m.uid;
                nm.gid = m.gid;
            }
            vol.keep_attrs(&n);
        }
        dir.touch_mtime();
        Ok(n)
    }

    /// Removes entry `name` (a file, or an empty directory) of volume directory `dir`.
    pub(super) fn host_unlink(&self, dir: &Node, name: &[u8]) -> Result<Node, Errno> {
        let n = self.host_lookup(dir, name)?;
        let (vol, rel) = host_path(&n).ok_or(EIO)?;
        vol.check_writable()?;
        hostfs::unlink_at(vol.dir, &rel, n.is_dir())?;
        let is_dir = n.is_dir();
        let left = {
            let mut m = n.meta.borrow_mut();
            m.nlink = if is_dir { 0 } else { m.nlink.saturating_sub(1) };
            m.nlink
        };
        if left == 0 {
            vol.attrs.borrow_mut().remove(&n.ino);
            vol.nodes.borrow_mut().remove(&n.ino);
        }
        dir.touch_mtime();
        Ok(n)
    }

    /// Renames entry `oname` of volume directory `odir` to `nname` of `ndir` (same
    /// volume), replacing what is there as rename(2) does (unless `noreplace`).
    pub fn host_rename(
        &self,
        odir: &Node,
        oname: &[u8],
        ndir: &Node,
        nname: &[u8],
        noreplace: bool,
    ) -> Result<(), Errno> {
        let (vol, from) = host_node(odir, |h| (h.vol.clone(), h.child_path(oname))).ok_or(EXDEV)?;
        let (nvol, to) = host_node(ndir, |h| (h.vol.clone(), h.child_path(nname))).ok_or(EXDEV)?;
        if !Rc::ptr_eq(&vol, &nvol) {
            return Err(EXDEV);
        }
        vol.check_writable()?;
        let node = self.host_lookup(odir, oname)?;
        if noreplace && hostfs::stat_at(vol.dir, &to).is_ok() {
            return Err(EEXIST);
        }
        hostfs::rename_at(vol.dir, &from, &to)?;
        if let Content::Host(h) = &*node.content.borrow() {
            *h.at.borrow_mut() = Some((ndir.clone(), nname.to_vec()));
        }
        odir.touch_mtime();
        ndir.touch_mtime();
        Ok(())
    }

    /// The target of a volume symlink.
    pub fn host_readlink(&self, node: &Node) -> Result<Vec<u8>, Errno> {
        let (vol, rel) = host_path(node).ok_or(EINVAL)?;
        let target = hostfs::readlink_at(vol.dir, &rel)?;
        stays_in_volume(&rel, &target)?;
        Ok(target)
    }

    /// Opens a volume file on the host for reading and/or writing (`truncate`: to zero
    /// length first).
    pub fn host_open(
        &self,
        node: &Node,
        read: bool,
        write: bool,
        truncate: bool,
    ) -> Result<HostFd, Errno> {
        let (vol, rel) = host_path(node).ok_or(EIO)?;
        if write || truncate {
            vol.check_writable()?;
        }
        let fd = hostfs::open_at(
            vol.dir,
            &rel,
            OpenHow {
                read,
                write,
                truncate,
                ..Default::default()
            },
        )?;
        if truncate {
            refresh(node, Some(&fd));
        }
        Ok(fd)
    }

    /// The whole contents of a regular file as they are now (for exec): the image's bytes
    /// in place, a copy of the in-memory layer's, or a volume file's read from the host;
    /// EACCES for anything else.
    pub fn file_bytes(&self, node: &Node) -> Result<FileBytes, Errno> {
        if node.is_host() {
            return Ok(FileBytes::Copy(self.host_read_all(node)?));
        }
        match &mut *node.content.borrow_mut() {
            Content::File(d) => Ok(d.snapshot()),
            _ => Err(EACCES),
        }
    }

    /// The whole contents of a volume file (for exec and private mappings).
    pub fn host_read_all(&self, node: &Node) -> Result<Vec<u8>, Errno> {
        let fd = self.host_open(node, true, false, false)?;
        hostfs::read_all(&fd)
    }

    /// Truncates or extends a volume file to `len` (through `fd` if given).
    pub fn host_truncate(&self, node: &Node, len: u64, fd: Option<&HostFd>) -> Result<(), Errno> {
        let (vol, _) = host_path(node).ok_or(EIO)?;
        vol.check_writable()?;
        match fd {
            Some(fd) => hostfs::ftruncate(fd, len)?,
            None => hostfs::ftruncate(&self.host_open(node, false, true, false)?, len)?,
        }
        refresh(node, fd);
        Ok(())
    }

    /// Sets a volume file's times on the host.
    pub fn host_set_times(&self, node: &Node, times: [Option<Timespec>; 2]) -> Result<(), Errno> {
        let (vol, rel) = host_path(node).ok_or(EIO)?;
        vol.check_writable()?;
        hostfs::utimens_at(vol.dir, &rel, times)?;
        refresh(node, None);
        Ok(())
    }

    /// Keeps the permission bits and owner chmod/chown gave a volume node (EROFS on a
    /// read-only volume).
    pub fn host_keep_attrs(&self, node: &Node) -> Result<(), Errno> {
        if let Some((vol, _)) = host_path(node) {
            vol.check_writable()?;
            vol.keep_attrs(node);
        }
        Ok(())
    }

    /// Records that a volume file was written through `fd`: its size and times.
    pub fn host_written(&self, node: &Node, fd: &HostFd) {
        refresh(node, Some(fd));
    }
}

/// Brings a volume node's metadata up to date from the host (through `fd` if given, as
/// an unlinked file has no path).
pub fn refresh(node: &Node, fd: Option<&HostFd>) {
    let Some((vol, rel)) = host_path(node) else {
        return;
    };
    let st = match fd {
        Some(fd) => hostfs::fstat(fd),
        None => hostfs::stat_at(vol.dir, &rel),
    };
    let Ok(st) = st else { return };
    if st.ino != node.ino {
        return; // the name is another file's now
    }
    let meta = vol.meta_of(&st, &rel);
    *node.meta.borrow_mut() = meta;
    host_node(node, |h| h.size.set(st.size));
}

/// The page with index `i` of volume file `node` for a shared mapping: the one other
/// mappings map, or a new one holding the host file's bytes there.
pub fn shared_page(node: &Node, i: u64) -> Result<SharedPage, Errno> {
    let (vol, rel) = host_path(node).ok_or(EIO)?;
    if let Some(p) = host_node(node, |h| h.pages.borrow().get(&i).cloned()).flatten() {
        return Ok(p);
    }
    let fd = hostfs::open_at(
        vol.dir,
        &rel,
        OpenHow {
            read: true,
            ..Default::default()
        },
    )?;
    let mut buf = vec![0u8; PAGE_SIZE as usize];
    let mut got = 0;
    while got < buf.len() {
        let n = hostfs::pread(&fd, &mut buf[got..], i * PAGE_SIZE + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let page = SharedPage::new(&buf[..got]);
    let first = host_node(node, |h| {
        let mut pages = h.pages.borrow_mut();
        pages.insert(i, page.clone());
        pages.len() == 1
    });
    if first == Some(true) {
        MAPPED.with(|m| m.borrow_mut().push(Rc::downgrade(node)));
    }
    Ok(page)
}

/// Writes what shared mappings of volume file `node` hold back to the host file (up to its
/// end: bytes a mapping wrote past it are not the file's, as on Linux), and forgets the
/// pages nobody maps any more.
pub fn sync_pages(node: &Node) -> Result<(), Errno> {
    host_node(node, |h| {
        h.write_back()?;
        h.pages.borrow_mut().retain(|_, p| p.users() > 1);
        Ok(())
    })
    .unwrap_or(Ok(()))
}

impl HostNode {
    /// Writes the mapped pages back to the host file.
    fn write_back(&self) -> Result<(), Errno> {
        let pages = self.pages.borrow();
        if pages.is_empty() {
            return Ok(());
        }
        let fd = hostfs::open_at(
            self.vol.dir,
            &self.rel_path(),
            OpenHow {
                write: true,
                ..Default::default()
            },
        )?;
        let size = hostfs::fstat(&fd)?.size;
        let mut buf = vec![0u8; PAGE_SIZE as usize];
        for (&i, page) in pages.iter() {
            let at = i * PAGE_SIZE;
            if at >= size {
                continue;
            }
            let n = (size - at).min(PAGE_SIZE) as usize;
            page.read(0, &mut buf[..n]);
            hostfs::pwrite_all(&fd, &buf[..n], at)?;
        }
        Ok(())
    }
}

impl Drop for HostNode {
    /// The last mapping and descriptor of the file are gone (its process ended, however):
    /// what the mappings wrote goes to the host now.
    fn drop(&mut self) {
        let _ = self.write_back();
    }
}

/// After a write of `data` at `at` to volume file `node`: the mapped pages show it.
pub fn pages_written(node: &Node, at: u64, data: &[u8]) {
    host_node(node, |h| {
        for (&i, page) in h.pages.borrow().iter() {
            let (lo, hi) = (i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
            let (s, e) = (at.max(lo), (at + data.len() as u64).min(hi));
            if s < e {
                page.write(
                    (s - lo) as usize,
                    &data[(s - at) as usize..(e - at) as usize],
                );
            }
        }
    });
}

/// After volume file `node` was truncated to `len`: mapped pages past the end read zeros.
pub fn pages_truncated(node: &Node, len: u64) {
    host_node(node, |h| {
        for (&i, page) in h.pages.borrow().iter() {
            let lo = i * PAGE_SIZE;
            page.zero_from(len.saturating_sub(lo).min(PAGE_SIZE) as usize);
        }
    });
}

/// Writes back what shared mappings of volume files hold (when the run ends).
pub fn sync_all() {
    let nodes = MAPPED.with(|m| std::mem::take(&mut *m.borrow_mut()));
    for n in nodes.iter().filter_map(Weak::upgrade) {
        let _ = sync_pages(&n);
    }
}

/// `/a/b` from the components.
fn normalized(comps: &[&[u8]]) -> String {
    let mut s = String::new();
    for c in comps {
        s.push('/');
        s.push_str(&String::from_utf8_lossy(c));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::tests::vfs;

    /// A fresh host directory for one test.
    fn host_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("rvbox-volume-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("f.txt"), "hello").unwrap();
        std::fs::write(d.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("f.txt", d.join("link")).unwrap();
        d
    }

    fn mount(v: &Vfs, host: &std::path::Path, at: &[u8], ro: bool) {
        let fd = hostfs::open_dir(host.to_str().unwrap()).unwrap();
        v.mount_volume(at, fd.raw(), Some(fd), ro, (1000, 100))
            .unwrap();
    }

    #[test]
    fn a_volume_is_the_host_directory() {
        let host = host_dir("rw");
        let v = vfs();
        let root = v.root();
        mount(&v, &host, b"/mnt/data", false);
        let get = |p: &[u8]| v.resolve(&NoProcess, &root, p, Follow::Yes);
        // Lookups, the mode guess, owners, symlinks, paths.
        let f = get(b"/mnt/data/link").unwrap();
        assert_eq!(f.meta.borrow().mode, S_IFREG | 0o644);
        assert_eq!((f.meta.borrow().uid, f.meta.borrow().gid), (1000, 100));
        assert_eq!(f.size(), 5);
        assert_eq!(
            get(b"/mnt/data/run.sh").unwrap().meta.borrow().mode,
            S_IFREG | 0o755
        );
        assert_eq!(v.path_of_node(&f), b"/mnt/data/f.txt");
        assert!(
            Rc::ptr_eq(&f, &get(b"/mnt/data/sub/../f.txt").unwrap()),
            "one node per file"
        );
        assert_eq!(v.path_of(&get(b"/mnt/data/sub/..").unwrap()), b"/mnt/data");
        assert_eq!(v.path_of(&get(b"/mnt/data/..").unwrap()), b"/mnt");
        assert_eq!(host_read(&v, &f), b"hello");
        let names: Vec<_> = v.host_dirents(&get(b"/mnt/data").unwrap()).unwrap();
        let names: Vec<_> = names.iter().map(|e| e.0.as_slice()).collect();
        assert_eq!(names, [&b"f.txt"[..], b"link", b"run.sh", b"sub"]);
        // New entries are made on the host.
        let sub = get(b"/mnt/data/sub").unwrap();
        let d = v.new_dir(&sub, 0o700);
        let d = v.link(&sub, b"new", &d).unwrap();
        assert!(host.join("sub/new").is_dir());
        assert_eq!(d.meta.borrow().mode, S_IFDIR | 0o700, "the mode asked for");
        let file = v.new_node(
            S_IFREG | 0o600,
            Content::File(FileData::upper(b"data".to_vec())),
        );
        v.link(&d, b"g", &file).unwrap();
        assert_eq!(std::fs::read(host.join("sub/new/g")).unwrap(), b"data");
        let l = v.new_node(S_IFLNK | 0o777, Content::Symlink(b"../../f.txt".to_vec()));
        v.link(&d, b"l", &l).unwrap();
        assert_eq!(
            host_read(&v, &get(b"/mnt/data/sub/new/l").unwrap()),
            b"hello"
        );
        // Rename keeps the node, and paths below a renamed directory follow it.
        let g = get(b"/mnt/data/sub/new/g").unwrap();
        v.host_rename(&sub, b"new", &get(b"/mnt/data").unwrap(), b"moved", false)
            .unwrap();
        assert!(host.join("moved/g").is_file() && !host.join("sub/new").exists());
        assert_eq!(v.path_of_node(&g), b"/mnt/data/moved/g");
        assert_eq!(host_read(&v, &g), b"data");
        // Hard links and removal.
        let moved = get(b"/mnt/data/moved").unwrap();
        v.link(&moved, b"h", &g).unwrap();
        assert_eq!(get(b"/mnt/data/moved/g").unwrap().meta.borrow().nlink, 2);
        assert!(!v.is_empty_dir(&moved).unwrap());
        for n in [&b"g"[..], b"h", b"l"] {
            v.unlink_entry(&moved, n).unwrap();
        }
        assert!(v.is_empty_dir(&moved).unwrap());
        v.unlink_entry(&get(b"/mnt/data").unwrap(), b"moved")
            .unwrap();
        assert!(!host.join("moved").exists());
        // The mount point itself stays.
        let mnt = get(b"/mnt").unwrap();
        assert_eq!(v.unlink_entry(&mnt, b"data").err(), Some(EBUSY));
        assert!(get(b"/mnt/data/f.txt").is_ok());
        // Special files cannot be made; nodes of other mounts cannot be linked in.
        let fifo = v.new_node(S_IFIFO | 0o644, Content::Special);
        assert_eq!(v.link(&sub, b"fifo", &fifo).err(), Some(EPERM));
        let etc_f = get(b"/etc/f").unwrap();
        assert_eq!(v.link(&sub, b"x", &etc_f).err(), Some(EXDEV));
        assert_eq!(v.link(&get(b"/tmp").unwrap(), b"x", &f).err(), Some(EXDEV));
        // What the host changes, the guest sees.
        std::fs::write(host.join("f.txt"), "changed on the host").unwrap();
        crate::vfs::host_refresh(&f, None);
        assert_eq!(f.size(), 19);
        std::fs::remove_dir_all(&host).unwrap();
    }

    fn host_read(v: &Vfs, n: &Node) -> Vec<u8> {
        v.host_read_all(n).unwrap()
    }

    #[test]
    fn read_only_volumes_and_bad_mounts() {
        let host = host_dir("ro");
        let v = vfs();
        let root = v.root();
        mount(&v, &host, b"/ro", true);
        let dir = v.resolve(&NoProcess, &root, b"/ro", Follow::Yes).unwrap();
        let f = v
            .resolve(&NoProcess, &root, b"/ro/f.txt", Follow::Yes)
            .unwrap();
        let n = v.new_dir(&dir, 0o755);
        assert_eq!(v.link(&dir, b"d", &n).err(), Some(EROFS));
        assert_eq!(v.unlink_entry(&dir, b"f.txt").err(), Some(EROFS));
        assert_eq!(v.host_open(&f, true, true, false).err(), Some(EROFS));
        assert_eq!(v.host_truncate(&f, 0, None).err(), Some(EROFS));
        assert_eq!(host_read(&v, &f), b"hello");
        assert!(v.mount_of(f.dev.get()).read_only());
        assert_eq!(v.mount_of(f.dev.get()).target, "/ro");
        let fd = || hostfs::open_dir(host.to_str().unwrap()).unwrap();
        let refuse = |at: &[u8], why: &str| {
            let fd = fd();
            let e = v
                .mount_volume(at, fd.raw(), Some(fd), false, (0, 0))
                .unwrap_err();
            assert!(e.contains(why), "{e}");
        };
        refuse(b"/", "cannot be mounted on /");
        refuse(b"data", "must be absolute");
        refuse(b"/proc/x", "/proc belongs to the container runtime");
        refuse(b"/ro/inner", "inside another volume");
        refuse(b"/a/../b", "must not contain '..'");
        std::fs::remove_dir_all(&host).unwrap();
    }
}
