//! The fake's memory: the update queue and its confirmation, the message ids
//! per chat, every call the bot made, the messages it sent, the connections
//! it accepted, the webhook, and the scripted faults.
//!
//! Two threads touch it: the server thread answering requests and the test
//! thread pushing updates and waiting for effects. So it sits behind one
//! `Mutex`; every change bumps a version and notifies a `Condvar`, so that
//! [`FakeApi::wait_until`](super::FakeApi::wait_until) re-checks exactly when
//! something happened. Pushes, newly armed faults and newer `getUpdates`
//! calls also fire an `Event`, which wakes the long poll waiting on the
//! server's executor; a change of the queue, of a webhook post or of the
//! webhook fires the webhook deliverers' two (testkit/deliver.rs).
//!
//! One mechanism, one file: the state is some 470 lines; the rest is its
//! tests, which pin down Telegram's offset, conflict and webhook rules.
//!
//! Must not: do I/O, or hold the lock while anything waits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use event_listener::{Event, EventListener};
use serde_json::{json, Value};

use super::multipart::Files;
use super::{Fault, Sent, Webhook, BOT_ID};
use crate::api::types::{ChatId, MessageId, UserId};
use crate::Shutdown;

/// The state and the three ways to wait for it.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes test threads blocked in `wait_until`.
    changed: Condvar,
    /// Wakes the waiting long poll: new updates, a newly armed fault, or a newer `getUpdates`.
    polls: Event,
    /// Wakes the webhook deliverers with a slot in use: a change of the
    /// queue or of a post may give them work.
    deliveries: Event,
    /// Wakes every deliverer: the webhook or where it goes changed, which
    /// may put a slot to use or out of it.
    webhooks: Event,
    /// Ends the accept loop when the handle is dropped.
    pub(crate) stop: Shutdown,
}

impl Shared {
    /// Runs `f` on the state; wakes `wait_until` if `f` changed anything.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.lock();
        let before = (state.version, state.queue_version, state.webhook_version);
        let out = f(&mut state);
        let after = (state.version, state.queue_version, state.webhook_version);
        drop(state);
        if after.0 != before.0 {
            self.changed.notify_all();
        }
        // Only what may change `next_post`'s answer wakes a deliverer: a
        // burst's every call and reply would otherwise wake them all for
        // nothing, on the thread that serves those calls.
        if after.2 != before.2 {
            self.webhooks.notify(usize::MAX);
        }
        if after.1 != before.1 || after.2 != before.2 {
            self.deliveries.notify(usize::MAX);
        }
        out
    }

    /// The version now; compare with [`wait_for_change`](Self::wait_for_change).
    pub(crate) fn version(&self) -> u64 {
        self.lock().version
    }

    /// Blocks until the version differs from `seen`; `false` if `until` came first.
    pub(crate) fn wait_for_change(&self, seen: u64, until: Instant) -> bool {
        let mut state = self.lock();
        while state.version == seen {
            let Some(left) = until
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                return false;
            };
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Wakes `wait_until` to look again at something outside the state (a
    /// test bot's run that ended, say).
    pub(crate) fn nudge(&self) {
        self.with(State::touch);
    }

    /// A ticket for the next [`wake_polls`](Self::wake_polls); take it before checking the state.
    pub(crate) fn listen_polls(&self) -> EventListener {
        self.polls.listen()
    }

    /// A ticket for the next change that may give a deliverer work, for
    /// one whose slot is in use; `webhook_changes` for one whose is not.
    pub(crate) fn listen_deliveries(&self) -> EventListener {
        self.deliveries.listen()
    }

    /// A ticket for the next change of the webhook or of where it goes.
    pub(crate) fn listen_webhook_changes(&self) -> EventListener {
        self.webhooks.listen()
    }

    pub(crate) fn wake_polls(&self) {
        self.polls.notify(usize::MAX);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere (say, in a test's assertion) must not hide the state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One queued fault: the next `left` calls of `method` get `fault`.
#[derive(Debug)]
struct Rule {
    /// Lowercase method name, or `*`.
    method: String,
    fault: Fault,
    left: usize,
}

/// What a long poll finds when it looks.
#[derive(Debug, PartialEq)]
pub(crate) enum Poll {
    /// A newer `getUpdates` took over: answer 409.
    Conflict,
    /// A webhook was set while this poll waited: answer 409, as every
    /// `getUpdates` is while one is set.
    Webhook,
    /// A fault armed for `getUpdates` while this poll waited: serve it.
    Fault(Fault),
    /// Updates to hand out now; empty when there are none.
    Batch(Vec<Value>),
}

/// Everything the fake remembers. See the module docs.
#[derive(Debug)]
pub(crate) struct State {
    /// Bumped by every change.
    version: u64,
    /// Bumped by a change of the queue or of a post (see `next_post`).
    queue_version: u64,
    /// Bumped by a change of the webhook or of where it goes.
    webhook_version: u64,
    next_update_id: i64,
    /// Pending updates in `update_id` order (ids only grow, so pushing at the back keeps it sorted).
    queue: VecDeque<Queued>,
    deliveries: HashMap<i64, usize>,
    confirmed_offset: Option<i64>,
    /// Which `getUpdates` is the newest; an older waiting one answers 409.
    poll_generation: u64,
    /// Shared by both sides of a chat, as in Telegram.
    last_message_id: HashMap<ChatId, i64>,
    /// What a callback button hangs under: the bot's last message per chat.
    last_bot_message: HashMap<ChatId, (i64, String)>,
    callbacks: u64,
    inline_queries: u64,
    /// Lowercase method name, parameters and arrival time, in arrival order.
    calls: Vec<(String, Value, Instant)>,
    sent: Vec<Sent>,
    sent_per_chat: HashMap<ChatId, usize>,
    faults: VecDeque<Rule>,
    /// Uploads received and files served (testkit/multipart.rs).
    pub(crate) files: Files,
    /// Connections the accept loop took, ever.
    connections: usize,
    /// The webhook `setWebhook` set, until `deleteWebhook`.
    webhook: Option<Webhook>,
    /// Where the webhook's requests go, whatever its URL's host and port.
    deliver_to: Option<SocketAddr>,
    /// Updates being posted to the webhook now.
    posting: HashSet<i64>,
    /// Updates whose post failed: when to try again, and how often it failed.
    retry: HashMap<i64, (Instant, u32)>,
    /// Every post's update and answer status (0: no answer), in order.
    answers: Vec<(i64, u16)>,
    /// The last failed post, as `getWebhookInfo` reports it.
    last_error: Option<(i64, String)>,
    /// Chats whose user blocked the bot: sends answer 403.
    blocked: HashSet<ChatId>,
    /// Chats that do not exist: sends answer 400.
    missing: HashSet<ChatId>,
    /// With Telegram's global limit enforced: when the recent sends came.
    paced: Option<VecDeque<Instant>>,
}

/// Why the fake refuses a send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 403: the user blocked the bot.
    Blocked,
    /// 400: no such chat.
    Missing,
    /// 429: over 30 sends a second.
    TooFast,
}

/// The enforced global limit: more than this many sends ...
const PACE_COUNT: usize = 30;
/// ... within this long is a 429 (a second, less 100 ms for the jitter
/// between the bot's clock and the arrival of its requests).
const PACE_WINDOW: Duration = Duration::from_millis(900);

/// A pending update, and what orders its webhook posts ([`chat_of`]), found
/// once at the push rather than at every look for the next post.
#[derive(Debug)]
struct Queued {
    id: i64,
    chat: Option<i64>,
    update: Value,
}

/// What [`State::next_post`] has instead of a post.
#[derive(Debug, PartialEq)]
pub(crate) enum NoPost {
    /// The slot is not in use (no webhook, nowhere to post, or over its
    /// `max_connections`) until the webhook changes.
    Slot,
    /// Nothing to post now; nothing before the instant, if any.
    Queue(Option<Instant>),
}

/// One post the webhook is to get.
#[derive(Debug)]
pub(crate) struct Post {
    pub(crate) id: i64,
    pub(crate) body: String,
    pub(crate) to: SocketAddr,
    /// The URL's host, for the `Host` header.
    pub(crate) host: String,
    pub(crate) path: String,
    pub(crate) secret: Option<String>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: 0,
            queue_version: 0,
            webhook_version: 0,
            next_update_id: 1,
            queue: VecDeque::new(),
            deliveries: HashMap::new(),
            confirmed_offset: None,
            poll_generation: 0,
            last_message_id: HashMap::new(),
            last_bot_message: HashMap::new(),
            callbacks: 0,
            inline_queries: 0,
            calls: Vec::new(),
            sent: Vec::new(),
            sent_per_chat: HashMap::new(),
            faults: VecDeque::new(),
            files: Files::default(),
            connections: 0,
            webhook: None,
            deliver_to: None,
            posting: HashSet::new(),
            retry: HashMap::new(),
            answers: Vec::new(),
            last_error: None,
            blocked: HashSet::new(),
            missing: HashSet::new(),
            paced: None,
        }
    }
}

impl State {
    pub(crate) fn touch(&mut self) {
        self.version += 1;
    }

    /// A change of the queue or of a post: a deliverer may have work.
    fn touch_queue(&mut self) {
        self.queue_version += 1;
        self.touch();
    }

    /// A change of the webhook or of where it goes: a slot may be put to
    /// use or out of it.
    fn touch_webhook(&mut self) {
        self.webhook_version += 1;
        self.touch();
    }

    /// Queues `update` under the next `update_id`, which it returns. An
    /// object gets the id as its `update_id` field; anything else is queued
    /// verbatim (a malformed update, on purpose).
    pub(crate) fn push(&mut self, mut update: Value) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        if let Value::Object(map) = &mut update {
            map.insert("update_id".to_owned(), id.into());
        }
        let chat = chat_of(&update);
        self.queue.push_back(Queued { id, chat, update });
        self.touch_queue();
        id
    }

    /// A `message` update: `text` from the user behind `chat`.
    pub(crate) fn text_update(&mut self, chat: ChatId, text: &str) -> Value {
        let mut message = json!({
            "message_id": self.next_message_id(chat),
            "from": user_json(chat),
            "chat": chat_json(chat),
            "date": unix_now(),
            "text": text,
        });
        if let Some(command) = text.strip_prefix('/') {
            // Telegram marks a leading command; offsets count UTF-16 units.
            let name = command.split_whitespace().next().unwrap_or_default();
            let length = 1 + name.encode_utf16().count();
            message["entities"] = json!([{"type": "bot_command", "offset": 0, "length": length}]);
        }
        json!({ "message": message })
    }

    /// A `callback_query` update: the user behind `chat` pressed a button
    /// carrying `data` under the bot's last message there (or a new one).
    pub(crate) fn callback_update(&mut self, chat: ChatId, data: &str) -> Value {
        let (message_id, text) = match self.last_bot_message.get(&chat) {
            Some((id, text)) => (*id, text.clone()),
            None => (self.next_message_id(chat), "Choose:".to_owned()),
        };
        self.callbacks += 1;
        json!({ "callback_query": {
            "id": format!("testkit-{}", self.callbacks),
            "from": user_json(chat),
            "message": {
                "message_id": message_id,
                "from": bot_json(),
                "chat": chat_json(chat),
                "date": unix_now(),
                "text": text,
            },
            "chat_instance": chat.0.to_string(),
            "data": data,
        }})
    }

    /// A message from the user behind `chat` with `fields` (photo, caption,
    /// …) under `kind` (`message`, `channel_post`, …); an `edited_*` kind
    /// edits the chat's last message instead of taking a new id.
    pub(crate) fn message_update(&mut self, kind: &str, chat: ChatId, fields: Value) -> Value {
        let edited = kind.starts_with("edited_");
        let message_id = if edited {
            self.last_message_id.get(&chat).copied().unwrap_or(1)
        } else {
            self.next_message_id(chat)
        };
        let mut message = json!({
            "message_id": message_id,
            "chat": chat_json(chat),
            "date": unix_now(),
        });
        // Channel posts have no sender; everything else comes from the user.
        if !kind.contains("channel_post") {
            message["from"] = user_json(chat);
        }
        if edited {
            message["edit_date"] = unix_now().into();
        }
        if let (Value::Object(message), Value::Object(fields)) = (&mut message, fields) {
            message.extend(fields);
        }
        json!({ kind: message })
    }

    /// An `inline_query` update from `user`.
    pub(crate) fn inline_query_update(&mut self, user: UserId, query: &str) -> Value {
        self.inline_queries += 1;
        json!({ "inline_query": {
            "id": format!("testkit-inline-{}", self.inline_queries),
            "from": user_json(ChatId(user.0)),
            "query": query,
            "offset": "",
            "chat_type": "sender",
        }})
    }

    /// A `chat_member` update: `user`'s status in `chat` went from `old` to
    /// `new` (`member`, `left`, `kicked`, …), changed by the user itself.
    pub(crate) fn chat_member_update(
        &mut self,
        chat: ChatId,
        user: UserId,
        old: &str,
        new: &str,
    ) -> Value {
        let member = |status: &str| json!({"status": status, "user": user_json(ChatId(user.0))});
        json!({ "chat_member": {
            "chat": chat_json(chat),
            "from": user_json(ChatId(user.0)),
            "date": unix_now(),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }})
    }

    /// Answers an `editMessageText` of a chat message: the edited message.
    pub(crate) fn edited_text(&mut self, chat: ChatId, message_id: i64, text: &str) -> Value {
        if self
            .last_bot_message
            .get(&chat)
            .is_some_and(|(id, _)| *id == message_id)
        {
            self.last_bot_message
                .insert(chat, (message_id, text.to_owned()));
        }
        self.touch();
        json!({
            "message_id": message_id,
            "from": bot_json(),
            "chat": chat_json(chat),
            "date": unix_now(),
            "edit_date": unix_now(),
            "text": text,
        })
    }

    /// Records one call; every call is kept, faulted or not.
    pub(crate) fn record_call(&mut self, method: &str, params: Value) {
        self.calls.push((method.to_owned(), params, Instant::now()));
        self.touch();
    }

    /// Counts a connection the accept loop took.
    pub(crate) fn accepted(&mut self) {
        self.connections += 1;
        self.touch();
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections
    }

    /// Queues `fault` for the next `count` calls of `method`.
    pub(crate) fn add_fault(&mut self, method: &str, fault: Fault, count: usize) {
        if count > 0 {
            let method = method.to_ascii_lowercase();
            self.faults.push_back(Rule {
                method,
                fault,
                left: count,
            });
            self.touch();
        }
    }

    /// The fault the next call of `method` (lowercase) would take, left armed.
    pub(crate) fn next_fault(&self, method: &str) -> Option<&Fault> {
        self.faults
            .iter()
            .find(|r| r.method == "*" || r.method == method)
            .map(|r| &r.fault)
    }

    /// The fault for this call of `method` (lowercase), using one up.
    pub(crate) fn take_fault(&mut self, method: &str) -> Option<Fault> {
        let i = self
            .faults
            .iter()
            .position(|r| r.method == "*" || r.method == method)?;
        let rule = &mut self.faults[i];
        rule.left -= 1;
        let fault = if rule.left == 0 {
            self.faults.remove(i)?.fault
        } else {
            rule.fault.clone()
        };
        self.touch();
        Some(fault)
    }

    /// How many faults armed for `method` (lowercase, or `*` for those armed
    /// for any method) no call has taken yet.
    pub(crate) fn unserved_faults(&self, method: &str) -> usize {
        self.faults
            .iter()
            .filter(|r| r.method == method)
            .map(|r| r.left)
            .sum()
    }

    /// Starts a `getUpdates`: confirms below `offset` and takes over from
    /// any older poll. Returns this poll's generation.
    pub(crate) fn begin_poll(&mut self, offset: Option<i64>) -> u64 {
        if let Some(offset) = offset {
            self.confirm(offset);
        }
        self.poll_generation += 1;
        self.touch();
        self.poll_generation
    }

    /// Telegram forgets every update below a positive `offset`; a negative
    /// one keeps only the last `-offset` updates.
    fn confirm(&mut self, offset: i64) {
        self.confirmed_offset = Some(self.confirmed_offset.map_or(offset, |o| o.max(offset)));
        if offset >= 0 {
            while self.queue.front().is_some_and(|q| q.id < offset) {
                self.queue.pop_front();
            }
        } else {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            let drop = self.queue.len().saturating_sub(keep);
            self.queue.drain(..drop);
        }
        // A chat's next update may now be its oldest.
        self.touch_queue();
    }

    /// What the poll of `generation` answers now, if anything: a newer poll
    /// ends it first, then a webhook set meanwhile, then a fault armed for
    /// `getUpdates` (if `faultable`: a call takes one fault at most), and
    /// only then updates.
    pub(crate) fn poll(&mut self, generation: u64, limit: usize, faultable: bool) -> Poll {
        if generation != self.poll_generation {
            return Poll::Conflict;
        }
        if self.webhook.is_some() {
            return Poll::Webhook;
        }
        if let Some(fault) = faultable.then(|| self.take_fault("getupdates")).flatten() {
            return Poll::Fault(fault);
        }
        let batch: Vec<Value> = self
            .queue
            .iter()
            .take(limit)
            .map(|q| q.update.clone())
            .collect();
        for q in self.queue.iter().take(batch.len()) {
            *self.deliveries.entry(q.id).or_default() += 1;
        }
        if !batch.is_empty() {
            self.touch();
        }
        Poll::Batch(batch)
    }

    /// Sets the webhook (an empty `url` removes it, as Telegram does);
    /// with `drop_pending`, forgets the queued updates too.
    pub(crate) fn set_webhook(&mut self, webhook: Webhook, drop_pending: bool) {
        self.webhook = Some(webhook).filter(|w| !w.url.is_empty());
        if drop_pending {
            self.queue.clear();
        }
        self.touch_webhook();
    }

    /// Removes the webhook, if any; with `drop_pending`, forgets the queued
    /// updates too (without it they stay, for the next `getUpdates`).
    pub(crate) fn delete_webhook(&mut self, drop_pending: bool) {
        self.webhook = None;
        if drop_pending {
            self.queue.clear();
        }
        self.touch_webhook();
    }

    pub(crate) fn webhook(&self) -> Option<&Webhook> {
        self.webhook.as_ref()
    }

    /// Sends the webhook's posts to `addr` from now on.
    pub(crate) fn deliver_to(&mut self, addr: SocketAddr) {
        self.deliver_to = Some(addr);
        self.touch_webhook();
    }

    /// The next post for deliverer `slot`, as Telegram picks them: the
    /// oldest queued update whose chat has no older one queued, not being
    /// posted, and not waiting to be tried again; at most `max_connections`
    /// posts at once. Only a change of the webhook (`touch_webhook`) can
    /// change a [`NoPost::Slot`], and only one of the queue or of a post
    /// (`touch_queue`, or `now` passing the instant) a [`NoPost::Queue`].
    pub(crate) fn next_post(&mut self, slot: usize, now: Instant) -> Result<Post, NoPost> {
        let (Some(webhook), Some(to)) = (&self.webhook, self.deliver_to) else {
            return Err(NoPost::Slot);
        };
        if slot >= webhook.max_connections.unwrap_or(40) as usize {
            return Err(NoPost::Slot);
        }
        let mut chats = HashSet::new();
        let mut soonest: Option<Instant> = None;
        let mut pick = None;
        for queued in &self.queue {
            // Only a chat's oldest queued update may go: one at a time, in order.
            let id = queued.id;
            if queued.chat.is_some_and(|chat| !chats.insert(chat)) || self.posting.contains(&id) {
                continue;
            }
            match self.retry.get(&id) {
                Some((at, _)) if *at > now => soonest = Some(soonest.map_or(*at, |s| s.min(*at))),
                _ => {
                    pick = Some((id, queued.update.to_string()));
                    break;
                }
            }
        }
        let Some((id, body)) = pick else {
            return Err(NoPost::Queue(soonest));
        };
        self.posting.insert(id);
        *self.deliveries.entry(id).or_default() += 1;
        let (host, path) = split_url(&webhook.url);
        Ok(Post {
            id,
            body,
            to,
            host,
            path,
            secret: webhook.secret_token.clone(),
        })
    }

    /// A post of `id` was answered `status` (0: no answer): a 2xx takes it
    /// off the queue; anything else queues it again, 20 ms later, twice as
    /// late after each further failure, up to 500 ms (Telegram's own waits
    /// are 1 s and more; a test need not wait that long).
    pub(crate) fn posted(&mut self, id: i64, status: u16) {
        self.posting.remove(&id);
        self.answers.push((id, status));
        if (200..300).contains(&status) {
            self.retry.remove(&id);
            // Posts go out oldest first, so `id` is near the front: no
            // `retain` over a long queue at every post.
            if let Some(at) = self.queue.iter().position(|q| q.id == id) {
                self.queue.remove(at);
            }
        } else {
            let fails = self.retry.get(&id).map_or(0, |(_, f)| *f) + 1;
            let wait = Duration::from_millis(20 << fails.min(5)).min(Duration::from_millis(500));
            self.retry.insert(id, (Instant::now() + wait, fails));
            let why = match status {
                0 => "Connection closed".to_owned(),
                status => format!("Wrong response from the webhook: {status}"),
            };
            self.last_error = Some((unix_now(), why));
        }
        self.touch_queue();
    }

    pub(crate) fn answers(&self) -> &[(i64, u16)] {
        &self.answers
    }

    /// `getWebhookInfo`'s answer, in the Bot API's shape: `url` empty when
    /// none is set; `pending_update_count` the queued updates either way.
    pub(crate) fn webhook_info(&self) -> Value {
        let mut info = json!({
            "url": self.webhook.as_ref().map_or("", |w| w.url.as_str()),
            "has_custom_certificate": self.webhook.as_ref().is_some_and(|w| w.certificate.is_some()),
            "pending_update_count": self.queue.len(),
        });
        if let Some((at, message)) = &self.last_error {
            info["last_error_date"] = (*at).into();
            info["last_error_message"] = message.as_str().into();
        }
        if let Some(webhook) = &self.webhook {
            // Telegram reports its default when setWebhook named none.
            info["max_connections"] = webhook.max_connections.unwrap_or(40).into();
            if let Some(allowed) = &webhook.allowed_updates {
                info["allowed_updates"] = allowed.clone().into();
            }
        }
        info
    }

    /// Notes `id` as the bot's last message in `chat`, the one a pushed
    /// callback's button hangs under.
    pub(crate) fn block(&mut self, chat: ChatId) {
        self.blocked.insert(chat);
        self.touch();
    }

    pub(crate) fn forget(&mut self, chat: ChatId) {
        self.missing.insert(chat);
        self.touch();
    }

    pub(crate) fn enforce_limits(&mut self) {
        self.paced.get_or_insert_with(VecDeque::new);
    }

    /// Whether a send to `chat` arriving `now` is refused, and why; a send
    /// that is not refused counts towards the enforced pace, unless it is
    /// a `paid` broadcast's (Telegram's paid pace is 1,000/s, not enforced).
    pub(crate) fn refusal(
        &mut self,
        chat: Option<ChatId>,
        paid: bool,
        now: Instant,
    ) -> Option<Refusal> {
        if let Some(chat) = chat {
            if self.blocked.contains(&chat) {
                return Some(Refusal::Blocked);
            }
            if self.missing.contains(&chat) {
                return Some(Refusal::Missing);
            }
        }
        let paced = self.paced.as_mut().filter(|_| !paid)?;
        while paced
            .front()
            .is_some_and(|at| now.duration_since(*at) >= PACE_WINDOW)
        {
            paced.pop_front();
        }
        if paced.len() >= PACE_COUNT {
            return Some(Refusal::TooFast);
        }
        paced.push_back(now);
        None
    }

    pub(crate) fn note_bot_message(&mut self, chat: ChatId, id: i64, text: &str) {
        self.last_bot_message.insert(chat, (id, text.to_owned()));
    }

    /// Records a message the bot sent and returns it as Telegram would.
    pub(crate) fn send(
        &mut self,
        chat: ChatId,
        text: &str,
        reply_to: Option<MessageId>,
        params: Value,
    ) -> Value {
        let id = self.next_message_id(chat);
        self.last_bot_message.insert(chat, (id, text.to_owned()));
        self.sent.push(Sent {
            chat,
            text: text.to_owned(),
            reply_to,
            params,
        });
        *self.sent_per_chat.entry(chat).or_default() += 1;
        self.touch();
        json!({
            "message_id": id,
            "from": bot_json(),
            "chat": chat_json(chat),
            "date": unix_now(),
            "text": text,
        })
    }

    pub(crate) fn next_message_id(&mut self, chat: ChatId) -> i64 {
        let id = self.last_message_id.entry(chat).or_default();
        *id += 1;
        *id
    }

    pub(crate) fn sent(&self) -> &[Sent] {
        &self.sent
    }

    pub(crate) fn sent_to(&self, chat: ChatId) -> usize {
        self.sent_per_chat.get(&chat).copied().unwrap_or(0)
    }

    /// Parameters and arrival time of every call of `method` (lowercase).
    pub(crate) fn calls(&self, method: &str) -> impl Iterator<Item = (&Value, Instant)> + '_ {
        let method = method.to_owned();
        self.calls
            .iter()
            .filter(move |(m, _, _)| *m == method)
            .map(|(_, p, at)| (p, *at))
    }

    pub(crate) fn confirmed_offset(&self) -> Option<i64> {
        self.confirmed_offset
    }

    pub(crate) fn pending(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn deliveries(&self, update_id: i64) -> usize {
        self.deliveries.get(&update_id).copied().unwrap_or(0)
    }
}

/// What orders an update's posts: its chat, else its sender, else nothing
/// (it goes alone), as Telegram's queues do.
fn chat_of(update: &Value) -> Option<i64> {
    let object = update
        .as_object()?
        .iter()
        .find(|(key, _)| *key != "update_id")?
        .1;
    ["/chat/id", "/message/chat/id", "/from/id", "/user/id"]
        .iter()
        .find_map(|at| object.pointer(at).and_then(Value::as_i64))
}

/// A URL's host (with its port, as the `Host` header has it) and path.
fn split_url(url: &str) -> (String, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(at) => (rest[..at].to_owned(), rest[at..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    }
}

/// The bot itself, as `getMe` and `from` of its messages show it.
pub(crate) fn bot_json() -> Value {
    json!({
        "id": BOT_ID,
        "is_bot": true,
        "first_name": "Testkit",
        "username": "smolgram_test_bot",
    })
}

/// The user behind `chat`: in a private chat Telegram uses the user's id as
/// the chat's; behind a group (negative id) we pick user `-chat`.
fn user_json(chat: ChatId) -> Value {
    json!({ "id": chat.0.checked_abs().unwrap_or(i64::MAX), "is_bot": false, "first_name": "User" })
}

/// Positive ids are private chats, negative ones groups, as in Telegram.
/// Ids from -1000000000000 down are channels (and supergroups), as Telegram numbers them.
pub(crate) fn chat_json(chat: ChatId) -> Value {
    if chat.0 <= -1_000_000_000_000 {
        return json!({ "id": chat.0, "type": "channel", "title": "Testkit channel" });
    }
    if chat.0 > 0 {
        json!({ "id": chat.0, "type": "private", "first_name": "User" })
    } else {
        json!({ "id": chat.0, "type": "group", "title": "Testkit group" })
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ids(poll: Poll) -> Vec<i64> {
        match poll {
            Poll::Batch(b) => b.iter().map(|u| u["update_id"].as_i64().unwrap()).collect(),
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    #[test]
    fn update_ids_start_at_one_and_stay_in_order() {
        let mut s = State::default();
        let a = s.push(json!({}));
        let b = s.push(json!({"x": 1, "update_id": 99}));
        assert_eq!((a, b), (1, 2));
        let g = s.begin_poll(None);
        assert_eq!(ids(s.poll(g, 100, true)), [1, 2]);
    }

    #[test]
    fn offset_confirms_below_it_and_only_below_it() {
        let mut s = State::default();
        for _ in 0..3 {
            s.push(json!({}));
        }
        let g = s.begin_poll(Some(3));
        assert_eq!(ids(s.poll(g, 100, true)), [3]);
        assert_eq!(s.pending(), 1);
        assert_eq!(s.confirmed_offset(), Some(3));
        // A lower offset later moves nothing back.
        s.begin_poll(Some(1));
        assert_eq!(s.confirmed_offset(), Some(3));
    }

    #[test]
    fn unconfirmed_updates_are_delivered_again_and_counted() {
        let mut s = State::default();
        s.push(json!({}));
        s.push(json!({}));
        let g = s.begin_poll(None);
        assert_eq!(ids(s.poll(g, 1, true)), [1]);
        let g = s.begin_poll(Some(1));
        assert_eq!(ids(s.poll(g, 100, true)), [1, 2]);
        assert_eq!(
            (s.deliveries(1), s.deliveries(2), s.deliveries(3)),
            (2, 1, 0)
        );
    }

    #[test]
    fn negative_offset_keeps_only_the_last_updates() {
        let mut s = State::default();
        for _ in 0..5 {
            s.push(json!({}));
        }
        let g = s.begin_poll(Some(-2));
        assert_eq!(ids(s.poll(g, 100, true)), [4, 5]);
    }

    #[test]
    fn a_newer_poll_makes_the_older_one_conflict() {
        let mut s = State::default();
        let old = s.begin_poll(None);
        let new = s.begin_poll(None);
        assert_eq!(s.poll(old, 100, true), Poll::Conflict);
        assert_eq!(s.poll(new, 100, true), Poll::Batch(vec![]));
    }

    #[test]
    fn faults_are_used_up_in_order_and_star_matches_any_method() {
        let mut s = State::default();
        s.add_fault("sendMessage", Fault::Drop, 2);
        s.add_fault("*", Fault::InvalidJson, 1);
        s.add_fault("getMe", Fault::Drop, 0);
        assert_eq!(s.take_fault("getme"), Some(Fault::InvalidJson));
        assert_eq!(s.take_fault("getme"), None);
        assert_eq!(s.take_fault("sendmessage"), Some(Fault::Drop));
        assert_eq!(s.take_fault("sendmessage"), Some(Fault::Drop));
        assert_eq!(s.take_fault("sendmessage"), None);
    }

    #[test]
    fn unserved_faults_count_what_no_call_took_per_armed_name() {
        let mut s = State::default();
        s.add_fault("getUpdates", Fault::Drop, 3);
        s.add_fault("GETUPDATES", Fault::InvalidJson, 1);
        s.add_fault("*", Fault::Drop, 2);
        assert_eq!(
            (s.unserved_faults("getupdates"), s.unserved_faults("*")),
            (4, 2)
        );
        s.take_fault("getupdates");
        s.take_fault("getme"); // only `*` matches it
        assert_eq!(
            (s.unserved_faults("getupdates"), s.unserved_faults("*")),
            (3, 1)
        );
        assert_eq!(s.unserved_faults("sendmessage"), 0);
    }

    #[test]
    fn a_waiting_poll_takes_a_fault_before_updates_and_after_a_conflict() {
        let mut s = State::default();
        s.push(json!({}));
        let old = s.begin_poll(None);
        s.add_fault("getUpdates", Fault::Drop, 1);
        let new = s.begin_poll(None);
        assert_eq!(
            s.poll(old, 100, true),
            Poll::Conflict,
            "a lost poll serves no fault"
        );
        assert_eq!(s.poll(new, 100, true), Poll::Fault(Fault::Drop));
        assert_eq!(s.deliveries(1), 0, "a faulted poll delivers nothing");
        assert_eq!(ids(s.poll(new, 100, true)), [1]);
        assert_eq!(s.unserved_faults("getupdates"), 0);
    }

    #[test]
    fn a_webhook_refuses_polls_and_its_deletion_keeps_the_queue_unless_asked() {
        let mut s = State::default();
        s.push(json!({}));
        let waiting = s.begin_poll(None);
        s.set_webhook(Webhook::new("https://example.org/hook"), false);
        assert_eq!(s.poll(waiting, 100, true), Poll::Webhook);
        assert_eq!(s.webhook_info()["url"], "https://example.org/hook");
        assert_eq!(s.webhook_info()["pending_update_count"], 1);
        s.delete_webhook(false);
        assert_eq!((s.webhook(), s.pending()), (None, 1), "kept");
        assert_eq!(ids(s.poll(waiting, 100, true)), [1]);
        s.set_webhook(Webhook::new("https://example.org/hook"), false);
        s.delete_webhook(true);
        assert_eq!(s.pending(), 0, "dropped when asked");
        s.set_webhook(Webhook::new(""), false);
        assert_eq!(s.webhook(), None, "an empty url is no webhook");
        assert_eq!(
            s.webhook_info(),
            json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0})
        );
    }

    #[test]
    fn message_ids_are_shared_by_both_sides_of_a_chat() {
        let mut s = State::default();
        let first = s.text_update(ChatId(7), "/start now");
        let reply = s.send(ChatId(7), "hi", None, json!({}));
        let other = s.text_update(ChatId(8), "x");
        let press = s.callback_update(ChatId(7), "ping");
        assert_eq!(first["message"]["message_id"], 1);
        assert_eq!(first["message"]["entities"][0]["length"], 6);
        assert_eq!(reply["message_id"], 2);
        assert_eq!(other["message"]["message_id"], 1);
        // The button hangs under the bot's last message.
        assert_eq!(press["callback_query"]["message"]["message_id"], 2);
        assert_eq!(press["callback_query"]["message"]["text"], "hi");
        assert_eq!(s.sent_to(ChatId(7)), 1);
    }

    #[test]
    fn wait_for_change_returns_on_a_change_and_times_out_without_one() {
        let shared = std::sync::Arc::new(Shared::default());
        let seen = shared.version();
        assert!(!shared.wait_for_change(seen, Instant::now() + Duration::from_millis(10)));
        let pusher = std::sync::Arc::clone(&shared);
        let t = std::thread::spawn(move || pusher.with(|s| s.push(json!({}))));
        assert!(shared.wait_for_change(seen, Instant::now() + Duration::from_secs(5)));
        t.join().unwrap();
    }
}
