//! An in-process fake Telegram Bot API server: for our tests, our doc tests,
//! the `demo` command and users' own tests.
//!
//! [`FakeApi::start`] binds `127.0.0.1:0` and serves the part of the Bot API
//! a bot needs (`getMe`, long-polling `getUpdates` with offsets and 409
//! conflicts, `sendMessage`, a few methods that answer `true`) over real
//! HTTP/1.1, so the code under test runs its real client, sockets and all.
//! It keeps a webhook (`setWebhook`, `deleteWebhook`, `getWebhookInfo`, or
//! [`FakeApi::set_webhook`] from the test), and while one is set answers
//! `getUpdates` with Telegram's 409 for it; once told where the bot listens
//! ([`FakeApi::deliver_webhooks_to`]) it POSTs the queued updates there as
//! Telegram would, and records each answer ([`FakeApi::webhook_answers`]).
//! The single-file sends (`sendPhoto`, `sendDocument`, …) answer a message
//! holding the file, `editMessageText` the edited message, `deleteMessage`
//! `true`; every other kind of update can be pushed, with a builder
//! (`push_photo`, `push_inline_query`, …) or as JSON ([`FakeApi::push`]).
//! The test side injects updates (`push_*`), observes what the bot did
//! ([`sent`](FakeApi::sent), [`calls`](FakeApi::calls),
//! [`confirmed_offset`](FakeApi::confirmed_offset),
//! [`connections`](FakeApi::connections)), scripts failures ([`Fault`]; a
//! long poll waiting when its fault is armed takes it at once) and checks
//! they were met ([`unserved_faults`](FakeApi::unserved_faults)), and waits
//! for effects with a deadline ([`wait_until`](FakeApi::wait_until)).
//!
//! The server runs on its own thread with its own executor, because the test
//! thread blocks while the bot runs elsewhere. So, unlike the rest of the
//! crate, its state is shared across threads: a `Mutex`, a `Condvar` for the
//! waiting test, and an `event_listener::Event` for the waiting long poll.
//!
//! Must not: be depended on by any other module, listen beyond 127.0.0.1,
//! or accept anything but its own, obviously fake, token.

mod bot;
mod deliver;
mod http;
mod multipart;
mod server;
mod state;

pub use bot::TestBot;
pub use multipart::{Digest, Uploaded};

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::types::{ChatId, MessageId, UpdateKind, UserId};
use state::{Shared, State};

/// The bot's user id: the number before the colon of [`FakeApi::TOKEN`].
const BOT_ID: i64 = 123_456_789;

/// A fake Bot API server on `127.0.0.1`, running on its own thread until
/// dropped.
///
/// It behaves like the real one where a bot can tell: routes are
/// `/bot<TOKEN>/<method>` (a wrong token gets 401, an unknown method 404,
/// names are case-insensitive); parameters come from the query string or a
/// JSON or form body; `getUpdates` confirms below `offset`, hands out up to
/// `limit` pending updates, long-polls up to `timeout` seconds, and answers
/// an older waiting call 409 when a newer one arrives, and every call 409
/// while a webhook is set; `sendMessage` returns a `Message`. Update ids run from 1; message ids count per chat, shared by
/// the user and the bot, as in Telegram.
///
/// Dropping it stops the server and joins its thread, even in the middle of
/// a long poll.
///
/// # Examples
/// ```
/// use smolgram::api::types::ChatId;
/// use smolgram::testkit::FakeApi;
///
/// let api = FakeApi::start();
/// let id = api.push_text(ChatId(42), "/start");
/// assert_eq!(api.pending(), 1);
///
/// // Any HTTP client will do; in a real test it is the bot's own.
/// let url = format!("{}/bot{}/getUpdates", api.url(), FakeApi::TOKEN);
/// let body = ureq::get(&url).call().unwrap().into_body().read_to_string().unwrap();
/// let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
/// assert_eq!(answer["result"][0]["message"]["text"], "/start");
/// assert_eq!(api.deliveries(id), 1);
///
/// // Confirming is asking for what comes after it.
/// ureq::get(&url).query("offset", (id + 1).to_string()).call().unwrap();
/// assert_eq!((api.pending(), api.confirmed_offset()), (0, Some(id + 1)));
/// ```
pub struct FakeApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

// Shared by the test thread and whatever thread runs the bot.
const _: fn() = || {
    fn is_send_and_sync<T: Send + Sync>() {}
    is_send_and_sync::<FakeApi>();
};

/// What the next calls of a method get instead of a normal answer; queue
/// them with [`FakeApi::fault`].
///
/// A faulted call is still recorded in [`FakeApi::calls`], but has no
/// effect: a faulted `getUpdates` confirms nothing, a faulted `sendMessage`
/// sends nothing (except [`Fault::Delay`], which answers normally, late).
/// One exception: a `getUpdates` that was already waiting when its fault
/// was armed had confirmed its `offset` on arrival, as Telegram does before
/// a proxy in front of it fails the pending answer; it delivers nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Exactly this status and body: a proxy's 502 HTML page, or a Bot API
    /// error JSON of your own making. A body starting with `{` is sent as
    /// `application/json`, anything else as `text/html`.
    Status {
        /// The HTTP status.
        code: u16,
        /// The body, verbatim.
        body: String,
    },
    /// A Bot API error: `{"ok":false,"error_code":code,"description":..}`
    /// with status `code`, and `parameters` holding `retry_after` and
    /// `migrate_to_chat_id` when they are set.
    Api {
        /// `error_code`, and the HTTP status.
        code: u16,
        /// `description`, e.g. `Too Many Requests: retry after 3`.
        description: String,
        /// `parameters.retry_after`, in seconds (with 429).
        retry_after: Option<u64>,
        /// `parameters.migrate_to_chat_id` (a group became a supergroup).
        migrate_to_chat_id: Option<i64>,
    },
    /// Answers normally after this delay (the timer runs on the server;
    /// other connections are served meanwhile).
    Delay(Duration),
    /// Closes the connection without writing a byte.
    Drop,
    /// Status 200 with a JSON body cut in the middle.
    InvalidJson,
    /// Reads `after` bytes of a multipart body (an upload), then answers
    /// status `code` with a Bot API error and closes the connection, as a
    /// proxy that gave up mid-upload would. A body that is not multipart
    /// is read whole first.
    MidUpload {
        /// Body bytes read before the answer.
        after: u64,
        /// The status, e.g. 502.
        code: u16,
    },
}

/// A webhook set on the fake, with `setWebhook` or
/// [`FakeApi::set_webhook`]. While one is set, every `getUpdates` answers
/// 409 with Telegram's words for it, and updates stay queued (the fake
/// delivers nothing to the URL) until `deleteWebhook`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Webhook {
    /// `url`.
    pub url: String,
    /// `secret_token`, if one was given.
    pub secret_token: Option<String>,
    /// `allowed_updates`, if given.
    pub allowed_updates: Option<Vec<String>>,
    /// `max_connections`, if given.
    pub max_connections: Option<u32>,
    /// The bytes of `certificate` (a self-signed one's PEM), if uploaded.
    pub certificate: Option<Vec<u8>>,
}

impl Webhook {
    /// A webhook to `url`, with nothing else set.
    pub fn new(url: &str) -> Webhook {
        Webhook {
            url: url.to_owned(),
            secret_token: None,
            allowed_updates: None,
            max_connections: None,
            certificate: None,
        }
    }
}

/// One `sendMessage` the fake accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    /// `chat_id`.
    pub chat: ChatId,
    /// `text`.
    pub text: String,
    /// `reply_parameters.message_id`, or the legacy `reply_to_message_id`.
    pub reply_to: Option<MessageId>,
    /// Every parameter, as received (form values stay strings).
    pub params: Value,
}

impl FakeApi {
    /// The token the fake accepts. It is shaped like a real one (digits, a
    /// colon, 35 characters of `[A-Za-z0-9_-]`) and says what it is.
    pub const TOKEN: &'static str = "123456789:TESTKIT-fake-token-not-a-secret_000";

    /// Binds `127.0.0.1:0` and starts serving on a new thread.
    ///
    /// # Panics
    /// If the port cannot be bound or the thread cannot start: a test cannot
    /// go on without its server.
    pub fn start() -> FakeApi {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| Ok((l.local_addr()?, async_net::TcpListener::try_from(l)?)));
        let (addr, listener) =
            listener.unwrap_or_else(|e| panic!("testkit: cannot listen on 127.0.0.1: {e}"));
        let shared = Arc::new(Shared::default());
        let thread = server::spawn(listener, Arc::clone(&shared))
            .unwrap_or_else(|e| panic!("testkit: cannot start the server thread: {e}"));
        FakeApi {
            shared,
            addr,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash: the Bot API base
    /// URL to give the bot.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a text message from the user behind `chat` and returns its
    /// `update_id`. A positive `chat` is a private chat with user `chat.0`;
    /// a negative one a group (the sender is then user `-chat.0`). A leading
    /// `/command` is marked with a `bot_command` entity, as Telegram does.
    pub fn push_text(&self, chat: ChatId, text: &str) -> i64 {
        self.push_with(|s| s.text_update(chat, text))
    }

    /// Queues a press on an inline button carrying `data`, under the bot's
    /// last message in `chat` (or a new bot message if it sent none), and
    /// returns its `update_id`.
    pub fn push_callback(&self, chat: ChatId, data: &str) -> i64 {
        self.push_with(|s| s.callback_update(chat, data))
    }

    /// Queues an update of `kind` whose object is `object`, as it is (a
    /// [`push_raw`](FakeApi::push_raw) that names the kind): for the kinds
    /// no builder below covers.
    pub fn push(&self, kind: UpdateKind, object: Value) -> i64 {
        self.push_raw(serde_json::json!({ kind.name(): object }))
    }

    /// Queues a photo (one 640×480 size, file id `file_id`) from the user
    /// behind `chat`, with an optional `caption`.
    pub fn push_photo(&self, chat: ChatId, file_id: &str, caption: Option<&str>) -> i64 {
        let mut fields = serde_json::json!({ "photo": [{
            "file_id": file_id, "file_unique_id": format!("u-{file_id}"),
            "width": 640, "height": 480, "file_size": 1024,
        }]});
        if let Some(caption) = caption {
            fields["caption"] = caption.into();
        }
        self.push_with(|s| s.message_update("message", chat, fields))
    }

    /// Queues a document named `file_name` (file id `file_id`) from the user
    /// behind `chat`.
    pub fn push_document(&self, chat: ChatId, file_id: &str, file_name: &str) -> i64 {
        let fields = serde_json::json!({ "document": {
            "file_id": file_id, "file_unique_id": format!("u-{file_id}"),
            "file_name": file_name, "file_size": 1024,
        }});
        self.push_with(|s| s.message_update("message", chat, fields))
    }

    /// Queues a shared location from the user behind `chat`.
    pub fn push_location(&self, chat: ChatId, latitude: f64, longitude: f64) -> i64 {
        let fields = serde_json::json!({
            "location": { "latitude": latitude, "longitude": longitude },
        });
        self.push_with(|s| s.message_update("message", chat, fields))
    }

    /// Queues an `edited_message`: the last message in `chat` now reads `text`.
    pub fn push_edited(&self, chat: ChatId, text: &str) -> i64 {
        let fields = serde_json::json!({ "text": text });
        self.push_with(|s| s.message_update("edited_message", chat, fields))
    }

    /// Queues a `channel_post` of `text` in `chat` (use a channel id, from
    /// -1000000000000 down, for a chat of type `channel`).
    pub fn push_channel_post(&self, chat: ChatId, text: &str) -> i64 {
        let fields = serde_json::json!({ "text": text });
        self.push_with(|s| s.message_update("channel_post", chat, fields))
    }

    /// Queues an `inline_query` of `query` from `user`.
    pub fn push_inline_query(&self, user: UserId, query: &str) -> i64 {
        self.push_with(|s| s.inline_query_update(user, query))
    }

    /// Queues a `chat_member` update: `user`'s status in `chat` went from
    /// `old` to `new` (`member`, `left`, `kicked`, `restricted`, …).
    pub fn push_chat_member(&self, chat: ChatId, user: UserId, old: &str, new: &str) -> i64 {
        self.push_with(|s| s.chat_member_update(chat, user, old, new))
    }

    /// Queues `update` as it is, after setting its `update_id` to the next
    /// id (which it returns): for update kinds the fake does not model and
    /// for malformed updates. A value that is not an object is queued
    /// without an `update_id`.
    pub fn push_raw(&self, update: Value) -> i64 {
        self.push_with(|_| update)
    }

    fn push_with(&self, make: impl FnOnce(&mut State) -> Value) -> i64 {
        let id = self.shared.with(|s| {
            let update = make(s);
            s.push(update)
        });
        self.shared.wake_polls();
        id
    }

    /// Every message sent with `sendMessage`, in arrival order.
    pub fn sent(&self) -> Vec<Sent> {
        self.shared.with(|s| s.sent().to_vec())
    }

    /// How many messages were sent to `chat`; cheap enough to call in a
    /// [`wait_until`](FakeApi::wait_until) condition however many there are.
    pub fn sent_to(&self, chat: ChatId) -> usize {
        self.shared.with(|s| s.sent_to(chat))
    }

    /// How many messages were sent with `sendMessage`, in all chats: what
    /// `sent().len()` answers, without copying them, so a benchmark can
    /// watch thousands of replies arrive.
    pub fn sent_count(&self) -> usize {
        self.shared.with(|s| s.sent().len())
    }

    /// The parameters of every call of `method` (any case), in arrival order,
    /// faulted and refused calls included.
    pub fn calls(&self, method: &str) -> Vec<Value> {
        let method = method.to_ascii_lowercase();
        self.shared
            .with(|s| s.calls(&method).map(|(params, _)| params.clone()).collect())
    }

    /// When each call of `method` (any case) arrived, in order: for
    /// asserting on the gaps between retries.
    pub fn call_times(&self, method: &str) -> Vec<Instant> {
        let method = method.to_ascii_lowercase();
        self.shared
            .with(|s| s.calls(&method).map(|(_, at)| at).collect())
    }

    /// The highest `offset` any `getUpdates` sent; `None` if none sent one.
    pub fn confirmed_offset(&self) -> Option<i64> {
        self.shared.with(|s| s.confirmed_offset())
    }

    /// How many updates are queued and not yet confirmed.
    pub fn pending(&self) -> usize {
        self.shared.with(|s| s.pending())
    }

    /// How many times `getUpdates` handed out this update.
    pub fn deliveries(&self, update_id: i64) -> usize {
        self.shared.with(|s| s.deliveries(update_id))
    }

    /// Blocks until `cond` holds, checking it now, again after every change
    /// to the fake's state (a call, a push, a delivery), and at the deadline.
    ///
    /// # Panics
    /// With `timed out after {deadline:?} waiting for {label}` if `cond`
    /// still fails after `deadline`; the panic names the caller's line.
    #[track_caller]
    pub fn wait_until(&self, label: &str, deadline: Duration, cond: impl FnMut(&FakeApi) -> bool) {
        if !self.wait_for(deadline, cond) {
            panic!("timed out after {deadline:?} waiting for {label}");
        }
    }

    /// [`wait_until`](FakeApi::wait_until) that answers instead of
    /// panicking: whether `cond` held before `deadline`.
    pub fn wait_for(&self, deadline: Duration, mut cond: impl FnMut(&FakeApi) -> bool) -> bool {
        let until = Instant::now() + deadline;
        loop {
            // Read before checking: a change during `cond` then ends the wait at once.
            let seen = self.shared.version();
            if cond(self) {
                return true;
            }
            // One last look at the deadline: `cond` may also read things
            // outside the fake, which change without waking us.
            if !self.shared.wait_for_change(seen, until) {
                return cond(self);
            }
        }
    }

    /// Makes the next `count` calls of `method` (any case; `"*"` for any
    /// method) fail with `fault`. Rules are used in the order they were
    /// queued; a call takes from the first rule that matches it, and takes
    /// one fault at most.
    ///
    /// A long poll (`getUpdates`) that is waiting when a fault for it is
    /// armed takes it at once, as if a proxy failed the pending request; so
    /// after [`TestBot::start`], whose bot is then waiting in its first poll,
    /// `fault("getUpdates", f, n)` fails `n` polls in a row, that one first,
    /// before any update pushed afterwards is delivered.
    ///
    /// # Examples
    /// ```
    /// use smolgram::testkit::{FakeApi, Fault};
    ///
    /// let api = FakeApi::start();
    /// api.fault("getMe", Fault::Drop, 2);
    /// let url = format!("{}/bot{}/getMe", api.url(), FakeApi::TOKEN);
    /// assert!(ureq::get(&url).call().is_err(), "closed without an answer");
    /// assert_eq!(api.unserved_faults("getMe"), 1);
    /// ```
    pub fn fault(&self, method: &str, fault: Fault, count: usize) {
        self.shared.with(|s| s.add_fault(method, fault, count));
        // A waiting long poll looks again, and takes the fault if it is its own.
        self.shared.wake_polls();
    }

    /// How many of the faults armed with [`fault`](FakeApi::fault) under
    /// `method` (any case; `"*"` for those armed for any method) no call has
    /// taken yet: 0 once every armed fault was served. A test that means
    /// its faults to be met asserts this, so that a fault left unserved
    /// cannot pass for one survived.
    pub fn unserved_faults(&self, method: &str) -> usize {
        let method = method.to_ascii_lowercase();
        self.shared.with(|s| s.unserved_faults(&method))
    }

    /// Sets a webhook to `url`, as a `setWebhook` from elsewhere would (a
    /// deploy of the bot in webhook mode, say): from now on every
    /// `getUpdates` answers 409, a waiting long poll at once. Recorded as
    /// no call. An empty `url` removes the webhook.
    ///
    /// # Examples
    /// ```
    /// use smolgram::testkit::FakeApi;
    ///
    /// let api = FakeApi::start();
    /// api.set_webhook("https://example.org/hook");
    /// let poll = format!("{}/bot{}/getUpdates", api.url(), FakeApi::TOKEN);
    /// let err = ureq::get(&poll).call().unwrap_err();
    /// assert!(matches!(err, ureq::Error::StatusCode(409)));
    /// assert_eq!(api.webhook().unwrap().url, "https://example.org/hook");
    ///
    /// let delete = format!("{}/bot{}/deleteWebhook", api.url(), FakeApi::TOKEN);
    /// ureq::get(&delete).call().unwrap();
    /// assert_eq!(api.webhook(), None);
    /// assert!(ureq::get(&poll).call().is_ok());
    /// ```
    pub fn set_webhook(&self, url: &str) {
        self.shared
            .with(|s| s.set_webhook(Webhook::new(url), false));
        // A waiting long poll looks again, and answers the 409.
        self.shared.wake_polls();
    }

    /// The webhook set now, if any.
    pub fn webhook(&self) -> Option<Webhook> {
        self.shared.with(|s| s.webhook().cloned())
    }

    /// Posts the webhook's updates to `addr` (the bot's listener) from now
    /// on, whatever host and port its URL names (a test cannot know the
    /// port before the bot binds it); the path and the `Host` header stay
    /// the URL's. While a webhook is set, the queued updates go out as
    /// Telegram sends them: up to its `max_connections` at once (default
    /// 40), one chat's one at a time in order, with `secret_token` in the
    /// `X-Telegram-Bot-Api-Secret-Token` header; a 2xx confirms one, any
    /// other answer (or none within 60 s) sends it again after a short
    /// wait, and `getWebhookInfo` reports the last failure.
    pub fn deliver_webhooks_to(&self, addr: SocketAddr) {
        self.shared.with(|s| s.deliver_to(addr));
    }

    /// Every webhook post so far, as `(update_id, status)` in the order
    /// answered; status 0 when no answer came (a closed connection).
    pub fn webhook_answers(&self) -> Vec<(i64, u16)> {
        self.shared.with(|s| s.answers().to_vec())
    }

    /// From now on, every `send…` call to `chat` answers 403 `Forbidden:
    /// bot was blocked by the user`, as Telegram does once a user blocked
    /// the bot. Such calls are recorded ([`calls`](FakeApi::calls)) and
    /// send nothing.
    ///
    /// # Examples
    /// ```
    /// use smolgram::api::generated::methods::SendMessage;
    /// use smolgram::api::{types::ChatId, Client, Token};
    /// use smolgram::testkit::FakeApi;
    ///
    /// let api = FakeApi::start();
    /// api.block_chat(ChatId(7));
    /// api.forget_chat(ChatId(8));
    /// let client = Client::new(&api.url(), &Token::parse(FakeApi::TOKEN).unwrap(), 2);
    /// let rt = smolgram::Runtime::new();
    /// let to = |chat| rt.block_on(client.send(&SendMessage::new(ChatId(chat), "hi"))).unwrap();
    /// assert_eq!(to(7).unwrap_err().status(), Some(403));
    /// assert_eq!(to(8).unwrap_err().status(), Some(400));
    /// assert!(to(9).is_ok());
    /// assert_eq!(api.sent_count(), 1);
    /// ```
    pub fn block_chat(&self, chat: ChatId) {
        self.shared.with(|s| s.block(chat));
    }

    /// From now on, every `send…` call to `chat` answers 400 `Bad Request:
    /// chat not found`, as Telegram does for a chat that does not exist
    /// (or that the bot never was in); see [`block_chat`](FakeApi::block_chat).
    pub fn forget_chat(&self, chat: ChatId) {
        self.shared.with(|s| s.forget(chat));
    }

    /// From now on, enforces Telegram's global limit as Telegram does: a
    /// `send…` call past 30 in a second answers 429 with `retry_after` 1
    /// and sends nothing. The window is 900 ms, not 1 s, so that the
    /// network's jitter does not turn a bot that keeps to 30/s into one
    /// that broke it; a paid broadcast's sends (`allow_paid_broadcast`)
    /// are not counted. Per-chat limits are not enforced.
    pub fn enforce_limits(&self) {
        self.shared.with(|s| s.enforce_limits());
    }

    /// How many connections the server has accepted so far: what a client
    /// that should reuse one connection (keep-alive) is held to.
    pub fn connections(&self) -> usize {
        self.shared.with(|s| s.connections())
    }
}

impl fmt::Debug for FakeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeApi")
            .field("addr", &self.addr)
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.shared.stop.request();
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread was already reported; do not panic in drop.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_shaped_like_a_real_one_and_names_the_bot() {
        let (id, secret) = FakeApi::TOKEN.split_once(':').unwrap();
        assert_eq!(id.parse::<i64>().unwrap(), BOT_ID);
        assert_eq!(secret.len(), 35);
        assert!(secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    }

    #[test]
    fn drop_joins_the_server_thread_and_frees_the_port() {
        let api = FakeApi::start();
        let addr = api.addr();
        assert!(api.url().starts_with("http://127.0.0.1:") && !api.url().ends_with('/'));
        drop(api);
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
}
