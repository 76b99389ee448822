//! One bot run, wired together: startup (`getMe`), the poller, the
//! dispatcher, the health listener, the drain and the final confirmation;
//! and the run's own state, which it creates and hands out: the metrics,
//! the readiness, and at the end the [`Summary`].
//!
//! [`Service::new`] does the synchronous part (binds the health port) so
//! that a caller knows the health address, or gets a bind error, before
//! anything runs. [`Service::run_until`] is one future on the runtime: the
//! health listener and the bot race inside it, so when the bot stops, the
//! listener is dropped with it. The caller supplies the stop: a
//! [`Shutdown`] that a signal, a thread or a test requests.
//!
//! On stop: no new `getUpdates`; running handlers get up to the drain
//! timeout; then one `getUpdates` with `timeout=0` confirms what finished.
//! Updates still running are left unconfirmed, so the next start gets them.
//! In webhook mode the route answers 503 to new requests instead, and the
//! requests of the handlers that finished are answered 200 before the
//! listener goes; the webhook stays set.
//!
//! Must not: contain routing, polling or listener logic of its own.

use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;

use crate::api::methods::SetMyCommands;
use crate::api::retry::{self, Backoff};
use crate::api::types::BotCommand;
use crate::api::types::User;
use crate::api::Client;
use crate::config::{Config, WebhookSecret};
use crate::dispatch::{Dispatcher, Limits};
use crate::embed::Calls;
use crate::health::{HealthListener, Probe};
use crate::jobs::Jobs;
#[cfg(feature = "jobs")]
use crate::jobs::{broadcast, scheduler};
use crate::metrics::Metrics;
use crate::notify::Outlet;
use crate::poll::{self, Reports};
use crate::readiness::Readiness;
use crate::state::{self, States, Store};
#[cfg(feature = "tls")]
use crate::tls;
use crate::webhook::{self, Inlet};
use crate::{wait, Bot, Error, RateLimits, Runtime, Shutdown};

/// How long a stop in webhook mode gives the finished handlers' requests
/// to write their answers, after the drain.
const SETTLE: Duration = Duration::from_secs(1);

/// A bot ready to run: health port bound (or retrying).
///
/// # Examples
/// ```
/// use smolgram::{config::Config, api::Token, testkit::FakeApi, Bot, Runtime, Service, Shutdown};
///
/// let api = FakeApi::start();
/// let mut config = Config::new(Token::parse(FakeApi::TOKEN).unwrap());
/// config.api_url = api.url();
/// config.health = None;
/// let service = Service::new(Bot::new(), &config).unwrap();
/// let shutdown = Shutdown::new();
/// shutdown.request(); // stops at once: nothing to do
/// let rt = Runtime::new();
/// let summary = rt.block_on(service.run_until(&rt, &shutdown)).unwrap().unwrap();
/// assert_eq!(summary.handled, 0);
/// ```
#[derive(Debug)]
pub struct Service {
    bot: Bot,
    config: Config,
    health: Option<HealthListener>,
    store: Rc<dyn Store>,
    /// Calls from the [`embed::Remote`]s of an embedded bot.
    calls: Option<Calls>,
}

impl Service {
    /// Binds the health listener of `config`.
    ///
    /// # Errors
    /// [`Error::Bind`] if the health address cannot be bound (a busy port
    /// only with `require_health`).
    pub fn new(bot: Bot, config: &Config) -> Result<Service, Error> {
        // Bad files are a start-up error, before the port is taken.
        #[cfg(feature = "tls")]
        let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
        #[cfg(not(feature = "tls"))]
        if config.tls.is_some() {
            return Err(Error::Config(
                "--tls-cert: this build has no TLS mode (cargo feature `tls`); put a TLS proxy in front, or see the README".into(),
            ));
        }
        let health = match config.health {
            // A webhook's requests come through it: its port is required.
            Some(addr) => {
                let listener =
                    HealthListener::bind(addr, config.require_health || config.webhook.is_some())?;
                #[cfg(feature = "tls")]
                let listener = match tls {
                    Some(tls) => listener.with_tls(tls),
                    None => listener,
                };
                Some(listener)
            }
            None => None,
        };
        // A store held by another process is a start-up error too.
        let store = state::open(&config.state, config.token.bot_id())?;
        log::info!("state store={}", store.describe());
        Ok(Service {
            bot,
            config: config.clone(),
            health,
            store,
            calls: None,
        })
    }

    /// Keeps handlers' state in `store` instead of the one `config.state`
    /// names: a store of one's own.
    pub fn with_store(mut self, store: Rc<dyn Store>) -> Service {
        self.store = store;
        self
    }

    /// Makes the calls of an embedded bot's [`embed::Remote`]s during the run.
    pub(crate) fn serving(mut self, calls: Calls) -> Service {
        self.calls = Some(calls);
        self
    }

    /// The health listener's address; `None` if it is off or its port busy.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health.as_ref().and_then(HealthListener::local_addr)
    }

    /// The run as one future, for an executor the caller drives on this
    /// thread (a smol `LocalExecutor`, say): the bot's tasks run on a
    /// [`Runtime`] of its own inside it ([`Runtime::run`]). It ends as
    /// [`Service::run_until`] does; request the stop and await it for the
    /// drain, as dropping it midway cuts the run short (nothing confirmed).
    ///
    /// ```
    /// use smolgram::{testkit::{FakeApi, TestBot}, Bot, Service, Shutdown};
    ///
    /// let api = FakeApi::start();
    /// let service = Service::new(Bot::new(), &TestBot::config(&api)).unwrap();
    /// let shutdown = Shutdown::new();
    /// let ours = async_executor::LocalExecutor::new();
    /// let bot = ours.spawn(service.future(shutdown.clone()));
    /// let summary = futures_lite::future::block_on(ours.run(async {
    ///     // The caller's own work runs beside the bot; here, it stops it.
    ///     shutdown.request();
    ///     bot.await
    /// }));
    /// assert_eq!(summary.unwrap().handled, 0);
    /// ```
    ///
    /// # Errors
    /// As [`Service::run_until`].
    pub async fn future(self, shutdown: Shutdown) -> Result<Summary, Error> {
        let rt = Runtime::new();
        rt.run(self.run_until(&rt, &shutdown)).await
    }

    /// Runs the bot on `rt` until `shutdown` is requested or a fatal error.
    ///
    /// # Errors
    /// [`Error::Api`] with code 401 or 404 when Telegram rejects the token.
    pub async fn run_until(self, rt: &Runtime, shutdown: &Shutdown) -> Result<Summary, Error> {
        let Service {
            bot,
            config,
            health,
            store,
            calls,
        } = self;
        let health_addr = health.as_ref().and_then(HealthListener::local_addr);
        let metrics = Rc::new(Metrics::default());
        // A long poll answers at least once per poll timeout; twice that
        // (plus the request's own slack) without a success is "deaf".
        let stale = config.poll_timeout * 2 + Duration::from_secs(10);
        let readiness = Rc::new(match config.webhook {
            Some(_) => Readiness::webhook(shutdown.clone()),
            None => Readiness::new(stale, shutdown.clone()),
        });
        // A self-signed certificate goes with `setWebhook`; a CA's need not.
        #[cfg(feature = "tls")]
        let certificate = match (&config.webhook, &config.tls) {
            (Some(_), Some(files)) if tls::is_self_signed(files)? => Some(files.cert.clone()),
            _ => None,
        };
        #[cfg(not(feature = "tls"))]
        let certificate: Option<std::path::PathBuf> = None;
        let inlet = match &config.webhook {
            Some(webhook) => {
                let secret = match &webhook.secret {
                    Some(secret) => secret.clone(),
                    None => WebhookSecret::generate()?,
                };
                let metrics = Rc::clone(&metrics);
                Some(Rc::new(Inlet::new(
                    webhook,
                    secret,
                    metrics,
                    shutdown.clone(),
                )))
            }
            None => None,
        };
        let client = Client::with_metrics(
            &config.api_url,
            &config.token,
            config.io_threads,
            config
                .rate_limits
                .unwrap_or_else(|| RateLimits::for_api(&config.api_url)),
            Rc::clone(&metrics),
        )
        .with_retry(config.retry);
        let outlet = config
            .notify
            .clone()
            .map(|notify| Rc::new(Outlet::new(notify, Rc::clone(&metrics))));
        let probe = Probe {
            metrics: Rc::clone(&metrics),
            readiness: Rc::clone(&readiness),
            inlet: inlet.clone(),
            outlet: outlet.clone(),
        };
        let listener = async {
            if let Some(health) = health {
                health.serve(rt, probe).await;
            }
            future::pending().await
        };
        let bot = async {
            let Some(me) = start(&client, shutdown).await? else {
                return Ok(Summary::default());
            };
            let username = me.username.unwrap_or_default();
            let health = health_addr.map_or_else(|| "off-or-busy".to_owned(), |a| a.to_string());
            let mode = if inlet.is_some() {
                "webhook"
            } else {
                "polling"
            };
            log::info!("ready bot=@{username} health={health} mode={mode}");
            register_commands(&client, &bot).await;
            // Notifications go out beside the updates, through the same
            // client (its retries and rate limits); on stop the task sends
            // what is queued within the drain timeout (see: #14).
            let delivery = outlet.map(|outlet| {
                let (client, shutdown, drain) =
                    (client.clone(), shutdown.clone(), config.drain_timeout);
                rt.spawn(async move { outlet.deliver(&client, &shutdown, drain).await })
            });
            let limits = Limits {
                max_in_flight: config.max_handlers,
                timeout: config.handler_timeout,
            };
            let states = Rc::new(States::new(store, config.state.ttl, Rc::clone(&metrics)));
            let jobs = Rc::new(Jobs::new(&bot, &config, Rc::clone(&metrics)));
            // An embedded bot's remote calls, beside the updates too.
            let remote = async {
                if let Some(calls) = &calls {
                    calls
                        .serve(rt, &client, shutdown, config.drain_timeout)
                        .await;
                }
            };
            // Jobs and broadcasts run beside the updates, and stop with them.
            #[cfg(feature = "jobs")]
            let beside = future::zip(
                scheduler::run(
                    Rc::clone(&jobs),
                    rt,
                    client.clone(),
                    Rc::clone(&states),
                    shutdown.clone(),
                    config.drain_timeout,
                ),
                broadcast::run(
                    Rc::clone(&jobs),
                    client.clone(),
                    Rc::clone(&states),
                    shutdown.clone(),
                ),
            );
            // Without the feature no bot can have any (see Cargo.toml's `jobs`).
            #[cfg(not(feature = "jobs"))]
            let beside = future::ready(());
            let dispatcher = Dispatcher::new(
                rt,
                bot,
                client.clone(),
                username,
                limits,
                states,
                jobs,
                Rc::clone(&metrics),
            );
            let updates = async {
                let unfinished = match (&inlet, &config.webhook) {
                    (Some(inlet), Some(webhook)) => {
                        let run = webhook::Run {
                            client: &client,
                            config: webhook,
                            certificate: certificate.as_deref(),
                            readiness: &readiness,
                            shutdown,
                        };
                        webhook::run(inlet, &dispatcher, run).await?;
                        drain(&dispatcher, config.drain_timeout).await;
                        // The finished handlers' requests write their 200 now;
                        // the unfinished ones' are cut, and Telegram sends them again.
                        inlet.settled(SETTLE).await;
                        dispatcher.held() as u64
                    }
                    _ => {
                        let reports = Reports {
                            metrics: &metrics,
                            readiness: &readiness,
                        };
                        let last_sent =
                            poll::run(&client, &dispatcher, shutdown, reports, config.poll_timeout)
                                .await?;
                        drain(&dispatcher, config.drain_timeout).await;
                        let unfinished = dispatcher.held() as u64;
                        confirm(&client, &dispatcher, last_sent).await;
                        unfinished
                    }
                };
                Ok::<u64, Error>(unfinished)
            };
            let updates = async {
                let unfinished = updates.await;
                if unfinished.is_err() {
                    // A fatal error: the jobs stop too.
                    shutdown.request();
                }
                unfinished
            };
            let (unfinished, _) = future::zip(updates, future::zip(beside, remote)).await;
            let unfinished = unfinished?;
            if let Some(delivery) = delivery {
                delivery.await;
            }
            let summary = Summary::of(&metrics, unfinished);
            log::info!("stopped {summary}");
            Ok(summary)
        };
        future::or(bot, listener).await
    }
}

/// Runs `bot` with `config` on this thread until SIGTERM or SIGINT: the
/// whole lifecycle in one call, for a `main`.
///
/// # Errors
/// As [`run_with`].
pub fn run(bot: Bot, config: &Config) -> Result<Summary, Error> {
    run_with(bot, config, &Shutdown::new(), |_| {})
}

/// [`run`], stopped by `shutdown` as well as by the signals, with a look at
/// the bound [`Service`] (its health address, say) before it runs.
///
/// Signal handlers come first, then the bind: a supervisor may send SIGTERM
/// as soon as the health port answers, and it must find them installed.
///
/// # Errors
/// [`Error::Io`] if the signal handlers cannot be installed; as
/// [`Service::new`] and [`Service::run_until`] otherwise.
pub fn run_with(
    bot: Bot,
    config: &Config,
    shutdown: &Shutdown,
    bound: impl FnOnce(&Service),
) -> Result<Summary, Error> {
    let signals = shutdown.watch_signals()?;
    let service = Service::new(bot, config)?;
    bound(&service);
    let rt = Runtime::new();
    rt.spawn(signals).detach();
    rt.block_on(service.run_until(&rt, shutdown))?
}

/// `getMe` until it answers: network trouble is retried with backoff and
/// logged once per change; a rejected token is fatal. `None`: stopped first.
async fn start(client: &Client, shutdown: &Shutdown) -> Result<Option<User>, Error> {
    let mut backoff = Backoff::transient();
    let mut failing: Option<String> = None;
    // This loop is the retry policy here: one try per attempt, logged per change.
    let client = client.without_retries();
    loop {
        let Some(attempt) = shutdown.race(client.get_me()).await else {
            return Ok(None);
        };
        match attempt {
            Ok(me) => {
                if failing.is_some() {
                    log::info!("bot api reachable again");
                }
                return Ok(Some(me));
            }
            Err(e) if e.is_token_rejected() => return Err(e),
            Err(e) => {
                let delay = e.retry_after().map_or_else(|| backoff.next(), retry::after);
                let line = e.to_string();
                if failing.as_deref() != Some(line.as_str()) {
                    log::warn!("bot api not reachable error={line:?}; retrying with backoff");
                    failing = Some(line);
                }
                if !shutdown.sleep(delay).await {
                    return Ok(None);
                }
            }
        }
    }
}

/// `setMyCommands` with the bot's described commands, if it asked for it
/// ([`Bot::register_commands`]); a failure only costs the menu.
async fn register_commands(client: &Client, bot: &Bot) {
    let Some(commands) = bot.commands_to_register() else {
        return;
    };
    let commands: Vec<BotCommand> = commands
        .iter()
        .map(|(name, description)| BotCommand::new(name.as_str(), description.as_str()))
        .collect();
    match client.send(&SetMyCommands::new(commands)).await {
        Ok(_) => log::info!("registered commands"),
        Err(e) => log::warn!("setMyCommands failed error={e}; the command menu stays as it was"),
    }
}

/// Lets running handlers finish, up to `deadline`.
async fn drain(dispatcher: &Dispatcher<'_>, deadline: Duration) {
    let running = dispatcher.held();
    if running == 0 {
        return;
    }
    log::info!("draining handlers={running} deadline={deadline:?}");
    if wait::within(deadline, dispatcher.idle()).await.is_none() {
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
async fn confirm(client: &Client, dispatcher: &Dispatcher<'_>, last_sent: Option<i64>) {
    let Some(offset) = dispatcher.offset() else {
        return;
    };
    if Some(offset) == last_sent {
        return;
    }
    // The bot's own `allowed_updates`: this call sets Telegram's list too.
    let allowed = dispatcher.allowed_updates();
    let confirm = client.poll_updates(Some(offset), 1, Duration::ZERO, Vec::new(), allowed);
    match confirm.await {
        Ok(_) => log::info!("confirmed offset={offset}"),
        Err(e) => log::warn!(
            "final confirmation failed offset={offset} error={e}; those updates may come again"
        ),
    }
}

/// What a run did, returned when it stops and logged on exit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Updates whose handler finished `Ok` (or that no handler took).
    pub handled: u64,
    /// Updates whose handler failed, panicked or timed out; they are
    /// confirmed all the same.
    pub failed: u64,
    /// Updates that broke the schema, skipped and confirmed.
    pub skipped: u64,
    /// Updates whose handler had not finished at the drain deadline: left
    /// unconfirmed, so the next start gets them again.
    pub unfinished: u64,
    /// Bot API calls from handlers that failed for good, after their retries.
    pub failed_sends: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "handled={} failed={} skipped={} unfinished={} failed_sends={}",
            self.handled, self.failed, self.skipped, self.unfinished, self.failed_sends
        )
    }
}

impl Summary {
    /// What `metrics` counted, with `unfinished` updates left at the drain deadline.
    fn of(metrics: &Metrics, unfinished: u64) -> Summary {
        Summary {
            handled: metrics.handled.get(),
            failed: metrics.errors.get() + metrics.panics.get() + metrics.timeouts.get(),
            skipped: metrics.skipped.get(),
            unfinished,
            failed_sends: metrics.failed_calls.get(),
        }
    }
}
