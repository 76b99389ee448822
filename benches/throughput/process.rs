//! The bench's view of processes and threads: the bot as a child process,
//! what `/proc` says about it (CPU ticks, RSS, threads) and about the fake's
//! server thread in this process, and the `/healthz` prober.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use smolgram::testkit::FakeApi;

use super::{ms, STARTUP_DEADLINE};

const STOP_DEADLINE: Duration = Duration::from_secs(30);
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// The bot under test, killed on drop if still running (a failed run).
pub struct Bot {
    pub child: Child,
    health: mpsc::Receiver<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Bot {
    /// `bin --health-addr 127.0.0.1:0 extra…` against `api`.
    pub fn spawn(bin: &Path, api: &FakeApi, extra: &[&str]) -> Result<Bot, String> {
        let mut child = Command::new(bin)
            .args(["--health-addr", "127.0.0.1:0"])
            .args(extra)
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

    pub fn health_addr(&self) -> Result<SocketAddr, String> {
        (self.health.recv_timeout(STARTUP_DEADLINE))
            .map_err(|_| format!("no `health listening addr=` line{}", self.log()))
    }

    /// What the bot logged, for an error message.
    pub fn log(&self) -> String {
        let lines = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        format!("; its log:\n{tail}")
    }

    /// How many lines the bot logged at `WARN` or above.
    pub fn warnings(&self) -> usize {
        let lines = self.log.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .count()
    }

    /// SIGTERM, then the exit code (or the signal) and the time to exit.
    pub fn terminate(mut self) -> Result<(String, f64), String> {
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
pub fn spawn_sampler(pid: u32, stop: Arc<AtomicBool>) -> JoinHandle<(u64, usize)> {
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
pub fn spawn_prober(
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
pub fn status_kib(pid: u32, key: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or(format!("/proc/{pid}/status: no {key}"))
}

/// `utime + stime` of the whole process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64, String> {
    stat_ticks(&format!("/proc/{pid}/stat"))
}

/// `utime + stime` of one thread of this process, in clock ticks.
pub fn thread_ticks(tid: u32) -> Result<u64, String> {
    stat_ticks(&format!("/proc/self/task/{tid}/stat"))
}

/// `utime + stime` of a process's main thread (its executor), in clock ticks.
pub fn main_thread_ticks(pid: u32) -> Result<u64, String> {
    stat_ticks(&format!("/proc/{pid}/task/{pid}/stat"))
}

fn stat_ticks(path: &str) -> Result<u64, String> {
    let stat = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) may hold spaces; fields 14 and 15 are
    // utime and stime, so the 12th and 13th after its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    tick(11)
        .zip(tick(12))
        .map(|(user, system)| user + system)
        .ok_or(format!("{path}: cannot parse"))
}

/// This process's threads named like the fake's server thread
/// (`smolgram-testkit`, cut to 15 bytes by Linux).
pub fn fake_threads() -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return vec![];
    };
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            comm.starts_with("smolgram-testk")
                .then(|| task.file_name().to_str()?.parse().ok())?
        })
        .collect()
}

/// `sysconf(_SC_CLK_TCK)` without libc: `getconf` asks it; Linux uses 100.
pub fn clock_ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    let hz = out
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok());
    hz.unwrap_or(100.0)
}
