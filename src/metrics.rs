//! Counters of what the bot did, read by the exit summary (and, later, by
//! `/metrics`).
//!
//! One thread owns them, so they are `Cell`s: no locks, no atomics, and no
//! allocation per update.
//!
//! Must not: allocate per update.

use std::cell::Cell;
use std::fmt;

/// The running totals. Shared as `Rc<Counters>` on the executor thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// New updates taken from getUpdates (redeliveries not counted).
    pub(crate) received: Cell<u64>,
    /// Handlers that returned `Ok` (or updates no handler took).
    pub(crate) handled: Cell<u64>,
    /// Handlers that returned `Err` or panicked.
    pub(crate) failed: Cell<u64>,
    /// Updates that broke the schema: logged, skipped, confirmed.
    pub(crate) skipped: Cell<u64>,
}

impl Counters {
    pub(crate) fn bump(cell: &Cell<u64>) {
        cell.set(cell.get() + 1);
    }
}

/// What a run did, returned when it stops and logged on exit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Updates whose handler finished `Ok` (or that no handler took).
    pub handled: u64,
    /// Updates whose handler failed or panicked; they are confirmed all the same.
    pub failed: u64,
    /// Updates that broke the schema, skipped and confirmed.
    pub skipped: u64,
    /// Updates whose handler had not finished at the drain deadline: left
    /// unconfirmed, so the next start gets them again.
    pub unfinished: u64,
    /// Bot API calls from handlers that failed for good, after their retries.
    pub failed_sends: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "handled={} failed={} skipped={} unfinished={} failed_sends={}",
            self.handled, self.failed, self.skipped, self.unfinished, self.failed_sends
        )
    }
}
