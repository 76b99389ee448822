//! State through handlers, with the memory store and with stores of the
//! test's own that fail or hold durability back: the sign-up example per
//! user in a group, a value that no longer decodes, a store that is down,
//! and the offset that waits for durability (see: #15).

mod common;

#[allow(dead_code, reason = "the tests run the example's bot, not its main")]
#[path = "../examples/signup.rs"]
mod signup;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::signup::{form_across_a_kill, Instance};
use common::{http_get, texts_to, Bin, Logs, DEADLINE};
use event_listener::Event;
use serde_json::{json, Value};
use smolgram::api::types::ChatId;
use smolgram::state::{MemoryStore, Store, StoreError, StoreFuture};
use smolgram::testkit::{FakeApi, TestBot};

const GROUP: ChatId = ChatId(-5);

/// A text in `GROUP` from user `user`.
fn text_from(user: i64, text: &str) -> Value {
    json!({
        "message": {
            "message_id": fastrand::i64(1..i64::MAX),
            "from": { "id": user, "is_bot": false, "first_name": "U" },
            "chat": { "id": GROUP.0, "type": "group", "title": "Group" },
            "date": 0,
            "text": text,
        }
    })
}

/// Pushes `text` from `user` and waits for the group's reply count to reach `replies`.
fn say(api: &FakeApi, user: i64, text: &str, replies: usize) {
    api.push_raw(text_from(user, text));
    api.wait_until(&format!("reply {replies}"), DEADLINE, |api| {
        api.sent_to(GROUP) >= replies
    });
}

#[test]
fn the_signup_form_is_kept_per_user_in_a_group_and_survives_the_run() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, signup::bot);
    // Two users fill the form in the same group, their answers interleaved.
    let script = [
        (1, "/start"),
        (2, "/start"),
        (1, "Ann"),
        (2, "Bob"),
        (1, "thirty"),
        (1, "30"),
        (2, "41"),
        (2, "Rome"),
        (1, "Oslo"),
        (1, "/me"),
        (2, "/me"),
        (3, "/me"),
        (3, "hello"),
    ];
    for (n, (user, text)) in script.iter().enumerate() {
        say(&api, *user, text, n + 1);
    }
    assert_eq!(
        texts_to(&api, GROUP),
        [
            "What is your name?",
            "What is your name?",
            "How old are you?",
            "How old are you?",
            "Your age, as a number please.",
            "Which city do you live in?",
            "Which city do you live in?",
            "Thanks, Bob (41) from Rome!",
            "Thanks, Ann (30) from Oslo!",
            "Ann (30) from Oslo",
            "Bob (41) from Rome",
            "Not signed up yet: send /start.",
            "Send /start to sign up.",
        ]
    );
    let summary = bot.stop().unwrap();
    assert_eq!((summary.handled, summary.failed), (13, 0));
}

#[test]
fn a_value_that_no_longer_decodes_is_reset_once_logged_and_counted() {
    let logs = Logs::capture();
    let api = FakeApi::start();
    let bot = TestBot::start_with_store(&api, TestBot::config(&api), || {
        let store = MemoryStore::new();
        // What an older version of the bot stored: a variant gone since.
        futures_lite::future::block_on(store.put("signup:c-5:u1", Some(br#"{"Wizard":1}"#), None))
            .unwrap();
        (signup::bot(), Rc::new(store) as Rc<dyn Store>)
    })
    .unwrap();
    say(&api, 1, "hello", 1);
    say(&api, 1, "hello again", 2);
    assert_eq!(
        texts_to(&api, GROUP),
        ["Send /start to sign up.", "Send /start to sign up."]
    );
    let resets = logs.matching("does not decode as signup");
    assert_eq!(resets.len(), 1, "{resets:?}");
    assert!(resets[0].contains("key=signup:c-5:u1"), "{resets:?}");
    let metrics = http_get(bot.health_addr().unwrap(), "/metrics");
    assert!(
        metrics.contains("\nsmolgram_state_resets_total 1\n"),
        "{metrics}"
    );
    let summary = bot.stop().unwrap();
    assert_eq!((summary.handled, summary.failed), (2, 0));
}

/// A memory store that the test can take down, and that can hold its
/// writes back from being durable until the test says.
struct Controlled {
    inner: MemoryStore,
    switch: Arc<Switch>,
}

#[derive(Default)]
struct Switch {
    down: AtomicBool,
    /// Store calls made while down.
    refused: AtomicUsize,
    /// With `hold`, writes get sequence numbers; durable up to this one.
    hold: AtomicBool,
    next_seq: AtomicU64,
    durable: AtomicU64,
    changed: Event,
    flushes: AtomicUsize,
}

impl Switch {
    fn refuse(&self) -> Result<(), StoreError> {
        if !self.down.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::Unavailable {
            store: "controlled".into(),
            detail: "down for the test".into(),
        })
    }

    /// Makes every write so far durable.
    fn release(&self) {
        let newest = self.next_seq.load(Ordering::SeqCst);
        self.durable.store(newest, Ordering::SeqCst);
        self.changed.notify(usize::MAX);
    }
}

impl Store for Controlled {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            // The broadcasts' index (`@…`), read once at start, is no
            // update's: only the updates' reads are refused and counted.
            if !key.starts_with('@') {
                self.switch.refuse()?;
            }
            self.inner.get(key).await
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Option<&'a [u8]>,
        ttl: Option<Duration>,
    ) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            self.switch.refuse()?;
            self.inner.put(key, value, ttl).await?;
            let held = self.switch.hold.load(Ordering::SeqCst);
            Ok(held.then(|| self.switch.next_seq.fetch_add(1, Ordering::SeqCst) + 1))
        })
    }

    fn durable(&self, seq: u64) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        Box::pin(async move {
            loop {
                let listener = self.switch.changed.listen();
                if self.switch.durable.load(Ordering::SeqCst) >= seq {
                    return;
                }
                listener.await;
            }
        })
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        self.switch.flushes.fetch_add(1, Ordering::SeqCst);
        self.switch.release();
        Box::pin(async { Ok(()) })
    }

    fn describe(&self) -> String {
        "controlled".into()
    }
}

fn start_controlled(api: &FakeApi, switch: &Arc<Switch>) -> TestBot {
    let switch = Arc::clone(switch);
    TestBot::start_with_store(api, TestBot::config(api), move || {
        let store = Controlled {
            inner: MemoryStore::new(),
            switch,
        };
        (signup::bot(), Rc::new(store) as Rc<dyn Store>)
    })
    .unwrap()
}

#[test]
fn an_update_whose_store_is_down_is_held_and_run_again_once_it_is_back() {
    let logs = Logs::capture();
    let api = FakeApi::start();
    let switch = Arc::new(Switch::default());
    switch.down.store(true, Ordering::SeqCst);
    let bot = start_controlled(&api, &switch);
    let id = api.push_raw(text_from(1, "/start"));
    api.wait_until("two refused attempts", DEADLINE, |_| {
        switch.refused.load(Ordering::SeqCst) >= 2
    });
    // Nothing answered, nothing confirmed past it.
    assert_eq!(api.sent_to(GROUP), 0);
    assert!(api.confirmed_offset().is_none_or(|offset| offset <= id));
    switch.down.store(false, Ordering::SeqCst);
    api.wait_until("the reply", DEADLINE, |api| api.sent_to(GROUP) == 1);
    say(&api, 1, "Ann", 2);
    assert_eq!(
        texts_to(&api, GROUP),
        ["What is your name?", "How old are you?"]
    );
    api.wait_until("both confirmed", DEADLINE, |api| {
        api.confirmed_offset() > Some(id + 1)
    });
    let down = logs.matching("state store unavailable");
    assert_eq!(down.len(), 1, "one line for the episode: {down:?}");
    assert_eq!(logs.matching("state store works again").len(), 1);
    let metrics = http_get(bot.health_addr().unwrap(), "/metrics");
    let retries = switch.refused.load(Ordering::SeqCst);
    assert!(
        metrics.contains(&format!("\nsmolgram_state_retries_total {retries}\n")),
        "{retries} refused: {metrics}"
    );
    bot.stop().unwrap();
}

#[test]
fn an_update_counts_as_finished_only_once_its_state_is_durable() {
    let api = FakeApi::start();
    let switch = Arc::new(Switch::default());
    switch.hold.store(true, Ordering::SeqCst);
    let bot = start_controlled(&api, &switch);
    let first = api.push_raw(text_from(1, "/start"));
    api.wait_until("the reply", DEADLINE, |api| api.sent_to(GROUP) == 1);
    // The next update of the chat runs, and sees the state, before it is durable.
    say(&api, 1, "Ann", 2);
    assert_eq!(
        texts_to(&api, GROUP),
        ["What is your name?", "How old are you?"]
    );
    // An update in another chat: the poll after it sends the offset, which
    // must stay at the first update whose state is not durable.
    let polls = api.calls("getUpdates").len();
    api.push_text(ChatId(9), "/me");
    api.wait_until("the poll after it", DEADLINE, |api| {
        api.calls("getUpdates").len() > polls && api.sent_to(ChatId(9)) == 1
    });
    assert_eq!(api.confirmed_offset(), Some(first));
    switch.release();
    api.wait_until("all confirmed", DEADLINE, |api| {
        api.confirmed_offset() > Some(first + 2)
    });
    let summary = bot.stop().unwrap();
    assert_eq!(summary.unfinished, 0);
}

#[test]
fn a_stop_has_the_store_write_at_once_what_waits_for_its_batch() {
    let api = FakeApi::start();
    let switch = Arc::new(Switch::default());
    switch.hold.store(true, Ordering::SeqCst);
    let mut config = TestBot::config(&api);
    config.drain_timeout = Duration::from_secs(30);
    let made = Arc::clone(&switch);
    let bot = TestBot::start_with_store(&api, config, move || {
        let store = Controlled {
            inner: MemoryStore::new(),
            switch: made,
        };
        (signup::bot(), Rc::new(store) as Rc<dyn Store>)
    })
    .unwrap();
    let id = api.push_raw(text_from(1, "/start"));
    api.wait_until("the reply", DEADLINE, |api| api.sent_to(GROUP) == 1);
    let stopping = std::time::Instant::now();
    let summary = bot.stop().unwrap();
    // Without the flush it would wait out the drain's 30 s and leave it unfinished.
    assert!(stopping.elapsed() < DEADLINE, "{:?}", stopping.elapsed());
    assert_eq!(summary.unfinished, 0);
    assert_eq!(switch.flushes.load(Ordering::SeqCst), 1);
    assert_eq!(api.confirmed_offset(), Some(id + 1));
}

#[test]
fn a_burst_that_only_waits_for_the_disk_has_the_store_write_at_once() {
    let api = FakeApi::start();
    let switch = Arc::new(Switch::default());
    switch.hold.store(true, Ordering::SeqCst);
    let bot = start_controlled(&api, &switch);
    // 40 chats at once: more than the dispatcher lets wait for a batch.
    let ids: Vec<i64> = (100..140)
        .map(|chat| api.push_text(ChatId(chat), "/start"))
        .collect();
    api.wait_until("every reply", DEADLINE, |api| api.sent_count() == ids.len());
    api.wait_until("a flush and all confirmed", DEADLINE, |api| {
        switch.flushes.load(Ordering::SeqCst) >= 1 && api.confirmed_offset() > ids.last().copied()
    });
    bot.stop().unwrap();
}

#[test]
fn a_form_survives_a_sigkill_with_the_file_store() {
    const NAME: &str = "a_form_survives_a_sigkill_with_the_file_store";
    common::signup::child(signup::bot);
    let dir = std::env::temp_dir().join(format!("smolgram-state-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = format!("file:{}", dir.join("signup.state").display());
    let api = FakeApi::start();
    let first = Instance::start(&api, NAME, &spec);
    form_across_a_kill(&api, ChatId(3), first, || {
        Instance::start(&api, NAME, &spec)
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_process_on_the_same_state_file_exits_2_with_one_line() {
    let dir = std::env::temp_dir().join(format!("smolgram-state-twice-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = format!("file:{}", dir.join("bot.state").display());
    let api = FakeApi::start();
    let first = Bin::polling(&api, &["--state", &state], "info");
    let second = Bin::against(&api, &["--state", &state], "info");
    let (status, output) = second.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(2), "{output}");
    let line = output
        .lines()
        .find(|l| l.contains("held by another process"))
        .unwrap_or_else(|| panic!("no line says so: {output}"));
    assert!(line.contains("bot.state"), "{line}");
    assert!(!output.contains("panicked"), "{output}");
    // The first goes on, and its file is whole.
    api.push_text(ChatId(4), "hi");
    api.wait_until("the first answers", DEADLINE, |api| {
        api.sent_to(ChatId(4)) == 1
    });
    first.signal("TERM");
    let (status, _) = first.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
