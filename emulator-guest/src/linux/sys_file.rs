//! File system calls: open, read/write, stat, directories, links, metadata, ioctl.

use std::rc::Rc;

use super::abi::{self, Stat};
use super::errno::*;
use super::fd::*;
use super::signal::SIGPIPE;
use super::syscalls::SysResult;
use super::Process;
use crate::bundle::mode::*;
use crate::vfs::{Content, Device, FileData, Follow, Node, Timespec, PATH_MAX};

pub const AT_FDCWD: i32 = -100;
/// Device numbers of Linux's pseudo file systems, for `fstat` of objects outside the tree.
const PIPEFS_DEV: u64 = 0xd;
const SOCKFS_DEV: u64 = 0x8;
const ANON_INODE_DEV: u64 = 0xf;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_EMPTY_PATH: u64 = 0x1000;

/// Largest single read or write we do at once.
const MAX_IO: usize = 0x7fff_f000;

impl Process {
    /// Reads a path argument.
    pub(super) fn path_arg(&mut self, addr: u64) -> Result<Vec<u8>, Errno> {
        match self.mem.read_cstr(addr, PATH_MAX) {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(ENAMETOOLONG),
            Err(_) => Err(EFAULT),
        }
    }

    /// The directory `dirfd` names for the `*at` calls.
    fn dir_of(&self, dirfd: i32) -> Result<Node, Errno> {
        if dirfd == AT_FDCWD {
            return Ok(self.cwd());
        }
        let f = self.fds.get(dirfd)?;
        match f.node() {
            Some(n) if n.is_dir() => Ok(n.clone()),
            _ => Err(ENOTDIR),
        }
    }

    /// Resolves `(dirfd, path)`; with `AT_EMPTY_PATH` an empty path means `dirfd` itself.
    fn node_at(
        &mut self,
        dirfd: i32,
        path_addr: u64,
        follow: Follow,
        flags: u64,
    ) -> Result<Node, Errno> {
        let path = self.path_arg(path_addr)?;
        if path.is_empty() {
            if flags & AT_EMPTY_PATH != 0 {
                if dirfd == AT_FDCWD {
                    return Ok(self.cwd());
                }
                return self.fds.get(dirfd)?.node().cloned().ok_or(EBADF);
            }
            return Err(ENOENT);
        }
        let base = self.dir_of_path(dirfd, &path)?;
        self.resolve(&base, &path, follow)
    }

    /// The base for a relative `path` (the root for an absolute one, unused).
    fn dir_of_path(&self, dirfd: i32, path: &[u8]) -> Result<Node, Errno> {
        if path.starts_with(b"/") {
            Ok(self.vfs.root())
        } else {
            self.dir_of(dirfd)
        }
    }

    fn parent_at(&mut self, dirfd: i32, path_addr: u64) -> Result<(Node, Vec<u8>), Errno> {
        let path = self.path_arg(path_addr)?;
        let base = self.dir_of_path(dirfd, &path)?;
        self.resolve_parent(&base, &path)
    }

    pub(super) fn stat_of(&self, file: &OpenFile) -> Stat {
        let anon = |dev: u64, ino: u64, mode: u32, uid: u32, gid: u32, t: Timespec| Stat {
            dev,
            ino,
            mode,
            nlink: 1,
            uid,
            gid,
            blksize: 4096,
            atime: t,
            mtime: t,
            ctime: t,
            ..Stat::default()
        };
        match &file.kind {
            FileKind::Node(n) => {
                if let Some(host) = &file.host {
                    crate::vfs::host_refresh(n, Some(host));
                }
                stat_node(n)
            }
            FileKind::Pipe(end) => match &end.pipe.node {
                Some(n) => stat_node(n),
                None => {
                    let p = &end.pipe;
                    anon(PIPEFS_DEV, p.ino, S_IFIFO | 0o600, p.uid, p.gid, p.ctime)
                }
            },
            // Linux's anonymous inode: no file type bits.
            FileKind::EventFd(e) => anon(ANON_INODE_DEV, e.ino, 0o600, 0, 0, Timespec::default()),
            FileKind::TimerFd(t) => anon(ANON_INODE_DEV, t.ino, 0o600, 0, 0, Timespec::default()),
            FileKind::Epoll(e) => anon(ANON_INODE_DEV, e.ino, 0o600, 0, 0, Timespec::default()),
            FileKind::Socket(s) => Stat {
                // Sockets report no size; blksize is a page, as for sockfs.
                ..anon(
                    SOCKFS_DEV,
                    s.core.ino,
                    S_IFSOCK | 0o777,
                    self.creds.euid,
                    self.creds.egid,
                    Timespec::default(),
                )
            },
            kind => {
                let fd = match kind {
                    FileKind::HostStdin => 0,
                    FileKind::HostStdout => 1,
                    _ => 2,
                };
                let tty = super::tty::is_terminal(fd);
                if let Some(t) = self.vfs.terminal().filter(|_| tty) {
                    return stat_node(&t);
                }
                Stat {
                    dev: 0x15,
                    ino: 3 + fd as u64,
                    mode: if tty {
                        S_IFCHR | 0o620
                    } else {
                        S_IFIFO | 0o600
                    },
                    nlink: 1,
                    rdev: if tty { 0x8800 } else { 0 },
                    blksize: 4096,
                    ..Stat::default()
                }
            }
        }
    }

    /// Raises `SIGPIPE` at the caller after a write to a pipe or socket nobody reads:
    /// with the default action it ends the process (quietly, as Linux).
    pub(super) fn raise_sigpipe(&mut self) {
        // Synchronous: queued to this thread, delivered before it returns to the program.
        self.pending.push(super::kernel::PendingSignal {
            sig: SIGPIPE,
            source: super::kernel::SigSource::User {
                pid: self.pid,
                uid: self.creds.uid,
            },
            shared: false,
        });
    }

    /// [`raise_sigpipe`](Self::raise_sigpipe) for a host stream the host closed, which
    /// ends pid 1 too (`SigSource::HostPipe`).
    pub(super) fn raise_host_sigpipe(&mut self) {
        self.pending.push(super::kernel::PendingSignal {
            sig: SIGPIPE,
            source: super::kernel::SigSource::HostPipe {
                pid: self.pid,
                uid: self.creds.uid,
            },
            shared: false,
        });
    }

    /// Writes `data` to the host stream `fd`; a closed pipe raises SIGPIPE as on Linux.
    fn host_write(&mut self, fd: u32, data: &[u8]) -> SysResult {
        match crate::host::write(fd, data) {
            Ok(n) => Ok(n as u64),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.raise_host_sigpipe();
                Err(EPIPE)
            }
            Err(_) => Err(EIO),
        }
    }

    /// Reads into `buf` from `file` at `pos` (or the file position if `None`).
    fn file_read(
        &mut self,
        file: &OpenFile,
        buf: &mut [u8],
        pos: Option<u64>,
    ) -> Result<usize, Errno> {
        if !file.readable() {
            return Err(EBADF);
        }
        match &file.kind {
            FileKind::HostStdin => {
                if pos.is_some() {
                    return Err(ESPIPE);
                }
                self.read_host_stdin(buf, file.nonblocking())
            }
            FileKind::HostStdout | FileKind::HostStderr => Err(EBADF),
            FileKind::Epoll(_) => Err(EINVAL),
            FileKind::Pipe(end) => {
                if pos.is_some() {
                    return Err(ESPIPE);
                }
                end.read(buf, file.nonblocking())
            }
            FileKind::EventFd(e) => read_counter(buf, || e.read(file.nonblocking())),
            FileKind::TimerFd(t) => read_counter(buf, || t.read(file.nonblocking())),
            FileKind::Socket(s) => {
                if pos.is_some() {
                    return Err(ESPIPE);
                }
                let o = super::unix::RecvOpts {
                    nonblock: file.nonblocking(),
                    ..Default::default()
                };
                s.recv(buf, o).map(|r| r.copied)
            }
            FileKind::Node(n) => {
                let at = pos.unwrap_or(file.pos.get());
                if let Some(host) = &file.host {
                    // What shared mappings wrote is the file's first.
                    crate::vfs::host_pages::sync_pages(n)?;
                    let k = crate::hostfs::pread(host, buf, at)?;
                    if pos.is_none() {
                        file.pos.set(at + k as u64);
                    }
                    return Ok(k);
                }
                let k = match &mut *n.content.borrow_mut() {
                    Content::File(d) => {
                        let bytes = d.bytes();
                        let start = (at.min(bytes.len() as u64)) as usize;
                        let k = buf.len().min(bytes.len() - start);
                        buf[..k].copy_from_slice(&bytes[start..start + k]);
                        k
                    }
                    Content::Dir(_) => return Err(EISDIR),
                    Content::Device(Device::Null) => 0,
                    Content::Device(Device::Zero | Device::Full) => {
                        buf.fill(0);
                        buf.len()
                    }
                    Content::Device(Device::Random) => {
                        crate::host::random(buf);
                        buf.len()
                    }
                    Content::Device(Device::Tty) => {
                        tty_fd(&[0]).ok_or(EIO)?;
                        self.read_host_stdin(buf, file.nonblocking())?
                    }
                    Content::Synthetic(s) => s.read_at(at, buf)?,
                    _ => return Err(EINVAL),
                };
                if pos.is_none() {
                    file.pos.set(at + k as u64);
                }
                Ok(k)
            }
        }
    }

    fn file_write(
        &mut self,
        file: &OpenFile,
        data: &[u8],
        pos: Option<u64>,
    ) -> Result<usize, Errno> {
        if !file.writable() {
            return Err(EBADF);
        }
        match &file.kind {
            FileKind::HostStdout | FileKind::HostStderr if super::tty::terminal_mode() => {
                let fd = if matches!(file.kind, FileKind::HostStdout) {
                    1
                } else {
                    2
                };
                self.terminal_write(fd, data, file.nonblocking())
            }
            FileKind::HostStdout => self.host_write(1, data).map(|n| n as usize),
            FileKind::HostStderr => self.host_write(2, data).map(|n| n as usize),
            FileKind::HostStdin => Err(EBADF),
            FileKind::Epoll(_) => Err(EINVAL),
            FileKind::Pipe(end) => {
                if pos.is_some() {
                    return Err(ESPIPE);
                }
                let packet = file.flags.get() & O_DIRECT != 0;
                let r = end.write(data, file.nonblocking(), packet);
                if r == Err(EPIPE) {
                    self.raise_sigpipe();
                }
                r
            }
            FileKind::EventFd(e) => {
                if data.len() < 8 {
                    return Err(EINVAL);
                }
                let v = u64::from_le_bytes(data[..8].try_into().unwrap());
                e.write(v, file.nonblocking())?;
                Ok(8)
            }
            // Linux has no write for a timerfd (TFD_IOC_SET_TICKS is an ioctl).
            FileKind::TimerFd(_) => Err(EINVAL),
            FileKind::Socket(s) => {
                if pos.is_some() {
                    return Err(ESPIPE);
                }
                let r = s.send(data, None, file.nonblocking());
                if r == Err(EPIPE) {
                    self.raise_sigpipe();
                }
                r
            }
            FileKind::Node(n) => {
                if n.is_synthetic() {
                    return super::procfs::write(self, n, data);
                }
                if matches!(&*n.content.borrow(), Content::Device(Device::Tty)) {
                    let fd = tty_fd(&[1, 2]).ok_or(EIO)?;
                    if super::tty::terminal_mode() {
                        return self.terminal_write(fd, data, file.nonblocking());
                    }
                    return self.host_write(fd, data).map(|n| n as usize);
                }
                if let Some(host) = &file.host {
                    // Straight through to the host file: nothing is kept back here.
                    let at = match pos {
                        _ if file.flags.get() & O_APPEND != 0 => crate::hostfs::fstat(host)?.size,
                        Some(p) => p,
                        None => file.pos.get(),
                    };
                    let end = at.checked_add(data.len() as u64).ok_or(EFBIG)?;
                    if end > MAX_HOST_FILE {
                        return Err(EFBIG);
                    }
                    crate::vfs::host_pages::sync_pages(n)?;
                    crate::hostfs::pwrite_all(host, data, at)?;
                    crate::vfs::host_pages::pages_written(n, at, data);
                    if pos.is_none() {
                        file.pos.set(end);
                    }
                    crate::vfs::host_refresh(n, Some(host));
                    return Ok(data.len());
                }
                let seals = file.seals();
                if seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
                    return Err(EPERM);
                }
                let mut content = n.content.borrow_mut();
                let k = match &mut *content {
                    Content::File(d) => {
                        let at = match pos {
                            // pwrite ignores O_APPEND on Linux... except it does not: with
                            // O_APPEND, pwrite appends (a documented Linux bug). Do the same.
                            _ if file.flags.get() & O_APPEND != 0 => d.len(),
                            Some(p) => p,
                            None => file.pos.get(),
                        };
                        let end = at.checked_add(data.len() as u64).ok_or(EFBIG)?;
                        if seals & F_SEAL_GROW != 0 && end > d.len() {
                            return Err(EPERM);
                        }
                        // The container's memory holds it: ENOSPC when full, as tmpfs.
                        d.reserve(end)?;
                        d.update(|v| {
                            if v.len() < end as usize {
                                v.resize(end as usize, 0);
                            }
                            v[at as usize..end as usize].copy_from_slice(data);
                            if pos.is_none() {
                                file.pos.set(end);
                            }
                            data.len()
                        })
                    }
                    Content::Dir(_) => return Err(EISDIR),
                    Content::Device(Device::Full) => return Err(ENOSPC),
                    Content::Device(_) => data.len(),
                    _ => return Err(EINVAL),
                };
                let is_file = matches!(&*content, Content::File(_));
                drop(content);
                if is_file {
                    n.touch_mtime();
                }
                Ok(k)
            }
        }
    }

    /// Opens `node` as a new open file description.
    fn open_node(&mut self, node: Node, flags: u32) -> Result<Rc<OpenFile>, Errno> {
        if flags & O_PATH != 0 {
            return Ok(OpenFile::new(
                FileKind::Node(node),
                flags & (O_PATH | O_DIRECTORY),
            ));
        }
        let ftype = node.file_type();
        if flags & O_DIRECTORY != 0 && ftype != S_IFDIR {
            return Err(ENOTDIR);
        }
        let acc = flags & O_ACCMODE;
        if ftype == S_IFDIR && acc != O_RDONLY {
            return Err(EISDIR);
        }
        if acc == 3 {
            return Err(EINVAL);
        }
        if node.is_host() {
            return self.open_host(node, flags);
        }
        match &*node.content.borrow() {
            Content::Special if ftype == S_IFIFO => {}
            Content::Special => return Err(ENXIO),
            // Without a controlling terminal, /dev/tty is ENXIO, as on Linux.
            Content::Device(Device::Tty) if self.vfs.terminal().is_none() => return Err(ENXIO),
            _ => {}
        }
        if node.is_synthetic() {
            return super::procfs::open(self, &node, flags);
        }
        if ftype == S_IFIFO {
            let (read, write) = (acc != O_WRONLY, acc != O_RDONLY);
            let nonblock = flags & O_NONBLOCK != 0;
            let end = super::pipe::open_fifo(&node, read, write, nonblock, &mut self.wait.fifo)?;
            return Ok(OpenFile::new(
                FileKind::Pipe(end),
                flags & (O_ACCMODE | SETFL_MASK),
            ));
        }
        if flags & O_TRUNC != 0 && acc != O_RDONLY && ftype == S_IFREG {
            if let Content::File(d) = &mut *node.content.borrow_mut() {
                d.update(|v| v.clear());
            }
            node.touch_mtime();
        }
        Ok(OpenFile::new(
            FileKind::Node(node),
            flags & (O_ACCMODE | SETFL_MASK | O_DIRECTORY),
        ))
    }

    /// Opens volume node `node`: a file is opened on the host as the guest asks (EROFS
    /// for writing on a read-only volume); a directory needs no host descriptor.
    fn open_host(&mut self, node: Node, flags: u32) -> Result<Rc<OpenFile>, Errno> {
        let acc = flags & O_ACCMODE;
        let keep = flags & (O_ACCMODE | SETFL_MASK | O_DIRECTORY);
        match node.file_type() {
            S_IFDIR => Ok(OpenFile::new(FileKind::Node(node), keep)),
            S_IFREG => {
                let (read, write) = (acc != O_WRONLY, acc != O_RDONLY);
                let trunc = flags & O_TRUNC != 0 && write;
                if trunc {
                    crate::vfs::host_pages::sync_pages(&node)?;
                }
                let host = self.vfs.host_open(&node, read, write, trunc)?;
                if trunc {
                    crate::vfs::host_pages::pages_truncated(&node, 0);
                }
                Ok(OpenFile::new_host(node, keep, host))
            }
            // FIFOs, sockets and devices of the host cannot be opened through WASI.
            _ => Err(ENXIO),
        }
    }

    /// Checks that the caller may access `node` as `want` (bits of 4=read, 2=write, 1=exec).
    pub(super) fn may(&self, node: &Node, want: u32) -> Result<(), Errno> {
        let m = node.meta.borrow();
        let uid = self.creds.euid;
        if uid == 0 {
            // root: everything, except executing a file that no one may execute.
            if want & 1 != 0 && m.mode & S_IFMT != S_IFDIR && m.mode & 0o111 == 0 {
                return Err(EACCES);
            }
            return Ok(());
        }
        let bits = if m.uid == uid {
            (m.mode >> 6) & 7
        } else if m.gid == self.creds.egid || self.creds.groups.contains(&m.gid) {
            (m.mode >> 3) & 7
        } else {
            m.mode & 7
        };
        if bits & want == want {
            Ok(())
        } else {
            Err(EACCES)
        }
    }
}

/// The first of the host's descriptors `fds` that is a terminal.
fn tty_fd(fds: &[u32]) -> Option<u32> {
    fds.iter().copied().find(|&fd| super::tty::is_terminal(fd))
}

impl Process {
    /// Reads host stdin without holding up the other tasks: when it has nothing yet, the
    /// caller waits (`EBLOCK`) until the host says it is readable.
    fn read_host_stdin(&mut self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if super::tty::terminal_mode() {
            // The terminal's line discipline stands between host stdin and its readers.
            return self.terminal_read(buf, nonblock);
        }
        // Alone, a task simply reads (the host blocks): some hosts (Node's WASI on a pipe)
        // never report stdin ready to poll_oneoff, and nobody else needs the time.
        let alone = self.kernel.borrow().parked.is_empty();
        if !alone && !crate::host::wait_stdin(Some(0)) {
            if nonblock {
                return Err(EAGAIN);
            }
            self.wait.stdin = true;
            return Err(EBLOCK);
        }
        crate::host::read_stdin(buf).map_err(|_| EIO)
    }
}

/// The largest file of a volume we ask the host to hold (the host may refuse sooner).
const MAX_HOST_FILE: u64 = i64::MAX as u64;

pub(super) fn stat_node(n: &Node) -> Stat {
    crate::vfs::host_refresh(n, None);
    let m = *n.meta.borrow();
    let size = n.size();
    Stat {
        dev: n.dev.get() as u64,
        ino: n.ino,
        mode: m.mode,
        nlink: m.nlink,
        uid: m.uid,
        gid: m.gid,
        rdev: m.rdev,
        size,
        blksize: 4096,
        // Synthetic files occupy nothing.
        blocks: if n.is_synthetic() {
            0
        } else {
            size.div_ceil(512).next_multiple_of(8)
        },
        atime: m.atime,
        mtime: m.mtime,
        ctime: m.ctime,
    }
}

fn dtype(mode: u32) -> u8 {
    ((mode & S_IFMT) >> 12) as u8
}

/// openat(2).
pub fn openat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let dirfd = a[0] as i32;
    let flags = a[2] as u32;
    let mode = a[3] as u32 & 0o7777;
    let path = p.path_arg(a[1])?;
    if path.is_empty() {
        return Err(ENOENT);
    }
    let base = p.dir_of_path(dirfd, &path)?;
    if flags & O_TMPFILE != 0 {
        return open_tmpfile(p, &base, &path, flags, mode);
    }
    let follow = if flags & O_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    };
    let node = if flags & O_CREAT != 0 {
        let (dir, name) = p.resolve_parent(&base, &path)?;
        match p.lookup(&dir, &name) {
            Ok(existing) => {
                if flags & O_EXCL != 0 {
                    return Err(EEXIST);
                }
                // An existing symlink is followed (unless O_NOFOLLOW).
                let n = if existing.file_type() == S_IFLNK {
                    if follow == Follow::No {
                        return Err(ELOOP);
                    }
                    match p.resolve(&base, &path, Follow::Yes) {
                        Ok(n) => n,
                        Err(ENOENT) => return Err(ENOENT), // dangling: Linux creates the target; rare
                        Err(e) => return Err(e),
                    }
                } else {
                    existing
                };
                if n.is_dir() {
                    return Err(EISDIR);
                }
                n
            }
            Err(ENOENT) => {
                if name == b"." || name == b".." || path.ends_with(b"/") {
                    return Err(EISDIR);
                }
                p.may(&dir, 2 | 1)?;
                let n = new_regular_file(p, mode);
                p.vfs.link(&dir, &name, &n)?
            }
            Err(e) => return Err(e),
        }
    } else {
        let n = p.resolve(&base, &path, follow)?;
        if follow == Follow::No && n.file_type() == S_IFLNK && flags & O_PATH == 0 {
            return Err(ELOOP);
        }
        n
    };
    if flags & O_PATH == 0 {
        let want = match flags & O_ACCMODE {
            O_RDONLY => 4,
            O_WRONLY => 2,
            _ => 6,
        } | if flags & O_TRUNC != 0 { 2 } else { 0 };
        p.may(&node, want)?;
    }
    let file = p.open_node(node, flags)?;
    Ok(p.fds.install(file, flags & O_CLOEXEC != 0, 0)? as u64)
}

/// A new, empty regular file with `mode` less the umask, owned by the caller's effective
/// ids (not yet linked anywhere).
fn new_regular_file(p: &mut Process, mode: u32) -> Node {
    let n = p.vfs.new_node(
        S_IFREG | (mode & !p.umask()),
        Content::File(FileData::upper(Vec::new())),
    );
    {
        let mut m = n.meta.borrow_mut();
        m.uid = p.creds.euid;
        m.gid = p.creds.egid;
    }
    n
}

/// openat(2) with `O_TMPFILE`: an unnamed regular file on the file system of directory
/// `path`, which `linkat(fd, "", ..., AT_EMPTY_PATH)` may give a name unless `O_EXCL`.
fn open_tmpfile(p: &mut Process, base: &Node, path: &[u8], flags: u32, mode: u32) -> SysResult {
    let acc = flags & O_ACCMODE;
    if flags & (O_TMPFILE | O_DIRECTORY | O_CREAT) != O_TMPFILE | O_DIRECTORY
        || acc == O_RDONLY
        || acc == 3
    {
        return Err(EINVAL);
    }
    let dir = p.resolve(base, path, Follow::Yes)?;
    if !dir.is_dir() {
        return Err(ENOTDIR);
    }
    if dir.is_host() {
        // WASI has no unnamed files: as a Linux file system without O_TMPFILE support.
        return Err(EOPNOTSUPP);
    }
    p.may(&dir, 2 | 1)?;
    let n = new_regular_file(p, mode);
    n.set_seen_at(&dir, format!("#{}", n.ino).as_bytes());
    // The O_TMPFILE bit stays in the description's flags while the file may be linked.
    let keep = if flags & O_EXCL == 0 { O_TMPFILE } else { 0 };
    let file = OpenFile::new(FileKind::Node(n), flags & (O_ACCMODE | SETFL_MASK) | keep);
    Ok(p.fds.install(file, flags & O_CLOEXEC != 0, 0)? as u64)
}

/// close(2).
pub fn close(p: &mut Process, a: &[u64; 6]) -> SysResult {
    p.fds.close(a[0] as i32).map(|_| 0)
}

fn clamp_len(n: u64) -> usize {
    (n as usize).min(MAX_IO)
}

fn do_read(p: &mut Process, fd: i32, buf: u64, len: u64, pos: Option<u64>) -> SysResult {
    let file = p.fds.get(fd)?;
    let len = clamp_len(len);
    // Read in chunks so a huge count does not need a huge host buffer.
    let mut tmp = vec![0u8; len.min(1 << 20)];
    let mut done = 0usize;
    while done < len {
        let want = (len - done).min(tmp.len());
        let k = p
            .file_read(&file, &mut tmp[..want], pos.map(|q| q + done as u64))
            .inspect_err(|&e| p.waits_on(e, fd, &file, false))?;
        if k == 0 {
            break;
        }
        p.mem
            .write_bytes(buf + done as u64, &tmp[..k])
            .map_err(|_| EFAULT)?;
        done += k;
        // Streams return what they have; only files and devices fill the whole buffer.
        if !matches!(file.kind, FileKind::Node(_)) || k < want {
            break;
        }
    }
    Ok(done as u64)
}

fn do_write(p: &mut Process, fd: i32, buf: u64, len: u64, pos: Option<u64>) -> SysResult {
    let file = p.fds.get(fd)?;
    let len = clamp_len(len);
    let blocking = blocking_stream(&file);
    // A blocking write to a pipe writes everything, waiting for room as often as needed:
    // what earlier attempts wrote is `wait.progress`.
    let mut done = if blocking { p.wait.progress } else { 0 };
    while done < len {
        let k = (len - done).min(1 << 20);
        let mut tmp = vec![0u8; k];
        p.mem
            .read_bytes(buf + done as u64, &mut tmp)
            .map_err(|_| EFAULT)?;
        let n = match p.file_write(&file, &tmp, pos.map(|q| q + done as u64)) {
            Ok(n) => n,
            Err(EBLOCK) if done > 0 => {
                p.wait.progress = done;
                p.waits_on(EBLOCK, fd, &file, true);
                return Err(EBLOCK);
            }
            Err(e) if done == 0 => {
                p.waits_on(e, fd, &file, true);
                return Err(e);
            }
            Err(_) => break,
        };
        done += n;
        if n < k && !blocking {
            break;
        }
    }
    Ok(done as u64)
}

/// `true` for a file whose blocking writes wait until all is written (a pipe or FIFO
/// without `O_NONBLOCK`).
fn blocking_stream(file: &OpenFile) -> bool {
    matches!(file.kind, FileKind::Pipe(_)) && !file.nonblocking()
}

/// read(2).
pub fn read(p: &mut Process, a: &[u64; 6]) -> SysResult {
    do_read(p, a[0] as i32, a[1], a[2], None)
}

/// write(2).
pub fn write(p: &mut Process, a: &[u64; 6]) -> SysResult {
    do_write(p, a[0] as i32, a[1], a[2], None)
}

/// pread64(2).
pub fn pread64(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if (a[3] as i64) < 0 {
        return Err(EINVAL);
    }
    seekable(p, a[0] as i32)?;
    do_read(p, a[0] as i32, a[1], a[2], Some(a[3]))
}

/// pwrite64(2).
pub fn pwrite64(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if (a[3] as i64) < 0 {
        return Err(EINVAL);
    }
    seekable(p, a[0] as i32)?;
    do_write(p, a[0] as i32, a[1], a[2], Some(a[3]))
}

fn seekable(p: &Process, fd: i32) -> Result<(), Errno> {
    match p.fds.get(fd)?.kind {
        FileKind::Node(_) => Ok(()),
        _ => Err(ESPIPE),
    }
}

fn iovecs(p: &mut Process, iov: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if cnt > 1024 {
        return Err(EINVAL);
    }
    let mut v = Vec::with_capacity(cnt as usize);
    for i in 0..cnt {
        let base = p.mem.read_u64(iov + i * 16).map_err(|_| EFAULT)?;
        let len = p.mem.read_u64(iov + i * 16 + 8).map_err(|_| EFAULT)?;
        if (len as i64) < 0 {
            return Err(EINVAL);
        }
        v.push((base, len));
    }
    Ok(v)
}

fn do_readv(p: &mut Process, a: &[u64; 6], pos: Option<u64>) -> SysResult {
    let fd = a[0] as i32;
    let vecs = iovecs(p, a[1], a[2])?;
    let file = p.fds.get(fd)?;
    if !matches!(file.kind, FileKind::Node(_)) {
        // A stream or a message: one read, scattered over the buffers.
        let want: u64 = vecs.iter().map(|v| v.1).sum();
        let mut tmp = vec![0u8; clamp_len(want).min(4 << 20)];
        let n = p
            .file_read(&file, &mut tmp, pos)
            .inspect_err(|&e| p.waits_on(e, fd, &file, false))?;
        scatter(p, &vecs, &tmp[..n])?;
        return Ok(n as u64);
    }
    let mut total = 0u64;
    for (base, len) in vecs {
        let r = do_read(p, fd, base, len, pos.map(|q| q + total));
        match r {
            Ok(n) => {
                total += n;
                if n < len {
                    break;
                }
            }
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

/// Copies `data` into the guest buffers `vecs` in order.
fn scatter(p: &mut Process, vecs: &[(u64, u64)], mut data: &[u8]) -> Result<(), Errno> {
    for &(base, len) in vecs {
        if data.is_empty() {
            break;
        }
        let k = data.len().min(clamp_len(len));
        p.mem.write_bytes(base, &data[..k]).map_err(|_| EFAULT)?;
        data = &data[k..];
    }
    Ok(())
}

/// Reads the guest buffers `vecs` into one.
fn gather(p: &mut Process, vecs: &[(u64, u64)]) -> Result<Vec<u8>, Errno> {
    let mut data = Vec::new();
    for &(base, len) in vecs {
        let start = data.len();
        data.resize(start + clamp_len(len), 0);
        p.mem
            .read_bytes(base, &mut data[start..])
            .map_err(|_| EFAULT)?;
    }
    Ok(data)
}

fn do_writev(p: &mut Process, a: &[u64; 6], pos: Option<u64>) -> SysResult {
    let fd = a[0] as i32;
    let vecs = iovecs(p, a[1], a[2])?;
    // Gather first, so the write is one host write (atomic lines on a terminal), and one
    // message on a socket.
    let data = gather(p, &vecs)?;
    let file = p.fds.get(fd)?;
    if !blocking_stream(&file) {
        return p
            .file_write(&file, &data, pos)
            .map(|n| n as u64)
            .inspect_err(|&e| p.waits_on(e, fd, &file, true));
    }
    let mut done = p.wait.progress;
    while done < data.len() {
        match p.file_write(&file, &data[done..], pos) {
            Ok(n) => done += n,
            Err(EBLOCK) if done > 0 => {
                p.wait.progress = done;
                p.waits_on(EBLOCK, fd, &file, true);
                return Err(EBLOCK);
            }
            Err(e) if done == 0 => {
                p.waits_on(e, fd, &file, true);
                return Err(e);
            }
            Err(_) => break,
        }
    }
    Ok(done as u64)
}

/// readv(2).
pub fn readv(p: &mut Process, a: &[u64; 6]) -> SysResult {
    do_readv(p, a, None)
}

/// writev(2).
pub fn writev(p: &mut Process, a: &[u64; 6]) -> SysResult {
    do_writev(p, a, None)
}

/// preadv(2).
pub fn preadv(p: &mut Process, a: &[u64; 6]) -> SysResult {
    seekable(p, a[0] as i32)?;
    do_readv(p, a, Some(a[3]))
}

/// pwritev(2).
pub fn pwritev(p: &mut Process, a: &[u64; 6]) -> SysResult {
    seekable(p, a[0] as i32)?;
    do_writev(p, a, Some(a[3]))
}

/// sendfile(2).
pub fn sendfile(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let out = p.fds.get(a[0] as i32)?;
    let inp = p.fds.get(a[1] as i32)?;
    let off_ptr = a[2];
    let count = clamp_len(a[3]);
    if !out.writable() || !inp.readable() {
        return Err(EBADF);
    }
    let mut pos = if off_ptr != 0 {
        Some(p.mem.read_u64(off_ptr).map_err(|_| EFAULT)?)
    } else {
        None
    };
    let mut buf = vec![0u8; count.min(1 << 20)];
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(buf.len());
        let k = p.file_read(&inp, &mut buf[..want], pos)?;
        if k == 0 {
            break;
        }
        if let Some(q) = pos.as_mut() {
            *q += k as u64;
        }
        let w = match p.file_write(&out, &buf[..k], None) {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += w;
        if k < want || !matches!(inp.kind, FileKind::Node(_)) {
            break;
        }
    }
    if let Some(q) = pos {
        p.mem.write_u64(off_ptr, q).map_err(|_| EFAULT)?;
    }
    Ok(done as u64)
}

/// lseek(2).
pub fn lseek(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let file = p.fds.get(a[0] as i32)?;
    let off = a[1] as i64;
    let Some(node) = file.node() else {
        return Err(ESPIPE);
    };
    if let Some(host) = &file.host {
        crate::vfs::host_refresh(node, Some(host));
    }
    let size = node.size() as i64;
    let base = match a[2] {
        0 => 0,
        1 => file.pos.get() as i64,
        2 => size,
        3 | 4 => {
            // SEEK_DATA / SEEK_HOLE: the whole file is data.
            if off < 0 || off >= size {
                return Err(ENXIO);
            }
            let r = if a[2] == 3 { off } else { size };
            file.pos.set(r as u64);
            return Ok(r as u64);
        }
        _ => return Err(EINVAL),
    };
    let new = base.checked_add(off).ok_or(EOVERFLOW)?;
    if new < 0 {
        return Err(EINVAL);
    }
    if node.is_dir() {
        // Directory positions are entry indexes; rewinding re-reads the directory.
        if new == 0 {
            *file.dir_snapshot.borrow_mut() = None;
        }
    }
    file.pos.set(new as u64);
    Ok(new as u64)
}

/// getdents64(2).
pub fn getdents64(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let file = p.fds.get(a[0] as i32)?;
    let Some(dir) = file.node().cloned() else {
        return Err(ENOTDIR);
    };
    if !dir.is_dir() {
        return Err(ENOTDIR);
    }
    if file.flags.get() & O_PATH != 0 {
        return Err(EBADF);
    }
    if file.dir_snapshot.borrow().is_none() {
        let parent = p.vfs.parent(&dir);
        let mut list = vec![
            DirEntry {
                name: b".".to_vec(),
                ino: dir.ino,
                dtype: dtype(S_IFDIR),
            },
            DirEntry {
                name: b"..".to_vec(),
                ino: parent.ino,
                dtype: dtype(S_IFDIR),
            },
        ];
        if dir.is_host() {
            for (name, ino, ftype) in p.vfs.host_dirents(&dir)? {
                list.push(DirEntry {
                    name,
                    ino,
                    dtype: dtype(ftype),
                });
            }
        } else {
            for (name, n) in p.list_dir(&dir)? {
                list.push(DirEntry {
                    name,
                    ino: n.ino,
                    dtype: dtype(n.file_type()),
                });
            }
        }
        *file.dir_snapshot.borrow_mut() = Some(list);
    }
    let snap = file.dir_snapshot.borrow();
    let list = snap.as_ref().unwrap();
    let cap = a[2] as usize;
    let mut out = Vec::new();
    let mut pos = file.pos.get() as usize;
    while pos < list.len() {
        let e = &list[pos];
        let mut rec = Vec::new();
        abi::push_dirent64(&mut rec, e.ino, pos as u64 + 1, e.dtype, &e.name);
        if out.len() + rec.len() > cap {
            if out.is_empty() {
                return Err(EINVAL);
            }
            break;
        }
        out.extend_from_slice(&rec);
        pos += 1;
    }
    drop(snap);
    p.mem.write_bytes(a[1], &out).map_err(|_| EFAULT)?;
    file.pos.set(pos as u64);
    Ok(out.len() as u64)
}

fn put_stat(p: &mut Process, addr: u64, st: &Stat) -> SysResult {
    p.mem.write_bytes(addr, &st.encode()).map_err(|_| EFAULT)?;
    Ok(0)
}

/// `stat` of `(dirfd, path)` with `AT_SYMLINK_NOFOLLOW` / `AT_EMPTY_PATH` from `flags`.
fn stat_at(p: &mut Process, dirfd: i32, path_addr: u64, flags: u64) -> Result<Stat, Errno> {
    let path = p.path_arg(path_addr)?;
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 && dirfd != AT_FDCWD {
        let f = p.fds.get(dirfd)?;
        return Ok(p.stat_of(&f));
    }
    Ok(stat_node(&p.node_at(
        dirfd,
        path_addr,
        follow_of(flags),
        flags,
    )?))
}

/// `Follow::No` if `flags` has `AT_SYMLINK_NOFOLLOW`.
fn follow_of(flags: u64) -> Follow {
    if flags & AT_SYMLINK_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    }
}

/// newfstatat(2).
pub fn newfstatat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let st = stat_at(p, a[0] as i32, a[1], a[3])?;
    put_stat(p, a[2], &st)
}

/// fstat(2).
pub fn fstat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = p.fds.get(a[0] as i32)?;
    let st = p.stat_of(&f);
    put_stat(p, a[1], &st)
}

/// statx(2).
pub fn statx(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let st = stat_at(p, a[0] as i32, a[1], a[2])?;
    p.mem
        .write_bytes(a[4], &st.encode_statx())
        .map_err(|_| EFAULT)?;
    Ok(0)
}

/// readlinkat(2).
pub fn readlinkat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let n = p.node_at(a[0] as i32, a[1], Follow::No, AT_EMPTY_PATH)?;
    if (a[3] as i64) <= 0 {
        return Err(EINVAL);
    }
    let target = match &*n.content.borrow() {
        Content::Symlink(t) => t.clone(),
        Content::Synthetic(_) => super::procfs::readlink(p, &n)?,
        Content::Host(_) if n.file_type() == S_IFLNK => p.vfs.host_readlink(&n)?,
        _ => return Err(EINVAL),
    };
    let k = target.len().min(a[3] as usize);
    p.mem.write_bytes(a[2], &target[..k]).map_err(|_| EFAULT)?;
    Ok(k as u64)
}

fn access(p: &mut Process, dirfd: i32, path: u64, mode: u64, flags: u64) -> SysResult {
    let follow = follow_of(flags);
    let n = p.node_at(dirfd, path, follow, flags)?;
    if mode & !7 != 0 {
        return Err(EINVAL);
    }
    if mode != 0 {
        p.may(&n, mode as u32)?;
    }
    Ok(0)
}

/// faccessat(2).
pub fn faccessat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    access(p, a[0] as i32, a[1], a[2], 0)
}

/// faccessat2(2).
pub fn faccessat2(p: &mut Process, a: &[u64; 6]) -> SysResult {
    access(p, a[0] as i32, a[1], a[2], a[3])
}

/// getcwd(2).
pub fn getcwd(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let mut path = p.vfs.path_of(&p.cwd());
    path.push(0);
    if path.len() as u64 > a[1] {
        return Err(ERANGE);
    }
    p.mem.write_bytes(a[0], &path).map_err(|_| EFAULT)?;
    Ok(path.len() as u64)
}

/// chdir(2).
pub fn chdir(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let n = p.node_at(AT_FDCWD, a[0], Follow::Yes, 0)?;
    if !n.is_dir() {
        return Err(ENOTDIR);
    }
    p.may(&n, 1)?;
    p.set_cwd(n);
    Ok(0)
}

/// fchdir(2).
pub fn fchdir(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = p.fds.get(a[0] as i32)?;
    let n = f.node().cloned().ok_or(ENOTDIR)?;
    if !n.is_dir() {
        return Err(ENOTDIR);
    }
    p.set_cwd(n);
    Ok(0)
}

/// mkdirat(2).
pub fn mkdirat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let (dir, name) = p.parent_at(a[0] as i32, a[1])?;
    if name == b"." || name == b".." || p.lookup(&dir, &name).is_ok() {
        return Err(EEXIST);
    }
    p.may(&dir, 3)?;
    let n = p.vfs.new_dir(&dir, (a[2] as u32 & 0o7777) & !p.umask());
    {
        let mut m = n.meta.borrow_mut();
        m.uid = p.creds.euid;
        m.gid = p.creds.egid;
    }
    p.vfs.link(&dir, &name, &n)?;
    Ok(0)
}

/// mknodat(2).
pub fn mknodat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let mode = a[2] as u32;
    let content = match mode & S_IFMT {
        0 | S_IFREG => Content::File(FileData::upper(Vec::new())),
        S_IFIFO => Content::Special,
        S_IFCHR | S_IFBLK | S_IFSOCK => {
            p.log_once("mknodat: device nodes and sockets are not supported".into());
            return Err(EPERM);
        }
        _ => return Err(EINVAL),
    };
    let (dir, name) = p.parent_at(a[0] as i32, a[1])?;
    if p.lookup(&dir, &name).is_ok() {
        return Err(EEXIST);
    }
    let ftype = if mode & S_IFMT == 0 {
        S_IFREG
    } else {
        mode & S_IFMT
    };
    let n = p
        .vfs
        .new_node(ftype | (mode & 0o7777 & !p.umask()), content);
    p.vfs.link(&dir, &name, &n)?;
    Ok(0)
}

/// unlinkat(2).
pub fn unlinkat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let (dir, name) = p.parent_at(a[0] as i32, a[1])?;
    let flags = a[2];
    if flags & !AT_REMOVEDIR != 0 {
        return Err(EINVAL);
    }
    if name == b"." {
        return Err(if flags & AT_REMOVEDIR != 0 {
            EINVAL
        } else {
            EISDIR
        });
    }
    if name == b".." {
        return Err(if flags & AT_REMOVEDIR != 0 {
            ENOTEMPTY
        } else {
            EISDIR
        });
    }
    let n = p.lookup(&dir, &name)?;
    p.may(&dir, 3)?;
    sticky_check(p, &dir, &n)?;
    if flags & AT_REMOVEDIR != 0 {
        if !n.is_dir() {
            return Err(ENOTDIR);
        }
        if Rc::ptr_eq(&n, &p.vfs.root()) {
            return Err(EBUSY);
        }
        if !p.vfs.is_empty_dir(&n)? {
            return Err(ENOTEMPTY);
        }
    } else if n.is_dir() {
        return Err(EISDIR);
    }
    p.vfs.unlink_entry(&dir, &name)?;
    Ok(0)
}

/// In a sticky directory only the owner of an entry (or of the directory) may remove it.
fn sticky_check(p: &Process, dir: &Node, n: &Node) -> Result<(), Errno> {
    let uid = p.creds.euid;
    let dm = dir.meta.borrow();
    if uid != 0 && dm.mode & 0o1000 != 0 && dm.uid != uid && n.meta.borrow().uid != uid {
        return Err(EPERM);
    }
    Ok(())
}

/// symlinkat(2).
pub fn symlinkat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let target = p.path_arg(a[0])?;
    if target.is_empty() {
        return Err(ENOENT);
    }
    let (dir, name) = p.parent_at(a[1] as i32, a[2])?;
    if name == b"." || name == b".." || p.lookup(&dir, &name).is_ok() {
        return Err(EEXIST);
    }
    p.may(&dir, 3)?;
    let n = p.vfs.new_node(S_IFLNK | 0o777, Content::Symlink(target));
    {
        let mut m = n.meta.borrow_mut();
        m.uid = p.creds.euid;
        m.gid = p.creds.egid;
    }
    p.vfs.link(&dir, &name, &n)?;
    Ok(0)
}

/// linkat(2).
pub fn linkat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let flags = a[4];
    let follow = if flags & AT_SYMLINK_FOLLOW != 0 {
        Follow::Yes
    } else {
        Follow::No
    };
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let old = p.node_at(a[0] as i32, a[1], follow, flags)?;
    if old.is_dir() {
        return Err(EPERM);
    }
    // A file with no name left can only be linked if it was made by O_TMPFILE without
    // O_EXCL (Linux `I_LINKABLE`), and only once.
    let mut tmpfile = None;
    if old.meta.borrow().nlink == 0 {
        let f = p.fds.get(a[0] as i32).map_err(|_| ENOENT)?;
        let is_it = f.node().is_some_and(|n| Rc::ptr_eq(n, &old));
        if !is_it || f.flags.get() & O_TMPFILE == 0 {
            return Err(ENOENT);
        }
        tmpfile = Some(f);
    }
    let (dir, name) = p.parent_at(a[2] as i32, a[3])?;
    if name == b"." || name == b".." || p.lookup(&dir, &name).is_ok() {
        return Err(EEXIST);
    }
    if old.dev.get() != dir.dev.get() {
        return Err(EXDEV);
    }
    p.may(&dir, 3)?;
    p.vfs.link(&dir, &name, &old)?;
    if let Some(f) = tmpfile {
        f.flags.set(f.flags.get() & !O_TMPFILE);
    }
    Ok(0)
}

fn rename(
    p: &mut Process,
    olddirfd: i32,
    oldpath: u64,
    newdirfd: i32,
    newpath: u64,
    flags: u64,
) -> SysResult {
    const RENAME_NOREPLACE: u64 = 1;
    const RENAME_EXCHANGE: u64 = 2;
    const RENAME_WHITEOUT: u64 = 4;
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || (flags & RENAME_EXCHANGE != 0 && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0)
    {
        return Err(EINVAL);
    }
    if flags & RENAME_WHITEOUT != 0 && p.creds.euid != 0 {
        return Err(EPERM); // needs CAP_MKNOD
    }
    let (odir, oname) = p.parent_at(olddirfd, oldpath)?;
    let (ndir, nname) = p.parent_at(newdirfd, newpath)?;
    if oname == b"." || oname == b".." || nname == b"." || nname == b".." {
        return Err(EBUSY);
    }
    let node = p.lookup(&odir, &oname)?;
    if node.dev.get() != ndir.dev.get() {
        return Err(EXDEV);
    }
    p.may(&odir, 3)?;
    p.may(&ndir, 3)?;
    sticky_check(p, &odir, &node)?;
    if odir.is_host() {
        // One rename on the host: it replaces the target (or refuses) as rename(2) does.
        if flags & (RENAME_EXCHANGE | RENAME_WHITEOUT) != 0 {
            p.log_once(
                "renameat2: RENAME_EXCHANGE and RENAME_WHITEOUT are not supported in volumes"
                    .into(),
            );
            return Err(EINVAL);
        }
        if node.is_dir() && p.vfs.is_ancestor(&node, &ndir) {
            return Err(EINVAL);
        }
        p.vfs
            .host_rename(&odir, &oname, &ndir, &nname, flags & RENAME_NOREPLACE != 0)?;
        return Ok(0);
    }
    if flags & RENAME_EXCHANGE != 0 {
        let other = p.lookup(&ndir, &nname)?;
        if Rc::ptr_eq(&other, &node) {
            return Ok(0);
        }
        sticky_check(p, &ndir, &other)?;
        if (node.is_dir() && p.vfs.is_ancestor(&node, &ndir))
            || (other.is_dir() && p.vfs.is_ancestor(&other, &odir))
        {
            return Err(EINVAL);
        }
        let links = (node.meta.borrow().nlink, other.meta.borrow().nlink);
        p.vfs.unlink_entry(&odir, &oname)?;
        p.vfs.unlink_entry(&ndir, &nname)?;
        p.vfs.link(&ndir, &nname, &node)?;
        p.vfs.link(&odir, &oname, &other)?;
        // A moved directory keeps its link count (its "." and its subdirectories' "..").
        node.meta.borrow_mut().nlink = links.0;
        other.meta.borrow_mut().nlink = links.1;
        return Ok(0);
    }
    if node.is_dir() && p.vfs.is_ancestor(&node, &ndir) {
        return Err(EINVAL);
    }
    match p.lookup(&ndir, &nname) {
        Ok(existing) => {
            if Rc::ptr_eq(&existing, &node) {
                return Ok(0); // same file: nothing to do
            }
            if flags & RENAME_NOREPLACE != 0 {
                return Err(EEXIST);
            }
            sticky_check(p, &ndir, &existing)?;
            match (node.is_dir(), existing.is_dir()) {
                (true, false) => return Err(ENOTDIR),
                (false, true) => return Err(EISDIR),
                (true, true) if !p.vfs.is_empty_dir(&existing)? => return Err(ENOTEMPTY),
                _ => {}
            }
            p.vfs.unlink_entry(&ndir, &nname)?;
        }
        Err(ENOENT) => {}
        Err(e) => return Err(e),
    }
    let links = node.meta.borrow().nlink;
    p.vfs.unlink_entry(&odir, &oname)?;
    p.vfs.link(&ndir, &nname, &node)?;
    node.meta.borrow_mut().nlink = links;
    if flags & RENAME_WHITEOUT != 0 {
        // An overlay "whiteout": a character device 0:0 where the old name was.
        let w = p.vfs.new_node(S_IFCHR, Content::Special);
        p.vfs.link(&odir, &oname, &w)?;
    }
    Ok(0)
}

/// renameat(2).
pub fn renameat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    rename(p, a[0] as i32, a[1], a[2] as i32, a[3], 0)
}

/// renameat2(2).
pub fn renameat2(p: &mut Process, a: &[u64; 6]) -> SysResult {
    rename(p, a[0] as i32, a[1], a[2] as i32, a[3], a[4])
}

fn chmod_node(p: &Process, n: &Node, mode: u32) -> SysResult {
    if n.is_synthetic() {
        return Err(EPERM);
    }
    {
        let m = n.meta.borrow();
        if p.creds.euid != 0 && p.creds.euid != m.uid {
            return Err(EPERM);
        }
    }
    read_only_check(p, n)?;
    let mut m = n.meta.borrow_mut();
    m.mode = (m.mode & S_IFMT) | (mode & 0o7777);
    drop(m);
    n.touch_ctime();
    p.vfs.host_keep_attrs(n)?;
    Ok(0)
}

/// EROFS for a node on a read-only mount (a read-only volume).
fn read_only_check(p: &Process, n: &Node) -> Result<(), Errno> {
    if p.vfs.mount_of(n.dev.get()).read_only() {
        return Err(EROFS);
    }
    Ok(())
}

/// fchmod(2).
pub fn fchmod(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = p.fds.get(a[0] as i32)?;
    let n = f.node().cloned().ok_or(EBADF)?;
    chmod_node(p, &n, a[1] as u32)
}

/// fchmodat(2).
pub fn fchmodat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let n = p.node_at(a[0] as i32, a[1], Follow::Yes, 0)?;
    chmod_node(p, &n, a[2] as u32)
}

fn chown_node(p: &Process, n: &Node, uid: u32, gid: u32) -> SysResult {
    if n.is_synthetic() {
        return Err(EPERM);
    }
    read_only_check(p, n)?;
    if p.creds.euid != 0 {
        let m = n.meta.borrow();
        let changes_uid = uid != u32::MAX && uid != m.uid;
        let bad_gid = gid != u32::MAX
            && gid != m.gid
            && (m.uid != p.creds.euid || (gid != p.creds.egid && !p.creds.groups.contains(&gid)));
        if changes_uid || bad_gid {
            return Err(EPERM);
        }
    }
    let mut m = n.meta.borrow_mut();
    if uid != u32::MAX {
        m.uid = uid;
    }
    if gid != u32::MAX {
        m.gid = gid;
    }
    // Changing the owner clears setuid/setgid on non-directories.
    if m.mode & S_IFMT != S_IFDIR && (uid != u32::MAX || gid != u32::MAX) {
        m.mode &= !0o6000;
    }
    drop(m);
    n.touch_ctime();
    p.vfs.host_keep_attrs(n)?;
    Ok(0)
}

/// fchown(2).
pub fn fchown(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = p.fds.get(a[0] as i32)?;
    let n = f.node().cloned().ok_or(EBADF)?;
    chown_node(p, &n, a[1] as u32, a[2] as u32)
}

/// fchownat(2).
pub fn fchownat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let follow = follow_of(a[4]);
    let n = p.node_at(a[0] as i32, a[1], follow, a[4])?;
    chown_node(p, &n, a[2] as u32, a[3] as u32)
}

/// utimensat(2).
pub fn utimensat(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const UTIME_NOW: u64 = (1 << 30) - 1;
    const UTIME_OMIT: u64 = (1 << 30) - 2;
    let n = if a[1] == 0 {
        // futimens: the fd itself.
        p.fds.get(a[0] as i32)?.node().cloned().ok_or(EBADF)?
    } else {
        let follow = follow_of(a[3]);
        p.node_at(a[0] as i32, a[1], follow, a[3])?
    };
    let now = Timespec::now();
    let mut times = [Some(now), Some(now)];
    if a[2] != 0 {
        for (i, t) in times.iter_mut().enumerate() {
            let sec = p.mem.read_u64(a[2] + i as u64 * 16).map_err(|_| EFAULT)?;
            let nsec = p
                .mem
                .read_u64(a[2] + i as u64 * 16 + 8)
                .map_err(|_| EFAULT)?;
            *t = match nsec {
                UTIME_NOW => Some(now),
                UTIME_OMIT => None,
                ns if ns < 1_000_000_000 => Some(Timespec {
                    sec: sec as i64,
                    nsec: ns as u32,
                }),
                _ => return Err(EINVAL),
            };
        }
    }
    if n.is_host() {
        return p.vfs.host_set_times(&n, times).map(|()| 0);
    }
    let mut m = n.meta.borrow_mut();
    if let Some(t) = times[0] {
        m.atime = t;
    }
    if let Some(t) = times[1] {
        m.mtime = t;
    }
    m.ctime = now;
    Ok(0)
}

fn truncate_node(p: &Process, n: &Node, len: u64, file: Option<&OpenFile>) -> SysResult {
    if (len as i64) < 0 {
        return Err(EINVAL);
    }
    if len > MAX_HOST_FILE {
        return Err(EFBIG);
    }
    if n.is_host() {
        if n.is_dir() {
            return Err(EISDIR);
        }
        let host = file.and_then(|f| f.host.as_ref());
        crate::vfs::host_pages::sync_pages(n)?;
        p.vfs.host_truncate(n, len, host)?;
        crate::vfs::host_pages::pages_truncated(n, len);
        return Ok(0);
    }
    match &mut *n.content.borrow_mut() {
        Content::File(d) => {
            d.reserve(len)?;
            d.update(|v| v.resize(len as usize, 0))
        }
        Content::Dir(_) => return Err(EISDIR),
        _ => return Err(EINVAL),
    }
    n.touch_mtime();
    Ok(0)
}

/// truncate(2).
pub fn truncate(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let n = p.node_at(AT_FDCWD, a[0], Follow::Yes, 0)?;
    p.may(&n, 2)?;
    truncate_node(p, &n, a[1], None)
}

/// ftruncate(2).
pub fn ftruncate(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = p.fds.get(a[0] as i32)?;
    if !f.writable() {
        return Err(EINVAL);
    }
    let n = f.node().cloned().ok_or(EINVAL)?;
    check_seals_resize(&f, &n, a[1])?;
    truncate_node(p, &n, a[1], Some(&f))
}

/// `EPERM` if the seals of memfd `f` forbid resizing it to `len`.
fn check_seals_resize(f: &OpenFile, n: &Node, len: u64) -> Result<(), Errno> {
    let seals = f.seals();
    let size = n.size();
    if (len < size && seals & F_SEAL_SHRINK != 0) || (len > size && seals & F_SEAL_GROW != 0) {
        return Err(EPERM);
    }
    Ok(())
}

/// fallocate(2).
pub fn fallocate(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const KEEP_SIZE: u64 = 1;
    let f = p.fds.get(a[0] as i32)?;
    if !f.writable() {
        return Err(EBADF);
    }
    let n = f.node().cloned().ok_or(ESPIPE)?;
    let (mode, off, len) = (a[1], a[2] as i64, a[3] as i64);
    if off < 0 || len <= 0 {
        return Err(EINVAL);
    }
    if mode & !KEEP_SIZE != 0 {
        p.log_once(format!("fallocate: mode {mode:#x} is not supported"));
        return Err(EOPNOTSUPP);
    }
    let end = (off as u64).checked_add(len as u64).ok_or(EFBIG)?;
    if mode & KEEP_SIZE == 0 && end > n.size() {
        check_seals_resize(&f, &n, end)?;
        truncate_node(p, &n, end, Some(&f))?;
    }
    Ok(0)
}

/// fsync(2), fdatasync(2): the in-memory layer is always in sync; a volume's file is
/// synced on the host.
pub fn fsync(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = p.fds.get(a[0] as i32)?;
    if let Some(host) = &f.host {
        if let Some(n) = f.node() {
            crate::vfs::host_pages::sync_pages(n)?;
        }
        crate::hostfs::fsync(host)?;
    }
    Ok(0)
}

/// sync(2).
pub fn sync(_p: &mut Process, _a: &[u64; 6]) -> SysResult {
    Ok(0)
}

/// statfs(2).
pub fn statfs(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let n = p.node_at(AT_FDCWD, a[0], Follow::Yes, 0)?;
    let b = super::procfs::statfs(p, &n);
    p.mem.write_bytes(a[1], &b).map_err(|_| EFAULT)?;
    Ok(0)
}

/// fstatfs(2).
pub fn fstatfs(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = p.fds.get(a[0] as i32)?;
    // Descriptors with no node (the host's streams) are on the root's mount here.
    let n = f.node().cloned().unwrap_or_else(|| p.vfs.root());
    let b = super::procfs::statfs(p, &n);
    p.mem.write_bytes(a[1], &b).map_err(|_| EFAULT)?;
    Ok(0)
}

/// dup(2).
pub fn dup(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = p.fds.get(a[0] as i32)?;
    Ok(p.fds.install(f, false, 0)? as u64)
}

/// dup3(2).
pub fn dup3(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let (old, new, flags) = (a[0] as i32, a[1] as i32, a[2] as u32);
    if old == new || flags & !O_CLOEXEC != 0 {
        return Err(EINVAL);
    }
    let f = p.fds.get(old)?;
    if new < 0 || new as usize >= NOFILE {
        return Err(EBADF);
    }
    p.fds.put(
        new as usize,
        FdEntry {
            file: f,
            cloexec: flags & O_CLOEXEC != 0,
        },
    );
    Ok(new as u64)
}

/// A read of a counter (eventfd, timerfd): its 8 bytes, or EINVAL for a smaller buffer.
fn read_counter(buf: &mut [u8], take: impl FnOnce() -> Result<u64, Errno>) -> Result<usize, Errno> {
    if buf.len() < 8 {
        return Err(EINVAL);
    }
    buf[..8].copy_from_slice(&take()?.to_le_bytes());
    Ok(8)
}

/// fcntl(2).
pub fn fcntl(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const F_DUPFD: u64 = 0;
    const F_GETFD: u64 = 1;
    const F_SETFD: u64 = 2;
    const F_GETFL: u64 = 3;
    const F_SETFL: u64 = 4;
    const F_GETLK: u64 = 5;
    const F_SETLK: u64 = 6;
    const F_SETLKW: u64 = 7;
    const F_DUPFD_CLOEXEC: u64 = 1030;
    const F_OFD_GETLK: u64 = 36;
    const F_OFD_SETLK: u64 = 37;
    const F_OFD_SETLKW: u64 = 38;
    const F_SETPIPE_SZ: u64 = 1031;
    const F_GETPIPE_SZ: u64 = 1032;
    const F_ADD_SEALS: u64 = 1033;
    const F_GET_SEALS: u64 = 1034;
    let fd = a[0] as i32;
    match a[1] {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let f = p.fds.get(fd)?;
            if a[2] as usize >= NOFILE {
                return Err(EINVAL);
            }
            Ok(p.fds.install(f, a[1] == F_DUPFD_CLOEXEC, a[2] as usize)? as u64)
        }
        F_GETFD => Ok(p.fds.entry(fd)?.cloexec as u64),
        F_SETFD => {
            p.fds.entry_mut(fd)?.cloexec = a[2] & 1 != 0;
            Ok(0)
        }
        F_GETFL => {
            let f = p.fds.get(fd)?;
            Ok((f.flags.get() & !O_DIRECTORY) as u64)
        }
        F_SETFL => {
            let f = p.fds.get(fd)?;
            // On a pipe, O_DIRECT switches packet mode for this file's writes.
            let mask = match &f.kind {
                FileKind::Pipe(_) => SETFL_MASK | O_DIRECT,
                _ => SETFL_MASK,
            };
            let v = (f.flags.get() & !mask) | (a[2] as u32 & mask);
            f.flags.set(v);
            Ok(0)
        }
        F_GETPIPE_SZ | F_SETPIPE_SZ => {
            let f = p.fds.get(fd)?;
            let FileKind::Pipe(end) = &f.kind else {
                return Err(EBADF);
            };
            if a[1] == F_GETPIPE_SZ {
                return Ok(end.pipe.queue().capacity() as u64);
            }
            // Beyond pipe-max-size needs CAP_SYS_RESOURCE, which a container's root does
            // not have (Docker's default capabilities, as /proc/PID/status shows).
            Ok(end.set_size(a[2] as u32 as u64, false)? as u64)
        }
        F_ADD_SEALS | F_GET_SEALS => {
            let f = p.fds.get(fd)?;
            let Some(m) = f.memfd.clone() else {
                return Err(EINVAL);
            };
            if a[1] == F_GET_SEALS {
                return Ok(m.seals.get() as u64);
            }
            let add = a[2] as u32;
            let all = F_SEAL_SEAL
                | F_SEAL_SHRINK
                | F_SEAL_GROW
                | F_SEAL_WRITE
                | F_SEAL_FUTURE_WRITE
                | F_SEAL_EXEC;
            if add & !all != 0 {
                return Err(EINVAL);
            }
            if !f.writable() || m.seals.get() & F_SEAL_SEAL != 0 {
                return Err(EPERM);
            }
            m.seals.set(m.seals.get() | add);
            Ok(0)
        }
        F_GETLK | F_OFD_GETLK => {
            p.fds.get(fd)?;
            // struct flock: l_type (i16) first; one process holds no conflicting lock.
            p.mem.write_u16(a[2], 2 /* F_UNLCK */).map_err(|_| EFAULT)?;
            Ok(0)
        }
        F_SETLK | F_SETLKW | F_OFD_SETLK | F_OFD_SETLKW => {
            p.fds.get(fd)?;
            Ok(0)
        }
        cmd => {
            p.log_once(format!("fcntl: command {cmd} is not supported"));
            Err(EINVAL)
        }
    }
}

/// flock(2).
pub fn flock(p: &mut Process, a: &[u64; 6]) -> SysResult {
    p.fds.get(a[0] as i32)?;
    Ok(0)
}

/// ioctl(2).
pub fn ioctl(p: &mut Process, a: &[u64; 6]) -> SysResult {
    use super::abi::ioctl::*;
    let req = a[1] as u32;
    let fd = a[0] as i32;
    let f = p.fds.get(fd)?;
    if super::tty::is_terminal_file(&f) && !matches!(req, FIOCLEX | FIONCLEX | FIONBIO) {
        return super::tty::ioctl(p, req, a[2]);
    }
    match req {
        FIOCLEX | FIONCLEX => {
            p.fds.entry_mut(fd)?.cloexec = req == FIOCLEX;
            return Ok(0);
        }
        FIONBIO => {
            let v = p.mem.read_u32(a[2]).map_err(|_| EFAULT)?;
            let fl = f.flags.get();
            f.flags.set(if v != 0 {
                fl | O_NONBLOCK
            } else {
                fl & !O_NONBLOCK
            });
            return Ok(0);
        }
        FIONREAD => {
            let n = match (&f.kind, f.node()) {
                (FileKind::Pipe(end), _) => end.pipe.queue().len() as u64,
                (FileKind::Socket(s), _) => s.readable_bytes() as u64,
                (FileKind::EventFd(_) | FileKind::TimerFd(_), _) => return Err(ENOTTY),
                (_, Some(n)) if n.file_type() == S_IFREG => n.size().saturating_sub(f.pos.get()),
                (_, Some(n)) if n.is_dir() => return Err(EINVAL),
                _ => 0,
            };
            p.mem.write_u32(a[2], n as u32).map_err(|_| EFAULT)?;
            return Ok(0);
        }
        _ => {}
    }
    let host_fd = match &f.kind {
        FileKind::HostStdin => 0,
        FileKind::HostStdout => 1,
        FileKind::HostStderr => 2,
        FileKind::Node(n) if matches!(&*n.content.borrow(), Content::Device(Device::Tty)) => {
            tty_fd(&[0, 1, 2]).ok_or(ENOTTY)?
        }
        FileKind::Socket(s) if req == TIOCOUTQ => {
            // SIOCOUTQ: bytes sent and not yet read.
            let n = s.unread_sent() as u32;
            p.mem.write_u32(a[2], n).map_err(|_| EFAULT)?;
            return Ok(0);
        }
        _ => return Err(ENOTTY),
    };
    if !crate::host::isatty(host_fd) {
        return Err(ENOTTY);
    }
    match req {
        TCGETS => {
            let t = p.kernel.borrow().host_termios.encode();
            p.mem.write_bytes(a[2], &t).map_err(|_| EFAULT)?;
            Ok(0)
        }
        TCSETS | TCSETSW | TCSETSF => {
            let mut b = [0u8; abi::Termios::LEN];
            p.mem.read_bytes(a[2], &mut b).map_err(|_| EFAULT)?;
            p.kernel.borrow_mut().host_termios = abi::Termios::decode(&b);
            Ok(0)
        }
        TIOCGWINSZ => {
            let (rows, cols) = p.winsize();
            let mut b = [0u8; 8];
            b[0..2].copy_from_slice(&rows.to_le_bytes());
            b[2..4].copy_from_slice(&cols.to_le_bytes());
            p.mem.write_bytes(a[2], &b).map_err(|_| EFAULT)?;
            Ok(0)
        }
        TIOCSWINSZ => Ok(0),
        TIOCGPGRP => {
            let pid = p.pid as u32;
            p.mem.write_u32(a[2], pid).map_err(|_| EFAULT)?;
            Ok(0)
        }
        TIOCSPGRP => Ok(0),
        req => {
            p.log_once(format!("ioctl: terminal request {req:#x} is not supported"));
            Err(EINVAL)
        }
    }
}

impl Process {
    /// The terminal size: `LINES`/`COLUMNS` of the host environment, else 24x80.
    pub fn winsize(&self) -> (u16, u16) {
        let get = |k: &str| {
            self.host_env
                .iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| v.parse::<u16>().ok())
        };
        (get("LINES").unwrap_or(24), get("COLUMNS").unwrap_or(80))
    }
}

/// fadvise64(2): advice is accepted (all data is in memory already); checks as Linux.
pub fn fadvise64(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = p.fds.get(a[0] as i32)?;
    match &f.kind {
        FileKind::Pipe(_) | FileKind::Socket(_) => return Err(ESPIPE),
        FileKind::Node(n) if n.file_type() == S_IFIFO => return Err(ESPIPE),
        _ => {}
    }
    if (a[2] as i64) < 0 || a[3] > 5 {
        return Err(EINVAL);
    }
    Ok(0)
}

/// close_range(2).
pub fn close_range(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u64 = 2;
    const CLOSE_RANGE_CLOEXEC: u64 = 4;
    let (first, last, flags) = (a[0] as u32, a[1] as u32, a[2]);
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(EINVAL);
    }
    // One process: the table is never shared, so UNSHARE has nothing to do.
    p.fds.close_range(
        first as usize,
        last as usize,
        flags & CLOSE_RANGE_CLOEXEC != 0,
    );
    Ok(0)
}

/// fchmodat2(2): fchmodat with flags. Symlinks have no mode of their own on Linux, so
/// changing one is refused (`EOPNOTSUPP`), as the kernel does.
pub fn fchmodat2(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let flags = a[3];
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let n = p.node_at(a[0] as i32, a[1], follow_of(flags), flags)?;
    if n.file_type() == S_IFLNK {
        return Err(EOPNOTSUPP);
    }
    chmod_node(p, &n, a[2] as u32)
}
