//! The image under podman with a handler in flight at `podman stop`: the
//! real bot (not the demo) in the container, polling the testkit's fake Bot
//! API on the host. The container shares the host's network (`--network
//! host`), because the fake listens on the host's loopback only.
//!
//! Ignored: it needs podman and a built image. scripts/image-test builds
//! one and runs this with `SMOLGRAM_IMAGE` (and `PODMAN_RUNTIME`) set.

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

#[test]
#[ignore = "needs podman and SMOLGRAM_IMAGE; scripts/image-test runs it"]
fn a_handler_in_flight_at_podman_stop_finishes_and_the_container_exits_0() {
    let image = std::env::var("SMOLGRAM_IMAGE").expect("SMOLGRAM_IMAGE names the image to run");
    let api = FakeApi::start();
    let url = api.url();
    let container = Container(format!("smolgram-image-handler-{}", std::process::id()));
    let name = container.0.as_str();
    // --no-health: on the host's network, 8080 may be somebody else's.
    let run = podman(&[
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
        "--api-url",
        &url,
        "--no-health",
    ]);
    assert!(run.status.success(), "podman run: {}", text(&run));
    let logs = || text(&podman(&["logs", name]));
    api.wait_until("the bot's first poll", DEADLINE, |api| {
        !api.calls("getUpdates").is_empty()
    });

    api.fault("sendMessage", Fault::Delay(SLOW_REPLY), 1);
    let id = api.push_text(CHAT, "slow one");
    api.wait_until("the send under way", DEADLINE, |api| {
        !api.calls("sendMessage").is_empty()
    });
    let asked = Instant::now();
    let stop = podman(&["stop", "-t", STOP_GRACE, name]);
    let took = asked.elapsed();
    assert!(stop.status.success(), "podman stop: {}", text(&stop));
    let code = podman(&["inspect", name, "--format", "{{.State.ExitCode}}"]);
    let code = String::from_utf8_lossy(&code.stdout).trim().to_owned();
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
