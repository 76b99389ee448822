//! A broadcast to N chats against the testkit's fake Bot API, the bot in
//! this process on a `FileStore` (in `target/bench-broadcast/`, on the
//! disk, not a tmpfs), as a handler starts it (see: #16):
//!
//! - **limits on** (Telegram's 30/s): the wall time from the command to
//!   the last chat's message, against the floor of N/30 s (10,000 chats:
//!   333 s, so `--chats` scales it down);
//! - **limits off**: messages per second and the CPU time the bot's side
//!   took (its executor thread, io threads and the store's writer, from
//!   `/proc/self/task/*/stat`; the fake's own thread is left out), per
//!   1,000 messages. Each message costs a durable write (an fsync) first.
//!
//! Both count duplicates and lost chats from `FakeApi::sent()`.
//!
//! `cargo bench --bench broadcast -- [--chats N] [--runs R] [--limits on,off]`.
//! Figures are comparable within a run only: the machine is shared.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smolgram::api::generated::methods::SendMessage;
use smolgram::api::types::ChatId;
use smolgram::jobs::Broadcast;
use smolgram::state::{FileOptions, FileStore, Store};
use smolgram::testkit::{FakeApi, TestBot};
use smolgram::{Bot, RateLimits};

const ADMIN: ChatId = ChatId(1);
const FIRST: i64 = 1_000_000;
/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`, 100 on Linux).
const TICKS: f64 = 100.0;

struct Options {
    chats: usize,
    runs: usize,
    limits: Vec<bool>,
}

fn main() -> ExitCode {
    let opts = match parse() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("broadcast bench: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-broadcast");
    let mut failed = false;
    for run in 1..=opts.runs {
        for &limits in &opts.limits {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("the bench directory");
            failed |= !round(&opts, run, limits, &dir);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn parse() -> Result<Options, String> {
    let mut opts = Options {
        chats: 10_000,
        runs: 1,
        limits: vec![true, false],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} takes a value"));
        match arg.as_str() {
            "--chats" => opts.chats = value()?.parse().map_err(|e| format!("--chats: {e}"))?,
            "--runs" => opts.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--limits" => {
                opts.limits = value()?
                    .split(',')
                    .map(|v| match v {
                        "on" => Ok(true),
                        "off" => Ok(false),
                        other => Err(format!("--limits: on or off, not {other:?}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            // cargo bench passes --bench to every harness=false bench.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

/// One broadcast; `false` if a chat was lost or got it more than once.
fn round(opts: &Options, run: usize, limits: bool, dir: &std::path::Path) -> bool {
    let n = opts.chats;
    let api = FakeApi::start();
    let mut config = TestBot::config(&api);
    config.rate_limits = Some(if limits {
        RateLimits::DEFAULT
    } else {
        RateLimits::OFF
    });
    let path = dir.join("bot.state");
    let bot = TestBot::start_with_store(&api, config, move || {
        let store = FileStore::open(&path, FileOptions::default()).expect("the store opens");
        let bot = Bot::new().command("go", move |ctx| async move {
            let chats = (FIRST..FIRST + n as i64).map(ChatId);
            let news = SendMessage::new(ChatId(0), "news");
            ctx.broadcast(Broadcast::message(chats, &news)).await?;
            Ok(())
        });
        (bot, Rc::new(store) as Rc<dyn Store>)
    })
    .expect("the bot starts");
    let cpu_before = bot_cpu();
    let started = Instant::now();
    api.push_text(ADMIN, "/go");
    let deadline = Duration::from_secs_f64(n as f64 / 30.0 * 2.0 + 120.0);
    let done = api.wait_for(deadline, |api| api.sent_count() >= n);
    let took = started.elapsed();
    let cpu = bot_cpu() - cpu_before;
    bot.stop().expect("the bot stops");
    let mut counts: HashMap<ChatId, usize> = HashMap::new();
    for sent in api.sent() {
        *counts.entry(sent.chat).or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    let lost = n - counts.len();
    let secs = took.as_secs_f64();
    if limits {
        let floor = n as f64 / 30.0;
        println!(
            "run {run} limits=on  chats={n} wall={secs:.1}s floor={floor:.1}s ratio={:.3} duplicates={duplicates} lost={lost}{}",
            secs / floor,
            if done { "" } else { " (timed out)" }
        );
    } else {
        println!(
            "run {run} limits=off chats={n} wall={secs:.1}s rate={:.0}/s cpu={cpu:.2}s ({:.3} cpu-s per 1k, {:.0}% of a core) duplicates={duplicates} lost={lost}{}",
            n as f64 / secs,
            cpu / n as f64 * 1000.0,
            cpu / secs * 100.0,
            if done { "" } else { " (timed out)" }
        );
    }
    done && duplicates == 0 && lost == 0
}

/// CPU seconds the bot's threads took so far: its executor, its io
/// threads and its store's writer (not the fake's server thread).
fn bot_cpu() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state …`: comm may hold spaces, so split at the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        if !(comm.starts_with("smolgram-test-b")
            || comm.starts_with("smolgram-io")
            || comm.starts_with("smolgram-state"))
        {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15; `rest` starts at field 3.
        let field = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
        ticks += field(14).unwrap_or(0) + field(15).unwrap_or(0);
    }
    ticks as f64 / TICKS
}
