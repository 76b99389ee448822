//! The project's own benchmark: the release binary against the testkit's fake
//! Bot API, so anyone can reproduce the figures with `just bench`.
//!
//! Each round starts a [`FakeApi`] in this process (on its own thread) and the
//! `smolgram` binary as a child (`RUST_LOG=warn`, health on `127.0.0.1:0`),
//! in one of two modes (`--mode`; both by default):
//!
//! - **polling**: the bot long-polls `getUpdates`;
//! - **webhook**: `--webhook-url http://bot.test/hook
//!   --webhook-max-connections 40` (`--max-connections`), and the fake POSTs
//!   the updates to the bot's health listener as Telegram does (up to 40 at
//!   once, one chat's updates one at a time and in order), once
//!   `setWebhook` set it.
//!
//! A run is one round of each mode, the order swapped every run, so that the
//! two modes' figures come from the same minute of a noisy machine. A round
//! measures:
//!
//! - **startup**: spawn → the first `getUpdates` (polling) or `setWebhook`
//!   (webhook) the fake receives;
//! - **idle**, for 2 s after that: RSS (`VmRSS`), CPU and `getUpdates` or
//!   `getWebhookInfo` calls (a bot at rest should spend none of the three);
//! - **burst**: N text updates pushed over M chats (round robin), timed from
//!   the first push to the Nth reply: updates per second, the child's CPU
//!   seconds (`utime + stime` of `/proc/PID/stat`, all threads, and of its
//!   main thread, the executor that runs the listener and the handlers), the fake's
//!   server thread's CPU seconds (it serves the bot's calls and, in webhook
//!   mode, posts the updates: near 1 CPU-s per burst second, it is the
//!   bottleneck), peak RSS (sampled every 10 ms, and `VmHWM`), its most
//!   threads, and the latency of a `GET /healthz` (connect, request,
//!   answer) every few ms meanwhile (Linux updates `VmRSS` and `VmHWM`
//!   lazily, per thread, so the two peaks may differ by a few hundred KiB
//!   either way);
//! - **correctness** of the burst: every update answered exactly once (the
//!   echo bot replies with the update's text) and, per chat, replies in push
//!   order; in webhook mode also every post the fake made and its status:
//!   each update's post answered 200 once, and no other status;
//! - **stop**: SIGTERM → exit, its time and exit code.
//!
//! What it cannot measure: the fake Bot API, this driver's threads and the
//! bot share the machine's cores, so the figures are for the pair, and only
//! comparable on an otherwise idle machine (run nothing else meanwhile; run
//! twice before believing a difference under ~15 %). The fake answers over
//! loopback in microseconds: no network latency, no TLS, no Telegram rate
//! limits. Linux only (`/proc`).
//!
//! `cargo bench` passes `--bench`; without it (`cargo test --all-targets`
//! runs this file too) the benchmark is skipped.

#![forbid(unsafe_code)]

// A bench target's modules would be looked for beside it, where Cargo takes
// every file for a bench of its own.
#[path = "throughput/process.rs"]
mod process;
#[path = "throughput/report.rs"]
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use smolgram::api::types::ChatId;
use smolgram::testkit::FakeApi;

use process::{cpu_ticks, main_thread_ticks, status_kib, thread_ticks, Bot};

const USAGE: &str = "usage: cargo bench --bench throughput -- [--bin PATH] [--updates N] \
[--chats M] [--runs K] [--mode polling|webhook|both] [--max-connections C] \
[--health-probes MS (0: none)]";
const IDLE: Duration = Duration::from_secs(2);
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Polling,
    Webhook,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Polling => "polling",
            Mode::Webhook => "webhook",
        }
    }
}

struct Options {
    bin: PathBuf,
    updates: usize,
    chats: usize,
    runs: usize,
    modes: Vec<Mode>,
    /// The webhook round's `--webhook-max-connections`.
    max_connections: String,
    probe_every: Option<Duration>,
}

/// What one round measured.
#[derive(Default)]
struct Run {
    startup_ms: f64,
    idle_rss_mib: f64,
    idle_cpu_s: f64,
    idle_calls: usize,
    push_ms: f64,
    burst_s: f64,
    answered: usize,
    burst_cpu_s: f64,
    /// Of `burst_cpu_s`, the bot's main thread's (its executor: the
    /// listener, the route, the dispatcher, the handlers).
    main_cpu_s: f64,
    fake_cpu_s: f64,
    peak_rss_mib: f64,
    hwm_mib: f64,
    threads: usize,
    health_ms: Vec<f64>, // sorted
    health_failed: usize,
    missing: usize,
    duplicates: usize,
    unexpected: usize,
    order_violations: usize,
    /// Webhook mode only (`None` when polling): the fake's posts, ...
    posts: Option<usize>,
    /// ... those answered other than 200, ...
    not_200: Option<usize>,
    /// ... and the updates without a 200, or with more than one.
    not_confirmed_once: Option<usize>,
    warnings: usize,
    exit: String,
    stop_ms: f64,
}

impl Run {
    fn is_clean(&self) -> bool {
        let webhook = self.not_200.unwrap_or(0) + self.not_confirmed_once.unwrap_or(0);
        self.missing + self.duplicates + self.unexpected + self.order_violations + webhook == 0
            && self.exit == "0"
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("throughput: skipped (not run by `cargo bench`); see `just bench`");
        return ExitCode::SUCCESS;
    }
    let opts = match parse(args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("throughput: {e}");
            return ExitCode::from(2);
        }
    };
    if !opts.bin.is_file() {
        eprintln!(
            "throughput: no binary at {}; build it first: cargo build --release",
            opts.bin.display()
        );
        return ExitCode::from(2);
    }
    let tick_hz = process::clock_ticks_per_second();
    let modes: Vec<&str> = opts.modes.iter().map(|m| m.name()).collect();
    println!(
        "smolgram throughput: {} ({} updates over {} chats, {} run(s) of {}, {} cores, {tick_hz} Hz ticks)",
        opts.bin.display(),
        opts.updates,
        opts.chats,
        opts.runs,
        modes.join(" + "),
        thread::available_parallelism().map_or(0, |n| n.get()),
    );
    // runs[i][j]: run i's round of opts.modes[j].
    let mut runs: Vec<Vec<Run>> = Vec::new();
    for i in 1..=opts.runs {
        let mut order: Vec<usize> = (0..opts.modes.len()).collect();
        if i % 2 == 0 {
            order.reverse(); // neither mode always goes first
        }
        let mut rounds: Vec<Option<Run>> = opts.modes.iter().map(|_| None).collect();
        for j in order {
            let mode = opts.modes[j];
            match run_once(&opts, mode, tick_hz) {
                Ok(run) => {
                    eprintln!(
                        "run {i} {}: {:.0} upd/s",
                        mode.name(),
                        run.answered as f64 / run.burst_s
                    );
                    rounds[j] = Some(run);
                }
                Err(e) => {
                    eprintln!("throughput: run {i} {}: {e}", mode.name());
                    return ExitCode::FAILURE;
                }
            }
        }
        let rounds: Vec<Run> = rounds.into_iter().flatten().collect();
        println!("\nrun {i}");
        report::print_run(&opts.modes, &rounds);
        runs.push(rounds);
    }
    if opts.runs > 1 {
        println!("\nmedians of {} runs", opts.runs);
        report::print_summary(&opts.modes, &runs);
    }
    if runs.iter().flatten().all(Run::is_clean) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut opts = Options {
        bin: PathBuf::from("target/release/smolgram"),
        updates: 10_000,
        chats: 100,
        runs: 1,
        modes: vec![Mode::Polling, Mode::Webhook],
        max_connections: "40".into(), // Telegram's default
        probe_every: Some(Duration::from_millis(5)),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value; {USAGE}"));
        let count = |v: String| match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{arg}: not a positive number: {v}")),
        };
        match arg.as_str() {
            "--bench" => {} // added by `cargo bench`
            "--bin" => opts.bin = value()?.into(),
            "--updates" => opts.updates = count(value()?)?,
            "--chats" => opts.chats = count(value()?)?,
            "--runs" => opts.runs = count(value()?)?,
            "--mode" => {
                opts.modes = match value()?.as_str() {
                    "polling" => vec![Mode::Polling],
                    "webhook" => vec![Mode::Webhook],
                    "both" => vec![Mode::Polling, Mode::Webhook],
                    other => return Err(format!("--mode: not polling|webhook|both: {other}")),
                }
            }
            "--max-connections" => opts.max_connections = count(value()?)?.to_string(),
            "--health-probes" => {
                let ms = value()?;
                let ms = ms.parse().map_err(|_| format!("{arg}: not ms: {ms}"))?;
                opts.probe_every = (ms > 0).then(|| Duration::from_millis(ms));
            }
            _ => return Err(format!("unknown argument {arg}; {USAGE}")),
        }
    }
    Ok(opts)
}

fn run_once(opts: &Options, mode: Mode, tick_hz: f64) -> Result<Run, String> {
    let (n, m) = (opts.updates, opts.chats);
    let threads_before = process::fake_threads();
    let api = FakeApi::start();
    // Rust names a thread from inside it, so the name may come a moment later.
    let named = Instant::now() + Duration::from_secs(1);
    let fake_tid = loop {
        let new = process::fake_threads()
            .into_iter()
            .find(|tid| !threads_before.contains(tid));
        match new {
            Some(tid) => break tid,
            None if Instant::now() < named => thread::sleep(Duration::from_millis(1)),
            None => return Err("cannot find the fake's server thread in /proc/self/task".into()),
        }
    };
    let (args, first_call, idle_call): (&[&str], _, _) = match mode {
        Mode::Polling => (&[], "getUpdates", "getUpdates"),
        Mode::Webhook => (
            &[
                "--webhook-url",
                "http://bot.test/hook",
                "--webhook-max-connections",
                &opts.max_connections,
            ],
            "setWebhook",
            "getWebhookInfo",
        ),
    };
    let spawned_at = Instant::now();
    let bot = Bot::spawn(&opts.bin, &api, args)?;
    let pid = bot.child.id();
    let mut run = Run::default();

    // Startup: as the fake saw it, not when this thread woke up.
    if !api.wait_for(STARTUP_DEADLINE, |a| !a.call_times(first_call).is_empty()) {
        return Err(format!(
            "no {first_call} within {STARTUP_DEADLINE:?}{}",
            bot.log()
        ));
    }
    run.startup_ms = ms(api.call_times(first_call)[0] - spawned_at);
    let health = bot.health_addr()?;
    if mode == Mode::Webhook {
        api.deliver_webhooks_to(health);
        if !api.wait_for(STARTUP_DEADLINE, |a| a.webhook().is_some()) {
            return Err(format!("no webhook set{}", bot.log()));
        }
    }

    // Idle: nothing to do, so nothing should be spent.
    let (cpu, calls) = (cpu_ticks(pid)?, api.call_times(idle_call).len());
    thread::sleep(IDLE);
    run.idle_rss_mib = mib(status_kib(pid, "VmRSS")?);
    run.idle_cpu_s = (cpu_ticks(pid)? - cpu) as f64 / tick_hz;
    run.idle_calls = api.call_times(idle_call).len() - calls;

    // Burst.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = process::spawn_sampler(pid, Arc::clone(&stop));
    let prober = opts
        .probe_every
        .map(|every| process::spawn_prober(health, every, Arc::clone(&stop)));
    let (cpu, main_cpu) = (cpu_ticks(pid)?, main_thread_ticks(pid)?);
    let fake_cpu = thread_ticks(fake_tid)?;
    let started = Instant::now();
    let ids: Vec<i64> = (0..n)
        .map(|i| api.push_text(chat_of(i, m), &i.to_string()))
        .collect();
    run.push_ms = ms(started.elapsed());
    // Polled every ms rather than woken by each of the fake's ~2N changes:
    // this thread then takes no CPU from the two measured ones.
    let deadline = started + Duration::from_secs(60) + Duration::from_millis(10 * n as u64);
    while api.sent_count() < n && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    run.burst_s = started.elapsed().as_secs_f64();
    run.burst_cpu_s = (cpu_ticks(pid)? - cpu) as f64 / tick_hz;
    run.main_cpu_s = (main_thread_ticks(pid)? - main_cpu) as f64 / tick_hz;
    run.fake_cpu_s = (thread_ticks(fake_tid)? - fake_cpu) as f64 / tick_hz;
    run.answered = api.sent_count();
    stop.store(true, Ordering::Relaxed);
    let (peak_kib, threads) = sampler.join().expect("the sampler does not panic");
    (run.peak_rss_mib, run.threads) = (mib(peak_kib), threads);
    if let Some(prober) = prober {
        let (mut latencies, failed) = prober.join().expect("the prober does not panic");
        latencies.sort_by(f64::total_cmp);
        (run.health_ms, run.health_failed) = (latencies, failed);
    }

    // Let the bot confirm its last batch (or answer its last posts), so
    // that a late duplicate shows.
    api.wait_for(Duration::from_secs(2), |a| a.pending() == 0);
    run.hwm_mib = mib(status_kib(pid, "VmHWM")?);
    check_replies(&api, n, m, &mut run);
    if mode == Mode::Webhook {
        check_answers(&api, &ids, &mut run);
    }
    run.warnings = bot.warnings();

    let (exit, stop_ms) = bot.terminate()?;
    (run.exit, run.stop_ms) = (exit, stop_ms);
    Ok(run)
}

/// Update `i` goes to chat `1 + i % m`: round robin over private chats.
fn chat_of(i: usize, m: usize) -> ChatId {
    ChatId(1 + (i % m) as i64)
}

/// Each update's text is its index, which the echo bot sends back.
fn check_replies(api: &FakeApi, n: usize, m: usize, run: &mut Run) {
    let mut seen = vec![false; n];
    let mut last_in_chat = vec![None; m];
    for sent in api.sent() {
        let Some(i) = sent.text.parse::<usize>().ok().filter(|&i| i < n) else {
            run.unexpected += 1;
            continue;
        };
        if sent.chat != chat_of(i, m) {
            run.unexpected += 1;
        } else if std::mem::replace(&mut seen[i], true) {
            run.duplicates += 1;
        } else {
            let last = &mut last_in_chat[i % m];
            if last.is_some_and(|l| i < l) {
                run.order_violations += 1;
            }
            *last = (*last).max(Some(i));
        }
    }
    run.missing = seen.iter().filter(|s| !**s).count();
}

/// Every post the fake made: each pushed update's answered 200 exactly
/// once, and none answered anything else (a 503, or 0: no answer).
fn check_answers(api: &FakeApi, ids: &[i64], run: &mut Run) {
    let answers = api.webhook_answers();
    let mut oks = std::collections::HashMap::new();
    for (id, status) in &answers {
        if *status == 200 {
            *oks.entry(*id).or_insert(0) += 1;
        }
    }
    run.posts = Some(answers.len());
    run.not_200 = Some(answers.iter().filter(|(_, s)| *s != 200).count());
    let once = ids.iter().filter(|id| oks.get(id) == Some(&1)).count();
    run.not_confirmed_once = Some(ids.len() - once);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
