//! Calls that make anonymous objects: pipe2, eventfd2, memfd_create.

use std::cell::Cell;
use std::rc::Rc;

use super::errno::*;
use super::eventfd::EventFd;
use super::fd::*;
use super::pipe::{Pipe, PipeEnd};
use super::syscalls::SysResult;
use super::Process;
use crate::bundle::mode::S_IFREG;
use crate::vfs::{Content, FileData};

/// Installs `files` as consecutive new descriptors and writes their numbers (`int[]`) to
/// `out`; on failure none stays open.
fn install_all(p: &mut Process, files: Vec<Rc<OpenFile>>, cloexec: bool, out: u64) -> SysResult {
    // Check the result array before making anything visible.
    let mut probe = vec![0u8; files.len() * 4];
    p.mem.read_bytes(out, &mut probe).map_err(|_| EFAULT)?;
    p.mem.write_bytes(out, &probe).map_err(|_| EFAULT)?;
    let mut fds = Vec::new();
    for f in files {
        match p.fds.install(f, cloexec, 0) {
            Ok(fd) => fds.push(fd),
            Err(e) => {
                for fd in fds {
                    let _ = p.fds.close(fd);
                }
                return Err(e);
            }
        }
    }
    for (i, fd) in fds.iter().enumerate() {
        p.mem
            .write_u32(out + i as u64 * 4, *fd as u32)
            .map_err(|_| EFAULT)?;
    }
    Ok(0)
}

/// pipe2(2).
pub fn pipe2(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let flags = a[1] as u32;
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        // Includes O_NOTIFICATION_PIPE: no watch queues.
        return Err(EINVAL);
    }
    let pipe = Pipe::anonymous(p.creds.euid, p.creds.egid);
    let status = flags & (O_NONBLOCK | O_DIRECT);
    let r = PipeEnd::new(pipe.clone(), true, false);
    let w = PipeEnd::new(pipe, false, true);
    let files = vec![
        OpenFile::new(FileKind::Pipe(r), O_RDONLY | status),
        OpenFile::new(FileKind::Pipe(w), O_WRONLY | status),
    ];
    install_all(p, files, flags & O_CLOEXEC != 0, a[0])
}

/// eventfd2(2).
pub fn eventfd2(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const EFD_SEMAPHORE: u32 = 1;
    let flags = a[1] as u32;
    if flags & !(EFD_SEMAPHORE | O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(EINVAL);
    }
    let e = EventFd::new(a[0] as u32, flags & EFD_SEMAPHORE != 0);
    let file = OpenFile::new(FileKind::EventFd(e), O_RDWR | (flags & O_NONBLOCK));
    Ok(p.fds.install(file, flags & O_CLOEXEC != 0, 0)? as u64)
}

/// memfd_create(2): an anonymous regular file (tmpfs, with no name in any directory).
pub fn memfd_create(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const MFD_CLOEXEC: u32 = 1;
    const MFD_ALLOW_SEALING: u32 = 2;
    const MFD_HUGETLB: u32 = 4;
    const MFD_NOEXEC_SEAL: u32 = 8;
    const MFD_EXEC: u32 = 0x10;
    /// NAME_MAX less "memfd:".
    const MAX_NAME: usize = 249;
    let flags = a[1] as u32;
    if flags & MFD_HUGETLB != 0 {
        p.log_once("memfd_create: MFD_HUGETLB is not supported".into());
        return Err(EINVAL);
    }
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC) != 0
        || flags & (MFD_NOEXEC_SEAL | MFD_EXEC) == MFD_NOEXEC_SEAL | MFD_EXEC
    {
        return Err(EINVAL);
    }
    let name = match p.mem.read_cstr(a[0], MAX_NAME + 1) {
        Ok(Some(n)) if n.len() <= MAX_NAME => n,
        Ok(_) => return Err(EINVAL),
        Err(_) => return Err(EFAULT),
    };
    let (perm, seals) = if flags & MFD_NOEXEC_SEAL != 0 {
        (0o666, F_SEAL_EXEC)
    } else if flags & MFD_ALLOW_SEALING != 0 {
        (0o777, 0)
    } else {
        (0o777, F_SEAL_SEAL)
    };
    let node = p
        .vfs
        .new_node(S_IFREG | perm, Content::File(FileData::upper(Vec::new())));
    {
        let mut m = node.meta.borrow_mut();
        m.uid = p.creds.euid;
        m.gid = p.creds.egid;
    }
    let memfd = Rc::new(Memfd {
        name,
        seals: Cell::new(seals),
    });
    let file = OpenFile::new_memfd(node, O_RDWR, memfd);
    Ok(p.fds.install(file, flags & MFD_CLOEXEC != 0, 0)? as u64)
}
