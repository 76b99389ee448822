//! The bench's tables: one per run with a column per mode, and the medians
//! over runs with the webhook/polling ratio.

use super::{Mode, Run};

/// A row: its label, decimals, whether a webhook/polling ratio means
/// anything, and the figure (`NaN`: none, printed `-`).
type Figure = (&'static str, usize, bool, fn(&Run) -> f64);

const FIGURES: [Figure; 30] = [
    ("startup → 1st call ms", 1, true, |r| r.startup_ms),
    ("idle RSS MiB", 1, true, |r| r.idle_rss_mib),
    ("idle CPU s (2 s)", 2, false, |r| r.idle_cpu_s),
    ("idle calls (poll | webhook info)", 0, false, |r| {
        r.idle_calls as f64
    }),
    ("push ms (all updates)", 1, false, |r| r.push_ms),
    ("burst s (1st push → last reply)", 3, true, |r| r.burst_s),
    ("upd/s", 0, true, |r| r.answered as f64 / r.burst_s),
    ("bot CPU s", 2, true, |r| r.burst_cpu_s),
    ("bot CPU s per 10k updates", 2, true, |r| {
        r.burst_cpu_s * 10_000.0 / r.answered.max(1) as f64
    }),
    ("bot CPU % of the burst", 0, true, |r| {
        100.0 * r.burst_cpu_s / r.burst_s
    }),
    ("bot main thread CPU % of it", 0, true, |r| {
        100.0 * r.main_cpu_s / r.burst_s
    }),
    ("fake thread CPU % of the burst", 0, true, |r| {
        100.0 * r.fake_cpu_s / r.burst_s
    }),
    ("fake thread CPU s per 10k updates", 2, true, |r| {
        r.fake_cpu_s * 10_000.0 / r.answered.max(1) as f64
    }),
    ("peak RSS MiB (sampled)", 1, true, |r| r.peak_rss_mib),
    ("VmHWM MiB", 1, true, |r| r.hwm_mib),
    ("threads (most seen)", 0, false, |r| r.threads as f64),
    ("health probes", 0, false, |r| r.health_ms.len() as f64),
    ("health p50 ms", 2, true, |r| percentile(&r.health_ms, 0.5)),
    ("health p99 ms", 2, true, |r| percentile(&r.health_ms, 0.99)),
    ("health max ms", 2, true, |r| percentile(&r.health_ms, 1.0)),
    ("health failures", 0, false, |r| r.health_failed as f64),
    ("missing", 0, false, |r| r.missing as f64),
    ("duplicates", 0, false, |r| r.duplicates as f64),
    ("unexpected replies", 0, false, |r| r.unexpected as f64),
    ("per-chat order violations", 0, false, |r| {
        r.order_violations as f64
    }),
    ("webhook posts", 0, false, |r| optional(r.posts)),
    ("webhook answers not 200", 0, false, |r| optional(r.not_200)),
    ("updates not 200'd exactly once", 0, false, |r| {
        optional(r.not_confirmed_once)
    }),
    ("bot WARN/ERROR lines", 0, false, |r| r.warnings as f64),
    ("SIGTERM → exit ms", 0, false, |r| r.stop_ms),
];

const LABEL: usize = 34;
const COLUMN: usize = 11;
const RATIO: usize = 17;

/// One run's rounds, a column per mode.
pub fn print_run(modes: &[Mode], rounds: &[Run]) {
    print_header(modes.iter().map(|m| m.name().to_owned()));
    for (label, decimals, _, figure) in FIGURES {
        print_row(label, decimals, rounds.iter().map(figure));
    }
    let exits = rounds.iter().map(|r| r.exit.clone());
    println!("{:<LABEL$}{}", "exit code", cells(exits));
}

/// Each mode's median over `runs`, and with both modes their ratio.
pub fn print_summary(modes: &[Mode], runs: &[Vec<Run>]) {
    let both = modes.len() == 2;
    let ratio = if both {
        format!("{:>RATIO$}", "webhook/polling")
    } else {
        String::new()
    };
    let names = modes.iter().map(|m| m.name().to_owned());
    println!("{:<LABEL$}{}{ratio}", "", cells(names));
    for (label, decimals, has_ratio, figure) in FIGURES {
        let medians: Vec<f64> = (0..modes.len())
            .map(|j| median(runs.iter().map(|rounds| figure(&rounds[j])).collect()))
            .collect();
        // Which column is polling depends on `--mode`; with both, it is the first.
        let ratio = (both && has_ratio).then(|| medians[1] / medians[0]);
        let mut line = format!("{label:<LABEL$}");
        line += &values(decimals, medians.iter().copied());
        if let Some(ratio) = ratio {
            line += &format!("{:>RATIO$}", format!("{ratio:.2}×"));
        }
        println!("{line}");
    }
}

fn print_header(columns: impl Iterator<Item = String>) {
    println!("{:<LABEL$}{}", "", cells(columns));
}

fn print_row(label: &str, decimals: usize, figures: impl Iterator<Item = f64>) {
    println!("{label:<LABEL$}{}", values(decimals, figures));
}

fn values(decimals: usize, figures: impl Iterator<Item = f64>) -> String {
    cells(figures.map(|v| {
        if v.is_nan() {
            "-".to_owned() // no health probes, or not this mode's figure
        } else {
            format!("{v:.decimals$}")
        }
    }))
}

fn cells(texts: impl Iterator<Item = String>) -> String {
    texts.map(|t| format!("{t:>COLUMN$}")).collect()
}

fn optional(count: Option<usize>) -> f64 {
    count.map_or(f64::NAN, |c| c as f64)
}

/// Nearest rank; `NaN` without samples.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

/// `NaN` if any value is (a figure the mode does not have).
fn median(mut values: Vec<f64>) -> f64 {
    if values.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => values[mid],
        _ => (values[mid - 1] + values[mid]) / 2.0,
    }
}
