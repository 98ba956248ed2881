//! Pipes: anonymous pipes (`pipe2`), FIFOs, and the byte queues behind Unix sockets.
//!
//! Linux semantics emulated (pipe(7), fs/pipe.c):
//! - a pipe is a ring of page buffers, 16 by default (64 KiB; `F_SETPIPE_SZ` changes the
//!   count). A write first tops up the last page with the part of it that is not a whole
//!   number of pages, if that fits there, then takes fresh pages while there are free
//!   ones. So a write of at most `PIPE_BUF` (4096) bytes goes in whole or not at all, a
//!   larger one may go in part, and 1000-byte writes fill a 64 KiB pipe after 64000
//!   bytes, exactly as on Linux;
//! - a read takes what is there (at most what was asked), across pages; with no data it
//!   returns 0 (end of file) once every write end is closed, else it waits;
//! - a write with no read end open fails with `EPIPE` (the caller raises `SIGPIPE`);
//! - `O_DIRECT` on the writing file ("packet mode"): each write of up to a page is a
//!   packet of its own page, and a read returns at most one packet, dropping what of it
//!   did not fit.
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

/// One page buffer of a pipe.
#[derive(Debug)]
struct Page {
    /// The page's bytes up to the end of what was written.
    data: Vec<u8>,
    /// Where the unread part starts.
    off: usize,
    /// Written in packet mode: read alone, the unread rest dropped.
    packet: bool,
}

#[derive(Debug)]
enum Store {
    /// A byte stream (stream sockets).
    Bytes(VecDeque<u8>),
    /// Messages (datagram and seqpacket sockets): the bytes, and each message's length.
    Packets(VecDeque<u8>, VecDeque<usize>),
    /// A pipe's page buffers.
    Pages(VecDeque<Page>),
}

/// A bounded FIFO: a pipe's pages, or a socket's bytes or messages.
#[derive(Debug)]
pub struct Queue {
    store: Store,
    /// Bytes (a pipe's: pages times the page size).
    capacity: usize,
    /// Bytes each message costs beyond its payload (a socket buffer's bookkeeping), so
    /// that even empty datagrams fill a queue eventually.
    per_packet: usize,
}

impl Queue {
    /// A pipe's ring of `capacity / PAGE` pages.
    pub fn pages(capacity: usize) -> Queue {
        Queue {
            store: Store::Pages(VecDeque::new()),
            capacity,
            per_packet: 0,
        }
    }

    pub fn stream(capacity: usize) -> Queue {
        Queue {
            store: Store::Bytes(VecDeque::new()),
            capacity,
            per_packet: 0,
        }
    }

    pub fn packets(capacity: usize, per_packet: usize) -> Queue {
        Queue {
            store: Store::Packets(VecDeque::new(), VecDeque::new()),
            capacity,
            per_packet,
        }
    }

    /// Bytes queued (unread).
    pub fn len(&self) -> usize {
        match &self.store {
            Store::Bytes(d) | Store::Packets(d, _) => d.len(),
            Store::Pages(p) => p.iter().map(|p| p.data.len() - p.off).sum(),
        }
    }

    /// `true` if there is nothing to read (a queued empty message is something).
    pub fn is_empty(&self) -> bool {
        match &self.store {
            Store::Bytes(d) => d.is_empty(),
            Store::Packets(_, l) => l.is_empty(),
            Store::Pages(p) => p.is_empty(),
        }
    }

    /// The size of the next message, or of all queued bytes of a stream.
    pub fn next_len(&self) -> usize {
        match &self.store {
            Store::Packets(_, l) => l.front().copied().unwrap_or(0),
            _ => self.len(),
        }
    }

    fn charged(&self) -> usize {
        match &self.store {
            Store::Bytes(d) => d.len(),
            Store::Packets(d, l) => d.len() + l.len() * self.per_packet,
            Store::Pages(p) => p.len() * PAGE,
        }
    }

    /// Room left, in bytes (for a pipe, in free pages).
    pub fn room(&self) -> usize {
        self.capacity.saturating_sub(self.charged())
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the capacity; `EBUSY` if more than that is in use.
    pub fn set_capacity(&mut self, capacity: usize) -> Result<(), Errno> {
        if self.charged() > capacity {
            return Err(EBUSY);
        }
        self.capacity = capacity;
        Ok(())
    }

    /// Pipe: writes what goes in now of `data` (see the module doc); returns how much.
    pub fn write_pages(&mut self, data: &[u8], packet: bool) -> usize {
        let slots = self.capacity / PAGE;
        let Store::Pages(pages) = &mut self.store else {
            unreachable!("a pipe queue")
        };
        let mut done = 0;
        let tail = data.len() % PAGE;
        if !packet && tail != 0 {
            if let Some(last) = pages.back_mut() {
                if !last.packet && last.data.len() + tail <= PAGE {
                    last.data.extend_from_slice(&data[..tail]);
                    done = tail;
                }
            }
        }
        while done < data.len() && pages.len() < slots {
            let k = (data.len() - done).min(PAGE);
            pages.push_back(Page {
                data: data[done..done + k].to_vec(),
                off: 0,
                packet,
            });
            done += k;
        }
        done
    }

    /// Pipe: reads into `buf` across pages, stopping after a packet.
    pub fn read_pages(&mut self, buf: &mut [u8]) -> usize {
        let Store::Pages(pages) = &mut self.store else {
            unreachable!("a pipe queue")
        };
        let mut n = 0;
        while n < buf.len() {
            let Some(p) = pages.front_mut() else {
                break;
            };
            let k = (p.data.len() - p.off).min(buf.len() - n);
            buf[n..n + k].copy_from_slice(&p.data[p.off..p.off + k]);
            p.off += k;
            n += k;
            if p.packet {
                pages.pop_front();
                break;
            }
            if p.off == p.data.len() {
                pages.pop_front();
            }
        }
        n
    }

    /// Stream socket: appends what fits of `data`; returns how much.
    pub fn push_bytes(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.room());
        let Store::Bytes(d) = &mut self.store else {
            unreachable!("a byte queue")
        };
        d.extend(&data[..n]);
        n
    }

    /// Message socket: appends `data` as one message if it fits whole.
    pub fn push_packet(&mut self, data: &[u8]) -> bool {
        if data.len() + self.per_packet > self.room() {
            return false;
        }
        let Store::Packets(d, l) = &mut self.store else {
            unreachable!("a message queue")
        };
        d.extend(data);
        l.push_back(data.len());
        true
    }

    /// Socket: copies the front of the queue into `buf`: of a stream as much as fits, of
    /// messages one (the part that does not fit is dropped, unless `peek`). Removes it
    /// unless `peek`. Returns (bytes copied, length of the message or bytes available).
    pub fn pop(&mut self, buf: &mut [u8], peek: bool) -> (usize, usize) {
        let avail = self.next_len();
        let n = buf.len().min(avail);
        let (d, lens) = match &mut self.store {
            Store::Bytes(d) => (d, None),
            Store::Packets(d, l) => (d, Some(l)),
            Store::Pages(_) => unreachable!("a socket queue"),
        };
        let (a, b) = d.as_slices();
        let from_a = n.min(a.len());
        buf[..from_a].copy_from_slice(&a[..from_a]);
        buf[from_a..n].copy_from_slice(&b[..n - from_a]);
        if !peek {
            match lens {
                Some(l) => {
                    l.pop_front();
                    d.drain(..avail);
                }
                None => {
                    d.drain(..n);
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
    generation: super::wake::Generation,
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
            generation: super::wake::Generation::new(),
            node,
            ino: anon_ino(),
            uid,
            gid,
            ctime: Timespec::now(),
        })
    }

    /// An anonymous pipe of the default size.
    pub fn anonymous(uid: u32, gid: u32) -> Rc<Pipe> {
        Pipe::new(Queue::pages(PIPE_DEF_SIZE), None, uid, gid)
    }

    pub fn queue(&self) -> std::cell::Ref<'_, Queue> {
        self.queue.borrow()
    }

    /// The queue, to change: a caller that changed it says so with `changed` (a call that
    /// finds no room or nothing to take changes nothing, and must not wake anyone: two
    /// blocked senders would wake each other forever).
    pub fn queue_mut(&self) -> std::cell::RefMut<'_, Queue> {
        self.queue.borrow_mut()
    }

    /// The queue changed: wakes whoever waits on the pipe (`wake.rs`).
    pub fn changed(&self) {
        self.bump();
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
        self.generation.bump();
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
        let n = p.queue_mut().read_pages(buf);
        p.changed();
        Ok(n)
    }

    /// Writes `data`, as packets if `packet` (the writer's `O_DIRECT`). `EPIPE` with no
    /// reader (the caller raises `SIGPIPE`); `EBLOCK`/`EAGAIN` if nothing can go in now.
    /// A write of more than `PIPE_BUF` may be partial; the count says how much went.
    pub fn write(&self, data: &[u8], nonblock: bool, packet: bool) -> Result<usize, Errno> {
        if data.is_empty() {
            return Ok(0);
        }
        let p = &self.pipe;
        if p.readers() == 0 {
            return Err(EPIPE);
        }
        let n = p.queue.borrow_mut().write_pages(data, packet);
        if n == 0 {
            return Err(if nonblock { EAGAIN } else { EBLOCK });
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
            // A free page: a PIPE_BUF write would go in.
            if q.room() >= PAGE {
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
        self.pipe.changed();
        Ok(n)
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
        let p = Pipe::new(Queue::pages(PIPE_DEF_SIZE), Some(node.clone()), uid, gid);
        m.insert(key, Rc::downgrade(&p));
        p
    })
}

/// Opens FIFO `node` as open(2) does: a reader waits for a writer and a writer for a
/// reader, unless `O_NONBLOCK` (then a writer without a reader gets `ENXIO`); `O_RDWR`
/// never waits. `EBLOCK` means the open waits: the end is made anyway and kept in
/// `waiting` (so the other side's open sees this one, as Linux counts a blocked opener),
/// and the retry with the same `waiting` completes when the other side came (even if it
/// has already gone again: Linux's `w_counter`).
pub fn open_fifo(
    node: &Node,
    read: bool,
    write: bool,
    nonblock: bool,
    waiting: &mut Option<PipeEnd>,
) -> Result<PipeEnd, Errno> {
    if let Some(end) = waiting.take() {
        let p = &end.pipe;
        let came = if end.read {
            p.writers() > 0 || p.w_counter.get() != end.w_seen
        } else {
            p.readers() > 0
        };
        if came {
            return Ok(end);
        }
        *waiting = Some(end);
        return Err(EBLOCK);
    }
    let pipe = fifo_pipe(node);
    match (read, write) {
        (true, false) if !nonblock && pipe.writers() == 0 => {
            *waiting = Some(PipeEnd::new(pipe, true, false));
            Err(EBLOCK)
        }
        (false, true) if pipe.readers() == 0 => {
            if nonblock {
                return Err(ENXIO);
            }
            *waiting = Some(PipeEnd::new(pipe, false, true));
            Err(EBLOCK)
        }
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
        (
            PipeEnd::new(p.clone(), true, false),
            PipeEnd::new(p, false, true),
        )
    }

    #[test]
    fn data_flows_and_eof_after_last_writer() {
        let (r, w) = pair();
        assert_eq!(w.write(b"hello", false, false), Ok(5));
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
        assert_eq!(w.write(b"x", false, false), Err(EPIPE));
        assert_eq!(w.write(b"", false, false), Ok(0), "a null write succeeds");
        assert_eq!(w.poll() & POLLERR, POLLERR);
    }

    /// Fills the pipe with non-blocking writes of `chunk` bytes; returns the total.
    fn fill(w: &PipeEnd, chunk: usize) -> usize {
        let data = vec![5u8; chunk];
        let mut total = 0;
        loop {
            match w.write(&data, true, false) {
                Ok(n) => total += n,
                Err(e) => {
                    assert_eq!(e, EAGAIN);
                    return total;
                }
            }
        }
    }

    #[test]
    fn page_ring_fills_as_linux() {
        // Totals measured on Linux 6.18: 1000-byte writes share a page four at a time
        // (the fifth needs a new one); the 904-byte tails of 5000-byte writes top up
        // pages only while they fit.
        for (chunk, total) in [
            (1, 65536),
            (100, 64000),
            (1000, 64000),
            (3000, 48000),
            (4096, 65536),
            (5000, 54096),
            (8192, 65536),
            (70000, 65536),
        ] {
            let (r, w) = pair();
            assert_eq!(fill(&w, chunk), total, "writes of {chunk}");
            assert_eq!(w.poll() & POLLOUT, 0, "full");
            assert_eq!(w.write(&[7; PIPE_BUF], false, false), Err(EBLOCK));
            let mut b = vec![0u8; 100_000];
            assert_eq!(r.read(&mut b, true), Ok(total), "one read takes all pages");
            assert_eq!(w.poll() & POLLOUT, POLLOUT);
        }
    }

    #[test]
    fn pipe_buf_writes_are_atomic_and_larger_ones_partial() {
        let (r, w) = pair();
        assert_eq!(w.write(&[1; 61440], true, false), Ok(61440)); // 15 pages
        assert_eq!(w.write(&[2; 100], true, false), Ok(100)); // a 16th page
                                                              // 4000 bytes would fit the last page's room (3996) no more: nothing is written.
        assert_eq!(w.write(&[3; 4000], true, false), Err(EAGAIN));
        assert_eq!(
            w.write(&[3; 3996], true, false),
            Ok(3996),
            "tops up the last page"
        );
        let mut b = vec![0u8; 4096];
        assert_eq!(r.read(&mut b, true), Ok(4096), "frees the first page");
        // 5000 bytes: the 904-byte tail cannot top up a full page; one free page takes 4096.
        assert_eq!(w.write(&[4; 5000], true, false), Ok(4096));
    }

    #[test]
    fn set_size_rounds_and_refuses_to_drop_data() {
        let (_r, w) = pair();
        assert_eq!(w.set_size(1, false), Ok(4096));
        assert_eq!(w.set_size(5000, false), Ok(8192));
        assert_eq!(w.set_size(2 << 20, false), Err(EPERM));
        assert_eq!(w.set_size(2 << 20, true), Ok(2 << 20));
        assert_eq!(w.write(&[0; 9000], true, false), Ok(9000));
        assert_eq!(w.set_size(8192, false), Err(EBUSY), "three pages in use");
        assert_eq!(w.set_size(16384, false), Ok(16384));
    }

    #[test]
    fn packet_writes_keep_boundaries_and_drop_excess() {
        let (r, w) = pair();
        assert_eq!(w.write(b"abc", false, true), Ok(3));
        assert_eq!(w.write(b"defgh", false, true), Ok(5));
        let mut b = [0u8; 16];
        assert_eq!(r.read(&mut b, false), Ok(3));
        let mut small = [0u8; 2];
        assert_eq!(r.read(&mut small, false), Ok(2));
        assert_eq!(&small, b"de");
        assert_eq!(r.read(&mut b, true), Err(EAGAIN), "the rest was dropped");
        // Writes above a page become several packets.
        assert_eq!(w.write(&[9; PIPE_BUF + 10], false, true), Ok(PIPE_BUF + 10));
        assert_eq!(r.read(&mut [0; 9000], false), Ok(PIPE_BUF));
        assert_eq!(r.read(&mut [0; 9000], false), Ok(10));
        // A stream write after a packet starts a page of its own; a read stops at a packet.
        w.write(b"p", false, true).unwrap();
        w.write(b"s1", false, false).unwrap();
        w.write(b"s2", false, false).unwrap();
        assert_eq!(r.read(&mut b, false), Ok(1));
        assert_eq!(r.read(&mut b, false), Ok(4));
        assert_eq!(&b[..4], b"s1s2");
    }

    #[test]
    fn socket_queues() {
        let mut q = Queue::stream(8);
        let mut b = [0u8; 8];
        for round in 0..20u8 {
            assert_eq!(q.push_bytes(&[round, round + 1, round + 2]), 3);
            assert_eq!(q.pop(&mut b, false), (3, 3));
            assert_eq!(&b[..3], &[round, round + 1, round + 2]);
        }
        assert_eq!(q.push_bytes(&[0; 10]), 8, "what fits");
        let mut p = Queue::packets(100, 40);
        assert!(p.push_packet(b""));
        assert!(!p.is_empty(), "an empty message is something to read");
        assert!(p.push_packet(b"xy"));
        assert!(!p.push_packet(b"z"), "per-message cost fills the queue");
        assert_eq!(p.pop(&mut b, true), (0, 0));
        assert_eq!(p.pop(&mut b, false), (0, 0));
        assert_eq!(p.pop(&mut b, false), (2, 2));
        assert!(p.is_empty());
    }

    #[test]
    fn fifo_opens_wait_for_the_other_side() {
        let vfs_node = fifo_node();
        let mut waiting = None;
        assert_eq!(
            open_fifo(&vfs_node, true, false, false, &mut waiting).err(),
            Some(EBLOCK)
        );
        // The waiting reader counts: a writer's open goes through, and the reader's
        // retry completes.
        let w0 = open_fifo(&vfs_node, false, true, true, &mut None).unwrap();
        let r0 = open_fifo(&vfs_node, true, false, false, &mut waiting).unwrap();
        drop((w0, r0));
        assert_eq!(
            open_fifo(&vfs_node, false, true, true, &mut None).err(),
            Some(ENXIO)
        );
        let r = open_fifo(&vfs_node, true, false, true, &mut None).unwrap();
        assert_eq!(r.poll(), 0, "no writer yet: no POLLHUP");
        let w = open_fifo(&vfs_node, false, true, false, &mut None).unwrap();
        assert!(Rc::ptr_eq(&r.pipe, &w.pipe));
        w.write(b"q", false, false).unwrap();
        drop(w);
        assert_eq!(r.poll(), POLLIN | POLLRDNORM | POLLHUP);
        drop(r);
        // All ends closed: the data is gone with the pipe.
        let rw = open_fifo(&vfs_node, true, true, false, &mut None).unwrap();
        assert!(rw.pipe.queue().is_empty());
    }
}
