//! What the integration tests share: the one [`DEADLINE`], running the real
//! `smolgram` binary (its output collected as it comes, waits with
//! deadlines, signals sent with `kill`), and arming faults on the testkit.

#![allow(dead_code, reason = "each test file uses a part of this module")]

pub mod signup;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use smolgram::api::types::ChatId;
use smolgram::testkit::{FakeApi, Fault};

/// A bot that echoes every text as a reply: what most tests drive.
pub fn echo() -> smolgram::Bot {
    smolgram::Bot::new().text(|ctx| async move {
        let text = ctx.text().unwrap_or_default().to_owned();
        ctx.reply(text).await?;
        Ok(())
    })
}

/// Every wait in these tests gives up after this long, unless it says why not.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A Bot API error as Telegram sends it: `error_code` `code` (and HTTP
/// status), `description`, and the `parameters` that are set.
pub fn api_error(
    code: u16,
    description: &str,
    retry_after: Option<u64>,
    migrate_to: Option<i64>,
) -> Fault {
    Fault::Api {
        code,
        description: description.into(),
        retry_after,
        migrate_to_chat_id: migrate_to,
    }
}

/// Fails the next `count` polls in a row with `fault`, the one waiting now
/// first (so the bot must be in its long poll: after `TestBot::start`, or
/// once the binary polled), then sends a text to `chat` and waits up to
/// `deadline` for the bot's reply, and for every one of the faults to have
/// been served: a poller that gives up after fewer failures never answers.
#[track_caller]
pub fn survive_poll_faults(
    api: &FakeApi,
    chat: ChatId,
    fault: Fault,
    count: usize,
    deadline: Duration,
) {
    let label = format!("the reply after {count} polls failed with {fault:?}");
    let replies = api.sent_to(chat);
    api.fault("getUpdates", fault, count);
    api.push_text(chat, "are you still there?");
    api.wait_until(&label, deadline, |api| {
        api.sent_to(chat) == replies + 1 && api.unserved_faults("getUpdates") == 0
    });
}

/// The texts sent to `chat` so far, in order.
pub fn texts_to(api: &FakeApi, chat: ChatId) -> Vec<String> {
    api.sent()
        .into_iter()
        .filter(|s| s.chat == chat)
        .map(|s| s.text)
        .collect()
}

/// The secret half of the fake's token: it must never be printed.
pub fn secret() -> &'static str {
    FakeApi::TOKEN.split_once(':').unwrap().1
}

/// A running `smolgram` process whose stdout and stderr are collected.
pub struct Bin {
    child: Child,
    output: Arc<(Mutex<String>, Condvar)>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Bin {
    /// Starts `smolgram args…` with exactly `env` (plus PATH) in its environment.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Bin {
        let mut child = Command::new(env!("CARGO_BIN_EXE_smolgram"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the smolgram binary starts");
        let output = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let readers = vec![
            collect(stdout, Arc::clone(&output)),
            collect(stderr, Arc::clone(&output)),
        ];
        Bin {
            child,
            output,
            readers,
        }
    }

    /// Starts the bot against `api` with the fake's token, health on a free port.
    pub fn against(api: &FakeApi, extra_args: &[&str], log: &str) -> Bin {
        let url = api.url();
        let mut args = vec!["--health-addr", "127.0.0.1:0"];
        args.extend_from_slice(extra_args);
        Bin::start(
            &args,
            &[
                ("TELEGRAM_BOT_TOKEN", FakeApi::TOKEN),
                ("TELEGRAM_API_URL", &url),
                ("RUST_LOG", log),
            ],
        )
    }

    /// [`Bin::against`], returning once the bot's first `getUpdates` reached
    /// `api`: its signal handlers are installed, and a fault armed now meets
    /// that waiting poll.
    #[track_caller]
    pub fn polling(api: &FakeApi, extra_args: &[&str], log: &str) -> Bin {
        let before = api.calls("getUpdates").len();
        let bin = Bin::against(api, extra_args, log);
        api.wait_until("the bot's first poll", DEADLINE, |api| {
            api.calls("getUpdates").len() > before
        });
        bin
    }

    /// Everything printed so far, stdout and stderr interleaved by line.
    pub fn output(&self) -> String {
        self.output.0.lock().unwrap().clone()
    }

    /// Waits until the output contains `needle`; panics with `label` at the deadline.
    pub fn wait_for_output(&self, label: &str, needle: &str) -> String {
        let until = Instant::now() + DEADLINE;
        let (text, changed) = &*self.output;
        let mut text = text.lock().unwrap();
        while !text.contains(needle) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("timed out waiting for {label}; output so far:\n{text}");
            }
            text = changed.wait_timeout(text, left).unwrap().0;
        }
        text.clone()
    }

    /// The health address the bot logged (`health listening addr=…`).
    pub fn health_addr(&self) -> std::net::SocketAddr {
        let out = self.wait_for_output("the health address", "health listening addr=");
        let at = out.find("health listening addr=").unwrap() + "health listening addr=".len();
        out[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) with `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit; panics at the deadline (after killing it).
    pub fn wait_exit(mut self, deadline: Duration) -> (ExitStatus, String) {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                for reader in self.readers.drain(..) {
                    reader.join().unwrap();
                }
                return (status, self.output());
            }
            if Instant::now() >= until {
                let _ = self.child.kill();
                panic!(
                    "smolgram did not exit within {deadline:?}; output:\n{}",
                    self.output()
                );
            }
            // The child has no handle to wait on with a deadline: poll its status.
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(
    stream: impl std::io::Read + Send + 'static,
    output: Arc<(Mutex<String>, Condvar)>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let (text, changed) = &*output;
            let mut text = text.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
            changed.notify_all();
        }
    })
}

/// One `GET path` to `addr`; the whole answer.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, DEADLINE).expect("health port accepts");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Waits until the `/metrics` of `addr` have the line `sample` exactly
/// (`name{labels} value`): a count the bot takes after the fake has seen
/// the request it counts.
#[track_caller]
pub fn wait_metric(addr: std::net::SocketAddr, sample: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let metrics = http_get(addr, "/metrics");
        if metrics.lines().any(|line| line == sample) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no `{sample}` in /metrics: {metrics}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Every record logged in this process, as smolgram's logger would let it
/// through (it drops `ureq`'s records above `info`: their URLs hold the
/// token; src/logger.rs, tested there).
struct Capture(Mutex<Vec<String>>);

static LINES: Capture = Capture(Mutex::new(Vec::new()));
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target().starts_with("ureq") && record.level() > log::Level::Info {
            return;
        }
        let line = format!("{} {} {}", record.level(), record.target(), record.args());
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
    fn flush(&self) {}
}

/// This test's log lines, at every level; held for the test's whole run,
/// so that tests which capture logs run one at a time.
pub struct Logs(#[allow(dead_code, reason = "held, not read")] MutexGuard<'static, ()>);

impl Logs {
    pub fn capture() -> Logs {
        // A test that failed while holding it must not fail the others.
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = log::set_logger(&LINES);
        log::set_max_level(log::LevelFilter::Trace);
        LINES
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Logs(turn)
    }

    pub fn lines(&self) -> Vec<String> {
        LINES
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Fails if any line holds the token's secret half, or if there is none.
    #[track_caller]
    pub fn assert_no_token(&self) {
        let lines = self.lines();
        assert!(!lines.is_empty(), "the capture saw nothing");
        for line in lines {
            assert!(!line.contains(secret()), "the token leaked: {line}");
        }
    }

    /// The lines that contain `needle`.
    pub fn matching(&self, needle: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect()
    }
}
