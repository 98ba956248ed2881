//! Extended attribute calls. The bundle keeps no extended attributes and the writable
//! layer cannot store them, so every file has none: reads find nothing (`ENODATA`),
//! lists are empty, and setting one fails with `EOPNOTSUPP` (logged), as on a file system
//! without xattr support. Names are checked as Linux checks them.

use super::errno::*;
use super::fd::O_PATH;
use super::syscalls::SysResult;
use super::Process;
use crate::vfs::Follow;

const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: u64 = 65536;
const XATTR_CREATE: u64 = 1;
const XATTR_REPLACE: u64 = 2;

/// Which file an xattr call names.
#[derive(Clone, Copy)]
enum Target {
    /// A path, following a final symlink or not.
    Path(u64, Follow),
    Fd(i32),
}

fn check_target(p: &mut Process, t: Target) -> Result<(), Errno> {
    match t {
        Target::Path(addr, follow) => {
            let path = p.path_arg(addr)?;
            let cwd = p.cwd();
            p.resolve(&cwd, &path, follow)?;
        }
        Target::Fd(fd) => {
            if p.fds.get(fd)?.flags.get() & O_PATH != 0 {
                return Err(EBADF);
            }
        }
    }
    Ok(())
}

/// Reads and checks an attribute name: `ERANGE` if empty or too long, `EOPNOTSUPP` for a
/// namespace Linux has no handler for.
fn name_arg(p: &mut Process, addr: u64) -> Result<Vec<u8>, Errno> {
    let name = match p.mem.read_cstr(addr, XATTR_NAME_MAX + 1) {
        Ok(Some(n)) => n,
        Ok(None) => return Err(ERANGE),
        Err(_) => return Err(EFAULT),
    };
    if name.is_empty() || name.len() > XATTR_NAME_MAX {
        return Err(ERANGE);
    }
    const KNOWN: [&[u8]; 4] = [b"user.", b"trusted.", b"security.", b"system."];
    if !KNOWN.iter().any(|k| name.starts_with(k)) {
        return Err(EOPNOTSUPP);
    }
    Ok(name)
}

fn get(p: &mut Process, t: Target, name: u64) -> SysResult {
    check_target(p, t)?;
    name_arg(p, name)?;
    Err(ENODATA)
}

fn list(p: &mut Process, t: Target) -> SysResult {
    check_target(p, t)?;
    Ok(0)
}

fn set(p: &mut Process, t: Target, name: u64, size: u64, flags: u64) -> SysResult {
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(EINVAL);
    }
    check_target(p, t)?;
    let name = name_arg(p, name)?;
    if size > XATTR_SIZE_MAX {
        return Err(E2BIG);
    }
    p.log_once(format!(
        "setxattr: extended attributes are not stored ({}): EOPNOTSUPP",
        String::from_utf8_lossy(&name)
    ));
    Err(EOPNOTSUPP)
}

fn remove(p: &mut Process, t: Target, name: u64) -> SysResult {
    check_target(p, t)?;
    name_arg(p, name)?;
    Err(ENODATA)
}

fn path(a: &[u64; 6]) -> Target {
    Target::Path(a[0], Follow::Yes)
}

fn lpath(a: &[u64; 6]) -> Target {
    Target::Path(a[0], Follow::No)
}

fn fd(a: &[u64; 6]) -> Target {
    Target::Fd(a[0] as i32)
}

/// setxattr(2).
pub fn setxattr(p: &mut Process, a: &[u64; 6]) -> SysResult {
    set(p, path(a), a[1], a[3], a[4])
}

/// lsetxattr(2).
pub fn lsetxattr(p: &mut Process, a: &[u64; 6]) -> SysResult {
    set(p, lpath(a), a[1], a[3], a[4])
}

/// fsetxattr(2).
pub fn fsetxattr(p: &mut Process, a: &[u64; 6]) -> SysResult {
    set(p, fd(a), a[1], a[3], a[4])
}

/// getxattr(2).
pub fn getxattr(p: &mut Process, a: &[u64; 6]) -> SysResult {
    get(p, path(a), a[1])
}

/// lgetxattr(2).
pub fn lgetxattr(p: &mut Process, a: &[u64; 6]) -> SysResult {
    get(p, lpath(a), a[1])
}

/// fgetxattr(2).
pub fn fgetxattr(p: &mut Process, a: &[u64; 6]) -> SysResult {
    get(p, fd(a), a[1])
}

/// listxattr(2).
pub fn listxattr(p: &mut Process, a: &[u64; 6]) -> SysResult {
    list(p, path(a))
}

/// llistxattr(2).
pub fn llistxattr(p: &mut Process, a: &[u64; 6]) -> SysResult {
    list(p, lpath(a))
}

/// flistxattr(2).
pub fn flistxattr(p: &mut Process, a: &[u64; 6]) -> SysResult {
    list(p, fd(a))
}

/// removexattr(2).
pub fn removexattr(p: &mut Process, a: &[u64; 6]) -> SysResult {
    remove(p, path(a), a[1])
}

/// lremovexattr(2).
pub fn lremovexattr(p: &mut Process, a: &[u64; 6]) -> SysResult {
    remove(p, lpath(a), a[1])
}

/// fremovexattr(2).
pub fn fremovexattr(p: &mut Process, a: &[u64; 6]) -> SysResult {
    remove(p, fd(a), a[1])
}
