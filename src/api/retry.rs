//! When a failed Bot API call is tried again, and after how long.
//!
//! No peer framework retries a failed `sendMessage`, so a reply is lost
//! whenever the API hiccups. Here a call is retried on what is transient:
//! network errors, timeouts, 5xx and non-JSON answers (a proxy's error
//! page), and 429 after exactly `retry_after`. What Telegram refused on the
//! merits (400, 403: chat not found, bot blocked by the user) is not
//! retried: it would fail the same way. Retries are bounded by attempts and
//! by total time, so a handler never hangs on a dead API.
//!
//! A retried request that did reach Telegram (its answer was lost) is sent
//! twice: the same at-least-once rule as for updates.
//!
//! Must not: retry `getUpdates` (the poller has its own policy) or sleep
//! the thread.

use std::future::Future;
use std::time::Duration;

use crate::{Error, Shutdown};

/// How many times, and for how long, a failed call is tried.
///
/// ```
/// use std::time::Duration;
/// use smolgram::api::RetryPolicy;
/// let patient = RetryPolicy { attempts: 10, within: Duration::from_secs(120) };
/// assert!(RetryPolicy::NONE.attempts == 1);
/// # drop(patient);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included; 1 means no retry.
    pub attempts: u32,
    /// No retry starts later than this after the first try.
    pub within: Duration,
}

impl RetryPolicy {
    /// Five tries within a minute: rides out a restart of a proxy or a 429
    /// of up to ~50 s, and gives up while a handler can still report it.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        attempts: 5,
        within: Duration::from_secs(60),
    };

    /// One try: the caller gets the first error.
    pub const NONE: RetryPolicy = RetryPolicy {
        attempts: 1,
        within: Duration::ZERO,
    };
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy::DEFAULT
    }
}

/// What to do after an error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Try again after exactly this long (Telegram said so).
    After(Duration),
    /// Try again after the next backoff delay.
    Backoff,
    /// Do not try again.
    Never,
}

/// Whether `error` is worth another try.
pub(crate) fn verdict(error: &Error) -> Verdict {
    match error {
        Error::Api {
            code: 429,
            retry_after,
            ..
        } => retry_after.map_or(Verdict::Backoff, Verdict::After),
        Error::Api { code, .. } | Error::Http { status: code, .. } if *code >= 500 => {
            Verdict::Backoff
        }
        // A 502 page from a proxy, a 404 page from a misrouted load balancer:
        // not Telegram's answer, so not its verdict.
        Error::Http { .. } => Verdict::Backoff,
        Error::Network { kind, .. } if *kind != crate::NetworkKind::PoolClosed => Verdict::Backoff,
        _ => Verdict::Never,
    }
}

/// A random duration in `[0, max)`.
pub(crate) fn jitter(max: Duration) -> Duration {
    max.mul_f64(fastrand::f64())
}

/// How long to wait after Telegram's `retry_after`: never less, plus up to
/// 250 ms so that the clients it slowed down do not all return at once.
pub(crate) fn after(retry_after: Duration) -> Duration {
    retry_after + jitter(Duration::from_millis(250))
}

/// Jittered exponential backoff: the ceiling grows ×1.5 per failure from
/// `first` up to `max`, and each delay is drawn from the upper half of it,
/// so retries of many bots do not line up. From 0.5 s, three failures in a
/// row cost at most 2.4 s; the 30 s cap is reached after ten.
#[derive(Debug)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    growth: f64,
    ceiling: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            growth: 1.5,
            ceiling: first,
        }
    }

    /// The backoff for transient failures everywhere (getUpdates, getMe at
    /// startup, handlers' calls): from 0.5 s, ×1.5, up to 30 s.
    pub(crate) fn transient() -> Backoff {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }

    /// The same, with the ceiling multiplied by `growth` per failure.
    pub(crate) fn growing(self, growth: f64) -> Backoff {
        Backoff { growth, ..self }
    }

    /// The next delay.
    pub(crate) fn next(&mut self) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = self.ceiling.mul_f64(self.growth).min(self.max);
        ceiling / 2 + jitter(ceiling / 2)
    }

    /// After a success: start again from the first delay.
    pub(crate) fn reset(&mut self) {
        self.ceiling = self.first;
    }
}

/// Calls `call` until it answers, for a call a run cannot start without
/// (`deleteWebhook` before polling, `setWebhook` before a webhook): network
/// trouble, 5xx and 429 are tried again, after the transient backoff or
/// Telegram's `retry_after`, with one warning for the episode and a line
/// when it ends. `None` if `shutdown` came first; `Some(Err)` for an answer
/// that trying again would not change (a rejected token among them).
pub(crate) async fn persist<T, F>(
    shutdown: &Shutdown,
    method: &str,
    mut call: impl FnMut() -> F,
) -> Option<Result<T, Error>>
where
    F: Future<Output = Result<T, Error>>,
{
    let mut backoff = Backoff::transient();
    let mut failing = false;
    loop {
        let error = match shutdown.race(call()).await? {
            Ok(answer) => {
                if failing {
                    log::info!("{method} answered");
                }
                return Some(Ok(answer));
            }
            Err(e) => e,
        };
        let delay = match verdict(&error) {
            Verdict::After(wait) => after(wait),
            Verdict::Backoff => backoff.next(),
            Verdict::Never => return Some(Err(error)),
        };
        if failing {
            log::debug!("{method} failed again error={error}; retrying in={delay:.1?}");
        } else {
            log::warn!("{method} failed error={error}; retrying in={delay:.1?} with backoff");
            failing = true;
        }
        if !shutdown.sleep(delay).await {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NetworkKind;

    fn api(code: u16, retry_after: Option<u64>) -> Error {
        Error::Api {
            method: "sendMessage".into(),
            code,
            description: String::new(),
            retry_after: retry_after.map(Duration::from_secs),
            migrate_to: None,
        }
    }

    #[test]
    fn backoff_grows_within_bounds_and_resets() {
        let mut b = Backoff::transient();
        let delays: Vec<_> = (0..15).map(|_| b.next()).collect();
        assert!(delays[0] >= Duration::from_millis(250) && delays[0] <= Duration::from_millis(500));
        assert!(
            delays[..3].iter().sum::<Duration>() <= Duration::from_millis(2375),
            "{delays:?}"
        );
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
        assert!(
            delays[14] >= Duration::from_secs(15),
            "capped at 30 s, drawn from its upper half"
        );
        b.reset();
        assert!(b.next() <= Duration::from_millis(500));
    }

    #[test]
    fn transient_errors_are_retried_and_refusals_are_not() {
        assert_eq!(
            verdict(&api(429, Some(3))),
            Verdict::After(Duration::from_secs(3))
        );
        assert_eq!(verdict(&api(500, None)), Verdict::Backoff);
        assert_eq!(verdict(&api(502, None)), Verdict::Backoff);
        assert_eq!(
            verdict(&Error::Http {
                method: "sendMessage".into(),
                status: 502
            }),
            Verdict::Backoff
        );
        let timeout = Error::Network {
            method: "sendMessage".into(),
            kind: NetworkKind::Timeout,
        };
        assert_eq!(verdict(&timeout), Verdict::Backoff);
        for refused in [400, 401, 403, 404] {
            assert_eq!(verdict(&api(refused, None)), Verdict::Never, "{refused}");
        }
        let closed = Error::Network {
            method: "sendMessage".into(),
            kind: NetworkKind::PoolClosed,
        };
        assert_eq!(verdict(&closed), Verdict::Never);
    }
}
