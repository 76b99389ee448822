//! A bot inside another program (`smolgram::embed`, `Service::future`):
//! started, driven and stopped from threads and executors that are not its
//! own, started again on the same port, and calls through it that share its
//! client and its rate limits.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use common::{echo, http_get, texts_to, wait_metric, DEADLINE};
use futures_lite::future;
use smolgram::api::methods::SendMessage;
use smolgram::api::types::ChatId;
use smolgram::config::Config;
use smolgram::embed::{self, BotHandle, Remote};
use smolgram::testkit::{FakeApi, Fault, TestBot};
use smolgram::{Error, RateLimits, Runtime, Service, Shutdown};

const CHAT: ChatId = ChatId(42);

fn config(api: &FakeApi) -> Config {
    TestBot::config(api)
}

/// A port that was free a moment ago, on loopback.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn polls(api: &FakeApi) -> usize {
    api.calls("getUpdates").len()
}

/// Waits until the bot has polled once more than `before`.
fn wait_polled(api: &FakeApi, before: usize) {
    api.wait_until("a poll", DEADLINE, |api| polls(api) > before);
}

#[test]
fn the_handle_and_the_remote_may_go_to_any_thread() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<BotHandle>();
    send_sync::<Remote>();
    send_sync::<Shutdown>();
}

#[test]
fn a_bot_on_its_own_thread_answers_and_stops_with_its_summary() {
    let api = FakeApi::start();
    let bot = embed::spawn(config(&api), echo).unwrap();
    api.push_text(CHAT, "one");
    api.push_text(CHAT, "two");
    api.wait_until("two echoes", DEADLINE, |api| api.sent_to(CHAT) == 2);
    assert!(!bot.is_finished());
    let summary = bot.stop().unwrap();
    assert_eq!(summary.handled, 2);
    assert_eq!(summary.unfinished, 0);
    assert_eq!(texts_to(&api, CHAT), ["one", "two"]);
    assert!(api.confirmed_offset().is_some(), "the stop confirmed them");
}

#[test]
fn calls_from_other_threads_go_through_the_bots_client_and_its_rate_limits() {
    let api = FakeApi::start();
    let mut config = config(&api);
    // One message per 0.2 s to a private chat, no burst: sends to one chat
    // through one limiter come out spaced, whoever makes them.
    config.rate_limits = Some(RateLimits {
        private_per_sec: 5.0,
        private_burst: 1,
        ..RateLimits::OFF
    });
    let bot = embed::spawn(config, echo).unwrap();
    let health = bot.health_addr().unwrap();
    let senders: Vec<_> = (0..4)
        .map(|i| {
            let remote = bot.remote();
            thread::spawn(move || {
                remote
                    .send_blocking(SendMessage::new(CHAT, format!("remote {i}")))
                    .unwrap()
            })
        })
        .collect();
    // A handler's reply to the same chat takes its turn with them.
    api.push_text(CHAT, "handler");
    for sender in senders {
        assert_eq!(sender.join().unwrap().chat.id, CHAT);
    }
    api.wait_until("five sends", DEADLINE, |api| api.sent_to(CHAT) == 5);
    let times = api.call_times("sendMessage");
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(100),
            "sends 0.2 s apart through one limiter, got {gap:?} in {times:?}"
        );
    }
    // The bot's own metrics count the remote calls: its client made them.
    // (The last answer reaches the fake before the bot has counted it.)
    let sends = "smolgram_api_requests_total{method=\"sendMessage\",result=\"ok\"} 5";
    wait_metric(health, sends);
    assert_eq!(bot.stop().unwrap().handled, 1);
}

#[test]
fn a_remote_after_the_stop_says_stopped_at_once() {
    let api = FakeApi::start();
    let bot = embed::spawn(config(&api), echo).unwrap();
    let remote = bot.remote();
    remote
        .send_blocking(SendMessage::new(CHAT, "before"))
        .unwrap();
    bot.stop().unwrap();
    let started = Instant::now();
    let late = remote.send_blocking(SendMessage::new(CHAT, "after"));
    assert!(matches!(late, Err(Error::Stopped)), "{late:?}");
    assert!(started.elapsed() < DEADLINE);
    assert_eq!(texts_to(&api, CHAT), ["before"]);
    let shown = Error::Stopped.to_string();
    assert!(shown.contains("stopped"), "{shown}");
}

#[test]
fn a_call_in_flight_at_the_stop_gets_the_drain_and_its_answer() {
    let api = FakeApi::start();
    // The call's answer takes 1 s: still in flight when the stop comes,
    // and answered within the 8 s drain.
    api.fault("sendMessage", Fault::Delay(Duration::from_secs(1)), 1);
    let bot = embed::spawn(config(&api), echo).unwrap();
    let remote = bot.remote();
    let call = thread::spawn(move || remote.send_blocking(SendMessage::new(CHAT, "slow")));
    api.wait_until("the call at the fake", DEADLINE, |api| {
        api.unserved_faults("sendMessage") == 0
    });
    bot.request_stop();
    assert_eq!(call.join().unwrap().unwrap().chat.id, CHAT);
    assert_eq!(bot.wait().unwrap().unfinished, 0);
    assert_eq!(texts_to(&api, CHAT), ["slow"]);
}

#[test]
fn start_stop_start_again_takes_the_same_port_each_time() {
    let api = FakeApi::start();
    let addr = free_port();
    let mut config = config(&api);
    config.health = Some(addr);
    config.require_health = true;
    for round in 0..3 {
        let before = polls(&api);
        let bot = embed::spawn(config.clone(), echo).unwrap();
        assert_eq!(bot.health_addr(), Some(addr), "round {round}");
        wait_polled(&api, before);
        assert!(http_get(addr, "/healthz").starts_with("HTTP/1.1 200"));
        bot.stop().unwrap();
        assert!(
            TcpStream::connect_timeout(&addr, DEADLINE).is_err(),
            "round {round}: the port is released on stop"
        );
    }
}

#[test]
fn a_second_bot_on_a_taken_port_is_refused_at_once_or_runs_on_its_own() {
    let api = FakeApi::start();
    let mut config = config(&api);
    config.health = Some(free_port());
    config.require_health = true;
    let first = embed::spawn(config.clone(), echo).unwrap();
    let started = Instant::now();
    let second = embed::spawn(config.clone(), echo);
    assert!(
        matches!(&second, Err(Error::Bind { kind, .. }) if *kind == std::io::ErrorKind::AddrInUse),
        "{second:?}"
    );
    assert!(started.elapsed() < DEADLINE, "no hang");
    assert!(second.unwrap_err().to_string().contains("cannot bind"));
    // Configured for a port of its own, it runs beside the first.
    config.health = Some(([127, 0, 0, 1], 0).into());
    let other = embed::spawn(config, echo).unwrap();
    assert_ne!(other.health_addr(), first.health_addr());
    assert!(http_get(other.health_addr().unwrap(), "/healthz").starts_with("HTTP/1.1 200"));
    other.stop().unwrap();
    first.stop().unwrap();
}

#[test]
fn a_rejected_token_ends_the_run_and_the_handle_says_why() {
    let api = FakeApi::start();
    api.fault(
        "getMe",
        common::api_error(401, "Unauthorized", None, None),
        1,
    );
    let bot = embed::spawn(config(&api), echo).unwrap();
    let remote = bot.remote();
    let outcome = bot.wait_timeout(DEADLINE).expect("the run ends on its own");
    assert!(
        matches!(outcome, Err(Error::Api { code: 401, .. })),
        "{outcome:?}"
    );
    let late = remote.send_blocking(SendMessage::new(CHAT, "nobody"));
    assert!(matches!(late, Err(Error::Stopped)), "{late:?}");
}

#[test]
fn wait_timeout_gives_a_running_bot_back() {
    let api = FakeApi::start();
    let bot = embed::spawn(config(&api), echo).unwrap();
    let bot = bot
        .wait_timeout(Duration::from_millis(50))
        .expect_err("still running");
    assert_eq!(bot.stop().unwrap().handled, 0);
}

#[test]
fn finished_and_send_are_plain_futures_for_a_foreign_executor() {
    let api = FakeApi::start();
    let bot = embed::spawn(config(&api), echo).unwrap();
    let (remote, shutdown) = (bot.remote(), bot.shutdown());
    // futures-lite's block_on on a thread of its own: no smol executor, no reactor of ours.
    let outside = thread::spawn(move || {
        future::block_on(async {
            let sent = remote.send(SendMessage::new(CHAT, "from afar")).await?;
            shutdown.request();
            bot.finished().await.map(|summary| (sent.chat.id, summary))
        })
    });
    let (chat, summary) = outside.join().unwrap().unwrap();
    assert_eq!(chat, CHAT);
    assert_eq!(summary.failed_sends, 0);
    assert_eq!(texts_to(&api, CHAT), ["from afar"]);
}

#[test]
fn send_blocking_on_a_runtimes_thread_is_refused_not_stalled() {
    let api = FakeApi::start();
    let bot = embed::spawn(config(&api), echo).unwrap();
    let remote = bot.remote();
    let rt = Runtime::new();
    let refused = rt
        .block_on(async { remote.send_blocking(SendMessage::new(CHAT, "no")) })
        .unwrap();
    assert!(matches!(refused, Err(Error::AlreadyRunning)), "{refused:?}");
    bot.stop().unwrap();
}

#[test]
fn dropping_the_handle_stops_the_bot_and_frees_its_port() {
    let api = FakeApi::start();
    let bot = embed::spawn(config(&api), echo).unwrap();
    let addr = bot.health_addr().unwrap();
    api.push_text(CHAT, "last");
    api.wait_until("the echo", DEADLINE, |api| api.sent_to(CHAT) == 1);
    drop(bot);
    assert!(TcpStream::connect_timeout(&addr, DEADLINE).is_err());
    assert!(
        api.confirmed_offset().is_some(),
        "the drop drained and confirmed"
    );
}

#[test]
fn the_bots_future_runs_on_the_callers_own_executor_beside_its_work() {
    let api = FakeApi::start();
    let service = Service::new(echo(), &config(&api)).unwrap();
    let health = service.health_addr().unwrap();
    let shutdown = Shutdown::new();
    let ours = LocalExecutor::new();
    let bot = ours.spawn(service.future(shutdown.clone()));
    let summary = future::block_on(ours.run(async {
        // The caller's own task, on the same thread, waits on the bot's reply.
        api.push_text(CHAT, "hello");
        let deadline = Instant::now() + DEADLINE;
        while api.sent_to(CHAT) == 0 && Instant::now() < deadline {
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
        let probe = thread::spawn(move || http_get(health, "/healthz"));
        while !probe.is_finished() && Instant::now() < deadline {
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
        assert!(probe.join().unwrap().starts_with("HTTP/1.1 200"));
        shutdown.request();
        bot.await
    }));
    assert_eq!(summary.unwrap().handled, 1);
    assert_eq!(texts_to(&api, CHAT), ["hello"]);
    assert!(
        TcpStream::connect_timeout(&health, DEADLINE).is_err(),
        "port released"
    );
}
