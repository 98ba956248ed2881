//! epoll instances (epoll(7)): a set of watched open files.
//!
//! Linux semantics emulated: an interest is keyed by (descriptor number, open file); it
//! goes away when the open file is closed everywhere (not when one of several descriptors
//! for it is). Level-triggered interests report while ready; edge-triggered ones
//! (`EPOLLET`) report when the object's state changed since the last report (every
//! change counts, as Linux wakes on every write); `EPOLLONESHOT` disarms after one
//! report until `EPOLL_CTL_MOD`. `EPOLLERR` and `EPOLLHUP` are always reported.
//! Regular files and directories cannot be watched (`EPERM`), as on Linux.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use super::errno::*;
use super::fd::{FileKind, OpenFile, POLLERR, POLLHUP, POLLIN, POLLRDNORM};

pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;
/// How deep epoll instances may watch each other (Linux `EP_MAX_NESTS`).
const MAX_NESTS: u32 = 4;

struct Interest {
    file: Weak<OpenFile>,
    events: Cell<u32>,
    data: Cell<u64>,
    /// The object's generation when last reported (edge-triggered).
    seen: Cell<Option<u64>>,
    /// Cleared after a one-shot report.
    armed: Cell<bool>,
}

pub struct Epoll {
    pub ino: u64,
    list: RefCell<BTreeMap<(i32, usize), Interest>>,
}

impl Default for Epoll {
    fn default() -> Self {
        Self::new()
    }
}

fn key(fd: i32, file: &Rc<OpenFile>) -> (i32, usize) {
    (fd, Rc::as_ptr(file) as usize)
}

impl Epoll {
    pub fn new() -> Epoll {
        Epoll {
            ino: super::pipe::anon_ino(),
            list: RefCell::new(BTreeMap::new()),
        }
    }

    /// `EPOLL_CTL_ADD`.
    pub fn add(&self, fd: i32, file: &Rc<OpenFile>, events: u32, data: u64) -> Result<(), Errno> {
        if matches!(file.kind, FileKind::Node(_)) {
            return Err(EPERM);
        }
        let mut l = self.list.borrow_mut();
        let k = key(fd, file);
        if l.contains_key(&k) {
            return Err(EEXIST);
        }
        l.insert(
            k,
            Interest {
                file: Rc::downgrade(file),
                events: Cell::new(events),
                data: Cell::new(data),
                seen: Cell::new(None),
                armed: Cell::new(true),
            },
        );
        Ok(())
    }

    /// `EPOLL_CTL_MOD`: new events and data, re-armed.
    pub fn modify(
        &self,
        fd: i32,
        file: &Rc<OpenFile>,
        events: u32,
        data: u64,
    ) -> Result<(), Errno> {
        let l = self.list.borrow();
        let i = l.get(&key(fd, file)).ok_or(ENOENT)?;
        if i.events.get() & EPOLLEXCLUSIVE != 0 || events & EPOLLEXCLUSIVE != 0 {
            return Err(EINVAL);
        }
        i.events.set(events);
        i.data.set(data);
        i.seen.set(None);
        i.armed.set(true);
        Ok(())
    }

    /// `EPOLL_CTL_DEL`.
    pub fn delete(&self, fd: i32, file: &Rc<OpenFile>) -> Result<(), Errno> {
        self.list
            .borrow_mut()
            .remove(&key(fd, file))
            .map(|_| ())
            .ok_or(ENOENT)
    }

    /// `true` if `target` is this instance or watches it, directly or through nested
    /// instances (adding it would make a loop).
    pub fn reached_from(&self, target: &Epoll) -> bool {
        self.reached_at(target, 0)
    }

    fn reached_at(&self, target: &Epoll, depth: u32) -> bool {
        if std::ptr::eq(self, target) {
            return true;
        }
        if depth >= MAX_NESTS {
            return true;
        }
        let l = self.list.borrow();
        l.values().any(|i| {
            i.file.upgrade().is_some_and(|f| match &f.kind {
                FileKind::Epoll(inner) => inner.reached_at(target, depth + 1),
                _ => false,
            })
        })
    }

    /// `true` if some interest is in host stdin, whose readiness only the host can tell.
    pub fn watches_stdin(&self) -> bool {
        self.list
            .borrow()
            .values()
            .any(|i| i.armed.get() && i.file.upgrade().is_some_and(|f| f.reads_host_stdin()))
    }

    /// The events to report now, at most `max`, as (events, data); `stdin_ready` stands
    /// for host stdin's readiness. With `consume`, edge-triggered and one-shot interests
    /// take note that they reported.
    pub fn collect(&self, max: usize, stdin_ready: bool, consume: bool) -> Vec<(u32, u64)> {
        self.collect_at(max, stdin_ready, consume, 0)
    }

    fn collect_at(
        &self,
        max: usize,
        stdin_ready: bool,
        consume: bool,
        depth: u32,
    ) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut l = self.list.borrow_mut();
        l.retain(|_, i| i.file.strong_count() > 0);
        for i in l.values() {
            if out.len() >= max {
                break;
            }
            if !i.armed.get() {
                continue;
            }
            let Some(file) = i.file.upgrade() else {
                continue;
            };
            let ready = match &file.kind {
                // A nested epoll: ready if it has something to report.
                FileKind::Epoll(inner) if depth < MAX_NESTS => {
                    if inner
                        .collect_at(1, stdin_ready, false, depth + 1)
                        .is_empty()
                    {
                        0
                    } else {
                        POLLIN
                    }
                }
                FileKind::Epoll(_) => 0,
                _ => file.poll_with(stdin_ready),
            } as u32;
            let ev = i.events.get();
            let m = ready & (ev | POLLERR as u32 | POLLHUP as u32);
            if m == 0 {
                continue;
            }
            if ev & EPOLLET != 0 {
                let g = file.generation();
                if i.seen.get() == Some(g) {
                    continue;
                }
                if consume {
                    i.seen.set(Some(g));
                }
            }
            if consume && ev & EPOLLONESHOT != 0 {
                i.armed.set(false);
            }
            out.push((m, i.data.get()));
        }
        out
    }

    /// Poll events of the epoll descriptor itself: readable when something would be
    /// reported.
    pub fn poll(&self) -> u16 {
        if self.collect(1, false, false).is_empty() {
            0
        } else {
            POLLIN | POLLRDNORM
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::eventfd::EventFd;
    use crate::linux::fd::{O_RDWR, POLLOUT};

    fn efd() -> Rc<OpenFile> {
        OpenFile::new(FileKind::EventFd(EventFd::new(0, false)), O_RDWR)
    }

    fn counter(f: &OpenFile) -> &EventFd {
        match &f.kind {
            FileKind::EventFd(e) => e,
            _ => unreachable!(),
        }
    }

    #[test]
    fn level_edge_and_oneshot() {
        let ep = Epoll::new();
        let (a, b, c) = (efd(), efd(), efd());
        ep.add(3, &a, POLLIN as u32, 30).unwrap();
        ep.add(4, &b, POLLIN as u32 | EPOLLET, 40).unwrap();
        ep.add(5, &c, POLLIN as u32 | EPOLLONESHOT, 50).unwrap();
        assert_eq!(ep.add(3, &a, 0, 0), Err(EEXIST));
        assert!(ep.collect(8, false, true).is_empty());
        for f in [&a, &b, &c] {
            counter(f).write(1, true).unwrap();
        }
        let got = ep.collect(8, false, true);
        assert_eq!(got, vec![(1, 30), (1, 40), (1, 50)]);
        // Again: level reports again, edge and one-shot do not.
        assert_eq!(ep.collect(8, false, true), vec![(1, 30)]);
        counter(&b).write(1, true).unwrap();
        assert_eq!(
            ep.collect(8, false, true),
            vec![(1, 30), (1, 40)],
            "a new edge"
        );
        ep.modify(5, &c, POLLIN as u32 | POLLOUT as u32, 55)
            .unwrap();
        assert_eq!(ep.collect(1, false, true), vec![(1, 30)], "at most max");
        assert_eq!(
            ep.collect(8, false, true),
            vec![(1, 30), (POLLIN as u32 | POLLOUT as u32, 55)],
            "re-armed by MOD, with the new events and data"
        );
    }

    #[test]
    fn closed_files_leave_and_files_are_refused() {
        let ep = Epoll::new();
        let a = efd();
        ep.add(3, &a, POLLIN as u32, 0).unwrap();
        counter(&a).write(1, true).unwrap();
        assert_eq!(ep.poll(), POLLIN | POLLRDNORM);
        drop(a);
        assert!(ep.collect(8, false, true).is_empty());
        let b = efd();
        assert_eq!(ep.delete(3, &b), Err(ENOENT));
        assert_eq!(ep.modify(3, &b, 0, 0), Err(ENOENT));
    }
}
