//! Wake-ups: how a parked task learns that what it waits for may have changed.
//!
//! A system call that must wait returns `EBLOCK` and its task parks, remembering the
//! *event count* (`events()`) at that moment. The scheduler retries it once the count has
//! moved. The count moves on every change that could end some wait:
//! - every change to an object behind a descriptor (a pipe's or socket's data or ends, an
//!   eventfd's counter, a socket's connection state): each such object keeps its own
//!   `Generation`, and bumping it bumps the count too, so the two can never disagree;
//! - every completed system call, every task's exit, stop and continue, every signal
//!   queued, every futex wake-up, terminal input taken (`changed()`).
//!
//! **A state change that does not move the count is a lost wake-up.** The rule is
//! enforced by construction for objects (their state is only changed through methods that
//! call `Generation::bump`), and not by "the call completed": a call may change an
//! object and still wait (a blocking pipe write that filled the pipe with part of its
//! data), and its reader must be woken all the same. Before this module that was how
//! `gzip | gzip -d` deadlocked: the writer's partial write returned `EBLOCK`, which bumped
//! nothing, and the reader parked on the empty pipe never looked again.
//!
//! The count is one per module instance (the guest is single-threaded): a thread-local,
//! so objects need no handle on the `Kernel` to report a change.

use std::cell::Cell;

thread_local! {
    static EVENTS: Cell<u64> = const { Cell::new(0) };
}

/// Something that a parked task may wait for changed.
pub fn changed() {
    EVENTS.with(|e| e.set(e.get().wrapping_add(1)));
}

/// The event count: compare with the value taken when a task parked.
pub fn events() -> u64 {
    EVENTS.with(Cell::get)
}

/// An object's own change counter (edge-triggered epoll compares it); each bump is also
/// an event for the scheduler.
#[derive(Debug, Default)]
pub struct Generation(Cell<u64>);

impl Generation {
    pub const fn new() -> Generation {
        Generation(Cell::new(0))
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }

    pub fn bump(&self) {
        self.0.set(self.0.get().wrapping_add(1));
        changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_bump_is_an_event() {
        let g = Generation::new();
        let before = events();
        g.bump();
        assert_eq!(g.get(), 1);
        assert_ne!(events(), before);
    }
}
