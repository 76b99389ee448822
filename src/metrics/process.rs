//! When this process started, for `process_start_time_seconds`.
//!
//! Prometheus uses it to tell a restart from a counter reset, so it must be
//! the process's start, not a run's: a `Metrics` is made per run, and a
//! program may run several. On Linux it comes from `/proc`: `starttime`
//! (field 22 of `/proc/self/stat`, in clock ticks since boot) plus `btime`
//! (boot time, whole Unix seconds, from `/proc/stat`), the same sum `ps`
//! makes; both are rounded down, so it may be up to a second early, never
//! late. Anywhere that fails (not Linux, no `/proc` mounted), it is the time
//! smolgram first asked: `Metrics::default` asks, so that is when the first
//! run started.
//!
//! Either way it is found once per process and kept; a scrape only reads it.
//!
//! Must not: use `libc` or `unsafe` (`sysconf(_SC_CLK_TCK)` would need
//! both); [`USER_HZ`] stands in for it.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Clock ticks per second in `/proc`: Linux's `USER_HZ`. It is part of the
/// kernel ABI, whatever the kernel's own `HZ`, and 100 on every architecture
/// we ship (x86_64, aarch64, armv7, armv6); a few old ones differ.
const USER_HZ: u64 = 100;

/// When this process started (see the module docs for how it is found).
pub(crate) fn start_time() -> SystemTime {
    static START: OnceLock<SystemTime> = OnceLock::new();
    *START.get_or_init(|| from_proc().unwrap_or_else(SystemTime::now))
}

/// The start time by `/proc`, or `None` where there is no Linux `/proc`.
fn from_proc() -> Option<SystemTime> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let ticks = ticks_after_boot(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let boot = boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let since_boot = Duration::from_millis(ticks.checked_mul(1000)? / USER_HZ);
    let booted = UNIX_EPOCH.checked_add(Duration::from_secs(boot))?;
    booted.checked_add(since_boot)
}

/// Field 22, `starttime`, of a `/proc/<pid>/stat` line. Field 2 is `(comm)`,
/// the program name, which may hold spaces and `)`, so fields are counted
/// after the last `)`: the first there is field 3.
fn ticks_after_boot(stat: &str) -> Option<u64> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    let starttime = after_comm.split_ascii_whitespace().nth(22 - 3)?;
    starttime.parse().ok()
}

/// `btime` of `/proc/stat`: when the machine booted, in Unix seconds.
fn boot_time(stat: &str) -> Option<u64> {
    let line = stat.lines().find_map(|l| l.strip_prefix("btime "))?;
    line.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{unix, Metrics};
    use crate::readiness::Readiness;

    #[test]
    fn starttime_is_field_22_counted_after_the_last_paren_of_comm() {
        let stat = "4817 (a) b (c) d) R 4773 4773 25029 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 \
                    1 0 102699 3133440 392 18446744073709551615 94151736053760 0";
        assert_eq!(ticks_after_boot(stat), Some(102_699));
        assert_eq!(ticks_after_boot("4817 (cat) R 1 2"), None, "too few fields");
        assert_eq!(ticks_after_boot("4817 cat R 1"), None, "no comm");
        let proc_stat = "cpu  1 2 3\nctxt 99\nbtime 1796160631\nprocesses 5\n";
        assert_eq!(boot_time(proc_stat), Some(1_796_160_631));
        assert_eq!(boot_time("cpu  1 2 3\n"), None);
    }

    #[test]
    fn start_time_is_before_this_test_and_within_the_last_day() {
        let test_started = SystemTime::now();
        // Both /proc numbers are rounded down, so the sum is never late.
        #[cfg(target_os = "linux")]
        assert!(from_proc().is_some(), "no start time from /proc");
        let start = start_time();
        assert!(start <= test_started, "{start:?} after {test_started:?}");
        let day = Duration::from_secs(24 * 60 * 60);
        assert!(start > test_started - day, "{start:?} over a day ago");
        assert_eq!(start_time(), start, "read once, then kept");
    }

    #[test]
    fn metrics_report_the_process_start_not_the_run_start() {
        let readiness = Readiness::new(Duration::from_secs(60), crate::Shutdown::new());
        let line = format!("process_start_time_seconds {}", unix(start_time()));
        // A run's `Metrics` is made after the process started, so a start
        // time taken then would differ.
        let text = Metrics::default().render(&readiness);
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
}
