//! The file store under SIGKILL at random instants: no acknowledged write
//! is lost and the file always opens.
//!
//! The test binary runs itself again as a child (`crash_child`, which does
//! nothing unless `SMOLGRAM_CRASH_CHILD` names a file): the child writes
//! and prints `acked {i}` once write `i` is durable; the parent kills it,
//! reopens the store and compares.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smolgram::state::{FileOptions, FileStore, Store};

const CHILD: &str = "SMOLGRAM_CRASH_CHILD";
const START: &str = "SMOLGRAM_CRASH_START";
const KEYS: u64 = 50;
const ROUNDS: usize = 20;
/// Writes in flight between two waits for durability.
const BURST: u64 = 8;

fn options() -> FileOptions {
    FileOptions {
        flush_interval: Duration::from_millis(5),
        max_batch: BURST as usize,
        compact_at_least: 16 * 1024,
        ..FileOptions::default()
    }
}

fn key(i: u64) -> String {
    format!("k{}", i % KEYS)
}

/// `i`, then padding of a length that varies with `i`.
fn value(i: u64) -> Vec<u8> {
    format!("{i}:{}", "p".repeat((i % 41) as usize)).into_bytes()
}

fn parse(value: &[u8]) -> u64 {
    let text = std::str::from_utf8(value).expect("a value is UTF-8");
    let (i, padding) = text.split_once(':').expect("a value is i:padding");
    let i = i.parse().expect("a value starts with its number");
    assert_eq!(padding.len() as u64, i % 41, "value {i}'s padding");
    i
}

/// The child: writes until killed. Returns at once in a normal test run.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let start: u64 = std::env::var(START).unwrap().parse().unwrap();
    let store = FileStore::open(Path::new(&path), options()).expect("the child opens the store");
    let mut out = std::io::stdout();
    futures_lite::future::block_on(async {
        let mut i = start;
        loop {
            let mut last = None;
            for j in i..i + BURST {
                last = store.put(&key(j), Some(&value(j)), None).await.unwrap();
            }
            store
                .durable(last.expect("a file write has a number"))
                .await;
            for j in i..i + BURST {
                writeln!(out, "acked {j}").unwrap();
            }
            out.flush().unwrap();
            i += BURST;
        }
    });
}

/// Runs one child against `path` from write `start`, kills it after a
/// random delay; the newest acknowledged write per key.
fn run_child(path: &Path, start: u64) -> HashMap<String, u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, path)
        .env(START, start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acked = HashMap::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(i) = line.strip_prefix("acked ") {
                let i: u64 = i.parse().unwrap();
                acked.insert(key(i), i);
            }
        }
        acked
    });
    std::thread::sleep(Duration::from_millis(fastrand::u64(50..=400)));
    child.kill().unwrap(); // SIGKILL on unix
    child.wait().unwrap();
    reader.join().unwrap()
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smolgram-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn no_acknowledged_write_is_lost_to_a_sigkill_at_any_instant() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let started = Instant::now();
    let dir = temp_dir();
    let path = dir.join("state.log");
    let mut newest: HashMap<String, u64> = HashMap::new();
    let (mut acked, mut lost, mut corrupt, mut largest) = (0, 0, 0, 0);
    for round in 0..ROUNDS {
        let start = round as u64 * 10_000_000;
        let this = run_child(&path, start);
        acked += this.values().map(|i| i - start).max().map_or(0, |i| i + 1);
        newest.extend(this);
        let store = match FileStore::open(&path, options()) {
            Ok(store) => store,
            Err(e) => {
                eprintln!("round {round}: {e}");
                corrupt += 1;
                continue;
            }
        };
        for (key, &want) in &newest {
            let got = futures_lite::future::block_on(store.get(key)).unwrap();
            match got.as_deref().map(parse) {
                Some(i) if i >= want => {}
                other => {
                    eprintln!("round {round}: {key} is {other:?}, acked {want}");
                    lost += 1;
                }
            }
        }
        largest = largest.max(std::fs::metadata(&path).unwrap().len());
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "state crash: {ROUNDS} kills, {acked} acked writes, {lost} lost, {corrupt} corrupt opens, \
         largest file {largest} bytes, {:?}",
        started.elapsed()
    );
    assert!(acked > 0, "the children acknowledged nothing");
    assert_eq!((lost, corrupt), (0, 0));
    // Some 70 bytes a write: without compaction 2,000 of them pass 64 KiB.
    if acked > 2_000 {
        assert!(
            largest < 64 * 1024,
            "compaction ran: largest file {largest} bytes"
        );
    }
}
