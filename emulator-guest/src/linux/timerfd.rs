//! timerfd objects (timerfd_create(2)): a timer whose expirations are read from a
//! descriptor.
//!
//! A timer has a next expiry (monotonic ns; an absolute CLOCK_REALTIME time is turned into
//! one when it is set, as for POSIX timers) and an interval (0: once). Expirations are
//! counted by the scheduler's timer pass (`fire`, from the kernel's run loop, beside
//! SIGALRM), never by a read or a poll: a call retried when nothing has happened sees what
//! it saw before (the wake-up invariant, `kernel::check_wakeups`). A read of 8 bytes takes
//! the count and waits while it is 0; the descriptor is readable while it is not. Every
//! armed timer's expiry is a deadline the idle scheduler sleeps until (`next_deadline`),
//! and each expiration moves the event count, which retries the tasks waiting on it.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use super::errno::*;
use super::fd::{POLLIN, POLLRDNORM};

pub struct TimerFd {
    /// CLOCK_REALTIME (absolute times are of the real-time clock).
    pub realtime: bool,
    /// Next expiry (monotonic ns), `None` when disarmed.
    deadline: Cell<Option<u64>>,
    interval: Cell<u64>,
    /// Expirations not yet read.
    ticks: Cell<u64>,
    pub ino: u64,
    generation: super::wake::Generation,
}

thread_local! {
    /// Every timer that is or was armed and may still be open.
    static ARMED: RefCell<Vec<Weak<TimerFd>>> = const { RefCell::new(Vec::new()) };
}

impl TimerFd {
    pub fn new(realtime: bool) -> Rc<TimerFd> {
        Rc::new(TimerFd {
            realtime,
            deadline: Cell::new(None),
            interval: Cell::new(0),
            ticks: Cell::new(0),
            ino: super::pipe::anon_ino(),
            generation: super::wake::Generation::new(),
        })
    }

    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// (time to the next expiry, interval) in ns, as timerfd_gettime reports them: a timer
    /// that is due but not yet counted shows 1 ns to go.
    pub fn get(&self, now: u64) -> (u64, u64) {
        let left = self
            .deadline
            .get()
            .map_or(0, |d| d.saturating_sub(now).max(1));
        (left, self.interval.get())
    }

    /// Arms the timer to expire at `deadline` (monotonic ns; `None` disarms) and every
    /// `interval` after; unread expirations are dropped, as Linux does.
    pub fn set(self: &Rc<Self>, deadline: Option<u64>, interval: u64) {
        self.deadline.set(deadline);
        self.interval.set(interval);
        self.ticks.set(0);
        self.generation.bump();
        if deadline.is_some() {
            ARMED.with(|a| {
                let mut a = a.borrow_mut();
                if !a.iter().any(|w| w.as_ptr() == Rc::as_ptr(self)) {
                    a.push(Rc::downgrade(self));
                }
            });
        }
    }

    /// Takes the expirations (a read of the descriptor).
    pub fn read(&self, nonblock: bool) -> Result<u64, Errno> {
        let t = self.ticks.get();
        if t == 0 {
            return Err(if nonblock { EAGAIN } else { EBLOCK });
        }
        self.ticks.set(0);
        self.generation.bump();
        Ok(t)
    }

    pub fn poll(&self) -> u16 {
        if self.ticks.get() > 0 {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }

    /// Counts the expirations up to `now`; `true` if there were any.
    fn expire(&self, now: u64) -> bool {
        let Some(d) = self.deadline.get().filter(|&d| d <= now) else {
            return false;
        };
        let interval = self.interval.get();
        let n = match interval {
            0 => {
                self.deadline.set(None);
                1
            }
            i => {
                // Every period that passed counts, as on Linux.
                let late = (now - d) / i;
                self.deadline.set(Some(d + (late + 1) * i));
                late + 1
            }
        };
        self.ticks.set(self.ticks.get().saturating_add(n));
        self.generation.bump();
        true
    }
}

/// The scheduler's timer pass: counts the expirations of every timer due by `now`.
pub fn fire(now: u64) {
    ARMED.with(|a| {
        a.borrow_mut().retain(|w| match w.upgrade() {
            Some(t) => {
                t.expire(now);
                t.deadline.get().is_some()
            }
            None => false,
        })
    });
}

/// The earliest expiry of any armed timer (monotonic ns).
pub fn next_deadline() -> Option<u64> {
    ARMED.with(|a| {
        a.borrow()
            .iter()
            .filter_map(|w| w.upgrade()?.deadline.get())
            .min()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_then_disarmed() {
        let t = TimerFd::new(false);
        t.set(Some(1000), 0);
        assert_eq!(next_deadline(), Some(1000));
        assert_eq!(t.read(true), Err(EAGAIN));
        assert_eq!(t.get(400), (600, 0));
        fire(999);
        assert_eq!(t.poll(), 0);
        fire(5000);
        assert_eq!(t.poll(), POLLIN | POLLRDNORM);
        assert_eq!(t.get(5000), (0, 0));
        assert_eq!(t.read(false), Ok(1));
        assert_eq!(t.read(false), Err(EBLOCK));
        assert_eq!(next_deadline(), None);
    }

    #[test]
    fn periods_that_passed_all_count() {
        let t = TimerFd::new(false);
        t.set(Some(100), 50);
        fire(100);
        fire(260); // 150, 200, 250
        assert_eq!(t.read(true), Ok(4));
        assert_eq!(t.get(260), (40, 50));
        // Setting again drops what was not read.
        fire(300);
        t.set(Some(1000), 0);
        assert_eq!(t.read(true), Err(EAGAIN));
    }

    #[test]
    fn a_closed_timer_is_forgotten() {
        let t = TimerFd::new(false);
        t.set(Some(7), 0);
        drop(t);
        fire(1);
        assert_eq!(next_deadline(), None);
    }
}
