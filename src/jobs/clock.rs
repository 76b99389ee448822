//! The time jobs run by: the system's, or one a test moves by hand.
//!
//! A job's due time is wall-clock time (`SystemTime`: "09:00 in UTC+1"),
//! but the executor's timers run on `Instant`s. [`Clock::sleep_until`]
//! turns one into the other, in steps of at most [`RECHECK`], so a wall
//! clock that jumps (an NTP step, a VM resumed) is noticed within that step.
//! A [`ManualClock`] never sleeps on a timer: it wakes its sleepers when a
//! test moves it, so a test of a daily job takes no real day.
//!
//! Must not: sleep the thread, or wake more often than [`RECHECK`] when
//! nothing is due.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_io::Timer;
use event_listener::Event;

use crate::wait;

/// The longest a sleep on the system clock goes before it looks at the
/// wall clock again.
const RECHECK: Duration = Duration::from_secs(60 * 60);

/// Where jobs get the time: [`Clock::System`] (the default) or a
/// [`ManualClock`] that tests move.
///
/// # Examples
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use smolgram::jobs::{Clock, ManualClock};
///
/// let manual = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
/// let clock = Clock::from(manual.clone());
/// manual.advance(Duration::from_secs(90));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_800_000_090));
/// ```
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// A clock that moves only when told to.
    Manual(ManualClock),
}

impl Clock {
    /// The time now.
    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Manual(manual) => manual.now(),
        }
    }

    /// Resolves once the time is `at` or later.
    pub async fn sleep_until(&self, at: SystemTime) {
        match self {
            Clock::System => loop {
                let Ok(left) = at.duration_since(SystemTime::now()) else {
                    return;
                };
                if left.is_zero() {
                    return;
                }
                Timer::after(left.min(RECHECK)).await;
            },
            Clock::Manual(manual) => wait::until(&manual.inner.moved, || manual.now() >= at).await,
        }
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Clock {
        Clock::Manual(manual)
    }
}

/// A clock for tests: it stands still until [`advance`](ManualClock::advance)
/// or [`set`](ManualClock::set) moves it, and then wakes the jobs that
/// became due. A handle: clones share one time, and it may be moved from
/// any thread (the test's, while the bot runs on its own).
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Inner>,
}

struct Inner {
    now: Mutex<SystemTime>,
    moved: Event,
}

impl ManualClock {
    /// A clock that reads `start` until it is moved.
    pub fn new(start: SystemTime) -> ManualClock {
        ManualClock {
            inner: Arc::new(Inner {
                now: Mutex::new(start),
                moved: Event::new(),
            }),
        }
    }

    /// The time it reads.
    pub fn now(&self) -> SystemTime {
        *self
            .inner
            .now
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves it `by` forward.
    pub fn advance(&self, by: Duration) {
        let now = self.now() + by;
        self.set(now);
    }

    /// Sets it to `to` (backwards too: a wall clock can be stepped back).
    pub fn set(&self, to: SystemTime) {
        *self
            .inner
            .now
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = to;
        self.inner.moved.notify(usize::MAX);
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn a_manual_sleep_ends_when_the_clock_is_moved_past_it() {
        let manual = ManualClock::new(UNIX_EPOCH);
        let clock = Clock::from(manual.clone());
        let mover = std::thread::spawn(move || {
            manual.advance(Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(20));
            manual.advance(Duration::from_secs(40));
        });
        let at = UNIX_EPOCH + Duration::from_secs(60);
        futures_lite::future::block_on(clock.sleep_until(at));
        assert!(clock.now() >= at);
        mover.join().unwrap();
    }

    #[test]
    fn a_system_sleep_into_the_past_ends_at_once() {
        let clock = Clock::System;
        futures_lite::future::block_on(clock.sleep_until(UNIX_EPOCH));
    }
}
