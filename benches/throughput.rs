//! The project's own benchmark: the release binary against the testkit's fake
//! Bot API, so anyone can reproduce the figures with `just bench`.
//!
//! Each run starts a [`FakeApi`] in this process (on its own thread) and the
//! `smolgram` binary as a child (`RUST_LOG=warn`, health on `127.0.0.1:0`),
//! then measures:
//!
//! - **startup**: spawn → the first `getUpdates` the fake receives;
//! - **idle**, for 2 s after that: RSS (`VmRSS`), CPU and `getUpdates` calls
//!   (a long-polling bot at rest should spend none of the three);
//! - **burst**: N text updates pushed over M chats (round robin), timed from
//!   the first push to the Nth reply: updates per second, the child's CPU
//!   seconds (`utime + stime` of `/proc/PID/stat`, all threads), peak RSS
//!   (sampled every 10 ms, and `VmHWM`), its most threads, and the latency of
//!   a `GET /healthz` (connect, request, answer) every few ms meanwhile
//!   (Linux updates `VmRSS` and `VmHWM` lazily, per thread, so the two
//!   peaks may differ by a few hundred KiB either way);
//! - **correctness** of the burst: every update answered exactly once (the
//!   echo bot replies with the update's text) and, per chat, replies in push
//!   order;
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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use smolgram::api::types::ChatId;
use smolgram::testkit::FakeApi;

const USAGE: &str = "usage: cargo bench --bench throughput -- [--bin PATH] [--updates N] \
[--chats M] [--runs K] [--health-probes MS (0: none)]";
const IDLE: Duration = Duration::from_secs(2);
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);
const STOP_DEADLINE: Duration = Duration::from_secs(30);
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

struct Options {
    bin: PathBuf,
    updates: usize,
    chats: usize,
    runs: usize,
    probe_every: Option<Duration>,
}

/// What one run measured.
#[derive(Default)]
struct Run {
    startup_ms: f64,
    idle_rss_mib: f64,
    idle_cpu_s: f64,
    idle_polls: usize,
    push_ms: f64,
    burst_s: f64,
    answered: usize,
    burst_cpu_s: f64,
    peak_rss_mib: f64,
    hwm_mib: f64,
    threads: usize,
    health_ms: Vec<f64>, // sorted
    health_failed: usize,
    missing: usize,
    duplicates: usize,
    unexpected: usize,
    order_violations: usize,
    exit: String,
    stop_ms: f64,
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
    let tick_hz = clock_ticks_per_second();
    println!(
        "smolgram throughput: {} ({} updates over {} chats, {} run(s), {} cores, {tick_hz} Hz ticks)",
        opts.bin.display(),
        opts.updates,
        opts.chats,
        opts.runs,
        thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let mut runs = Vec::new();
    for i in 1..=opts.runs {
        match run_once(&opts, tick_hz) {
            Ok(run) => {
                eprintln!("run {i}: {:.0} upd/s", run.answered as f64 / run.burst_s);
                runs.push(run);
            }
            Err(e) => {
                eprintln!("throughput: run {i}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    print_table(&runs);
    let clean = runs.iter().all(|r| {
        r.missing + r.duplicates + r.unexpected + r.order_violations == 0 && r.exit == "0"
    });
    if clean {
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

fn run_once(opts: &Options, tick_hz: f64) -> Result<Run, String> {
    let (n, m) = (opts.updates, opts.chats);
    let api = FakeApi::start();
    let spawned_at = Instant::now();
    let bot = Bot::spawn(&opts.bin, &api)?;
    let pid = bot.child.id();
    let mut run = Run::default();

    // Startup: as the fake saw it, not when this thread woke up.
    if !api.wait_for(STARTUP_DEADLINE, |a| !a.call_times("getUpdates").is_empty()) {
        return Err(format!(
            "no getUpdates within {STARTUP_DEADLINE:?}{}",
            bot.log()
        ));
    }
    run.startup_ms = ms(api.call_times("getUpdates")[0] - spawned_at);
    let health = bot.health_addr()?;

    // Idle: nothing to do, so nothing should be spent.
    let (cpu, polls) = (cpu_ticks(pid)?, api.call_times("getUpdates").len());
    thread::sleep(IDLE);
    run.idle_rss_mib = mib(status_kib(pid, "VmRSS")?);
    run.idle_cpu_s = (cpu_ticks(pid)? - cpu) as f64 / tick_hz;
    run.idle_polls = api.call_times("getUpdates").len() - polls;

    // Burst.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = spawn_sampler(pid, Arc::clone(&stop));
    let prober = opts
        .probe_every
        .map(|every| spawn_prober(health, every, Arc::clone(&stop)));
    let cpu = cpu_ticks(pid)?;
    let started = Instant::now();
    for i in 0..n {
        api.push_text(chat_of(i, m), &i.to_string());
    }
    run.push_ms = ms(started.elapsed());
    // Polled every ms rather than woken by each of the fake's ~2N changes:
    // this thread then takes no CPU from the two measured ones.
    let deadline = started + Duration::from_secs(60) + Duration::from_millis(10 * n as u64);
    while api.sent_count() < n && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    run.burst_s = started.elapsed().as_secs_f64();
    run.burst_cpu_s = (cpu_ticks(pid)? - cpu) as f64 / tick_hz;
    run.answered = api.sent_count();
    stop.store(true, Ordering::Relaxed);
    let (peak_kib, threads) = sampler.join().expect("the sampler does not panic");
    (run.peak_rss_mib, run.threads) = (mib(peak_kib), threads);
    if let Some(prober) = prober {
        let (mut latencies, failed) = prober.join().expect("the prober does not panic");
        latencies.sort_by(f64::total_cmp);
        (run.health_ms, run.health_failed) = (latencies, failed);
    }

    // Let the bot confirm its last batch, so that a late duplicate shows.
    api.wait_for(Duration::from_secs(2), |a| a.pending() == 0);
    run.hwm_mib = mib(status_kib(pid, "VmHWM")?);
    check_replies(&api, n, m, &mut run);

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

/// The bot under test, killed on drop if still running (a failed run).
struct Bot {
    child: Child,
    health: mpsc::Receiver<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Bot {
    fn spawn(bin: &Path, api: &FakeApi) -> Result<Bot, String> {
        let mut child = Command::new(bin)
            .args(["--health-addr", "127.0.0.1:0"])
            .env_clear()
            .env("TELEGRAM_BOT_TOKEN", FakeApi::TOKEN)
            .env("TELEGRAM_API_URL", api.url())
            // `warn`, but the health module's `info` line carries the port.
            .env("RUST_LOG", "warn,smolgram::health=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, health) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        // Drains stderr for the whole run, so the child never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let addr = line.split("health listening addr=").nth(1);
                if let Some(addr) = addr.and_then(|a| a.split_whitespace().next()?.parse().ok()) {
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        Ok(Bot { child, health, log })
    }

    fn health_addr(&self) -> Result<SocketAddr, String> {
        (self.health.recv_timeout(STARTUP_DEADLINE))
            .map_err(|_| format!("no `health listening addr=` line{}", self.log()))
    }

    /// What the bot logged, for an error message.
    fn log(&self) -> String {
        let lines = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        format!("; its log:\n{tail}")
    }

    /// SIGTERM, then the exit code (or the signal) and the time to exit.
    fn terminate(mut self) -> Result<(String, f64), String> {
        let pid = self.child.id().to_string();
        let sent = Instant::now();
        let killed = Command::new("kill").args(["-TERM", &pid]).status();
        if !killed.is_ok_and(|s| s.success()) {
            return Err("kill -TERM failed".into());
        }
        while sent.elapsed() < STOP_DEADLINE {
            // A `Child` cannot be waited on with a deadline: poll it.
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok((exit_text(status), ms(sent.elapsed())));
            }
            thread::sleep(Duration::from_millis(2));
        }
        Ok((
            format!("none in {STOP_DEADLINE:?}, killed"),
            ms(sent.elapsed()),
        ))
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn exit_text(status: ExitStatus) -> String {
    status
        .code()
        .map_or_else(|| "signal".into(), |c| c.to_string())
}

/// Until `stop`: the highest `VmRSS` (KiB) and thread count seen.
fn spawn_sampler(pid: u32, stop: Arc<AtomicBool>) -> JoinHandle<(u64, usize)> {
    thread::spawn(move || {
        let (mut peak, mut threads) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(status_kib(pid, "VmRSS").unwrap_or(0));
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task"));
            threads = threads.max(tasks.map_or(0, |d| d.count()));
            thread::sleep(SAMPLE_EVERY);
        }
        (peak, threads)
    })
}

/// Until `stop`: a `GET /healthz` every `every`; latencies (ms) and failures.
fn spawn_prober(
    addr: SocketAddr,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> JoinHandle<(Vec<f64>, usize)> {
    thread::spawn(move || {
        let (mut latencies, mut failed) = (Vec::new(), 0);
        while !stop.load(Ordering::Relaxed) {
            let start = Instant::now();
            match probe(addr) {
                Ok(true) => latencies.push(ms(start.elapsed())),
                _ => failed += 1,
            }
            thread::sleep(every.saturating_sub(start.elapsed()));
        }
        (latencies, failed)
    })
}

/// One health check on a new connection: whether it answered 200.
fn probe(addr: SocketAddr) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.starts_with("HTTP/1.1 200"))
}

/// `key:` of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, key: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or(format!("/proc/{pid}/status: no {key}"))
}

/// `utime + stime` of the whole process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name (field 2) may hold spaces; fields 14 and 15 are
    // utime and stime, so the 12th and 13th after its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    tick(11)
        .zip(tick(12))
        .map(|(user, system)| user + system)
        .ok_or(format!("/proc/{pid}/stat: cannot parse"))
}

/// `sysconf(_SC_CLK_TCK)` without libc: `getconf` asks it; Linux uses 100.
fn clock_ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    let hz = out
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok());
    hz.unwrap_or(100.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Nearest rank; `NaN` without samples.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => values[mid],
        _ => (values[mid - 1] + values[mid]) / 2.0,
    }
}

/// One row per figure, one column per run, and the median when there are several.
fn print_table(runs: &[Run]) {
    type Figure = (&'static str, usize, fn(&Run) -> f64);
    let figures: [Figure; 21] = [
        ("startup → getUpdates ms", 1, |r| r.startup_ms),
        ("idle RSS MiB", 1, |r| r.idle_rss_mib),
        ("idle CPU s (2 s)", 2, |r| r.idle_cpu_s),
        ("idle getUpdates calls", 0, |r| r.idle_polls as f64),
        ("push ms (all updates)", 1, |r| r.push_ms),
        ("burst s (1st push → last reply)", 3, |r| r.burst_s),
        ("upd/s", 0, |r| r.answered as f64 / r.burst_s),
        ("burst CPU s", 2, |r| r.burst_cpu_s),
        ("CPU s per 10k updates", 2, |r| {
            r.burst_cpu_s * 10_000.0 / r.answered.max(1) as f64
        }),
        ("peak RSS MiB (sampled)", 1, |r| r.peak_rss_mib),
        ("VmHWM MiB", 1, |r| r.hwm_mib),
        ("threads (most seen)", 0, |r| r.threads as f64),
        ("health probes", 0, |r| r.health_ms.len() as f64),
        ("health p50 ms", 2, |r| percentile(&r.health_ms, 0.5)),
        ("health p99 ms", 2, |r| percentile(&r.health_ms, 0.99)),
        ("health max ms", 2, |r| percentile(&r.health_ms, 1.0)),
        ("health failures", 0, |r| r.health_failed as f64),
        ("missing", 0, |r| r.missing as f64),
        ("duplicates", 0, |r| r.duplicates as f64),
        ("unexpected replies", 0, |r| r.unexpected as f64),
        ("per-chat order violations", 0, |r| {
            r.order_violations as f64
        }),
    ];
    let mut header = format!("{:<32}", "");
    for i in 1..=runs.len() {
        header += &format!("{:>10}", format!("run {i}"));
    }
    if runs.len() > 1 {
        header += &format!("{:>10}", "median");
    }
    println!("{header}");
    for (label, decimals, figure) in figures {
        let values: Vec<f64> = runs.iter().map(figure).collect();
        let mut line = format!("{label:<32}");
        let median = (runs.len() > 1).then(|| median(values.clone()));
        for v in values.into_iter().chain(median) {
            line += &if v.is_nan() {
                format!("{:>10}", "-") // no health probes
            } else {
                format!("{v:>10.decimals$}")
            };
        }
        println!("{line}");
    }
    let mut exits = format!("{:<32}", "SIGTERM → exit code, ms");
    for r in runs {
        exits += &format!("{:>10}", format!("{} {:.0}", r.exit, r.stop_ms));
    }
    println!("{exits}");
}
