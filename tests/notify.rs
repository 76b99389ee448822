//! The notification inlet (#14): `POST /notify` on the health listener,
//! against the testkit. Its auth, body cap and payload shapes, the
//! messages arriving at the fake as `sendMessage`, and the route being off
//! without `SMOLGRAM_NOTIFY_TOKEN`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::{echo, texts_to, Logs, DEADLINE};
use smolgram::api::types::ChatId;
use smolgram::config;
use smolgram::testkit::{FakeApi, TestBot};

const TOKEN: &str = "notify-secret-0123456789";
const DEFAULT_CHAT: ChatId = ChatId(77);

fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut conn = TcpStream::connect_timeout(&addr, DEADLINE).expect("the listener accepts");
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    // A refused request's large body is never read: the write may then fail.
    let _ = conn.write_all(raw);
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn status(answer: &str) -> u16 {
    answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an answer: {answer:?}"))
}

fn post(auth: Option<&str>, content_type: &str, body: &str) -> Vec<u8> {
    let auth = auth.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST /notify HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{auth}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A polling bot with the route on (or off, `token` `None`).
fn bot(api: &FakeApi, token: Option<&str>) -> TestBot {
    let env = |key: &str| match key {
        "SMOLGRAM_NOTIFY_TOKEN" => token.map(str::to_owned),
        "SMOLGRAM_NOTIFY_CHAT" => Some(DEFAULT_CHAT.0.to_string()),
        _ => None,
    };
    let config = config::parse_over(TestBot::config(api), &[], env).expect("a valid config");
    TestBot::start_with(api, config, echo).expect("the bot starts")
}

#[test]
fn json_and_plain_text_arrive_as_send_message() {
    let api = FakeApi::start();
    let bot = bot(&api, Some(TOKEN));
    let addr = bot.health_addr().unwrap();
    let json = r#"{"chat":42,"text":"deploy done","silent":true}"#;
    assert_eq!(
        status(&exchange(
            addr,
            &post(Some(TOKEN), "application/json", json)
        )),
        202
    );
    let plain = exchange(addr, &post(Some(TOKEN), "text/plain", "disk full on pi"));
    assert_eq!(status(&plain), 202, "{plain}");
    api.wait_until("both sent", DEADLINE, |api| api.sent_count() >= 2);
    assert_eq!(texts_to(&api, ChatId(42)), ["deploy done"]);
    assert_eq!(texts_to(&api, DEFAULT_CHAT), ["disk full on pi"]);
    let bad = exchange(addr, &post(Some(TOKEN), "application/json", "{nope"));
    assert_eq!(status(&bad), 400, "{bad}");
    bot.stop().unwrap();
}

#[test]
fn an_alertmanager_group_of_two_is_one_message_naming_both() {
    let api = FakeApi::start();
    let bot = bot(&api, Some(TOKEN));
    let addr = bot.health_addr().unwrap();
    let body = r#"{"version":"4","status":"firing","receiver":"tg",
      "groupLabels":{"alertname":"HighLoad"},"commonLabels":{"alertname":"HighLoad"},
      "commonAnnotations":{},"externalURL":"http://am:9093","alerts":[
      {"status":"firing","labels":{"alertname":"HighLoad","instance":"pi"},
       "annotations":{"summary":"load 9 on pi"},"startsAt":"2026-12-02T10:00:00Z",
       "endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/g"},
      {"status":"firing","labels":{"alertname":"HighLoad","instance":"nas"},
       "annotations":{"summary":"load 7 on nas"},"startsAt":"2026-12-02T10:00:00Z",
       "endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/g"}]}"#;
    let answer = exchange(addr, &post(Some(TOKEN), "application/json", body));
    assert_eq!(status(&answer), 202, "{answer}");
    api.wait_until("the alert sent", DEADLINE, |api| api.sent_count() >= 1);
    let texts = texts_to(&api, DEFAULT_CHAT);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].starts_with("[FIRING:2] HighLoad"), "{}", texts[0]);
    assert!(
        texts[0].contains("load 9 on pi") && texts[0].contains("load 7 on nas"),
        "{}",
        texts[0]
    );
    bot.stop().unwrap();
}

#[test]
fn a_grafana_payload_is_sent_with_its_title_and_message() {
    let api = FakeApi::start();
    let bot = bot(&api, Some(TOKEN));
    let addr = bot.health_addr().unwrap();
    let body = r#"{"receiver":"tg","status":"firing","orgId":1,"state":"alerting",
      "title":"[FIRING:1] High memory usage (blue)","message":"zone us-1 at 91%",
      "groupLabels":{},"commonLabels":{"team":"blue"},"commonAnnotations":{},
      "externalURL":"http://grafana/","alerts":[{"status":"firing",
      "labels":{"alertname":"High memory usage","team":"blue"},
      "annotations":{"summary":"zone us-1"},"startsAt":"2026-12-02T10:00:00Z",
      "endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://grafana/a",
      "fingerprint":"c6ea","silenceURL":"","dashboardURL":"","panelURL":"","values":{"B":91}}]}"#;
    let answer = exchange(addr, &post(Some(TOKEN), "application/json", body));
    assert_eq!(status(&answer), 202, "{answer}");
    api.wait_until("the alert sent", DEADLINE, |api| api.sent_count() >= 1);
    assert_eq!(
        texts_to(&api, DEFAULT_CHAT),
        ["[FIRING:1] High memory usage (blue)\nzone us-1 at 91%"]
    );
    bot.stop().unwrap();
}

#[test]
fn wrong_or_missing_token_is_401_sends_nothing_and_never_shows_the_token() {
    let logs = Logs::capture();
    let api = FakeApi::start();
    let bot = bot(&api, Some(TOKEN));
    let addr = bot.health_addr().unwrap();
    let wrong = "notify-secret-0123456780";
    for auth in [Some(wrong), None, Some("")] {
        let answer = exchange(addr, &post(auth, "text/plain", "hi"));
        assert_eq!(status(&answer), 401, "{answer}");
        assert!(!answer.contains(TOKEN), "{answer}");
    }
    // The body cap: refused from the head, the body left unread.
    let big = "x".repeat(70 * 1024);
    let answer = exchange(addr, &post(Some(TOKEN), "text/plain", &big));
    assert_eq!(status(&answer), 413, "{answer}");
    let metrics = common::http_get(addr, "/metrics");
    assert!(
        metrics.contains("smolgram_notify_requests_total{outcome=\"unauthorized\"} 3"),
        "{metrics}"
    );
    assert!(!metrics.contains(TOKEN));
    bot.stop().unwrap();
    assert_eq!(api.sent_count(), 0, "{:?}", api.sent());
    for line in logs.lines() {
        assert!(!line.contains(TOKEN), "the notify token leaked: {line}");
    }
}

#[test]
fn the_route_is_off_without_the_token() {
    let api = FakeApi::start();
    let bot = bot(&api, None);
    let addr = bot.health_addr().unwrap();
    // As any unknown path: 404 (with a body, 400, as the listener refuses
    // bodies on its own routes).
    let answer = exchange(addr, &post(Some(TOKEN), "text/plain", ""));
    assert_eq!(status(&answer), 404, "{answer}");
    let answer = exchange(addr, &post(Some(TOKEN), "text/plain", "hi"));
    assert_ne!(status(&answer), 202, "{answer}");
    bot.stop().unwrap();
    assert_eq!(api.sent_count(), 0);
}

#[test]
fn a_short_token_is_a_one_line_config_error_without_its_value() {
    let api = FakeApi::start();
    let env = |key: &str| (key == "SMOLGRAM_NOTIFY_TOKEN").then(|| "short-tok".to_owned());
    let err = config::parse_over(TestBot::config(&api), &[], env).unwrap_err();
    let line = err.to_string();
    assert!(line.contains("SMOLGRAM_NOTIFY_TOKEN") && !line.contains("short-tok"));
    let env = |key: &str| (key == "SMOLGRAM_NOTIFY_TOKEN").then(|| TOKEN.to_owned());
    let config = config::parse_over(TestBot::config(&api), &[], env).unwrap();
    assert!(!format!("{config:?}").contains(TOKEN));
}

#[test]
fn a_full_queue_is_503_with_retry_after_and_every_accepted_message_arrives() {
    let api = FakeApi::start();
    let bot = bot(&api, Some(TOKEN));
    let addr = bot.health_addr().unwrap();
    // The first send hangs a while, so that the queue fills behind it.
    api.fault(
        "sendMessage",
        smolgram::testkit::Fault::Delay(std::time::Duration::from_secs(2)),
        1,
    );
    let mut accepted = 0;
    let full = (0..400).find_map(|i| {
        let answer = exchange(addr, &post(Some(TOKEN), "text/plain", &format!("n{i}")));
        match status(&answer) {
            202 => {
                accepted += 1;
                None
            }
            _ => Some(answer),
        }
    });
    let full = full.expect("the queue filled up");
    assert_eq!(status(&full), 503, "{full}");
    assert!(full.contains("Retry-After: "), "{full}");
    assert!(accepted >= 256, "{accepted}");
    api.wait_until("every accepted message sent", DEADLINE * 3, |api| {
        api.sent_count() >= accepted
    });
    let texts = texts_to(&api, DEFAULT_CHAT);
    let expected: Vec<String> = (0..accepted).map(|i| format!("n{i}")).collect();
    assert_eq!(texts, expected, "in order, none lost");
    bot.stop().unwrap();
}
