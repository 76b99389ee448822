//! `smolgram send` (#14): the release binary sends text (arguments or
//! stdin, split when long, or as a file), files and photos to one chat
//! against the testkit, and says how it went in its exit code.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{api_error, secret, DEADLINE};
use smolgram::api::types::ChatId;
use smolgram::testkit::FakeApi;

/// `smolgram send ARGS` against `api` with `stdin`; exit code and output.
fn send(api: &FakeApi, args: &[&str], stdin: &str) -> (Option<i32>, String) {
    send_to(&api.url(), FakeApi::TOKEN, args, stdin)
}

fn send_to(url: &str, token: &str, args: &[&str], stdin: &str) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smolgram"))
        .arg("send")
        .args(args)
        .env_clear()
        .env("TELEGRAM_BOT_TOKEN", token)
        .env("TELEGRAM_API_URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "send did not exit in {DEADLINE:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(secret()), "the token leaked: {text}");
    (out.status.code(), text)
}

#[test]
fn text_from_the_arguments_or_stdin_goes_to_the_chat_and_exits_0_quietly() {
    let api = FakeApi::start();
    let (code, out) = send(&api, &["--chat", "42", "backup", "done"], "");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out, "", "nothing printed on success");
    let (code, out) = send(
        &api,
        &["--chat", "42", "--silent", "--parse-mode", "html"],
        "<b>disk</b> 91%\n",
    );
    assert_eq!(code, Some(0), "{out}");
    let sent = api.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[0].chat, sent[0].text.as_str()),
        (ChatId(42), "backup done")
    );
    assert_eq!(sent[1].text, "<b>disk</b> 91%\n");
    assert_eq!(sent[1].params["parse_mode"], "HTML");
    assert_eq!(sent[1].params["disable_notification"], true);
}

#[test]
fn a_long_text_is_split_in_order_or_sent_as_one_file() {
    let api = FakeApi::start();
    let text: String = (0..900)
        .map(|i| format!("line {i:04} of the log\n"))
        .collect();
    assert!(text.len() > 2 * 4096);
    let (code, out) = send(&api, &["--chat", "7"], &text);
    assert_eq!(code, Some(0), "{out}");
    let parts: Vec<String> = api.sent().into_iter().map(|s| s.text).collect();
    assert!(
        parts.len() >= 3 && parts.iter().all(|p| p.len() <= 4096),
        "{}",
        parts.len()
    );
    assert_eq!(parts.concat(), text, "every part, in order, nothing lost");

    let api = FakeApi::start();
    let (code, out) = send(&api, &["--chat", "7", "--as-file"], &text);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(api.sent_count(), 0);
    let uploads = api.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].method, "senddocument");
    assert_eq!(uploads[0].file_name, "message.txt");
    assert_eq!(uploads[0].bytes.as_deref(), Some(text.as_bytes()));
    // Markup cannot be split safely: refused before anything is sent.
    let (code, out) = send(&api, &["--chat", "7", "--parse-mode", "html"], &text);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--as-file"), "{out}");
}

#[test]
fn files_and_photos_go_after_the_text_in_order() {
    let api = FakeApi::start();
    let dir = std::env::temp_dir().join(format!("smolgram-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (log, png) = (dir.join("job.log"), dir.join("graph.png"));
    std::fs::write(&log, b"exit 1\n").unwrap();
    std::fs::write(&png, b"\x89PNG fake").unwrap();
    let args = [
        "--chat",
        "5",
        "--file",
        log.to_str().unwrap(),
        "--photo",
        png.to_str().unwrap(),
        "job failed",
    ];
    let (code, out) = send(&api, &args, "");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(api.sent()[0].text, "job failed");
    let uploads: Vec<(String, String)> = api
        .uploads()
        .into_iter()
        .map(|u| (u.method, u.file_name))
        .collect();
    assert_eq!(
        uploads,
        [
            ("senddocument".into(), "job.log".into()),
            ("sendphoto".into(), "graph.png".into())
        ]
    );
    let (code, out) = send(&api, &["--chat", "5", "--file", "/nonexistent/x.log"], "");
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("/nonexistent/x.log"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn exit_codes_say_what_went_wrong_in_one_line() {
    let api = FakeApi::start();
    let (code, out) = send(&api, &["hello"], "");
    assert_eq!(code, Some(2), "no --chat: {out}");
    assert!(out.contains("--chat"), "{out}");
    let (code, out) = send(&api, &["--chat", "nobody", "hi"], "");
    assert_eq!(code, Some(2), "{out}");
    let (code, out) = send(&api, &["--chat", "1"], "  \n");
    assert_eq!(code, Some(2), "empty stdin: {out}");

    let wrong = "123456789:TESTKIT-wrong-token-000000000000000";
    let (code, out) = send_to(&api.url(), wrong, &["--chat", "1", "hi"], "");
    assert_eq!(code, Some(3), "{out}");
    assert!(!out.contains("wrong-token"), "{out}");

    api.fault(
        "sendMessage",
        api_error(400, "Bad Request: chat not found", None, None),
        1,
    );
    let (code, out) = send(&api, &["--chat", "1", "hi"], "");
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("chat not found"), "{out}");
    assert_eq!(out.trim().lines().count(), 1, "{out}");

    // 429 with retry_after: waited out and sent, as the bot does.
    api.fault(
        "sendMessage",
        api_error(429, "Too Many Requests: retry after 1", Some(1), None),
        1,
    );
    let (code, out) = send(&api, &["--chat", "1", "after the wait"], "");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(api.sent().last().unwrap().text, "after the wait");

    // Nobody listens there: retried until --timeout, then exit 5.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let started = std::time::Instant::now();
    let (code, out) = send_to(
        &url,
        FakeApi::TOKEN,
        &["--chat", "1", "--timeout", "2", "hi"],
        "",
    );
    assert_eq!(code, Some(5), "{out}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "bounded by --timeout"
    );
}
