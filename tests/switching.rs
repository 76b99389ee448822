//! Switching from a webhook to polling (#13): a polling bot deletes the
//! webhook before its first `getUpdates`, keeping the pending updates, and
//! again whenever a 409 says one is set; a 409 from another poller stays
//! what it was. Against the testkit's webhook model.
//!
//! The log lines are part of the contract (a webhook must not read as
//! "another instance"), so the tests capture them in-process. The logger
//! is global, so each test holds [`Logs`] for its whole run: one at a time.

mod common;

use common::{api_error, echo, http_get, secret, Bin, Logs, DEADLINE};
use serde_json::json;
use smolgram::api::types::ChatId;
use smolgram::testkit::{FakeApi, Fault, TestBot};
use smolgram::Error;

const CHAT: ChatId = ChatId(5);

/// Telegram's 409 for a second poller.
const ANOTHER_POLLER: &str =
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";

#[test]
fn a_webhook_left_set_is_deleted_before_the_first_poll_and_nothing_pending_is_lost() {
    let logs = Logs::capture();
    let api = FakeApi::start();
    // The bot ran as a webhook before: Telegram kept what came since.
    api.set_webhook("https://bot.example.org/hook");
    let texts: Vec<String> = (0..6).map(|i| format!("while away {i}")).collect();
    for (i, text) in texts.iter().enumerate() {
        api.push_text(ChatId(100 + i as i64 % 2), text);
    }
    let bot = TestBot::start(&api, echo);
    api.wait_until("a reply to every pending update", DEADLINE, |api| {
        api.sent_count() >= texts.len()
    });
    let summary = bot.stop().unwrap();
    assert_eq!(summary.handled, texts.len() as u64, "{summary:?}");
    let mut replies: Vec<String> = api.sent().into_iter().map(|s| s.text).collect();
    replies.sort();
    assert_eq!(replies, texts, "each pending update answered once");
    assert_eq!(api.pending(), 0, "all confirmed");
    assert_eq!(api.webhook(), None);
    // One call, before any getUpdates (none was refused), keeping the updates.
    let deletes = api.calls("deleteWebhook");
    assert_eq!(deletes, [json!({"drop_pending_updates": false})]);
    let first_poll = api.call_times("getUpdates")[0];
    assert!(api.call_times("deleteWebhook")[0] < first_poll);
    assert_eq!(logs.matching("(409)"), Vec::<String>::new());
    logs.assert_no_token();
}

#[test]
fn a_webhook_set_while_polling_is_deleted_again_and_polling_resumes() {
    let logs = Logs::capture();
    let api = FakeApi::start();
    let bot = TestBot::start(&api, echo);
    // Someone deploys this bot in webhook mode while it polls.
    api.set_webhook("https://other.example.org/hook");
    api.wait_until("the webhook deleted again", DEADLINE, |api| {
        api.calls("deleteWebhook").len() == 2
    });
    api.push_text(CHAT, "still polling?");
    api.wait_until("the reply", DEADLINE, |api| api.sent_to(CHAT) == 1);
    assert_eq!(api.webhook(), None);
    let warned = logs.matching("a webhook is set for this bot (409)");
    assert_eq!(warned.len(), 1, "one warning for the episode: {warned:?}");
    assert!(warned[0].starts_with("WARN"), "{warned:?}");
    assert!(
        warned[0].contains("while webhook is active"),
        "Telegram's words are kept: {warned:?}"
    );
    assert_eq!(logs.matching("another instance"), Vec::<String>::new());
    assert_eq!(logs.matching("polling recovered after=webhook").len(), 1);
    // Still a 409 to /metrics, counted as one, as before.
    let metrics = http_get(bot.health_addr().unwrap(), "/metrics");
    assert!(
        metrics.contains("smolgram_poll_errors_total{kind=\"conflict\"} 1\n"),
        "{metrics}"
    );
    bot.stop().unwrap();
    logs.assert_no_token();
}

#[test]
fn a_409_from_another_poller_is_reported_as_another_instance_and_deletes_nothing() {
    let logs = Logs::capture();
    let api = FakeApi::start();
    let bot = TestBot::start(&api, echo);
    api.fault("getUpdates", api_error(409, ANOTHER_POLLER, None, None), 2);
    api.push_text(CHAT, "are you there?");
    api.wait_until("the reply after the 409s", DEADLINE, |api| {
        api.sent_to(CHAT) == 1 && api.unserved_faults("getUpdates") == 0
    });
    bot.stop().unwrap();
    let warned = logs.matching("another instance polls this bot (409)");
    assert_eq!(warned.len(), 1, "one warning for the episode: {warned:?}");
    assert!(warned[0].contains("terminated by other getUpdates request"));
    assert_eq!(logs.matching("webhook is set"), Vec::<String>::new());
    assert_eq!(
        api.calls("deleteWebhook").len(),
        1,
        "only the one before the first poll"
    );
    logs.assert_no_token();
}

#[test]
fn the_token_appears_in_no_line_or_error_of_the_webhook_paths() {
    let logs = Logs::capture();
    let api = FakeApi::start();
    // Webhook URLs often carry the token: the fake keeps it, we never print it.
    let url = format!("https://bot.example.org/{}", FakeApi::TOKEN);
    api.set_webhook(&url);
    // Startup: a proxy's page, then a dropped connection, then the answer.
    let page = Fault::Status {
        code: 502,
        body: "<html>502 Bad Gateway</html>".into(),
    };
    api.fault("deleteWebhook", page, 1);
    api.fault("deleteWebhook", Fault::Drop, 1);
    let bot = TestBot::start(&api, echo);
    assert_eq!(
        api.calls("deleteWebhook").len(),
        3,
        "tried until it answered"
    );
    assert_eq!(api.unserved_faults("deleteWebhook"), 0);
    assert_eq!(api.webhook(), None);
    let warned = logs.matching("deleteWebhook failed error=");
    assert_eq!(warned.len(), 1, "one warning for the episode: {warned:?}");
    // Mid-run: the webhook again, and the token revoked before it is deleted.
    api.fault(
        "deleteWebhook",
        api_error(401, "Unauthorized", None, None),
        1,
    );
    api.set_webhook(&url);
    let err = bot.join(DEADLINE).unwrap_err();
    assert!(
        matches!(&err, Error::Api { method, code: 401, .. } if method == "deleteWebhook"),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), 3, "the same fatal error as a bad token");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(secret()), "the token leaked: {shown}");
        assert!(!shown.contains("example.org"), "the URL leaked: {shown}");
    }
    assert_eq!(logs.matching("a webhook is set for this bot").len(), 1);
    assert_eq!(logs.matching("example.org"), Vec::<String>::new());
    logs.assert_no_token();
}

#[test]
fn a_token_rejected_by_delete_webhook_at_start_is_fatal_before_any_poll() {
    let _logs = Logs::capture();
    let api = FakeApi::start();
    api.fault(
        "deleteWebhook",
        api_error(401, "Unauthorized", None, None),
        1,
    );
    let err = TestBot::start_with(&api, TestBot::config(&api), echo).unwrap_err();
    assert!(matches!(err, Error::Api { code: 401, .. }), "{err:?}");
    assert!(api.calls("getUpdates").is_empty());
}

#[test]
fn the_binary_exits_3_when_delete_webhook_rejects_the_token() {
    let api = FakeApi::start();
    api.fault("deleteWebhook", api_error(404, "Not Found", None, None), 1);
    let bin = Bin::against(&api, &[], "trace");
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(3), "{out}");
    assert!(out.contains("deleteWebhook: telegram 404"), "{out}");
    assert!(!out.contains(secret()), "the token leaked:\n{out}");
    assert!(api.calls("getUpdates").is_empty());
}

#[test]
fn a_delete_webhook_refused_on_the_merits_does_not_stop_polling() {
    let logs = Logs::capture();
    let api = FakeApi::start();
    api.fault(
        "deleteWebhook",
        api_error(400, "Bad Request: not today", None, None),
        1,
    );
    let bot = TestBot::start(&api, echo);
    api.push_text(CHAT, "polling anyway?");
    api.wait_until("the reply", DEADLINE, |api| api.sent_to(CHAT) == 1);
    bot.stop().unwrap();
    assert_eq!(
        api.calls("deleteWebhook").len(),
        1,
        "a refusal is not retried"
    );
    assert_eq!(logs.matching("deleteWebhook refused").len(), 1);
}
