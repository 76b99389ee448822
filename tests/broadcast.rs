//! Broadcasts against the fake Bot API: every chat gets the message once,
//! a chat that blocked the bot or does not exist is given up and reported,
//! a 429 loses nothing, and a stop or a SIGKILL halfway resumes where it
//! was, with at most the one send in flight repeated (see: #16).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use common::{api_error, http_get, DEADLINE};
use smolgram::api::generated::methods::SendMessage;
use smolgram::api::types::ChatId;
use smolgram::api::Token;
use smolgram::config::{Config, StoreSpec};
use smolgram::jobs::{Broadcast, BroadcastId, Reason};
use smolgram::state::{FileOptions, FileStore, Store};
use smolgram::testkit::{FakeApi, TestBot};
use smolgram::Bot;
use smolgram::RateLimits;

/// Where the commands come from; never in a broadcast.
const ADMIN: ChatId = ChatId(1);
/// The broadcast's chats are `FIRST..FIRST + n`.
const FIRST: i64 = 1000;

fn chats(n: i64) -> impl Iterator<Item = ChatId> {
    (FIRST..FIRST + n).map(ChatId)
}

/// A bot whose `/go N` broadcasts "news" to N chats (`/go N built`: the
/// builder's message, none for chats divisible by 10) and whose
/// `/progress ID` answers `sent=… failed=… skipped=… remaining=… done=…`,
/// then one `failed CHAT REASON` line per failure.
fn bot() -> Bot {
    Bot::new()
        .broadcaster("hello", |_ctx, chat: ChatId| async move {
            if chat.0 % 10 == 0 {
                return Ok(None);
            }
            Ok(Some(SendMessage::new(chat, format!("hello {}", chat.0))))
        })
        .command("go", |ctx| async move {
            let mut args = ctx.args().split_whitespace();
            let n: i64 = args.next().unwrap_or("0").parse()?;
            let broadcast = match args.next() {
                Some("built") => Broadcast::built(chats(n), "hello"),
                _ => Broadcast::message(chats(n), &SendMessage::new(ChatId(0), "news")),
            };
            let id = ctx.broadcast(broadcast).await?;
            ctx.reply(format!("started {id}")).await?;
            Ok(())
        })
        .command("progress", |ctx| async move {
            let id = BroadcastId::from(ctx.args().trim());
            let Some(p) = ctx.broadcast_progress(&id).await? else {
                ctx.reply("no such broadcast").await?;
                return Ok(());
            };
            let mut text = format!(
                "sent={} failed={} skipped={} remaining={} done={}",
                p.sent, p.failed, p.skipped, p.remaining, p.done
            );
            for failure in &p.failures {
                let reason = match &failure.reason {
                    Reason::Blocked(_) => "blocked".to_owned(),
                    Reason::NotFound => "not_found".to_owned(),
                    other => other.to_string(),
                };
                text.push_str(&format!("\nfailed {} {reason}", failure.chat.0));
            }
            ctx.reply(text).await?;
            Ok(())
        })
}

/// The config of a test bot without rate limits, or with Telegram's.
fn config(api: &FakeApi, limits: RateLimits) -> Config {
    let mut config = TestBot::config(api);
    config.rate_limits = Some(limits);
    config
}

/// A temporary directory of this test's own.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smolgram-bc-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start_on_file(api: &FakeApi, limits: RateLimits, path: &std::path::Path) -> TestBot {
    let path = path.to_owned();
    TestBot::start_with_store(api, config(api, limits), move || {
        let store = FileStore::open(&path, FileOptions::default()).expect("the store opens");
        (bot(), Rc::new(store) as Rc<dyn Store>)
    })
    .unwrap()
}

/// The bot's last reply to the admin after sending `text`.
fn ask(api: &FakeApi, text: &str) -> String {
    let before = api.sent_to(ADMIN);
    api.push_text(ADMIN, text);
    api.wait_until(&format!("the answer to {text:?}"), DEADLINE, |api| {
        api.sent_to(ADMIN) > before
    });
    api.sent()
        .into_iter()
        .rev()
        .find(|s| s.chat == ADMIN)
        .map(|s| s.text)
        .unwrap()
}

/// Starts `/go {args}` and returns the broadcast's id.
fn go(api: &FakeApi, args: &str) -> String {
    let reply = ask(api, &format!("/go {args}"));
    reply.strip_prefix("started ").expect(&reply).to_owned()
}

/// Messages per broadcast chat, from the fake's record of sends.
fn per_chat(api: &FakeApi) -> HashMap<ChatId, usize> {
    let mut counts = HashMap::new();
    for sent in api.sent().into_iter().filter(|s| s.chat != ADMIN) {
        *counts.entry(sent.chat).or_default() += 1;
    }
    counts
}

/// Waits until broadcast `id`'s progress says done, and returns it.
fn wait_done(api: &FakeApi, id: &str, deadline: Duration) -> String {
    let mut last = String::new();
    let done = api.wait_for(deadline, |api| {
        let _ = api;
        last = ask(api, &format!("/progress {id}"));
        last.contains("done=true")
    });
    assert!(done, "broadcast {id} not done within {deadline:?}: {last}");
    last
}

/// A metric's value from `/metrics`.
fn metric(bot: &TestBot, name: &str) -> u64 {
    let body = http_get(bot.health_addr().unwrap(), "/metrics");
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[test]
fn every_chat_gets_the_broadcast_exactly_once() {
    let api = FakeApi::start();
    let bot = TestBot::start_with(&api, config(&api, RateLimits::OFF), bot).unwrap();
    let id = go(&api, "200");
    api.wait_until("200 chats sent", DEADLINE, |api| api.sent_count() >= 201);
    let progress = wait_done(&api, &id, DEADLINE);
    assert!(
        progress.starts_with("sent=200 failed=0 skipped=0 remaining=0 done=true"),
        "{progress}"
    );
    let counts = per_chat(&api);
    assert_eq!(counts.len(), 200);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    assert!(chats(200).all(|chat| counts.contains_key(&chat)));
    assert!(api
        .sent()
        .iter()
        .filter(|s| s.chat != ADMIN)
        .all(|s| s.text == "news"));
    assert_eq!(metric(&bot, "smolgram_broadcast_sent_total"), 200);
    assert_eq!(metric(&bot, "smolgram_broadcast_failed_total"), 0);
    assert_eq!(metric(&bot, "smolgram_broadcast_remaining"), 0);
    bot.stop().unwrap();
}

#[test]
fn blocked_and_missing_chats_are_given_up_counted_and_reported() {
    let api = FakeApi::start();
    let blocked = [ChatId(FIRST + 3), ChatId(FIRST + 40)];
    let missing = ChatId(FIRST + 17);
    for chat in blocked {
        api.block_chat(chat);
    }
    api.forget_chat(missing);
    let bot = TestBot::start_with(&api, config(&api, RateLimits::OFF), bot).unwrap();
    let id = go(&api, "50");
    let progress = wait_done(&api, &id, DEADLINE);
    let mut lines = progress.lines();
    assert_eq!(
        lines.next(),
        Some("sent=47 failed=3 skipped=0 remaining=0 done=true")
    );
    let failures: Vec<_> = lines.collect();
    assert_eq!(
        failures,
        [
            "failed 1003 blocked",
            "failed 1017 not_found",
            "failed 1040 blocked"
        ]
    );
    let counts = per_chat(&api);
    assert_eq!(counts.len(), 47);
    assert!(counts.values().all(|n| *n == 1));
    // Tried once each, never again.
    for chat in [blocked[0], blocked[1], missing] {
        let tries = api
            .calls("sendMessage")
            .iter()
            .filter(|p| p["chat_id"] == chat.0)
            .count();
        assert_eq!(tries, 1, "chat {}", chat.0);
    }
    assert_eq!(metric(&bot, "smolgram_broadcast_failed_total"), 3);
    assert_eq!(metric(&bot, "smolgram_broadcast_sent_total"), 47);
    bot.stop().unwrap();
}

#[test]
fn a_429_delays_the_broadcast_and_loses_and_repeats_nothing() {
    let api = FakeApi::start();
    // Paced, so that the broadcast is still going when the faults are armed.
    let bot = TestBot::start_with(&api, config(&api, RateLimits::DEFAULT), bot).unwrap();
    let id = go(&api, "30");
    // Six in a row, while nothing but the broadcast sends: more than the
    // client's five tries, so the broadcast itself has to wait its
    // retry_after and try the chat again.
    api.fault(
        "sendMessage",
        api_error(429, "Too Many Requests: retry after 1", Some(1), None),
        6,
    );
    api.wait_until("every 429 served", Duration::from_secs(20), |api| {
        api.unserved_faults("sendMessage") == 0
    });
    let progress = wait_done(&api, &id, Duration::from_secs(20));
    assert!(
        progress.starts_with("sent=30 failed=0 skipped=0 remaining=0 done=true"),
        "{progress}"
    );
    let counts = per_chat(&api);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let tries = api.calls("sendMessage").len() - api.sent_count();
    assert_eq!(tries, 6, "each 429 was one refused send");
    bot.stop().unwrap();
}

#[test]
fn with_limits_on_the_broadcast_keeps_to_30_a_second_and_meets_no_429() {
    let api = FakeApi::start();
    api.enforce_limits();
    let bot = TestBot::start_with(&api, config(&api, RateLimits::DEFAULT), bot).unwrap();
    let started = std::time::Instant::now();
    let id = go(&api, "90");
    wait_done(&api, &id, Duration::from_secs(20));
    let took = started.elapsed();
    // 90 sends at 30/s (and two replies): about 3 s, never faster.
    assert!(took >= Duration::from_millis(2900), "{took:?}");
    let counts = per_chat(&api);
    assert_eq!(counts.len(), 90);
    assert!(counts.values().all(|n| *n == 1));
    let refused = api.calls("sendMessage").len() - api.sent_count();
    assert_eq!(refused, 0, "the fake answered 429 {refused} times");
    bot.stop().unwrap();
}

#[test]
fn a_stop_halfway_resumes_at_the_next_start_without_duplicates() {
    let api = FakeApi::start();
    let dir = temp_dir("stop");
    let path = dir.join("bot.state");
    let bot = start_on_file(&api, RateLimits::DEFAULT, &path);
    let id = go(&api, "90");
    api.wait_until("half the chats", DEADLINE, |api| per_chat(api).len() >= 45);
    bot.stop().unwrap();
    let stopped_at = per_chat(&api).len();
    assert!(stopped_at < 90, "the stop came too late to test anything");
    let bot = start_on_file(&api, RateLimits::DEFAULT, &path);
    let progress = wait_done(&api, &id, Duration::from_secs(20));
    assert!(
        progress.starts_with("sent=90 failed=0 skipped=0 remaining=0 done=true"),
        "{progress}"
    );
    let counts = per_chat(&api);
    assert_eq!(counts.len(), 90, "lost chats");
    assert!(counts.values().all(|n| *n == 1), "duplicates: {counts:?}");
    bot.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_builder_makes_each_chats_message_and_none_skips_it() {
    let api = FakeApi::start();
    api.block_chat(ChatId(FIRST + 1));
    let bot = TestBot::start_with(&api, config(&api, RateLimits::OFF), bot).unwrap();
    let id = go(&api, "25 built");
    let progress = wait_done(&api, &id, DEADLINE);
    // 1000, 1010, 1020 skipped; 1001 blocked.
    assert!(
        progress.starts_with("sent=21 failed=1 skipped=3 remaining=0 done=true"),
        "{progress}"
    );
    let sent: Vec<_> = api.sent().into_iter().filter(|s| s.chat != ADMIN).collect();
    assert_eq!(sent.len(), 21);
    for s in &sent {
        assert_eq!(s.text, format!("hello {}", s.chat.0));
        assert_ne!(s.chat.0 % 10, 0);
    }
    bot.stop().unwrap();
}

#[test]
fn a_paid_broadcast_says_so_on_every_send() {
    let api = FakeApi::start();
    let bot = TestBot::start_with(&api, config(&api, RateLimits::DEFAULT), || {
        Bot::new().command("go", |ctx| async move {
            let news = SendMessage::new(ChatId(0), "paid news");
            ctx.broadcast(Broadcast::message(chats(60), &news).paid(true))
                .await?;
            Ok(())
        })
    })
    .unwrap();
    let started = std::time::Instant::now();
    api.push_text(ADMIN, "/go");
    api.wait_until("60 paid sends", DEADLINE, |api| api.sent_count() == 60);
    // At 30/s this would take 2 s.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(api
        .sent()
        .iter()
        .all(|s| s.params["allow_paid_broadcast"] == true));
    bot.stop().unwrap();
}

// --- SIGKILL: the bot as a child process, the test binary run again ---

const CHILD_API: &str = "SMOLGRAM_TEST_BROADCAST_API";
const CHILD_STATE: &str = "SMOLGRAM_TEST_BROADCAST_STATE";

/// In the child the parent started: runs `bot()` on the parent's fake and
/// store, with Telegram's limits, until killed; elsewhere returns at once.
fn child() {
    let (Ok(url), Ok(spec)) = (std::env::var(CHILD_API), std::env::var(CHILD_STATE)) else {
        return;
    };
    let token = Token::parse(FakeApi::TOKEN).expect("the testkit token is well formed");
    let mut config = Config::new(token);
    config.api_url = url;
    config.health = None;
    config.poll_timeout = Duration::from_secs(1);
    config.rate_limits = Some(RateLimits::DEFAULT);
    config.state.store = StoreSpec::parse(&spec).expect("the parent's --state");
    let outcome = smolgram::run(bot(), &config);
    eprintln!("child: the bot stopped: {outcome:?}");
    std::process::exit(0);
}

/// The calling test's bot as a child process; killed on drop.
struct Instance(Child);

impl Instance {
    fn start(api: &FakeApi, test: &str, state: &str) -> Instance {
        let polls = api.calls("getUpdates").len();
        let child = Command::new(std::env::current_exe().expect("the test binary's path"))
            .args(["--exact", test, "--nocapture", "--include-ignored"])
            .env(CHILD_API, api.url())
            .env(CHILD_STATE, state)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("the test binary starts again");
        let instance = Instance(child);
        api.wait_until("the child's first poll", DEADLINE, |api| {
            api.calls("getUpdates").len() > polls
        });
        instance
    }

    fn kill(mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("the child is reaped");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_sigkill_halfway_loses_nothing_and_repeats_at_most_one_chat() {
    const NAME: &str = "a_sigkill_halfway_loses_nothing_and_repeats_at_most_one_chat";
    const N: usize = 240;
    child();
    let dir = temp_dir("kill");
    let spec = format!("file:{}", dir.join("bot.state").display());
    let api = FakeApi::start();
    let first = Instance::start(&api, NAME, &spec);
    api.push_text(ADMIN, &format!("/go {N}"));
    api.wait_until("half the chats", Duration::from_secs(20), |api| {
        per_chat(api).len() >= N / 2
    });
    first.kill();
    let killed_at = per_chat(&api).len();
    assert!(killed_at < N, "the kill came too late to test anything");
    let second = Instance::start(&api, NAME, &spec);
    api.wait_until("every chat", Duration::from_secs(30), |api| {
        per_chat(api).len() == N
    });
    let counts = per_chat(&api);
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!("killed at {killed_at}/{N}; repeated: {repeated:?}");
    assert!(
        repeated.len() <= 1,
        "more than the one in flight: {repeated:?}"
    );
    assert!(repeated.iter().all(|(_, n)| **n == 2), "{repeated:?}");
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}
