//! Unix domain sockets (unix(7)): socket pairs, and sockets bound to a path or an
//! abstract name that others in this instance connect or send to.
//!
//! Linux semantics emulated:
//! - `SOCK_STREAM` is a byte stream each way; `SOCK_SEQPACKET` keeps message boundaries
//!   on a connection; `SOCK_DGRAM` sends datagrams to the peer or to an address. A message
//!   longer than the reader's buffer is cut and the rest dropped (`MSG_TRUNC` reports it).
//! - Each socket has a receive queue (a `pipe::Pipe`). On a connection the socket counts
//!   as the reader of its own queue and as the writer of its peer's, until it is closed or
//!   shut down that way: the peer then reads end of file, or gets `EPIPE` on sending.
//! - Closing a connected stream socket with unread data makes the peer's next read fail
//!   with `ECONNRESET` (Linux sets `sk_err`), as does closing a listener with
//!   connections not yet accepted.
//! - `connect` to a listening socket queues a new connection for `accept` at once (it
//!   does not wait for the accept), up to the backlog.
//! - Queues are bounded by the default socket buffer (`SO_SNDBUF`, 212992 bytes); a
//!   datagram is also charged a fixed overhead, standing in for Linux's `skb` cost.
//!   `SO_SNDBUF`/`SO_RCVBUF` are recorded and reported (doubled, as Linux) but do not
//!   resize queues.
//!
//! Waiting is the distinct outcome `EBLOCK` (see `errno.rs`), `EAGAIN` when non-blocking.
//! No control messages: passing descriptors (`SCM_RIGHTS`) and credentials is refused by
//! the system calls.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use super::errno::*;
use super::fd::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP, POLLRDNORM, POLLWRNORM};
use super::pipe::{anon_ino, Pipe, Queue};
use crate::vfs::Node;

/// Linux `wmem_default`/`rmem_default`: the default socket buffer.
pub const SOCK_BUF: usize = 212992;
/// What a queued datagram costs beyond its payload (roughly an `skb`'s truesize).
const PACKET_COST: usize = 512;
/// `net.core.somaxconn`.
pub const SOMAXCONN: usize = 4096;

pub const SOCK_STREAM: u32 = 1;
pub const SOCK_DGRAM: u32 = 2;
pub const SOCK_SEQPACKET: u32 = 5;

/// Own shutdown bits (Linux `sk_shutdown`).
const RCV_SHUTDOWN: u8 = 1;
const SEND_SHUTDOWN: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockType {
    Stream,
    Dgram,
    Seqpacket,
}

impl SockType {
    /// The socket type for `socket(2)`'s type (without flags); `SOCK_RAW` is a datagram
    /// socket for `AF_UNIX`, as on Linux.
    pub fn from_raw(t: u32) -> Option<SockType> {
        match t {
            SOCK_STREAM => Some(SockType::Stream),
            SOCK_DGRAM | 3 => Some(SockType::Dgram),
            SOCK_SEQPACKET => Some(SockType::Seqpacket),
            _ => None,
        }
    }

    pub fn raw(self) -> u32 {
        match self {
            SockType::Stream => SOCK_STREAM,
            SockType::Dgram => SOCK_DGRAM,
            SockType::Seqpacket => SOCK_SEQPACKET,
        }
    }

    fn connection(self) -> bool {
        self != SockType::Dgram
    }
}

/// Who made a socket, for `SO_PEERCRED`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// A socket address: the bytes of `sun_path` (a path without its NUL, or an abstract
/// name starting with a 0 byte).
pub type Addr = Vec<u8>;

/// The part of a socket others reach: its receive queue, name, and listen queue.
pub struct Core {
    pub ty: SockType,
    pub ino: u64,
    rx: Rc<Pipe>,
    /// Datagram sockets: the sender of each queued datagram, in step with `rx`.
    senders: RefCell<VecDeque<Option<Addr>>>,
    addr: RefCell<Option<Addr>>,
    /// Listening: connections made but not yet accepted, and how many may wait.
    listen: RefCell<Option<(VecDeque<UnixSocket>, usize)>>,
    /// A pending error (`sk_err`), reported once; 0 for none.
    err: Cell<Errno>,
    shutdown: Cell<u8>,
    /// The socket's file is closed.
    closed: Cell<bool>,
    cred: Ucred,
    /// `SO_SNDBUF`, `SO_RCVBUF` as Linux reports them.
    pub sndbuf: Cell<usize>,
    pub rcvbuf: Cell<usize>,
    /// `SO_RCVTIMEO`, `SO_SNDTIMEO` in nanoseconds (0: none).
    pub rcvtimeo: Cell<u64>,
    pub sndtimeo: Cell<u64>,
    /// Integer options that change nothing for a Unix socket (`SO_REUSEADDR`,
    /// `SO_KEEPALIVE`, `SO_PASSCRED`...), kept so that `getsockopt` reads them back.
    pub int_opts: RefCell<std::collections::BTreeMap<u32, i32>>,
    /// The socket file a path binding made: held so that its inode (the lookup key)
    /// stays unique while the binding lives.
    bound_node: RefCell<Option<Node>>,
    generation: super::wake::Generation,
}

impl Core {
    fn new(ty: SockType, cred: Ucred) -> Rc<Core> {
        let queue = match ty {
            SockType::Stream => Queue::stream(SOCK_BUF),
            _ => Queue::packets(SOCK_BUF, PACKET_COST),
        };
        let rx = Pipe::new(queue, None, cred.uid, cred.gid);
        rx.add_reader();
        Rc::new(Core {
            ty,
            ino: anon_ino(),
            rx,
            senders: RefCell::new(VecDeque::new()),
            addr: RefCell::new(None),
            listen: RefCell::new(None),
            err: Cell::new(0),
            shutdown: Cell::new(0),
            closed: Cell::new(false),
            cred,
            sndbuf: Cell::new(SOCK_BUF),
            rcvbuf: Cell::new(SOCK_BUF),
            rcvtimeo: Cell::new(0),
            sndtimeo: Cell::new(0),
            int_opts: RefCell::new(std::collections::BTreeMap::new()),
            bound_node: RefCell::new(None),
            generation: super::wake::Generation::new(),
        })
    }

    fn bump(&self) {
        self.generation.bump();
    }

    fn take_err(&self) -> Option<Errno> {
        let e = self.err.replace(0);
        (e != 0).then_some(e)
    }

    fn reads_shut(&self) -> bool {
        self.shutdown.get() & RCV_SHUTDOWN != 0
    }

    fn sends_shut(&self) -> bool {
        self.shutdown.get() & SEND_SHUTDOWN != 0
    }
}

/// What a received message was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Bytes copied to the caller.
    pub copied: usize,
    /// The whole message's length (more than `copied` if it was cut).
    pub len: usize,
    /// The sender's address, for datagrams from a bound socket.
    pub from: Option<Addr>,
}

/// Receive options (`MSG_*` flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecvOpts {
    pub nonblock: bool,
    pub peek: bool,
    pub waitall: bool,
}

/// One Unix socket, as an open file holds it.
pub struct UnixSocket {
    pub core: Rc<Core>,
    /// The connected peer (connections), or the default destination (datagrams).
    peer: RefCell<Option<Rc<Core>>>,
    /// Registered as the writer of the peer's queue (a connection, until shut down).
    writing: Cell<bool>,
    /// Registered as the reader of our queue (until shut down or closed).
    reading: Cell<bool>,
    /// A server end not yet accepted: closing it resets the client.
    embryo: Cell<bool>,
}

impl UnixSocket {
    /// A new unconnected socket.
    pub fn new(ty: SockType, cred: Ucred) -> UnixSocket {
        UnixSocket {
            core: Core::new(ty, cred),
            peer: RefCell::new(None),
            writing: Cell::new(false),
            reading: Cell::new(true),
            embryo: Cell::new(false),
        }
    }

    /// socketpair(2): two sockets connected to each other.
    pub fn pair(ty: SockType, cred: Ucred) -> (UnixSocket, UnixSocket) {
        let a = UnixSocket::new(ty, cred);
        let b = UnixSocket::new(ty, cred);
        a.connect_to(&b);
        (a, b)
    }

    fn connect_to(&self, other: &UnixSocket) {
        *self.peer.borrow_mut() = Some(other.core.clone());
        *other.peer.borrow_mut() = Some(self.core.clone());
        if self.core.ty.connection() {
            other.core.rx.add_writer();
            self.core.rx.add_writer();
            self.writing.set(true);
            other.writing.set(true);
        }
        self.core.bump();
        other.core.bump();
    }

    pub fn ty(&self) -> SockType {
        self.core.ty
    }

    pub fn peer(&self) -> Option<Rc<Core>> {
        self.peer.borrow().clone()
    }

    pub fn is_listening(&self) -> bool {
        self.core.listen.borrow().is_some()
    }

    pub fn is_connected(&self) -> bool {
        self.peer.borrow().is_some()
    }

    pub fn local_addr(&self) -> Option<Addr> {
        self.core.addr.borrow().clone()
    }

    pub fn peer_addr(&self) -> Option<Option<Addr>> {
        self.peer.borrow().as_ref().map(|p| p.addr.borrow().clone())
    }

    pub fn peer_cred(&self) -> Option<Ucred> {
        self.peer.borrow().as_ref().map(|p| p.cred)
    }

    /// `SO_ERROR`: the pending error, cleared.
    pub fn take_error(&self) -> Errno {
        self.core.take_err().unwrap_or(0)
    }

    /// Changes whenever something a waiter could see changed.
    pub fn generation(&self) -> u64 {
        let mut g = self.core.generation.get() + self.core.rx.generation();
        if let Some(p) = self.peer.borrow().as_ref() {
            g += p.rx.generation() + p.generation.get();
        }
        g
    }

    /// Bytes waiting to be read (`FIONREAD`): for messages, the next one's length.
    pub fn readable_bytes(&self) -> usize {
        self.core.rx.queue().next_len()
    }

    /// Bytes sent and not yet read by the peer (`SIOCOUTQ`).
    pub fn unread_sent(&self) -> usize {
        self.peer.borrow().as_ref().map_or(0, |p| {
            if self.core.ty.connection() {
                p.rx.queue().len()
            } else {
                0
            }
        })
    }

    /// Gives the socket `addr` (bind(2)); for a path, `node` is the socket file the
    /// caller made and `key` its key.
    pub fn bind(&self, addr: Addr, key: BindKey, node: Option<Node>) -> Result<(), Errno> {
        if self.core.addr.borrow().is_some() {
            return Err(EINVAL);
        }
        NAMES.with(|m| {
            let mut m = m.borrow_mut();
            if m.get(&key).is_some_and(|w| w.strong_count() > 0) {
                return Err(EADDRINUSE);
            }
            m.retain(|_, w| w.strong_count() > 0);
            m.insert(key, Rc::downgrade(&self.core));
            Ok(())
        })?;
        *self.core.addr.borrow_mut() = Some(addr);
        *self.core.bound_node.borrow_mut() = node;
        Ok(())
    }

    /// listen(2).
    pub fn listen(&self, backlog: i32) -> Result<(), Errno> {
        if !self.core.ty.connection() {
            return Err(EOPNOTSUPP);
        }
        if self.core.addr.borrow().is_none() || self.is_connected() {
            return Err(EINVAL);
        }
        let max = (backlog.max(0) as usize).min(SOMAXCONN);
        let mut l = self.core.listen.borrow_mut();
        match l.as_mut() {
            Some((_, m)) => *m = max,
            None => *l = Some((VecDeque::new(), max)),
        }
        self.core.bump();
        Ok(())
    }

    /// connect(2) for a connection socket to `target` (found by address).
    pub fn connect(&self, target: &Rc<Core>, cred: Ucred, nonblock: bool) -> Result<(), Errno> {
        if self.is_listening() {
            return Err(EINVAL);
        }
        if self.is_connected() {
            return Err(EISCONN);
        }
        if target.ty != self.core.ty {
            return Err(EPROTOTYPE);
        }
        if !self.core.ty.connection() {
            *self.peer.borrow_mut() = Some(target.clone());
            self.core.bump();
            return Ok(());
        }
        let mut l = target.listen.borrow_mut();
        let Some((queue, max)) = l.as_mut() else {
            return Err(ECONNREFUSED);
        };
        if target.closed.get() {
            return Err(ECONNREFUSED);
        }
        // Linux lets one more than the backlog wait.
        if queue.len() > *max {
            return Err(if nonblock { EAGAIN } else { EBLOCK });
        }
        let server = UnixSocket::new(self.core.ty, cred);
        *server.core.addr.borrow_mut() = target.addr.borrow().clone();
        server.embryo.set(true);
        self.connect_to(&server);
        queue.push_back(server);
        target.bump();
        Ok(())
    }

    /// accept(2): the next connection made to this listening socket.
    pub fn accept(&self, nonblock: bool) -> Result<UnixSocket, Errno> {
        let mut l = self.core.listen.borrow_mut();
        let Some((queue, _)) = l.as_mut() else {
            return Err(EINVAL);
        };
        match queue.pop_front() {
            Some(s) => {
                s.embryo.set(false);
                self.core.bump();
                Ok(s)
            }
            None => Err(if nonblock { EAGAIN } else { EBLOCK }),
        }
    }

    /// shutdown(2): `how` is 0 (reads), 1 (writes) or 2 (both).
    pub fn shutdown(&self, how: u32) -> Result<(), Errno> {
        let bits = match how {
            0 => RCV_SHUTDOWN,
            1 => SEND_SHUTDOWN,
            2 => RCV_SHUTDOWN | SEND_SHUTDOWN,
            _ => return Err(EINVAL),
        };
        if self.core.ty.connection() && !self.is_connected() {
            return Err(ENOTCONN);
        }
        self.core.shutdown.set(self.core.shutdown.get() | bits);
        if self.core.ty.connection() {
            if bits & RCV_SHUTDOWN != 0 && self.reading.replace(false) {
                self.core.rx.remove_reader();
            }
            if bits & SEND_SHUTDOWN != 0 && self.writing.replace(false) {
                if let Some(p) = self.peer.borrow().as_ref() {
                    p.rx.remove_writer();
                }
            }
        }
        self.core.bump();
        Ok(())
    }

    /// Sends one message (or stream bytes). `to`: the destination of a datagram sent with
    /// an address. `EPIPE` asks the caller to raise `SIGPIPE` (unless `MSG_NOSIGNAL`).
    pub fn send(&self, data: &[u8], to: Option<Rc<Core>>, nonblock: bool) -> Result<usize, Errno> {
        let full = if nonblock { EAGAIN } else { EBLOCK };
        let core = &self.core;
        match core.ty {
            SockType::Stream | SockType::Seqpacket => {
                if to.is_some() {
                    return Err(if self.is_connected() {
                        EISCONN
                    } else {
                        EOPNOTSUPP
                    });
                }
                let peer = self.peer().ok_or(ENOTCONN)?;
                if core.sends_shut() || !self.writing.get() || peer.rx.readers() == 0 {
                    return Err(EPIPE);
                }
                if core.ty == SockType::Stream {
                    if data.is_empty() {
                        return Ok(0);
                    }
                    let n = peer.rx.queue_mut().push_bytes(data);
                    if n == 0 {
                        return Err(full);
                    }
                    peer.rx.changed();
                    Ok(n)
                } else {
                    if data.len() > core.sndbuf.get() - 32 {
                        return Err(EMSGSIZE);
                    }
                    if !peer.rx.queue_mut().push_packet(data) {
                        return Err(full);
                    }
                    peer.rx.changed();
                    Ok(data.len())
                }
            }
            SockType::Dgram => {
                if core.sends_shut() {
                    return Err(EPIPE);
                }
                let connected = self.peer();
                let target = match to.or_else(|| connected.clone()) {
                    Some(t) => t,
                    None => return Err(ENOTCONN),
                };
                if data.len() > core.sndbuf.get() - 32 {
                    return Err(EMSGSIZE);
                }
                if target.closed.get() {
                    if connected.is_some_and(|c| Rc::ptr_eq(&c, &target)) {
                        // The peer is gone: Linux disconnects and says so once.
                        *self.peer.borrow_mut() = None;
                    }
                    return Err(ECONNREFUSED);
                }
                if target.ty != SockType::Dgram {
                    return Err(EPROTOTYPE);
                }
                if target.reads_shut() {
                    return Err(EPIPE);
                }
                if !target.rx.queue_mut().push_packet(data) {
                    return Err(full);
                }
                target.rx.changed();
                target
                    .senders
                    .borrow_mut()
                    .push_back(core.addr.borrow().clone());
                Ok(data.len())
            }
        }
    }

    /// Receives into `buf`.
    pub fn recv(&self, buf: &mut [u8], o: RecvOpts) -> Result<Received, Errno> {
        let core = &self.core;
        if self.is_listening() {
            return Err(EINVAL);
        }
        let rx = &core.rx;
        let empty = rx.queue().is_empty();
        let eof =
            core.reads_shut() || (core.ty.connection() && self.is_connected() && rx.writers() == 0);
        if empty {
            if let Some(e) = core.take_err() {
                return Err(e);
            }
            if eof {
                return Ok(Received {
                    copied: 0,
                    len: 0,
                    from: None,
                });
            }
            if core.ty.connection() && !self.is_connected() {
                return Err(EINVAL);
            }
            return Err(if o.nonblock { EAGAIN } else { EBLOCK });
        }
        if core.ty == SockType::Stream
            && o.waitall
            && !o.nonblock
            && !eof
            && rx.queue().len() < buf.len()
        {
            // The whole request cannot be met yet: wait without taking anything.
            return Err(EBLOCK);
        }
        let had = !rx.queue().is_empty();
        let (copied, len) = rx.queue_mut().pop(buf, o.peek);
        if had && !o.peek {
            rx.changed();
        }
        let from = if core.ty == SockType::Dgram {
            let mut s = core.senders.borrow_mut();
            if o.peek {
                s.front().cloned().flatten()
            } else {
                s.pop_front().flatten()
            }
        } else {
            None
        };
        Ok(Received { copied, len, from })
    }

    /// Poll events that hold now.
    pub fn poll(&self) -> u16 {
        let core = &self.core;
        if let Some((queue, _)) = core.listen.borrow().as_ref() {
            return if queue.is_empty() {
                0
            } else {
                POLLIN | POLLRDNORM
            };
        }
        let mut ev = 0;
        if core.err.get() != 0 {
            ev |= POLLERR;
        }
        let peer = self.peer();
        let conn = core.ty.connection();
        let rcv_shut = core.reads_shut() || (conn && peer.is_some() && core.rx.writers() == 0);
        let snd_shut = core.sends_shut()
            || (conn
                && peer
                    .as_ref()
                    .is_some_and(|p| p.rx.readers() == 0 || p.closed.get()));
        if rcv_shut {
            ev |= POLLRDHUP | POLLIN | POLLRDNORM;
        }
        if (rcv_shut && snd_shut) || (conn && peer.is_none()) {
            ev |= POLLHUP;
        }
        if !core.rx.queue().is_empty() {
            ev |= POLLIN | POLLRDNORM;
        }
        // Writable while what we have in flight is at most a quarter of the buffer (Linux
        // `unix_writable`), and for datagrams while the destination has room.
        let writable = match &peer {
            Some(p) if conn => p.rx.queue().len() * 4 <= core.sndbuf.get(),
            Some(p) => p.rx.queue().room() > PACKET_COST,
            None => true,
        };
        if writable {
            ev |= POLLOUT | POLLWRNORM;
        }
        ev
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let core = &self.core;
        core.closed.set(true);
        if self.reading.replace(false) {
            core.rx.remove_reader();
        }
        let peer = self.peer.borrow_mut().take();
        if let Some(p) = peer {
            if self.writing.replace(false) {
                p.rx.remove_writer();
            }
            if core.ty.connection() && (!core.rx.queue().is_empty() || self.embryo.get()) {
                p.err.set(ECONNRESET);
            }
            p.bump();
        }
        // Connections nobody accepted are closed with the listener (resetting their
        // clients, through the drop of each).
        let pending = core.listen.borrow_mut().take();
        drop(pending);
        core.bump();
    }
}

/// How a bound address is found: a socket file (by the address of its inode) or an
/// abstract name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BindKey {
    Node(usize),
    Abstract(Vec<u8>),
}

impl BindKey {
    pub fn node(n: &Node) -> BindKey {
        BindKey::Node(Rc::as_ptr(n) as usize)
    }
}

thread_local! {
    /// Bound sockets by address. A socket file's key is the address of its inode, which
    /// the binding socket's address keeps alive for as long as the entry can be live.
    static NAMES: RefCell<HashMap<BindKey, Weak<Core>>> = RefCell::new(HashMap::new());
    static AUTOBIND: Cell<u32> = const { Cell::new(0) };
}

/// The live socket bound at `key`, if any.
pub fn lookup(key: &BindKey) -> Option<Rc<Core>> {
    NAMES.with(|m| {
        m.borrow()
            .get(key)
            .and_then(Weak::upgrade)
            .filter(|c| !c.closed.get())
    })
}

/// A fresh abstract name for autobind (Linux: five hex digits after the 0 byte).
pub fn autobind_name() -> Addr {
    let n = AUTOBIND.with(|c| {
        let v = c.get();
        c.set(v.wrapping_add(1) & 0xfffff);
        v
    });
    let mut a = vec![0u8];
    a.extend_from_slice(format!("{n:05x}").as_bytes());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Ucred = Ucred {
        pid: 1,
        uid: 0,
        gid: 0,
    };
    const NB: RecvOpts = RecvOpts {
        nonblock: true,
        peek: false,
        waitall: false,
    };

    fn recv(s: &UnixSocket, n: usize) -> Result<Vec<u8>, Errno> {
        let mut b = vec![0u8; n];
        let r = s.recv(&mut b, NB)?;
        b.truncate(r.copied);
        Ok(b)
    }

    #[test]
    fn stream_pair_both_ways_and_eof_on_close() {
        let (a, b) = UnixSocket::pair(SockType::Stream, ME);
        assert_eq!(a.send(b"ping", None, true), Ok(4));
        assert_eq!(a.send(b"pong", None, true), Ok(4));
        assert_eq!(
            recv(&b, 100).unwrap(),
            b"pingpong",
            "a stream merges writes"
        );
        assert_eq!(b.send(b"back", None, true), Ok(4));
        assert_eq!(recv(&a, 2).unwrap(), b"ba");
        assert_eq!(recv(&a, 9).unwrap(), b"ck");
        assert_eq!(recv(&a, 9), Err(EAGAIN));
        assert_eq!(a.poll() & POLLIN, 0);
        assert_eq!(a.poll() & POLLOUT, POLLOUT);
        drop(b);
        assert_eq!(
            recv(&a, 9).unwrap(),
            b"",
            "end of file once the peer is gone"
        );
        assert_eq!(a.send(b"x", None, true), Err(EPIPE));
        assert_eq!(a.poll() & (POLLHUP | POLLIN), POLLHUP | POLLIN);
    }

    #[test]
    fn closing_with_unread_data_resets_the_peer() {
        let (a, b) = UnixSocket::pair(SockType::Stream, ME);
        a.send(b"unread", None, true).unwrap();
        drop(b);
        assert_eq!(a.poll() & POLLERR, POLLERR);
        assert_eq!(recv(&a, 9), Err(ECONNRESET));
        assert_eq!(recv(&a, 9).unwrap(), b"", "the error is reported once");
    }

    #[test]
    fn shutdown_each_way() {
        let (a, b) = UnixSocket::pair(SockType::Stream, ME);
        a.send(b"last", None, true).unwrap();
        a.shutdown(1).unwrap();
        assert_eq!(a.send(b"more", None, true), Err(EPIPE));
        assert_eq!(recv(&b, 9).unwrap(), b"last");
        assert_eq!(
            recv(&b, 9).unwrap(),
            b"",
            "b sees end of file after the data"
        );
        assert_eq!(b.poll() & POLLRDHUP, POLLRDHUP);
        // b can still talk to a.
        assert_eq!(b.send(b"reply", None, true), Ok(5));
        assert_eq!(recv(&a, 9).unwrap(), b"reply");
        b.shutdown(0).unwrap();
        assert_eq!(
            a.send(b"x", None, true),
            Err(EPIPE),
            "a's writes are shut too"
        );
        assert_eq!(a.shutdown(7), Err(EINVAL));
    }

    #[test]
    fn seqpacket_keeps_boundaries_and_cuts_long_messages() {
        let (a, b) = UnixSocket::pair(SockType::Seqpacket, ME);
        a.send(b"one", None, true).unwrap();
        a.send(b"", None, true).unwrap();
        a.send(b"three", None, true).unwrap();
        assert_eq!(recv(&b, 100).unwrap(), b"one");
        assert_eq!(recv(&b, 100).unwrap(), b"", "an empty message");
        let mut small = [0u8; 2];
        let r = b.recv(&mut small, NB).unwrap();
        assert_eq!((r.copied, r.len), (2, 5));
        assert_eq!(recv(&b, 100), Err(EAGAIN), "the rest was dropped");
        let big = vec![0u8; SOCK_BUF];
        assert_eq!(a.send(&big, None, true), Err(EMSGSIZE));
        drop(a);
        assert_eq!(recv(&b, 100).unwrap(), b"");
    }

    #[test]
    fn dgram_pair_has_no_eof_and_refuses_after_close() {
        let (a, b) = UnixSocket::pair(SockType::Dgram, ME);
        a.send(b"d1", None, true).unwrap();
        drop(b);
        assert_eq!(a.send(b"d2", None, true), Err(ECONNREFUSED));
        assert_eq!(a.send(b"d3", None, true), Err(ENOTCONN));
        let (c, d) = UnixSocket::pair(SockType::Dgram, ME);
        drop(c);
        assert_eq!(
            recv(&d, 9),
            Err(EAGAIN),
            "datagram sockets never read end of file"
        );
    }

    #[test]
    fn stream_queue_fills_then_drains() {
        let (a, b) = UnixSocket::pair(SockType::Stream, ME);
        let chunk = vec![1u8; 65536];
        let mut sent = 0;
        loop {
            match a.send(&chunk, None, true) {
                Ok(n) => sent += n,
                Err(e) => {
                    assert_eq!(e, EAGAIN);
                    break;
                }
            }
        }
        assert_eq!(sent, SOCK_BUF);
        assert_eq!(a.send(&chunk, None, false), Err(EBLOCK));
        assert_eq!(a.poll() & POLLOUT, 0);
        let mut buf = vec![0u8; SOCK_BUF];
        assert_eq!(b.recv(&mut buf, NB).unwrap().copied, SOCK_BUF);
        assert_eq!(a.poll() & POLLOUT, POLLOUT);
    }

    #[test]
    fn listen_connect_accept() {
        let l = UnixSocket::new(SockType::Stream, ME);
        let key = BindKey::Abstract(b"\0test-listen".to_vec());
        assert_eq!(l.listen(1), Err(EINVAL), "not bound");
        l.bind(b"\0test-listen".to_vec(), key.clone(), None)
            .unwrap();
        let other = UnixSocket::new(SockType::Stream, ME);
        assert_eq!(
            other.bind(b"\0test-listen".to_vec(), key.clone(), None),
            Err(EADDRINUSE)
        );
        let target = lookup(&key).unwrap();
        let c0 = UnixSocket::new(SockType::Stream, ME);
        assert_eq!(
            c0.connect(&target, ME, true),
            Err(ECONNREFUSED),
            "not listening"
        );
        l.listen(1).unwrap();
        let c1 = UnixSocket::new(SockType::Stream, ME);
        let c2 = UnixSocket::new(SockType::Stream, ME);
        let c3 = UnixSocket::new(SockType::Stream, ME);
        c1.connect(&target, ME, true).unwrap();
        c2.connect(&target, ME, true).unwrap();
        assert_eq!(
            c3.connect(&target, ME, true),
            Err(EAGAIN),
            "backlog 1 holds two"
        );
        assert_eq!(l.poll(), POLLIN | POLLRDNORM);
        c1.send(b"hi", None, true).unwrap();
        let s1 = l.accept(true).unwrap();
        assert_eq!(recv(&s1, 9).unwrap(), b"hi");
        assert_eq!(c1.peer_addr(), Some(Some(b"\0test-listen".to_vec())));
        assert_eq!(s1.local_addr(), Some(b"\0test-listen".to_vec()));
        // Closing the listener resets the connection nobody accepted.
        drop(l);
        assert_eq!(recv(&c2, 9), Err(ECONNRESET));
        assert!(lookup(&key).is_none(), "a closed socket is not found");
        assert_eq!(recv(&c1, 9), Err(EAGAIN), "accepted connections live on");
    }

    #[test]
    fn dgram_to_an_address_carries_the_sender() {
        let server = UnixSocket::new(SockType::Dgram, ME);
        let skey = BindKey::Abstract(b"\0test-dgram-srv".to_vec());
        server
            .bind(b"\0test-dgram-srv".to_vec(), skey.clone(), None)
            .unwrap();
        let client = UnixSocket::new(SockType::Dgram, ME);
        client
            .bind(
                b"\0test-dgram-cli".to_vec(),
                BindKey::Abstract(b"\0test-dgram-cli".to_vec()),
                None,
            )
            .unwrap();
        let anon = UnixSocket::new(SockType::Dgram, ME);
        let to = lookup(&skey).unwrap();
        assert_eq!(anon.send(b"x", None, true), Err(ENOTCONN));
        client.send(b"from client", Some(to.clone()), true).unwrap();
        anon.send(b"from anon", Some(to), true).unwrap();
        let mut b = [0u8; 64];
        let r = server.recv(&mut b, NB).unwrap();
        assert_eq!(&b[..r.copied], b"from client");
        assert_eq!(r.from, Some(b"\0test-dgram-cli".to_vec()));
        let r = server.recv(&mut b, NB).unwrap();
        assert_eq!(&b[..r.copied], b"from anon");
        assert_eq!(r.from, None);
    }
}
