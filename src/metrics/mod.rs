//! Counters and gauges of what the bot does, and their Prometheus text for
//! `/metrics`.
//!
//! One thread owns them, so they are `Cell`s: no locks, no atomics. The hot
//! path only bumps cells; the one label set that grows (Bot API methods) is
//! looked up by name in a short list and allocates only the first time a
//! method is seen. Rendering allocates, once per scrape.
//!
//! The run creates one `Rc<Metrics>` and hands it to everything that counts
//! (the client, the limiter, the dispatcher, the poller) and to the health
//! listener, which renders it.
//!
//! Here: the cells and the hot path. `families`: the table of families
//! (name, HELP, type, where the samples come from) and the writer that walks
//! it. `process`: when the process started.
//!
//! Must not: allocate per update, or know how the numbers are produced.

mod families;
mod process;

use std::cell::{Cell, RefCell};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::readiness::Readiness;
use crate::Error;

/// Upper bounds of the handler duration histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// Everything `/metrics` counts. Shared as `Rc<Metrics>`.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// New updates taken from getUpdates (redeliveries not counted).
    pub(crate) received: Cell<u64>,
    /// Handlers that returned `Ok` (or updates no handler took).
    pub(crate) handled: Cell<u64>,
    /// Handlers that returned `Err`.
    pub(crate) errors: Cell<u64>,
    /// Handlers that panicked.
    pub(crate) panics: Cell<u64>,
    /// Handlers abandoned at their timeout.
    pub(crate) timeouts: Cell<u64>,
    /// Updates that broke the schema: logged, skipped, confirmed.
    pub(crate) skipped: Cell<u64>,
    durations: Histogram,
    /// Handlers running now.
    pub(crate) in_flight: Cell<u64>,
    /// Updates taken and not finished (running or queued in a lane).
    pub(crate) held: Cell<u64>,
    /// Lanes (chats with work) now.
    pub(crate) lanes: Cell<u64>,
    api: RefCell<Vec<MethodCounts>>,
    /// Bot API calls tried again.
    pub(crate) retries: Cell<u64>,
    /// Bot API calls that failed for good (after retries), `getUpdates` aside.
    pub(crate) failed_calls: Cell<u64>,
    /// Sends that waited for the rate limiter, and how long in all.
    pub(crate) limit_waits: Cell<u64>,
    pub(crate) limit_waited: Cell<Duration>,
    /// getUpdates failures: 409, 429, anything else.
    pub(crate) poll_conflicts: Cell<u64>,
    pub(crate) poll_rate_limited: Cell<u64>,
    pub(crate) poll_failures: Cell<u64>,
    /// Webhook requests by how they were answered, indexed by [`Answered`].
    pub(crate) webhook: [Cell<u64>; 7],
    /// Updates waiting at Telegram, as the last `getWebhookInfo` said.
    pub(crate) webhook_pending: Cell<u64>,
    /// `/notify` requests by outcome: accepted, unauthorized, too_large,
    /// bad_request, full (see: #14).
    pub(crate) notify: [Cell<u64>; 5],
    /// Notification messages queued and not yet sent or given up.
    pub(crate) notify_pending: Cell<u64>,
    /// Notification messages Telegram took, and those it refused for good.
    pub(crate) notify_sent: Cell<u64>,
    pub(crate) notify_failed: Cell<u64>,
    /// State writes applied (sets and removals).
    pub(crate) state_writes: Cell<u64>,
    /// State values that no longer decoded and were reset to their default.
    pub(crate) state_resets: Cell<u64>,
    /// State reads or writes the store failed.
    pub(crate) state_errors: Cell<u64>,
    /// Updates run again because their store was unavailable.
    pub(crate) state_retries: Cell<u64>,
    /// Job runs by outcome: ok, error, panic, timeout.
    pub(crate) job_runs: [Cell<u64>; 4],
    /// Jobs with a run to come.
    pub(crate) jobs_scheduled: Cell<u64>,
    /// Broadcast messages Telegram took, and chats given up for good
    /// (blocked the bot, do not exist).
    pub(crate) broadcast_sent: Cell<u64>,
    pub(crate) broadcast_failed: Cell<u64>,
    /// Chats that broadcasts not yet finished have still to reach.
    pub(crate) broadcast_remaining: Cell<u64>,
}

/// How a webhook request was answered: the `outcome` label of
/// `smolgram_webhook_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answered {
    /// 200: its handler finished (or it had already).
    Ok,
    /// 200: JSON that breaks the schema, skipped as in polling.
    Skipped,
    /// 401: no or a wrong secret token.
    Unauthorized,
    /// 413: a body over the cap.
    TooLarge,
    /// 400, 405 or 411: not JSON, not a POST, no length.
    BadRequest,
    /// 503: not running yet, stopping, or too many updates held.
    Unavailable,
    /// 503: its handler did not finish within the wait; Telegram sends it again.
    Slow,
}

impl Metrics {
    /// Counts one webhook answer.
    pub(crate) fn answered(&self, how: Answered) {
        bump(&self.webhook[how as usize]);
    }
}

/// One Bot API method's requests by result.
#[derive(Debug)]
struct MethodCounts {
    method: String,
    /// ok, 4xx, 5xx or not the Bot API, no answer.
    results: [u64; 4],
}

const RESULTS: [&str; 4] = ["ok", "client_error", "server_error", "network"];

#[derive(Debug, Default)]
struct Histogram {
    counts: [Cell<u64>; BUCKETS.len()],
    count: Cell<u64>,
    sum: Cell<f64>,
}

/// Adds one to a counter.
pub(crate) fn bump(cell: &Cell<u64>) {
    cell.set(cell.get() + 1);
}

impl Default for Metrics {
    fn default() -> Metrics {
        // Pins the process start time where /proc cannot tell it: at the
        // first run, not at the first scrape (see `process`).
        process::start_time();
        Metrics {
            received: Cell::default(),
            handled: Cell::default(),
            errors: Cell::default(),
            panics: Cell::default(),
            timeouts: Cell::default(),
            skipped: Cell::default(),
            durations: Histogram::default(),
            in_flight: Cell::default(),
            held: Cell::default(),
            lanes: Cell::default(),
            api: RefCell::default(),
            retries: Cell::default(),
            failed_calls: Cell::default(),
            limit_waits: Cell::default(),
            limit_waited: Cell::default(),
            poll_conflicts: Cell::default(),
            poll_rate_limited: Cell::default(),
            poll_failures: Cell::default(),
            webhook: Default::default(),
            webhook_pending: Cell::default(),
            notify: Default::default(),
            notify_pending: Cell::default(),
            notify_sent: Cell::default(),
            notify_failed: Cell::default(),
            state_writes: Cell::default(),
            state_resets: Cell::default(),
            state_errors: Cell::default(),
            state_retries: Cell::default(),
            job_runs: Default::default(),
            jobs_scheduled: Cell::default(),
            broadcast_sent: Cell::default(),
            broadcast_failed: Cell::default(),
            broadcast_remaining: Cell::default(),
        }
    }
}

impl Metrics {
    /// Records how long a handler ran.
    pub(crate) fn observe_handler(&self, took: Duration) {
        let h = &self.durations;
        let seconds = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            bump(&h.counts[i]);
        }
        bump(&h.count);
        h.sum.set(h.sum.get() + seconds);
    }

    /// Records a Bot API request's outcome.
    pub(crate) fn observe_request<T>(&self, method: &str, result: &Result<T, Error>) {
        let slot = match result {
            Ok(_) => 0,
            Err(e) => match e.status() {
                Some(status) if status < 500 && matches!(e, Error::Api { .. }) => 1,
                Some(_) => 2,
                None if matches!(e, Error::Decode { .. }) => 2,
                None => 3,
            },
        };
        let mut api = self.api.borrow_mut();
        match api.iter_mut().find(|m| m.method == method) {
            Some(counts) => counts.results[slot] += 1,
            None => {
                let mut results = [0; 4];
                results[slot] = 1;
                api.push(MethodCounts {
                    method: method.to_owned(),
                    results,
                });
            }
        }
    }

    /// The Prometheus text exposition of everything above, and of `readiness`.
    pub(crate) fn render(&self, readiness: &Readiness) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = families::write(self, readiness, &mut out);
        out
    }
}

fn unix(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_every_family_once_and_parses_line_by_line() {
        let m = Metrics::default();
        bump(&m.received);
        m.observe_handler(Duration::from_millis(30));
        m.observe_request::<()>("sendMessage", &Ok(()));
        m.observe_request::<()>(
            "sendMessage",
            &Err(Error::Network {
                method: "sendMessage".into(),
                kind: crate::NetworkKind::Timeout,
            }),
        );
        let readiness = Readiness::new(Duration::from_secs(60), crate::Shutdown::new());
        readiness.polled();
        let text = m.render(&readiness);
        for family in [
            "smolgram_updates_received_total 1",
            "smolgram_handler_duration_seconds_bucket{le=\"0.05\"} 1",
            "smolgram_handler_duration_seconds_bucket{le=\"0.025\"} 0",
            "smolgram_handler_duration_seconds_count 1",
            "smolgram_api_requests_total{method=\"sendMessage\",result=\"ok\"} 1",
            "smolgram_api_requests_total{method=\"sendMessage\",result=\"network\"} 1",
            "smolgram_ready 1",
            "smolgram_updates_failed_total{reason=\"timeout\"} 0",
            "smolgram_poll_errors_total{kind=\"conflict\"} 0",
            "smolgram_build_info{version=\"",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(family), "{family} missing:\n{text}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "not a sample: {line}");
        }
        let types = text
            .lines()
            .filter(|l| l.starts_with("# TYPE smolgram_api_requests_total"))
            .count();
        assert_eq!(types, 1);
    }
}
