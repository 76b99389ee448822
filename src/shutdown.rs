//! The one stop signal: SIGTERM/SIGINT (or a call) → [`Shutdown`], which every
//! loop awaits; a second signal exits at once.
//!
//! `Shutdown` is the only runtime value that may cross threads, so that a
//! test, the `demo` script or a supervisor thread can stop a bot: it is an
//! atomic counter and an `event_listener::Event`, nothing that blocks.
//!
//! Must not: block, or do anything in the signal handler itself (async-signal
//! turns signals into a stream read on the executor).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_signal::{Signal, Signals};
use event_listener::Event;
use futures_lite::StreamExt;

use crate::Error;

/// A cloneable stop handle. The first [`request`](Shutdown::request) starts a
/// graceful stop; every loop races its work against
/// [`requested`](Shutdown::requested).
///
/// # Examples
/// ```
/// let shutdown = smolgram::Shutdown::new();
/// let other = shutdown.clone();
/// std::thread::spawn(move || other.request());
/// futures_lite::future::block_on(shutdown.requested());
/// assert!(shutdown.is_requested());
/// ```
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: AtomicUsize,
    event: Event,
}

impl Shutdown {
    /// A handle nobody has requested yet.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks every loop to stop. Idempotent; wakes all waiters.
    pub fn request(&self) {
        self.inner.requests.fetch_add(1, Ordering::SeqCst);
        self.inner.event.notify(usize::MAX);
    }

    /// Whether a stop was requested. Never waits.
    pub fn is_requested(&self) -> bool {
        self.inner.requests.load(Ordering::SeqCst) > 0
    }

    /// Waits until a stop is requested (at once if it already was).
    pub async fn requested(&self) {
        loop {
            if self.is_requested() {
                return;
            }
            let listener = self.inner.event.listen();
            // Checked again: a request between the check and `listen` would be missed.
            if self.is_requested() {
                return;
            }
            listener.await;
        }
    }

    /// Installs SIGTERM and SIGINT handlers now and returns the future that
    /// serves them; spawn it on the runtime.
    ///
    /// The first signal requests a graceful stop; a second one exits the
    /// process at once with `128 + signal` (143 for SIGTERM, 130 for SIGINT),
    /// as a shell would report a process killed by it.
    ///
    /// # Errors
    /// [`Error::Io`] if the handlers cannot be installed.
    pub fn watch_signals(&self) -> Result<impl Future<Output = ()> + 'static, Error> {
        let mut signals = Signals::new([Signal::Term, Signal::Int]).map_err(|e| Error::Io {
            what: "installing signal handlers",
            kind: e.kind(),
        })?;
        let shutdown = self.clone();
        Ok(async move {
            let mut seen = 0;
            while let Some(Ok(signal)) = signals.next().await {
                let (name, number) = match signal {
                    Signal::Term => ("SIGTERM", 15),
                    _ => ("SIGINT", 2),
                };
                seen += 1;
                if seen == 1 {
                    log::info!("stopping signal={name}; a second signal exits at once");
                    shutdown.request();
                } else {
                    log::warn!(
                        "exiting at once signal={name}; unfinished updates will be delivered again"
                    );
                    std::process::exit(128 + number);
                }
            }
        })
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("requested", &self.is_requested())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wakes_a_waiter_on_another_thread() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.is_requested());
        let waiter = {
            let s = shutdown.clone();
            std::thread::spawn(move || futures_lite::future::block_on(s.requested()))
        };
        shutdown.request();
        waiter.join().unwrap();
        assert!(shutdown.is_requested());
    }
}
