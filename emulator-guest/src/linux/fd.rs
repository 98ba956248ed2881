//! Open files and the file descriptor table.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::linux::epoll::Epoll;
use crate::linux::errno::*;
use crate::linux::eventfd::EventFd;
use crate::linux::pipe::PipeEnd;
use crate::linux::timerfd::TimerFd;
use crate::linux::unix::UnixSocket;
use crate::vfs::{Content, Device, Node};

// openat(2) flags (asm-generic).
pub const O_ACCMODE: u32 = 3;
pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_NOCTTY: u32 = 0o400;
pub const O_TRUNC: u32 = 0o1000;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;
pub const O_DIRECT: u32 = 0o40000;
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_CLOEXEC: u32 = 0o2000000;
pub const O_PATH: u32 = 0o10000000;
pub const O_TMPFILE: u32 = 0o20000000;
/// Status flags `F_SETFL` may change.
pub const SETFL_MASK: u32 = O_APPEND | O_NONBLOCK;

// poll(2) events.
pub const POLLIN: u16 = 0x1;
pub const POLLPRI: u16 = 0x2;
pub const POLLOUT: u16 = 0x4;
pub const POLLERR: u16 = 0x8;
pub const POLLHUP: u16 = 0x10;
pub const POLLNVAL: u16 = 0x20;
pub const POLLRDNORM: u16 = 0x40;
pub const POLLRDBAND: u16 = 0x80;
pub const POLLWRNORM: u16 = 0x100;
pub const POLLWRBAND: u16 = 0x200;
pub const POLLRDHUP: u16 = 0x2000;

/// The most file descriptors a process may have (`RLIMIT_NOFILE`).
pub const NOFILE: usize = 1024;

/// What an open file refers to.
pub enum FileKind {
    /// A node of the VFS: regular file, directory, device, or anything with `O_PATH`.
    Node(Node),
    /// The host's standard streams.
    HostStdin,
    HostStdout,
    HostStderr,
    /// An end of a pipe or FIFO.
    Pipe(PipeEnd),
    EventFd(EventFd),
    TimerFd(Rc<TimerFd>),
    /// A Unix domain socket.
    Socket(UnixSocket),
    Epoll(Epoll),
}

/// What a `memfd_create` file has besides its (unnamed) node.
pub struct Memfd {
    /// The name given, shown as `/memfd:NAME (deleted)`.
    pub name: Vec<u8>,
    /// `F_SEAL_*` bits.
    pub seals: Cell<u32>,
}

pub const F_SEAL_SEAL: u32 = 0x1;
pub const F_SEAL_SHRINK: u32 = 0x2;
pub const F_SEAL_GROW: u32 = 0x4;
pub const F_SEAL_WRITE: u32 = 0x8;
pub const F_SEAL_FUTURE_WRITE: u32 = 0x10;
pub const F_SEAL_EXEC: u32 = 0x20;

/// One directory entry as `getdents64` reports it.
#[derive(Clone)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    /// `DT_*` type.
    pub dtype: u8,
}

/// An open file description (shared by dup'ed descriptors).
pub struct OpenFile {
    pub kind: FileKind,
    /// Access mode and status flags (`O_ACCMODE | O_APPEND | O_NONBLOCK | O_PATH`...).
    pub flags: Cell<u32>,
    pub pos: Cell<u64>,
    /// The directory listing taken when `getdents64` first reads this description.
    pub dir_snapshot: RefCell<Option<Vec<DirEntry>>>,
    /// Set for a `memfd_create` file (shared with descriptions reopened from it).
    pub memfd: Option<Rc<Memfd>>,
    /// For a file of a volume: the host file, open as long as this description is.
    pub host: Option<crate::hostfs::HostFd>,
}

impl OpenFile {
    pub fn new(kind: FileKind, flags: u32) -> Rc<OpenFile> {
        Rc::new(OpenFile {
            kind,
            flags: Cell::new(flags),
            pos: Cell::new(0),
            dir_snapshot: RefCell::new(None),
            memfd: None,
            host: None,
        })
    }

    /// A description of volume file `node`, open on the host as `host`.
    pub fn new_host(node: Node, flags: u32, host: crate::hostfs::HostFd) -> Rc<OpenFile> {
        Rc::new(OpenFile {
            kind: FileKind::Node(node),
            flags: Cell::new(flags),
            pos: Cell::new(0),
            dir_snapshot: RefCell::new(None),
            memfd: None,
            host: Some(host),
        })
    }

    /// A description of memfd `node`.
    pub fn new_memfd(node: Node, flags: u32, memfd: Rc<Memfd>) -> Rc<OpenFile> {
        Rc::new(OpenFile {
            kind: FileKind::Node(node),
            flags: Cell::new(flags),
            pos: Cell::new(0),
            dir_snapshot: RefCell::new(None),
            memfd: Some(memfd),
            host: None,
        })
    }

    pub fn nonblocking(&self) -> bool {
        self.flags.get() & O_NONBLOCK != 0
    }

    /// The seals of a memfd (0 for other files).
    pub fn seals(&self) -> u32 {
        self.memfd.as_ref().map_or(0, |m| m.seals.get())
    }

    /// `true` for what reads the host's stdin: host stdin itself, and the terminal
    /// (`/dev/tty`) when the host's stdin is one.
    pub fn reads_host_stdin(&self) -> bool {
        match &self.kind {
            FileKind::HostStdin => true,
            FileKind::Node(n) => {
                matches!(&*n.content.borrow(), Content::Device(Device::Tty))
                    && super::tty::is_terminal(0)
            }
            _ => false,
        }
    }

    /// The poll events that hold now, or `None` for what reads host stdin, whose
    /// readiness only the host can tell (see `poll_with`). Files and devices are always
    /// ready, as on Linux.
    pub fn poll(&self) -> Option<u16> {
        const ALWAYS: u16 = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM;
        if self.reads_host_stdin() {
            return None;
        }
        Some(match &self.kind {
            FileKind::Node(_) => ALWAYS,
            FileKind::HostStdin => return None,
            FileKind::HostStdout | FileKind::HostStderr => POLLOUT | POLLWRNORM,
            FileKind::Pipe(end) => end.poll(),
            FileKind::EventFd(e) => e.poll(),
            FileKind::TimerFd(t) => t.poll(),
            FileKind::Socket(s) => s.poll(),
            FileKind::Epoll(e) => e.poll(),
        })
    }

    /// The poll events that hold now, `stdin_ready` telling whether host stdin has input
    /// (for a file that reads it; a terminal is also always writable).
    pub fn poll_with(&self, stdin_ready: bool) -> u16 {
        self.poll().unwrap_or_else(|| {
            let write = match self.kind {
                FileKind::Node(_) => POLLOUT | POLLWRNORM,
                _ => 0,
            };
            write | if stdin_ready { POLLIN | POLLRDNORM } else { 0 }
        })
    }

    /// A number that changes whenever the object's readiness may have changed (for
    /// edge-triggered waiting); constant for objects that are always ready.
    pub fn generation(&self) -> u64 {
        match &self.kind {
            FileKind::Pipe(end) => end.pipe.generation(),
            FileKind::EventFd(e) => e.generation(),
            FileKind::TimerFd(t) => t.generation(),
            FileKind::Socket(s) => s.generation(),
            _ => 0,
        }
    }

    /// What `/proc/self/fd/N` shows for an object outside the file tree (`pipe:[ino]`,
    /// `socket:[ino]`, `anon_inode:[eventfd]`, `/memfd:NAME (deleted)`); `None` for
    /// files of the tree and the host's streams.
    pub fn anon_name(&self) -> Option<Vec<u8>> {
        if let Some(m) = &self.memfd {
            let mut n = b"/memfd:".to_vec();
            n.extend_from_slice(&m.name);
            n.extend_from_slice(b" (deleted)");
            return Some(n);
        }
        match &self.kind {
            FileKind::Pipe(end) if end.pipe.node.is_none() => {
                Some(format!("pipe:[{}]", end.pipe.ino).into_bytes())
            }
            FileKind::Socket(s) => Some(format!("socket:[{}]", s.core.ino).into_bytes()),
            FileKind::EventFd(_) => Some(b"anon_inode:[eventfd]".to_vec()),
            FileKind::TimerFd(_) => Some(b"anon_inode:[timerfd]".to_vec()),
            FileKind::Epoll(_) => Some(b"anon_inode:[eventpoll]".to_vec()),
            _ => None,
        }
    }

    pub fn readable(&self) -> bool {
        let f = self.flags.get();
        f & O_PATH == 0 && f & O_ACCMODE != O_WRONLY
    }

    pub fn writable(&self) -> bool {
        let f = self.flags.get();
        f & O_PATH == 0 && matches!(f & O_ACCMODE, O_WRONLY | O_RDWR)
    }

    pub fn node(&self) -> Option<&Node> {
        match &self.kind {
            FileKind::Node(n) => Some(n),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct FdEntry {
    pub file: Rc<OpenFile>,
    pub cloexec: bool,
}

#[derive(Default, Clone)]
pub struct FdTable {
    slots: Vec<Option<FdEntry>>,
}

impl FdTable {
    /// A table with 0, 1 and 2 open on the host's standard streams.
    pub fn with_stdio() -> FdTable {
        let mut t = FdTable::default();
        for kind in [
            FileKind::HostStdin,
            FileKind::HostStdout,
            FileKind::HostStderr,
        ] {
            let flags = if matches!(kind, FileKind::HostStdin) {
                O_RDONLY
            } else {
                O_WRONLY
            };
            t.slots.push(Some(FdEntry {
                file: OpenFile::new(kind, flags),
                cloexec: false,
            }));
        }
        t
    }

    pub fn get(&self, fd: i32) -> Result<Rc<OpenFile>, Errno> {
        self.entry(fd).map(|e| e.file.clone())
    }

    pub fn entry(&self, fd: i32) -> Result<&FdEntry, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
            .ok_or(EBADF)
    }

    pub fn entry_mut(&mut self, fd: i32) -> Result<&mut FdEntry, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or(EBADF)
    }

    /// Installs `file` at the lowest free descriptor `>= min`.
    pub fn install(&mut self, file: Rc<OpenFile>, cloexec: bool, min: usize) -> Result<i32, Errno> {
        let mut i = min;
        while i < self.slots.len() && self.slots[i].is_some() {
            i += 1;
        }
        if i >= NOFILE {
            return Err(EMFILE);
        }
        self.put(i, FdEntry { file, cloexec });
        Ok(i as i32)
    }

    /// Puts `entry` at descriptor `fd`, closing what was there.
    pub fn put(&mut self, fd: usize, entry: FdEntry) {
        if self.slots.len() <= fd {
            self.slots.resize(fd + 1, None);
        }
        self.slots[fd] = Some(entry);
    }

    pub fn close(&mut self, fd: i32) -> Result<(), Errno> {
        let i = usize::try_from(fd).map_err(|_| EBADF)?;
        match self.slots.get_mut(i) {
            Some(s @ Some(_)) => {
                *s = None;
                Ok(())
            }
            _ => Err(EBADF),
        }
    }

    /// Closes every descriptor in `[first, last]`; with `cloexec`, marks them instead.
    pub fn close_range(&mut self, first: usize, last: usize, cloexec: bool) {
        let end = last.saturating_add(1).min(self.slots.len());
        for slot in self.slots.iter_mut().take(end).skip(first) {
            if cloexec {
                if let Some(e) = slot {
                    e.cloexec = true;
                }
            } else {
                *slot = None;
            }
        }
    }

    /// The open descriptors.
    pub fn fds(&self) -> impl Iterator<Item = (i32, &FdEntry)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|e| (i as i32, e)))
    }
}
