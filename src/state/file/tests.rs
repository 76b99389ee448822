use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;

use futures_lite::future::block_on;

use super::*;

/// A fresh directory for one test, removed by the guard.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("smolgram-file-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn log(&self) -> PathBuf {
        self.0.join("state.log")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(path: &Path) -> FileStore {
    FileStore::open(path, FileOptions::default()).unwrap()
}

fn get(store: &FileStore, key: &str) -> Option<Vec<u8>> {
    block_on(store.get(key)).unwrap()
}

/// Puts and makes it durable now (a flush: no wait for the interval).
fn put(store: &FileStore, key: &str, value: Option<&[u8]>) {
    block_on(async {
        store.put(key, value, None).await.unwrap();
        store.flush().await.unwrap();
    });
}

fn open_error(path: &Path, options: FileOptions) -> String {
    match FileStore::open(path, options) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_write_is_read_at_once_and_after_a_reopen() {
    let dir = Dir::new("reopen");
    let store = open(&dir.log());
    let seq = block_on(store.put("k", Some(b"v1"), None)).unwrap();
    assert_eq!(
        get(&store, "k").as_deref(),
        Some(&b"v1"[..]),
        "before durable"
    );
    block_on(store.durable(seq.expect("a file write is not durable at once")));
    put(&store, "k", Some(b"v2"));
    put(&store, "gone", Some(b"x"));
    put(&store, "gone", None);
    assert_eq!(store.describe(), format!("file {}", dir.log().display()));
    drop(store);
    let store = open(&dir.log());
    assert_eq!(get(&store, "k").as_deref(), Some(&b"v2"[..]));
    assert_eq!(get(&store, "gone"), None, "a removal persists");
    assert_eq!(store.stats().records_loaded, 4);
}

#[test]
fn drop_writes_what_is_pending() {
    let dir = Dir::new("drop");
    let store = open(&dir.log());
    block_on(store.put("k", Some(b"v"), None)).unwrap();
    drop(store);
    assert_eq!(get(&open(&dir.log()), "k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn flush_makes_everything_durable_without_waiting_for_the_interval() {
    let dir = Dir::new("flush");
    let options = FileOptions {
        flush_interval: Duration::from_secs(3600),
        ..FileOptions::default()
    };
    let store = FileStore::open(&dir.log(), options).unwrap();
    let seq = block_on(store.put("k", Some(b"v"), None)).unwrap().unwrap();
    let flushed = crate::wait::within(Duration::from_secs(5), store.flush());
    assert!(async_io::block_on(flushed).is_some(), "flush within 5 s");
    assert!(store.shared.durable.load(Ordering::SeqCst) >= seq);
    assert_eq!(store.stats().fsyncs, 1);
}

/// Three records written by the store; the file's bytes and where its last
/// record starts.
fn three_records(path: &Path) -> (Vec<u8>, usize) {
    let store = open(path);
    put(&store, "a", Some(b"first"));
    put(&store, "b", Some(b"second"));
    let before = std::fs::metadata(path).unwrap().len() as usize;
    put(&store, "c", Some(b"third, the last"));
    drop(store);
    (std::fs::read(path).unwrap(), before)
}

#[test]
fn a_torn_last_record_is_dropped_at_every_offset_and_cut_off() {
    let dir = Dir::new("torn");
    let (bytes, last) = three_records(&dir.log());
    for cut in last..bytes.len() {
        std::fs::write(dir.log(), &bytes[..cut]).unwrap();
        let store = open(&dir.log());
        assert_eq!(
            get(&store, "a").as_deref(),
            Some(&b"first"[..]),
            "cut {cut}"
        );
        assert_eq!(
            get(&store, "b").as_deref(),
            Some(&b"second"[..]),
            "cut {cut}"
        );
        assert_eq!(get(&store, "c"), None, "cut {cut}");
        drop(store);
        let len = std::fs::metadata(dir.log()).unwrap().len() as usize;
        assert_eq!(len, last, "the file is cut at the torn record (cut {cut})");
    }
}

#[test]
fn a_flipped_byte_in_the_last_record_drops_that_record() {
    let dir = Dir::new("flip");
    let (mut bytes, last) = three_records(&dir.log());
    let at = last + (bytes.len() - last) / 2;
    bytes[at] ^= 0x01;
    std::fs::write(dir.log(), &bytes).unwrap();
    let store = open(&dir.log());
    assert_eq!(get(&store, "b").as_deref(), Some(&b"second"[..]));
    assert_eq!(get(&store, "c"), None);
    assert_eq!(store.stats().records_loaded, 2);
}

#[test]
fn a_file_that_is_not_ours_is_refused_and_left_alone() {
    let dir = Dir::new("foreign");
    let text = b"name = \"not a state file\"\n";
    std::fs::write(dir.log(), text).unwrap();
    let error = open_error(&dir.log(), FileOptions::default());
    assert!(error.contains("is not a smolgram state file"), "{error}");
    assert_eq!(std::fs::read(dir.log()).unwrap(), text);
}

#[test]
fn a_missing_directory_is_named() {
    let dir = Dir::new("nodir");
    let path = dir.0.join("missing").join("state.log");
    let error = open_error(&path, FileOptions::default());
    assert!(error.contains("missing does not exist"), "{error}");
}

#[test]
fn a_second_open_while_the_first_lives_is_refused() {
    let dir = Dir::new("lock");
    let first = open(&dir.log());
    let error = open_error(&dir.log(), FileOptions::default());
    assert!(error.contains("held by another process"), "{error}");
    drop(first);
    open(&dir.log());
}

#[test]
fn expired_entries_are_dropped_on_load() {
    let dir = Dir::new("expiry");
    let mut bytes = log::header();
    let set = |key: &str, expires| Op::Set {
        key: key.into(),
        value: b"v".to_vec(),
        expires,
    };
    log::encode(&set("old", 1), &mut bytes);
    log::encode(&set("later", now_ms() + 3_600_000), &mut bytes);
    log::encode(&set("kept", 0), &mut bytes);
    std::fs::write(dir.log(), &bytes).unwrap();
    let store = open(&dir.log());
    assert_eq!(store.len(), 2);
    assert_eq!(get(&store, "old"), None);
    assert!(get(&store, "later").is_some() && get(&store, "kept").is_some());
}

#[test]
fn a_ttl_expires_the_key() {
    let dir = Dir::new("ttl");
    let store = open(&dir.log());
    block_on(store.put("k", Some(b"v"), Some(Duration::ZERO))).unwrap();
    assert_eq!(get(&store, "k"), None);
}

#[test]
fn compaction_keeps_exactly_the_live_set_and_shrinks_the_file() {
    let dir = Dir::new("compact");
    let options = FileOptions {
        compact_at_least: 4096,
        max_batch: 8,
        ..FileOptions::default()
    };
    let store = FileStore::open(&dir.log(), options.clone()).unwrap();
    let mut live = HashMap::new();
    for i in 0..1000 {
        let key = format!("k{}", i % 7);
        let value = format!("value {i} {}", "x".repeat(i % 13));
        put(&store, &key, Some(value.as_bytes()));
        live.insert(key, value.into_bytes());
    }
    put(&store, "k3", None);
    live.remove("k3");
    block_on(store.flush()).unwrap();
    let stats = store.stats();
    drop(store);
    assert!(stats.compactions >= 5, "{stats:?}");
    let size = std::fs::metadata(dir.log()).unwrap().len();
    assert!(
        size <= 4096 + 200,
        "file {size} bytes, written {}",
        stats.bytes_written
    );
    assert!(!writer::sibling(&dir.log(), ".tmp").exists());
    let store = FileStore::open(&dir.log(), options).unwrap();
    let held: HashMap<String, Vec<u8>> = store
        .entries
        .borrow()
        .iter()
        .map(|(k, e)| (k.clone(), e.value.clone()))
        .collect();
    assert_eq!(held, live);
}

#[test]
fn values_and_data_over_the_limits_are_refused() {
    let dir = Dir::new("limits");
    let options = FileOptions {
        max_value: 100,
        max_bytes: 300,
        ..FileOptions::default()
    };
    let store = FileStore::open(&dir.log(), options).unwrap();
    let big = vec![b'x'; 101];
    let error = block_on(store.put("k", Some(&big), None)).unwrap_err();
    assert!(
        matches!(error, StoreError::TooLarge { limit: 100, .. }),
        "{error}"
    );
    let fits = vec![b'x'; 100];
    for key in ["a", "b"] {
        block_on(store.put(key, Some(&fits), None)).unwrap();
    }
    let error = block_on(store.put("c", Some(&fits), None)).unwrap_err();
    assert!(matches!(error, StoreError::TooLarge { .. }), "{error}");
    block_on(store.put("a", Some(&fits), None)).expect("a rewrite takes the old one's room");
    assert_eq!(get(&store, "c"), None);
}

#[test]
fn a_removal_of_nothing_waits_for_a_pending_removal() {
    let dir = Dir::new("noop");
    let store = open(&dir.log());
    put(&store, "k", Some(b"v"));
    let removed = block_on(store.put("k", None, None)).unwrap();
    let again = block_on(store.put("k", None, None)).unwrap();
    assert_eq!(again, removed, "the second removal waits for the first");
    block_on(store.flush()).unwrap();
    assert_eq!(block_on(store.put("k", None, None)).unwrap(), None);
}

/// Bytes written per 1,000 puts of a ~60-byte value, default options; run
/// with `--nocapture` to see the numbers.
#[test]
fn bytes_written_per_thousand_puts() {
    let dir = Dir::new("bench");
    let store = open(&dir.log());
    block_on(async {
        let mut last = None;
        for i in 0..1000 {
            let key = format!(
                "form:c{}:u{}",
                -1_001_234_567_890i64 - (i % 20),
                123_456_789
            );
            let value = format!("{{\"step\":{},\"name\":\"{:<40}\"}}", i % 9, i);
            assert!((58..=62).contains(&value.len()), "{}", value.len());
            last = store.put(&key, Some(value.as_bytes()), None).await.unwrap();
        }
        store.durable(last.unwrap()).await;
    });
    let stats = store.stats();
    eprintln!(
        "file store, 1000 puts of a 60-byte value: {} bytes written, {} fsyncs, {} compactions",
        stats.bytes_written, stats.fsyncs, stats.compactions
    );
    assert!(stats.bytes_written < 120_000, "{stats:?}");
}

#[test]
fn writes_are_refused_as_unavailable_while_the_writer_fails() {
    let dir = Dir::new("failed");
    let store = open(&dir.log());
    store.shared.failed.store(true, Ordering::SeqCst);
    let error = block_on(store.put("k", Some(b"v"), None)).unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(get(&store, "k"), None, "a refused write is not applied");
    store.shared.failed.store(false, Ordering::SeqCst);
    put(&store, "k", Some(b"v"));
}
