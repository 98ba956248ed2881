//! eventfd objects (eventfd(2)): a 64-bit counter.
//!
//! A write of 8 bytes adds to the counter (at most `u64::MAX - 1` in total; `u64::MAX`
//! itself is refused); a read of 8 bytes takes the whole counter, or 1 in semaphore mode,
//! and waits while it is 0. Waiting is `EBLOCK` (see `errno.rs`), or `EAGAIN` for a
//! non-blocking descriptor. Readable while the counter is not 0, writable while at least
//! 1 can be added.

use std::cell::Cell;

use super::errno::*;
use super::fd::{POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};

const MAX: u64 = u64::MAX - 1;

pub struct EventFd {
    count: Cell<u64>,
    semaphore: bool,
    pub ino: u64,
    /// Changes with every change of the counter (edge-triggered waiters).
    generation: super::wake::Generation,
}

impl EventFd {
    pub fn new(initial: u32, semaphore: bool) -> EventFd {
        EventFd {
            count: Cell::new(initial as u64),
            semaphore,
            ino: super::pipe::anon_ino(),
            generation: super::wake::Generation::new(),
        }
    }

    pub fn count(&self) -> u64 {
        self.count.get()
    }

    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// The value a read returns, taken from the counter.
    pub fn read(&self, nonblock: bool) -> Result<u64, Errno> {
        let c = self.count.get();
        if c == 0 {
            return Err(if nonblock { EAGAIN } else { EBLOCK });
        }
        let v = if self.semaphore { 1 } else { c };
        self.count.set(c - v);
        self.generation.bump();
        Ok(v)
    }

    /// Adds `v` to the counter.
    pub fn write(&self, v: u64, nonblock: bool) -> Result<(), Errno> {
        if v == u64::MAX {
            return Err(EINVAL);
        }
        let c = self.count.get();
        if MAX - c < v {
            return Err(if nonblock { EAGAIN } else { EBLOCK });
        }
        self.count.set(c + v);
        self.generation.bump();
        Ok(())
    }

    pub fn poll(&self) -> u16 {
        let c = self.count.get();
        let mut ev = 0;
        if c > 0 {
            ev |= POLLIN | POLLRDNORM;
        }
        if c < MAX {
            ev |= POLLOUT | POLLWRNORM;
        }
        ev
    }

    /// `true` for an `EFD_SEMAPHORE` eventfd.
    pub fn is_semaphore(&self) -> bool {
        self.semaphore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_adds_and_read_takes_all() {
        let e = EventFd::new(3, false);
        e.write(4, false).unwrap();
        assert_eq!(e.poll() & POLLIN, POLLIN);
        assert_eq!(e.read(false), Ok(7));
        assert_eq!(e.read(true), Err(EAGAIN));
        assert_eq!(e.read(false), Err(EBLOCK));
        assert_eq!(e.poll(), POLLOUT | POLLWRNORM);
    }

    #[test]
    fn semaphore_mode_takes_one() {
        let e = EventFd::new(2, true);
        assert_eq!(e.read(true), Ok(1));
        assert_eq!(e.read(true), Ok(1));
        assert_eq!(e.read(true), Err(EAGAIN));
    }

    #[test]
    fn overflow_waits_and_max_is_invalid() {
        let e = EventFd::new(0, false);
        assert_eq!(e.write(u64::MAX, true), Err(EINVAL));
        e.write(u64::MAX - 1, true).unwrap();
        assert_eq!(e.poll() & POLLOUT, 0, "full: not writable");
        assert_eq!(e.write(1, true), Err(EAGAIN));
        assert_eq!(e.write(1, false), Err(EBLOCK));
        assert_eq!(e.write(0, true), Ok(()), "adding 0 always fits");
        assert_eq!(e.read(true), Ok(u64::MAX - 1));
    }
}
