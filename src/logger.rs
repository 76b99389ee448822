//! The process logger: `env_logger` with a `RUST_LOG`-style filter, one line
//! per event, on stderr, and never a `ureq` record above `info`.
//!
//! ureq logs whole request URLs (the token is in the path) at debug and
//! trace. A filter directive alone is not enough: `RUST_LOG=ureq::unit=trace`
//! would be more specific and win. So the wrapper below drops those records
//! whatever the filter says.
//!
//! Must not: let a record from `ureq` or `ureq_proto` above `info` through.

use log::{Level, Log, Metadata, Record};

/// Installs the logger with `filter` (`RUST_LOG` syntax, e.g. `info` or
/// `smolgram=debug`). Does nothing if a logger is already installed.
pub fn init_logging(filter: &str) {
    let inner = env_logger::Builder::new()
        .parse_filters(filter)
        .format_timestamp_millis()
        .build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Redacting { inner })).is_ok() {
        log::set_max_level(max);
    }
}

struct Redacting {
    inner: env_logger::Logger,
}

/// Whether a record may hold a request URL (and so the token).
fn may_hold_url(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with("ureq") && metadata.level() > Level::Info
}

impl Log for Redacting {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        !may_hold_url(metadata) && self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !may_hold_url(record.metadata()) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ureq_debug_and_trace_are_dropped_but_its_warnings_kept() {
        fn at(target: &str, level: Level) -> Metadata<'_> {
            Metadata::builder().target(target).level(level).build()
        }
        assert!(may_hold_url(&at("ureq::unit", Level::Trace)));
        assert!(may_hold_url(&at("ureq_proto::client", Level::Debug)));
        assert!(!may_hold_url(&at("ureq::pool", Level::Warn)));
        assert!(!may_hold_url(&at("smolgram::poll", Level::Trace)));
    }
}
