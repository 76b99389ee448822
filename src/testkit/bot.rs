//! [`TestBot`]: a bot under test, running on its own thread against a
//! [`FakeApi`], with the same `Service` a real run uses.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::state::Shared;
use super::FakeApi;
use crate::api::Token;
use crate::config::{Config, WebhookConfig};
use crate::embed::{self, BotHandle};
use crate::state::Store;
use crate::{Bot, Error, Service, Shutdown, Summary};

/// How long [`TestBot::stop`] waits for the bot to stop before it panics.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// How long [`TestBot::start_with`] waits for the bot's first `getUpdates`.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// A bot running on its own thread (its own [`Runtime`](crate::Runtime)) against a
/// [`FakeApi`]. Stopping it goes through [`Shutdown`], exactly as SIGTERM does.
///
/// [`start`](TestBot::start) and [`start_with`](TestBot::start_with) return
/// once the bot's first `getUpdates` reached the fake, so a test needs no
/// wait for it; [`spawn_with`](TestBot::spawn_with), for runs that never
/// poll, returns at once.
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
    /// `None` only once it has been waited for.
    bot: Option<BotHandle>,
}

/// Builds a test bot on its thread, and the store of its own, if any.
trait MakeBot: FnOnce() -> (Bot, Option<Rc<dyn Store>>) + Send + 'static {}

impl<F: FnOnce() -> (Bot, Option<Rc<dyn Store>>) + Send + 'static> MakeBot for F {}

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
    /// need not be `Send`) with [`TestBot::config`], and returns once its
    /// first `getUpdates` reached `api` (see [`TestBot::start_with`]).
    ///
    /// # Panics
    /// If the bot does not start or does not poll within 10 s.
    pub fn start(api: &FakeApi, make: impl FnOnce() -> Bot + Send + 'static) -> TestBot {
        match TestBot::start_with(api, TestBot::config(api), make) {
            Ok(bot) => bot,
            Err(e) => panic!("test bot did not start: {e}"),
        }
    }

    /// [`TestBot::config`] in webhook mode: Telegram is to call
    /// `http://bot.test/telegram` (the fake posts to the bot's listener
    /// whatever the host), with a secret generated at start and a 0.2 s
    /// `getWebhookInfo` check.
    pub fn webhook_config(api: &FakeApi) -> Config {
        let mut config = TestBot::config(api);
        let mut webhook = WebhookConfig::new("http://bot.test/telegram");
        webhook.check_every = Duration::from_millis(200);
        config.webhook = Some(webhook);
        config
    }

    /// Starts the bot that `make` builds with `config` (made from
    /// [`TestBot::config`]`(api)`), and returns once its first `getUpdates`
    /// reached `api`. The bot is then in its long poll (or handling what that
    /// poll brought), so a fault armed now meets that poll (see
    /// [`FakeApi::fault`]), and no wait for "the first poll" is needed.
    /// In webhook mode (`config.webhook`, see [`TestBot::webhook_config`])
    /// it points the fake's posts at the bot's listener
    /// ([`FakeApi::deliver_webhooks_to`]) and returns once the bot's
    /// `setWebhook` reached `api`.
    ///
    /// # Errors
    /// What [`Service::new`] returns (a bad config, a health bind error), or
    /// the run's own error if it ended before it polled (a rejected token:
    /// [`Error::Api`] with code 401).
    ///
    /// # Panics
    /// If the bot neither polls nor ends within 10 s.
    pub fn start_with(
        api: &FakeApi,
        config: Config,
        make: impl FnOnce() -> Bot + Send + 'static,
    ) -> Result<TestBot, Error> {
        TestBot::start_made(api, config, move || (make(), None))
    }

    /// [`TestBot::start_with`] for a bot whose state is kept in a store of
    /// the test's own (see [`Service::with_store`]): `make` builds both on
    /// the bot's thread.
    ///
    /// # Errors
    /// As [`TestBot::start_with`].
    pub fn start_with_store(
        api: &FakeApi,
        config: Config,
        make: impl FnOnce() -> (Bot, Rc<dyn Store>) + Send + 'static,
    ) -> Result<TestBot, Error> {
        TestBot::start_made(api, config, move || {
            let (bot, store) = make();
            (bot, Some(store))
        })
    }

    fn start_made(api: &FakeApi, config: Config, make: impl MakeBot) -> Result<TestBot, Error> {
        let first = if config.webhook.is_some() {
            "setwebhook"
        } else {
            "getupdates"
        };
        let webhook = config.webhook.is_some();
        // In webhook mode: once the webhook is set, not only asked for.
        let polls = |api: &FakeApi| {
            api.shared
                .with(|s| s.calls(first).count() * usize::from(!webhook || s.webhook().is_some()))
        };
        let before = polls(api);
        let ended = Arc::new(AtomicBool::new(false));
        let watch = Some((Arc::clone(&api.shared), Arc::clone(&ended)));
        let bot = TestBot::spawn(config, make, watch)?;
        if let (true, Some(addr)) = (webhook, bot.health_addr()) {
            api.deliver_webhooks_to(addr);
        }
        let polled = api.wait_for(START_DEADLINE, |api| {
            polls(api) > before || ended.load(Ordering::SeqCst)
        });
        if polls(api) > before {
            // It may have ended since (say, its first poll got a 401): `join` says so.
            return Ok(bot);
        }
        if !polled {
            panic!("test bot did not poll within {START_DEADLINE:?}");
        }
        match bot.join(STOP_DEADLINE) {
            Err(e) => Err(e),
            Ok(summary) => panic!("test bot stopped before its first poll: {summary:?}"),
        }
    }

    /// Starts the bot that `make` builds with `config` and returns at once:
    /// for a run that is never to poll (a rejected token, a port that must be
    /// busy) or whose start the test watches itself. [`TestBot::join`] then
    /// tells how it ended.
    ///
    /// # Errors
    /// What [`Service::new`] returns (a bad config, a health bind error).
    pub fn spawn_with(
        config: Config,
        make: impl FnOnce() -> Bot + Send + 'static,
    ) -> Result<TestBot, Error> {
        TestBot::spawn(config, move || (make(), None), None)
    }

    /// Starts the bot's thread ([`embed`](crate::embed)'s); with `watch`,
    /// it sets the flag and wakes the fake's waiters when the run ends.
    fn spawn(
        config: Config,
        make: impl MakeBot,
        watch: Option<(Arc<Shared>, Arc<AtomicBool>)>,
    ) -> Result<TestBot, Error> {
        let make = move |config: &Config| {
            let (bot, store) = make();
            let service = Service::new(bot, config)?;
            Ok(match store {
                Some(store) => service.with_store(store),
                None => service,
            })
        };
        let ended = move || {
            if let Some((shared, ended)) = watch {
                ended.store(true, Ordering::SeqCst);
                shared.nudge();
            }
        };
        let bot = embed::spawn_service(config, make, ended)?;
        Ok(TestBot { bot: Some(bot) })
    }

    fn handle(&self) -> &BotHandle {
        // Cannot fail: only `join` and `drop` take it, and both consume the TestBot.
        self.bot
            .as_ref()
            .expect("a test bot has its handle until joined")
    }

    /// The health listener's address, if it is bound.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.handle().health_addr()
    }

    /// The bot's stop handle.
    pub fn shutdown(&self) -> Shutdown {
        self.handle().shutdown()
    }

    /// Requests a graceful stop (as SIGTERM does) and waits for the run's outcome.
    ///
    /// # Panics
    /// If the bot has not stopped 30 s after the request.
    pub fn stop(self) -> Result<Summary, Error> {
        self.handle().request_stop();
        self.join(STOP_DEADLINE)
    }

    /// Waits up to `deadline` for the run to end on its own (a fatal error, say).
    ///
    /// # Panics
    /// If it has not ended by then.
    pub fn join(mut self, deadline: Duration) -> Result<Summary, Error> {
        match self.bot.take().map(|bot| bot.wait_timeout(deadline)) {
            Some(Ok(outcome)) => outcome,
            Some(Err(running)) => {
                // Its drop would wait again; the panic says what went wrong.
                std::mem::forget(running);
                panic!("test bot still running after {deadline:?}")
            }
            None => unreachable!("a test bot is joined once"),
        }
    }
}

impl Drop for TestBot {
    fn drop(&mut self) {
        if let Some(bot) = self.bot.take() {
            // The handle's own drop does not wait while a failed assertion unwinds.
            if !thread::panicking() {
                bot.request_stop();
                if let Err(stuck) = bot.wait_timeout(STOP_DEADLINE) {
                    // A stuck bot is left to the process's end, not waited for again.
                    std::mem::forget(stuck);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Fault;

    fn unauthorized() -> Fault {
        Fault::Api {
            code: 401,
            description: "Unauthorized".into(),
            retry_after: None,
            migrate_to_chat_id: None,
        }
    }

    #[test]
    fn start_returns_with_the_bot_in_its_first_poll() {
        let api = FakeApi::start();
        let bot = TestBot::start(&api, Bot::new);
        assert_eq!(api.calls("getMe").len(), 1);
        assert_eq!(api.calls("getUpdates").len(), 1);
        // That poll waits: a fault armed now is its own.
        api.fault("getUpdates", unauthorized(), 1);
        let err = bot.join(START_DEADLINE).unwrap_err();
        assert!(matches!(err, Error::Api { code: 401, .. }), "{err:?}");
        assert_eq!(api.calls("getUpdates").len(), 1);
    }

    #[test]
    fn start_with_hands_back_the_error_of_a_run_that_never_polled() {
        let api = FakeApi::start();
        api.fault("getMe", unauthorized(), 1);
        let err = TestBot::start_with(&api, TestBot::config(&api), Bot::new).unwrap_err();
        assert!(matches!(err, Error::Api { code: 401, .. }), "{err:?}");
        assert!(api.calls("getUpdates").is_empty());
    }

    #[test]
    fn a_second_bot_waits_for_its_own_first_poll() {
        let api = FakeApi::start();
        TestBot::start(&api, Bot::new).stop().unwrap();
        let polls = api.calls("getUpdates").len();
        let next = TestBot::start(&api, Bot::new);
        assert!(api.calls("getUpdates").len() > polls);
        next.stop().unwrap();
    }
}
