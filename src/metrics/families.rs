//! The `/metrics` families as a table, and the one writer that walks it.
//!
//! Each family is one row: its name, HELP text, type, and where its samples
//! come from. Names, order and HELP texts are what dashboards and alerts are
//! written against, so adding a row is cheap and changing one is a breaking
//! change; the tests pin them. The writer reads cells at scrape time and
//! allocates only the output `String`.
//!
//! Must not: count anything (that is the hot path in `metrics`), or write a
//! family name anywhere but in its row.

use std::cell::Cell;
use std::fmt::{self, Write as _};

use super::{process, unix, Answered, Metrics, BUCKETS, RESULTS};
use crate::readiness::Readiness;

/// One family of the exposition.
#[derive(Debug)]
pub(super) struct Family {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) kind: Kind,
    pub(super) samples: Samples,
}

/// A family's `# TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Which cell of [`Metrics`] a sample reads.
type CellOf = fn(&Metrics) -> &Cell<u64>;

/// Where a family's samples come from.
#[derive(Debug)]
pub(super) enum Samples {
    /// One sample: a cell.
    Cell(CellOf),
    /// One sample per cell, labelled `label="value"`.
    Cells(&'static str, &'static [(&'static str, CellOf)]),
    /// One sample, computed at scrape from the counts.
    Float(fn(&Metrics) -> f64),
    /// One sample from what `/readyz` reads.
    Readiness(fn(&Readiness) -> f64),
    /// `{method, result}` for each Bot API method seen, in the order first seen.
    Requests,
    /// The handler duration histogram: `_bucket{le}`, `_sum`, `_count`.
    Durations,
    /// A constant 1 labelled with the version, commit and target.
    BuildInfo,
}

/// Every family, in the order `/metrics` writes them.
pub(super) static FAMILIES: [Family; 33] = [
    Family {
        name: "smolgram_updates_received_total",
        help: "New updates taken from getUpdates.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.received),
    },
    Family {
        name: "smolgram_updates_handled_total",
        help: "Updates whose handler finished Ok.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.handled),
    },
    Family {
        name: "smolgram_updates_failed_total",
        help: "Updates whose handler failed, by why.",
        kind: Kind::Counter,
        samples: Samples::Cells(
            "reason",
            &[
                ("error", |m| &m.errors),
                ("panic", |m| &m.panics),
                ("timeout", |m| &m.timeouts),
            ],
        ),
    },
    Family {
        name: "smolgram_updates_skipped_total",
        help: "Updates that broke the schema, skipped.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.skipped),
    },
    Family {
        name: "smolgram_handler_duration_seconds",
        help: "How long handlers ran.",
        kind: Kind::Histogram,
        samples: Samples::Durations,
    },
    Family {
        name: "smolgram_handlers_in_flight",
        help: "Handlers running now.",
        kind: Kind::Gauge,
        samples: Samples::Cell(|m| &m.in_flight),
    },
    Family {
        name: "smolgram_updates_held",
        help: "Updates taken and not finished.",
        kind: Kind::Gauge,
        samples: Samples::Cell(|m| &m.held),
    },
    Family {
        name: "smolgram_lanes",
        help: "Chats with updates running or queued.",
        kind: Kind::Gauge,
        samples: Samples::Cell(|m| &m.lanes),
    },
    Family {
        name: "smolgram_api_requests_total",
        help: "Bot API requests by method and result.",
        kind: Kind::Counter,
        samples: Samples::Requests,
    },
    Family {
        name: "smolgram_api_retries_total",
        help: "Bot API calls tried again.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.retries),
    },
    Family {
        name: "smolgram_api_failed_total",
        help: "Bot API calls that failed after retries.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.failed_calls),
    },
    Family {
        name: "smolgram_rate_limit_waits_total",
        help: "Sends that waited for the rate limiter.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.limit_waits),
    },
    Family {
        name: "smolgram_rate_limit_wait_seconds_total",
        help: "Time sends waited for the rate limiter.",
        kind: Kind::Counter,
        samples: Samples::Float(|m| m.limit_waited.get().as_secs_f64()),
    },
    Family {
        name: "smolgram_poll_errors_total",
        help: "getUpdates failures by kind.",
        kind: Kind::Counter,
        samples: Samples::Cells(
            "kind",
            &[
                ("conflict", |m| &m.poll_conflicts),
                ("rate_limited", |m| &m.poll_rate_limited),
                ("failing", |m| &m.poll_failures),
            ],
        ),
    },
    Family {
        name: "smolgram_webhook_requests_total",
        help: "Webhook requests by how they were answered.",
        kind: Kind::Counter,
        samples: Samples::Cells(
            "outcome",
            &[
                ("ok", |m| &m.webhook[Answered::Ok as usize]),
                ("skipped", |m| &m.webhook[Answered::Skipped as usize]),
                ("unauthorized", |m| {
                    &m.webhook[Answered::Unauthorized as usize]
                }),
                ("too_large", |m| &m.webhook[Answered::TooLarge as usize]),
                ("bad_request", |m| &m.webhook[Answered::BadRequest as usize]),
                ("unavailable", |m| {
                    &m.webhook[Answered::Unavailable as usize]
                }),
                ("slow", |m| &m.webhook[Answered::Slow as usize]),
            ],
        ),
    },
    Family {
        name: "smolgram_webhook_pending_updates",
        help: "Updates waiting at Telegram, as getWebhookInfo last said.",
        kind: Kind::Gauge,
        samples: Samples::Cell(|m| &m.webhook_pending),
    },
    Family {
        name: "smolgram_notify_requests_total",
        help: "POST /notify requests by outcome.",
        kind: Kind::Counter,
        samples: Samples::Cells(
            "outcome",
            &[
                ("accepted", |m| &m.notify[0]),
                ("unauthorized", |m| &m.notify[1]),
                ("too_large", |m| &m.notify[2]),
                ("bad_request", |m| &m.notify[3]),
                ("full", |m| &m.notify[4]),
            ],
        ),
    },
    Family {
        name: "smolgram_notify_pending",
        help: "Notification messages queued, not yet sent.",
        kind: Kind::Gauge,
        samples: Samples::Cell(|m| &m.notify_pending),
    },
    Family {
        name: "smolgram_notify_sent_total",
        help: "Notification messages Telegram took.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.notify_sent),
    },
    Family {
        name: "smolgram_notify_failed_total",
        help: "Notification messages Telegram refused for good.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.notify_failed),
    },
    Family {
        name: "smolgram_state_writes_total",
        help: "State values set or removed.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.state_writes),
    },
    Family {
        name: "smolgram_state_resets_total",
        help: "State values that no longer decoded, reset to their default.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.state_resets),
    },
    Family {
        name: "smolgram_state_errors_total",
        help: "State reads and writes the store failed.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.state_errors),
    },
    Family {
        name: "smolgram_state_retries_total",
        help: "Updates run again because the state store was unavailable.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.state_retries),
    },
    Family {
        name: "smolgram_job_runs_total",
        help: "Job runs by outcome.",
        kind: Kind::Counter,
        samples: Samples::Cells(
            "outcome",
            &[
                ("ok", |m| &m.job_runs[0]),
                ("error", |m| &m.job_runs[1]),
                ("panic", |m| &m.job_runs[2]),
                ("timeout", |m| &m.job_runs[3]),
            ],
        ),
    },
    Family {
        name: "smolgram_jobs_scheduled",
        help: "Jobs with a run to come.",
        kind: Kind::Gauge,
        samples: Samples::Cell(|m| &m.jobs_scheduled),
    },
    Family {
        name: "smolgram_broadcast_sent_total",
        help: "Broadcast messages Telegram took.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.broadcast_sent),
    },
    Family {
        name: "smolgram_broadcast_failed_total",
        help: "Broadcast chats given up for good: the bot is blocked, or the chat does not exist.",
        kind: Kind::Counter,
        samples: Samples::Cell(|m| &m.broadcast_failed),
    },
    Family {
        name: "smolgram_broadcast_remaining",
        help: "Chats that unfinished broadcasts have still to reach.",
        kind: Kind::Gauge,
        samples: Samples::Cell(|m| &m.broadcast_remaining),
    },
    Family {
        name: "smolgram_last_poll_success_timestamp_seconds",
        help: "When a getUpdates last succeeded.",
        kind: Kind::Gauge,
        samples: Samples::Readiness(|r| r.last_poll().map_or(0.0, unix)),
    },
    Family {
        name: "smolgram_ready",
        help: "1 while /readyz answers 200.",
        kind: Kind::Gauge,
        samples: Samples::Readiness(|r| if r.is_ready() { 1.0 } else { 0.0 }),
    },
    Family {
        name: "smolgram_build_info",
        help: "The running build.",
        kind: Kind::Gauge,
        samples: Samples::BuildInfo,
    },
    Family {
        name: "process_start_time_seconds",
        help: "When the process started.",
        kind: Kind::Gauge,
        samples: Samples::Float(|_| unix(process::start_time())),
    },
];

/// Writes every family of [`FAMILIES`], in order, to `out`.
pub(super) fn write(m: &Metrics, readiness: &Readiness, out: &mut String) -> fmt::Result {
    for family in &FAMILIES {
        let (name, help) = (family.name, family.help);
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}")?;
        match family.samples {
            Samples::Cell(cell) => writeln!(out, "{name} {}", cell(m).get())?,
            Samples::Cells(label, cells) => {
                for (value, cell) in cells {
                    writeln!(out, "{name}{{{label}=\"{value}\"}} {}", cell(m).get())?;
                }
            }
            Samples::Float(value) => writeln!(out, "{name} {}", value(m))?,
            Samples::Readiness(value) => writeln!(out, "{name} {}", value(readiness))?,
            Samples::Requests => {
                for counts in m.api.borrow().iter() {
                    let method = Escaped(&counts.method);
                    for (result, value) in RESULTS.iter().zip(counts.results) {
                        writeln!(
                            out,
                            "{name}{{method=\"{method}\",result=\"{result}\"}} {value}"
                        )?;
                    }
                }
            }
            Samples::Durations => {
                let h = &m.durations;
                let mut cumulative = 0;
                for (bound, count) in BUCKETS.iter().zip(&h.counts) {
                    cumulative += count.get();
                    writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}")?;
                }
                // Observations above the last bound are in `count` only.
                writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count.get())?;
                writeln!(out, "{name}_sum {}", h.sum.get())?;
                writeln!(out, "{name}_count {}", h.count.get())?;
            }
            Samples::BuildInfo => writeln!(
                out,
                "{name}{{version=\"{}\",commit=\"{}\",target=\"{}\"}} 1",
                Escaped(env!("CARGO_PKG_VERSION")),
                Escaped(env!("SMOLGRAM_COMMIT")),
                Escaped(env!("SMOLGRAM_TARGET")),
            )?,
        }
    }
    Ok(())
}

/// A label value as the text format wants it: `\`, `"` and newline escaped.
///
/// Fixes a defect: method names come from `Client::call`, i.e. from users,
/// and were written raw, so a `"` or a newline in one broke the whole scrape
/// (Prometheus rejects the page, not the line). Escaping happens here, per
/// scrape; counting still stores the name as given.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;

    /// The published families, in order. Written out again on purpose: a
    /// typo or a reordering in the table must fail here, not on a dashboard.
    const PUBLISHED: [(&str, Kind); 33] = [
        ("smolgram_updates_received_total", Kind::Counter),
        ("smolgram_updates_handled_total", Kind::Counter),
        ("smolgram_updates_failed_total", Kind::Counter),
        ("smolgram_updates_skipped_total", Kind::Counter),
        ("smolgram_handler_duration_seconds", Kind::Histogram),
        ("smolgram_handlers_in_flight", Kind::Gauge),
        ("smolgram_updates_held", Kind::Gauge),
        ("smolgram_lanes", Kind::Gauge),
        ("smolgram_api_requests_total", Kind::Counter),
        ("smolgram_api_retries_total", Kind::Counter),
        ("smolgram_api_failed_total", Kind::Counter),
        ("smolgram_rate_limit_waits_total", Kind::Counter),
        ("smolgram_rate_limit_wait_seconds_total", Kind::Counter),
        ("smolgram_poll_errors_total", Kind::Counter),
        ("smolgram_webhook_requests_total", Kind::Counter),
        ("smolgram_webhook_pending_updates", Kind::Gauge),
        ("smolgram_notify_requests_total", Kind::Counter),
        ("smolgram_notify_pending", Kind::Gauge),
        ("smolgram_notify_sent_total", Kind::Counter),
        ("smolgram_notify_failed_total", Kind::Counter),
        ("smolgram_state_writes_total", Kind::Counter),
        ("smolgram_state_resets_total", Kind::Counter),
        ("smolgram_state_errors_total", Kind::Counter),
        ("smolgram_state_retries_total", Kind::Counter),
        ("smolgram_job_runs_total", Kind::Counter),
        ("smolgram_jobs_scheduled", Kind::Gauge),
        ("smolgram_broadcast_sent_total", Kind::Counter),
        ("smolgram_broadcast_failed_total", Kind::Counter),
        ("smolgram_broadcast_remaining", Kind::Gauge),
        ("smolgram_last_poll_success_timestamp_seconds", Kind::Gauge),
        ("smolgram_ready", Kind::Gauge),
        ("smolgram_build_info", Kind::Gauge),
        ("process_start_time_seconds", Kind::Gauge),
    ];

    fn never_polled() -> Readiness {
        Readiness::new(Duration::from_secs(60), crate::Shutdown::new())
    }

    /// Text with a sample in every family, the per-method one included.
    fn scraped() -> String {
        let m = Metrics::default();
        m.observe_request::<()>("sendMessage", &Ok(()));
        m.observe_handler(Duration::from_millis(3));
        m.render(&never_polled())
    }

    #[test]
    fn table_rows_are_the_published_names_and_types_in_order() {
        let table: Vec<_> = FAMILIES.iter().map(|f| (f.name, f.kind)).collect();
        assert_eq!(table, PUBLISHED);
    }

    #[test]
    fn every_family_has_one_help_one_type_and_owns_the_samples_below_them() {
        let text = scraped();
        let mut seen = HashSet::new();
        for f in &FAMILIES {
            assert!(seen.insert(f.name), "{} is in the table twice", f.name);
            let help = format!("# HELP {} ", f.name);
            let ty = format!("# TYPE {} ", f.name);
            let helps: Vec<_> = text.lines().filter(|l| l.starts_with(&help)).collect();
            let types: Vec<_> = text.lines().filter(|l| l.starts_with(&ty)).collect();
            assert_eq!(helps, [format!("{help}{}", f.help)], "{}", f.name);
            let kind = format!("{:?}", f.kind).to_lowercase();
            assert_eq!(types, [format!("{ty}{kind}")], "{}", f.name);
        }
        // The text format wants a family's samples right after its TYPE line.
        let mut current: Option<&Family> = None;
        let mut sampled = HashSet::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("# TYPE ") {
                let name = name.split(' ').next().unwrap();
                current = FAMILIES.iter().find(|f| f.name == name);
                assert!(current.is_some(), "TYPE of no family: {line}");
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let sample = line.split(['{', ' ']).next().unwrap();
            let family = current.unwrap_or_else(|| panic!("sample before any TYPE: {line}"));
            let suffix = sample.strip_prefix(family.name);
            let owned = match family.kind {
                Kind::Histogram => matches!(suffix, Some("_bucket" | "_sum" | "_count")),
                Kind::Counter | Kind::Gauge => suffix == Some(""),
            };
            assert!(owned, "{line} is not a sample of {}", family.name);
            sampled.insert(family.name);
        }
        assert_eq!(sampled, seen, "every family has a sample");
    }

    #[test]
    fn a_method_name_cannot_break_the_exposition() {
        let m = Metrics::default();
        m.observe_request::<()>("send\"Message\\\n", &Ok(()));
        let text = m.render(&never_polled());
        let line = r#"smolgram_api_requests_total{method="send\"Message\\\n",result="ok"} 1"#;
        assert!(text.lines().any(|l| l == line), "{text}");
    }
}
