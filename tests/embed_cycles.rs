//! 100 starts and stops of an embedded bot in one process leave nothing
//! behind: the process's thread count and open descriptors come back to
//! what they were. A test binary of its own, with one test, so that no other
//! test's threads or sockets come and go meanwhile.

mod common;

use std::time::{Duration, Instant};

use common::{echo, http_get, DEADLINE};
use smolgram::api::methods::SendMessage;
use smolgram::api::types::ChatId;
use smolgram::embed;
use smolgram::testkit::{FakeApi, TestBot};

const CYCLES: usize = 100;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// This process's threads that smolgram named: its io threads and the bot's.
fn ours() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .filter(|name| name.starts_with("smolgram-io") || name == "smolgram-bot")
        .collect()
}

fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits up to `deadline` for `count` to be at most `limit`; its last value.
fn settles(deadline: Duration, limit: usize, count: impl Fn() -> usize) -> usize {
    let end = Instant::now() + deadline;
    loop {
        let now = count();
        if now <= limit || Instant::now() >= end {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One whole life of a bot: it starts, polls, answers an update, makes a
/// call from outside and serves its health port; then it stops, and none
/// of its threads is left.
fn cycle(api: &FakeApi, round: usize) {
    let chat = ChatId(round as i64 + 1);
    let polls = api.calls("getUpdates").len();
    let bot = embed::spawn(TestBot::config(api), echo).unwrap();
    api.wait_until("a poll", DEADLINE, |api| {
        api.calls("getUpdates").len() > polls
    });
    api.push_text(chat, "ping");
    bot.remote()
        .send_blocking(SendMessage::new(chat, "from outside"))
        .unwrap();
    api.wait_until("the echo", DEADLINE, |api| api.sent_to(chat) == 2);
    let health = http_get(bot.health_addr().unwrap(), "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let summary = bot.stop().unwrap();
    assert_eq!(summary.handled, 1, "round {round}");
    // Gone once `stop` returns (the kernel may take a moment more to take
    // a joined thread out of /proc).
    let left = settles(Duration::from_secs(1), 0, || ours().len());
    assert_eq!(left, 0, "round {round}: threads left: {:?}", ours());
}

#[test]
fn a_hundred_starts_and_stops_keep_threads_and_descriptors_flat() {
    let api = FakeApi::start();
    // The first cycle starts what lives as long as the process does (the
    // async-io reactor's thread, the fake's own): counted in the baseline.
    cycle(&api, 0);
    let (threads_before, fds_before) = (threads(), descriptors());
    for round in 1..=CYCLES {
        cycle(&api, round);
    }
    // The fake's connection threads end as their clients hang up.
    let threads_after = settles(DEADLINE, threads_before, threads);
    let fds_after = settles(DEADLINE, fds_before, descriptors);
    eprintln!(
        "after {CYCLES} cycles: threads {threads_before} -> {threads_after}, \
         descriptors {fds_before} -> {fds_after}"
    );
    assert!(
        threads_after <= threads_before,
        "threads {threads_before} -> {threads_after} after {CYCLES} cycles"
    );
    assert!(
        fds_after <= fds_before,
        "descriptors {fds_before} -> {fds_after} after {CYCLES} cycles"
    );
}
