//! Webhook mode (#13): the bot takes its updates as POSTs on its health
//! listener's route, against the testkit posting them as Telegram would
//! (`FakeApi::deliver_webhooks_to`). The route's checks (secret, method,
//! body cap, JSON), the 200 only after the handler, the 503 for a slow one
//! and its resend not run twice, the stop, readiness from
//! `getWebhookInfo`, and switching between webhook and polling.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{echo, http_get, Logs, DEADLINE};
use smolgram::api::types::ChatId;
use smolgram::testkit::{FakeApi, TestBot};
use smolgram::Bot;

const CHAT: ChatId = ChatId(9);

/// Sends `raw` to `addr` and reads the answer to the end or to `Connection: close`.
fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut conn = TcpStream::connect_timeout(&addr, DEADLINE).expect("the listener accepts");
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    conn.write_all(raw).unwrap();
    let mut answer = Vec::new();
    // The route closes after a refusal; a reset after the answer is fine too.
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn status(answer: &str) -> u16 {
    answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an answer: {answer:?}"))
}

fn post(path: &str, secret: Option<&str>, body: &str) -> Vec<u8> {
    let secret = secret.map_or(String::new(), |s| {
        format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n")
    });
    format!(
        "POST {path} HTTP/1.1\r\nHost: bot.test\r\nContent-Length: {}\r\n{secret}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Waits until `cond` holds, looking every 20 ms, for a condition outside
/// the fake (`FakeApi::wait_until` looks again only when the fake changes).
#[track_caller]
fn eventually(label: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {label}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The secret the bot gave `setWebhook`.
fn secret_of(api: &FakeApi) -> String {
    let webhook = api.webhook().expect("the bot set its webhook");
    webhook.secret_token.expect("with a secret token")
}

#[test]
fn a_webhook_bot_answers_on_its_route_beside_its_health_routes() {
    let logs = Logs::capture();
    let api = FakeApi::start();
    let bot = TestBot::start_with(&api, TestBot::webhook_config(&api), echo).unwrap();
    let secret = secret_of(&api);
    let webhook = api.webhook().unwrap();
    assert_eq!(webhook.url, "http://bot.test/telegram");
    assert_eq!(secret.len(), 43, "generated: 256 bits");
    assert!(secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    assert_eq!(webhook.allowed_updates, Some(vec!["message".to_owned()]));
    let ids: Vec<i64> = (0..5)
        .map(|i| api.push_text(ChatId(10 + i % 2), &format!("hi {i}")))
        .collect();
    api.wait_until("every update answered 200", DEADLINE, |api| {
        api.pending() == 0
    });
    assert_eq!(api.sent_count(), 5);
    let answers = api.webhook_answers();
    for id in &ids {
        assert!(answers.contains(&(*id, 200)), "{id} in {answers:?}");
    }
    assert!(
        api.calls("getUpdates").is_empty(),
        "a webhook bot never polls"
    );
    let health = bot.health_addr().unwrap();
    assert_eq!(status(&http_get(health, "/healthz")), 200);
    let ready = http_get(health, "/readyz");
    assert_eq!(status(&ready), 200, "{ready}");
    let metrics = http_get(health, "/metrics");
    assert!(
        metrics.contains("smolgram_webhook_requests_total{outcome=\"ok\"} 5"),
        "{metrics}"
    );
    let summary = bot.stop().unwrap();
    assert_eq!(summary.handled, 5, "{summary:?}");
    assert!(api.webhook().is_some(), "a stop leaves the webhook set");
    assert_eq!(logs.matching("mode=webhook").len(), 1);
    assert_eq!(
        logs.matching(&secret),
        Vec::<String>::new(),
        "the secret is never logged"
    );
    assert_eq!(
        logs.matching("bot.test"),
        Vec::<String>::new(),
        "nor the URL"
    );
    logs.assert_no_token();
}

#[test]
fn only_a_post_with_the_secret_is_taken_and_bad_bodies_get_their_status() {
    let api = FakeApi::start();
    let bot = TestBot::start_with(&api, TestBot::webhook_config(&api), echo).unwrap();
    let addr = bot.health_addr().unwrap();
    let secret = secret_of(&api);
    let update = r#"{"update_id":7,"message":{"message_id":1,"date":0,"chat":{"id":9,"type":"private"},"from":{"id":9,"is_bot":false,"first_name":"a"},"text":"x"}}"#;

    assert_eq!(
        status(&exchange(addr, &post("/telegram", None, update))),
        401
    );
    let wrong = post("/telegram", Some("not-the-secret"), update);
    assert_eq!(status(&exchange(addr, &wrong)), 401);
    let almost = &secret[..secret.len() - 1];
    assert_eq!(
        status(&exchange(addr, &post("/telegram", Some(almost), update))),
        401
    );
    let get = exchange(addr, b"GET /telegram HTTP/1.1\r\n\r\n");
    assert_eq!(status(&get), 405);
    assert!(get.contains("Allow: POST\r\n"), "{get}");
    let chunked = format!(
        "POST /telegram HTTP/1.1\r\nX-Telegram-Bot-Api-Secret-Token: {secret}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    assert_eq!(status(&exchange(addr, chunked.as_bytes())), 411);
    let huge = format!(
        "POST /telegram HTTP/1.1\r\nX-Telegram-Bot-Api-Secret-Token: {secret}\r\nContent-Length: {}\r\n\r\n",
        (1 << 20) + 1
    );
    assert_eq!(status(&exchange(addr, huge.as_bytes())), 413);
    let not_json = post("/telegram", Some(&secret), "{not json");
    assert_eq!(status(&exchange(addr, &not_json)), 400);
    assert_eq!(api.sent_count(), 0, "nothing refused was dispatched");

    // JSON that breaks the schema: 200 (or Telegram sends it forever), skipped.
    let broken = post(
        "/telegram",
        Some(&secret),
        r#"{"update_id":8,"message":"no"}"#,
    );
    assert_eq!(status(&exchange(addr, &broken)), 200);
    // The right secret: taken, answered once the reply is sent.
    let ok = exchange(addr, &post("/telegram", Some(&secret), update));
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(
        api.sent_count(),
        1,
        "the 200 came after the handler's reply"
    );
    // Telegram sends it again (say, our 200 was lost): not run twice.
    assert_eq!(
        status(&exchange(addr, &post("/telegram", Some(&secret), update))),
        200
    );
    assert_eq!(api.sent_count(), 1);

    let metrics = http_get(addr, "/metrics");
    for sample in [
        "outcome=\"unauthorized\"} 3",
        "outcome=\"bad_request\"} 3",
        "outcome=\"too_large\"} 1",
        "outcome=\"skipped\"} 1",
        "outcome=\"ok\"} 2",
    ] {
        assert!(metrics.contains(sample), "{sample} in\n{metrics}");
    }
    let summary = bot.stop().unwrap();
    assert_eq!((summary.handled, summary.skipped), (1, 1), "{summary:?}");
}

/// A bot whose handler waits until `gate` opens, counting its runs.
fn gated(gate: Arc<AtomicUsize>, runs: Arc<AtomicUsize>) -> impl FnOnce() -> Bot + Send {
    move || {
        Bot::new().text(move |ctx| {
            let (gate, runs) = (Arc::clone(&gate), Arc::clone(&runs));
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                while gate.load(Ordering::SeqCst) == 0 {
                    async_io::Timer::after(Duration::from_millis(10)).await;
                }
                ctx.reply("done").await?;
                Ok(())
            }
        })
    }
}

#[test]
fn a_slow_handler_is_answered_503_and_its_resend_waits_without_running_it_again() {
    let api = FakeApi::start();
    let mut config = TestBot::webhook_config(&api);
    config.webhook.as_mut().unwrap().wait = Duration::from_millis(300);
    let (gate, runs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let bot =
        TestBot::start_with(&api, config, gated(Arc::clone(&gate), Arc::clone(&runs))).unwrap();
    let id = api.push_text(CHAT, "slow");
    api.wait_until("two 503s for the slow update", DEADLINE, |api| {
        api.webhook_answers()
            .iter()
            .filter(|a| **a == (id, 503))
            .count()
            >= 2
    });
    // Telegram's queue for the chat waits; the second chat's goes on.
    let other = api.push_text(ChatId(77), "other chat");
    api.wait_until("the other chat's update is not held up", DEADLINE, |api| {
        runs.load(Ordering::SeqCst) == 2 || api.webhook_answers().contains(&(other, 503))
    });
    gate.store(1, Ordering::SeqCst);
    api.wait_until("both answered 200 at last", DEADLINE, |api| {
        api.pending() == 0
    });
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "each ran once, resends or not"
    );
    assert_eq!(api.sent_count(), 2);
    let health = bot.health_addr().unwrap();
    let metrics = http_get(health, "/metrics");
    assert!(!metrics.contains("outcome=\"slow\"} 0"), "{metrics}");
    bot.stop().unwrap();
}

#[test]
fn a_stop_answers_new_requests_503_lets_running_handlers_finish_and_keeps_the_webhook() {
    let api = FakeApi::start();
    let (gate, runs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let bot = TestBot::start_with(
        &api,
        TestBot::webhook_config(&api),
        gated(Arc::clone(&gate), Arc::clone(&runs)),
    )
    .unwrap();
    let addr = bot.health_addr().unwrap();
    let secret = secret_of(&api);
    let running = api.push_text(CHAT, "running");
    api.wait_until("its handler runs", DEADLINE, |_| {
        runs.load(Ordering::SeqCst) == 1
    });
    let stopping = std::thread::spawn(move || bot.stop());
    eventually("the stop under way", || {
        http_get(addr, "/readyz").contains("shutting down")
    });
    let late = r#"{"update_id":99,"message":{"message_id":5,"date":0,"chat":{"id":3,"type":"private"},"text":"late"}}"#;
    let refused = exchange(addr, &post("/telegram", Some(&secret), late));
    assert_eq!(status(&refused), 503, "{refused}");
    gate.store(1, Ordering::SeqCst);
    let summary = stopping.join().unwrap().unwrap();
    assert_eq!((summary.handled, summary.unfinished), (1, 0), "{summary:?}");
    // The fake reads the answer on its own thread, maybe after the exit.
    api.wait_until(
        "the fake read the running update's answer",
        DEADLINE,
        |api| api.webhook_answers().iter().any(|(id, _)| *id == running),
    );
    assert!(
        api.webhook_answers().contains(&(running, 200)),
        "answered 200 before the exit: {:?}",
        api.webhook_answers()
    );
    assert_eq!(api.pending(), 0);
    assert_eq!(api.sent_count(), 1, "the late one never ran");
    assert!(
        api.webhook().is_some(),
        "the webhook stays set: Telegram keeps the updates"
    );
    assert!(api.calls("deleteWebhook").is_empty());
}

#[test]
fn readiness_follows_set_webhook_and_what_telegram_reports() {
    let api = FakeApi::start();
    let mut config = TestBot::webhook_config(&api);
    config.webhook.as_mut().unwrap().wait = Duration::from_millis(200);
    let (gate, runs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let bot =
        TestBot::start_with(&api, config, gated(Arc::clone(&gate), Arc::clone(&runs))).unwrap();
    let health = bot.health_addr().unwrap();
    eventually("ready once setWebhook answered", || {
        status(&http_get(health, "/readyz")) == 200
    });
    // A handler slower than the wait: Telegram records our 503 as its last error.
    api.push_text(CHAT, "slow");
    let mut why = String::new();
    eventually("not ready with Telegram's words", || {
        why = http_get(health, "/readyz");
        status(&why) == 503
    });
    assert!(
        why.contains("cannot deliver") && why.contains("503"),
        "{why}"
    );
    gate.store(1, Ordering::SeqCst);
    eventually("ready again after a 200", || {
        api.pending() == 0 && status(&http_get(health, "/readyz")) == 200
    });
    // Someone deletes the webhook (a poller elsewhere): it is set again.
    let sets = api.calls("setWebhook").len();
    api.set_webhook("");
    api.wait_until("set again", DEADLINE, |api| {
        api.calls("setWebhook").len() > sets && api.webhook().is_some()
    });
    let again = api.calls("setWebhook");
    assert_eq!(again.last().unwrap()["drop_pending_updates"], false);
    bot.stop().unwrap();
}

#[test]
fn webhook_to_polling_to_webhook_needs_no_manual_call_and_loses_nothing() {
    let api = FakeApi::start();
    let bot = TestBot::start_with(&api, TestBot::webhook_config(&api), echo).unwrap();
    api.push_text(CHAT, "one");
    api.wait_until("answered as a webhook", DEADLINE, |api| api.pending() == 0);
    bot.stop().unwrap();
    // While the bot is down, the webhook stays set and Telegram queues.
    api.push_text(CHAT, "two");
    let bot = TestBot::start(&api, echo);
    api.wait_until("polled after deleteWebhook", DEADLINE, |api| {
        api.sent_count() == 2
    });
    assert_eq!(api.webhook(), None);
    bot.stop().unwrap();
    api.push_text(CHAT, "three");
    let bot = TestBot::start_with(&api, TestBot::webhook_config(&api), echo).unwrap();
    api.wait_until("a webhook again", DEADLINE, |api| {
        api.sent_count() == 3 && api.pending() == 0
    });
    let texts: Vec<String> = api.sent().into_iter().map(|s| s.text).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    bot.stop().unwrap();
}

#[test]
fn many_chats_run_concurrently_and_each_chat_in_order() {
    let api = FakeApi::start();
    let mut config = TestBot::webhook_config(&api);
    config.webhook.as_mut().unwrap().max_connections = Some(20);
    let bot = TestBot::start_with(&api, config, echo).unwrap();
    for round in 0..10 {
        for chat in 0..30 {
            api.push_text(ChatId(1000 + chat), &format!("{round}"));
        }
    }
    api.wait_until("all 300 answered", DEADLINE, |api| api.pending() == 0);
    for chat in 0..30 {
        let texts: Vec<String> = api
            .sent()
            .into_iter()
            .filter(|s| s.chat == ChatId(1000 + chat))
            .map(|s| s.text)
            .collect();
        let want: Vec<String> = (0..10).map(|r| r.to_string()).collect();
        assert_eq!(texts, want, "chat {chat} in order");
    }
    assert_eq!(api.webhook().unwrap().max_connections, Some(20));
    bot.stop().unwrap();
}

/// The `smolgram` binary in webhook mode against `api`, its posts aimed at
/// its listener, returned once its webhook is set.
fn webhook_bin(api: &FakeApi) -> common::Bin {
    let sets = api.calls("setWebhook").len();
    let bin = common::Bin::against(api, &["--webhook-url", "http://bot.test/hook"], "info");
    api.deliver_webhooks_to(bin.health_addr());
    api.wait_until("the binary's setWebhook", DEADLINE, |api| {
        api.calls("setWebhook").len() > sets && api.webhook().is_some()
    });
    bin
}

#[test]
fn sigkill_mid_handler_has_the_update_sent_again_and_handled_once_more() {
    let api = FakeApi::start();
    // The first reply hangs at the fake, so the handler is mid-way when killed.
    api.fault(
        "sendMessage",
        smolgram::testkit::Fault::Delay(Duration::from_secs(30)),
        1,
    );
    let first = webhook_bin(&api);
    let id = api.push_text(CHAT, "survive me");
    api.wait_until("the handler mid-way", DEADLINE, |api| {
        !api.calls("sendMessage").is_empty()
    });
    first.signal("KILL");
    let (_, out) = first.wait_exit(DEADLINE);
    api.wait_until("the fake saw the post cut", DEADLINE, |api| {
        api.webhook_answers().contains(&(id, 0))
    });
    assert_eq!(api.pending(), 1, "not confirmed: {out}");
    let second = webhook_bin(&api);
    api.wait_until("sent again and answered 200", DEADLINE, |api| {
        api.pending() == 0
    });
    assert!(api.deliveries(id) >= 2);
    assert_eq!(api.webhook_answers().last(), Some(&(id, 200)));
    let replies = api.calls("sendMessage");
    assert_eq!(replies.len(), 2, "handled once more by the new process");
    second.signal("TERM");
    let (status, out) = second.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(out.contains("handled=1"), "{out}");
    assert!(!out.contains(common::secret()), "{out}");
}

#[test]
fn a_bad_webhook_url_exits_2_with_one_line() {
    for (args, needle) in [
        (
            &["--webhook-url", "http://bot.example.org/hook"][..],
            "https",
        ),
        (
            &["--webhook-url", "https://bot.example.org:8080/hook"],
            "port",
        ),
        (
            &["--webhook-url", "https://bot.example.org/healthz"],
            "/healthz",
        ),
        (
            &["--webhook-url", "https://bot.example.org/h", "--no-health"],
            "--no-health",
        ),
        (&["--webhook-max-connections", "5"], "need --webhook-url"),
        (
            &[
                "--webhook-url",
                "https://bot.example.org/h",
                "--webhook-max-connections",
                "101",
            ],
            "1 to 100",
        ),
    ] {
        let bin = common::Bin::start(args, &[("TELEGRAM_BOT_TOKEN", FakeApi::TOKEN)]);
        let (status, out) = bin.wait_exit(DEADLINE);
        assert_eq!(status.code(), Some(2), "{args:?}: {out}");
        assert!(out.contains(needle), "{args:?}: {out}");
        assert_eq!(out.trim().lines().count(), 1, "{args:?}: {out}");
        assert!(!out.contains(common::secret()));
    }
    let bin = common::Bin::start(
        &["--webhook-url", "https://bot.example.org/h"],
        &[
            ("TELEGRAM_BOT_TOKEN", FakeApi::TOKEN),
            ("TELEGRAM_WEBHOOK_SECRET", "has spaces"),
        ],
    );
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(
        out.contains("TELEGRAM_WEBHOOK_SECRET") && !out.contains("has spaces"),
        "{out}"
    );
}

#[test]
fn a_webhook_telegram_refuses_exits_2_naming_why() {
    let api = FakeApi::start();
    let refusal = "Bad Request: bad webhook: Failed to resolve host";
    api.fault("setWebhook", common::api_error(400, refusal, None, None), 1);
    let bin = common::Bin::against(&api, &["--webhook-url", "http://bot.test/hook"], "info");
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(
        out.contains("refused the webhook") && out.contains("Failed to resolve host"),
        "{out}"
    );
}

#[cfg(feature = "tls")]
/// A self-signed certificate for `localhost` and its key, as PEM files in
/// a directory of their own.
fn self_signed(name: &str) -> smolgram::config::TlsFiles {
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "smolgram-webhook-tls-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let files = smolgram::config::TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, pair.cert.pem()).unwrap();
    std::fs::write(&files.key, pair.signing_key.serialize_pem()).unwrap();
    files
}

#[cfg(feature = "tls")]
/// `raw` over https to `addr`, trusting only `cert`; the whole answer.
fn exchange_tls(addr: SocketAddr, cert: &std::path::Path, raw: &[u8]) -> String {
    let pin = smolgram::PinnedCert::load(cert).unwrap();
    let mut conn = pin
        .connect(addr, DEADLINE)
        .expect("a TLS handshake with the listener");
    conn.write_all(raw).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[cfg(feature = "tls")]
#[test]
fn tls_mode_serves_the_route_and_health_over_https_and_uploads_its_self_signed_certificate() {
    let api = FakeApi::start();
    let files = self_signed("route");
    let mut config = TestBot::webhook_config(&api);
    config.webhook.as_mut().unwrap().url = "https://bot.test:8443/telegram".into();
    config.tls = Some(files.clone());
    let bot = TestBot::start_with(&api, config, echo).unwrap();
    let addr = bot.health_addr().unwrap();
    let webhook = api.webhook().unwrap();
    let pem = std::fs::read(&files.cert).unwrap();
    assert_eq!(
        webhook.certificate.as_deref(),
        Some(&pem[..]),
        "uploaded as is"
    );
    let info = &api.calls("setWebhook")[0];
    assert_eq!(info["url"], "https://bot.test:8443/telegram");

    let health = exchange_tls(
        addr,
        &files.cert,
        b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&health), 200, "{health}");
    let secret = webhook.secret_token.unwrap();
    let update = r#"{"update_id":3,"message":{"message_id":1,"date":0,"chat":{"id":9,"type":"private"},"from":{"id":9,"is_bot":false,"first_name":"a"},"text":"over tls"}}"#;
    let answer = exchange_tls(addr, &files.cert, &post("/telegram", Some(&secret), update));
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(api.sent()[0].text, "over tls");
    // Plain http to the https listener gets no answer.
    let plain = exchange(addr, b"GET /healthz HTTP/1.1\r\n\r\n");
    assert!(!plain.starts_with("HTTP/1.1 200"), "{plain}");
    // And it still serves https afterwards.
    let again = exchange_tls(
        addr,
        &files.cert,
        b"GET /readyz HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&again), 200, "{again}");
    bot.stop().unwrap();
    let _ = std::fs::remove_dir_all(files.cert.parent().unwrap());
}

#[cfg(feature = "tls")]
#[test]
fn the_binary_serves_https_and_its_healthcheck_probes_it_with_the_same_flags() {
    let api = FakeApi::start();
    let files = self_signed("binary");
    let (cert, key) = (
        files.cert.display().to_string(),
        files.key.display().to_string(),
    );
    let bin = common::Bin::polling(&api, &["--tls-cert", &cert, "--tls-key", &key], "info");
    let addr = bin.health_addr().to_string();
    let probe = |extra: &[&str]| {
        let args = [&["healthcheck", "--health-addr", &addr][..], extra].concat();
        common::Bin::start(&args, &[]).wait_exit(DEADLINE)
    };
    let (status, out) = probe(&["--tls-cert", &cert, "--tls-key", &key]);
    assert_eq!(status.code(), Some(0), "{out}");
    let (status, out) = probe(&[]);
    assert_eq!(
        status.code(),
        Some(1),
        "plain http is no 200 from an https listener: {out}"
    );
    bin.signal("TERM");
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{out}");
    // A key that is not the certificate's: one line, exit 2, before anything runs.
    let other = self_signed("other");
    let wrong = other.key.display().to_string();
    let bin = common::Bin::against(&api, &["--tls-cert", &cert, "--tls-key", &wrong], "info");
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("does not match"), "{out}");
    for dir in [&files, &other] {
        let _ = std::fs::remove_dir_all(dir.cert.parent().unwrap());
    }
}
