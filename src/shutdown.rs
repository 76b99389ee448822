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
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_io::Timer;
use async_signal::{Signal, Signals};
use event_listener::Event;
use futures_lite::{future, Stream, StreamExt};

use crate::{wait, Error};

/// After a failed read of the signal stream, wait this long before the
/// next, so that a persistent failure cannot spin the executor thread.
const SIGNAL_RETRY: Duration = Duration::from_millis(100);

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
        wait::until(&self.inner.event, || self.is_requested()).await;
    }

    /// Runs `work` until it finishes (`Some` of its output) or a stop is
    /// requested first (`None`; `work` is dropped, which cancels it).
    ///
    /// ```
    /// let shutdown = smolgram::Shutdown::new();
    /// let rt = smolgram::Runtime::new();
    /// assert_eq!(rt.block_on(shutdown.race(async { 1 })).unwrap(), Some(1));
    /// shutdown.request();
    /// let never = futures_lite::future::pending::<()>();
    /// assert_eq!(rt.block_on(shutdown.race(never)).unwrap(), None);
    /// ```
    pub async fn race<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        future::or(async { Some(work.await) }, async {
            self.requested().await;
            None
        })
        .await
    }

    /// Sleeps for `delay` unless a stop is requested first; `false` then.
    pub async fn sleep(&self, delay: Duration) -> bool {
        self.race(Timer::after(delay)).await.is_some()
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
        let signals = Signals::new([Signal::Term, Signal::Int]).map_err(|e| Error::Io {
            what: "installing signal handlers",
            kind: e.kind(),
        })?;
        let shutdown = self.clone();
        Ok(async move {
            let number = serve_signals(signals, &shutdown).await;
            std::process::exit(128 + number);
        })
    }
}

/// Turns `signals` into stop requests until the second signal, and returns
/// that signal's number. A read error is logged (once per kind) and the
/// stream read again after [`SIGNAL_RETRY`]: SIGTERM must keep working.
async fn serve_signals(
    mut signals: impl Stream<Item = io::Result<Signal>> + Unpin,
    shutdown: &Shutdown,
) -> i32 {
    let mut seen = 0;
    let mut failing = None;
    loop {
        let signal = match signals.next().await {
            Some(Ok(signal)) => signal,
            Some(Err(e)) => {
                if failing != Some(e.kind()) {
                    log::warn!("signal stream failed error={e}; reading it again");
                    failing = Some(e.kind());
                }
                Timer::after(SIGNAL_RETRY).await;
                continue;
            }
            // Signals' stream never ends; if one did, nothing more could come.
            None => {
                log::error!("signal stream ended; SIGTERM and SIGINT are no longer handled");
                return future::pending().await;
            }
        };
        failing = None;
        let (name, number) = match signal {
            Signal::Term => ("SIGTERM", 15),
            _ => ("SIGINT", 2),
        };
        seen += 1;
        if seen == 1 {
            log::info!("stopping signal={name}; a second signal exits at once");
            shutdown.request();
        } else {
            log::warn!("exiting at once signal={name}; unfinished updates will be delivered again");
            return number;
        }
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

    #[test]
    fn a_signal_stream_error_is_survived_and_the_next_signals_still_count() {
        let shutdown = Shutdown::new();
        let stream = futures_lite::stream::iter([
            Err(io::Error::other("read failed")),
            Ok(Signal::Term),
            Err(io::Error::other("read failed")),
            Ok(Signal::Int),
        ]);
        let number = async_io::block_on(serve_signals(stream, &shutdown));
        assert!(
            shutdown.is_requested(),
            "the first SIGTERM after the error stops"
        );
        assert_eq!(number, 2, "the second signal exits, with SIGINT's number");
    }
}
