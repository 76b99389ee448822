//! Every Bot API failure survived: getUpdates' error policy and the retry
//! of handlers' calls, each against a fault injected into the testkit.
//!
//! `TestBot::start` returns with the bot in its first long poll, and a
//! fault armed for `getUpdates` then is taken by that poll at once: the
//! faults below are served, not left behind a push that wakes the poll
//! first, and each test checks with `unserved_faults` that they were.

mod common;

use std::time::{Duration, Instant};

use common::{api_error, echo, survive_poll_faults, DEADLINE};
use smolgram::api::types::ChatId;
use smolgram::api::RetryPolicy;
use smolgram::testkit::{FakeApi, Fault, TestBot};
use smolgram::{Bot, Error};

const CHAT: ChatId = ChatId(5);

#[test]
fn transient_get_updates_failures_are_survived() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, echo);
    let faults = [
        Fault::Status {
            code: 500,
            body: r#"{"ok":false,"error_code":500,"description":"Internal"}"#.into(),
        },
        Fault::Status {
            code: 502,
            body: "<html><h1>502 Bad Gateway</h1><hr>nginx</html>".into(),
        },
        Fault::Drop,
        Fault::InvalidJson,
        Fault::Delay(Duration::from_millis(300)),
    ];
    for fault in faults {
        // Two in a row: a poller that gives up on a repeated failure fails here.
        survive_poll_faults(&api, CHAT, fault, 2, DEADLINE);
    }
    let summary = bot.stop().unwrap();
    assert_eq!(summary.handled, 5);
}

#[test]
fn retry_after_on_get_updates_is_waited_out_never_less() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, echo);
    let before = api.call_times("getUpdates").len();
    let armed = Instant::now();
    // The waiting poll takes the first at once; the retry, answered on
    // arrival, the second: the gap after it is the bot's own wait.
    api.fault(
        "getUpdates",
        api_error(429, "Too Many Requests: retry after 1", Some(1), None),
        2,
    );
    api.push_text(CHAT, "wake the waiting poll");
    api.wait_until("the poll after the 429", DEADLINE, |api| {
        api.call_times("getUpdates").len() >= before + 2
    });
    let times = api.call_times("getUpdates");
    let first = times[before] - armed;
    assert!(
        first >= Duration::from_secs(1),
        "first retry after {first:?}"
    );
    let waited = times[before + 1] - times[before];
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    api.wait_until("the reply", DEADLINE, |api| api.sent_to(CHAT) == 1);
    assert_eq!(api.unserved_faults("getUpdates"), 0);
    bot.stop().unwrap();
}

#[test]
fn conflict_409_never_stops_the_bot() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, echo);
    let conflict = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";
    // Three in a row, 1 s and more apart: the reply comes after all of them.
    survive_poll_faults(
        &api,
        CHAT,
        api_error(409, conflict, None, None),
        3,
        Duration::from_secs(20),
    );
    bot.stop().unwrap();
}

#[test]
fn a_token_revoked_while_running_is_fatal() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, echo);
    api.fault("getUpdates", api_error(401, "Unauthorized", None, None), 1);
    let id = api.push_text(CHAT, "wake the waiting poll");
    let err = bot.join(DEADLINE).unwrap_err();
    assert!(matches!(err, Error::Api { code: 401, .. }), "{err:?}");
    assert_eq!(api.unserved_faults("getUpdates"), 0);
    // The poll that waited took the 401, and nothing after it ran.
    assert_eq!((api.deliveries(id), api.sent().len()), (0, 0));
}

#[test]
fn a_send_that_failed_transiently_is_retried_and_arrives() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, echo);
    api.fault(
        "sendMessage",
        Fault::Status {
            code: 500,
            body: "oops".into(),
        },
        1,
    );
    api.fault("sendMessage", Fault::Drop, 1);
    api.push_text(CHAT, "deliver me");
    api.wait_until("the reply", DEADLINE, |api| api.sent_to(CHAT) == 1);
    assert_eq!(api.calls("sendMessage").len(), 3);
    assert_eq!(api.unserved_faults("sendMessage"), 0);
    let summary = bot.stop().unwrap();
    assert_eq!((summary.handled, summary.failed_sends), (1, 0));
}

#[test]
fn a_send_429_waits_its_retry_after() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, echo);
    api.fault(
        "sendMessage",
        api_error(429, "Too Many Requests: retry after 1", Some(1), None),
        1,
    );
    api.push_text(CHAT, "patience");
    api.wait_until("the reply", DEADLINE, |api| api.sent_to(CHAT) == 1);
    let times = api.call_times("sendMessage");
    assert!(
        times[1] - times[0] >= Duration::from_secs(1),
        "retried after {:?}",
        times[1] - times[0]
    );
    assert_eq!(api.unserved_faults("sendMessage"), 0);
    bot.stop().unwrap();
}

#[test]
fn a_refused_send_is_not_retried() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, echo);
    api.fault(
        "sendMessage",
        api_error(403, "Forbidden: bot was blocked by the user", None, None),
        1,
    );
    let blocked = api.push_text(CHAT, "blocked");
    api.wait_until("the refused update confirmed", DEADLINE, |api| {
        api.confirmed_offset() > Some(blocked)
    });
    api.push_text(ChatId(6), "next");
    api.wait_until("the other chat answered", DEADLINE, |api| {
        api.sent_to(ChatId(6)) == 1
    });
    let summary = bot.stop().unwrap();
    assert_eq!(
        api.calls("sendMessage").len(),
        2,
        "one try for the refused send"
    );
    assert_eq!(api.unserved_faults("sendMessage"), 0);
    assert_eq!((summary.failed, summary.failed_sends), (1, 1));
}

#[test]
fn migrate_to_chat_id_is_followed_once() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, echo);
    let upgraded = "Bad Request: group chat was upgraded to a supergroup chat";
    api.fault(
        "sendMessage",
        api_error(400, upgraded, None, Some(-100_777)),
        1,
    );
    api.push_text(ChatId(-42), "hello group");
    api.wait_until("the reply in the supergroup", DEADLINE, |api| {
        api.sent_to(ChatId(-100_777)) == 1
    });
    let calls = api.calls("sendMessage");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0]["chat_id"].as_i64(), calls[1]["chat_id"].as_i64()),
        (Some(-42), Some(-100_777))
    );
    assert_eq!(api.unserved_faults("sendMessage"), 0);
    bot.stop().unwrap();
}

#[test]
fn retries_are_bounded_by_attempts() {
    let api = FakeApi::start();
    let mut config = TestBot::config(&api);
    config.retry = RetryPolicy {
        attempts: 3,
        within: Duration::from_secs(60),
    };
    let bot = TestBot::start_with(&api, config, echo).unwrap();
    api.fault(
        "sendMessage",
        Fault::Status {
            code: 503,
            body: "down".into(),
        },
        10,
    );
    api.push_text(CHAT, "doomed");
    api.wait_until("three tries", DEADLINE, |api| {
        api.calls("sendMessage").len() == 3
    });
    let summary = bot.stop().unwrap();
    assert_eq!(api.calls("sendMessage").len(), 3);
    assert_eq!(api.unserved_faults("sendMessage"), 10 - 3, "no fourth try");
    assert_eq!((summary.failed, summary.failed_sends), (1, 1));
}

#[test]
fn a_handler_can_take_the_first_error_instead() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, || {
        Bot::new().text(|ctx| async move {
            let once = ctx.client().without_retries();
            match once
                .send_message(&smolgram::api::methods::SendMessage::new(CHAT, "try"))
                .await
            {
                Err(Error::Http { status: 500, .. }) => {
                    ctx.reply("got the 500 myself").await?;
                    Ok(())
                }
                other => Err(format!("expected the 500, got {other:?}").into()),
            }
        })
    });
    api.fault(
        "sendMessage",
        Fault::Status {
            code: 500,
            body: "<html>500</html>".into(),
        },
        1,
    );
    api.push_text(CHAT, "go");
    api.wait_until("the handler's own answer", DEADLINE, |api| {
        api.sent_to(CHAT) == 1
    });
    assert_eq!(api.sent()[0].text, "got the 500 myself");
    assert_eq!(api.unserved_faults("sendMessage"), 0);
    bot.stop().unwrap();
}

#[test]
fn stop_under_slow_sends_loses_nothing_and_repeats_nothing() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, echo);
    // Every send takes 100 ms, like a real round trip: work is in flight at the stop.
    api.fault(
        "sendMessage",
        Fault::Delay(Duration::from_millis(100)),
        100_000,
    );
    let chats = 50;
    for i in 0..500 {
        api.push_text(ChatId(1000 + i % chats), &format!("m{i}"));
    }
    api.wait_until("some replies", DEADLINE, |api| api.sent().len() >= 20);
    let first = bot.stop().unwrap();
    assert_eq!(first.unfinished, 0, "{first:?}");
    let next = TestBot::start(&api, echo);
    api.wait_until("every update answered", Duration::from_secs(30), |api| {
        api.pending() == 0 && api.sent().len() >= 500
    });
    next.stop().unwrap();
    let mut texts: Vec<String> = api.sent().into_iter().map(|s| s.text).collect();
    texts.sort();
    let mut expected: Vec<String> = (0..500).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(texts, expected, "each answered exactly once");
}
