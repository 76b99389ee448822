//! Broadcasts: one message, or one built per chat, to a list of chats,
//! within Telegram's limits, with progress kept in the store (see: #16).
//!
//! A broadcast is sent one chat at a time. After each chat, sent or given
//! up, its progress is written and waited on until it is durable (the file
//! store is flushed at once, not at its next batch) before the next send
//! starts. So a SIGKILL at any instant repeats at most the one send that
//! was in flight, and loses none: the next start resumes at that chat.
//! The price is a durable write per chat, which a file store pays with an
//! fsync; at Telegram's 30 messages a second that is nothing.
//!
//! A chat is given up only on Telegram's word that it cannot be reached:
//! 403 (the user blocked the bot, it was kicked, the user is deactivated),
//! 400 (`chat not found`, or another refusal of this message for this
//! chat). Such chats are counted, recorded with the reason, and never tried
//! again. A 429 waits its `retry_after` (the client's limiter holds the
//! later sends too) and a network failure or a 5xx backs off; neither
//! skips the chat or counts against it.
//!
//! Broadcasts run one after another, in the order they were made: one
//! sequence of sends and one durable write at a time is what Telegram's
//! global limit allows anyway, unless paid ([`Broadcast::paid`]).
//!
//! What the store holds, under keys no [`State`](crate::state::State) type
//! can take (`@`): `@broadcasts`, the ids of the unfinished ones, in order;
//! `@bcast:<id>`, each one's record (what to send, how many chats, paid or
//! not); `@bcast:<id>:chats:<n>`, its chats, 1,024 to a page (a million
//! chats are a thousand values, not one); `@bcast:<id>:at`, its progress
//! (the next chat's index and the counts, a few bytes rewritten per chat);
//! `@bcast:<id>:failed:<k>`, the chats given up and why. A finished
//! broadcast leaves the index and its chat pages are removed; its record,
//! progress and failures stay 7 days, so its progress can still be read.
//!
//! Must not: send to a chat twice, except the one whose send a SIGKILL cut
//! (or a stop cut after its grace of 5 s); count a 429 or a network
//! failure as a chat's failure; or start a send once the stop is asked for.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_io::Timer;
use event_listener::Event;
use futures_lite::future::{self, BoxedLocal};
use futures_lite::FutureExt;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Ids, JobContext, JobId, Jobs};
use crate::api::generated::methods::SendMessage;
use crate::api::generated::Method;
use crate::api::retry::{self, Backoff, Verdict};
use crate::api::types::ChatId;
use crate::api::Client;
use crate::logger::panic_message;
use crate::metrics::{bump, Metrics};
use crate::state::{States, Written};
use crate::{wait, Error, HandlerError, Shutdown};

/// The key of the index of unfinished broadcasts.
const INDEX: &str = "@broadcasts";
/// Chats to a page of the stored list.
const PAGE: u64 = 1024;
/// How long a finished broadcast's progress stays readable.
const KEEP: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long a send in flight may still take once the stop is asked for;
/// one cut then may be sent again at the next start.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A broadcast to make: what to send, and to whom. Start it with
/// [`Context::broadcast`](crate::Context::broadcast) or
/// [`JobContext::broadcast`].
///
/// # Examples
/// ```
/// use smolgram::api::generated::methods::{SendMessage, SendPhoto};
/// use smolgram::api::generated::InputFile;
/// use smolgram::api::types::ChatId;
/// use smolgram::jobs::Broadcast;
///
/// let chats = (1..=500).map(ChatId);
/// let news = Broadcast::message(chats, &SendMessage::new(ChatId(0), "v2 is out"));
/// assert_eq!(news.len(), 500);
///
/// // Any send method; a file by its file_id (or URL), not an upload.
/// let photo = SendPhoto::new(ChatId(0), InputFile::file_id("AgACAgIAAxkBAAIB")).caption("our new logo");
/// let _paid = Broadcast::message([ChatId(7), ChatId(8)], &photo).paid(true);
///
/// // Built per chat by a builder registered on the bot (Bot::broadcaster).
/// let _built = Broadcast::built([ChatId(7)], "digest");
/// ```
#[derive(Debug)]
pub struct Broadcast {
    chats: Vec<ChatId>,
    what: What,
    paid: bool,
}

/// What a broadcast sends.
#[derive(Debug)]
enum What {
    /// One method's parameters (`chat_id` replaced per chat), or why they
    /// could not be taken (an upload).
    Message {
        method: &'static str,
        params: Result<Value, String>,
    },
    /// Built per chat by the builder of this name.
    Built(String),
}

impl Broadcast {
    /// Sends `message` (any Bot API send method: [`SendMessage`],
    /// `SendPhoto` by file id, `CopyMessage`, …) to each of `chats`, its
    /// `chat_id` replaced by the chat's. A chat listed twice gets it twice.
    ///
    /// A file must be a `file_id` or a URL: an upload from disk or memory
    /// is refused when the broadcast is started (upload it once, then
    /// broadcast its `file_id`).
    pub fn message<M: Method>(chats: impl IntoIterator<Item = ChatId>, message: &M) -> Broadcast {
        Broadcast {
            chats: chats.into_iter().collect(),
            what: What::Message {
                method: M::NAME,
                params: serde_json::to_value(message).map_err(|e| e.to_string()),
            },
            paid: false,
        }
    }

    /// Sends to each of `chats` the message that the builder registered as
    /// `name` ([`Bot::broadcaster`](crate::Bot::broadcaster)) makes for it,
    /// when its turn comes; a chat it makes none for is skipped.
    pub fn built(chats: impl IntoIterator<Item = ChatId>, name: &str) -> Broadcast {
        Broadcast {
            chats: chats.into_iter().collect(),
            what: What::Built(name.to_owned()),
            paid: false,
        }
    }

    /// A paid broadcast: each send carries `allow_paid_broadcast` (Telegram
    /// charges Stars for it) and may go at up to 1,000 a second instead of
    /// 30. Each chat's own limit still holds.
    pub fn paid(mut self, paid: bool) -> Broadcast {
        self.paid = paid;
        self
    }

    /// How many chats it goes to.
    pub fn len(&self) -> usize {
        self.chats.len()
    }

    /// Whether it goes to no chat at all (it then finishes at once).
    pub fn is_empty(&self) -> bool {
        self.chats.is_empty()
    }
}

/// A broadcast's id: `bc#` and a suffix unique to it (`bc#lq2x5c-1`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BroadcastId(String);

impl BroadcastId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BroadcastId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for BroadcastId {
    fn from(id: &str) -> BroadcastId {
        BroadcastId(id.to_owned())
    }
}

/// How far a broadcast got, as the store has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Chats Telegram took the message for.
    pub sent: u64,
    /// Chats given up for good: the bot is blocked, the chat does not exist.
    pub failed: u64,
    /// Chats the builder made no message for.
    pub skipped: u64,
    /// Chats still to go.
    pub remaining: u64,
    /// Whether it is finished: every chat sent, given up or skipped.
    pub done: bool,
    /// The chats given up, and why, in the order they were.
    pub failures: Vec<Failure>,
}

/// A chat a broadcast gave up, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The chat.
    pub chat: ChatId,
    /// Why.
    pub reason: Reason,
}

/// Why a broadcast gave a chat up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// 403: the user blocked the bot, the bot was kicked from the group,
    /// or the user is deactivated; Telegram's words.
    Blocked(String),
    /// 400 `chat not found`: no such chat, or the bot was never in it.
    NotFound,
    /// Another refusal of this message for this chat (a 400 such as
    /// `message is too long`): trying again would fail the same way.
    Refused {
        /// Telegram's `error_code`.
        code: u16,
        /// Telegram's `description`.
        description: String,
    },
    /// The builder failed or panicked for this chat.
    Build(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Blocked(words) => write!(f, "blocked: {words}"),
            Reason::NotFound => f.write_str("chat not found"),
            Reason::Refused { code, description } => write!(f, "refused {code}: {description}"),
            Reason::Build(e) => write!(f, "builder failed: {e}"),
        }
    }
}

/// A per-chat message builder, registered on the bot by name.
pub(crate) type Builder =
    Rc<dyn Fn(JobContext, ChatId) -> BoxedLocal<Result<Option<SendMessage>, HandlerError>>>;

/// What the store keeps of a broadcast.
#[derive(Serialize, Deserialize)]
struct Record {
    /// A message's method and parameters; or `builder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    builder: Option<String>,
    chats: u64,
    #[serde(default)]
    paid: bool,
}

/// A broadcast's progress in the store.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct At {
    /// The index of the next chat to send to.
    next: u64,
    sent: u64,
    failed: u64,
    #[serde(default)]
    skipped: u64,
    #[serde(default)]
    done: bool,
}

/// The run's broadcasts: the builders, and the queue of unfinished ones.
pub(crate) struct Broadcasts {
    builders: HashMap<String, Builder>,
    metrics: Rc<Metrics>,
    /// The unfinished broadcasts, in order: what the index holds.
    queue: RefCell<Vec<BroadcastId>>,
    /// Set once the index is read; starts wait for it, so an index
    /// written before would not drop the stored ones.
    loaded: Cell<bool>,
    /// A broadcast was made, or the index was read.
    changed: Event,
    ids: Ids,
}

impl Broadcasts {
    pub(crate) fn new(builders: HashMap<String, Builder>, metrics: Rc<Metrics>) -> Broadcasts {
        Broadcasts {
            builders,
            metrics,
            queue: RefCell::default(),
            loaded: Cell::new(false),
            changed: Event::new(),
            ids: Ids::new(millis(SystemTime::now())),
        }
    }

    /// Whether broadcast `id` was started by an earlier run of the same
    /// update: queued (its index is stored again, in case that run failed
    /// on it), or done. A record without either was cut before its index,
    /// and is written again whole.
    async fn started_before(
        &self,
        states: &States,
        written: &Written,
        id: &BroadcastId,
    ) -> Result<bool, Error> {
        if self.queue.borrow().contains(id) {
            self.store_index(states, written).await?;
            return Ok(true);
        }
        Ok(self
            .progress(states, written, id)
            .await?
            .is_some_and(|progress| progress.done))
    }

    /// Stores `broadcast` for `written`'s update (or job) and queues it;
    /// in a run of an update that already started it, only says its id.
    pub(crate) async fn start(
        &self,
        states: &States,
        written: &Written,
        broadcast: Broadcast,
    ) -> Result<BroadcastId, Error> {
        let Broadcast { chats, what, paid } = broadcast;
        let mut record = Record {
            method: None,
            params: None,
            builder: None,
            chats: chats.len() as u64,
            paid,
        };
        match what {
            What::Message { method, params } => {
                let params = params.map_err(|e| {
                    Error::Config(format!(
                        "a broadcast of {method}: {e}; broadcast a file by its file_id or URL"
                    ))
                })?;
                if !params.is_object() {
                    return Err(Error::Config(format!(
                        "a broadcast of {method}: its parameters are not an object"
                    )));
                }
                record.method = Some(method.to_owned());
                record.params = Some(params);
            }
            What::Built(name) => {
                if !self.builders.contains_key(&name) {
                    return Err(Error::Config(format!(
                        "no broadcast builder `{name}`: add one with Bot::broadcaster"
                    )));
                }
                record.builder = Some(name);
            }
        }
        wait::until(&self.changed, || self.loaded.get()).await;
        let id = BroadcastId(self.ids.next("bc", written));
        if self.started_before(states, written, &id).await? {
            log::info!("broadcast already started id={id}; the update that starts it ran again");
            return Ok(id);
        }
        // The index last: a broadcast half written is not resumed.
        for (n, page) in chats.chunks(PAGE as usize).enumerate() {
            states
                .put_json(&page_key(&id, n as u64), &page, None, written)
                .await?;
        }
        states.put_json(&key(&id), &record, None, written).await?;
        states
            .put_json(&at_key(&id), &At::default(), None, written)
            .await?;
        self.queue.borrow_mut().push(id.clone());
        if let Err(e) = self.store_index(states, written).await {
            self.queue.borrow_mut().retain(|queued| *queued != id);
            return Err(e);
        }
        let remaining = &self.metrics.broadcast_remaining;
        remaining.set(remaining.get() + record.chats);
        self.changed.notify(usize::MAX);
        log::info!(
            "broadcast started id={id} chats={} paid={paid}",
            record.chats
        );
        Ok(id)
    }

    /// The progress of `id` as the store has it; `None` if there is no
    /// such broadcast (or it finished more than 7 days ago).
    pub(crate) async fn progress(
        &self,
        states: &States,
        written: &Written,
        id: &BroadcastId,
    ) -> Result<Option<Progress>, Error> {
        let Some(record) = states.get_json::<Record>(&key(id), written).await? else {
            return Ok(None);
        };
        let at = states
            .get_json::<At>(&at_key(id), written)
            .await?
            .unwrap_or_default();
        let mut failures = Vec::new();
        for k in 0..at.failed {
            if let Some(failure) = states
                .get_json::<Failure>(&failed_key(id, k), written)
                .await?
            {
                failures.push(failure);
            }
        }
        Ok(Some(Progress {
            sent: at.sent,
            failed: at.failed,
            skipped: at.skipped,
            remaining: record.chats.saturating_sub(at.next),
            done: at.done,
            failures,
        }))
    }

    /// Reads the index, and counts what the unfinished broadcasts have
    /// still to send.
    async fn load(&self, states: &States) -> Result<(), Error> {
        let written = Written::default();
        let ids = states
            .get_json::<Vec<BroadcastId>>(INDEX, &written)
            .await?
            .unwrap_or_default();
        let mut remaining = 0;
        for id in &ids {
            let Some(record) = states.get_json::<Record>(&key(id), &written).await? else {
                continue;
            };
            let at = states
                .get_json::<At>(&at_key(id), &written)
                .await?
                .unwrap_or_default();
            remaining += record.chats.saturating_sub(at.next);
        }
        if !ids.is_empty() {
            log::info!("broadcasts to resume count={} chats={remaining}", ids.len());
        }
        *self.queue.borrow_mut() = ids;
        self.metrics.broadcast_remaining.set(remaining);
        Ok(())
    }

    async fn store_index(&self, states: &States, written: &Written) -> Result<(), Error> {
        let ids = self.queue.borrow().clone();
        states.put_json(INDEX, &ids, None, written).await
    }

    fn count_done(&self) {
        let remaining = &self.metrics.broadcast_remaining;
        remaining.set(remaining.get().saturating_sub(1));
    }
}

/// How one chat's turn ended.
enum Outcome {
    Sent,
    Failed(Reason),
    Skipped,
}

/// What a running broadcast needs at hand.
struct Run<'a> {
    jobs: &'a Rc<Jobs>,
    client: Client,
    states: &'a Rc<States>,
    shutdown: &'a Shutdown,
    id: &'a BroadcastId,
}

/// Sends the broadcasts, resuming stored ones, until `shutdown`.
pub(crate) async fn run(jobs: Rc<Jobs>, client: Client, states: Rc<States>, shutdown: Shutdown) {
    let broadcasts = &jobs.broadcasts;
    let loaded = persist(&shutdown, "the broadcasts could not be read", || {
        broadcasts.load(&states)
    });
    if loaded.await.is_none() {
        return;
    }
    broadcasts.loaded.set(true);
    broadcasts.changed.notify(usize::MAX);
    loop {
        let changed = broadcasts.changed.listen();
        if shutdown.is_requested() {
            return;
        }
        let next = broadcasts.queue.borrow().first().cloned();
        let Some(id) = next else {
            if shutdown.race(changed).await.is_none() {
                return;
            }
            continue;
        };
        let run = Run {
            jobs: &jobs,
            client: client.clone(),
            states: &states,
            shutdown: &shutdown,
            id: &id,
        };
        if !run.send_all().await {
            log::info!("broadcast paused by the stop id={id}; it resumes at the next start");
            return;
        }
        run.finish().await;
    }
}

impl Run<'_> {
    /// Sends to every chat from the stored progress on; `false` if the
    /// stop came first.
    async fn send_all(&self) -> bool {
        let (broadcasts, id) = (&self.jobs.broadcasts, self.id);
        let Some(record) = self.read::<Record>(&key(id)).await else {
            return false;
        };
        let Some(record) = record else {
            log::warn!("broadcast id={id} has no record in the store; dropped");
            return true;
        };
        let Some(at) = self.read::<At>(&at_key(id)).await else {
            return false;
        };
        let mut at = at.unwrap_or_default();
        let client = if record.paid {
            self.client.for_paid_broadcast()
        } else {
            self.client.clone()
        };
        let mut page: Option<(u64, Vec<ChatId>)> = None;
        while at.next < record.chats {
            if self.shutdown.is_requested() {
                return false;
            }
            let n = at.next / PAGE;
            if page.as_ref().is_none_or(|(loaded, _)| *loaded != n) {
                let Some(chats) = self.read::<Vec<ChatId>>(&page_key(id, n)).await else {
                    return false;
                };
                let Some(chats) = chats else {
                    log::warn!(
                        "broadcast id={id} lost its chats from {}; finished there",
                        at.next
                    );
                    break;
                };
                page = Some((n, chats));
            }
            let chat = page
                .as_ref()
                .and_then(|(_, chats)| chats.get((at.next % PAGE) as usize).copied());
            let Some(chat) = chat else {
                log::warn!(
                    "broadcast id={id} lost its chats from {}; finished there",
                    at.next
                );
                break;
            };
            let Some(outcome) = self.deliver(&client, &record, chat).await else {
                return false;
            };
            let mut failure = None;
            match outcome {
                Outcome::Sent => {
                    at.sent += 1;
                    bump(&broadcasts.metrics.broadcast_sent);
                }
                Outcome::Failed(reason) => {
                    log::debug!("broadcast id={id} gave up chat={} reason={reason}", chat.0);
                    failure = Some((at.failed, Failure { chat, reason }));
                    at.failed += 1;
                    bump(&broadcasts.metrics.broadcast_failed);
                }
                Outcome::Skipped => at.skipped += 1,
            }
            at.next += 1;
            // Durable before the next send: a SIGKILL from here on does not
            // send this chat's message again (see the module docs).
            if !self.save(failure.as_ref(), &at).await {
                return false;
            }
            broadcasts.count_done();
        }
        true
    }

    /// One chat's turn: built if need be, sent until Telegram takes it or
    /// refuses it for good. `None` if the stop came first.
    async fn deliver(&self, client: &Client, record: &Record, chat: ChatId) -> Option<Outcome> {
        let id = self.id;
        let mut backoff = Backoff::transient();
        let mut failing = false;
        loop {
            let (method, mut params) = match (&record.method, &record.params, &record.builder) {
                (Some(method), Some(params), _) => (method.as_str(), params.clone()),
                (_, _, Some(name)) => match self.build(name, chat).await {
                    Ok(Some(message)) => match serde_json::to_value(&message) {
                        Ok(params) => (SendMessage::NAME, params),
                        Err(e) => return Some(Outcome::Failed(Reason::Build(e.to_string()))),
                    },
                    Ok(None) => return Some(Outcome::Skipped),
                    Err(reason) => return Some(Outcome::Failed(reason)),
                },
                _ => {
                    return Some(Outcome::Failed(Reason::Build(
                        "the record names neither a message nor a builder".into(),
                    )))
                }
            };
            if let Some(params) = params.as_object_mut() {
                params.insert("chat_id".into(), chat.0.into());
                if record.paid {
                    params.insert("allow_paid_broadcast".into(), true.into());
                }
            }
            let sent = async { Some(client.call::<IgnoredAny>(method, &params).await) };
            let cut = async {
                self.shutdown.requested().await;
                Timer::after(STOP_GRACE).await;
                None
            };
            let Some(result) = future::or(sent, cut).await else {
                log::info!(
                    "broadcast id={id} stopped with a send in flight chat={}; it may get the message again at the next start",
                    chat.0
                );
                return None;
            };
            let error = match result {
                Ok(_) => {
                    if failing {
                        log::info!("broadcast id={id} sends again");
                    }
                    return Some(Outcome::Sent);
                }
                Err(error) => error,
            };
            let delay = match judge(&error) {
                Judged::Final(reason) => return Some(Outcome::Failed(reason)),
                Judged::After(after) => retry::after(after),
                Judged::Backoff => backoff.next(),
            };
            if failing {
                log::debug!(
                    "broadcast id={id} failed again error={error}; retrying in={delay:.1?}"
                );
            } else {
                log::warn!(
                    "broadcast id={id} cannot send error={error}; retrying chat={} in={delay:.1?}, then with backoff",
                    chat.0
                );
                failing = true;
            }
            if !self.shutdown.sleep(delay).await {
                return None;
            }
        }
    }

    /// The builder `name`'s message for `chat`, a panic caught.
    async fn build(&self, name: &str, chat: ChatId) -> Result<Option<SendMessage>, Reason> {
        let broadcasts = &self.jobs.broadcasts;
        let Some(builder) = broadcasts.builders.get(name).cloned() else {
            return Err(Reason::Build(format!(
                "no broadcast builder `{name}` in this bot"
            )));
        };
        let ctx = JobContext::new(
            JobId::from(self.id.as_str()),
            self.jobs.scheduler.now(),
            self.client.clone(),
            Rc::clone(self.jobs),
            Rc::clone(self.states),
        );
        match AssertUnwindSafe(builder(ctx, chat)).catch_unwind().await {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(e)) => Err(Reason::Build(e.to_string())),
            Err(panic) => Err(Reason::Build(format!(
                "panicked: {}",
                panic_message(&*panic)
            ))),
        }
    }

    /// Writes the progress (and a failure) and waits until it is durable,
    /// trying again while the store fails; `false` if the stop came first.
    async fn save(&self, failure: Option<&(u64, Failure)>, at: &At) -> bool {
        let (states, id) = (self.states, self.id);
        persist(
            self.shutdown,
            "broadcast progress could not be stored",
            || async move {
                let written = Written::default();
                if let Some((k, failure)) = failure {
                    states
                        .put_json(&failed_key(id, *k), failure, None, &written)
                        .await?;
                }
                states.put_json(&at_key(id), at, None, &written).await?;
                durable(states, &written).await
            },
        )
        .await
        .is_some()
    }

    /// Takes a finished broadcast out of the index; its record, progress
    /// and failures are kept for [`KEEP`], its chats removed.
    async fn finish(&self) {
        let (broadcasts, states, id) = (&self.jobs.broadcasts, self.states, self.id);
        broadcasts.queue.borrow_mut().retain(|queued| queued != id);
        let written = Written::default();
        let finished = async {
            broadcasts.store_index(states, &written).await?;
            let Some(record) = states.get_json::<Record>(&key(id), &written).await? else {
                return Ok(At::default());
            };
            let mut at = states
                .get_json::<At>(&at_key(id), &written)
                .await?
                .unwrap_or_default();
            at.done = true;
            states
                .put_json(&key(id), &record, Some(KEEP), &written)
                .await?;
            states
                .put_json(&at_key(id), &at, Some(KEEP), &written)
                .await?;
            for k in 0..at.failed {
                let key = failed_key(id, k);
                if let Some(failure) = states.get_json::<Failure>(&key, &written).await? {
                    states
                        .put_json(&key, &failure, Some(KEEP), &written)
                        .await?;
                }
            }
            for n in 0..record.chats.div_ceil(PAGE) {
                states.put(&page_key(id, n), None, None, &written).await?;
            }
            durable(states, &written).await?;
            Ok::<At, Error>(at)
        };
        match finished.await {
            Ok(at) => log::info!(
                "broadcast finished id={id} sent={} failed={} skipped={}",
                at.sent,
                at.failed,
                at.skipped
            ),
            // Still in the stored index: the next start finds it done and finishes it.
            Err(e) => log::warn!("broadcast finished id={id}, but the store failed error={e}; tidied at the next start"),
        }
    }

    /// Reads `key`, trying again while the store fails; `None` if the stop
    /// came first.
    async fn read<T: DeserializeOwned>(&self, key: &str) -> Option<Option<T>> {
        let states = self.states;
        persist(
            self.shutdown,
            "broadcast could not be read",
            || async move { states.get_json::<T>(key, &Written::default()).await },
        )
        .await
    }
}

/// What a failed send means for its chat.
#[derive(Debug, PartialEq, Eq)]
enum Judged {
    /// Given up for good.
    Final(Reason),
    /// Tried again after this long (Telegram's `retry_after`).
    After(Duration),
    /// Tried again after the next backoff delay.
    Backoff,
}

/// Whether `error` gives its chat up: only Telegram's refusal of this
/// chat (a 4xx other than 429, and other than the token's own 401 and
/// 404, after which the run ends anyway) does.
fn judge(error: &Error) -> Judged {
    match error {
        Error::Api {
            code: 403,
            description,
            ..
        } => Judged::Final(Reason::Blocked(description.clone())),
        Error::Api {
            code: 400,
            description,
            ..
        } if description.contains("chat not found") => Judged::Final(Reason::NotFound),
        e if e.is_token_rejected() => Judged::Backoff,
        Error::Api {
            code: code @ 400..=499,
            description,
            retry_after: None,
            ..
        } if *code != 429 => Judged::Final(Reason::Refused {
            code: *code,
            description: description.clone(),
        }),
        e => match retry::verdict(e) {
            Verdict::After(after) => Judged::After(after),
            _ => Judged::Backoff,
        },
    }
}

/// Calls `attempt` until it succeeds, backing off while it fails (one
/// warning per episode, a line when it ends); `None` if the stop came first.
async fn persist<T, F: Future<Output = Result<T, Error>>>(
    shutdown: &Shutdown,
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> Option<T> {
    let mut backoff = Backoff::transient();
    let mut failing = false;
    loop {
        match attempt().await {
            Ok(value) => {
                if failing {
                    log::info!("broadcast store answers again");
                }
                return Some(value);
            }
            Err(e) => {
                let delay = backoff.next();
                if !failing {
                    log::warn!("{what} error={e}; trying again in={delay:.1?}, then with backoff");
                    failing = true;
                }
                if !shutdown.sleep(delay).await {
                    return None;
                }
            }
        }
    }
}

/// Waits until every write of `written` is durable, flushing the store
/// now rather than at its next batch.
async fn durable(states: &States, written: &Written) -> Result<(), Error> {
    if let Some(seq) = written.pending() {
        let store = states.store();
        store.flush().await.map_err(Error::State)?;
        store.durable(seq).await;
    }
    Ok(())
}

impl JobContext {
    /// Starts `broadcast`; see [`Context::broadcast`](crate::Context::broadcast).
    ///
    /// # Errors
    /// As [`Context::broadcast`](crate::Context::broadcast).
    pub async fn broadcast(&self, broadcast: Broadcast) -> Result<BroadcastId, Error> {
        let (states, written) = self.states();
        self.jobs()
            .broadcasts
            .start(states, written, broadcast)
            .await
    }

    /// The progress of broadcast `id`; see
    /// [`Context::broadcast_progress`](crate::Context::broadcast_progress).
    ///
    /// # Errors
    /// [`Error::State`] if the store failed.
    pub async fn broadcast_progress(&self, id: &BroadcastId) -> Result<Option<Progress>, Error> {
        let (states, written) = self.states();
        self.jobs().broadcasts.progress(states, written, id).await
    }
}

fn key(id: &BroadcastId) -> String {
    format!("@bcast:{id}")
}

fn at_key(id: &BroadcastId) -> String {
    format!("@bcast:{id}:at")
}

fn page_key(id: &BroadcastId, n: u64) -> String {
    format!("@bcast:{id}:chats:{n}")
}

fn failed_key(id: &BroadcastId, k: u64) -> String {
    format!("@bcast:{id}:failed:{k}")
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, description: &str, retry_after: Option<u64>) -> Error {
        Error::Api {
            method: "sendMessage".into(),
            code,
            description: description.into(),
            retry_after: retry_after.map(Duration::from_secs),
            migrate_to: None,
        }
    }

    #[test]
    fn only_telegrams_refusal_of_the_chat_gives_it_up() {
        let blocked = "Forbidden: bot was blocked by the user";
        assert_eq!(
            judge(&api(403, blocked, None)),
            Judged::Final(Reason::Blocked(blocked.into()))
        );
        assert_eq!(
            judge(&api(400, "Bad Request: chat not found", None)),
            Judged::Final(Reason::NotFound)
        );
        assert!(matches!(
            judge(&api(400, "Bad Request: message is too long", None)),
            Judged::Final(Reason::Refused { code: 400, .. })
        ));
        // A 429 waits, whatever else it says; 5xx, the network and a
        // rejected token back off: the chat is tried again.
        assert_eq!(
            judge(&api(429, "Too Many Requests: retry after 3", Some(3))),
            Judged::After(Duration::from_secs(3))
        );
        assert_eq!(judge(&api(429, "Too Many Requests", None)), Judged::Backoff);
        assert_eq!(judge(&api(502, "Bad Gateway", None)), Judged::Backoff);
        assert_eq!(judge(&api(401, "Unauthorized", None)), Judged::Backoff);
        let down = Error::Network {
            method: "sendMessage".into(),
            kind: crate::NetworkKind::Connect,
        };
        assert_eq!(judge(&down), Judged::Backoff);
    }

    #[test]
    fn a_chat_list_is_paged_and_its_keys_name_the_broadcast() {
        let id = BroadcastId::from("bc#x-1");
        assert_eq!(page_key(&id, 3), "@bcast:bc#x-1:chats:3");
        assert_eq!(failed_key(&id, 0), "@bcast:bc#x-1:failed:0");
        assert_eq!((2048_u64).div_ceil(PAGE), 2);
        assert_eq!((2049_u64).div_ceil(PAGE), 3);
    }

    #[test]
    fn an_upload_is_refused_when_the_broadcast_is_made() {
        use crate::api::generated::methods::SendPhoto;
        use crate::api::generated::InputFile;
        use crate::api::Upload;
        let photo = SendPhoto::new(ChatId(0), Upload::bytes("a.jpg", vec![1, 2, 3]));
        let b = Broadcast::message([ChatId(1)], &photo);
        assert!(matches!(b.what, What::Message { params: Err(_), .. }));
        let by_id = Broadcast::message(
            [ChatId(1)],
            &SendPhoto::new(ChatId(0), InputFile::file_id("AgAC")),
        );
        let What::Message {
            params: Ok(params), ..
        } = by_id.what
        else {
            panic!("a file_id is taken");
        };
        assert_eq!(params["photo"], "AgAC");
    }
}
