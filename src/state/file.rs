//! The file store: state on one machine that survives a SIGKILL or a power
//! cut, written so that an SD card lasts (few, batched fsyncs; appends, not
//! rewrites).
//!
//! It owns the file `PATH`, its lock `PATH.lock` and, during a compaction,
//! `PATH.tmp`. Every value lives in memory too: [`get`](Store::get) reads
//! only memory, and [`put`](Store::put) changes memory at once and hands
//! the encoded record to the writer thread (`writer`), which appends
//! batches and syncs them. A batch is written when `max_batch` records
//! wait, when [`flush`](Store::flush) asks, or `flush_interval` after its
//! first record: at most one fsync per interval under light load, and a
//! [`durable`](Store::durable) wait of about one interval at most.
//!
//! The file (`log`): a header, the 14 bytes `SMOLGRAM-STATE` and a version
//! (u16 LE, 1), then records, each
//!
//! ```text
//! length  u32 LE   bytes in the payload
//! crc     u32 LE   CRC-32 (IEEE) of the payload
//! payload op u8 (1 set, 2 remove) | key length u32 LE | key (UTF-8)
//!         | expiry u64 LE (unix ms, 0 = none) | value length u32 LE | value
//! ```
//!
//! Opening replays the records up to the first short or corrupt one (a
//! crash mid-write), cuts the file there and says so in one warn line. When
//! the file outgrows both `compact_at_least` and four times the live
//! records, the live set is written to `PATH.tmp`, synced and renamed over
//! `PATH`. The lock is on `PATH.lock`, not on `PATH`: a rename gives `PATH`
//! a new inode, and a lock on the old one would let a second process in.
//!
//! Must not: block the executor thread on the disk (only [`FileStore::open`]
//! and the bounded wait in `drop` do, before and after the run), let memory
//! grow past `max_bytes`, or overwrite a file that is not its own.

mod log;
mod writer;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::future::Future;

use self::log::{LoadError, Loaded, Op};
use self::writer::{Msg, Shared, Writer};
use super::store::{Store, StoreError, StoreFuture};

/// Writes between two sweeps of expired keys out of memory.
const SWEEP_EVERY: u32 = 1024;

/// How long `drop` waits for the writer's last batch.
const DROP_WAIT: Duration = Duration::from_secs(5);

/// How a [`FileStore`] batches, bounds and compacts.
#[derive(Clone, Debug)]
pub struct FileOptions {
    /// The longest a record waits for its fsync (1 s).
    pub flush_interval: Duration,
    /// Records that are written at once without waiting for the interval (64).
    pub max_batch: usize,
    /// The largest value taken, in bytes (64 KiB).
    pub max_value: usize,
    /// The most live data held, keys, values and record headers (64 MiB).
    pub max_bytes: usize,
    /// The file is compacted only once it is larger than this as well as
    /// four times the live data (1 MiB); small in tests, to compact often.
    pub compact_at_least: usize,
}

impl Default for FileOptions {
    fn default() -> FileOptions {
        FileOptions {
            flush_interval: Duration::from_secs(1),
            max_batch: 64,
            max_value: 64 * 1024,
            max_bytes: 64 * 1024 * 1024,
            compact_at_least: 1024 * 1024,
        }
    }
}

/// What a [`FileStore`] did, for benchmarks and `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// Bytes written to the file since the open, compactions included.
    pub bytes_written: u64,
    /// fsyncs since the open (of the file, the compacted file, the directory).
    pub fsyncs: u64,
    /// Compactions since the open.
    pub compactions: u64,
    /// Whole records read at the open.
    pub records_loaded: u64,
    /// How long the open took to read them.
    pub load_time: Duration,
}

/// A value and its expiry (unix ms; 0: none).
#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires: u64,
}

impl Entry {
    fn live(&self, now_ms: u64) -> bool {
        self.expires == 0 || self.expires > now_ms
    }
}

/// State in an append-only, checksummed log file; see the module doc.
///
/// # Examples
/// ```
/// use smolgram::state::{FileOptions, FileStore, Store};
///
/// let dir = std::env::temp_dir().join(format!("smolgram-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("state.log");
/// futures_lite::future::block_on(async {
///     let store = FileStore::open(&path, FileOptions::default()).unwrap();
///     let seq = store.put("k", Some(b"v"), None).await.unwrap();
///     store.durable(seq.unwrap()).await;
/// });
/// let store = FileStore::open(&path, FileOptions::default()).unwrap();
/// let value = futures_lite::future::block_on(store.get("k")).unwrap();
/// assert_eq!(value.as_deref(), Some(&b"v"[..]));
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct FileStore {
    describe: String,
    options: FileOptions,
    entries: RefCell<HashMap<String, Entry>>,
    /// Encoded size of the live records.
    live_bytes: Cell<usize>,
    /// The file's size once everything sent is written.
    file_bytes: Cell<u64>,
    next_seq: Cell<u64>,
    writes: Cell<u32>,
    shared: Arc<Shared>,
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    /// Ends when the thread does: `drop`'s bounded wait.
    done: mpsc::Receiver<()>,
    records_loaded: u64,
    load_time: Duration,
    /// Held for the store's life; the lock goes with it.
    _lock: File,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("store", &self.describe)
            .field("keys", &self.entries.borrow().len())
            .field("live_bytes", &self.live_bytes.get())
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens (or creates) the state file at `path`, replays it and starts
    /// its writer thread. Blocks: call it before the bot runs.
    ///
    /// Fails if `path`'s directory does not exist, another process holds
    /// the file, or the file is not a smolgram state file.
    pub fn open(path: &Path, options: FileOptions) -> Result<FileStore, StoreError> {
        let started = Instant::now();
        let fail = |detail: String| StoreError::Open {
            store: path.display().to_string(),
            detail,
        };
        let dir = writer::parent(path);
        if !dir.is_dir() {
            return Err(fail(format!("directory {} does not exist", dir.display())));
        }
        let lock = take_lock(path).map_err(&fail)?;
        let (file, loaded) = read_log(path).map_err(&fail)?;
        let now = now_ms();
        let mut entries = HashMap::new();
        let mut live = 0;
        for (key, (value, expires)) in loaded.entries {
            let entry = Entry { value, expires };
            if entry.live(now) {
                live += record_size(&key, &entry.value);
                entries.insert(key, entry);
            }
        }
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel::<()>();
        let writer = Writer::new(
            path.to_path_buf(),
            file,
            loaded.good_len,
            options.flush_interval,
            options.max_batch,
            Arc::clone(&shared),
        );
        let thread = std::thread::Builder::new()
            .name("smolgram-state".into())
            .spawn(move || {
                let _done = done_tx;
                writer.run(rx);
            })
            .map_err(|e| fail(format!("cannot start the writer thread: {e}")))?;
        Ok(FileStore {
            describe: format!("file {}", path.display()),
            options,
            entries: RefCell::new(entries),
            live_bytes: Cell::new(live),
            file_bytes: Cell::new(loaded.good_len),
            next_seq: Cell::new(1),
            writes: Cell::new(0),
            shared,
            tx: Some(tx),
            thread: Some(thread),
            done,
            records_loaded: loaded.records,
            load_time: started.elapsed(),
            _lock: lock,
        })
    }

    /// What it wrote and read so far.
    pub fn stats(&self) -> FileStats {
        FileStats {
            bytes_written: self.shared.bytes_written.load(Ordering::Relaxed),
            fsyncs: self.shared.fsyncs.load(Ordering::Relaxed),
            compactions: self.shared.compactions.load(Ordering::Relaxed),
            records_loaded: self.records_loaded,
            load_time: self.load_time,
        }
    }

    /// Keys held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn unavailable(&self, detail: &str) -> StoreError {
        StoreError::Unavailable {
            store: self.describe.clone(),
            detail: detail.to_owned(),
        }
    }

    /// Checks `value` against the limits, applies it to memory and returns
    /// its record, or `None` for a removal of nothing.
    fn apply(
        &self,
        key: &str,
        value: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<Option<Op>, StoreError> {
        let now = now_ms();
        let mut entries = self.entries.borrow_mut();
        let old = entries.get(key).map_or(0, |e| record_size(key, &e.value));
        let Some(value) = value else {
            let Some(entry) = entries.remove(key) else {
                return Ok(None);
            };
            self.live_bytes.set(self.live_bytes.get() - old);
            // An expired key is already gone on disk too, at the next open.
            return Ok(entry.live(now).then(|| Op::Remove {
                key: key.to_owned(),
            }));
        };
        let too_large = |limit| StoreError::TooLarge {
            key: key.to_owned(),
            size: value.len(),
            limit,
        };
        if value.len() > self.options.max_value {
            return Err(too_large(self.options.max_value));
        }
        let others = self.live_bytes.get() - old;
        let room = self.options.max_bytes.saturating_sub(others);
        if record_size(key, value) > room {
            return Err(too_large(room));
        }
        let expires = ttl.map_or(0, |ttl| now.saturating_add(ttl.as_millis() as u64).max(1));
        let entry = Entry {
            value: value.to_vec(),
            expires,
        };
        entries.insert(key.to_owned(), entry);
        self.live_bytes.set(others + record_size(key, value));
        Ok(Some(Op::Set {
            key: key.to_owned(),
            value: value.to_vec(),
            expires,
        }))
    }

    fn send(&self, msg: Msg) -> Result<(), StoreError> {
        let tx = self.tx.as_ref().ok_or_else(|| self.unavailable("closed"))?;
        tx.send(msg)
            .map_err(|_| self.unavailable("the writer thread stopped"))
    }

    /// Every so many writes: expired keys out of memory.
    fn sweep(&self) {
        self.writes.set(self.writes.get().wrapping_add(1));
        if self.writes.get() % SWEEP_EVERY != 0 {
            return;
        }
        let now = now_ms();
        let mut entries = self.entries.borrow_mut();
        entries.retain(|key, entry| {
            let live = entry.live(now);
            if !live {
                let size = record_size(key, &entry.value);
                self.live_bytes.set(self.live_bytes.get() - size);
            }
            live
        });
    }

    /// After a write numbered `seq`: a compaction when the file has grown
    /// past both `compact_at_least` and four times the live records.
    fn maybe_compact(&self, seq: u64) -> Result<(), StoreError> {
        let limit = (self.options.compact_at_least as u64).max(4 * self.live_bytes.get() as u64);
        if self.file_bytes.get() <= limit {
            return Ok(());
        }
        let now = now_ms();
        let mut bytes = Vec::with_capacity(self.live_bytes.get());
        for (key, entry) in self.entries.borrow().iter() {
            if entry.live(now) {
                let op = Op::Set {
                    key: key.clone(),
                    value: entry.value.clone(),
                    expires: entry.expires,
                };
                log::encode(&op, &mut bytes);
            }
        }
        self.file_bytes.set(log::HEADER_LEN + bytes.len() as u64);
        self.send(Msg::Compact { seq, bytes })
    }
}

impl Store for FileStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        let now = now_ms();
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
        let result = self.put_now(key, value, ttl);
        Box::pin(async move { result })
    }

    fn durable(&self, seq: u64) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        let shared = &self.shared;
        Box::pin(crate::wait::until(&shared.changed, move || {
            shared.durable.load(Ordering::SeqCst) >= seq
        }))
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        let last = self.next_seq.get() - 1;
        let sent = self.send(Msg::Flush);
        Box::pin(async move {
            sent?;
            self.durable(last).await;
            Ok(())
        })
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

impl FileStore {
    fn put_now(
        &self,
        key: &str,
        value: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<Option<u64>, StoreError> {
        if self.shared.failed.load(Ordering::SeqCst) {
            return Err(self.unavailable("the state file cannot be written; updates held"));
        }
        let Some(op) = self.apply(key, value, ttl)? else {
            // Removing nothing changes nothing, but what it saw may still
            // be on its way to the disk: a removal not yet synced.
            let last = self.next_seq.get() - 1;
            let synced = self.shared.durable.load(Ordering::SeqCst) >= last;
            return Ok((!synced).then_some(last));
        };
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        let mut bytes = Vec::with_capacity(record_size(key, value.unwrap_or_default()));
        log::encode(&op, &mut bytes);
        self.file_bytes
            .set(self.file_bytes.get() + bytes.len() as u64);
        self.send(Msg::Records { seq, bytes })?;
        self.sweep();
        self.maybe_compact(seq)?;
        Ok(Some(seq))
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        // The writer writes what is left once its channel closes, then ends.
        drop(self.tx.take());
        match self.done.recv_timeout(DROP_WAIT) {
            Err(mpsc::RecvTimeoutError::Timeout) => ::log::warn!(
                "state: {}: the last writes were not synced within {DROP_WAIT:?}; not waiting longer",
                self.describe
            ),
            _ => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}

/// The encoded size of a record setting `key` to `value`.
fn record_size(key: &str, value: &[u8]) -> usize {
    log::OVERHEAD + key.len() + value.len()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Opens (creating) `PATH.lock` and takes its exclusive lock without
/// waiting.
fn take_lock(path: &Path) -> Result<File, String> {
    let lock_path = writer::sibling(path, ".lock");
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(format!(
            "held by another process (pid unknown); one store per file, lock {}",
            lock_path.display()
        )),
        Err(e) => Err(format!("cannot lock {}: {e}", lock_path.display())),
    }
}

/// Opens (creating) the log, replays it and cuts a torn tail off; the file
/// is left positioned at its end.
fn read_log(path: &Path) -> Result<(File, Loaded), String> {
    let io = |e: std::io::Error| format!("{e}");
    let existed = path.exists();
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let loaded = match log::load(&mut BufReader::new(&file)) {
        Ok(loaded) => loaded,
        Err(LoadError::Io(e)) => return Err(io(e)),
        Err(LoadError::NotOurs) => {
            return Err(format!("{} is not a smolgram state file", path.display()))
        }
        Err(LoadError::Version(v)) => {
            return Err(format!(
                "state file version {v}; this build reads {}",
                log::VERSION
            ))
        }
    };
    if loaded.good_len == 0 {
        // New, or its header was torn while it was created.
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&log::header()).map_err(io)?;
        file.sync_all().map_err(io)?;
        if !existed {
            writer::sync_dir(path).map_err(io)?;
        }
        let loaded = Loaded {
            good_len: log::HEADER_LEN,
            ..loaded
        };
        return Ok((file, loaded));
    }
    if size > loaded.good_len {
        ::log::warn!(
            "state: {}: torn tail of {} bytes at offset {} dropped (a crash mid-write)",
            path.display(),
            size - loaded.good_len,
            loaded.good_len
        );
        file.set_len(loaded.good_len).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    file.seek(SeekFrom::Start(loaded.good_len)).map_err(io)?;
    Ok((file, loaded))
}

#[cfg(test)]
mod tests;
