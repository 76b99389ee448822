//! The long-poll loop: `getUpdates`, the offset it confirms, and backoff.
//!
//! Telegram forgets every update below the offset we send, so the offset
//! comes from the dispatcher's watermark: it only moves past updates whose
//! handlers have *finished*. A SIGKILL at any instant then loses nothing and
//! repeats only unfinished work. While an update is held, Telegram answers
//! at once (with the held updates again) instead of long-polling, so the loop
//! waits for a handler to finish, or for a refresh interval that starts at
//! [`REFRESH_FIRST`] and doubles up to [`REFRESH_MAX`] while polls bring
//! nothing new: a slow handler delays other chats' updates by at most that
//! interval, at a cost of at most 20 → 1 `getUpdates` a second. Never a hot
//! loop.
//!
//! Before its first `getUpdates` the loop calls `deleteWebhook` (keeping
//! the pending updates): while a webhook is set, Telegram answers every
//! `getUpdates` with a 409, so a bot that ran as a webhook would poll in
//! vain forever. That call is tried until it answers, with the transient
//! backoff; a refusal other than the token's only costs the call, since a
//! 409 that names the webhook deletes it again (see: #13).
//!
//! Every error waits before the next try: `retry_after` exactly (plus a
//! little jitter, never less); a 409 (another instance polls the same
//! token) 1 s growing to 30 s, never an exit, so a deploy's new instance
//! takes over once the old one stops; a 409 that says a webhook is active
//! (one was set while we poll) first deletes it, then waits the same;
//! anything else jittered exponential backoff from 0.5 s to 30 s. A success
//! resets both. 401 and 404 mean the token is wrong or revoked: fatal. One
//! warning per episode, one line when it ends.
//!
//! Must not: run handlers (that is `dispatch`) or block the thread.

use std::time::Duration;

use async_io::Timer;
use futures_lite::future;

use crate::api::retry::{self, Backoff};
use crate::api::Client;
use crate::dispatch::Dispatcher;
use crate::metrics::{bump, Metrics};
use crate::readiness::Readiness;
use crate::{Error, Shutdown};

/// Telegram's largest `getUpdates` batch, and so the widest window of
/// unconfirmed updates the dispatcher can hold.
pub(crate) const WINDOW: usize = 100;

/// In a burst, poll again once no more than this many updates of the window
/// are in hand: each poll then brings at least 75 new ones, so 10,000
/// updates take about 130 polls instead of one per finished handler; the
/// 25 still running keep the handlers busy while the poll is under way.
const LOW_WATER: usize = WINDOW / 4;

/// While a handler holds the oldest update, look for new updates of other
/// chats this soon after a poll that brought nothing new…
const REFRESH_FIRST: Duration = Duration::from_millis(50);
/// …and twice as late after each further one, up to this.
const REFRESH_MAX: Duration = Duration::from_secs(1);

/// What the loop reports into: the run's counters and its readiness.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reports<'a> {
    pub(crate) metrics: &'a Metrics,
    pub(crate) readiness: &'a Readiness,
}

/// Polls until `shutdown` (returns the last offset sent) or a fatal error.
pub(crate) async fn run(
    client: &Client,
    dispatcher: &Dispatcher<'_>,
    shutdown: &Shutdown,
    reports: Reports<'_>,
    timeout: Duration,
) -> Result<Option<i64>, Error> {
    let Reports { metrics, readiness } = reports;
    if !take_over(client, shutdown).await? {
        return Ok(None);
    }
    let mut backoff = Backoff::transient();
    // A deploy's overlap ends within seconds, so 409 retries stay near 1 s at
    // first; a second instance that stays still backs us off to 30 s.
    let mut conflict_backoff =
        Backoff::new(Duration::from_secs(1), Duration::from_secs(30)).growing(1.25);
    let mut trouble: Option<(Trouble, u32)> = None;
    let mut last_sent = None;
    let mut nothing_new = false;
    let mut refresh = REFRESH_FIRST;
    loop {
        if shutdown
            .race(wait_for_room(dispatcher, nothing_new, refresh))
            .await
            .is_none()
        {
            return Ok(last_sent);
        }
        let (offset, in_hand) = dispatcher.send_offset();
        let allowed = dispatcher.allowed_updates();
        let poll = client.poll_updates(offset, WINDOW as u32, timeout, in_hand, allowed);
        let Some(result) = shutdown.race(poll).await else {
            return Ok(last_sent);
        };
        let error = match result {
            Ok(batch) => {
                if let Some((was, failures)) = trouble.take() {
                    log::info!("polling recovered after={was} failures={failures}");
                }
                backoff.reset();
                conflict_backoff.reset();
                readiness.polled();
                last_sent = offset.or(last_sent);
                nothing_new = dispatcher.accept(batch) == 0;
                refresh = if nothing_new {
                    (refresh * 2).min(REFRESH_MAX)
                } else {
                    REFRESH_FIRST
                };
                continue;
            }
            Err(e) if e.is_token_rejected() => return Err(e),
            Err(e) => e,
        };
        let kind = Trouble::of(&error);
        bump(match kind {
            // A 409 either way: the kind `conflict` counts both, as it always did.
            Trouble::Conflict | Trouble::Webhook => &metrics.poll_conflicts,
            Trouble::RateLimited => &metrics.poll_rate_limited,
            Trouble::Failing => &metrics.poll_failures,
        });
        // Someone else gets this bot's updates: `/readyz` says so until we poll again.
        readiness.set_conflict(matches!(kind, Trouble::Conflict | Trouble::Webhook));
        let delay = match (kind, error.retry_after()) {
            // Telegram's number, never less: an early retry only earns another 429.
            (_, Some(after)) => retry::after(after),
            // Growing like a poller's 409: a webhook that keeps coming back
            // (a webhook-mode instance that sets it again) is no hot loop.
            (Trouble::Conflict | Trouble::Webhook, None) => conflict_backoff.next(),
            (_, None) => backoff.next(),
        };
        match &mut trouble {
            Some((was, failures)) if *was == kind => {
                *failures += 1;
                log::debug!("getUpdates failed again error={error}; retrying in={delay:.1?}");
            }
            _ => {
                match kind {
                    Trouble::Conflict => log::warn!(
                        "another instance polls this bot (409) error={error}; \
                         backing off 1s to 30s and taking over when it stops"
                    ),
                    Trouble::Webhook => log::warn!(
                        "a webhook is set for this bot (409) error={error}; \
                         deleting it and polling again"
                    ),
                    _ => log::warn!(
                        "getUpdates failed error={error}; retrying in={delay:.1?} with backoff"
                    ),
                }
                trouble = Some((kind, 1));
            }
        }
        if kind == Trouble::Webhook {
            // Once per 409: if this try fails, the next poll's 409 brings us back.
            match shutdown.race(client.delete_webhook()).await {
                None => return Ok(last_sent),
                Some(Ok(())) => log::debug!("deleted the webhook; polling in={delay:.1?}"),
                Some(Err(e)) if e.is_token_rejected() => return Err(e),
                Some(Err(e)) => log::debug!("deleteWebhook failed error={e}; trying again"),
            }
        }
        if !shutdown.sleep(delay).await {
            return Ok(last_sent);
        }
    }
}

/// `deleteWebhook` before the first poll, until it answers: `true` once it
/// did (or refused for a reason retrying would not change), `false` if
/// stopped first. Network trouble, 5xx and 429 are tried again like
/// `getMe` at startup; a rejected token is the same fatal error as
/// anywhere else.
async fn take_over(client: &Client, shutdown: &Shutdown) -> Result<bool, Error> {
    match retry::persist(shutdown, "deleteWebhook", || client.delete_webhook()).await {
        None => Ok(false),
        Some(Ok(())) => Ok(true),
        Some(Err(e)) if e.is_token_rejected() => Err(e),
        Some(Err(e)) => {
            // A webhook still set shows as a 409 naming it, which deletes it.
            log::warn!("deleteWebhook refused error={e}; polling anyway");
            Ok(true)
        }
    }
}

/// A `getUpdates` failure episode; a change of kind is logged, a repeat is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trouble {
    /// 409: another poller holds the token.
    Conflict,
    /// 409 because a webhook is set: deleting it ends the episode.
    Webhook,
    /// 429: Telegram asked us to wait.
    RateLimited,
    /// 5xx, a proxy's page, the network, a body that is not JSON.
    Failing,
}

impl Trouble {
    fn of(error: &Error) -> Trouble {
        match error.status() {
            Some(409) if webhook_is_set(error) => Trouble::Webhook,
            Some(409) => Trouble::Conflict,
            Some(429) => Trouble::RateLimited,
            _ => Trouble::Failing,
        }
    }
}

impl std::fmt::Display for Trouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Trouble::Conflict => "conflict",
            Trouble::Webhook => "webhook",
            Trouble::RateLimited => "rate-limited",
            Trouble::Failing => "failing",
        })
    }
}

/// Whether a 409 says a webhook is set. Telegram's words: "Conflict: can't
/// use getUpdates method while webhook is active; use deleteWebhook to
/// delete the webhook first" (older servers stop after "active"). Its other
/// 409, "terminated by other getUpdates request", is another poller; so is
/// the old "terminated by other long poll or webhook", which names no
/// webhook that is set.
fn webhook_is_set(error: &Error) -> bool {
    matches!(error, Error::Api { code: 409, description, .. }
        if description.to_ascii_lowercase().contains("webhook is active"))
}

/// Waits until a poll can bring something new: room for three quarters of
/// a batch in the window (see [`LOW_WATER`]); or, if the last poll brought
/// only repeats of held updates, the oldest of them finished (the offset
/// moved); or `refresh`, to look for other chats' updates.
async fn wait_for_room(dispatcher: &Dispatcher<'_>, nothing_new: bool, refresh: Duration) {
    let offset = dispatcher.offset();
    let woken = dispatcher.until(|| {
        if nothing_new {
            // Repeats only: Telegram hands out the same updates until the
            // offset moves; a newer one finishing changes nothing it sends
            // (on one core that was a poll per finished handler).
            dispatcher.held() == 0 || dispatcher.offset() != offset
        } else {
            dispatcher.window() <= LOW_WATER
        }
    });
    if dispatcher.window() >= WINDOW {
        // A full window brings nothing new: only a finished handler helps.
        return woken.await;
    }
    let refresh = async {
        Timer::after(refresh).await;
    };
    future::or(woken, refresh).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conflict(description: &str) -> Error {
        Error::Api {
            method: "getUpdates".into(),
            code: 409,
            description: description.into(),
            retry_after: None,
            migrate_to: None,
        }
    }

    #[test]
    fn a_409_is_a_webhook_only_when_it_says_one_is_active() {
        for webhook in [
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            "Conflict: can't use getUpdates method while webhook is active",
        ] {
            assert_eq!(Trouble::of(&conflict(webhook)), Trouble::Webhook, "{webhook}");
        }
        for poller in [
            "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
            "Conflict: terminated by other long poll or webhook",
            "",
        ] {
            assert_eq!(Trouble::of(&conflict(poller)), Trouble::Conflict, "{poller}");
        }
        let page = Error::Http {
            method: "getUpdates".into(),
            status: 409,
        };
        assert_eq!(
            Trouble::of(&page),
            Trouble::Conflict,
            "no description to go by"
        );
    }
}
