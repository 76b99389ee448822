//! [`TestBot`]: a bot under test, running on its own thread against a
//! [`FakeApi`], with the same `Service` a real run uses.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::FakeApi;
use crate::api::Token;
use crate::config::Config;
use crate::{Bot, Error, Runtime, Service, Shutdown, Summary};

/// How long [`TestBot::stop`] waits for the bot to stop before it panics.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// A bot running on its own thread (its own [`Runtime`]) against a
/// [`FakeApi`]. Stopping it goes through [`Shutdown`], exactly as SIGTERM does.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use smolgram::{api::types::ChatId, testkit::{FakeApi, TestBot}, Bot};
///
/// let api = FakeApi::start();
/// let bot = TestBot::start(&api, || {
///     Bot::new().command("ping", |ctx| async move {
///         ctx.reply("pong").await?;
///         Ok(())
///     })
/// });
/// api.push_text(ChatId(7), "/ping");
/// api.wait_until("pong", Duration::from_secs(5), |api| api.sent_to(ChatId(7)) == 1);
/// assert_eq!(api.sent()[0].text, "pong");
/// assert_eq!(bot.stop().unwrap().handled, 1);
/// ```
#[derive(Debug)]
pub struct TestBot {
    shutdown: Shutdown,
    health: Option<SocketAddr>,
    done: mpsc::Receiver<Result<Summary, Error>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TestBot {
    /// The config a [`TestBot`] starts from: the fake's token and URL, the
    /// health listener on `127.0.0.1:0`, a 5 s long poll.
    pub fn config(api: &FakeApi) -> Config {
        // Cannot fail: the fake's token is a valid token (its tests check it).
        let token = Token::parse(FakeApi::TOKEN).expect("the testkit token is well formed");
        let mut config = Config::new(token);
        config.api_url = api.url();
        config.health = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.poll_timeout = Duration::from_secs(5);
        config
    }

    /// Starts the bot that `make` builds (on the bot's thread: handlers
    /// need not be `Send`) with [`TestBot::config`].
    ///
    /// # Panics
    /// If the service does not start (see [`TestBot::start_with`]).
    pub fn start(api: &FakeApi, make: impl FnOnce() -> Bot + Send + 'static) -> TestBot {
        match TestBot::start_with(TestBot::config(api), make) {
            Ok(bot) => bot,
            Err(e) => panic!("test bot did not start: {e}"),
        }
    }

    /// Starts the bot that `make` builds with `config`.
    ///
    /// # Errors
    /// What [`Service::new`] returns (a bad config, a health bind error).
    pub fn start_with(
        config: Config,
        make: impl FnOnce() -> Bot + Send + 'static,
    ) -> Result<TestBot, Error> {
        let (started_tx, started_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let shutdown = Shutdown::new();
        let stop = shutdown.clone();
        let thread = thread::Builder::new()
            .name("smolgram-test-bot".into())
            .spawn(move || {
                let service = match Service::new(make(), &config) {
                    Ok(service) => service,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                let _ = started_tx.send(Ok(service.health_addr()));
                let rt = Runtime::new();
                let result = rt.block_on(service.run_until(&rt, &stop)).and_then(|r| r);
                let _ = done_tx.send(result);
            })
            .map_err(|e| Error::Io {
                what: "starting the test bot thread",
                kind: e.kind(),
            })?;
        match started_rx.recv() {
            Ok(Ok(health)) => Ok(TestBot {
                shutdown,
                health,
                done,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::Io {
                    what: "starting the test bot (its thread panicked)",
                    kind: std::io::ErrorKind::Other,
                })
            }
        }
    }

    /// The health listener's address, if it is bound.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health
    }

    /// The bot's stop handle.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Requests a graceful stop (as SIGTERM does) and waits for the run's outcome.
    ///
    /// # Panics
    /// If the bot has not stopped 30 s after the request.
    pub fn stop(self) -> Result<Summary, Error> {
        self.shutdown.request();
        self.join(STOP_DEADLINE)
    }

    /// Waits up to `deadline` for the run to end on its own (a fatal error, say).
    ///
    /// # Panics
    /// If it has not ended by then.
    pub fn join(mut self, deadline: Duration) -> Result<Summary, Error> {
        let result = match self.done.recv_timeout(deadline) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("test bot still running after {deadline:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("test bot thread panicked"),
        };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        result
    }
}

impl Drop for TestBot {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shutdown.request();
            // Not while unwinding from a failed assertion: a stuck bot must not hide it.
            if !thread::panicking() {
                let _ = self.done.recv_timeout(STOP_DEADLINE);
                let _ = thread.join();
            }
        }
    }
}
