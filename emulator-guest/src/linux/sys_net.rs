//! Socket system calls. Only Unix domain sockets exist (see `unix.rs`); other address
//! families are refused with `EAFNOSUPPORT`, as a kernel without them would.
//!
//! A blocking call that would wait (`EBLOCK`) waits out `SO_RCVTIMEO`/`SO_SNDTIMEO` if one
//! is set and then fails with `EAGAIN`, as Linux does when the timeout passes; with no
//! timeout `EBLOCK` goes to the dispatcher.

use std::rc::Rc;

use super::errno::*;
use super::fd::*;
use super::syscalls::SysResult;
use super::unix::{self, Addr, BindKey, Core, RecvOpts, SockType, Ucred, UnixSocket};
use super::Process;
use crate::bundle::mode::*;
use crate::vfs::{Content, Follow};

const AF_UNIX: u32 = 1;
const SOCK_TYPE_MASK: u32 = 0xf;
/// `SOCK_NONBLOCK` and `SOCK_CLOEXEC` are the `O_` flags.
const SOCK_FLAGS: u32 = O_NONBLOCK | O_CLOEXEC;
/// `sizeof(struct sockaddr_un)`.
const SOCKADDR_UN_LEN: u64 = 110;

const MSG_OOB: u32 = 0x1;
const MSG_PEEK: u32 = 0x2;
const MSG_TRUNC: u32 = 0x20;
const MSG_DONTWAIT: u32 = 0x40;
const MSG_WAITALL: u32 = 0x100;
const MSG_NOSIGNAL: u32 = 0x4000;
const MSG_WAITFORONE: u32 = 0x10000;

const SOL_SOCKET: u64 = 1;
const SO_TYPE: u32 = 3;
const SO_ERROR: u32 = 4;
const SO_SNDBUF: u32 = 7;
const SO_RCVBUF: u32 = 8;
const SO_PEERCRED: u32 = 17;
const SO_RCVTIMEO: u32 = 20;
const SO_SNDTIMEO: u32 = 21;
const SO_ACCEPTCONN: u32 = 30;
const SO_SNDBUFFORCE: u32 = 32;
const SO_RCVBUFFORCE: u32 = 33;
const SO_PROTOCOL: u32 = 38;
const SO_DOMAIN: u32 = 39;
/// `SO_RCVTIMEO_NEW`/`SO_SNDTIMEO_NEW` (64-bit `time_t` on every ABI; the same layout
/// on riscv64).
const SO_RCVTIMEO_NEW: u32 = 66;
const SO_SNDTIMEO_NEW: u32 = 67;
/// Options recorded for `getsockopt` that change nothing for a Unix socket:
/// SO_DEBUG, SO_REUSEADDR, SO_DONTROUTE, SO_BROADCAST, SO_KEEPALIVE, SO_OOBINLINE,
/// SO_NO_CHECK, SO_PRIORITY, SO_PASSCRED, SO_RCVLOWAT, SO_SNDLOWAT, SO_TIMESTAMP,
/// SO_PASSSEC, SO_REUSEPORT, SO_TIMESTAMPNS, SO_MARK.
const RECORDED_OPTS: [u32; 16] = [1, 2, 5, 6, 9, 10, 11, 12, 16, 18, 19, 29, 34, 15, 35, 36];

/// The socket at descriptor `fd`.
fn sock_file(p: &Process, fd: i32) -> Result<Rc<OpenFile>, Errno> {
    let f = p.fds.get(fd)?;
    match f.kind {
        FileKind::Socket(_) => Ok(f),
        _ => Err(ENOTSOCK),
    }
}

fn sock(f: &OpenFile) -> &UnixSocket {
    match &f.kind {
        FileKind::Socket(s) => s,
        _ => unreachable!("checked by sock_file"),
    }
}

fn cred(p: &Process) -> Ucred {
    Ucred {
        pid: p.pid,
        uid: p.creds.euid,
        gid: p.creds.egid,
    }
}

fn family_name(f: u32) -> &'static str {
    match f {
        2 => "AF_INET",
        10 => "AF_INET6",
        16 => "AF_NETLINK",
        17 => "AF_PACKET",
        _ => "",
    }
}

/// socket(2).
pub fn socket(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let (family, ty, proto) = (a[0] as u32, a[1] as u32, a[2] as u32);
    if ty & !(SOCK_TYPE_MASK | SOCK_FLAGS) != 0 {
        return Err(EINVAL);
    }
    if family != AF_UNIX {
        p.log_once(format!(
            "socket: address family {family} {} is not supported: EAFNOSUPPORT",
            family_name(family)
        ));
        return Err(EAFNOSUPPORT);
    }
    let st = SockType::from_raw(ty & SOCK_TYPE_MASK).ok_or(ESOCKTNOSUPPORT)?;
    if proto != 0 && proto != AF_UNIX {
        return Err(EPROTONOSUPPORT);
    }
    let s = UnixSocket::new(st, cred(p));
    let file = OpenFile::new(FileKind::Socket(s), O_RDWR | (ty & O_NONBLOCK));
    Ok(p.fds.install(file, ty & O_CLOEXEC != 0, 0)? as u64)
}

/// socketpair(2).
pub fn socketpair(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let (family, ty, proto) = (a[0] as u32, a[1] as u32, a[2] as u32);
    if ty & !(SOCK_TYPE_MASK | SOCK_FLAGS) != 0 {
        return Err(EINVAL);
    }
    if family != AF_UNIX {
        p.log_once(format!(
            "socketpair: address family {family} {} is not supported: EAFNOSUPPORT",
            family_name(family)
        ));
        return Err(EAFNOSUPPORT);
    }
    let st = SockType::from_raw(ty & SOCK_TYPE_MASK).ok_or(ESOCKTNOSUPPORT)?;
    if proto != 0 && proto != AF_UNIX {
        return Err(EPROTONOSUPPORT);
    }
    // Check the result array before making anything.
    p.mem.write_u64(a[3], 0).map_err(|_| EFAULT)?;
    let (x, y) = UnixSocket::pair(st, cred(p));
    let flags = O_RDWR | (ty & O_NONBLOCK);
    let cloexec = ty & O_CLOEXEC != 0;
    let fx = p
        .fds
        .install(OpenFile::new(FileKind::Socket(x), flags), cloexec, 0)?;
    let fy = match p
        .fds
        .install(OpenFile::new(FileKind::Socket(y), flags), cloexec, 0)
    {
        Ok(fd) => fd,
        Err(e) => {
            let _ = p.fds.close(fx);
            return Err(e);
        }
    };
    p.mem.write_u32(a[3], fx as u32).map_err(|_| EFAULT)?;
    p.mem.write_u32(a[3] + 4, fy as u32).map_err(|_| EFAULT)?;
    Ok(0)
}

/// A `sockaddr_un` argument: `None` for one with no path (autobind).
fn read_addr(p: &mut Process, addr: u64, len: u64) -> Result<Option<Addr>, Errno> {
    if !(2..=SOCKADDR_UN_LEN).contains(&len) {
        return Err(EINVAL);
    }
    let mut b = vec![0u8; len as usize];
    p.mem.read_bytes(addr, &mut b).map_err(|_| EFAULT)?;
    if u16::from_le_bytes([b[0], b[1]]) as u32 != AF_UNIX {
        return Err(EINVAL);
    }
    let path = &b[2..];
    if path.is_empty() {
        return Ok(None);
    }
    if path[0] == 0 {
        return Ok(Some(path.to_vec())); // abstract: every byte counts
    }
    let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
    Ok(Some(path[..end].to_vec()))
}

/// The bytes of a `sockaddr_un` for `addr` (`None`: unnamed, just the family).
fn encode_addr(addr: Option<&Addr>) -> Vec<u8> {
    let mut b = (AF_UNIX as u16).to_le_bytes().to_vec();
    if let Some(a) = addr {
        b.extend_from_slice(a);
        if a.first() != Some(&0) {
            b.push(0); // a path's terminating NUL counts in the length
        }
    }
    b
}

/// Writes a socket address to `(addr, *lenp)` as the kernel does: at most the caller's
/// length, and the real length back.
fn put_addr(p: &mut Process, addr: u64, lenp: u64, bytes: &[u8]) -> Result<(), Errno> {
    if addr == 0 || lenp == 0 {
        return Ok(());
    }
    let cap = p.mem.read_u32(lenp).map_err(|_| EFAULT)? as i32;
    if cap < 0 {
        return Err(EINVAL);
    }
    let k = bytes.len().min(cap as usize);
    p.mem.write_bytes(addr, &bytes[..k]).map_err(|_| EFAULT)?;
    p.mem
        .write_u32(lenp, bytes.len() as u32)
        .map_err(|_| EFAULT)?;
    Ok(())
}

/// The bound socket at `addr`, as connect(2) and sendto(2) find it.
fn find_target(p: &mut Process, addr: &Addr) -> Result<Rc<Core>, Errno> {
    if addr.first() == Some(&0) {
        return unix::lookup(&BindKey::Abstract(addr.clone())).ok_or(ECONNREFUSED);
    }
    let cwd = p.cwd();
    let node = p.resolve(&cwd, addr, Follow::Yes)?;
    if node.file_type() != S_IFSOCK {
        return Err(ECONNREFUSED);
    }
    p.may(&node, 2)?;
    unix::lookup(&BindKey::node(&node)).ok_or(ECONNREFUSED)
}

/// bind(2).
pub fn bind(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    let s = sock(&f);
    let addr = read_addr(p, a[1], a[2])?;
    if s.local_addr().is_some() {
        return Err(EINVAL);
    }
    match addr {
        None => {
            let name = unix::autobind_name();
            s.bind(name.clone(), BindKey::Abstract(name), None)?;
        }
        Some(name) if name[0] == 0 => s.bind(name.clone(), BindKey::Abstract(name), None)?,
        Some(path) => {
            // The socket file, as mknod(2) makes it.
            let base = if path.starts_with(b"/") {
                p.vfs.root()
            } else {
                p.cwd()
            };
            let (dir, name) = p.resolve_parent(&base, &path)?;
            if name == b"." || name == b".." || p.lookup(&dir, &name).is_ok() {
                return Err(EADDRINUSE);
            }
            p.may(&dir, 3)?;
            let node = p
                .vfs
                .new_node(S_IFSOCK | (0o777 & !p.umask()), Content::Special);
            {
                let mut m = node.meta.borrow_mut();
                m.uid = p.creds.euid;
                m.gid = p.creds.egid;
            }
            s.bind(path, BindKey::node(&node), Some(node.clone()))?;
            p.vfs.link(&dir, &name, &node)?;
        }
    }
    Ok(0)
}

/// listen(2).
pub fn listen(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    sock(&f).listen(a[1] as i32)?;
    Ok(0)
}

/// connect(2).
pub fn connect(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    let s = sock(&f);
    if a[2] >= 2 && s.ty() == SockType::Dgram {
        // AF_UNSPEC dissolves a datagram socket's association.
        if p.mem.read_u16(a[1]).map_err(|_| EFAULT)? == 0 {
            return Ok(0);
        }
    }
    let addr = read_addr(p, a[1], a[2])?.ok_or(EINVAL)?;
    let target = find_target(p, &addr)?;
    let c = cred(p);
    s.connect(&target, c, f.nonblocking())?;
    Ok(0)
}

/// accept4(2).
pub fn accept4(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let flags = a[3] as u32;
    if flags & !SOCK_FLAGS != 0 {
        return Err(EINVAL);
    }
    let f = sock_file(p, a[0] as i32)?;
    let s = sock(&f);
    if s.ty() == SockType::Dgram {
        return Err(EOPNOTSUPP);
    }
    let conn = with_timeout(p, s.core.rcvtimeo.get(), s.accept(f.nonblocking()))?;
    let peer = encode_addr(conn.peer_addr().flatten().as_ref());
    let file = OpenFile::new(FileKind::Socket(conn), O_RDWR | (flags & O_NONBLOCK));
    let fd = p.fds.install(file, flags & O_CLOEXEC != 0, 0)?;
    put_addr(p, a[1], a[2], &peer)?;
    Ok(fd as u64)
}

/// accept(2).
pub fn accept(p: &mut Process, a: &[u64; 6]) -> SysResult {
    accept4(p, &[a[0], a[1], a[2], 0, 0, 0])
}

/// getsockname(2).
pub fn getsockname(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    let bytes = encode_addr(sock(&f).local_addr().as_ref());
    put_addr(p, a[1], a[2], &bytes)?;
    Ok(0)
}

/// getpeername(2).
pub fn getpeername(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    let peer = sock(&f).peer_addr().ok_or(ENOTCONN)?;
    put_addr(p, a[1], a[2], &encode_addr(peer.as_ref()))?;
    Ok(0)
}

/// shutdown(2).
pub fn shutdown(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    sock(&f).shutdown(a[1] as u32)?;
    Ok(0)
}

/// Turns a would-wait into a timeout when the socket has one (`SO_*TIMEO`): `EAGAIN` once
/// it has passed since the first attempt.
fn with_timeout<T>(p: &mut Process, timeout_ns: u64, r: Result<T, Errno>) -> Result<T, Errno> {
    match r {
        Err(EBLOCK) if timeout_ns > 0 => {
            p.wait_deadline(Some(timeout_ns));
            if p.wait_timed_out() {
                Err(EAGAIN)
            } else {
                Err(EBLOCK)
            }
        }
        r => r,
    }
}

/// Sends `data` on socket file `f` (to `to`, if given), raising SIGPIPE on EPIPE unless
/// `MSG_NOSIGNAL`.
fn do_send(
    p: &mut Process,
    f: &OpenFile,
    data: &[u8],
    to: Option<Rc<Core>>,
    flags: u32,
) -> SysResult {
    let s = sock(f);
    if flags & MSG_OOB != 0 {
        p.log_once("send: MSG_OOB is not supported: EOPNOTSUPP".into());
        return Err(EOPNOTSUPP);
    }
    let nonblock = f.nonblocking() || flags & MSG_DONTWAIT != 0;
    let r = with_timeout(p, s.core.sndtimeo.get(), s.send(data, to, nonblock));
    if r == Err(EPIPE) && flags & MSG_NOSIGNAL == 0 {
        p.raise_sigpipe();
    }
    r.map(|n| n as u64)
}

/// The destination of a sendto/sendmsg with an address.
fn dest(p: &mut Process, s: &UnixSocket, addr: u64, len: u64) -> Result<Option<Rc<Core>>, Errno> {
    if addr == 0 || len == 0 {
        return Ok(None);
    }
    if s.ty() != SockType::Dgram {
        return Err(if s.is_connected() {
            EISCONN
        } else {
            EOPNOTSUPP
        });
    }
    let a = read_addr(p, addr, len)?.ok_or(EINVAL)?;
    find_target(p, &a).map(Some)
}

/// sendto(2).
pub fn sendto(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    let len = (a[2] as usize).min(i32::MAX as usize);
    let mut data = vec![0u8; len];
    p.mem.read_bytes(a[1], &mut data).map_err(|_| EFAULT)?;
    let to = dest(p, sock(&f), a[4], a[5])?;
    do_send(p, &f, &data, to, a[3] as u32)
}

/// What recv returned, with the fields recvmsg reports.
struct Got {
    n: u64,
    from: Vec<u8>,
    truncated: bool,
}

/// Receives into a buffer of `len` bytes.
fn do_recv(p: &mut Process, f: &OpenFile, len: usize, flags: u32) -> Result<(Vec<u8>, Got), Errno> {
    let s = sock(f);
    if flags & MSG_OOB != 0 {
        p.log_once("recv: MSG_OOB is not supported: EOPNOTSUPP".into());
        return Err(EOPNOTSUPP);
    }
    let o = RecvOpts {
        nonblock: f.nonblocking() || flags & MSG_DONTWAIT != 0,
        peek: flags & MSG_PEEK != 0,
        waitall: flags & MSG_WAITALL != 0,
    };
    let mut buf = vec![0u8; len.min(4 << 20)];
    let r = with_timeout(p, s.core.rcvtimeo.get(), s.recv(&mut buf, o))?;
    buf.truncate(r.copied);
    // The sender's name: the datagram's, or the peer's on a connection; nothing if unnamed.
    let from = match s.ty() {
        SockType::Dgram => r.from.clone(),
        _ => s.peer_addr().flatten(),
    };
    let from = from.map(|a| encode_addr(Some(&a))).unwrap_or_default();
    let message = s.ty() != SockType::Stream;
    let n = if message && flags & MSG_TRUNC != 0 {
        r.len
    } else {
        r.copied
    };
    Ok((
        buf,
        Got {
            n: n as u64,
            from,
            truncated: message && r.len > r.copied,
        },
    ))
}

/// recvfrom(2).
pub fn recvfrom(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    let (buf, got) = do_recv(p, &f, a[2] as usize, a[3] as u32)?;
    p.mem.write_bytes(a[1], &buf).map_err(|_| EFAULT)?;
    put_addr(p, a[4], a[5], &got.from)?;
    Ok(got.n)
}

/// `struct msghdr` (64-bit).
struct MsgHdr {
    name: u64,
    namelen: u32,
    iov: Vec<(u64, u64)>,
    control: u64,
    controllen: u64,
}

fn read_msghdr(p: &mut Process, at: u64) -> Result<MsgHdr, Errno> {
    let mut b = [0u8; 56];
    p.mem.read_bytes(at, &mut b).map_err(|_| EFAULT)?;
    let q = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let (iov, iovlen) = (q(16), q(24));
    if iovlen > 1024 {
        return Err(EMSGSIZE);
    }
    let mut v = Vec::with_capacity(iovlen as usize);
    for i in 0..iovlen {
        let base = p.mem.read_u64(iov + i * 16).map_err(|_| EFAULT)?;
        let len = p.mem.read_u64(iov + i * 16 + 8).map_err(|_| EFAULT)?;
        if (len as i64) < 0 {
            return Err(EINVAL);
        }
        v.push((base, len));
    }
    Ok(MsgHdr {
        name: q(0),
        namelen: u32::from_le_bytes(b[8..12].try_into().unwrap()),
        iov: v,
        control: q(32),
        controllen: q(40),
    })
}

/// sendmsg(2) for one header at `at`.
fn sendmsg_one(p: &mut Process, f: &OpenFile, at: u64, flags: u32) -> SysResult {
    let h = read_msghdr(p, at)?;
    if h.controllen >= 16 {
        // A control message: cmsg_len (u64), cmsg_level (i32), cmsg_type (i32).
        let level = p.mem.read_u32(h.control + 8).map_err(|_| EFAULT)?;
        let ty = p.mem.read_u32(h.control + 12).map_err(|_| EFAULT)?;
        let what = match (level, ty) {
            (1, 1) => "SCM_RIGHTS (passing descriptors)",
            (1, 2) => "SCM_CREDENTIALS",
            _ => "control messages",
        };
        p.log_once(format!("sendmsg: {what} not supported: EOPNOTSUPP"));
        return Err(EOPNOTSUPP);
    }
    let mut data = Vec::new();
    for &(base, len) in &h.iov {
        let start = data.len();
        data.resize(start + len.min(i32::MAX as u64) as usize, 0);
        p.mem
            .read_bytes(base, &mut data[start..])
            .map_err(|_| EFAULT)?;
    }
    let to = dest(p, sock(f), h.name, h.namelen as u64)?;
    do_send(p, f, &data, to, flags)
}

/// recvmsg(2) for one header at `at`.
fn recvmsg_one(p: &mut Process, f: &OpenFile, at: u64, flags: u32) -> SysResult {
    let h = read_msghdr(p, at)?;
    let want: u64 = h.iov.iter().map(|v| v.1).sum();
    let (buf, got) = do_recv(p, f, want.min(i32::MAX as u64) as usize, flags)?;
    let mut rest = &buf[..];
    for &(base, len) in &h.iov {
        let k = rest.len().min(len as usize);
        p.mem.write_bytes(base, &rest[..k]).map_err(|_| EFAULT)?;
        rest = &rest[k..];
    }
    if h.name != 0 {
        let k = got.from.len().min(h.namelen as usize);
        p.mem
            .write_bytes(h.name, &got.from[..k])
            .map_err(|_| EFAULT)?;
    }
    p.mem
        .write_u32(at + 8, got.from.len() as u32)
        .map_err(|_| EFAULT)?;
    // No control data comes back.
    p.mem.write_u64(at + 40, 0).map_err(|_| EFAULT)?;
    let mflags = if got.truncated { MSG_TRUNC } else { 0 };
    p.mem.write_u32(at + 48, mflags).map_err(|_| EFAULT)?;
    Ok(got.n)
}

/// sendmsg(2).
pub fn sendmsg(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    sendmsg_one(p, &f, a[1], a[2] as u32)
}

/// recvmsg(2).
pub fn recvmsg(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    recvmsg_one(p, &f, a[1], a[2] as u32)
}

/// sendmmsg(2): `struct mmsghdr` is a msghdr and the count sent (64 bytes).
pub fn sendmmsg(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    let n = (a[2] as u32).min(1024) as u64;
    let mut done = 0;
    while done < n {
        let at = a[1] + done * 64;
        match sendmsg_one(p, &f, at, a[3] as u32) {
            Ok(k) => p.mem.write_u32(at + 56, k as u32).map_err(|_| EFAULT)?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
    }
    Ok(done)
}

/// recvmmsg(2). After the first message, receiving stops at the first that would wait
/// (as with `MSG_WAITFORONE`): nothing else could send more while this caller waits.
pub fn recvmmsg(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    let n = (a[2] as u32).min(1024) as u64;
    let mut flags = a[3] as u32 & !MSG_WAITFORONE;
    let mut done = 0;
    while done < n {
        let at = a[1] + done * 64;
        match recvmsg_one(p, &f, at, flags) {
            Ok(k) => p.mem.write_u32(at + 56, k as u32).map_err(|_| EFAULT)?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
        flags |= MSG_DONTWAIT;
    }
    Ok(done)
}

/// Reads an `int` option value.
fn int_opt(p: &mut Process, val: u64, len: u64) -> Result<i32, Errno> {
    if len < 4 {
        return Err(EINVAL);
    }
    Ok(p.mem.read_u32(val).map_err(|_| EFAULT)? as i32)
}

/// A `struct timeval` option value, in nanoseconds.
fn timeval_opt(p: &mut Process, val: u64, len: u64) -> Result<u64, Errno> {
    if len < 16 {
        return Err(EINVAL);
    }
    let sec = p.mem.read_u64(val).map_err(|_| EFAULT)? as i64;
    let usec = p.mem.read_u64(val + 8).map_err(|_| EFAULT)? as i64;
    if !(0..1_000_000).contains(&usec) {
        return Err(EDOM);
    }
    if sec < 0 {
        return Ok(0);
    }
    Ok((sec as u64).saturating_mul(1_000_000_000) + usec as u64 * 1000)
}

/// setsockopt(2).
pub fn setsockopt(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    let core = &sock(&f).core;
    let (level, opt, val, len) = (a[1], a[2] as u32, a[3], a[4]);
    if level != SOL_SOCKET {
        p.log_once(format!(
            "setsockopt: level {level} option {opt} is not supported: ENOPROTOOPT"
        ));
        return Err(ENOPROTOOPT);
    }
    match opt {
        SO_SNDBUF | SO_SNDBUFFORCE | SO_RCVBUF | SO_RCVBUFFORCE => {
            let v = int_opt(p, val, len)?.max(0) as usize;
            // As Linux: capped at wmem_max/rmem_max unless forced, doubled for overhead.
            let force = opt == SO_SNDBUFFORCE || opt == SO_RCVBUFFORCE;
            let v = if force { v } else { v.min(unix::SOCK_BUF) };
            if opt == SO_SNDBUF || opt == SO_SNDBUFFORCE {
                core.sndbuf.set((v * 2).max(4608));
            } else {
                core.rcvbuf.set((v * 2).max(2304));
            }
        }
        SO_RCVTIMEO | SO_RCVTIMEO_NEW => core.rcvtimeo.set(timeval_opt(p, val, len)?),
        SO_SNDTIMEO | SO_SNDTIMEO_NEW => core.sndtimeo.set(timeval_opt(p, val, len)?),
        o if RECORDED_OPTS.contains(&o) => {
            let v = int_opt(p, val, len)?;
            core.int_opts.borrow_mut().insert(o, v);
        }
        o => {
            p.log_once(format!(
                "setsockopt: SOL_SOCKET option {o} is not supported: ENOPROTOOPT"
            ));
            return Err(ENOPROTOOPT);
        }
    }
    Ok(0)
}

/// getsockopt(2).
pub fn getsockopt(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let f = sock_file(p, a[0] as i32)?;
    let s = sock(&f);
    let core = &s.core;
    let (level, opt, val, lenp) = (a[1], a[2] as u32, a[3], a[4]);
    let cap = p.mem.read_u32(lenp).map_err(|_| EFAULT)? as i32;
    if cap < 0 {
        return Err(EINVAL);
    }
    if level != SOL_SOCKET {
        p.log_once(format!(
            "getsockopt: level {level} option {opt} is not supported: ENOPROTOOPT"
        ));
        return Err(ENOPROTOOPT);
    }
    let int = |v: i64| (v as i32).to_le_bytes().to_vec();
    let timeval = |ns: u64| {
        let mut b = (ns / 1_000_000_000).to_le_bytes().to_vec();
        b.extend_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
        b
    };
    let bytes = match opt {
        SO_TYPE => int(s.ty().raw() as i64),
        SO_DOMAIN => int(AF_UNIX as i64),
        SO_PROTOCOL => int(0),
        SO_ERROR => int(s.take_error() as i64),
        SO_ACCEPTCONN => int(s.is_listening() as i64),
        SO_SNDBUF => int(core.sndbuf.get() as i64),
        SO_RCVBUF => int(core.rcvbuf.get() as i64),
        SO_RCVTIMEO | SO_RCVTIMEO_NEW => timeval(core.rcvtimeo.get()),
        SO_SNDTIMEO | SO_SNDTIMEO_NEW => timeval(core.sndtimeo.get()),
        SO_PEERCRED => {
            // Unconnected: no pid, the overflow ids (as Linux).
            let c = s.peer_cred().unwrap_or(Ucred {
                pid: 0,
                uid: 65534,
                gid: 65534,
            });
            let mut b = c.pid.to_le_bytes().to_vec();
            b.extend_from_slice(&c.uid.to_le_bytes());
            b.extend_from_slice(&c.gid.to_le_bytes());
            b
        }
        o if RECORDED_OPTS.contains(&o) => {
            int(core.int_opts.borrow().get(&o).copied().unwrap_or(0) as i64)
        }
        o => {
            p.log_once(format!(
                "getsockopt: SOL_SOCKET option {o} is not supported: ENOPROTOOPT"
            ));
            return Err(ENOPROTOOPT);
        }
    };
    let k = bytes.len().min(cap as usize);
    p.mem.write_bytes(val, &bytes[..k]).map_err(|_| EFAULT)?;
    p.mem.write_u32(lenp, k as u32).map_err(|_| EFAULT)?;
    Ok(0)
}
