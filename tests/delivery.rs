//! Delivery invariants, against the library and the testkit: what is
//! confirmed, what runs when, what survives a stop.

mod common;

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::{survive_poll_faults, DEADLINE};
use serde_json::json;
use smolgram::api::types::ChatId;
use smolgram::config::Config;
use smolgram::testkit::{FakeApi, Fault, TestBot};
use smolgram::{Bot, Error, Runtime};

/// A bot whose handler blocks (on its own io-free wait) on texts equal to
/// `"block"` until the test releases it, and replies `done <text>` otherwise.
fn blocking_bot(release: mpsc::Receiver<()>) -> impl FnOnce() -> Bot + Send {
    move || {
        let (tx, rx) = async_channel::unbounded::<()>();
        // The test's std channel is turned into an async one on a helper thread,
        // so the handler waits without blocking the executor.
        std::thread::spawn(move || {
            while release.recv().is_ok() {
                if tx.send_blocking(()).is_err() {
                    break;
                }
            }
        });
        Bot::new().text(move |ctx| {
            let rx = rx.clone();
            async move {
                let text = ctx.text().unwrap_or_default().to_owned();
                if text == "block" {
                    // Visible to the test: the handler has started.
                    let _: bool = ctx
                        .call(
                            "sendChatAction",
                            &serde_json::json!({"chat_id": ctx.chat_id(), "action": "typing"}),
                        )
                        .await?;
                    rx.recv().await?;
                }
                ctx.reply(format!("done {text}")).await?;
                Ok(())
            }
        })
    }
}

/// [`blocking_bot`] started with [`TestBot::config`] changed by `tweak`,
/// once it polls.
fn start_blocking(
    api: &FakeApi,
    release: mpsc::Receiver<()>,
    tweak: impl FnOnce(&mut Config),
) -> TestBot {
    let mut config = TestBot::config(api);
    tweak(&mut config);
    TestBot::start_with(api, config, blocking_bot(release)).unwrap()
}

#[test]
fn confirmed_offset_never_passes_an_unfinished_update() {
    let api = FakeApi::start();
    let (release, gate) = mpsc::channel();
    let bot = TestBot::start(&api, blocking_bot(gate));
    let blocked = api.push_text(ChatId(7), "block");
    let later = api.push_text(ChatId(8), "hi");
    api.wait_until("reply in chat 8", DEADLINE, |api| {
        api.sent_to(ChatId(8)) == 1
    });
    // Chat 8 is done, and the poller has polled again since, but update
    // `blocked` is still running: the offset must stay at it.
    api.wait_until("a poll after the reply", DEADLINE, |api| {
        api.deliveries(later) >= 2
    });
    assert_eq!(api.confirmed_offset(), Some(blocked));
    release.send(()).unwrap();
    api.wait_until("reply in chat 7", DEADLINE, |api| {
        api.sent_to(ChatId(7)) == 1
    });
    let summary = bot.stop().unwrap();
    assert_eq!(summary.handled, 2);
    assert_eq!(api.confirmed_offset(), Some(later + 1));
    assert_eq!(
        api.sent_to(ChatId(8)),
        1,
        "redelivered updates never run twice"
    );
}

#[test]
fn stop_waits_for_the_handler_in_flight_and_confirms_it() {
    let api = FakeApi::start();
    let (release, gate) = mpsc::channel();
    let bot = TestBot::start(&api, blocking_bot(gate));
    let id = api.push_text(ChatId(7), "block");
    api.wait_until("the handler started", DEADLINE, |api| {
        api.calls("sendChatAction").len() == 1
    });
    bot.shutdown().request();
    release.send(()).unwrap();
    let summary = bot.stop().unwrap();
    assert_eq!((summary.handled, summary.unfinished), (1, 0));
    assert_eq!(api.sent()[0].text, "done block");
    assert_eq!(
        api.confirmed_offset(),
        Some(id + 1),
        "confirmed on the way out"
    );
    assert_eq!(api.pending(), 0);
}

#[test]
fn handler_unfinished_at_the_drain_deadline_is_left_for_the_next_start() {
    let api = FakeApi::start();
    let (_never, gate) = mpsc::channel();
    let bot = start_blocking(&api, gate, |config| {
        config.drain_timeout = Duration::from_millis(200);
    });
    let quick = api.push_text(ChatId(8), "quick");
    let stuck = api.push_text(ChatId(7), "block");
    api.wait_until("the quick reply", DEADLINE, |api| {
        api.sent_to(ChatId(8)) == 1
    });
    api.wait_until("the stuck handler started", DEADLINE, |api| {
        api.calls("sendChatAction").len() == 1
    });
    let summary = bot.stop().unwrap();
    assert_eq!((summary.handled, summary.unfinished), (1, 1));
    assert_eq!(
        api.confirmed_offset(),
        Some(stuck),
        "finished work confirmed, unfinished not"
    );
    assert!(api.confirmed_offset() > Some(quick));

    // The next instance gets the unfinished update again, and only it.
    let (release, gate) = mpsc::channel();
    release.send(()).unwrap();
    let next = TestBot::start(&api, blocking_bot(gate));
    api.wait_until("the stuck update redone", DEADLINE, |api| {
        api.sent_to(ChatId(7)) == 1
    });
    next.stop().unwrap();
    assert_eq!(
        api.sent_to(ChatId(8)),
        1,
        "the finished update is not redone"
    );
    assert_eq!(api.confirmed_offset(), Some(stuck + 1));
}

/// Telegram confirms by offset, so an update that finished *above* one cut
/// off by the drain deadline comes again: at-least-once, bounded by the window.
#[test]
fn finished_work_above_an_unfinished_update_is_redone_not_lost() {
    let api = FakeApi::start();
    let (_never, gate) = mpsc::channel();
    let bot = start_blocking(&api, gate, |config| {
        config.drain_timeout = Duration::from_millis(200);
    });
    let stuck = api.push_text(ChatId(7), "block");
    api.push_text(ChatId(8), "quick");
    api.wait_until("the quick reply", DEADLINE, |api| {
        api.sent_to(ChatId(8)) == 1
    });
    assert_eq!(bot.stop().unwrap().unfinished, 1);
    assert_eq!(api.confirmed_offset(), Some(stuck));

    let (release, gate) = mpsc::channel();
    release.send(()).unwrap();
    let next = TestBot::start(&api, blocking_bot(gate));
    api.wait_until("both redone", DEADLINE, |api| {
        api.sent_to(ChatId(7)) == 1 && api.sent_to(ChatId(8)) == 2
    });
    next.stop().unwrap();
    assert_eq!(api.pending(), 0);
}

#[test]
fn updates_of_one_chat_run_one_at_a_time_in_order() {
    let api = FakeApi::start();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let bot = TestBot::start(&api, move || {
        Bot::new().text(move |ctx| {
            let log = Arc::clone(&log);
            async move {
                let text = ctx.text().unwrap_or_default().to_owned();
                log.lock().unwrap().push(format!("start {text}"));
                ctx.reply(text.clone()).await?;
                log.lock().unwrap().push(format!("end {text}"));
                Ok(())
            }
        })
    });
    for i in 0..30 {
        api.push_text(ChatId(1), &format!("a{i}"));
        api.push_text(ChatId(2), &format!("b{i}"));
    }
    api.wait_until("60 replies", DEADLINE, |api| api.sent().len() == 60);
    bot.stop().unwrap();
    let seen = seen.lock().unwrap();
    for chat in ['a', 'b'] {
        let events: Vec<&String> = seen
            .iter()
            .filter(|e| e.split(' ').nth(1).unwrap().starts_with(chat))
            .collect();
        let expected: Vec<String> = (0..30)
            .flat_map(|i| [format!("start {chat}{i}"), format!("end {chat}{i}")])
            .collect();
        assert_eq!(events, expected.iter().collect::<Vec<_>>(), "chat {chat}");
    }
    let replies: Vec<String> = api
        .sent()
        .iter()
        .filter(|s| s.chat == ChatId(1))
        .map(|s| s.text.clone())
        .collect();
    assert_eq!(
        replies,
        (0..30).map(|i| format!("a{i}")).collect::<Vec<_>>()
    );
}

#[test]
fn failing_and_panicking_handlers_are_counted_and_the_bot_goes_on() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, || {
        Bot::new().text(|ctx| async move {
            match ctx.text().unwrap_or_default() {
                "fail" => Err("this handler fails".into()),
                "panic" => panic!("this handler panics"),
                other => {
                    let other = other.to_owned();
                    ctx.reply(other).await?;
                    Ok(())
                }
            }
        })
    });
    api.push_text(ChatId(1), "fail");
    api.push_text(ChatId(1), "panic");
    api.push_text(ChatId(1), "after");
    api.wait_until("the reply after the panic", DEADLINE, |api| {
        api.sent_to(ChatId(1)) == 1
    });
    let summary = bot.stop().unwrap();
    assert_eq!((summary.handled, summary.failed), (1, 2));
    assert_eq!(api.sent()[0].text, "after");
    assert_eq!(api.pending(), 0, "failed updates are confirmed too");
}

#[test]
fn odd_updates_never_fail_their_batch() {
    let api = FakeApi::start();
    let others = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&others);
    let bot = TestBot::start(&api, move || {
        Bot::new()
            .text(|ctx| async move {
                let text = ctx.text().unwrap_or_default().to_owned();
                ctx.reply(text).await?;
                Ok(())
            })
            .fallback(move |ctx| {
                let log = Arc::clone(&log);
                async move {
                    if ctx.kind().is_none() {
                        log.lock().unwrap().push(ctx.raw().to_owned());
                    }
                    Ok(())
                }
            })
    });
    api.push_text(ChatId(1), "before");
    let future = api.push_raw(json!({"some_future_update": {"x": 1}}));
    let malformed = api.push_raw(json!({"message": {"message_id": "not-a-number", "text": 5}}));
    api.push_text(ChatId(1), "after");
    api.wait_until("both texts answered", DEADLINE, |api| {
        api.sent_to(ChatId(1)) == 2
    });
    api.wait_until("all confirmed", DEADLINE, |api| {
        api.confirmed_offset() > Some(malformed)
    });
    let summary = bot.stop().unwrap();
    assert_eq!(summary.skipped, 1);
    assert_eq!(summary.handled, 3);
    let others = others.lock().unwrap();
    assert_eq!(others.len(), 1);
    assert!(others[0].contains("some_future_update") && others[0].contains(&future.to_string()));
}

#[test]
fn three_500s_on_get_updates_are_survived() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, || {
        Bot::new().text(|ctx| async move {
            ctx.reply("ok").await?;
            Ok(())
        })
    });
    let body = r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#;
    let fault = Fault::Status {
        code: 500,
        body: body.into(),
    };
    survive_poll_faults(&api, ChatId(1), fault, 3, DEADLINE);
    assert_eq!(api.sent()[0].text, "ok");
    bot.stop().unwrap();
}

#[test]
fn a_rejected_token_ends_the_run_with_the_401() {
    let api = FakeApi::start();
    let mut config = TestBot::config(&api);
    config.token = smolgram::api::Token::parse("42:SECRETnotTheFakesToken").unwrap();
    // It never polls: `spawn_with` does not wait for a first poll.
    let bot = TestBot::spawn_with(config, Bot::new).unwrap();
    let err = bot.join(DEADLINE).unwrap_err();
    assert!(matches!(err, Error::Api { code: 401, .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("SECRET"));
}

#[test]
fn block_on_inside_a_handler_is_refused_not_deadlocked() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, || {
        Bot::new().text(|ctx| async move {
            let nested = Runtime::new().block_on(async { 1 });
            let answer = match nested {
                Err(Error::AlreadyRunning) => "refused".to_owned(),
                other => format!("unexpected {other:?}"),
            };
            ctx.reply(answer).await?;
            Ok(())
        })
    });
    api.push_text(ChatId(3), "nest");
    api.wait_until("the answer", DEADLINE, |api| api.sent_to(ChatId(3)) == 1);
    assert_eq!(api.sent()[0].text, "refused");
    bot.stop().unwrap();
}

#[test]
fn updates_held_and_handlers_running_are_bounded() {
    let api = FakeApi::start();
    let (release, gate) = mpsc::channel();
    let bot = TestBot::start(&api, blocking_bot(gate));
    // 300 chats, every handler blocks: nothing finishes, so nothing may be confirmed,
    // no more than one getUpdates batch (100) may be taken into memory, and no
    // more than 64 handlers (the default cap) may run.
    let ids: Vec<i64> = (0..300)
        .map(|i| api.push_text(ChatId(10_000 + i), "block"))
        .collect();
    api.wait_until("64 handlers running", DEADLINE, |api| {
        api.calls("sendChatAction").len() == 64
    });
    api.wait_until("a full window taken", DEADLINE, |api| {
        ids.iter().filter(|id| api.deliveries(**id) > 0).count() == 100
    });
    assert_eq!(
        api.calls("sendChatAction").len(),
        64,
        "the other 36 wait for a slot"
    );
    assert!(
        api.confirmed_offset().is_none_or(|offset| offset <= ids[0]),
        "nothing confirmed"
    );
    for _ in 0..300 {
        release.send(()).unwrap();
    }
    api.wait_until("all 300 answered", DEADLINE, |api| api.sent().len() == 300);
    let summary = bot.stop().unwrap();
    assert_eq!(summary.handled, 300);
    assert_eq!(api.pending(), 0);
}

#[test]
fn a_stuck_handler_is_abandoned_at_its_timeout_and_its_chat_goes_on() {
    let api = FakeApi::start();
    let (_never, gate) = mpsc::channel();
    let bot = start_blocking(&api, gate, |config| {
        config.handler_timeout = Duration::from_secs(1);
    });
    let stuck = api.push_text(ChatId(7), "block");
    api.push_text(ChatId(7), "after");
    api.wait_until("the next update of the chat", DEADLINE, |api| {
        api.sent_to(ChatId(7)) == 1
    });
    assert_eq!(api.sent()[0].text, "done after");
    api.wait_until("both confirmed", DEADLINE, |api| {
        api.confirmed_offset() > Some(stuck + 1)
    });
    let summary = bot.stop().unwrap();
    assert_eq!((summary.handled, summary.failed), (1, 1));
}

#[test]
fn updates_without_a_chat_are_ordered_per_user() {
    let api = FakeApi::start();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let bot = TestBot::start(&api, move || {
        Bot::new().fallback(move |ctx| {
            let log = Arc::clone(&log);
            async move {
                let Some(query) = &ctx.update().inline_query else {
                    return Ok(());
                };
                let id = query.id.clone();
                log.lock().unwrap().push(format!("start {id}"));
                let _: bool = ctx
                    .call(
                        "sendChatAction",
                        &json!({"chat_id": 77, "action": "typing"}),
                    )
                    .await?;
                log.lock().unwrap().push(format!("end {id}"));
                Ok(())
            }
        })
    });
    for id in ["q1", "q2", "q3"] {
        api.push_raw(json!({"inline_query": {"id": id, "from": {"id": 77, "is_bot": false, "first_name": "U"}, "query": "x", "offset": ""}}));
    }
    api.wait_until("three queries handled", DEADLINE, |_| {
        seen.lock().unwrap().len() == 6
    });
    bot.stop().unwrap();
    let expected = [
        "start q1", "end q1", "start q2", "end q2", "start q3", "end q3",
    ];
    assert_eq!(
        *seen.lock().unwrap(),
        expected,
        "one user's queries, one at a time, in order"
    );
}

/// Each poll of a burst brings at least three quarters of a batch that is
/// new (see: #11): a poll per finished handler would ask ~3× as often. The
/// refresh that looks for other chats' updates while the window is busy adds
/// at most one poll per 50 ms of the burst.
#[test]
fn a_burst_is_fetched_in_few_polls() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, common::echo);
    let before = api.calls("getUpdates").len();
    let started = std::time::Instant::now();
    for i in 0..1500 {
        api.push_text(ChatId(1 + i % 50), &i.to_string());
    }
    api.wait_until("1500 replies", DEADLINE, |api| api.sent_count() == 1500);
    let polls = api.calls("getUpdates").len() - before;
    let refreshes = started.elapsed().as_millis() as usize / 50;
    // 1500 / 75 = 20 polls, one more to find the end, and the refreshes.
    let most = 21 + refreshes;
    bot.stop().unwrap();
    assert!(
        polls <= most,
        "{polls} polls for 1500 updates, at most {most} expected"
    );
}
