//! A bot inside a program that already runs something of its own: a tokio
//! service, a CLI, a REPL.
//!
//! [`spawn`] starts the bot on a thread of its own, with its own
//! [`Runtime`], and returns a [`BotHandle`] that any thread may hold: stop
//! the bot (with the usual drain), wait for it, read its [`Summary`]. Its
//! [`Remote`] carries Bot API calls from anywhere (a tokio task, a plain
//! thread) to the bot's executor and their answers back: they go through
//! the bot's own client, so there is no second connection pool and the rate
//! limits are shared with the handlers. Nothing here names an executor: the
//! futures are plain ones, woken through `async-channel`, that any executor
//! can poll.
//!
//! A stopped bot leaves nothing behind: its health port is released, its
//! thread joined, its io threads ended (see `api::io`), so a program can
//! start and stop bots as often as it likes.
//!
//! Where the caller drives a smol `LocalExecutor` on its own thread,
//! [`Service::future`] is the bot's run as one future to spawn there instead.
//!
//! Must not: install signal handlers (the program owns its signals), or
//! leave a thread, socket or task running once the bot has stopped.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use async_executor::Task;

use crate::api::generated::Method;
use crate::api::Client;
use crate::config::Config;
use crate::{wait, Bot, Error, Runtime, Service, Shutdown, Summary};

/// Calls from [`Remote`]s that may wait for the bot at once; more wait to
/// be queued (backpressure, not an unbounded queue).
const CALLS_QUEUED: usize = 64;

/// One call from a [`Remote`]: made on the bot's thread with its client.
type Call = Box<dyn FnOnce(Client) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Starts the bot that `make` builds with `config` on a thread of its own,
/// and returns once its health port is bound (or known busy): a bind or
/// config error comes back here, before anything runs. `make` runs on the
/// bot's thread, so handlers need not be `Send`.
///
/// No signal handler is installed: stop the bot through the handle.
///
/// # Examples
/// ```
/// use smolgram::{api::{methods::SendMessage, types::ChatId}, embed, testkit::FakeApi, Bot};
///
/// let api = FakeApi::start();
/// let mut config = smolgram::testkit::TestBot::config(&api);
/// for round in 0..2 {
///     let bot = embed::spawn(config.clone(), Bot::new).unwrap();
///     let remote = bot.remote();
///     let sent = remote.send_blocking(SendMessage::new(ChatId(7), "from outside")).unwrap();
///     assert_eq!(sent.chat.id, ChatId(7));
///     assert_eq!(bot.stop().unwrap().handled, 0);
///     // Stopped, the remote says so instead of waiting.
///     let late = remote.send_blocking(SendMessage::new(ChatId(7), "late"));
///     assert!(matches!(late, Err(smolgram::Error::Stopped)));
/// }
/// assert_eq!(api.sent_to(ChatId(7)), 2);
/// ```
///
/// # Errors
/// What [`Service::new`] returns: a health port that cannot be bound (a
/// busy one only with `require_health`), a bad TLS file, a state store
/// held elsewhere; [`Error::Io`] if the thread cannot be started.
pub fn spawn(
    config: Config,
    make: impl FnOnce() -> Bot + Send + 'static,
) -> Result<BotHandle, Error> {
    spawn_service(config, move |config| Service::new(make(), config), || {})
}

/// [`spawn`] with the service made by `make` (a bot and a store of its
/// own, say); `ended` runs on the bot's thread once the outcome is told.
pub(crate) fn spawn_service(
    config: Config,
    make: impl FnOnce(&Config) -> Result<Service, Error> + Send + 'static,
    ended: impl FnOnce() + Send + 'static,
) -> Result<BotHandle, Error> {
    let (calls, queue) = async_channel::bounded(CALLS_QUEUED);
    let (started_tx, started) = mpsc::channel();
    let (done_tx, done) = async_channel::bounded(1);
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    let thread = thread::Builder::new()
        .name("smolgram-bot".into())
        .spawn(move || {
            let service = match make(&config) {
                Ok(service) => service.serving(Calls(queue)),
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let _ = started_tx.send(Ok(service.health_addr()));
            let rt = Runtime::new();
            let outcome = rt.block_on(service.run_until(&rt, &stop)).and_then(|r| r);
            // Its tasks go before the outcome is told: nothing of the bot outlives `wait`.
            drop(rt);
            let _ = done_tx.try_send(outcome);
            ended();
        })
        .map_err(|e| Error::Io {
            what: "starting the bot's thread",
            kind: e.kind(),
        })?;
    match started.recv() {
        Ok(Ok(health)) => Ok(BotHandle {
            shutdown,
            health,
            remote: Remote { calls },
            done,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(panicked())
        }
    }
}

fn panicked() -> Error {
    Error::Io {
        what: "the bot's thread panicked",
        kind: std::io::ErrorKind::Other,
    }
}

/// A running bot, from [`spawn`]: `Send + Sync`, for any thread to hold.
///
/// Dropping it stops the bot and waits for it, as [`BotHandle::stop`] does
/// (but for a drop while a panic unwinds, which does not wait): a bot never
/// outlives its handle.
pub struct BotHandle {
    shutdown: Shutdown,
    health: Option<SocketAddr>,
    remote: Remote,
    done: async_channel::Receiver<Result<Summary, Error>>,
    thread: Option<JoinHandle<()>>,
}

impl BotHandle {
    /// The health listener's address; `None` if it is off or its port busy.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health
    }

    /// A handle for Bot API calls through the bot, for any thread or task.
    pub fn remote(&self) -> Remote {
        self.remote.clone()
    }

    /// The bot's stop: [`Shutdown::request`] on it is [`BotHandle::request_stop`].
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Asks the bot to stop, as SIGTERM does, and returns at once.
    pub fn request_stop(&self) {
        self.shutdown.request();
    }

    /// Whether the run has ended (stopped, or failed on its own).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the bot and waits for it: handlers get the drain timeout, the
    /// finished updates are confirmed, then the thread is joined.
    ///
    /// # Errors
    /// The run's own error, if it failed (a rejected token, say).
    pub fn stop(self) -> Result<Summary, Error> {
        self.request_stop();
        self.wait()
    }

    /// Waits for the run to end on its own (or for a stop someone else
    /// requested), blocking this thread. In async code, see
    /// [`BotHandle::finished`].
    ///
    /// # Errors
    /// As [`BotHandle::stop`].
    pub fn wait(mut self) -> Result<Summary, Error> {
        self.wait_here()
    }

    /// [`BotHandle::wait`] for at most `deadline`; the handle back if the
    /// bot still runs then.
    pub fn wait_timeout(mut self, deadline: Duration) -> Result<Result<Summary, Error>, BotHandle> {
        match async_io::block_on(wait::within(deadline, self.done.recv())) {
            Some(outcome) => Ok(self.join(outcome)),
            None => Err(self),
        }
    }

    /// [`BotHandle::wait`] as a future, for any executor (tokio's too):
    /// it blocks no thread.
    ///
    /// # Errors
    /// As [`BotHandle::stop`].
    pub async fn finished(mut self) -> Result<Summary, Error> {
        let outcome = self.done.recv().await;
        self.join(outcome)
    }

    /// [`BotHandle::wait`], for it and for the drop.
    fn wait_here(&mut self) -> Result<Summary, Error> {
        let outcome = self.done.recv_blocking();
        self.join(outcome)
    }

    /// The outcome the thread told, once the thread has ended.
    fn join(
        &mut self,
        outcome: Result<Result<Summary, Error>, async_channel::RecvError>,
    ) -> Result<Summary, Error> {
        // The outcome is its last act: the join returns at once.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        outcome.unwrap_or_else(|_| Err(panicked()))
    }
}

impl Drop for BotHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.request_stop();
            // Not while unwinding from a failed assertion: a stuck bot must not hide it.
            if !thread::panicking() {
                let _ = self.wait_here();
            }
        }
    }
}

impl fmt::Debug for BotHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotHandle")
            .field("health", &self.health)
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

/// Bot API calls through a running bot, from any thread or executor: cheap
/// to clone, `Send + Sync`.
///
/// A call crosses to the bot's thread and is made there with the bot's
/// client, its retries and its rate limits, as a handler's would be; the
/// answer comes back. Calls are taken until the bot is asked to stop; those
/// already made get the drain timeout to finish.
#[derive(Clone)]
pub struct Remote {
    calls: async_channel::Sender<Call>,
}

impl Remote {
    /// Sends `method` through the bot and waits for its answer.
    ///
    /// # Errors
    /// [`Error::Stopped`] if the bot has stopped (or is stopping) before the
    /// call was made, or the drain ended before it finished; otherwise what
    /// the call returns.
    pub async fn send<M>(&self, method: M) -> Result<M::Output, Error>
    where
        M: Method + Send + 'static,
    {
        let (tx, answer) = async_channel::bounded(1);
        let call: Call = Box::new(move |client| {
            Box::pin(async move {
                let _ = tx.try_send(client.send(&method).await);
            })
        });
        self.calls.send(call).await.map_err(|_| Error::Stopped)?;
        answer.recv().await.map_err(|_| Error::Stopped)?
    }

    /// [`Remote::send`], blocking this thread until the answer: for a plain
    /// thread or a REPL.
    ///
    /// # Errors
    /// As [`Remote::send`]; [`Error::AlreadyRunning`] if this thread runs a
    /// smolgram [`Runtime`], which a wait here would stall.
    pub fn send_blocking<M>(&self, method: M) -> Result<M::Output, Error>
    where
        M: Method + Send + 'static,
    {
        if Runtime::is_running() {
            return Err(Error::AlreadyRunning);
        }
        async_io::block_on(self.send(method))
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("stopped", &self.calls.is_closed())
            .finish_non_exhaustive()
    }
}

/// The bot's end of its [`Remote`]s, held by its [`Service`].
pub(crate) struct Calls(async_channel::Receiver<Call>);

impl Calls {
    /// Makes the calls that come in, with `client`, until `shutdown`; then
    /// gives those in flight up to `drain` to finish, and cuts the rest.
    pub(crate) async fn serve(
        &self,
        rt: &Runtime,
        client: &Client,
        shutdown: &Shutdown,
        drain: Duration,
    ) {
        let mut running: Vec<Task<()>> = Vec::new();
        while let Some(Ok(call)) = shutdown.race(self.0.recv()).await {
            running.retain(|task| !task.is_finished());
            running.push(rt.spawn(call(client.clone())));
        }
        self.close();
        let cut = wait::within(drain, async {
            for task in running {
                task.await;
            }
        });
        if cut.await.is_none() {
            log::warn!("drain deadline passed with remote calls unfinished; they were cut");
        }
    }

    /// No more calls; the queued ones are dropped, so their callers learn
    /// [`Error::Stopped`] instead of waiting for a channel nobody reads.
    fn close(&self) {
        self.0.close();
        while self.0.try_recv().is_ok() {}
    }
}

impl Drop for Calls {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for Calls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calls")
            .field("queued", &self.0.len())
            .finish()
    }
}
