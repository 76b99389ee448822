//! The io pool: a small, bounded set of threads that perform the blocking
//! `ureq` requests, so that nothing blocks the executor thread.
//!
//! Threads start lazily, one at a time, only when every running thread is
//! busy: an idle bot has one (the long poll holds it). Jobs travel over a
//! bounded `async_channel`, so a burst of sends waits for a free thread
//! instead of queueing without limit; each answer comes back over its own
//! one-slot channel. smol's `unblock` pool would do the same with up to 500
//! threads, sized by a process-wide env variable; a bot wants a small,
//! explicit bound.
//!
//! Each thread has its own context, made when it starts (the client's: a
//! ureq agent, so that each thread has its own connection pool and the
//! threads never wait on each other's lock; measured with `strace -k`, ureq's
//! pool mutex was the most contended lock of a burst).
//!
//! Must not: run anything but blocking I/O and decoding, or touch `Rc` state.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::{Error, NetworkKind};

type Job<C> = Box<dyn FnOnce(&C) + Send>;

/// Stack of an io thread. A ureq request with a rustls handshake needs far
/// less; the default 2 MiB would only reserve address space we never touch.
const STACK_SIZE: usize = 256 * 1024;

/// A bounded pool of io threads, each with a context `C` of its own. Cheap
/// to clone; all clones share the threads.
pub(crate) struct IoPool<C> {
    jobs: async_channel::Sender<Job<C>>,
    queue: async_channel::Receiver<Job<C>>,
    shared: Arc<Shared<C>>,
}

impl<C> Clone for IoPool<C> {
    fn clone(&self) -> Self {
        IoPool {
            jobs: self.jobs.clone(),
            queue: self.queue.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<C> {
    /// Makes a thread's context, on that thread, when it starts.
    make: Box<dyn Fn() -> C + Send + Sync>,
    max: usize,
    started: AtomicUsize,
    /// Jobs submitted and not yet finished (or dropped unrun).
    pending: AtomicUsize,
}

/// Counts a job as pending from submission until it ran or was dropped.
struct Pending<C>(Arc<Shared<C>>);

impl<C> Drop for Pending<C> {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<C: 'static> IoPool<C> {
    /// A pool that will start at most `max` threads (at least one), each
    /// with a context from `make`.
    pub(crate) fn new(max: usize, make: impl Fn() -> C + Send + Sync + 'static) -> IoPool<C> {
        let max = max.max(1);
        let (jobs, queue) = async_channel::bounded(max);
        IoPool {
            jobs,
            queue,
            shared: Arc::new(Shared {
                make: Box::new(make),
                max,
                started: AtomicUsize::new(0),
                pending: AtomicUsize::new(0),
            }),
        }
    }

    /// Runs `job` with an io thread's context on that thread and waits for its result without blocking
    /// the executor. Waits for a free slot when all threads are busy.
    ///
    /// `method` names the Bot API call for the error if the pool cannot run it.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        method: &str,
        job: impl FnOnce(&C) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let closed = || Error::Network {
            method: method.to_owned(),
            kind: NetworkKind::PoolClosed,
        };
        let (tx, rx) = async_channel::bounded(1);
        let pending = self.shared.pending.fetch_add(1, Ordering::AcqRel) + 1;
        let guard = Pending(Arc::clone(&self.shared));
        if pending > self.threads() {
            self.grow();
        }
        let job: Job<C> = Box::new(move |context| {
            let out = job(context);
            drop(guard);
            // The waiter may have gone (its future was dropped): nothing to do then.
            let _ = tx.try_send(out);
        });
        self.jobs.send(job).await.map_err(|_| closed())?;
        rx.recv().await.map_err(|_| closed())
    }

    /// Starts one more thread if the bound allows.
    fn grow(&self) {
        let shared = &self.shared;
        let started = shared.started.load(Ordering::Acquire);
        if started >= shared.max {
            return;
        }
        // Only the executor thread grows the pool, so load-then-store cannot race.
        shared.started.store(started + 1, Ordering::Release);
        let queue = self.queue.clone();
        let pool = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("smolgram-io-{started}"))
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let context = (pool.make)();
                while let Ok(job) = queue.recv_blocking() {
                    job(&context);
                }
            });
        if spawned.is_err() {
            // Out of threads: the jobs still run on the threads we have.
            shared.started.fetch_sub(1, Ordering::AcqRel);
            log::warn!("io thread not started; running with threads={started}");
        }
    }

    /// How many threads have been started so far.
    pub(crate) fn threads(&self) -> usize {
        self.shared.started.load(Ordering::Acquire)
    }
}

impl<C: 'static> fmt::Debug for IoPool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoPool")
            .field("threads", &self.threads())
            .field("max", &self.shared.max)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn threads_start_lazily_and_stay_bounded() {
        let pool = IoPool::new(3, || ());
        assert_eq!(pool.threads(), 0);
        let rt = crate::Runtime::new();
        // Five jobs that all wait on each other would deadlock beyond 3 threads
        // unless they ran 3 at a time: so let 3 meet, then the other 2.
        let barrier = Arc::new(Barrier::new(3));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let pool = pool.clone();
                let b = Arc::clone(&barrier);
                rt.spawn(async move { pool.run("test", move |()| (b.wait(), i).1).await })
            })
            .collect();
        let results: Vec<_> = rt
            .block_on(async {
                let mut out = Vec::new();
                for t in tasks {
                    out.push(t.await.unwrap());
                }
                out
            })
            .unwrap();
        assert_eq!(results, vec![0, 1, 2]);
        assert_eq!(pool.threads(), 3);
        let more = rt.block_on(pool.run("test", |()| 7)).unwrap().unwrap();
        assert_eq!(more, 7);
        assert_eq!(
            pool.threads(),
            3,
            "an idle thread is reused, not a new one started"
        );
    }
}
