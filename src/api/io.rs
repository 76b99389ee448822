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
//! [`IoPool::close`] ends the threads: the client closes its pool when its
//! last clone goes, so a stopped bot leaves no thread (and no kept-alive
//! connection) behind, and a program that starts and stops bots keeps its
//! thread count flat.
//!
//! Must not: run anything but blocking I/O and decoding, or touch `Rc` state.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{Error, NetworkKind};

type Job<C> = Box<dyn FnOnce(&C) + Send>;

/// Stack of an io thread. A ureq request with a rustls handshake needs far
/// less; the default 2 MiB would only reserve address space we never touch.
const STACK_SIZE: usize = 256 * 1024;

/// How long [`IoPool::close`] waits for the threads to end. An idle thread
/// ends at once; one still in a request (a cancelled handler's, say) is left
/// to finish it on its own, within the request's deadline.
const CLOSE_DEADLINE: Duration = Duration::from_secs(1);

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
    /// The started threads, for [`IoPool::close`] to join.
    handles: Mutex<Vec<JoinHandle<()>>>,
    /// How many threads have ended; `ended_cv` is notified at each.
    ended: Mutex<usize>,
    ended_cv: Condvar,
}

/// Counts its thread as ended when dropped: after the thread's context
/// (its ureq agent and connections) is gone, on every exit path.
struct Ended<C>(Arc<Shared<C>>);

impl<C> Drop for Ended<C> {
    fn drop(&mut self) {
        *lock(&self.0.ended) += 1;
        self.0.ended_cv.notify_all();
    }
}

/// A lock that a panic elsewhere does not poison: the counts stay right.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
                handles: Mutex::default(),
                ended: Mutex::new(0),
                ended_cv: Condvar::new(),
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
                let _ended = Ended(Arc::clone(&pool));
                let context = (pool.make)();
                while let Ok(job) = queue.recv_blocking() {
                    job(&context);
                }
            });
        match spawned {
            Ok(handle) => lock(&shared.handles).push(handle),
            Err(_) => {
                // Out of threads: the jobs still run on the threads we have.
                shared.started.fetch_sub(1, Ordering::AcqRel);
                log::warn!("io thread not started; running with threads={started}");
            }
        }
    }

    /// Ends the pool: jobs not yet taken are dropped (their callers get
    /// [`NetworkKind::PoolClosed`]), idle threads end and are joined. A
    /// thread still in a request after [`CLOSE_DEADLINE`] is left to end on
    /// its own when that request does. Every clone is closed with it.
    pub(crate) fn close(&self) {
        self.jobs.close();
        let shared = &self.shared;
        let handles = std::mem::take(&mut *lock(&shared.handles));
        let started = handles.len();
        let ended = lock(&shared.ended);
        let (ended, _) = shared
            .ended_cv
            .wait_timeout_while(ended, CLOSE_DEADLINE, |ended| *ended < started)
            .unwrap_or_else(PoisonError::into_inner);
        let busy = started - (*ended).min(started);
        drop(ended);
        for handle in handles {
            // A finished thread joins at once; a busy one is detached.
            if busy == 0 || handle.is_finished() {
                let _ = handle.join();
            }
        }
        if busy > 0 {
            log::debug!("io pool closed busy_threads={busy}; they end with their requests");
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

    #[test]
    fn close_ends_and_joins_the_threads_and_refuses_new_jobs() {
        let pool = IoPool::new(2, || ());
        let rt = crate::Runtime::new();
        let barrier = Arc::new(Barrier::new(2));
        let both: Vec<_> = (0..2)
            .map(|_| {
                let (pool, b) = (pool.clone(), Arc::clone(&barrier));
                rt.spawn(async move { pool.run("test", move |()| b.wait()).await })
            })
            .collect();
        rt.block_on(async {
            for job in both {
                job.await.unwrap();
            }
        })
        .unwrap();
        assert_eq!(pool.threads(), 2);
        pool.close();
        assert_eq!(*lock(&pool.shared.ended), 2, "both threads ended");
        assert!(lock(&pool.shared.handles).is_empty(), "and were joined");
        let refused = rt.block_on(pool.run("getMe", |()| ())).unwrap();
        assert!(matches!(
            refused,
            Err(Error::Network {
                kind: NetworkKind::PoolClosed,
                ..
            })
        ));
    }
}
