//! The storage contract every state store keeps, and its error.
//!
//! A store maps string keys to bytes. It knows nothing of chats, users,
//! serde or updates: `state` (the module above) makes the keys and the
//! bytes, and the dispatcher waits on [`Store::durable`]. Everything runs
//! on the executor thread, so a store is `Rc`-shared and its futures need
//! not be `Send`.
//!
//! Must not: block the executor thread (a file store's writes and fsyncs
//! run elsewhere; a network store's sockets are async), or hold the token or
//! a password in what it prints.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A store's future: borrowed from the store, run on the executor thread.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + 'a>>;

/// Where state is kept: memory, a file, Redis.
///
/// The contract:
/// - [`put`](Store::put) resolves once a [`get`](Store::get) sees the
///   change. If the change is durable by then it returns `None`; otherwise
///   the sequence number to hand to [`durable`](Store::durable), which
///   resolves once it (and every write before it) survives a SIGKILL or a
///   power cut. Sequence numbers grow with every write.
/// - An error is for the moment: the store cannot be read or written now (a
///   Redis that does not answer, a full disk). The update that asked is run
///   again later, so a store retries nothing itself beyond a reconnect, and
///   bounds each attempt by a timeout.
/// - `ttl`: the key is gone that long after this write (abandoned
///   conversations end); `None` keeps it until it is written again.
pub trait Store {
    /// The value under `key`, or `None` if there is none or it expired.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Sets `key` to `value`, or removes it when `value` is `None`.
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Option<&'a [u8]>,
        ttl: Option<Duration>,
    ) -> StoreFuture<'a, Option<u64>>;

    /// Resolves once the write numbered `seq` and all before it are
    /// durable. A store whose writes are durable when `put` returns never
    /// hands out a number, and keeps this default.
    fn durable(&self, seq: u64) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        let _ = seq;
        Box::pin(async {})
    }

    /// Makes every write so far durable now, without waiting for the next
    /// batch: at a stop.
    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// What it is, for logs and `/metrics` labels: `memory`,
    /// `file /var/lib/bot/state.log`, `redis 127.0.0.1:6379/0` (never a
    /// password).
    fn describe(&self) -> String;
}

/// A store could not do what was asked, now or at all.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// Not reachable or not writable now: Redis down or timing out, an I/O
    /// error. The update is held and run again.
    Unavailable {
        /// Which store, as [`Store::describe`] says.
        store: String,
        /// What failed, one lowercase line.
        detail: String,
    },
    /// A value larger than the store takes.
    TooLarge {
        /// The key.
        key: String,
        /// The value's size in bytes.
        size: usize,
        /// The store's limit in bytes.
        limit: usize,
    },
    /// A value that JSON cannot hold (a map whose keys are not strings or
    /// numbers): a bug in the state type.
    Encode {
        /// The key.
        key: String,
        /// serde's message.
        detail: String,
    },
    /// The store cannot be opened: a bad URL or path, a file held by
    /// another process, a file that is not a state log.
    Open {
        /// What was asked for (a path, a URL without its password).
        store: String,
        /// Why, one lowercase line.
        detail: String,
    },
}

impl StoreError {
    /// Whether asking again later may succeed: the update is then held and
    /// run again, not counted as finished.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable { store, detail } => {
                write!(f, "state: {store} unavailable: {detail}")
            }
            StoreError::TooLarge { key, size, limit } => {
                write!(f, "state: {key}: {size} bytes, over the store's {limit}")
            }
            StoreError::Encode { key, detail } => {
                write!(f, "state: {key}: cannot encode: {detail}")
            }
            StoreError::Open { store, detail } => write!(f, "state: cannot open {store}: {detail}"),
        }
    }
}

impl std::error::Error for StoreError {}
