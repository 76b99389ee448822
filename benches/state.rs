//! The state stores side by side: the sign-up example (`examples/signup.rs`,
//! built with `cargo build --release --example signup`) against the
//! testkit's fake Bot API, once per store in the same run, the order turned
//! every run (see: #15).
//!
//! Each round starts the bot with `--state memory`, `--state file:…` (in
//! `target/bench-state/`, on the disk, not a tmpfs) or `--state redis://…`
//! (a `redis-server` of its own on 127.0.0.1, no persistence), then:
//!
//! - **burst**: N texts over M chats, each chat going through the form
//!   (`/start`, a name, an age, a city: 5 state writes per 4 updates),
//!   timed from the first push to the Nth reply: updates per second, peak
//!   RSS (`VmHWM`), and the bytes the bot made the disk write
//!   (`write_bytes` of `/proc/PID/io`, after a wait for the last batch),
//!   per 1,000 state writes;
//! - **SIGKILL**: 400 more updates, the bot killed mid-way, started again on
//!   the same store: the time from the spawn to its first `getUpdates` (the
//!   store opened, a file replayed), and whether every update is answered
//!   and confirmed afterwards (the bot polls with `--poll-timeout 1`, so
//!   the last offset goes out soon).
//!
//! `cargo bench --bench state -- [--bin PATH] [--updates N] [--chats M]
//! [--runs R] [--stores memory,file,redis]`. Figures are comparable within
//! a run only: the machine is shared.

#![forbid(unsafe_code)]

#[path = "throughput/process.rs"]
#[allow(
    dead_code,
    reason = "shared with the throughput bench; this one uses a part"
)]
mod process;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use smolgram::api::types::ChatId;
use smolgram::testkit::FakeApi;

const STARTUP_DEADLINE: Duration = Duration::from_secs(10);
const BURST_DEADLINE: Duration = Duration::from_secs(300);
/// A form: what each chat sends, in turn, and what it gets back.
const FORM: [&str; 4] = ["/start", "Ann", "30", "Oslo"];
/// State writes per form: its three steps, and at its end the profile
/// set and the step cleared.
const WRITES_PER_FORM: usize = 5;
const KILL_UPDATES: usize = 400;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Options {
    bin: PathBuf,
    updates: usize,
    chats: usize,
    runs: usize,
    stores: Vec<String>,
}

struct Round {
    startup_ms: f64,
    per_sec: f64,
    peak_kib: u64,
    disk_bytes: u64,
    writes: usize,
    restart_ms: f64,
    answered_after_kill: bool,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("state: skipped (not run by `cargo bench`)");
        return ExitCode::SUCCESS;
    }
    let opts = match parse(&args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("state bench: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "smolgram state stores: {} ({} updates over {} chats, {} run(s))",
        opts.bin.display(),
        opts.updates,
        opts.chats,
        opts.runs
    );
    println!("run store   startup  upd/s  peak RSS  disk B/1k writes  restart after SIGKILL");
    let mut clean = true;
    for run in 1..=opts.runs {
        let mut stores = opts.stores.clone();
        let turn = (run - 1) % stores.len();
        stores.rotate_left(turn);
        for store in &stores {
            match round(&opts, store) {
                Ok(r) => {
                    clean &= r.answered_after_kill;
                    println!(
                        "{run:>3} {store:<7} {:>5.1} ms {:>6.0} {:>6.1} MiB {:>17.0}  {:.1} ms{}",
                        r.startup_ms,
                        r.per_sec,
                        r.peak_kib as f64 / 1024.0,
                        r.disk_bytes as f64 * 1000.0 / r.writes as f64,
                        r.restart_ms,
                        if r.answered_after_kill {
                            ""
                        } else {
                            ", NOT all answered"
                        }
                    );
                }
                Err(e) => {
                    eprintln!("state bench: run {run} {store}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        bin: PathBuf::from("target/release/examples/signup"),
        updates: 10_000,
        chats: 100,
        runs: 1,
        stores: vec!["memory".into(), "file".into(), "redis".into()],
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().cloned().ok_or(format!("{arg} needs a value"));
        let count = |v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{arg}: not a number: {v}"))
        };
        match arg.as_str() {
            "--bench" => {}
            "--bin" => opts.bin = value()?.into(),
            "--updates" => opts.updates = count(value()?)?,
            "--chats" => opts.chats = count(value()?)?,
            "--runs" => opts.runs = count(value()?)?,
            "--stores" => opts.stores = value()?.split(',').map(str::to_owned).collect(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !opts.bin.is_file() {
        return Err(format!(
            "no binary at {}; build it: cargo build --release --example signup",
            opts.bin.display()
        ));
    }
    if opts.updates % (FORM.len() * opts.chats) != 0 {
        return Err("--updates must be a multiple of 4 × --chats (whole forms)".into());
    }
    Ok(opts)
}

/// One store's round: the burst, then a SIGKILL and a restart.
fn round(opts: &Options, store: &str) -> Result<Round, String> {
    let dir = PathBuf::from("target/bench-state");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let redis = (store == "redis").then(|| Redis::start(&dir)).transpose()?;
    let spec = match store {
        "memory" => "memory".to_owned(),
        "file" => {
            let path = dir.join("signup.state");
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(path.with_extension("state.lock"));
            format!("file:{}", path.display())
        }
        "redis" => format!("redis://127.0.0.1:{}", redis.as_ref().map_or(0, |r| r.port)),
        other => return Err(format!("no store {other:?}")),
    };
    let api = FakeApi::start();
    let (bot, startup) = start(&opts.bin, &api, &spec)?;
    let pid = bot.child.id();
    let io_before = write_bytes(pid)?;
    let started = Instant::now();
    push_forms(&api, opts.chats, opts.updates);
    wait(&api, "the burst's replies", |api| {
        api.sent_count() >= opts.updates
    })?;
    let burst = started.elapsed();
    // The file store's last batch goes to disk within its 1 s interval.
    thread::sleep(Duration::from_millis(1500));
    let disk_bytes = write_bytes(pid)? - io_before;
    let peak_kib = process::status_kib(pid, "VmHWM")?;
    check_replies(&api, opts.chats, opts.updates / opts.chats)?;

    // SIGKILL amid more forms, then the same store again.
    let before = api.sent_count();
    push_forms(&api, opts.chats, KILL_UPDATES);
    wait(&api, "some replies", |api| {
        api.sent_count() >= before + KILL_UPDATES / 3
    })?;
    drop(bot); // SIGKILL
    let (bot, restart) = start(&opts.bin, &api, &spec)?;
    let total = opts.updates + KILL_UPDATES;
    // Confirmed: fetched, handled and passed by an offset (a 1 s long poll
    // sends the last one soon).
    let answered = wait(&api, "every update answered after the restart", |api| {
        api.sent_count() >= total && api.pending() == 0
    });
    bot.terminate()?;
    let pending = api.pending();
    if let Err(e) = &answered {
        eprintln!("{store}: {e}: {} of {total} answered", api.sent_count());
    }
    if pending > 0 {
        eprintln!("{store}: {pending} updates unconfirmed after the stop");
    }
    let answered = answered.is_ok() && pending == 0;
    drop(redis);
    Ok(Round {
        startup_ms: ms(startup),
        per_sec: opts.updates as f64 / burst.as_secs_f64(),
        peak_kib,
        disk_bytes,
        writes: opts.updates / FORM.len() * WRITES_PER_FORM,
        restart_ms: ms(restart),
        answered_after_kill: answered,
    })
}

/// The bot on `spec`, and the time from its spawn to its first `getUpdates`.
fn start(bin: &Path, api: &FakeApi, spec: &str) -> Result<(process::Bot, Duration), String> {
    let polls = api.calls("getUpdates").len();
    let spawned = Instant::now();
    let bot = process::Bot::spawn(bin, api, &["--state", spec, "--poll-timeout", "1"])?;
    let deadline = spawned + STARTUP_DEADLINE;
    while api.calls("getUpdates").len() == polls {
        if Instant::now() > deadline {
            return Err(format!(
                "no getUpdates within {STARTUP_DEADLINE:?}{}",
                bot.log()
            ));
        }
        thread::sleep(Duration::from_micros(200));
    }
    Ok((bot, spawned.elapsed()))
}

/// `updates` texts, round robin over `chats`, each chat going through the form.
fn push_forms(api: &FakeApi, chats: usize, updates: usize) {
    for i in 0..updates {
        let chat = ChatId(1 + (i % chats) as i64);
        api.push_text(chat, FORM[(i / chats) % FORM.len()]);
    }
}

/// Each chat's replies: `forms` whole forms, in order.
fn check_replies(api: &FakeApi, chats: usize, per_chat: usize) -> Result<(), String> {
    let expected = [
        "What is your name?",
        "How old are you?",
        "Which city do you live in?",
        "Thanks, Ann (30) from Oslo!",
    ];
    for chat in 1..=chats as i64 {
        let texts: Vec<String> = (api.sent().into_iter())
            .filter(|s| s.chat == ChatId(chat))
            .map(|s| s.text)
            .collect();
        let wanted: Vec<&str> = (0..per_chat).map(|i| expected[i % 4]).collect();
        if texts != wanted {
            return Err(format!(
                "chat {chat}: replies {texts:?}, expected {wanted:?}"
            ));
        }
    }
    Ok(())
}

fn wait(api: &FakeApi, what: &str, mut done: impl FnMut(&FakeApi) -> bool) -> Result<(), String> {
    if api.wait_for(BURST_DEADLINE, &mut done) {
        Ok(())
    } else {
        Err(format!("{what}: not within {BURST_DEADLINE:?}"))
    }
}

/// `write_bytes` of `/proc/PID/io`: what the process made the disk write.
fn write_bytes(pid: u32) -> Result<u64, String> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).map_err(|e| e.to_string())?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no write_bytes in /proc/PID/io".into())
}

/// A `redis-server` of the round's own on 127.0.0.1, without persistence;
/// killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(dir: &Path) -> Result<Redis, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e} (apt-get install redis-server)"))?;
        let deadline = Instant::now() + STARTUP_DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not listen".into());
            }
            thread::sleep(Duration::from_millis(5));
        }
        Ok(Redis { child, port })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
