//! The runtime: one `LocalExecutor`, owned, driven by `block_on` on the
//! calling thread together with the async-io reactor.
//!
//! A key design decision is that the executor lives *inside* [`Runtime`] and
//! is only reachable through `&self`. [`Runtime::block_on`] borrows the
//! runtime for as long as it runs, so the runtime (and with it the executor
//! and every task on it) cannot be dropped, moved or closed while it runs:
//! the borrow checker refuses, no runtime flag is involved. Nesting is the
//! other classic failure; a thread-local flag, set for the duration of
//! `block_on` and reset by a drop guard on every exit path (panics included),
//! turns it into [`Error::AlreadyRunning`].
//!
//! Must not: know about Telegram.
//!
//! The runtime cannot be dropped from inside its own `block_on`:
//! ```compile_fail
//! let rt = smolgram::Runtime::new();
//! rt.block_on(async move { drop(rt) });
//! ```
//! Nor can it leave the thread that made it:
//! ```compile_fail
//! fn is_send<T: Send>(_: T) {}
//! is_send(smolgram::Runtime::new());
//! ```

use std::cell::Cell;
use std::fmt;
use std::future::Future;

use async_executor::{LocalExecutor, Task};

use crate::Error;

thread_local! {
    /// Whether a `block_on` of any `Runtime` runs on this thread.
    static RUNNING: Cell<bool> = const { Cell::new(false) };
}

/// One executor on one thread: the long-poll client, the handlers and the
/// health listener all run on it.
///
/// # Examples
/// ```
/// let rt = smolgram::Runtime::new();
/// let task = rt.spawn(async { 6 * 7 });
/// assert_eq!(rt.block_on(task).unwrap(), 42);
/// ```
pub struct Runtime {
    executor: LocalExecutor<'static>,
}

impl Runtime {
    /// A runtime with no tasks. Creating one is cheap; nothing runs until `block_on`.
    pub fn new() -> Runtime {
        Runtime {
            executor: LocalExecutor::new(),
        }
    }

    /// Runs the executor and the reactor on this thread until `future` completes.
    ///
    /// Tasks spawned meanwhile make progress too; those still unfinished when
    /// `future` completes stay on the executor until the next `block_on` or
    /// until the runtime is dropped, which cancels them.
    ///
    /// # Errors
    /// [`Error::AlreadyRunning`] if a `block_on` (of this or any runtime) is
    /// already running on this thread; `future` is dropped unpolled.
    ///
    /// ```
    /// use smolgram::{Error, Runtime};
    /// let rt = Runtime::new();
    /// let nested = rt.block_on(async { Runtime::new().block_on(async {}) }).unwrap();
    /// assert!(matches!(nested, Err(Error::AlreadyRunning)));
    /// ```
    pub fn block_on<T>(&self, future: impl Future<Output = T>) -> Result<T, Error> {
        if RUNNING.replace(true) {
            return Err(Error::AlreadyRunning);
        }
        let _reset = ResetOnDrop;
        Ok(async_io::block_on(self.executor.run(future)))
    }

    /// Runs this runtime's tasks while `future` runs, as a future for
    /// another executor to drive: the caller's own smol `LocalExecutor`,
    /// say, on the caller's thread. Nothing here blocks, so no re-entry
    /// guard is needed; the borrow still keeps the runtime alive meanwhile.
    ///
    /// ```
    /// let rt = smolgram::Runtime::new();
    /// let theirs = async_executor::LocalExecutor::new();
    /// let task = rt.spawn(async { 6 * 7 });
    /// let answer = futures_lite::future::block_on(theirs.run(rt.run(task)));
    /// assert_eq!(answer, 42);
    /// ```
    pub async fn run<T>(&self, future: impl Future<Output = T>) -> T {
        self.executor.run(future).await
    }

    /// Spawns a task on this runtime's executor. It runs while `block_on`
    /// (or [`Runtime::run`]) runs.
    ///
    /// Drop the [`Task`] to cancel it, `.await` it for its output, or
    /// `detach()` it to let it run on its own.
    pub fn spawn<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> Task<T> {
        self.executor.spawn(future)
    }

    /// Whether a `block_on` is running on the current thread.
    pub fn is_running() -> bool {
        RUNNING.get()
    }
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime::new()
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// Clears the re-entry flag when `block_on` returns or unwinds.
struct ResetOnDrop;

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        RUNNING.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_inside_block_on_of_the_same_runtime_is_refused() {
        let rt = Runtime::new();
        let inner = rt.block_on(async { rt.block_on(async { 1 }) }).unwrap();
        assert!(matches!(inner, Err(Error::AlreadyRunning)));
    }

    #[test]
    fn flag_is_reset_after_a_panic_inside_block_on() {
        let rt = Runtime::new();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async { panic!("boom") }).unwrap();
        }));
        assert!(caught.is_err());
        assert!(!Runtime::is_running());
        assert_eq!(rt.block_on(async { 5 }).unwrap(), 5);
    }

    #[test]
    fn spawned_tasks_run_during_block_on() {
        let rt = Runtime::new();
        let (tx, rx) = async_channel::bounded(1);
        rt.spawn(async move { tx.send(3).await.unwrap() }).detach();
        assert_eq!(rt.block_on(rx.recv()).unwrap().unwrap(), 3);
    }
}
