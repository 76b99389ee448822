//! The real binary against the testkit's fake Bot API: the built-in bot's
//! commands, health, signals, exit codes, and the token never printed.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{http_get, secret, Bin, DEADLINE};
use smolgram::api::types::ChatId;
use smolgram::testkit::{FakeApi, Fault};

const CHAT: ChatId = ChatId(4242);

/// Sends `text` as the user and returns the bot's replies to it.
fn say(api: &FakeApi, text: &str, replies: usize) -> Vec<smolgram::testkit::Sent> {
    let before = api.sent_to(CHAT);
    api.push_text(CHAT, text);
    api.wait_until(text, DEADLINE, |api| api.sent_to(CHAT) >= before + replies);
    api.sent()
        .into_iter()
        .filter(|s| s.chat == CHAT)
        .skip(before)
        .collect()
}

#[test]
fn built_in_bot_answers_every_command_and_the_button() {
    let api = FakeApi::start();
    let bin = Bin::against(&api, &[], "info");

    let help = say(&api, "/start", 1);
    assert!(help[0].text.contains("/ping"), "{}", help[0].text);
    assert_eq!(
        help[0].params["reply_markup"]["inline_keyboard"][0][0]["text"],
        "Ping"
    );
    assert_eq!(
        help[0].params["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        "ping"
    );
    assert_eq!(say(&api, "/help", 1)[0].text, help[0].text);

    assert_eq!(say(&api, "/ping", 1)[0].text, "pong");
    assert_eq!(say(&api, "/echo alpha beta 42", 1)[0].text, "alpha beta 42");
    assert_eq!(say(&api, "/echo", 1)[0].text, "usage: /echo TEXT");
    assert_eq!(say(&api, "/ping@smolgram_test_bot", 1)[0].text, "pong");

    let echo = say(&api, "hello there", 1);
    assert_eq!(echo[0].text, "hello there");
    assert!(
        echo[0].reply_to.is_some(),
        "an echo is a reply to the message"
    );

    let before = api.sent_to(CHAT);
    api.push_callback(CHAT, "ping");
    api.wait_until("the button press answered", DEADLINE, |api| {
        api.calls("answerCallbackQuery").len() == 1 && api.sent_to(CHAT) == before + 1
    });
    assert_eq!(api.sent().last().unwrap().text, "pong");
    assert!(api.calls("answerCallbackQuery")[0]["callback_query_id"].is_string());

    let (status, _) = {
        bin.signal("TERM");
        bin.wait_exit(DEADLINE)
    };
    assert_eq!(status.code(), Some(0));
}

/// `/metrics` names Bot API methods and `/readyz` gives the poller's last
/// error as its reason, so both are asked after calls that succeeded and
/// calls that failed; the log says a line per request at debug.
#[test]
fn health_answers_and_the_output_never_carry_the_token() {
    let api = FakeApi::start();
    let bin = Bin::polling(&api, &[], "debug");
    let addr = bin.health_addr();
    assert!(http_get(addr, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(http_get(addr, "/nope").starts_with("HTTP/1.1 404"));
    assert_eq!(say(&api, "/ping", 1)[0].text, "pong");
    let mut answers = vec![
        http_get(addr, "/healthz"),
        http_get(addr, "/readyz"),
        http_get(addr, "/metrics"),
    ];
    assert!(answers[1].starts_with("HTTP/1.1 200"), "{}", answers[1]);
    // A failed send and a conflict: errors reach the metrics and the readiness reason.
    api.fault(
        "sendMessage",
        common::api_error(400, "Bad Request: chat not found", None, None),
        1,
    );
    api.push_text(CHAT, "/ping");
    api.wait_until("the failed send", DEADLINE, |api| {
        api.unserved_faults("sendMessage") == 0
    });
    let conflict = "Conflict: terminated by other getUpdates request";
    api.fault(
        "getUpdates",
        common::api_error(409, conflict, None, None),
        1000,
    );
    // The second 409 goes to a retry: the bot took in the first.
    api.wait_until("a second 409", DEADLINE, |api| {
        api.unserved_faults("getUpdates") <= 1000 - 2
    });
    let readyz = http_get(addr, "/readyz");
    assert!(
        readyz.starts_with("HTTP/1.1 503") && readyz.contains("409"),
        "{readyz}"
    );
    let metrics = http_get(addr, "/metrics");
    for family in [
        "smolgram_api_failed_total 1\n",
        "smolgram_poll_errors_total{kind=\"conflict\"} ",
    ] {
        assert!(metrics.contains(family), "{family} missing:\n{metrics}");
    }
    assert!(
        !metrics.contains("smolgram_poll_errors_total{kind=\"conflict\"} 0\n"),
        "the conflict is counted:\n{metrics}"
    );
    answers.extend([readyz, metrics]);
    for answer in &answers {
        assert!(!answer.contains(secret()), "the token leaked:\n{answer}");
    }
    bin.signal("TERM");
    let (_, out) = bin.wait_exit(DEADLINE);
    assert!(out.contains("DEBUG"), "debug logging was on: {out}");
    assert!(
        out.contains("getUpdates") && out.contains("sendMessage"),
        "the run made API calls: {out}"
    );
    assert!(!out.contains(secret()), "the token leaked:\n{out}");
}

#[test]
fn busy_health_port_keeps_the_bot_answering_and_is_taken_when_free() {
    let occupier = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = occupier.local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let api = FakeApi::start();
    let url = api.url();
    let bin = Bin::start(
        &["--health-addr", &addr],
        &[
            ("TELEGRAM_BOT_TOKEN", FakeApi::TOKEN),
            ("TELEGRAM_API_URL", &url),
            ("RUST_LOG", "info"),
        ],
    );
    bin.wait_for_output("the busy-port warning", "health port busy");
    assert_eq!(
        say(&api, "/ping", 1)[0].text,
        "pong",
        "a busy port never stops the bot"
    );

    drop(occupier);
    bin.wait_for_output(
        "the port taken once free",
        &format!("health listening addr={addr}"),
    );
    assert!(http_get(addr.parse().unwrap(), "/healthz").starts_with("HTTP/1.1 200"));
    let out = bin.output();
    assert_eq!(
        out.matches("health port busy").count(),
        1,
        "warned once, not per retry:\n{out}"
    );
}

#[test]
fn busy_health_port_with_require_health_exits_2_with_one_line() {
    let occupier = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = occupier.local_addr().unwrap().to_string();
    let api = FakeApi::start();
    let url = api.url();
    let bin = Bin::start(
        &["--health-addr", &addr, "--require-health"],
        &[
            ("TELEGRAM_BOT_TOKEN", FakeApi::TOKEN),
            ("TELEGRAM_API_URL", &url),
        ],
    );
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(2), "{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].contains(&addr) && errors[0].contains("in use"),
        "{out}"
    );
    assert!(api.calls("getUpdates").is_empty(), "nothing polled");
}

#[test]
fn sigterm_lets_the_handler_in_flight_finish_and_confirms_it() {
    let api = FakeApi::start();
    let bin = Bin::polling(&api, &[], "info");
    // The reply takes a second, so the handler is in flight when SIGTERM comes.
    api.fault("sendMessage", Fault::Delay(Duration::from_millis(1000)), 1);
    let id = api.push_text(CHAT, "slow one");
    api.wait_until("the send under way", DEADLINE, |api| {
        !api.calls("sendMessage").is_empty()
    });
    bin.signal("TERM");
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{out}");
    assert_eq!(api.sent_to(CHAT), 1, "the handler finished: {out}");
    assert!(
        api.confirmed_offset() > Some(id),
        "its update is confirmed: {out}"
    );
    assert_eq!(api.pending(), 0, "nothing left to deliver again");
    assert!(
        out.contains("handled=1") && out.contains("unfinished=0"),
        "{out}"
    );
}

#[test]
fn a_second_signal_exits_at_once_with_143() {
    let api = FakeApi::start();
    let bin = Bin::polling(&api, &["--drain-timeout", "60"], "info");
    api.fault("sendMessage", Fault::Delay(Duration::from_secs(30)), 1);
    let id = api.push_text(CHAT, "stuck");
    api.wait_until("the send under way", DEADLINE, |api| {
        !api.calls("sendMessage").is_empty()
    });
    bin.signal("TERM");
    bin.wait_for_output("the drain", "draining");
    bin.signal("TERM");
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(143), "{out}");
    assert!(
        api.confirmed_offset().is_none_or(|offset| offset <= id),
        "unfinished update not confirmed"
    );
}

#[test]
fn bad_configuration_exits_2_with_one_line_and_no_secret() {
    let secret_token = "123456:SECRETsecretSECRETsecret";
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        (&[], &[], "TELEGRAM_BOT_TOKEN is not set"),
        (
            &[],
            &[("TELEGRAM_BOT_TOKEN", "SECRETwithoutcolon")],
            "TELEGRAM_BOT_TOKEN",
        ),
        (
            &["--health-addr", "localhost"],
            &[("TELEGRAM_BOT_TOKEN", secret_token)],
            "--health-addr",
        ),
        (
            &[],
            &[
                ("TELEGRAM_BOT_TOKEN", secret_token),
                ("TELEGRAM_API_URL", "api.telegram.org"),
            ],
            "TELEGRAM_API_URL",
        ),
        (
            &["--frobnicate"],
            &[("TELEGRAM_BOT_TOKEN", secret_token)],
            "--frobnicate",
        ),
        (
            &[],
            &[("TELEGRAM_BOT_TOKEN", secret_token), ("PORT", "eighty")],
            "PORT",
        ),
    ];
    for (args, env, expected) in cases {
        let (status, out) = Bin::start(args, env).wait_exit(DEADLINE);
        assert_eq!(status.code(), Some(2), "{args:?} {env:?}: {out}");
        assert_eq!(out.lines().count(), 1, "one line: {out}");
        assert!(out.contains(expected), "{out}");
        assert!(
            !out.contains("SECRET") && !out.contains("panicked") && !out.contains("RUST_BACKTRACE"),
            "{out}"
        );
    }
}

#[test]
fn rejected_token_exits_3_without_printing_it() {
    let api = FakeApi::start();
    let url = api.url();
    let wrong = "987654321:SECRETwrongSECRETwrongSECRET";
    let bin = Bin::start(
        &["--no-health"],
        &[
            ("TELEGRAM_BOT_TOKEN", wrong),
            ("TELEGRAM_API_URL", &url),
            ("RUST_LOG", "trace"),
        ],
    );
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(3), "{out}");
    assert!(out.contains("401"), "{out}");
    assert!(!out.contains("SECRET"), "{out}");
}

#[test]
fn token_never_appears_in_any_output_even_at_trace() {
    let api = FakeApi::start();
    let bin = Bin::against(&api, &[], "trace");
    say(&api, "/start", 1);
    say(&api, "hello", 1);
    // Failures print errors: none of them may carry the URL.
    api.fault(
        "getUpdates",
        Fault::Status {
            code: 502,
            body: "<html>bad gateway</html>".into(),
        },
        1,
    );
    api.fault(
        "sendMessage",
        Fault::Api {
            code: 400,
            description: "Bad Request: chat not found".into(),
            retry_after: None,
            migrate_to_chat_id: None,
        },
        1,
    );
    api.fault("getUpdates", Fault::Drop, 1);
    api.push_text(CHAT, "after faults");
    api.wait_until("faults used up", DEADLINE, |api| {
        api.calls("sendMessage").len() >= 3
            && api.unserved_faults("getUpdates") == 0
            && api.unserved_faults("sendMessage") == 0
    });
    say(&api, "/ping", 1);
    let addr = bin.health_addr();
    http_get(addr, "/healthz");
    bin.signal("TERM");
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(
        out.contains("TRACE") || out.contains("DEBUG"),
        "trace logging was on: {out}"
    );
    assert!(!out.contains(secret()), "the token leaked:\n{out}");
}

#[test]
fn unreachable_api_keeps_retrying_and_stops_cleanly() {
    // A port nobody listens on: bind one, then free it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let bin = Bin::start(
        &["--no-health"],
        &[
            ("TELEGRAM_BOT_TOKEN", FakeApi::TOKEN),
            ("TELEGRAM_API_URL", &url),
        ],
    );
    bin.wait_for_output("the unreachable warning", "not reachable");
    bin.signal("INT");
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{out}");
    assert_eq!(
        out.matches("not reachable").count(),
        1,
        "logged once, not per attempt:\n{out}"
    );
    assert!(!out.contains(secret()), "{out}");
}

#[test]
fn version_and_help_exit_0() {
    let (status, out) = Bin::start(&["--version"], &[]).wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0));
    assert!(
        out.starts_with(&format!("smolgram {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(out.contains("commit ") && out.contains("linux"), "{out}");
    let (status, out) = Bin::start(&["--help"], &[]).wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0));
    assert!(
        out.contains("--health-addr") && out.contains("TELEGRAM_BOT_TOKEN"),
        "{out}"
    );
}

#[test]
fn demo_runs_the_scripted_conversation_and_exits_0() {
    let (status, out) = Bin::start(&["demo"], &[]).wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{out}");
    for line in [
        "user > /start",
        "bot  > alpha beta 42",
        "bot  > pong",
        "[Ping]",
        "GET /healthz -> 200",
    ] {
        assert!(out.contains(line), "{line:?} missing:\n{out}");
    }
    assert!(!out.contains(secret()), "{out}");
}

#[test]
fn healthcheck_command_probes_the_local_endpoint() {
    let api = FakeApi::start();
    let bin = Bin::against(&api, &[], "info");
    let addr = bin.health_addr().to_string();
    let (status, _) = Bin::start(&["healthcheck", "--health-addr", &addr], &[]).wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0));
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (status, out) =
        Bin::start(&["healthcheck", "--health-addr", &free], &[]).wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(1), "{out}");
}

#[test]
fn readyz_follows_polling_and_metrics_are_prometheus_text() {
    let api = FakeApi::start();
    let bin = Bin::polling(&api, &[], "info");
    let addr = bin.health_addr();
    let ping = api.push_text(CHAT, "/ping");
    // Confirmed means finished, and counted.
    api.wait_until("the ping handled", DEADLINE, |api| {
        api.confirmed_offset() > Some(ping)
    });
    assert!(http_get(addr, "/readyz").starts_with("HTTP/1.1 200"));

    let metrics = http_get(addr, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for family in [
        "smolgram_updates_received_total 1",
        "smolgram_updates_handled_total 1",
        "smolgram_api_requests_total{method=\"sendMessage\",result=\"ok\"} 1",
        "smolgram_handler_duration_seconds_count 1",
        "smolgram_build_info{version=",
        "smolgram_ready 1",
    ] {
        assert!(metrics.contains(family), "{family} missing:\n{metrics}");
    }
    assert!(!metrics.contains(secret()));

    // Another instance takes the token over: the bot is deaf, and says so.
    let conflict = "Conflict: terminated by other getUpdates request";
    let fault = Fault::Api {
        code: 409,
        description: conflict.into(),
        retry_after: None,
        migrate_to_chat_id: None,
    };
    let polls = api.calls("getUpdates").len();
    api.fault("getUpdates", fault, 1000);
    api.push_text(CHAT, "wake the poll");
    // The waiting poll got the first 409 and two retries got more: the bot
    // took in a 409 before it asked again.
    api.wait_until("a second 409", DEADLINE, |api| {
        api.calls("getUpdates").len() >= polls + 2
    });
    assert!(api.unserved_faults("getUpdates") <= 1000 - 2);
    let readyz = http_get(addr, "/readyz");
    assert!(
        readyz.starts_with("HTTP/1.1 503") && readyz.contains("409"),
        "{readyz}"
    );
}

#[test]
fn a_thousand_slowloris_connections_neither_lock_out_probes_nor_stall_the_bot() {
    let api = FakeApi::start();
    let bin = Bin::against(&api, &[], "info");
    let addr = bin.health_addr();
    // 1,000 clients that start a request and never finish it (bounded: 1,000
    // sockets, loopback only, closed when this test ends).
    let mut idle = Vec::new();
    for _ in 0..1000 {
        let mut conn = std::net::TcpStream::connect_timeout(&addr, DEADLINE).unwrap();
        use std::io::Write;
        let _ = conn.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ");
        idle.push(conn);
    }
    let started = std::time::Instant::now();
    let answer = http_get(addr, "/healthz");
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        say(&api, "/ping", 1)[0].text,
        "pong",
        "the bot still answers"
    );
    let fds = std::fs::read_dir(format!("/proc/{}/fd", bin.pid()))
        .unwrap()
        .count();
    assert!(fds <= 64 + 32, "descriptors bounded: {fds}");
    println!("healthz with 1000 slowloris connections open: {took:?}, bot fds {fds}");
    drop(idle);
}

#[test]
fn sigterm_as_soon_as_the_health_port_is_up_is_a_clean_stop() {
    // Signal handlers are installed before the port is bound, and the demo's
    // script gives up quietly when the bot stops under it: exit 0 both ways.
    for args in [
        &["demo", "--serve", "--health-addr", "127.0.0.1:0"][..],
        &["--health-addr", "127.0.0.1:0"][..],
    ] {
        let api = FakeApi::start();
        let url = api.url();
        let bin = Bin::start(
            args,
            &[
                ("TELEGRAM_BOT_TOKEN", FakeApi::TOKEN),
                ("TELEGRAM_API_URL", &url),
                ("RUST_LOG", "info"),
            ],
        );
        bin.health_addr();
        bin.signal("TERM");
        let (status, out) = bin.wait_exit(Duration::from_secs(20));
        assert_eq!(status.code(), Some(0), "{args:?}: {out}");
    }
}

#[cfg(feature = "tls")]
/// A self-signed certificate for `localhost` (PEM) and a TLS server thread
/// on 127.0.0.1 that answers `connections` connections with a 200 and
/// `close_notify`; the certificate's file and the server's address.
fn tls_healthz(
    name: &str,
    connections: usize,
) -> (std::path::PathBuf, std::path::PathBuf, std::net::SocketAddr) {
    use rustls::pki_types::{pem::PemObject, PrivateKeyDer};
    use std::io::{Read, Write};
    use std::sync::Arc;

    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("smolgram-bin-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    let key_file = dir.join("key.pem");
    std::fs::write(&key_file, pair.signing_key.serialize_pem()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(pair.signing_key.serialize_pem().as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pair.cert.der().clone()], key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((sock, _)) = listener.accept() else {
                return;
            };
            sock.set_read_timeout(Some(DEADLINE)).unwrap();
            let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, sock);
            // A refused handshake fails this read; the next connection follows.
            let mut head = [0u8; 1024];
            if tls.read(&mut head).is_ok() {
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
    });
    (cert, key_file, addr)
}

#[cfg(feature = "tls")]
fn path(file: &std::path::Path) -> String {
    file.display().to_string()
}

#[cfg(feature = "tls")]
#[test]
fn healthcheck_with_tls_cert_probes_over_https_and_trusts_only_that_certificate() {
    let (cert, key, addr) = tls_healthz("pinned", 3);
    let (other, other_key, _) = tls_healthz("other", 0);
    let [addr, cert, key, other, other_key] = [
        addr.to_string(),
        path(&cert),
        path(&key),
        path(&other),
        path(&other_key),
    ];
    let probe = |env: &[(&str, &str)], extra: &[&str]| {
        let args = [&["healthcheck", "--health-addr", &addr][..], extra].concat();
        Bin::start(&args, env).wait_exit(DEADLINE)
    };
    let (status, out) = probe(&[], &["--tls-cert", &cert, "--tls-key", &key]);
    assert_eq!(status.code(), Some(0), "{out}");
    let env = [
        ("TELEGRAM_TLS_CERT", &*other),
        ("TELEGRAM_TLS_KEY", &*other_key),
    ];
    let (status, out) = probe(&env, &[]);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains(&format!("https://{addr}/healthz")), "{out}");
    assert!(out.contains(&format!("not the one in {other}")), "{out}");
    // Plain http to a TLS port is no 200 either.
    let (status, out) = probe(&[], &[]);
    assert_eq!(status.code(), Some(1), "{out}");
    for file in [cert, other] {
        let _ = std::fs::remove_dir_all(std::path::Path::new(&file).parent().unwrap());
    }
}
