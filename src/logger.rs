//! The process logger: `env_logger` with a `RUST_LOG`-style filter, one line
//! per event, on stderr, and never a `ureq` record above `info`; and panics
//! reported as one such line.
//!
//! ureq logs whole request URLs (the token is in the path) at debug and
//! trace. A filter directive alone is not enough: `RUST_LOG=ureq::unit=trace`
//! would be more specific and win. So the wrapper below drops those records
//! whatever the filter says.
//!
//! Must not: let a record from `ureq` or `ureq_proto` above `info` through.

use std::any::Any;

use log::{Level, Log, Metadata, Record};

/// Installs the logger with `filter` (`RUST_LOG` syntax, e.g. `info` or
/// `smolgram=debug`), and a panic hook that reports a panic as one `error`
/// line (`panic at=FILE:LINE message="…"`) instead of std's multi-line
/// report. Does nothing if a logger is already installed.
///
/// A handler's panic is caught and the bot goes on (see the crate docs);
/// the hook only names the place.
pub fn init_logging(filter: &str) {
    let inner = env_logger::Builder::new()
        .parse_filters(filter)
        .format_timestamp_millis()
        .build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Redacting { inner })).is_ok() {
        log::set_max_level(max);
        std::panic::set_hook(Box::new(|info| {
            let place = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let message = panic_message(info.payload());
            log::error!("panic at={place} message={message:?}");
        }));
    }
}

/// A panic's message: the `&str` or `String` it was raised with.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic")
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

    #[test]
    fn panic_messages_are_read_from_str_and_string_payloads() {
        let caught = |f: fn()| std::panic::catch_unwind(f).unwrap_err();
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let literal = caught(|| panic!("plain"));
        let formatted = caught(|| panic!("formatted {}", 42));
        let other = caught(|| std::panic::panic_any(7_u8));
        std::panic::set_hook(hook);
        assert_eq!(panic_message(&*literal), "plain");
        assert_eq!(panic_message(&*formatted), "formatted 42");
        assert_eq!(panic_message(&*other), "non-string panic");
    }
}
