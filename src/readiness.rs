//! Readiness: whether this instance is doing its job right now, as
//! `/readyz` and `smolgram_ready` report it.
//!
//! Ready means, when polling: a `getUpdates` succeeded within the staleness
//! bound (a long poll answers at least once per poll timeout, so twice that
//! plus slack without a success is "deaf"), no 409 episode is under way
//! (another instance holds the token, or a webhook is set), and no stop has
//! been requested. The poller writes the first two, the run's [`Shutdown`]
//! is the third; the health listener only reads.
//!
//! In webhook mode: `setWebhook` succeeded, Telegram reports no delivery
//! trouble (`getWebhookInfo`'s last error, newer than our last good
//! answer), and no stop has been requested. The webhook module writes the
//! first two.
//!
//! One thread owns it, so `Cell`s: no locks, nothing held across `.await`.
//!
//! Must not: count anything (that is `metrics`) or decide what the poller does.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant, SystemTime};

use crate::Shutdown;

/// What `/readyz` reads. Shared as `Rc<Readiness>` by the poller and the listener.
#[derive(Debug)]
pub(crate) struct Readiness {
    /// When a `getUpdates` last succeeded: for the staleness check, and the
    /// wall-clock time for `/metrics`.
    polled_at: Cell<Option<(Instant, SystemTime)>>,
    /// A 409 episode is under way: another instance holds the token, or a
    /// webhook is set (the poller is deleting it).
    conflict: Cell<bool>,
    /// Not ready when no `getUpdates` has succeeded for this long.
    stale: Duration,
    /// A stop in progress makes the bot not ready.
    shutdown: Shutdown,
    /// In webhook mode: whether `setWebhook` succeeded, and what Telegram
    /// reports as its trouble delivering to us.
    webhook: Option<(Cell<bool>, RefCell<Option<String>>)>,
}

impl Readiness {
    /// Nothing polled yet, so not ready; stale after `stale` without a
    /// successful poll; not ready once `shutdown` is requested.
    pub(crate) fn new(stale: Duration, shutdown: Shutdown) -> Readiness {
        Readiness {
            polled_at: Cell::new(None),
            conflict: Cell::new(false),
            stale,
            shutdown,
            webhook: None,
        }
    }

    /// Webhook mode: not ready until [`webhook_set`](Self::webhook_set),
    /// nor while Telegram reports trouble, nor once `shutdown` is requested.
    pub(crate) fn webhook(shutdown: Shutdown) -> Readiness {
        Readiness {
            webhook: Some((Cell::new(false), RefCell::new(None))),
            ..Readiness::new(Duration::MAX, shutdown)
        }
    }

    /// `setWebhook` succeeded.
    pub(crate) fn webhook_set(&self) {
        if let Some((set, _)) = &self.webhook {
            set.set(true);
        }
    }

    /// What Telegram reports it cannot do delivering to us, or `None` once all is well.
    pub(crate) fn set_delivery_trouble(&self, trouble: Option<String>) {
        if let Some((_, now)) = &self.webhook {
            *now.borrow_mut() = trouble;
        }
    }

    /// A `getUpdates` succeeded: fresh again, and any 409 episode is over.
    pub(crate) fn polled(&self) {
        self.polled_at
            .set(Some((Instant::now(), SystemTime::now())));
        self.conflict.set(false);
    }

    /// A `getUpdates` failed with a 409 (`true`) or with something else.
    pub(crate) fn set_conflict(&self, conflict: bool) {
        self.conflict.set(conflict);
    }

    /// When a `getUpdates` last succeeded, by the wall clock.
    pub(crate) fn last_poll(&self) -> Option<SystemTime> {
        self.polled_at.get().map(|(_, at)| at)
    }

    /// Why the bot is not ready, or `None` if it is.
    pub(crate) fn not_ready(&self) -> Option<String> {
        if self.shutdown.is_requested() {
            return Some("shutting down".into());
        }
        if let Some((set, trouble)) = &self.webhook {
            if !set.get() {
                return Some("setWebhook has not succeeded yet".into());
            }
            return trouble
                .borrow()
                .as_ref()
                .map(|why| format!("Telegram cannot deliver to the webhook: {why}"));
        }
        if self.conflict.get() {
            return Some("409: another instance polls this bot, or a webhook is set".into());
        }
        match self.polled_at.get() {
            None => Some("no getUpdates has succeeded yet".into()),
            Some((at, _)) if at.elapsed() >= self.stale => Some(format!(
                "no getUpdates has succeeded for {}s",
                at.elapsed().as_secs()
            )),
            Some(_) => None,
        }
    }

    /// Whether the bot is ready.
    pub(crate) fn is_ready(&self) -> bool {
        self.not_ready().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_a_recent_poll_no_conflict_and_no_stop() {
        let shutdown = Shutdown::new();
        let r = Readiness::new(Duration::from_secs(60), shutdown.clone());
        assert!(r.not_ready().unwrap().contains("yet"));
        r.polled();
        assert_eq!(r.not_ready(), None);
        assert!(r.is_ready() && r.last_poll().is_some());
        r.set_conflict(true);
        assert!(r.not_ready().unwrap().contains("409"));
        r.polled();
        assert!(r.is_ready(), "a successful poll ends the 409 episode");
        shutdown.request();
        assert!(r.not_ready().unwrap().contains("shutting down"));

        let stale = Readiness::new(Duration::ZERO, Shutdown::new());
        stale.polled();
        assert!(stale.not_ready().unwrap().contains("for"));
    }

    #[test]
    fn a_webhook_is_ready_once_set_and_while_telegram_reports_no_trouble() {
        let shutdown = Shutdown::new();
        let r = Readiness::webhook(shutdown.clone());
        assert!(r.not_ready().unwrap().contains("setWebhook"));
        r.webhook_set();
        assert_eq!(r.not_ready(), None, "no poll is needed");
        r.set_delivery_trouble(Some("Connection timed out".into()));
        let why = r.not_ready().unwrap();
        assert!(
            why.contains("cannot deliver") && why.contains("Connection timed out"),
            "{why}"
        );
        r.set_delivery_trouble(None);
        assert!(r.is_ready());
        shutdown.request();
        assert!(r.not_ready().unwrap().contains("shutting down"));
    }
}
