//! Webhook mode: Telegram POSTs each update to a route on the health
//! listener instead of handing it out on `getUpdates` (see: #13).
//!
//! The route's contract with Telegram is the poller's with its offset: an
//! update is confirmed (answered 200) only once its handler has finished, so
//! a process that dies mid-handler has it sent again. The update runs in the
//! dispatcher's lanes like a polled one (per-chat order, the global cap, the
//! handler timeout, panics caught); a request whose handler has not finished
//! within the wait (default 25 s, under the Bot API server's 60 s per
//! request) is answered 503, Telegram sends it again, and the dispatcher
//! knows it: a held update is waited for, a finished one answered at once,
//! never run twice. Over [`MAX_HELD`] updates held, a new one is answered 503
//! untaken; nothing is ever dropped.
//!
//! A request is checked before its body is read: `POST` only (405), the
//! secret token compared in constant time (401), a `Content-Length` (411)
//! of at most [`MAX_BODY`] (413). A body that is not JSON is a 400; JSON
//! that breaks the schema is answered 200, logged and counted as skipped, as
//! in polling (Telegram would otherwise send it forever).
//!
//! [`run`] is the mode's side of a bot run: `setWebhook` until it answers
//! (its secret, `allowed_updates`, `max_connections`), then `getWebhookInfo`
//! every minute or so for readiness; meanwhile it hands each request's
//! update to the dispatcher. On stop the route answers 503 to new requests
//! (Telegram queues them), running handlers get the drain deadline, and the
//! webhook stays set, so Telegram keeps the updates while the bot restarts.
//!
//! Must not: read sockets or parse HTTP (that is `health` and `http`), run
//! handlers or keep its own idea of what is finished (that is `dispatch`),
//! or log the secret or the URL (whose path may be a secret of its own).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_channel::Sender;
use event_listener::Event;
use futures_lite::future;
use serde_json::value::RawValue;

use crate::api::methods::{GetWebhookInfo, SetWebhook};
use crate::api::retry;
use crate::api::types::{self, BadUpdate, Received};
use crate::api::{Client, Upload};
use crate::config::{WebhookConfig, WebhookSecret};
use crate::dispatch::{Dispatcher, Tracker};
use crate::http::{BodyLength, Head, Response};
use crate::metrics::{Answered, Metrics};
use crate::readiness::Readiness;
use crate::{wait, Error, Shutdown};

/// The largest body a request may have; an update is a few KB.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// Updates held (running or queued in a lane) over which a new one is
/// answered 503 and left to Telegram, which sends it again.
const MAX_HELD: usize = 1000;

/// Finished updates the dispatcher remembers, so that a resend of one is
/// answered without running it again.
const DONE_KEPT: usize = 1000;

/// The header Telegram sends the secret token in.
const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// An update on its way from a request to the dispatcher, and where the
/// run says it was taken: `Some` with what to wait on, `None` for one that
/// is skipped. A dropped sender means "not taken".
type Delivery = (Result<Received, BadUpdate>, Sender<Option<Tracker>>);

/// The route, shared by the listener's connections and the run.
#[derive(Debug)]
pub(crate) struct Inlet {
    path: String,
    secret: WebhookSecret,
    wait: Duration,
    /// The most requests Telegram sends at once: room in the listener's cap.
    max_connections: usize,
    metrics: Rc<Metrics>,
    shutdown: Shutdown,
    /// Whether [`run`] is taking deliveries.
    open: Cell<bool>,
    queue: RefCell<VecDeque<Delivery>>,
    arrived: Event,
    /// Requests whose update was handed over and whose answer is not out yet.
    answering: Cell<usize>,
    answered: Event,
    /// When a request was last answered 200, in Unix seconds.
    last_ok: Cell<i64>,
}

/// What the route made of a request head: read its body, of this length,
/// or answer at once.
pub(crate) type Admission = Result<usize, (Response, Answered)>;

impl Inlet {
    /// The route of `config`, checking requests against `secret`.
    pub(crate) fn new(
        config: &WebhookConfig,
        secret: WebhookSecret,
        metrics: Rc<Metrics>,
        shutdown: Shutdown,
    ) -> Inlet {
        Inlet {
            path: config.path().to_owned(),
            secret,
            wait: config.wait,
            max_connections: config.max_connections.unwrap_or(40) as usize,
            metrics,
            shutdown,
            open: Cell::new(false),
            queue: RefCell::default(),
            arrived: Event::new(),
            answering: Cell::new(0),
            answered: Event::new(),
            last_ok: Cell::new(0),
        }
    }

    /// The route's path, e.g. `/telegram`.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Whether a connection may stay open for the next request: not once
    /// a stop began.
    pub(crate) fn keeps(&self) -> bool {
        !self.shutdown.is_requested()
    }

    /// How many requests Telegram may send at once.
    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Checks a request head before its body is read: the method, the
    /// secret, the length. `Ok(length)`: read that many bytes and call
    /// [`answer`](Self::answer).
    pub(crate) fn admit(&self, head: &Head<'_>) -> Admission {
        let refuse = |status, body, how| Err((text(status, body), how));
        if head.method() != "POST" {
            let answer = Response {
                allow: Some("POST"),
                ..text(405, "method not allowed\n")
            };
            return Err((answer, Answered::BadRequest));
        }
        let secret = head.header(SECRET_HEADER).unwrap_or("");
        if !same(secret.as_bytes(), self.secret.expose().as_bytes()) {
            return refuse(401, "unauthorized\n", Answered::Unauthorized);
        }
        if self.shutdown.is_requested() || !self.open.get() {
            return refuse(503, "not taking updates now\n", Answered::Unavailable);
        }
        match head.body_length() {
            BodyLength::Encoded => {
                refuse(411, "a Content-Length is required\n", Answered::BadRequest)
            }
            BodyLength::Fixed(n) if n > MAX_BODY as u64 => {
                refuse(413, "body over 1 MiB\n", Answered::TooLarge)
            }
            BodyLength::Fixed(n) => Ok(n as usize),
        }
    }

    /// Answers an admitted request's body: hands its update to the run and
    /// waits, within the wait, for its handler to finish. The returned
    /// [`Answering`] counts the request as unanswered until it is dropped,
    /// after the answer is written.
    pub(crate) async fn answer(self: &Rc<Self>, body: &[u8]) -> (Response, Answering) {
        let answering = Answering::new(self);
        let (response, how) = self.settle(body).await;
        self.metrics.answered(how);
        if response.status == 200 {
            self.last_ok.set(unix_now());
        }
        (response, answering)
    }

    async fn settle(&self, body: &[u8]) -> (Response, Answered) {
        let raw = std::str::from_utf8(body)
            .ok()
            .and_then(|json| serde_json::from_str::<Box<RawValue>>(json).ok());
        let Some(raw) = raw else {
            return (text(400, "body is not JSON\n"), Answered::BadRequest);
        };
        let update = types::parse_update(raw);
        let id = match &update {
            Ok(received) => received.id(),
            Err(bad) => bad.id.unwrap_or(0),
        };
        let (taken, told) = async_channel::bounded(1);
        self.queue.borrow_mut().push_back((update, taken));
        self.arrived.notify(1);
        let waited = wait::within(self.wait, async {
            match told.recv().await {
                Ok(Some(tracker)) => {
                    tracker.finished(id).await;
                    Some(Answered::Ok)
                }
                Ok(None) => Some(Answered::Skipped),
                Err(_) => None,
            }
        });
        match waited.await {
            Some(Some(how)) => (text(200, ""), how),
            Some(None) => (text(503, "not taking updates now\n"), Answered::Unavailable),
            None => (text(503, "handler still running\n"), Answered::Slow),
        }
    }

    /// Waits until every request whose update was handed over has its
    /// answer written, up to `deadline`: a stop's last step before the
    /// listener goes.
    pub(crate) async fn settled(&self, deadline: Duration) {
        let done = wait::until(&self.answered, || self.answering.get() == 0);
        let _ = wait::within(deadline, done).await;
    }
}

/// A request counted as unanswered while this lives.
#[derive(Debug)]
pub(crate) struct Answering(Rc<Inlet>);

impl Answering {
    fn new(inlet: &Rc<Inlet>) -> Answering {
        inlet.answering.set(inlet.answering.get() + 1);
        Answering(Rc::clone(inlet))
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let inlet = &self.0;
        inlet.answering.set(inlet.answering.get() - 1);
        inlet.answered.notify(usize::MAX);
    }
}

/// What [`run`] reports into and reads from the run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run<'a> {
    pub(crate) client: &'a Client,
    pub(crate) config: &'a WebhookConfig,
    /// A self-signed certificate the listener serves, for `setWebhook`.
    pub(crate) certificate: Option<&'a Path>,
    pub(crate) readiness: &'a Readiness,
    pub(crate) shutdown: &'a Shutdown,
}

/// Webhook mode until `shutdown` or a fatal error: `setWebhook`, then
/// `getWebhookInfo` every `check_every`; all along, the route's updates
/// into `dispatcher`.
///
/// # Errors
/// A rejected token; [`Error::Config`] when Telegram refuses the webhook
/// (a URL it cannot call, say), which retrying would not change.
pub(crate) async fn run(
    inlet: &Inlet,
    dispatcher: &Dispatcher<'_>,
    run: Run<'_>,
) -> Result<(), Error> {
    inlet.open.set(true);
    let take = async {
        loop {
            wait::until(&inlet.arrived, || !inlet.queue.borrow().is_empty()).await;
            let deliveries: Vec<Delivery> = inlet.queue.borrow_mut().drain(..).collect();
            for delivery in deliveries {
                hand_over(dispatcher, delivery);
            }
        }
    };
    let watch = async {
        if register(inlet, dispatcher, run, run.config.drop_pending_updates).await? {
            watch(inlet, dispatcher, run).await?;
        }
        Ok(())
    };
    let result = future::or(watch, take).await;
    inlet.open.set(false);
    // Requests still queued were not taken: dropping them answers 503.
    inlet.queue.borrow_mut().clear();
    result
}

/// Gives one request's update to the dispatcher and tells the request
/// what to wait for.
fn hand_over(dispatcher: &Dispatcher<'_>, (update, taken): Delivery) {
    let skipped = update.is_err();
    if !skipped && dispatcher.held() >= MAX_HELD {
        // Dropping `taken` answers 503: Telegram keeps the update and sends it again.
        return;
    }
    dispatcher.accept(vec![update]);
    dispatcher.trim_done(DONE_KEPT);
    let _ = taken.try_send((!skipped).then(|| dispatcher.tracker()));
}

/// `setWebhook` until it answers. `false`: stopped first.
async fn register(
    inlet: &Inlet,
    dispatcher: &Dispatcher<'_>,
    run: Run<'_>,
    drop_pending: bool,
) -> Result<bool, Error> {
    let config = run.config;
    let allowed: Vec<String> = dispatcher
        .allowed_updates()
        .iter()
        .map(|kind| (*kind).to_owned())
        .collect();
    let mut call = SetWebhook::new(config.url.as_str())
        .secret_token(inlet.secret.expose())
        .allowed_updates(allowed)
        .drop_pending_updates(drop_pending);
    if let Some(max) = config.max_connections {
        call = call.max_connections(i64::from(max));
    }
    if let Some(path) = run.certificate {
        // Re-opened on each try, like any upload.
        call = call.certificate(Upload::path(path));
    }
    let client = run.client.without_retries();
    match retry::persist(run.shutdown, "setWebhook", || client.send(&call)).await {
        None => Ok(false),
        Some(Ok(_)) => {
            log::info!(
                "webhook set max_connections={} drop_pending_updates={drop_pending} certificate={}",
                inlet.max_connections,
                if run.certificate.is_some() {
                    "uploaded"
                } else {
                    "none"
                },
            );
            run.readiness.webhook_set();
            Ok(true)
        }
        Some(Err(e)) if e.is_token_rejected() => Err(e),
        Some(Err(e)) => Err(Error::Config(format!(
            "Telegram refused the webhook: {}",
            refusal(&e)
        ))),
    }
}

/// What Telegram said no with, without the method's name around it.
fn refusal(error: &Error) -> String {
    match error {
        Error::Api { description, .. } => description.clone(),
        other => other.to_string(),
    }
}

/// Asks `getWebhookInfo` every `check_every` whether Telegram delivers:
/// its last error, if newer than our last 200 and than the webhook, makes
/// the bot not ready with Telegram's words; a webhook gone or changed
/// elsewhere (a poller's `deleteWebhook`) is set again.
async fn watch(inlet: &Inlet, dispatcher: &Dispatcher<'_>, run: Run<'_>) -> Result<(), Error> {
    let client = run.client.without_retries();
    let mut set_at = unix_now();
    let mut lost = false;
    loop {
        if !run.shutdown.sleep(run.config.check_every).await {
            return Ok(());
        }
        let Some(info) = run.shutdown.race(client.send(&GetWebhookInfo::new())).await else {
            return Ok(());
        };
        let info = match info {
            Ok(info) => info,
            Err(e) if e.is_token_rejected() => return Err(e),
            Err(e) => {
                log::debug!("getWebhookInfo failed error={e}; asking again later");
                continue;
            }
        };
        inlet
            .metrics
            .webhook_pending
            .set(info.pending_update_count.max(0) as u64);
        if info.url != run.config.url {
            if !lost {
                log::warn!("the webhook was deleted or changed elsewhere; setting it again");
                lost = true;
            }
            run.readiness
                .set_delivery_trouble(Some("the webhook was deleted or changed elsewhere".into()));
            // Never drops pending updates again: only the start may.
            if !register(inlet, dispatcher, run, false).await? {
                return Ok(());
            }
            set_at = unix_now();
            continue;
        }
        if lost {
            log::info!("the webhook is this bot's again");
            lost = false;
        }
        // Whole seconds: an error in the second of our last 200 counts as
        // before it, one in the second of the webhook's setting as after.
        let newer = |at: i64| at >= set_at && at > inlet.last_ok.get();
        let trouble = match (info.last_error_date, info.last_error_message) {
            (Some(at), Some(message)) if newer(at) => Some(message),
            (Some(at), None) if newer(at) => Some("an error without a message".to_owned()),
            _ => None,
        };
        if let Some(why) = &trouble {
            log::warn!("Telegram reports it cannot deliver to the webhook error={why:?}");
        }
        run.readiness.set_delivery_trouble(trouble);
    }
}

/// Whether `a` and `b` are equal, in time that depends on their lengths
/// only, not on where they differ: a wrong secret must not tell how much of
/// it was right.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

fn text(status: u16, body: &'static str) -> Response {
    Response::new(status, "text/plain", body)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"abc"));
        assert!(!same(b"abc", b""));
        assert!(same(b"", b""));
    }
}
