//! One bot run, wired together: startup (`getMe`), the poller, the
//! dispatcher, the health listener, the drain and the final confirmation.
//!
//! [`Service::new`] does the synchronous part (checks the config, binds the
//! health port) so that a caller knows the health address, or gets a bind
//! error, before anything runs. [`Service::run`] is one future on the
//! runtime: the health listener and the bot race inside it, so when the bot
//! stops, the listener is dropped with it.
//!
//! On stop: no new `getUpdates`; running handlers get up to the drain
//! timeout; then one `getUpdates` with `timeout=0` confirms what finished.
//! Updates still running are left unconfirmed, so the next start gets them.
//!
//! Must not: contain routing, polling or listener logic of its own.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;

use crate::api::retry::{self, Backoff};
use crate::api::types::User;
use crate::api::Client;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::dispatch::Limits;
use crate::health::{HealthListener, Probe};
use crate::metrics::Summary;
use crate::poll;
use crate::{Bot, Error, RateLimits, Runtime, Shutdown};

/// A bot ready to run: config checked, health port bound (or retrying).
///
/// # Examples
/// ```
/// use smolgram::{config::Config, api::Token, testkit::FakeApi, Bot, Runtime, Service};
///
/// let api = FakeApi::start();
/// let mut config = Config::new(Some(Token::parse(FakeApi::TOKEN).unwrap()));
/// config.api_url = api.url();
/// config.health = None;
/// let service = Service::new(Bot::new(), &config).unwrap();
/// service.shutdown().request(); // stops at once: nothing to do
/// let rt = Runtime::new();
/// let summary = rt.block_on(service.run(&rt)).unwrap().unwrap();
/// assert_eq!(summary.handled, 0);
/// ```
#[derive(Debug)]
pub struct Service {
    bot: Bot,
    config: Config,
    client: Client,
    health: Option<HealthListener>,
    shutdown: Shutdown,
}

impl Service {
    /// Checks `config` and binds the health listener.
    ///
    /// # Errors
    /// [`Error::Config`] without a token; [`Error::Bind`] if the health
    /// address cannot be bound (a busy port only with `require_health`).
    pub fn new(bot: Bot, config: &Config) -> Result<Service, Error> {
        let token = config
            .token
            .as_ref()
            .ok_or_else(|| Error::Config("no bot token; set TELEGRAM_BOT_TOKEN".into()))?;
        let health = match config.health {
            Some(addr) => Some(HealthListener::bind(addr, config.require_health)?),
            None => None,
        };
        Ok(Service {
            client: Client::with_limits(
                &config.api_url,
                token,
                config.io_threads,
                config
                    .rate_limits
                    .unwrap_or_else(|| RateLimits::for_api(&config.api_url)),
            )
            .with_retry(config.retry),
            bot,
            config: config.clone(),
            health,
            shutdown: Shutdown::new(),
        })
    }

    /// The health listener's address; `None` if it is off or its port busy.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health.as_ref().and_then(HealthListener::local_addr)
    }

    /// The handle that stops this run (from any thread).
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// This service, stopped by `shutdown` instead of a handle of its own:
    /// one whose signal handlers were installed before the service bound
    /// its health port, so no SIGTERM falls between the two.
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Service {
        self.shutdown = shutdown;
        self
    }

    /// Runs the bot on `rt` until a stop is requested or a fatal error.
    ///
    /// # Errors
    /// [`Error::Api`] with code 401 or 404 when Telegram rejects the token.
    pub async fn run(self, rt: &Runtime) -> Result<Summary, Error> {
        let Service {
            bot,
            config,
            client,
            health,
            shutdown,
        } = self;
        let health_addr = health.as_ref().and_then(HealthListener::local_addr);
        let probe = Probe {
            metrics: Rc::clone(client.metrics()),
            shutdown: shutdown.clone(),
            // A long poll answers at least once per poll timeout; twice that
            // (plus the request's own slack) without a success is "deaf".
            stale: config.poll_timeout * 2 + Duration::from_secs(10),
        };
        let listener = async {
            if let Some(health) = health {
                health.serve(rt, probe).await;
            }
            future::pending().await
        };
        let bot = async {
            let Some(me) = start(&client, &shutdown).await? else {
                return Ok(Summary::default());
            };
            let username = me.username.unwrap_or_default();
            let health = health_addr.map_or_else(|| "off-or-busy".to_owned(), |a| a.to_string());
            log::info!("ready bot=@{username} health={health}");
            let limits = Limits {
                max_in_flight: config.max_handlers,
                timeout: config.handler_timeout,
            };
            let dispatcher = Dispatcher::new(rt, bot, client.clone(), username, limits);
            let last_sent = poll::run(&client, &dispatcher, &shutdown, config.poll_timeout).await?;
            drain(&dispatcher, config.drain_timeout).await;
            let unfinished = dispatcher.held() as u64;
            confirm(&client, dispatcher.offset(), last_sent).await;
            let summary = client.metrics().summary(unfinished);
            log::info!("stopped {summary}");
            Ok(summary)
        };
        future::or(bot, listener).await
    }
}

/// Runs `bot` with `config` in this process until SIGTERM or SIGINT: the
/// whole lifecycle in one call, for a `main`.
///
/// # Errors
/// As [`Service::new`] and [`Service::run`]; [`Error::Io`] if the signal
/// handlers cannot be installed.
pub fn run(bot: Bot, config: &Config) -> Result<Summary, Error> {
    // Signals first: a supervisor may send SIGTERM as soon as the health port answers.
    let shutdown = Shutdown::new();
    let signals = shutdown.watch_signals()?;
    let service = Service::new(bot, config)?.with_shutdown(shutdown);
    let rt = Runtime::new();
    rt.spawn(signals).detach();
    rt.block_on(service.run(&rt))?
}

/// `getMe` until it answers: network trouble is retried with backoff and
/// logged once per change; a rejected token is fatal. `None`: stopped first.
async fn start(client: &Client, shutdown: &Shutdown) -> Result<Option<User>, Error> {
    let mut backoff = Backoff::transient();
    let mut failing: Option<String> = None;
    loop {
        // This loop is the retry policy here: one try per attempt, logged per change.
        let attempt = future::or(
            async { Some(client.without_retries().get_me().await) },
            async {
                shutdown.requested().await;
                None
            },
        );
        match attempt.await {
            None => return Ok(None),
            Some(Ok(me)) => {
                if failing.is_some() {
                    log::info!("bot api reachable again");
                }
                return Ok(Some(me));
            }
            Some(Err(e)) if poll::is_fatal(&e) => return Err(e),
            Some(Err(e)) => {
                let delay = e.retry_after().map_or_else(|| backoff.next(), retry::after);
                let line = e.to_string();
                if failing.as_deref() != Some(line.as_str()) {
                    log::warn!("bot api not reachable error={line:?}; retrying with backoff");
                    failing = Some(line);
                }
                if !poll::sleep(delay, shutdown).await {
                    return Ok(None);
                }
            }
        }
    }
}

/// Lets running handlers finish, up to `deadline`.
async fn drain(dispatcher: &Dispatcher<'_>, deadline: Duration) {
    let running = dispatcher.held();
    if running == 0 {
        return;
    }
    log::info!("draining handlers={running} deadline={deadline:?}");
    let finished = future::or(
        async {
            dispatcher.idle().await;
            true
        },
        async {
            async_io::Timer::after(deadline).await;
            false
        },
    )
    .await;
    if !finished {
        log::warn!(
            "drain deadline passed unfinished={}; they stay unconfirmed and will be delivered again",
            dispatcher.held()
        );
    }
}

/// Confirms the finished updates with one short `getUpdates`, if the last
/// poll did not already. `timeout=0` and `limit=1` keep it short, and it
/// carries no long poll that a successor instance would have to fight:
/// a 409 on it only means a successor is already polling, which is fine.
async fn confirm(client: &Client, offset: Option<i64>, last_sent: Option<i64>) {
    let Some(offset) = offset else { return };
    if Some(offset) == last_sent {
        return;
    }
    match client.get_updates(Some(offset), 1, Duration::ZERO).await {
        Ok(_) => log::info!("confirmed offset={offset}"),
        Err(e) => log::warn!(
            "final confirmation failed offset={offset} error={e}; those updates may come again"
        ),
    }
}
