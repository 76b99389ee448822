//! The image under podman with a handler in flight at `podman stop`, and in
//! webhook mode: the real bot (not the demo) in the container, against the
//! testkit's fake Bot API on the host. The container shares the host's network (`--network
//! host`), because the fake listens on the host's loopback only.
//!
//! Ignored: it needs podman and a built image. scripts/image-test builds
//! one and runs this with `SMOLGRAM_IMAGE` (and `PODMAN_RUNTIME`) set.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use smolgram::api::types::ChatId;
use smolgram::testkit::{FakeApi, Fault};

const CHAT: ChatId = ChatId(1001);
/// Generous: the arm64 image runs under qemu-user.
const DEADLINE: Duration = Duration::from_secs(30);
/// `podman stop`'s and `docker stop`'s default before SIGKILL.
const STOP_GRACE: &str = "10";
/// How long the handler's reply takes: the stop comes while it waits.
const SLOW_REPLY: Duration = Duration::from_secs(3);

fn podman(args: &[&str]) -> Output {
    let runtime = std::env::var("PODMAN_RUNTIME").unwrap_or_else(|_| "runc".into());
    Command::new("podman")
        .args(["--runtime", &runtime, "--cgroup-manager=cgroupfs"])
        .args(args)
        // The container's token comes from here (`-e TELEGRAM_BOT_TOKEN`),
        // never from the command line: the fake's, all the same.
        .env("TELEGRAM_BOT_TOKEN", FakeApi::TOKEN)
        .output()
        .unwrap_or_else(|e| panic!("podman cannot run ({e})"))
}

fn text(out: &Output) -> String {
    let all = [&out.stdout[..], &out.stderr[..]].concat();
    String::from_utf8_lossy(&all)
        .lines()
        // No systemd runs here to schedule podman's own health checks.
        .filter(|l| !l.contains("unable to get systemd connection"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Removes the container on every path out of the test, a failed assert too.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        podman(&["rm", "-f", "-t", "0", &self.0]);
    }
}

/// `podman run -d` of the image, as it ships but on the host's network,
/// with `args` after the image: the container removed on drop.
fn run_image(name: &str, args: &[&str]) -> Container {
    let image = std::env::var("SMOLGRAM_IMAGE").expect("SMOLGRAM_IMAGE names the image to run");
    let container = Container(name.to_owned());
    let mut run = vec![
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "all",
        "--security-opt",
        "no-new-privileges",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "-e",
        "TELEGRAM_BOT_TOKEN",
        &image,
    ];
    run.extend_from_slice(args);
    let out = podman(&run);
    assert!(out.status.success(), "podman run: {}", text(&out));
    container
}

/// `podman stop` (SIGTERM) of `name`: its exit code and how long it took.
fn stop(name: &str) -> (String, Duration) {
    let asked = Instant::now();
    let stop = podman(&["stop", "-t", STOP_GRACE, name]);
    let took = asked.elapsed();
    assert!(stop.status.success(), "podman stop: {}", text(&stop));
    let code = podman(&["inspect", name, "--format", "{{.State.ExitCode}}"]);
    (
        String::from_utf8_lossy(&code.stdout).trim().to_owned(),
        took,
    )
}

/// One `GET path` to `addr`: the status line.
fn status_of(addr: SocketAddr, path: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = TcpStream::connect_timeout(&addr, DEADLINE).expect("the port accepts");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

#[test]
#[ignore = "needs podman and SMOLGRAM_IMAGE; scripts/image-test runs it"]
fn in_webhook_mode_one_port_serves_the_webhook_and_the_health_routes() {
    let api = FakeApi::start();
    let url = api.url();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let addr = port.to_string();
    let name = format!("smolgram-image-webhook-{}", std::process::id());
    let container = run_image(
        &name,
        &[
            "--api-url",
            &url,
            "--webhook-url",
            "https://bot.test/telegram",
            "--health-addr",
            &addr,
        ],
    );
    let logs = || text(&podman(&["logs", &container.0]));
    api.wait_until("setWebhook", DEADLINE, |api| api.webhook().is_some());
    api.deliver_webhooks_to(port);
    let id = api.push_text(CHAT, "through the webhook");
    api.wait_until("the reply and the post's 200", DEADLINE, |api| {
        api.sent_to(CHAT) == 1 && api.webhook_answers().contains(&(id, 200))
    });
    assert_eq!(status_of(port, "/healthz"), "HTTP/1.1 200 OK", "{}", logs());
    assert_eq!(status_of(port, "/readyz"), "HTTP/1.1 200 OK", "{}", logs());
    assert!(
        api.calls("getUpdates").is_empty(),
        "no polling in webhook mode"
    );
    let (code, took) = stop(&container.0);
    let out = logs();
    println!("webhook mode in the image: exit code {code} after {took:.2?}");
    assert_eq!(code, "0", "{out}");
    assert!(out.contains("mode=webhook"), "{out}");
    assert!(!out.contains(FakeApi::TOKEN), "the token is never logged");
}

#[test]
#[ignore = "needs podman and SMOLGRAM_IMAGE; scripts/image-test runs it"]
fn a_handler_in_flight_at_podman_stop_finishes_and_the_container_exits_0() {
    let api = FakeApi::start();
    let url = api.url();
    let container = run_image(
        &format!("smolgram-image-handler-{}", std::process::id()),
        // --no-health: on the host's network, 8080 may be somebody else's.
        &["--api-url", &url, "--no-health"],
    );
    let name = container.0.as_str();
    let logs = || text(&podman(&["logs", name]));
    api.wait_until("the bot's first poll", DEADLINE, |api| {
        !api.calls("getUpdates").is_empty()
    });

    api.fault("sendMessage", Fault::Delay(SLOW_REPLY), 1);
    let id = api.push_text(CHAT, "slow one");
    api.wait_until("the send under way", DEADLINE, |api| {
        !api.calls("sendMessage").is_empty()
    });
    let (code, took) = stop(name);
    let out = logs();
    println!("podman stop with a handler in flight: exit code {code} after {took:.2?}");
    assert_eq!(code, "0", "{out}");
    assert!(took < Duration::from_secs(10), "{took:?}: {out}");
    assert_eq!(api.sent_to(CHAT), 1, "the handler finished: {out}");
    assert!(
        api.confirmed_offset() > Some(id),
        "its update is confirmed: {out}"
    );
    assert!(
        out.contains("stopping signal=SIGTERM") && out.contains("handled=1 failed=0"),
        "{out}"
    );
    assert!(out.contains("unfinished=0"), "{out}");
    assert!(!out.contains(FakeApi::TOKEN), "the token is never logged");
}
