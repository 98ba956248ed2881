//! The host's files, for volumes: directories the host handed the module.
//!
//! In a module these are WASI preopened directories, reached through wasi-libc's POSIX
//! calls (`openat` is WASI `path_open` on the preopen, and so on); natively, directories
//! opened by path (`RVBOX_NATIVE_DIRS`, for tests). Every call names a path *relative to a
//! volume's directory descriptor*, one the guest VFS built from components it looked up
//! itself without following symlinks, so the host is never asked to follow one. Under
//! WASI the host refuses anything that would leave the preopen anyway.
//!
//! This is, with `host.rs`, the only code that touches the host. Errors come back as Linux
//! errnos (wasi-libc's numbers are WASI's, not Linux's).

use std::ffi::{CStr, CString};

use crate::linux::errno::*;
use crate::vfs::Timespec;

/// A host file descriptor this module owns, closed when dropped.
#[derive(Debug)]
pub struct HostFd(i32);

impl HostFd {
    pub fn raw(&self) -> i32 {
        self.0
    }
}

impl Drop for HostFd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor; nothing else closes it.
        let r = unsafe { libc::close(self.0) };
        trace(
            "close",
            format!("fd {}", self.0).as_bytes(),
            &Ok::<i32, Errno>(r),
        );
    }
}

/// What a host directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    /// A FIFO, socket or device: WASI cannot open them; listed, not usable.
    Other,
}

/// What `stat` of a host file tells (WASI has no permission bits or owners).
#[derive(Debug, Clone, Copy)]
pub struct HostStat {
    pub kind: Kind,
    pub ino: u64,
    pub nlink: u64,
    pub size: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

/// The last host error as a Linux errno.
fn last_error() -> Errno {
    errno_of(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// A host errno (`libc::E*`, WASI's numbers in a module) as Linux's.
pub fn errno_of(e: i32) -> Errno {
    match e {
        libc::EPERM => EPERM,
        libc::ENOENT => ENOENT,
        libc::EIO => EIO,
        libc::EBADF => EBADF,
        libc::EACCES => EACCES,
        libc::EBUSY => EBUSY,
        libc::EEXIST => EEXIST,
        libc::EXDEV => EXDEV,
        libc::ENOTDIR => ENOTDIR,
        libc::EISDIR => EISDIR,
        libc::EINVAL => EINVAL,
        libc::EFBIG => EFBIG,
        libc::ENOSPC => ENOSPC,
        libc::EROFS => EROFS,
        libc::EMLINK => EMLINK,
        libc::ENAMETOOLONG => ENAMETOOLONG,
        libc::ENOTEMPTY => ENOTEMPTY,
        libc::ELOOP => ELOOP,
        libc::EDQUOT => ENOSPC,
        libc::ENOMEM => ENOMEM,
        libc::EMFILE | libc::ENFILE => EMFILE,
        libc::ENXIO => ENXIO,
        libc::ENOTSUP => EOPNOTSUPP,
        // WASI's "not capable": the host's sandbox refused (a path leaving the preopen,
        // or a right the preopen lacks).
        #[cfg(target_arch = "wasm32")]
        libc::ENOTCAPABLE => EACCES,
        _ => EIO,
    }
}

fn cpath(rel: &[u8]) -> Result<CString, Errno> {
    CString::new(rel).map_err(|_| EINVAL)
}

/// `RVBOX_LOG=volumes` traces every host call made for a volume.
fn trace(what: &str, rel: &[u8], r: &Result<impl std::fmt::Debug, Errno>) {
    if crate::knobs::Log::get().volumes {
        let line = format!(
            "rvbox: volumes: {what}({:?}) = {r:?}\n",
            String::from_utf8_lossy(rel)
        );
        let _ = crate::host::write(2, line.as_bytes());
    }
}

fn check(r: i32) -> Result<(), Errno> {
    if r < 0 {
        Err(last_error())
    } else {
        Ok(())
    }
}

fn ts(sec: i64, nsec: i64) -> Timespec {
    Timespec {
        sec,
        nsec: nsec.clamp(0, 999_999_999) as u32,
    }
}

fn from_stat(st: &libc::stat) -> HostStat {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFREG => Kind::File,
        libc::S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    };
    #[cfg(target_arch = "wasm32")]
    let (atime, mtime, ctime) = (
        ts(st.st_atim.tv_sec, st.st_atim.tv_nsec as i64),
        ts(st.st_mtim.tv_sec, st.st_mtim.tv_nsec as i64),
        ts(st.st_ctim.tv_sec, st.st_ctim.tv_nsec as i64),
    );
    #[cfg(not(target_arch = "wasm32"))]
    let (atime, mtime, ctime) = (
        ts(st.st_atime, st.st_atime_nsec),
        ts(st.st_mtime, st.st_mtime_nsec),
        ts(st.st_ctime, st.st_ctime_nsec),
    );
    HostStat {
        kind,
        ino: st.st_ino,
        nlink: st.st_nlink,
        size: st.st_size.max(0) as u64,
        atime,
        mtime,
        ctime,
    }
}

/// `lstat` of `rel` in directory `dir` (a final symlink is not followed).
pub fn stat_at(dir: i32, rel: &[u8]) -> Result<HostStat, Errno> {
    let p = cpath(rel)?;
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `p` is a NUL-terminated string and `st` a writable stat, both live for the
    // call.
    let r = check(unsafe { libc::fstatat(dir, p.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })
        .map(|()| from_stat(&st));
    trace("lstat", rel, &r);
    r
}

/// `fstat` of an open host file.
pub fn fstat(fd: &HostFd) -> Result<HostStat, Errno> {
    // SAFETY: as in `stat_at`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a writable stat for the call; `fd` is open.
    check(unsafe { libc::fstat(fd.0, &mut st) })?;
    Ok(from_stat(&st))
}

/// How to open a host file.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenHow {
    pub write: bool,
    pub read: bool,
    pub create_excl: bool,
    pub truncate: bool,
    pub directory: bool,
}

/// Opens `rel` in `dir` (never following a final symlink).
pub fn open_at(dir: i32, rel: &[u8], how: OpenHow) -> Result<HostFd, Errno> {
    let p = cpath(rel)?;
    let mut flags = match (how.read, how.write) {
        (_, false) => libc::O_RDONLY,
        (false, true) => libc::O_WRONLY,
        (true, true) => libc::O_RDWR,
    } | libc::O_NOFOLLOW
        | libc::O_CLOEXEC;
    if how.create_excl {
        flags |= libc::O_CREAT | libc::O_EXCL;
    }
    if how.truncate {
        flags |= libc::O_TRUNC;
    }
    if how.directory {
        flags |= libc::O_DIRECTORY;
    }
    // SAFETY: `p` is NUL-terminated and lives for the call; the mode is passed as the
    // variadic argument `openat` reads with O_CREAT.
    let fd = unsafe { libc::openat(dir, p.as_ptr(), flags, 0o666 as libc::c_uint) };
    let r = if fd < 0 {
        Err(last_error())
    } else {
        Ok(HostFd(fd))
    };
    trace("open", rel, &r);
    r
}

/// Opens a host directory by path (native builds: the directories of `RVBOX_NATIVE_DIRS`).
#[cfg(not(target_arch = "wasm32"))]
pub fn open_dir(path: &str) -> Result<HostFd, Errno> {
    open_at(
        libc::AT_FDCWD,
        path.as_bytes(),
        OpenHow {
            read: true,
            directory: true,
            ..Default::default()
        },
    )
}

/// Reads at `off` (as many bytes as the host gives in one call).
pub fn pread(fd: &HostFd, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
    let off = i64::try_from(off).map_err(|_| EINVAL)?;
    // SAFETY: `buf` is writable for `buf.len()` bytes during the call.
    let n = unsafe { libc::pread(fd.0, buf.as_mut_ptr().cast(), buf.len(), off) };
    let r = if n < 0 {
        Err(last_error())
    } else {
        Ok(n as usize)
    };
    trace("pread", format!("fd {} at {off}", fd.0).as_bytes(), &r);
    r
}

/// Writes all of `data` at `off`.
pub fn pwrite_all(fd: &HostFd, mut data: &[u8], mut off: u64) -> Result<(), Errno> {
    while !data.is_empty() {
        let o = i64::try_from(off).map_err(|_| EFBIG)?;
        // SAFETY: `data` is readable for `data.len()` bytes during the call.
        let n = unsafe { libc::pwrite(fd.0, data.as_ptr().cast(), data.len(), o) };
        if n < 0 {
            return Err(last_error());
        }
        if n == 0 {
            return Err(EIO);
        }
        data = &data[n as usize..];
        off += n as u64;
    }
    Ok(())
}

/// Reads the whole file.
pub fn read_all(fd: &HostFd) -> Result<Vec<u8>, Errno> {
    let size = fstat(fd)?.size;
    let mut v = vec![0u8; size.min(1 << 30) as usize];
    let mut at = 0usize;
    loop {
        if at == v.len() {
            v.resize(v.len() + 65536, 0);
        }
        let n = pread(fd, &mut v[at..], at as u64)?;
        if n == 0 {
            break;
        }
        at += n;
    }
    v.truncate(at);
    Ok(v)
}

pub fn ftruncate(fd: &HostFd, len: u64) -> Result<(), Errno> {
    let len = i64::try_from(len).map_err(|_| EFBIG)?;
    // SAFETY: a plain call on an open descriptor.
    check(unsafe { libc::ftruncate(fd.0, len) })
}

pub fn fsync(fd: &HostFd) -> Result<(), Errno> {
    // SAFETY: a plain call on an open descriptor.
    check(unsafe { libc::fsync(fd.0) })
}

pub fn mkdir_at(dir: i32, rel: &[u8]) -> Result<(), Errno> {
    let p = cpath(rel)?;
    // SAFETY: `p` is NUL-terminated and lives for the call.
    check(unsafe { libc::mkdirat(dir, p.as_ptr(), 0o777) })
}

/// Removes a file (or, with `is_dir`, an empty directory).
pub fn unlink_at(dir: i32, rel: &[u8], is_dir: bool) -> Result<(), Errno> {
    let p = cpath(rel)?;
    let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `p` is NUL-terminated and lives for the call.
    check(unsafe { libc::unlinkat(dir, p.as_ptr(), flags) })
}

pub fn rename_at(dir: i32, from: &[u8], to: &[u8]) -> Result<(), Errno> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: both paths are NUL-terminated and live for the call.
    check(unsafe { libc::renameat(dir, f.as_ptr(), dir, t.as_ptr()) })
}

pub fn symlink_at(target: &[u8], dir: i32, rel: &[u8]) -> Result<(), Errno> {
    let (t, p) = (cpath(target)?, cpath(rel)?);
    // SAFETY: both strings are NUL-terminated and live for the call.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir, p.as_ptr()) })
}

pub fn link_at(dir: i32, from: &[u8], to: &[u8]) -> Result<(), Errno> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: both paths are NUL-terminated and live for the call.
    check(unsafe { libc::linkat(dir, f.as_ptr(), dir, t.as_ptr(), 0) })
}

pub fn readlink_at(dir: i32, rel: &[u8]) -> Result<Vec<u8>, Errno> {
    let p = cpath(rel)?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: `p` is NUL-terminated; `buf` is writable for its length during the call.
    let n = unsafe { libc::readlinkat(dir, p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(last_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Sets the access and modification times of `rel` (a symlink itself), `None` leaving one
/// as it is.
pub fn utimens_at(dir: i32, rel: &[u8], times: [Option<Timespec>; 2]) -> Result<(), Errno> {
    let p = cpath(rel)?;
    let t = times.map(|t| match t {
        Some(t) => libc::timespec {
            tv_sec: t.sec as _,
            tv_nsec: t.nsec as _,
        },
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT as _,
        },
    });
    // SAFETY: `p` is NUL-terminated and `t` two timespecs, both live for the call.
    check(unsafe { libc::utimensat(dir, p.as_ptr(), t.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
}

/// One entry of a host directory.
pub struct HostDirent {
    pub name: Vec<u8>,
    pub ino: u64,
    pub kind: Kind,
}

/// The entries of directory `rel` (without `.` and `..`).
pub fn read_dir(dir: i32, rel: &[u8]) -> Result<Vec<HostDirent>, Errno> {
    let fd = open_at(
        dir,
        rel,
        OpenHow {
            read: true,
            directory: true,
            ..Default::default()
        },
    )?;
    // SAFETY: `fd` is an open directory; fdopendir takes it over (closedir closes it).
    let d = unsafe { libc::fdopendir(fd.0) };
    if d.is_null() {
        return Err(last_error());
    }
    std::mem::forget(fd);
    let mut out = Vec::new();
    loop {
        // SAFETY: `d` is an open DIR stream.
        let e = unsafe { libc::readdir(d) };
        if e.is_null() {
            break;
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated, valid
        // until the next readdir on `d`; it is copied at once.
        let (name, ino, dtype) = unsafe {
            let e = &*e;
            (
                CStr::from_ptr(e.d_name.as_ptr()).to_bytes().to_vec(),
                e.d_ino,
                e.d_type,
            )
        };
        if name == b"." || name == b".." {
            continue;
        }
        let kind = match dtype {
            libc::DT_DIR => Kind::Dir,
            libc::DT_REG => Kind::File,
            libc::DT_LNK => Kind::Symlink,
            _ => Kind::Other,
        };
        out.push(HostDirent { name, ino, kind });
    }
    // SAFETY: `d` is open and not used again.
    unsafe { libc::closedir(d) };
    Ok(out)
}

/// The directories the host handed the module, as (descriptor, name): WASI preopens in a
/// module (the name is the guest path the host chose, e.g. `wasmtime run --dir
/// HOST::/data`); natively none (see `RVBOX_NATIVE_DIRS` in main.rs).
pub fn preopens() -> Vec<(i32, Vec<u8>)> {
    #[cfg(target_arch = "wasm32")]
    {
        #[link(wasm_import_module = "wasi_snapshot_preview1")]
        extern "C" {
            fn fd_prestat_get(fd: u32, buf: *mut u8) -> u16;
            fn fd_prestat_dir_name(fd: u32, path: *mut u8, len: usize) -> u16;
        }
        // wasi-libc scans the preopens once, on the first close() (closedir too), asking
        // fd_prestat_get of 3, 4, ... until EBADF. Node's WASI answers EINVAL for a
        // descriptor that is open but no preopen, which wasi-libc takes as fatal (it exits
        // with 71): so have it scan now, while only preopens are open.
        // SAFETY: closing -1 changes nothing (EBADF); it only runs that scan.
        unsafe { libc::close(-1) };
        let mut out = Vec::new();
        // Preopens are numbered from 3 without gaps.
        for fd in 3u32.. {
            // prestat: u8 tag (0: dir), then u32 name length at offset 4.
            let mut pre = [0u8; 8];
            // SAFETY: `pre` is an 8-byte writable buffer, the size of `prestat`.
            if unsafe { fd_prestat_get(fd, pre.as_mut_ptr()) } != 0 {
                break;
            }
            if pre[0] != 0 {
                continue;
            }
            let len = u32::from_le_bytes(pre[4..8].try_into().unwrap()) as usize;
            let mut name = vec![0u8; len];
            // SAFETY: `name` is writable for `len` bytes during the call.
            if unsafe { fd_prestat_dir_name(fd, name.as_mut_ptr(), len) } != 0 {
                continue;
            }
            // Some hosts count a trailing NUL.
            while name.last() == Some(&0) {
                name.pop();
            }
            out.push((fd as i32, name));
        }
        out
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        Vec::new()
    }
}
