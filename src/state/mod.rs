//! State that outlives an update: a user's step in a form, a chat's
//! settings. Typed (serde), kept per chat, per user or per user in a chat,
//! in a [`Store`]: [`MemoryStore`] (the default), `FileStore` (one machine,
//! crash-safe) or `RedisStore` (several instances of one bot).
//!
//! A handler reads and writes it through its [`Context`](crate::Context):
//! [`get_state`](crate::Context::get_state),
//! [`set_state`](crate::Context::set_state),
//! [`clear_state`](crate::Context::clear_state);
//! [`Bot::dialogue`](crate::Bot::dialogue) routes a chat's text by a state
//! enum's variant.
//! The guarantees, held by the dispatcher:
//! - an update's writes are applied before the next update of its lane
//!   runs, and it counts as finished (so the offset passes it) only once
//!   they are durable;
//! - a store that fails (Redis down, a full disk) fails the update's
//!   handler, which is then run again after a backoff, its lane waiting:
//!   nothing is confirmed that was not saved;
//! - a value that no longer decodes (a type changed in an upgrade) is
//!   logged once, reset to the default and counted: no user is stuck.
//!
//! Here: the keys, the encoding and the bookkeeping per update. `store`:
//! the contract; `memory`: the default store; `file`: [`FileStore`], an
//! append-only, checksummed log with a writer thread and compaction;
//! `redis`: [`RedisStore`], state in Redis over our own RESP client.
//!
//! Must not: know about lanes or offsets (the dispatcher reads
//! `Written`), or block the thread.

#[cfg(feature = "file-store")]
mod file;
mod memory;
#[cfg(feature = "redis-store")]
mod redis;
mod store;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use event_listener::Event;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[cfg(feature = "file-store")]
pub use file::{FileOptions, FileStats, FileStore};
pub use memory::MemoryStore;
#[cfg(feature = "redis-store")]
pub use redis::RedisStore;
pub use store::{Store, StoreError, StoreFuture};

use crate::api::types::{ChatId, Received, Update, UserId};
use crate::config::{StateConfig, StoreSpec};
use crate::metrics::{bump, Metrics};
use crate::{wait, Error};

/// Whose state a [`State`] type is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The chat's: shared by everyone in a group.
    Chat,
    /// The user's, in every chat.
    User,
    /// One user's in one chat: a form a user fills in a group.
    ChatUser,
    /// The bot's own, one value for all chats: its subscribers, say. Change
    /// it with [`Context::update_state`](crate::Context::update_state), so
    /// that two chats' handlers do not overwrite each other's change.
    Bot,
}

/// A type kept as state: its name in the store and whose it is.
///
/// It is stored as JSON. Keep [`NAME`](State::NAME) across versions; a
/// change that old JSON no longer decodes into resets the value to its
/// `Default` (logged once per key, counted in
/// `smolgram_state_resets_total`).
///
/// # Examples
/// ```
/// use serde::{Deserialize, Serialize};
/// use smolgram::state::{Scope, State};
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Settings {
///     language: Option<String>,
/// }
///
/// impl State for Settings {
///     const NAME: &'static str = "settings";
///     const SCOPE: Scope = Scope::User;
/// }
/// ```
pub trait State: Serialize + DeserializeOwned + Default + 'static {
    /// The name its keys start with: unique among the bot's state types,
    /// and not starting with `@` (the jobs' and broadcasts' keys do).
    const NAME: &'static str;
    /// Whose it is; one user's in one chat unless said otherwise.
    const SCOPE: Scope = Scope::ChatUser;
    /// How long it is kept after its last write; `None`: the run's
    /// default (`--state-ttl`, 30 days); `Some(Duration::ZERO)`: for ever.
    const TTL: Option<Duration> = None;
}

/// The run's state: its store and the default time to live. One per run,
/// shared by every update's [`Context`](crate::Context).
pub(crate) struct States {
    store: Rc<dyn Store>,
    ttl: Option<Duration>,
    metrics: Rc<Metrics>,
    /// Keys an update (read, change, write) is under way for, and the
    /// event their release notifies.
    updating: RefCell<HashSet<String>>,
    released: Event,
}

/// What one update's handler wrote, for the dispatcher: whether it must
/// wait for durability before the update counts as finished, and whether a
/// store failed (the update is then run again).
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// The newest write of this update not yet durable.
    pending: Cell<Option<u64>>,
    /// A read or write failed in a way that may pass.
    failed: Cell<bool>,
    /// What the jobs and broadcasts this run makes are named after: the
    /// same in every run of one update, so that a run again (after a store
    /// failure, or a restart before its confirmation) makes none twice.
    origin: Option<String>,
    /// How many this run has named so far.
    made: Cell<u32>,
}

impl Written {
    /// A run of `update`: its origin is the `update_id` and a digest of the
    /// update's JSON, which a redelivery repeats and a later update with the
    /// same id (ids restart after a week idle) does not.
    pub(crate) fn for_update(update: &Received) -> Written {
        let digest = fnv1a(update.raw().as_bytes());
        Written {
            origin: Some(format!("u{}x{digest:016x}", update.id())),
            ..Written::default()
        }
    }

    /// The name of the next job or broadcast this run makes, the same in
    /// every run of its update; `None` outside an update (a job's run).
    pub(crate) fn next_made(&self) -> Option<String> {
        let origin = self.origin.as_ref()?;
        self.made.set(self.made.get() + 1);
        Some(format!("{origin}-{}", self.made.get()))
    }

    /// The sequence number to wait on before the update counts as finished.
    pub(crate) fn pending(&self) -> Option<u64> {
        self.pending.get()
    }

    /// Whether the update must run again: a store was unavailable.
    pub(crate) fn failed(&self) -> bool {
        self.failed.get()
    }
}

/// FNV-1a, 64 bits: a digest that stays the same from one build to the next
/// (std's hashers promise no such thing).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One state value of one update: its key, and where to account for writes.
pub(crate) struct Slot<'a> {
    states: &'a States,
    written: &'a Written,
    key: String,
    ttl: Option<Duration>,
}

/// Opens the store `spec` names, for the bot `bot_id` (Redis keys are
/// namespaced by it): at start, before anything runs.
///
/// # Errors
/// [`Error::State`] with [`StoreError::Open`]: a file held by another
/// process or not a state file, a bad Redis URL.
pub(crate) fn open(config: &StateConfig, bot_id: i64) -> Result<Rc<dyn Store>, Error> {
    let _ = bot_id; // only Redis keys carry it
    Ok(match &config.store {
        StoreSpec::Memory => Rc::new(MemoryStore::new()),
        #[cfg(feature = "redis-store")]
        StoreSpec::Redis(url) => {
            Rc::new(RedisStore::open(url, &format!("smolgram:{bot_id}")).map_err(Error::State)?)
        }
        #[cfg(feature = "file-store")]
        StoreSpec::File(path) => {
            let options = FileOptions {
                flush_interval: config.flush_interval,
                ..FileOptions::default()
            };
            Rc::new(FileStore::open(path, options).map_err(Error::State)?)
        }
        #[allow(unreachable_patterns, reason = "with both store features on")]
        other => return Err(not_built(other)),
    })
}

/// Why a store left out of this build cannot be opened: one line naming
/// the cargo feature.
#[allow(dead_code, reason = "with both store features on")]
fn not_built(spec: &StoreSpec) -> Error {
    let (what, feature) = match spec {
        StoreSpec::File(_) => ("file:", "file-store"),
        _ => ("redis://", "redis-store"),
    };
    Error::Config(format!(
        "--state {what}…: this build has no such store (cargo feature `{feature}`); the smolgram binary's own bots keep no state"
    ))
}

impl States {
    /// `store`, with `ttl` for types that name none.
    pub(crate) fn new(store: Rc<dyn Store>, ttl: Option<Duration>, metrics: Rc<Metrics>) -> States {
        States {
            store,
            ttl,
            metrics,
            updating: RefCell::default(),
            released: Event::new(),
        }
    }

    /// The store, for the dispatcher's waits and the final flush.
    pub(crate) fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The slot of `S` for `update`, or why it has none: an update without
    /// the chat or the user that `S`'s scope needs.
    pub(crate) fn slot<'a, S: State>(
        &'a self,
        update: &Update,
        written: &'a Written,
    ) -> Result<Slot<'a>, Error> {
        let chat = update.chat().map(|c| c.id);
        let user = update.from().map(|u| u.id);
        self.slot_for::<S>(chat, user, written)
            .map_err(|scope| Error::NoScope {
                update_id: update.update_id,
                scope,
            })
    }

    /// The slot of `S` for a job: of `chat` and/or `user`, as `S::SCOPE`
    /// needs.
    pub(crate) fn slot_of<'a, S: State>(
        &'a self,
        chat: Option<ChatId>,
        user: Option<UserId>,
        written: &'a Written,
    ) -> Result<Slot<'a>, Error> {
        self.slot_for::<S>(chat, user, written).map_err(|scope| {
            Error::Config(format!(
                "state `{}` of a job: its scope needs {scope}",
                S::NAME
            ))
        })
    }

    /// The slot, or what its scope lacks.
    fn slot_for<'a, S: State>(
        &'a self,
        chat: Option<ChatId>,
        user: Option<UserId>,
        written: &'a Written,
    ) -> Result<Slot<'a>, &'static str> {
        let scope = match (S::SCOPE, chat, user) {
            (Scope::Chat, Some(chat), _) => format!("c{}", chat.0),
            (Scope::User, _, Some(user)) => format!("u{}", user.0),
            (Scope::ChatUser, Some(chat), Some(user)) => format!("c{}:u{}", chat.0, user.0),
            (Scope::Bot, ..) => "bot".to_owned(),
            (scope, ..) => return Err(scope.describe()),
        };
        Ok(Slot {
            states: self,
            written,
            key: format!("{}:{scope}", S::NAME),
            // Zero is "for ever", as `--state-ttl 0`.
            ttl: S::TTL.or(self.ttl).filter(|ttl| !ttl.is_zero()),
        })
    }
}

impl States {
    /// The bytes under `key`, read for `written`'s update or job.
    pub(crate) async fn get(&self, key: &str, written: &Written) -> Result<Option<Vec<u8>>, Error> {
        self.check(self.store.get(key).await, written)
    }

    /// Writes `key` for `written`'s update or job: applied now, and
    /// waited on (durable) before it counts as finished.
    pub(crate) async fn put(
        &self,
        key: &str,
        value: Option<&[u8]>,
        ttl: Option<Duration>,
        written: &Written,
    ) -> Result<(), Error> {
        let seq = self.check(self.store.put(key, value, ttl).await, written)?;
        bump(&self.metrics.state_writes);
        if let Some(seq) = seq {
            written.pending.set(Some(seq));
        }
        Ok(())
    }

    /// A record of the run's own (a job's, a broadcast's) under `key`,
    /// as JSON; one that does not decode is logged and read as none.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
        written: &Written,
    ) -> Result<Option<T>, Error> {
        let Some(bytes) = self.get(key, written).await? else {
            return Ok(None);
        };
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Some(value)),
            Err(e) => {
                log::warn!("record key={key} does not decode: {e}; ignored");
                Ok(None)
            }
        }
    }

    /// Writes `value` under `key` as JSON, as [`put`](States::put) does.
    pub(crate) async fn put_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
        written: &Written,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Config(e.to_string()))?;
        self.put(key, Some(&bytes), ttl, written).await
    }

    /// A store's answer as the handler's: a transient failure also marks
    /// the update to be run again, even if the handler ignores the error.
    fn check<T>(&self, result: Result<T, StoreError>, written: &Written) -> Result<T, Error> {
        result.map_err(|e| {
            bump(&self.metrics.state_errors);
            if e.is_transient() {
                written.failed.set(true);
            }
            Error::State(e)
        })
    }
}

/// Ends a slot's update, however it ends (a failure, a dropped handler).
struct Release<'a>(&'a States, &'a str);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.updating.borrow_mut().remove(self.1);
        self.0.released.notify(usize::MAX);
    }
}

impl Scope {
    fn describe(self) -> &'static str {
        match self {
            Scope::Chat => "a chat",
            Scope::User => "a user",
            Scope::ChatUser => "a chat and a user",
            Scope::Bot => "nothing",
        }
    }
}

impl Slot<'_> {
    /// The value, or `S::default()` if there is none or it no longer
    /// decodes (then it is removed, logged and counted).
    pub(crate) async fn get<S: State>(&self) -> Result<S, Error> {
        let Some(bytes) = self.states.get(&self.key, self.written).await? else {
            return Ok(S::default());
        };
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(value),
            Err(e) => {
                log::warn!(
                    "state key={} does not decode as {}: {e}; reset to the default",
                    self.key,
                    S::NAME
                );
                bump(&self.states.metrics.state_resets);
                self.put(None).await?;
                Ok(S::default())
            }
        }
    }

    /// Stores `value`; the default value is stored as no value at all.
    pub(crate) async fn set<S: State>(&self, value: &S) -> Result<(), Error> {
        let bytes = self.encode(value)?;
        if bytes == self.encode(&S::default())? {
            return self.put(None).await;
        }
        self.put(Some(&bytes)).await
    }

    /// Reads the value, lets `change` change it, and stores it: no other
    /// update of this slot runs in between (in this process).
    pub(crate) async fn update<S: State, R>(
        &self,
        change: impl FnOnce(&mut S) -> R,
    ) -> Result<R, Error> {
        let states = self.states;
        wait::until(&states.released, || {
            !states.updating.borrow().contains(&self.key)
        })
        .await;
        states.updating.borrow_mut().insert(self.key.clone());
        let _release = Release(states, &self.key);
        let mut value = self.get::<S>().await?;
        let out = change(&mut value);
        self.set(&value).await?;
        Ok(out)
    }

    /// Removes the value.
    pub(crate) async fn clear(&self) -> Result<(), Error> {
        self.put(None).await
    }

    async fn put(&self, value: Option<&[u8]>) -> Result<(), Error> {
        self.states
            .put(&self.key, value, self.ttl, self.written)
            .await
    }

    /// `value` as JSON; only a type JSON cannot hold fails (a map with
    /// keys that are not strings or numbers).
    fn encode<S: Serialize>(&self, value: &S) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(value).map_err(|e| {
            Error::State(StoreError::Encode {
                key: self.key.clone(),
                detail: e.to_string(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In the shipped binary's build (CI's lean-api step runs this there).
    #[test]
    #[cfg(not(any(feature = "file-store", feature = "redis-store")))]
    fn a_store_left_out_of_the_build_is_one_line_naming_its_feature() {
        for (spec, feature) in [
            (StoreSpec::File("/x".into()), "file-store"),
            (StoreSpec::Redis("redis://:pw@h".into()), "redis-store"),
        ] {
            let config = StateConfig {
                store: spec,
                ..StateConfig::default()
            };
            let e = open(&config, 1).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let line = e.to_string();
            assert!(
                line.contains(&format!("cargo feature `{feature}`")),
                "{line}"
            );
            assert!(!line.contains("pw"), "{line}");
        }
    }

    #[test]
    fn keys_name_the_type_and_its_scope() {
        let update: Update = serde_json::from_value(serde_json::json!({
            "update_id": 9,
            "message": {
                "message_id": 1, "date": 0, "text": "x",
                "chat": { "id": -5, "type": "group", "title": "g" },
                "from": { "id": 7, "is_bot": false, "first_name": "U" },
            }
        }))
        .unwrap();
        let states = States::new(Rc::new(MemoryStore::new()), None, Rc::default());
        let written = Written::default();
        let key = |slot: Result<Slot<'_>, Error>| slot.unwrap().key;
        assert_eq!(key(states.slot::<ByChat>(&update, &written)), "c:c-5");
        assert_eq!(key(states.slot::<ByUser>(&update, &written)), "u:u7");
        assert_eq!(key(states.slot::<ByBoth>(&update, &written)), "b:c-5:u7");
        let inline: Update = serde_json::from_value(serde_json::json!({
            "update_id": 10,
            "inline_query": { "id": "q", "query": "", "offset": "",
                "from": { "id": 7, "is_bot": false, "first_name": "U" } }
        }))
        .unwrap();
        let e = states.slot::<ByBoth>(&inline, &written).err().unwrap();
        assert_eq!(
            e.to_string(),
            "update 10 has no state of its own: it lacks a chat and a user"
        );
    }

    #[test]
    fn a_run_again_of_an_update_names_what_it_makes_the_same_and_another_update_does_not() {
        let received = |json: &str| {
            let raw = serde_json::value::RawValue::from_string(json.to_owned()).unwrap();
            crate::api::types::parse_update(raw).unwrap()
        };
        let update = r#"{"update_id":5,"message":{"message_id":1,"date":1,"chat":{"id":7,"type":"private"},"text":"/go"}}"#;
        let names = |written: Written| [written.next_made(), written.next_made()];
        let first = names(Written::for_update(&received(update)));
        assert_eq!(first, names(Written::for_update(&received(update))));
        assert_ne!(first[0], first[1]);
        // The same id a week later (ids restart), another message: other names.
        let later = update.replace(r#""text":"/go""#, r#""text":"/stop""#);
        assert_ne!(first, names(Written::for_update(&received(&later))));
        // Outside an update (a job's run), no names: the caller makes its own.
        assert_eq!(Written::default().next_made(), None);
        // FNV-1a as published: the empty input's digest is the offset basis.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    /// A memory store whose answers take a turn of the executor to come
    /// back, as a network store's do.
    struct Slow(MemoryStore);

    impl Store for Slow {
        fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
            Box::pin(async move {
                let value = self.0.get(key).await;
                futures_lite::future::yield_now().await;
                value
            })
        }
        fn put<'a>(
            &'a self,
            key: &'a str,
            value: Option<&'a [u8]>,
            ttl: Option<Duration>,
        ) -> StoreFuture<'a, Option<u64>> {
            self.0.put(key, value, ttl)
        }
        fn describe(&self) -> String {
            "slow".into()
        }
    }

    #[derive(Default, Serialize, serde::Deserialize)]
    struct Count(u32);
    impl State for Count {
        const NAME: &'static str = "n";
        const SCOPE: Scope = Scope::Bot;
    }

    #[test]
    fn updates_of_one_value_from_many_chats_do_not_overwrite_each_other() {
        let states = Rc::new(States::new(
            Rc::new(Slow(MemoryStore::new())),
            None,
            Rc::default(),
        ));
        let rt = crate::Runtime::new();
        // Run together, as five chats' lanes are.
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let states = Rc::clone(&states);
                rt.spawn(async move {
                    let written = Written::default();
                    let slot = states.slot_of::<Count>(None, None, &written).unwrap();
                    slot.update(|n: &mut Count| n.0 += 1).await.unwrap();
                })
            })
            .collect();
        let n = rt
            .block_on(async {
                for task in tasks {
                    task.await;
                }
                let written = Written::default();
                let slot = states.slot_of::<Count>(None, None, &written).unwrap();
                slot.get::<Count>().await.unwrap()
            })
            .unwrap();
        assert_eq!(n.0, 5);
    }

    #[derive(Default, Serialize, serde::Deserialize)]
    struct ByChat;
    impl State for ByChat {
        const NAME: &'static str = "c";
        const SCOPE: Scope = Scope::Chat;
    }
    #[derive(Default, Serialize, serde::Deserialize)]
    struct ByUser;
    impl State for ByUser {
        const NAME: &'static str = "u";
        const SCOPE: Scope = Scope::User;
    }
    #[derive(Default, Serialize, serde::Deserialize)]
    struct ByBoth;
    impl State for ByBoth {
        const NAME: &'static str = "b";
    }
}
