//! Open files and the file descriptor table.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::linux::errno::*;
use crate::vfs::Node;

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
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_CLOEXEC: u32 = 0o2000000;
pub const O_PATH: u32 = 0o10000000;
pub const O_TMPFILE: u32 = 0o20000000;
/// Status flags `F_SETFL` may change.
pub const SETFL_MASK: u32 = O_APPEND | O_NONBLOCK;

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
}

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
}

impl OpenFile {
    pub fn new(kind: FileKind, flags: u32) -> Rc<OpenFile> {
        Rc::new(OpenFile {
            kind,
            flags: Cell::new(flags),
            pos: Cell::new(0),
            dir_snapshot: RefCell::new(None),
        })
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

    /// The open descriptors.
    pub fn fds(&self) -> impl Iterator<Item = (i32, &FdEntry)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|e| (i as i32, e)))
    }
}
