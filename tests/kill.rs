//! SIGKILL at any instant loses nothing: the real binary is killed at 24
//! random moments while it works through a backlog, restarted each time,
//! and in the end every update has been answered at least once.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Bin, DEADLINE};
use smolgram::api::types::ChatId;
use smolgram::testkit::{FakeApi, Fault};

const UPDATES: i64 = 600;
const CHATS: i64 = 12;
const KILLS: usize = 24;

#[test]
fn sigkill_at_random_instants_loses_nothing() {
    let api = FakeApi::start();
    // Sends take a few ms, so every kill lands with work in flight.
    api.fault(
        "sendMessage",
        Fault::Delay(Duration::from_millis(3)),
        1_000_000,
    );
    for i in 0..UPDATES {
        api.push_text(ChatId(1 + i % CHATS), &format!("u{i}"));
    }
    // Fixed seed: the same kill points each run, wherever they fall in the work.
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for kill in 0..KILLS {
        let bin = Bin::polling(&api, &["--no-health"], "warn");
        // The kill instant itself: not an ordering assumption, any instant must be safe.
        std::thread::sleep(Duration::from_millis(rng.u64(0..60)));
        bin.signal("KILL");
        let (status, _) = bin.wait_exit(DEADLINE);
        assert_eq!(status.code(), None, "kill {kill}: killed by a signal");
    }

    // Polling means its signal handlers are installed: SIGTERM is then a graceful stop.
    let bin = Bin::polling(&api, &["--no-health"], "warn");
    api.wait_until("the backlog answered", Duration::from_secs(60), |api| {
        api.pending() == 0
    });
    bin.signal("TERM");
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{out}");

    let mut answers: HashMap<String, usize> = HashMap::new();
    for sent in api.sent() {
        *answers.entry(sent.text).or_default() += 1;
    }
    let lost: Vec<String> = (0..UPDATES)
        .map(|i| format!("u{i}"))
        .filter(|t| !answers.contains_key(t))
        .collect();
    assert!(lost.is_empty(), "lost after {KILLS} kills: {lost:?}");
    let twice: usize = answers.values().map(|n| n - 1).sum();
    // At-least-once: a kill repeats at most the window of unconfirmed updates (100).
    assert!(twice <= KILLS * 100, "answered twice: {twice}");
    println!("{KILLS} kills, {UPDATES} updates: 0 lost, {twice} answered more than once");
}
