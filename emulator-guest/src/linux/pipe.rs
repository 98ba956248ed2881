//! Pipes: anonymous pipes (`pipe2`), FIFOs, and the byte queues behind Unix sockets.
//!
//! Linux semantics emulated (pipe(7)):
//! - a pipe holds up to its capacity (64 KiB by default, `F_SETPIPE_SZ` changes it);
//! - a write of at most `PIPE_BUF` (4096) bytes is atomic: it goes in whole or waits;
//!   a larger write takes what fits;
//! - a read returns what is there (at most what was asked); with no data it returns 0
//!   (end of file) once every write end is closed, else it waits;
//! - a write with no read end open fails with `EPIPE` (the caller raises `SIGPIPE`);
//! - `O_DIRECT` ("packet mode", Linux 3.4): each write of up to `PIPE_BUF` bytes is one
//!   packet, a read returns at most one packet and drops what of it did not fit.
//!
//! "Waits" is the distinct outcome `EBLOCK` (see `errno.rs`) when the end is in blocking
//! mode, `EAGAIN` with `O_NONBLOCK`. The objects here never wait themselves: a caller
//! that gets `EBLOCK` has changed nothing and may retry the same call later.
//!
//! A pipe is shared by `Rc`: each open end (`PipeEnd`) counts as a reader and/or a
//! writer until it is dropped, so the counts are right however many processes hold it.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use super::errno::*;
use super::fd::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::vfs::{Node, Timespec};

/// Writes up to this size are atomic (`PIPE_BUF`).
pub const PIPE_BUF: usize = 4096;
/// A new pipe's capacity (16 pages, as Linux).
pub const PIPE_DEF_SIZE: usize = 65536;
/// `/proc/sys/fs/pipe-max-size`: the most an unprivileged `F_SETPIPE_SZ` may ask for.
pub const PIPE_MAX_SIZE: usize = 1 << 20;
const PAGE: usize = 4096;

/// A bounded FIFO of bytes, optionally kept as separate packets.
#[derive(Debug)]
pub struct Queue {
    data: VecDeque<u8>,
    /// Packet mode: the length of each queued packet, oldest first.
    packets: Option<VecDeque<usize>>,
    capacity: usize,
    /// Bytes each packet costs beyond its payload (a socket buffer's bookkeeping), so that
    /// even empty datagrams fill a queue eventually.
    per_packet: usize,
}

impl Queue {
    pub fn stream(capacity: usize) -> Queue {
        Queue {
            data: VecDeque::new(),
            packets: None,
            capacity,
            per_packet: 0,
        }
    }

    pub fn packets(capacity: usize, per_packet: usize) -> Queue {
        Queue {
            data: VecDeque::new(),
            packets: Some(VecDeque::new()),
            capacity,
            per_packet,
        }
    }

    pub fn is_packet(&self) -> bool {
        self.packets.is_some()
    }

    /// Bytes of payload queued.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// `true` if there is nothing to read (a queued empty packet is something).
    pub fn is_empty(&self) -> bool {
        match &self.packets {
            Some(p) => p.is_empty(),
            None => self.data.is_empty(),
        }
    }

    /// The size of the next packet (packet mode), or of all queued bytes.
    pub fn next_len(&self) -> usize {
        match &self.packets {
            Some(p) => p.front().copied().unwrap_or(0),
            None => self.data.len(),
        }
    }

    fn charged(&self) -> usize {
        self.data.len() + self.packets.as_ref().map_or(0, |p| p.len() * self.per_packet)
    }

    /// Room left, in bytes.
    pub fn room(&self) -> usize {
        self.capacity.saturating_sub(self.charged())
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the capacity; `EBUSY` if more than that is queued.
    pub fn set_capacity(&mut self, capacity: usize) -> Result<(), Errno> {
        if self.charged() > capacity {
            return Err(EBUSY);
        }
        self.capacity = capacity;
        Ok(())
    }

    /// Stream mode: appends what fits of `data`; returns how much.
    pub fn push_bytes(&mut self, data: &[u8]) -> usize {
        debug_assert!(self.packets.is_none());
        let n = data.len().min(self.room());
        self.data.extend(&data[..n]);
        n
    }

    /// Packet mode: appends `data` as one packet if it fits whole.
    pub fn push_packet(&mut self, data: &[u8]) -> bool {
        if data.len() + self.per_packet > self.room() {
            return false;
        }
        self.data.extend(data);
        self.packets
            .as_mut()
            .expect("packet queue")
            .push_back(data.len());
        true
    }

    /// Copies the front of the queue into `buf`: in stream mode as much as fits, in packet
    /// mode one packet (the part that does not fit is dropped, unless `peek`). Removes it
    /// unless `peek`. Returns (bytes copied, length of the packet or bytes available).
    pub fn pop(&mut self, buf: &mut [u8], peek: bool) -> (usize, usize) {
        let avail = self.next_len();
        let n = buf.len().min(avail);
        let (a, b) = self.data.as_slices();
        let from_a = n.min(a.len());
        buf[..from_a].copy_from_slice(&a[..from_a]);
        buf[from_a..n].copy_from_slice(&b[..n - from_a]);
        if !peek {
            match &mut self.packets {
                Some(p) => {
                    p.pop_front();
                    self.data.drain(..avail);
                }
                None => {
                    self.data.drain(..n);
                }
            }
        }
        (n, avail)
    }
}

thread_local! {
    /// Inode numbers of pipefs, sockfs and anon inodes (one counter: they only need to
    /// differ from each other).
    static NEXT_INO: Cell<u64> = const { Cell::new(4000) };
}

/// A fresh inode number for an object that lives outside the file tree.
pub fn anon_ino() -> u64 {
    NEXT_INO.with(|c| {
        let i = c.get();
        c.set(i + 1);
        i
    })
}

/// One pipe: the queue and who has it open.
pub struct Pipe {
    queue: RefCell<Queue>,
    readers: Cell<u32>,
    writers: Cell<u32>,
    /// Write ends ever opened (Linux `w_counter`): a FIFO reader that opened after the
    /// last writer left reports no `POLLHUP` until a new writer comes and goes.
    w_counter: Cell<u32>,
    /// Changes with every state change (data in or out, an end opened or closed), so an
    /// edge-triggered waiter can tell "something happened" from "still ready".
    generation: Cell<u64>,
    /// The FIFO's inode, or `None` for an anonymous pipe.
    pub node: Option<Node>,
    pub ino: u64,
    /// Owner and creation time, for `fstat` of an anonymous pipe.
    pub uid: u32,
    pub gid: u32,
    pub ctime: Timespec,
}

impl Pipe {
    pub fn new(queue: Queue, node: Option<Node>, uid: u32, gid: u32) -> Rc<Pipe> {
        Rc::new(Pipe {
            queue: RefCell::new(queue),
            readers: Cell::new(0),
            writers: Cell::new(0),
            w_counter: Cell::new(0),
            generation: Cell::new(0),
            node,
            ino: anon_ino(),
            uid,
            gid,
            ctime: Timespec::now(),
        })
    }

    /// An anonymous pipe of the default size.
    pub fn anonymous(uid: u32, gid: u32) -> Rc<Pipe> {
        Pipe::new(Queue::stream(PIPE_DEF_SIZE), None, uid, gid)
    }

    pub fn queue(&self) -> std::cell::Ref<'_, Queue> {
        self.queue.borrow()
    }

    pub fn queue_mut(&self) -> std::cell::RefMut<'_, Queue> {
        self.bump();
        self.queue.borrow_mut()
    }

    pub fn readers(&self) -> u32 {
        self.readers.get()
    }

    pub fn writers(&self) -> u32 {
        self.writers.get()
    }

    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    fn bump(&self) {
        self.generation.set(self.generation.get() + 1);
    }

    pub fn add_reader(&self) {
        self.readers.set(self.readers.get() + 1);
        self.bump();
    }

    pub fn add_writer(&self) {
        self.writers.set(self.writers.get() + 1);
        self.w_counter.set(self.w_counter.get().wrapping_add(1));
        self.bump();
    }

    pub fn remove_reader(&self) {
        self.readers.set(self.readers.get() - 1);
        self.bump();
    }

    pub fn remove_writer(&self) {
        self.writers.set(self.writers.get() - 1);
        self.bump();
    }

    /// Switches packet mode (`O_DIRECT`) on or off, keeping queued bytes.
    fn set_packet_mode(&self, on: bool) {
        let mut q = self.queue.borrow_mut();
        match (&q.packets, on) {
            (None, true) => {
                // Bytes already queued become one packet per page, as Linux's buffers.
                let mut p = VecDeque::new();
                let mut left = q.data.len();
                while left > 0 {
                    p.push_back(left.min(PAGE));
                    left -= left.min(PAGE);
                }
                q.packets = Some(p);
            }
            (Some(_), false) => q.packets = None,
            _ => {}
        }
    }
}

/// The Linux size for a `F_SETPIPE_SZ` request: at least a page, rounded up to a power
/// of two. `None` if the request is out of range.
pub fn round_pipe_size(size: u64) -> Option<usize> {
    if size > 1 << 31 {
        return None;
    }
    Some((size as usize).max(PAGE).next_power_of_two())
}

/// One open end of a pipe (an open file description of it): a reader, a writer, or both
/// (a FIFO opened `O_RDWR`).
pub struct PipeEnd {
    pub pipe: Rc<Pipe>,
    pub read: bool,
    pub write: bool,
    /// `w_counter` when this end was opened.
    w_seen: u32,
}

impl PipeEnd {
    pub fn new(pipe: Rc<Pipe>, read: bool, write: bool) -> PipeEnd {
        let w_seen = pipe.w_counter.get();
        if read {
            pipe.add_reader();
        }
        if write {
            pipe.add_writer();
        }
        PipeEnd {
            pipe,
            read,
            write,
            w_seen,
        }
    }

    /// Reads into `buf`. `EBLOCK`/`EAGAIN` if empty while a writer remains.
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let p = &self.pipe;
        if p.queue().is_empty() {
            if p.writers() == 0 {
                return Ok(0);
            }
            return Err(if nonblock { EAGAIN } else { EBLOCK });
        }
        Ok(p.queue_mut().pop(buf, false).0)
    }

    /// Writes `data`. `EPIPE` with no reader (the caller raises `SIGPIPE`); `EBLOCK` /
    /// `EAGAIN` if nothing can go in now (a write of at most `PIPE_BUF` only goes whole).
    /// A larger write may be partial; the count says how much went.
    pub fn write(&self, data: &[u8], nonblock: bool) -> Result<usize, Errno> {
        if data.is_empty() {
            return Ok(0);
        }
        let p = &self.pipe;
        if p.readers() == 0 {
            return Err(EPIPE);
        }
        let full = if nonblock { EAGAIN } else { EBLOCK };
        let mut q = p.queue.borrow_mut();
        let n = if q.is_packet() {
            let mut n = 0;
            for chunk in data.chunks(PIPE_BUF) {
                if !q.push_packet(chunk) {
                    break;
                }
                n += chunk.len();
            }
            n
        } else if data.len() <= PIPE_BUF && q.room() < data.len() {
            0
        } else {
            q.push_bytes(data)
        };
        drop(q);
        if n == 0 {
            return Err(full);
        }
        p.bump();
        Ok(n)
    }

    /// Poll events that hold now.
    pub fn poll(&self) -> u16 {
        let p = &self.pipe;
        let q = p.queue();
        let mut ev = 0;
        if self.read {
            if !q.is_empty() {
                ev |= POLLIN | POLLRDNORM;
            }
            if p.writers() == 0 && p.w_counter.get() != self.w_seen {
                ev |= POLLHUP;
            }
        }
        if self.write {
            if q.room() >= PIPE_BUF {
                ev |= POLLOUT | POLLWRNORM;
            }
            if p.readers() == 0 {
                ev |= POLLERR;
            }
        }
        ev
    }

    /// `F_SETPIPE_SZ`: returns the size set.
    pub fn set_size(&self, size: u64, privileged: bool) -> Result<usize, Errno> {
        let n = round_pipe_size(size).ok_or(EINVAL)?;
        if n > PIPE_MAX_SIZE && !privileged {
            return Err(EPERM);
        }
        self.pipe.queue_mut().set_capacity(n)?;
        Ok(n)
    }

    /// Follows `O_DIRECT` in the file's status flags.
    pub fn set_packet_mode(&self, on: bool) {
        self.pipe.set_packet_mode(on);
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        if self.read {
            self.pipe.remove_reader();
        }
        if self.write {
            self.pipe.remove_writer();
        }
    }
}

thread_local! {
    /// Live FIFOs, by the address of their inode. A FIFO's pipe exists while some end of
    /// it is open (Linux drops the data when the last one closes); the pipe holds the
    /// inode, so a key is never reused while its entry is live.
    static FIFOS: RefCell<HashMap<usize, std::rc::Weak<Pipe>>> = RefCell::new(HashMap::new());
}

/// The pipe of FIFO `node`, made if no end of it is open.
pub fn fifo_pipe(node: &Node) -> Rc<Pipe> {
    let key = Rc::as_ptr(node) as usize;
    FIFOS.with(|m| {
        let mut m = m.borrow_mut();
        if let Some(p) = m.get(&key).and_then(std::rc::Weak::upgrade) {
            return p;
        }
        m.retain(|_, w| w.strong_count() > 0);
        let (uid, gid) = {
            let meta = node.meta.borrow();
            (meta.uid, meta.gid)
        };
        let p = Pipe::new(Queue::stream(PIPE_DEF_SIZE), Some(node.clone()), uid, gid);
        m.insert(key, Rc::downgrade(&p));
        p
    })
}

/// Opens FIFO `node` as open(2) does: a reader waits for a writer and a writer for a
/// reader, unless `O_NONBLOCK` (then a writer without a reader gets `ENXIO`); `O_RDWR`
/// never waits. `EBLOCK` means the open would wait.
///
/// Linux counts a blocked opener as present while it waits, so the other side's open
/// succeeds; with the retry model a waiting opener is not counted yet. A scheduler that
/// parks openers should register them (`add_reader`/`add_writer`) while they wait.
pub fn open_fifo(node: &Node, read: bool, write: bool, nonblock: bool) -> Result<PipeEnd, Errno> {
    let pipe = fifo_pipe(node);
    match (read, write) {
        (true, false) if !nonblock && pipe.writers() == 0 => Err(EBLOCK),
        (false, true) if pipe.readers() == 0 => Err(if nonblock { ENXIO } else { EBLOCK }),
        _ => Ok(PipeEnd::new(pipe, read, write)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO inode outside any tree.
    fn fifo_node() -> Node {
        crate::vfs::tests::vfs().new_node(
            crate::bundle::mode::S_IFIFO | 0o644,
            crate::vfs::Content::Special,
        )
    }

    fn pair() -> (PipeEnd, PipeEnd) {
        let p = Pipe::anonymous(0, 0);
        (PipeEnd::new(p.clone(), true, false), PipeEnd::new(p, false, true))
    }

    #[test]
    fn data_flows_and_eof_after_last_writer() {
        let (r, w) = pair();
        assert_eq!(w.write(b"hello", false), Ok(5));
        let mut b = [0u8; 3];
        assert_eq!(r.read(&mut b, false), Ok(3));
        assert_eq!(&b, b"hel");
        assert_eq!(r.read(&mut b, false), Ok(2));
        assert_eq!(&b[..2], b"lo");
        assert_eq!(r.read(&mut b, true), Err(EAGAIN));
        assert_eq!(r.read(&mut b, false), Err(EBLOCK), "a writer remains");
        assert_eq!(r.read(&mut [], false), Ok(0), "a null read returns at once");
        drop(w);
        assert_eq!(r.read(&mut b, false), Ok(0), "end of file");
        assert_eq!(r.poll() & POLLHUP, POLLHUP);
    }

    #[test]
    fn no_reader_is_epipe() {
        let (r, w) = pair();
        drop(r);
        assert_eq!(w.write(b"x", false), Err(EPIPE));
        assert_eq!(w.write(b"", false), Ok(0), "a null write succeeds");
        assert_eq!(w.poll() & POLLERR, POLLERR);
    }

    #[test]
    fn capacity_and_pipe_buf_atomicity() {
        let (r, w) = pair();
        let big = vec![7u8; PIPE_DEF_SIZE - 100];
        assert_eq!(w.write(&big, true), Ok(big.len()));
        assert_eq!(w.poll() & POLLOUT, 0, "less than PIPE_BUF of room");
        // 200 bytes <= PIPE_BUF do not fit whole: nothing is written.
        assert_eq!(w.write(&[1; 200], true), Err(EAGAIN));
        assert_eq!(w.write(&[1; 200], false), Err(EBLOCK));
        // A large write takes what fits.
        assert_eq!(w.write(&[2; 5000], true), Ok(100));
        assert_eq!(w.write(&[2; 5000], true), Err(EAGAIN));
        let mut b = vec![0u8; 70000];
        assert_eq!(r.read(&mut b, true), Ok(PIPE_DEF_SIZE));
        assert_eq!(b[PIPE_DEF_SIZE - 1], 2);
        assert_eq!(w.poll() & POLLOUT, POLLOUT);
        assert_eq!(r.poll() & POLLIN, 0);
    }

    #[test]
    fn set_size_rounds_and_refuses_to_drop_data() {
        let (_r, w) = pair();
        assert_eq!(w.set_size(1, false), Ok(4096));
        assert_eq!(w.set_size(5000, false), Ok(8192));
        assert_eq!(w.set_size(2 << 20, false), Err(EPERM));
        assert_eq!(w.set_size(2 << 20, true), Ok(2 << 20));
        assert_eq!(w.write(&[0; 9000], true), Ok(9000));
        assert_eq!(w.set_size(4096, false), Err(EBUSY));
    }

    #[test]
    fn packet_mode_keeps_boundaries_and_drops_excess() {
        let (r, w) = pair();
        w.set_packet_mode(true);
        assert_eq!(w.write(b"abc", false), Ok(3));
        assert_eq!(w.write(b"defgh", false), Ok(5));
        let mut b = [0u8; 16];
        assert_eq!(r.read(&mut b, false), Ok(3));
        let mut small = [0u8; 2];
        assert_eq!(r.read(&mut small, false), Ok(2));
        assert_eq!(&small, b"de");
        assert_eq!(r.read(&mut b, true), Err(EAGAIN), "the rest was dropped");
        // Writes above PIPE_BUF become several packets.
        assert_eq!(w.write(&[9; PIPE_BUF + 10], false), Ok(PIPE_BUF + 10));
        assert_eq!(r.read(&mut vec![0; 9000], false), Ok(PIPE_BUF));
        assert_eq!(r.read(&mut vec![0; 9000], false), Ok(10));
    }

    #[test]
    fn queue_wraps_around() {
        let mut q = Queue::stream(8);
        let mut b = [0u8; 8];
        for round in 0..20u8 {
            assert_eq!(q.push_bytes(&[round, round + 1, round + 2]), 3);
            assert_eq!(q.pop(&mut b, false), (3, 3));
            assert_eq!(&b[..3], &[round, round + 1, round + 2]);
        }
        let mut p = Queue::packets(100, 40);
        assert!(p.push_packet(b""));
        assert!(!p.is_empty(), "an empty packet is something to read");
        assert!(p.push_packet(b"xy"));
        assert!(!p.push_packet(b"z"), "per-packet cost fills the queue");
        assert_eq!(p.pop(&mut b, true), (0, 0));
        assert_eq!(p.pop(&mut b, false), (0, 0));
        assert_eq!(p.pop(&mut b, false), (2, 2));
        assert!(p.is_empty());
    }

    #[test]
    fn fifo_opens_wait_for_the_other_side() {
        let vfs_node = fifo_node();
        assert_eq!(open_fifo(&vfs_node, true, false, false).err(), Some(EBLOCK));
        assert_eq!(open_fifo(&vfs_node, false, true, true).err(), Some(ENXIO));
        let r = open_fifo(&vfs_node, true, false, true).unwrap();
        assert_eq!(r.poll(), 0, "no writer yet: no POLLHUP");
        let w = open_fifo(&vfs_node, false, true, false).unwrap();
        assert!(Rc::ptr_eq(&r.pipe, &w.pipe));
        w.write(b"q", false).unwrap();
        drop(w);
        assert_eq!(r.poll(), POLLIN | POLLRDNORM | POLLHUP);
        drop(r);
        // All ends closed: the data is gone with the pipe.
        let rw = open_fifo(&vfs_node, true, true, false).unwrap();
        assert!(rw.pipe.queue().is_empty());
    }
}
