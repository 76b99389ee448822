//! The state file's one writer: a thread (`smolgram-state`) that takes
//! encoded records over a channel, coalesces them, appends each batch with
//! one `write_all` and one `sync_data`, and then publishes the highest
//! durable sequence number; it also swaps in a compacted file.
//!
//! A thread, so that the executor never waits on the SD card. It keeps what
//! it could not write and tries again (1 s, doubling to 30 s); a partly
//! written batch is cut off again before the retry, so the log never holds
//! a torn record anywhere but at its very end (after a crash).
//!
//! Must not: know the map or the keys; publish a sequence number before
//! the bytes that hold it are synced.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_listener::Event;

use super::log;

/// What the executor side hands the thread.
#[derive(Debug)]
pub(super) enum Msg {
    /// Encoded records, the last of them numbered `seq`.
    Records { seq: u64, bytes: Vec<u8> },
    /// The whole live set as records, up to and including `seq`: it
    /// replaces the file (and every record not yet written).
    Compact { seq: u64, bytes: Vec<u8> },
    /// Write what is waiting now.
    Flush,
}

/// What both sides see: durability, the failed state, the counters.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// The highest sequence number that is synced.
    pub(super) durable: AtomicU64,
    /// Notified each time `durable` grows.
    pub(super) changed: Event,
    /// The last write failed and is being retried: take no new writes.
    pub(super) failed: AtomicBool,
    /// Bytes written to the file, compacted files included.
    pub(super) bytes_written: AtomicU64,
    /// `sync_data` and `sync_all` calls that succeeded.
    pub(super) fsyncs: AtomicU64,
    /// Compacted files swapped in.
    pub(super) compactions: AtomicU64,
}

/// The first wait after a failed write; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The thread's state.
pub(super) struct Writer {
    path: PathBuf,
    file: File,
    /// Where the file's last whole record ends.
    good_len: u64,
    /// A write failed after `good_len`: cut the file back before the next.
    dirty: bool,
    interval: Duration,
    max_batch: usize,
    shared: Arc<Shared>,
    /// Records not yet written, their count and the last one's number.
    pending: Vec<u8>,
    count: usize,
    last_seq: u64,
    /// A compacted file to swap in before `pending` is written.
    compact: Option<(u64, Vec<u8>)>,
    /// When the oldest unwritten work arrived.
    first_at: Option<Instant>,
    flush: bool,
    /// While failed: when to try again, and the wait after that.
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Writer {
    /// A writer appending to `file` (at `good_len`), whose path is `path`.
    pub(super) fn new(
        path: PathBuf,
        file: File,
        good_len: u64,
        interval: Duration,
        max_batch: usize,
        shared: Arc<Shared>,
    ) -> Writer {
        Writer {
            path,
            file,
            good_len,
            dirty: false,
            interval,
            max_batch: max_batch.max(1),
            shared,
            pending: Vec::new(),
            count: 0,
            last_seq: 0,
            compact: None,
            first_at: None,
            flush: false,
            retry_at: None,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Runs until the sending side is gone, then writes what is left once.
    pub(super) fn run(mut self, rx: Receiver<Msg>) {
        loop {
            let got = match self.deadline() {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            match got {
                Ok(msg) => self.take(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Coalesce: everything already sent goes into this batch.
            while let Ok(msg) = rx.try_recv() {
                self.take(msg);
            }
            if self.is_due(Instant::now()) {
                self.attempt();
            }
        }
        if self.has_work() {
            self.attempt();
        }
    }

    fn take(&mut self, msg: Msg) {
        if !self.has_work() {
            self.first_at = Some(Instant::now());
        }
        match msg {
            Msg::Records { seq, bytes } => {
                self.pending.extend_from_slice(&bytes);
                self.count += 1;
                self.last_seq = seq;
            }
            Msg::Compact { seq, bytes } => {
                // Every record sent before it is in the compacted file.
                self.pending.clear();
                self.count = 0;
                self.compact = Some((seq, bytes));
            }
            Msg::Flush => self.flush = true,
        }
    }

    fn has_work(&self) -> bool {
        self.count > 0 || self.compact.is_some()
    }

    /// When the thread must wake without a message: a retry, or the end of
    /// the oldest pending work's interval; `None`: nothing to do.
    fn deadline(&self) -> Option<Instant> {
        if let Some(at) = self.retry_at {
            return Some(at);
        }
        let first = self.first_at.filter(|_| self.has_work())?;
        Some(first + self.interval)
    }

    fn is_due(&self, now: Instant) -> bool {
        if let Some(at) = self.retry_at {
            return now >= at;
        }
        self.has_work()
            && (self.flush
                || self.compact.is_some()
                || self.count >= self.max_batch
                || self.deadline().is_some_and(|at| now >= at))
    }

    /// One try at writing everything waiting; on failure the failed state
    /// and the next retry.
    fn attempt(&mut self) {
        match self.write_out() {
            Ok(()) => {
                if self.retry_at.take().is_some() {
                    ::log::info!("state: {}: writes recovered", self.path.display());
                    self.shared.failed.store(false, Ordering::SeqCst);
                }
                self.backoff = FIRST_BACKOFF;
                self.flush = false;
                self.first_at = None;
            }
            Err(e) => {
                self.dirty = true;
                if self.retry_at.is_none() {
                    ::log::warn!(
                        "state: {}: cannot write: {e}; updates held, retrying for as long as it fails",
                        self.path.display()
                    );
                    self.shared.failed.store(true, Ordering::SeqCst);
                }
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    fn write_out(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.set_len(self.good_len)?;
            self.file.seek(SeekFrom::Start(self.good_len))?;
            self.dirty = false;
        }
        if let Some((seq, bytes)) = &self.compact {
            let seq = *seq;
            self.swap_in(bytes.clone())?;
            self.compact = None;
            self.publish(seq);
        }
        if self.count > 0 {
            self.file.write_all(&self.pending)?;
            self.file.sync_data()?;
            self.counted(self.pending.len() as u64);
            self.good_len += self.pending.len() as u64;
            self.pending.clear();
            self.count = 0;
            self.publish(self.last_seq);
        }
        Ok(())
    }

    /// Writes `records` under a header to `PATH.tmp`, syncs it, renames it
    /// over `PATH`, syncs the directory, and appends to it from now on.
    fn swap_in(&mut self, records: Vec<u8>) -> io::Result<()> {
        let tmp = sibling(&self.path, ".tmp");
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let mut bytes = log::header();
        bytes.extend_from_slice(&records);
        file.write_all(&bytes)?;
        file.sync_all()?;
        self.counted(bytes.len() as u64);
        std::fs::rename(&tmp, &self.path)?;
        self.file = file;
        self.good_len = bytes.len() as u64;
        sync_dir(&self.path)?;
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.shared.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn counted(&self, bytes: u64) {
        self.shared
            .bytes_written
            .fetch_add(bytes, Ordering::Relaxed);
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
    }

    fn publish(&self, seq: u64) {
        self.shared.durable.fetch_max(seq, Ordering::SeqCst);
        self.shared.changed.notify(usize::MAX);
    }
}

/// `path` with `suffix` appended to its file name: `state.log.tmp`.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Syncs the directory that holds `path`, so a created or renamed entry
/// survives a power cut.
pub(super) fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(parent(path))?.sync_all()
}

/// The directory `path` is in; `.` for a bare file name.
pub(super) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn a_failed_write_is_flagged_and_held_and_never_published() {
        let dir = std::env::temp_dir().join(format!("smolgram-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.log");
        std::fs::write(&path, log::header()).unwrap();
        // Read-only: every write fails, as on a full or read-only card.
        let file = File::open(&path).unwrap();
        let shared = Arc::new(Shared::default());
        let interval = Duration::from_millis(1);
        let writer = Writer::new(
            path.clone(),
            file,
            log::HEADER_LEN,
            interval,
            1,
            shared.clone(),
        );
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || writer.run(rx));
        let mut bytes = Vec::new();
        log::encode(&log::Op::Remove { key: "k".into() }, &mut bytes);
        tx.send(Msg::Records { seq: 1, bytes }).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !shared.failed.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the failure is flagged within 5 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(shared.durable.load(Ordering::SeqCst), 0);
        drop(tx);
        thread.join().unwrap();
        assert_eq!(
            shared.durable.load(Ordering::SeqCst),
            0,
            "not after the last try either"
        );
        assert_eq!(std::fs::read(&path).unwrap(), log::header());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
