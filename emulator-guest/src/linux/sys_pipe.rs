//! Calls that make anonymous objects: pipe2, eventfd2, timerfd_*, memfd_create.

use std::cell::Cell;
use std::rc::Rc;

use super::errno::*;
use super::eventfd::EventFd;
use super::fd::*;
use super::pipe::{Pipe, PipeEnd};
use super::syscalls::SysResult;
use super::timerfd::TimerFd;
use super::Process;
use crate::bundle::mode::S_IFREG;
use crate::host;
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

/// timerfd_create(2). The alarm clocks are their plain clocks: nothing here suspends.
pub fn timerfd_create(p: &mut Process, a: &[u64; 6]) -> SysResult {
    use super::abi::clock::*;
    let flags = a[1] as u32;
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(EINVAL);
    }
    let realtime = match a[0] {
        CLOCK_REALTIME | CLOCK_REALTIME_ALARM => true,
        CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => false,
        _ => return Err(EINVAL),
    };
    let file = OpenFile::new(
        FileKind::TimerFd(TimerFd::new(realtime)),
        O_RDWR | (flags & O_NONBLOCK),
    );
    Ok(p.fds.install(file, flags & O_CLOEXEC != 0, 0)? as u64)
}

fn timerfd(p: &Process, fd: u64) -> Result<Rc<TimerFd>, Errno> {
    match &p.fds.get(fd as i32)?.kind {
        FileKind::TimerFd(t) => Ok(t.clone()),
        _ => Err(EINVAL),
    }
}

/// timerfd_settime(2). TFD_TIMER_CANCEL_ON_SET is taken and never cancels: the guest
/// cannot set the clock.
pub fn timerfd_settime(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const TFD_TIMER_ABSTIME: u64 = 1;
    const TFD_TIMER_CANCEL_ON_SET: u64 = 2;
    let t = timerfd(p, a[0])?;
    if a[1] & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(EINVAL);
    }
    let interval = super::sys_proc::read_timespec_ns(p, a[2])?;
    let value = super::sys_proc::read_timespec_ns(p, a[2] + 16)?;
    let (left, every) = t.get(host::now_monotonic_ns());
    let deadline =
        super::sys_proc::timer_deadline(value, a[1] & TFD_TIMER_ABSTIME != 0, t.realtime);
    if a[3] != 0 {
        super::sys_proc::put_itimerspec_ns(p, a[3], left, every)?;
    }
    t.set(deadline, interval);
    Ok(0)
}

/// timerfd_gettime(2).
pub fn timerfd_gettime(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let (left, every) = timerfd(p, a[0])?.get(host::now_monotonic_ns());
    super::sys_proc::put_itimerspec_ns(p, a[1], left, every)?;
    Ok(0)
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
