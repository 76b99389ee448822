//! The memory store: the default, for tests, `demo`, and bots whose state
//! may go with the process.
//!
//! Must not: grow without bound from expired keys (a sweep every so many
//! writes drops them).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::store::{Store, StoreFuture};

/// Writes between two sweeps of expired keys.
const SWEEP_EVERY: u32 = 1024;

/// State in a `HashMap`, gone at exit. Every write is "durable" at once.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: RefCell<HashMap<String, Entry>>,
    writes: Cell<u32>,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Keys held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        let now = Instant::now();
        let value = self
            .entries
            .borrow()
            .get(key)
            .filter(|entry| entry.live(now))
            .map(|entry| entry.value.clone());
        Box::pin(async move { Ok(value) })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Option<&'a [u8]>,
        ttl: Option<Duration>,
    ) -> StoreFuture<'a, Option<u64>> {
        let now = Instant::now();
        let mut entries = self.entries.borrow_mut();
        match value {
            Some(value) => {
                let entry = Entry {
                    value: value.to_vec(),
                    // A TTL past what an `Instant` holds is no expiry.
                    expires: ttl.and_then(|ttl| now.checked_add(ttl)),
                };
                entries.insert(key.to_owned(), entry);
            }
            None => {
                entries.remove(key);
            }
        }
        self.writes.set(self.writes.get() + 1);
        if self.writes.get() % SWEEP_EVERY == 0 {
            entries.retain(|_, entry| entry.live(now));
        }
        Box::pin(async { Ok(None) })
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    #[test]
    fn a_write_is_read_back_and_a_removal_removes() {
        let store = MemoryStore::new();
        block_on(async {
            assert_eq!(store.put("k", Some(b"v"), None).await.unwrap(), None);
            assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
            store.put("k", None, None).await.unwrap();
            assert_eq!(store.get("k").await.unwrap(), None);
        });
    }

    #[test]
    fn expired_keys_read_as_absent_and_are_swept() {
        let store = MemoryStore::new();
        block_on(async {
            store
                .put("old", Some(b"v"), Some(Duration::ZERO))
                .await
                .unwrap();
            assert_eq!(store.get("old").await.unwrap(), None);
            for i in 0..SWEEP_EVERY {
                let key = format!("k{i}");
                store.put(&key, None, None).await.unwrap();
            }
        });
        assert!(store.is_empty());
    }
}
