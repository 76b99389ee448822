//! What scheduled jobs cost a bot that waits: the CPU time and RSS of a
//! bot process with N jobs in code (`every 1d`, none due during the
//! window) beside one with none, against the testkit's fake Bot API, in the
//! same run, the order turned every run (see: #16).
//!
//! The bot is this bench's own binary, started again as a child
//! (`SMOLGRAM_BENCH_JOBS_API` set), so the fake's threads are not counted.
//! Each round waits for the child's first `getUpdates`, lets it settle for
//! a second, then reads its `utime + stime` over the window; the long poll
//! (25 s) does not answer within it.
//!
//! `cargo bench --bench jobs -- [--jobs N] [--secs S] [--runs R]`.

#![forbid(unsafe_code)]

#[path = "throughput/process.rs"]
#[allow(
    dead_code,
    reason = "shared with the throughput bench; this one uses a part"
)]
mod process;

use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use smolgram::api::Token;
use smolgram::config::Config;
use smolgram::jobs::Schedule;
use smolgram::testkit::FakeApi;
use smolgram::Bot;

/// For the shared `process` module.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

const CHILD_API: &str = "SMOLGRAM_BENCH_JOBS_API";
const CHILD_JOBS: &str = "SMOLGRAM_BENCH_JOBS_N";

fn main() -> ExitCode {
    if let (Ok(url), Ok(n)) = (std::env::var(CHILD_API), std::env::var(CHILD_JOBS)) {
        return child(&url, n.parse().unwrap_or(0));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("jobs: skipped (not run by `cargo bench`)");
        return ExitCode::SUCCESS;
    }
    let flag = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let (jobs, secs, runs) = (flag("--jobs", 1000), flag("--secs", 10), flag("--runs", 2));
    let hz = process::clock_ticks_per_second();
    let api = FakeApi::start();
    println!("idle bot with and without {jobs} scheduled jobs, {secs} s windows, {runs} run(s)");
    println!("run  jobs  CPU ms  CPU %    RSS");
    for run in 1..=runs {
        let mut order = [0, jobs];
        if run % 2 == 0 {
            order.reverse();
        }
        for n in order {
            match round(&api, n, Duration::from_secs(secs)) {
                Ok((ticks, rss_kib)) => {
                    let cpu_ms = ticks as f64 * 1e3 / hz;
                    println!(
                        "{run:>3} {n:>5} {cpu_ms:>7.0} {:>6.3} {:>5.1} MiB",
                        cpu_ms / (secs as f64 * 10.0),
                        rss_kib as f64 / 1024.0
                    );
                }
                Err(e) => {
                    eprintln!("jobs bench: run {run}, {n} jobs: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}

/// One child with `n` jobs: its CPU ticks over `window`, and its RSS.
fn round(api: &FakeApi, n: u64, window: Duration) -> Result<(u64, u64), String> {
    let polls = api.calls("getUpdates").len();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env(CHILD_API, api.url())
        .env(CHILD_JOBS, n.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let pid = child.id();
    let result = (|| {
        if !api.wait_for(STARTUP_DEADLINE, |api| {
            api.calls("getUpdates").len() > polls
        }) {
            return Err(format!(
                "no getUpdates after {:.0} ms",
                ms(started.elapsed())
            ));
        }
        thread::sleep(Duration::from_secs(1));
        let before = process::cpu_ticks(pid)?;
        thread::sleep(window);
        let after = process::cpu_ticks(pid)?;
        Ok((after - before, process::status_kib(pid, "VmRSS")?))
    })();
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = child.wait();
    result
}

/// The child: a bot with `n` daily jobs, until SIGTERM.
fn child(url: &str, n: u64) -> ExitCode {
    let Ok(token) = Token::parse(FakeApi::TOKEN) else {
        return ExitCode::FAILURE;
    };
    let mut config = Config::new(token);
    config.api_url = url.to_owned();
    config.health = None;
    let daily = Schedule::Every(Duration::from_secs(86_400));
    let bot = (0..n).fold(Bot::new(), |bot, i| {
        bot.job(&format!("job{i}"), daily.clone(), |_| async { Ok(()) })
    });
    match smolgram::run(bot, &config) {
        Ok(_) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
