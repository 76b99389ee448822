//! The long-poll loop: `getUpdates`, the offset it confirms, and backoff.
//!
//! Telegram forgets every update below the offset we send, so the offset
//! comes from the dispatcher's watermark: it only moves past updates whose
//! handlers have *finished*. A SIGKILL at any instant then loses nothing and
//! repeats only unfinished work. While an update is held, Telegram answers
//! at once (with the held updates again) instead of long-polling, so the loop
//! waits for a handler to finish, or at most [`REFRESH`], before it asks
//! again: never a hot loop.
//!
//! Every error waits before the next try: `retry_after` exactly (plus a
//! little jitter, never less), else jittered exponential backoff from 0.5 s
//! to 30 s, reset by a success. 401 and 404 mean the token is wrong or
//! revoked: fatal. One warning per failure episode, not per retry.
//!
//! Must not: run handlers (that is `dispatch`) or block the thread.

use std::time::Duration;

use async_io::Timer;
use futures_lite::future;

use crate::api::Client;
use crate::dispatch::Dispatcher;
use crate::{Error, Shutdown};

/// Telegram's largest `getUpdates` batch, and so the widest window of
/// unconfirmed updates the dispatcher can hold.
pub(crate) const WINDOW: usize = 100;

/// While a handler holds the oldest update, look for new updates of other
/// chats at least this often.
const REFRESH: Duration = Duration::from_millis(500);

/// Polls until `shutdown` (returns the last offset sent) or a fatal error.
pub(crate) async fn run(
    client: &Client,
    dispatcher: &Dispatcher<'_>,
    shutdown: &Shutdown,
    timeout: Duration,
) -> Result<Option<i64>, Error> {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut failing: Option<String> = None;
    let mut last_sent = None;
    let mut nothing_new = false;
    loop {
        if !wait_for_room(dispatcher, shutdown, nothing_new).await {
            return Ok(last_sent);
        }
        let offset = dispatcher.send_offset();
        let poll = async { Some(client.get_updates(offset, WINDOW as u32, timeout).await) };
        let Some(result) = future::or(poll, async {
            shutdown.requested().await;
            None
        })
        .await
        else {
            return Ok(last_sent);
        };
        last_sent = offset.or(last_sent);
        match result {
            Ok(batch) => {
                if let Some(error) = failing.take() {
                    log::info!("polling recovered after error={error:?}");
                }
                backoff.reset();
                nothing_new = dispatcher.accept(batch) == 0;
            }
            Err(e) if is_fatal(&e) => return Err(e),
            Err(e) => {
                let delay = match e.retry_after() {
                    Some(after) => after + jitter(Duration::from_millis(250)),
                    None => backoff.next(),
                };
                let summary = e.to_string();
                if failing.as_deref() != Some(summary.as_str()) {
                    log::warn!("getUpdates failed error={summary:?}; retrying in {delay:.1?}, warning once until it recovers");
                    failing = Some(summary);
                } else {
                    log::debug!("getUpdates failed again; retrying in {delay:.1?}");
                }
                if !sleep(delay, shutdown).await {
                    return Ok(last_sent);
                }
            }
        }
    }
}

/// 401 (token revoked) and 404 (no such bot): nothing to retry.
pub(crate) fn is_fatal(e: &Error) -> bool {
    matches!(
        e,
        Error::Api {
            code: 401 | 404,
            ..
        }
    )
}

/// Waits until a poll can bring something new: half a batch of room in the
/// window, and (if the last poll brought only repeats of held updates) a
/// finished handler, or [`REFRESH`] to look for other chats' updates.
/// `false`: stop was requested.
async fn wait_for_room(
    dispatcher: &Dispatcher<'_>,
    shutdown: &Shutdown,
    nothing_new: bool,
) -> bool {
    let ready =
        || dispatcher.window() <= WINDOW / 2 && !(nothing_new && dispatcher.in_flight() > 0);
    if shutdown.is_requested() {
        return false;
    }
    if ready() {
        return true;
    }
    // Listening before the second look: a handler finishing in between still wakes us.
    let finished = dispatcher.listen();
    if ready() {
        return true;
    }
    let full = dispatcher.window() >= WINDOW;
    let refresh = async {
        if full {
            // A full window brings nothing new: only a finished handler helps.
            future::pending::<()>().await;
        }
        Timer::after(REFRESH).await;
    };
    future::or(
        async {
            future::or(finished, refresh).await;
            true
        },
        async {
            shutdown.requested().await;
            false
        },
    )
    .await
}

/// Sleeps for `delay` unless a stop is requested first (`false`).
pub(crate) async fn sleep(delay: Duration, shutdown: &Shutdown) -> bool {
    future::or(
        async {
            Timer::after(delay).await;
            true
        },
        async {
            shutdown.requested().await;
            false
        },
    )
    .await
}

/// A random duration in `[0, max)`.
fn jitter(max: Duration) -> Duration {
    max.mul_f64(fastrand::f64())
}

/// Jittered exponential backoff: each delay doubles up to `max`, and is
/// drawn from its upper half so retries of many bots do not line up.
#[derive(Debug)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            current: first,
        }
    }

    /// The next delay.
    pub(crate) fn next(&mut self) -> Duration {
        let ceiling = self.current;
        self.current = (self.current * 2).min(self.max);
        ceiling / 2 + jitter(ceiling / 2)
    }

    /// After a success: start again from the first delay.
    pub(crate) fn reset(&mut self) {
        self.current = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let delays: Vec<_> = (0..10).map(|_| b.next()).collect();
        assert!(delays[0] >= Duration::from_millis(250) && delays[0] <= Duration::from_millis(500));
        assert!(delays[1] >= Duration::from_millis(500) && delays[1] <= Duration::from_secs(1));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
        assert!(
            delays[9] >= Duration::from_secs(15),
            "capped at 30 s, drawn from its upper half"
        );
        b.reset();
        assert!(b.next() <= Duration::from_millis(500));
    }

    #[test]
    fn only_an_unknown_token_is_fatal() {
        let api = |code| Error::Api {
            method: "getUpdates".into(),
            code,
            description: String::new(),
            retry_after: None,
            migrate_to: None,
        };
        assert!(is_fatal(&api(401)));
        assert!(is_fatal(&api(404)));
        assert!(!is_fatal(&api(409)));
        assert!(!is_fatal(&api(429)));
        assert!(!is_fatal(&Error::Http {
            method: "getUpdates".into(),
            status: 502
        }));
    }
}
