//! Env variables and flags → one validated [`Config`] of a run, with one
//! clear line for anything wrong.
//!
//! Flags win over env variables, env variables over defaults. The
//! environment is passed in as a function, so this module is the only one
//! that reads it and tests need no process-wide state. The run's flags are
//! all it knows: commands (`demo`, `healthcheck`, `--help`) belong to the
//! program that calls it, such as the `smolgram` binary.
//!
//! Must not: read the environment outside this module, or repeat the token
//! in an error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::api::generated::Recipient;
use crate::api::types::ChatId;
use crate::api::{RetryPolicy, Token};
use crate::jobs::Clock;
use crate::{Error, RateLimits};

/// The official Bot API.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// Everything a bot run needs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The bot token.
    pub token: Token,
    /// Where the Bot API is: `$TELEGRAM_API_URL`, default [`DEFAULT_API_URL`].
    pub api_url: String,
    /// The health listener's address; `None` turns it off.
    pub health: Option<SocketAddr>,
    /// Whether a busy health port is a startup error instead of a warning.
    pub require_health: bool,
    /// `getUpdates`' long-poll timeout.
    pub poll_timeout: Duration,
    /// How long a stop waits for running handlers.
    pub drain_timeout: Duration,
    /// The most io threads (blocking HTTP requests) at once.
    pub io_threads: usize,
    /// How handlers' Bot API calls are retried.
    pub retry: RetryPolicy,
    /// Outbound rate limits; `None`: [`RateLimits::for_api`] of `api_url`
    /// (Telegram's limits for Telegram's API, none for a local fake).
    pub rate_limits: Option<RateLimits>,
    /// Handlers running at once, over all chats.
    pub max_handlers: usize,
    /// A handler still running after this is abandoned (its update counts as done).
    pub handler_timeout: Duration,
    /// The `RUST_LOG` filter.
    pub log_filter: String,
    /// Webhook mode: Telegram calls the health listener instead of being
    /// polled. `None` (the default) polls.
    pub webhook: Option<WebhookConfig>,
    /// The listener serves https with this certificate and key
    /// (`--tls-cert`, `--tls-key`): webhook mode without a proxy. A
    /// self-signed certificate is uploaded with `setWebhook`.
    pub tls: Option<TlsFiles>,
    /// `POST /notify` on the health listener: `$SMOLGRAM_NOTIFY_TOKEN`
    /// turns it on, `$SMOLGRAM_NOTIFY_CHAT` is where a message without a
    /// chat goes. `None` (the default): the route does not exist (404).
    pub notify: Option<NotifyConfig>,
    /// Where handlers' state is kept: `--state` or `$SMOLGRAM_STATE`.
    pub state: StateConfig,
    /// The time jobs run by: the system's, or a test's
    /// [`ManualClock`](crate::jobs::ManualClock).
    pub clock: Clock,
}

/// The state store of a run and its knobs (see [`crate::state`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StateConfig {
    /// `memory` (the default), `file:PATH` or `redis://…`.
    pub store: StoreSpec,
    /// How long a value is kept after its last write, for state types
    /// that name no time of their own: `--state-ttl` seconds, 0 for ever;
    /// default 30 days.
    pub ttl: Option<Duration>,
    /// The file store's batch: at most one fsync per this, or sooner once
    /// 64 writes wait (`--state-flush-ms`, default 1000).
    pub flush_interval: Duration,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            store: StoreSpec::Memory,
            ttl: Some(Duration::from_secs(30 * 24 * 3600)),
            flush_interval: Duration::from_secs(1),
        }
    }
}

/// Which store: `--state memory|file:PATH|redis://[user:password@]host[:port][/db]`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreSpec {
    /// In memory, gone at exit.
    Memory,
    /// An append-only file on this machine.
    File(PathBuf),
    /// A Redis server, for several instances of one bot; the URL may hold
    /// a password, which `Debug` leaves out.
    Redis(String),
}

impl StoreSpec {
    /// `memory`, `file:PATH` or `redis://…`.
    ///
    /// # Errors
    /// [`Error::Config`] naming what it takes.
    pub fn parse(spec: &str) -> Result<StoreSpec, Error> {
        let spec = spec.trim();
        match spec {
            "memory" => Ok(StoreSpec::Memory),
            _ if spec.starts_with("redis://") => Ok(StoreSpec::Redis(spec.to_owned())),
            _ => match spec.strip_prefix("file:") {
                Some(path) if !path.is_empty() => Ok(StoreSpec::File(path.into())),
                _ => Err(config_error(format!(
                    "--state {:?} is not memory, file:PATH or redis://host[:port][/db]",
                    spec.split('@').next_back().unwrap_or_default()
                ))),
            },
        }
    }
}

impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::Memory => f.write_str("Memory"),
            StoreSpec::File(path) => f.debug_tuple("File").field(path).finish(),
            // Everything up to an `@` may be a password.
            StoreSpec::Redis(url) => match url.rsplit_once('@') {
                Some((_, host)) => write!(f, "Redis(\"redis://***@{host}\")"),
                None => f.debug_tuple("Redis").field(url).finish(),
            },
        }
    }
}

/// The notification inlet's settings (see: #14).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NotifyConfig {
    /// The bearer token a caller must send; its `Debug` shows `***`.
    pub token: NotifyToken,
    /// Where a text without a chat goes: an id or `@channel`.
    pub chat: Option<Recipient>,
}

/// The `/notify` bearer token: 16-256 printable ASCII characters without
/// spaces, so that a short guessable one is refused at start. Its `Debug`
/// shows `***`; it is never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct NotifyToken(String);

impl NotifyToken {
    /// Checks `token`.
    ///
    /// # Errors
    /// [`Error::Config`] naming `SMOLGRAM_NOTIFY_TOKEN`, never the value.
    pub fn parse(token: &str) -> Result<NotifyToken, Error> {
        let fits = (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic());
        if fits {
            Ok(NotifyToken(token.to_owned()))
        } else {
            Err(config_error(
                "SMOLGRAM_NOTIFY_TOKEN must be 16-256 printable characters without spaces".into(),
            ))
        }
    }

    /// The token itself, for the constant-time compare only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for NotifyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotifyToken(***)")
    }
}

/// `-100123`, `42` or `@channel`; `None` for anything else.
pub fn recipient(chat: &str) -> Option<Recipient> {
    let chat = chat.trim();
    if let Ok(id) = chat.parse::<i64>() {
        return Some(Recipient::from(ChatId(id)));
    }
    let name = chat.strip_prefix('@')?;
    let fits = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    fits.then(|| Recipient::from(chat))
}

/// How the bot takes its updates as a webhook: `$TELEGRAM_WEBHOOK_URL`
/// and the `--webhook-*` flags.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The public URL Telegram calls; its path is the route on the health
    /// listener. Checked: https (unless the API is not Telegram's), a
    /// port Telegram calls, a path that is not a health route.
    pub url: String,
    /// The `secret_token` Telegram sends with every call:
    /// `$TELEGRAM_WEBHOOK_SECRET`, else one generated at each start.
    pub secret: Option<WebhookSecret>,
    /// `setWebhook`'s `max_connections` (1-100); `None`: Telegram's default, 40.
    pub max_connections: Option<u32>,
    /// Whether `setWebhook` drops the updates waiting at Telegram.
    pub drop_pending_updates: bool,
    /// How long a webhook request waits for its handler before it is
    /// answered 503 (Telegram then sends it again; it is not run twice).
    pub wait: Duration,
    /// How often `getWebhookInfo` is asked whether Telegram can deliver.
    pub check_every: Duration,
}

impl WebhookConfig {
    /// Webhook mode on `url`, as given (the flags check it; this does not).
    pub fn new(url: &str) -> WebhookConfig {
        WebhookConfig {
            url: url.to_owned(),
            secret: None,
            max_connections: None,
            drop_pending_updates: false,
            // Under the Bot API server's 60 s per request and Heroku-style
            // proxies' 30 s: a slower handler's request is answered 503 and
            // sent again, never dropped (see README "Webhook mode").
            wait: Duration::from_secs(25),
            check_every: Duration::from_secs(60),
        }
    }

    /// The route: the URL's path, `/` if it has none.
    pub fn path(&self) -> &str {
        let rest = self.url.split_once("://").map_or(&*self.url, |(_, r)| r);
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        match rest.find('/') {
            Some(at) => &rest[at..],
            None => "/",
        }
    }
}

/// The listener's certificate and key as PEM files (`--tls-cert`,
/// `--tls-key`): with them it serves HTTPS instead of HTTP.
///
/// `cert` holds the end-entity certificate first, then any intermediates;
/// `key` holds its private key as PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA
/// PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`): RSA, ECDSA P-256 or P-384, or
/// Ed25519.
///
/// # Examples
/// ```
/// use smolgram::config::TlsFiles;
///
/// let files = TlsFiles { cert: "/etc/bot/cert.pem".into(), key: "/etc/bot/key.pem".into() };
/// assert!(files.cert.ends_with("cert.pem"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The PEM certificate chain, end-entity certificate first.
    pub cert: PathBuf,
    /// The PEM private key of the end-entity certificate.
    pub key: PathBuf,
}

/// A webhook's `secret_token`: 1-256 of `A-Za-z0-9_-`, as Telegram
/// allows. Its `Debug` shows `***`; it is never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// Checks `secret`.
    ///
    /// # Errors
    /// [`Error::Config`] naming `TELEGRAM_WEBHOOK_SECRET`, never the value.
    pub fn parse(secret: &str) -> Result<WebhookSecret, Error> {
        let fits = (1..=256).contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if fits {
            Ok(WebhookSecret(secret.to_owned()))
        } else {
            Err(config_error(
                "TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -".into(),
            ))
        }
    }

    /// 43 random characters (256 bits) from the OS.
    ///
    /// # Errors
    /// [`Error::Io`] if the OS has no randomness to give.
    pub fn generate() -> Result<WebhookSecret, Error> {
        use std::io::Read;
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bytes = [0u8; 43];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| Error::Io {
                what: "reading /dev/urandom for the webhook secret",
                kind: e.kind(),
            })?;
        // 64 letters: each byte's low 6 bits pick one, uniformly.
        Ok(WebhookSecret(
            bytes
                .iter()
                .map(|b| ALPHABET[usize::from(b & 63)] as char)
                .collect(),
        ))
    }

    /// The secret itself, for `setWebhook` and the route's check only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl Config {
    /// The defaults, with `token`.
    pub fn new(token: Token) -> Config {
        Config {
            token,
            api_url: DEFAULT_API_URL.to_owned(),
            health: Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
            require_health: false,
            poll_timeout: Duration::from_secs(25),
            // Docker and Railway send SIGKILL 10 s after SIGTERM: stop before that.
            drain_timeout: Duration::from_secs(8),
            // One for the long poll; the rest reach ~30 sends/s at a 300 ms round trip.
            io_threads: 16,
            retry: RetryPolicy::DEFAULT,
            rate_limits: None,
            max_handlers: 64,
            handler_timeout: Duration::from_secs(60),
            log_filter: "info".to_owned(),
            webhook: None,
            tls: None,
            notify: None,
            state: StateConfig::default(),
            clock: Clock::System,
        }
    }
}

/// Parses the run's flags (`args`, without the program name) and the
/// environment, the token included.
///
/// # Errors
/// [`Error::Config`] with one line naming the flag or variable at fault.
///
/// ```
/// use smolgram::config::parse;
/// let env = |key: &str| match key {
///     "TELEGRAM_BOT_TOKEN" => Some("123:abc".to_owned()),
///     "PORT" => Some("9000".to_owned()),
///     _ => None,
/// };
/// let config = parse(&["--drain-timeout".into(), "3".into()], env).unwrap();
/// assert_eq!(config.health.unwrap().port(), 9000);
/// assert_eq!(config.drain_timeout.as_secs(), 3);
/// assert!(parse(&[], |_| None).unwrap_err().to_string().contains("TELEGRAM_BOT_TOKEN"));
/// ```
pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
    let (token, source) = token(&env)?;
    let token = Token::parse(&token).map_err(|e| match e {
        Error::Config(why) => config_error(format!("{source}: {why}")),
        other => other,
    })?;
    parse_over(Config::new(token), args, env)
}

/// Parses the run's flags and the environment over `defaults` (its token
/// included: none is read), for a program that has a token of its own or
/// other defaults, such as `smolgram demo`.
///
/// # Errors
/// As [`parse`].
pub fn parse_over(
    defaults: Config,
    args: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, Error> {
    let mut config = defaults;
    let mut args = args.iter().map(String::as_str);
    let mut health_flag = None;
    let mut no_health = false;
    let mut api_flag = None;
    let mut webhook_flag = None;
    let mut max_connections = None;
    let mut drop_pending = false;
    let mut webhook_wait = None;
    let mut tls_cert = None;
    let mut tls_key = None;
    let mut state_flag = None;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .map(str::to_owned)
                .or_else(|| args.next().map(str::to_owned))
                .ok_or_else(|| config_error(format!("{flag} needs a value; see --help")))
        };
        match flag {
            "--health-addr" => health_flag = Some(value()?),
            "--no-health" => no_health = true,
            "--require-health" => config.require_health = true,
            "--api-url" => api_flag = Some(value()?),
            "--poll-timeout" => config.poll_timeout = seconds(flag, &value()?, 1, 50)?,
            "--drain-timeout" => config.drain_timeout = seconds(flag, &value()?, 0, 3600)?,
            "--io-threads" => config.io_threads = number(flag, &value()?, 2, 256)?,
            "--max-handlers" => config.max_handlers = number(flag, &value()?, 1, 10_000)?,
            "--handler-timeout" => config.handler_timeout = seconds(flag, &value()?, 1, 3600)?,
            "--rate-limits" => {
                config.rate_limits = match value()?.as_str() {
                    "on" => Some(RateLimits::DEFAULT),
                    "off" => Some(RateLimits::OFF),
                    other => {
                        return Err(config_error(format!(
                            "--rate-limits {other:?} is not on or off"
                        )))
                    }
                }
            }
            "--global-rate" | "--chat-rate" | "--group-rate" => {
                let rate = number(flag, &value()?, 0, 100_000)? as f64;
                let limits = config.rate_limits.get_or_insert(RateLimits::DEFAULT);
                match flag {
                    "--global-rate" => limits.global_per_sec = rate,
                    "--chat-rate" => limits.private_per_sec = rate,
                    _ => limits.group_per_min = rate,
                }
            }
            "--webhook-url" => webhook_flag = Some(value()?),
            "--webhook-max-connections" => {
                max_connections = Some(number(flag, &value()?, 1, 100)? as u32);
            }
            "--webhook-wait" => webhook_wait = Some(seconds(flag, &value()?, 1, 59)?),
            "--drop-pending-updates" => drop_pending = true,
            "--tls-cert" => tls_cert = Some(value()?),
            "--tls-key" => tls_key = Some(value()?),
            "--send-attempts" => config.retry.attempts = number(flag, &value()?, 1, 100)? as u32,
            "--send-retry-within" => config.retry.within = seconds(flag, &value()?, 0, 3600)?,
            "--state" => state_flag = Some(value()?),
            "--state-ttl" => {
                let ttl = seconds(flag, &value()?, 0, 10 * 365 * 24 * 3600)?;
                config.state.ttl = (!ttl.is_zero()).then_some(ttl);
            }
            "--state-flush-ms" => {
                let ms = number(flag, &value()?, 0, 60_000)?;
                config.state.flush_interval = Duration::from_millis(ms as u64);
            }
            _ => {
                return Err(config_error(format!(
                    "unknown argument {arg:?}; see --help"
                )))
            }
        }
    }

    config.log_filter = env("RUST_LOG")
        .filter(|f| !f.trim().is_empty())
        .unwrap_or(config.log_filter);
    if let Some(url) = api_flag.or_else(|| env("TELEGRAM_API_URL").filter(|u| !u.trim().is_empty()))
    {
        config.api_url = api_url(&url)?;
    }
    config.health = if no_health {
        None
    } else if let Some(addr) = health_flag {
        Some(addr.parse().map_err(|_| {
            config_error(format!(
                "--health-addr {addr:?} is not HOST:PORT (e.g. 0.0.0.0:8080 or [::]:8080)"
            ))
        })?)
    } else if let Some(port) = env("PORT").filter(|p| !p.trim().is_empty()) {
        let port: u16 = port
            .trim()
            .parse()
            .map_err(|_| config_error(format!("PORT={port:?} is not a port number (0-65535)")))?;
        Some(SocketAddr::from(([0, 0, 0, 0], port)))
    } else {
        config.health
    };
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    config.tls = match (
        tls_cert.or_else(|| set("TELEGRAM_TLS_CERT")),
        tls_key.or_else(|| set("TELEGRAM_TLS_KEY")),
    ) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.trim().into(),
            key: key.trim().into(),
        }),
        (None, None) => config.tls,
        _ => {
            return Err(config_error(
                "--tls-cert and --tls-key (TELEGRAM_TLS_CERT, TELEGRAM_TLS_KEY) go together".into(),
            ))
        }
    };
    let url = webhook_flag.or_else(|| env("TELEGRAM_WEBHOOK_URL").filter(|u| !u.trim().is_empty()));
    config.webhook = match url {
        Some(url) => {
            let mut webhook = config
                .webhook
                .take()
                .unwrap_or_else(|| WebhookConfig::new(""));
            webhook.url = webhook_url(&url, config.api_url == DEFAULT_API_URL)?;
            if let Some(secret) = env("TELEGRAM_WEBHOOK_SECRET") {
                webhook.secret = Some(WebhookSecret::parse(secret.trim())?);
            }
            webhook.max_connections = max_connections.or(webhook.max_connections);
            webhook.drop_pending_updates |= drop_pending;
            webhook.wait = webhook_wait.unwrap_or(webhook.wait);
            if config.health.is_none() {
                return Err(config_error(
                    "--webhook-url needs the health listener, which takes the webhook's requests; drop --no-health".into(),
                ));
            }
            Some(webhook)
        }
        None if max_connections.is_some() || drop_pending || webhook_wait.is_some() => {
            return Err(config_error(
                "--webhook-max-connections, --webhook-wait and --drop-pending-updates need --webhook-url (or TELEGRAM_WEBHOOK_URL)".into(),
            ))
        }
        None => config.webhook,
    };
    if let Some(token) = env("SMOLGRAM_NOTIFY_TOKEN").filter(|t| !t.trim().is_empty()) {
        let chat = match env("SMOLGRAM_NOTIFY_CHAT").filter(|c| !c.trim().is_empty()) {
            Some(chat) => Some(recipient(&chat).ok_or_else(|| {
                config_error("SMOLGRAM_NOTIFY_CHAT must be a chat id or @name".into())
            })?),
            None => None,
        };
        let token = NotifyToken::parse(token.trim())?;
        config.notify = Some(NotifyConfig { token, chat });
    }
    if let Some(spec) =
        state_flag.or_else(|| env("SMOLGRAM_STATE").filter(|s| !s.trim().is_empty()))
    {
        config.state.store = StoreSpec::parse(&spec)?;
    }
    Ok(config)
}

/// For a bot's own `main`: the process's flags and environment as the
/// [`Config`] of a run.
///
/// # Errors
/// As [`parse`].
pub fn from_env() -> Result<Config, Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    parse(&args, |key| std::env::var(key).ok())
}

/// The token and where it came from: `TELEGRAM_BOT_TOKEN`, else the file
/// `TELEGRAM_BOT_TOKEN_FILE` names (a Docker secret, a systemd credential).
fn token(env: &impl Fn(&str) -> Option<String>) -> Result<(String, &'static str), Error> {
    if let Some(token) = env("TELEGRAM_BOT_TOKEN").filter(|t| !t.trim().is_empty()) {
        return Ok((token, "TELEGRAM_BOT_TOKEN"));
    }
    let Some(path) = env("TELEGRAM_BOT_TOKEN_FILE").filter(|p| !p.trim().is_empty()) else {
        return Err(config_error(
            "TELEGRAM_BOT_TOKEN is not set (nor TELEGRAM_BOT_TOKEN_FILE); get a token from @BotFather".into(),
        ));
    };
    match std::fs::read_to_string(path.trim()) {
        Ok(token) => Ok((token.trim().to_owned(), "TELEGRAM_BOT_TOKEN_FILE")),
        Err(e) => Err(config_error(format!(
            "TELEGRAM_BOT_TOKEN_FILE: cannot read {path:?}: {}",
            e.kind()
        ))),
    }
}

fn config_error(message: String) -> Error {
    Error::Config(message)
}

/// Checks an API base URL: http(s), a host, no trailing slash.
fn api_url(url: &str) -> Result<String, Error> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            config_error("TELEGRAM_API_URL must start with http:// or https://".into())
        })?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) || url.contains(['?', '#']) {
        return Err(config_error(
            "TELEGRAM_API_URL must be a base URL like https://api.telegram.org".into(),
        ));
    }
    Ok(url.to_owned())
}

/// Checks a webhook URL: `https://HOST[:PORT]/PATH`, on a port Telegram
/// calls (443, 80, 88, 8443), the path not a health route. With an API that
/// is not Telegram's (a local Bot API server, the testkit), `http://` and any
/// port are allowed too. The URL is never repeated in an error: its path
/// may be a secret of its own.
fn webhook_url(url: &str, telegram: bool) -> Result<String, Error> {
    let url = url.trim();
    let bad = |why: &str| config_error(format!("TELEGRAM_WEBHOOK_URL (--webhook-url) {why}"));
    let rest = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => rest,
        (None, Some(rest)) if !telegram => rest,
        (None, Some(_)) => return Err(bad("must be https:// (Telegram calls no plain http)")),
        (None, None) => return Err(bad("must start with https://")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || url.contains(char::is_whitespace) || url.contains('#') {
        return Err(bad("must look like https://bot.example.com/telegram"));
    }
    // The port follows the last colon unless that is inside an IPv6 `[…]`.
    let port = authority
        .rsplit_once(':')
        .filter(|(_, port)| !port.contains(']'))
        .map(|(_, port)| port);
    if telegram {
        match port {
            None | Some("443" | "80" | "88" | "8443") => {}
            Some(_) => {
                return Err(bad(
                    "must use port 443, 80, 88 or 8443: Telegram calls no other",
                ))
            }
        }
    }
    if matches!(
        WebhookConfig::new(url).path(),
        "/healthz" | "/readyz" | "/metrics"
    ) {
        return Err(bad("path must not be /healthz, /readyz or /metrics"));
    }
    Ok(url.to_owned())
}

/// Seconds as a whole number, within `min..=max`.
fn seconds(flag: &str, value: &str, min: u64, max: u64) -> Result<Duration, Error> {
    number(
        flag,
        value.trim_end_matches('s'),
        min as usize,
        max as usize,
    )
    .map(|n| Duration::from_secs(n as u64))
}

fn number(flag: &str, value: &str, min: usize, max: usize) -> Result<usize, Error> {
    match value.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(config_error(format!(
            "{flag} {value:?} is not a whole number from {min} to {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456:SECRETsecret_-SECRET";

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, Error> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&args, |key| {
            env.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_and_port_env() {
        let c = run(&[], &[("TELEGRAM_BOT_TOKEN", TOKEN)]).unwrap();
        assert_eq!(c.health, Some("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(c.api_url, DEFAULT_API_URL);
        assert_eq!(c.drain_timeout, Duration::from_secs(8));
        let c = run(&[], &[("TELEGRAM_BOT_TOKEN", TOKEN), ("PORT", "3000")]).unwrap();
        assert_eq!(c.health, Some("0.0.0.0:3000".parse().unwrap()));
    }

    #[test]
    fn flags_win_over_env() {
        let c = run(
            &[
                "--health-addr",
                "127.0.0.1:0",
                "--api-url=http://127.0.0.1:9/",
                "--drain-timeout",
                "3",
            ],
            &[
                ("TELEGRAM_BOT_TOKEN", TOKEN),
                ("PORT", "3000"),
                ("TELEGRAM_API_URL", "https://x.example"),
            ],
        )
        .unwrap();
        assert_eq!(c.health, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(c.api_url, "http://127.0.0.1:9");
        assert_eq!(c.drain_timeout, Duration::from_secs(3));
        assert_eq!(
            run(&["--no-health"], &[("TELEGRAM_BOT_TOKEN", TOKEN)])
                .unwrap()
                .health,
            None
        );
    }

    #[test]
    fn the_state_store_comes_from_the_flag_over_the_env_and_hides_a_password() {
        let env = [
            ("TELEGRAM_BOT_TOKEN", TOKEN),
            ("SMOLGRAM_STATE", "file:/var/lib/bot/state"),
        ];
        let c = run(&["--state-ttl", "0", "--state-flush-ms", "250"], &env).unwrap();
        assert_eq!(c.state.store, StoreSpec::File("/var/lib/bot/state".into()));
        assert_eq!(c.state.ttl, None);
        assert_eq!(c.state.flush_interval, Duration::from_millis(250));
        let c = run(&["--state", "redis://bot:pa55word@10.0.0.2:6380/2"], &env).unwrap();
        assert_eq!(
            format!("{:?}", c.state.store),
            r#"Redis("redis://***@10.0.0.2:6380/2")"#
        );
        assert!(!format!("{c:?}").contains("pa55word"));
        let c = run(&[], &env[..1]).unwrap();
        assert_eq!(c.state.store, StoreSpec::Memory);
        assert_eq!(c.state.ttl, Some(Duration::from_secs(30 * 24 * 3600)));
        for (bad, says) in [
            ("file:", "--state \"file:\" is not memory"),
            ("sqlite://x", "is not memory, file:PATH or redis://"),
            ("rediss://u:pa55word@h", "--state \"h\""),
        ] {
            let e = run(&["--state", bad], &env[..1]).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains("pa55word"), "{e}");
        }
    }

    #[test]
    fn bad_input_is_one_line_naming_the_culprit_and_never_the_token() {
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case<'_>] = &[
            (&[], &[], "TELEGRAM_BOT_TOKEN is not set"),
            (
                &[],
                &[("TELEGRAM_BOT_TOKEN", "SECRETnocolon")],
                "TELEGRAM_BOT_TOKEN",
            ),
            (&[], &[("TELEGRAM_BOT_TOKEN", "12x:SECRET")], "numeric id"),
            (
                &["--health-addr", "nope"],
                &[("TELEGRAM_BOT_TOKEN", TOKEN)],
                "--health-addr",
            ),
            (
                &[],
                &[("TELEGRAM_BOT_TOKEN", TOKEN), ("PORT", "http")],
                "PORT",
            ),
            (
                &[],
                &[
                    ("TELEGRAM_BOT_TOKEN", TOKEN),
                    ("TELEGRAM_API_URL", "ftp://x"),
                ],
                "TELEGRAM_API_URL",
            ),
            (
                &["--poll-timeout", "0"],
                &[("TELEGRAM_BOT_TOKEN", TOKEN)],
                "--poll-timeout",
            ),
            (
                &["--io-threads"],
                &[("TELEGRAM_BOT_TOKEN", TOKEN)],
                "needs a value",
            ),
            (&["--bogus"], &[("TELEGRAM_BOT_TOKEN", TOKEN)], "--bogus"),
            (
                &["fly"],
                &[("TELEGRAM_BOT_TOKEN", TOKEN)],
                "unknown argument \"fly\"",
            ),
        ];
        for (args, env, expected) in cases {
            let line = run(args, env).unwrap_err().to_string();
            assert!(line.contains(expected), "{line:?} lacks {expected:?}");
            assert!(!line.contains("SECRET") && !line.contains('\n'), "{line:?}");
        }
    }

    #[test]
    fn token_can_come_from_a_file() {
        let path = std::env::temp_dir().join(format!("smolgram-token-{}", std::process::id()));
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        let file = path.to_str().unwrap();
        let c = run(&[], &[("TELEGRAM_BOT_TOKEN_FILE", file)]).unwrap();
        assert_eq!(c.token.bot_id(), 123456);
        std::fs::write(&path, "SECRETgarbage").unwrap();
        let e = run(&[], &[("TELEGRAM_BOT_TOKEN_FILE", file)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TELEGRAM_BOT_TOKEN_FILE") && !e.contains("SECRET"),
            "{e}"
        );
        std::fs::remove_file(&path).unwrap();
        let e = run(&[], &[("TELEGRAM_BOT_TOKEN_FILE", file)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn config_debug_hides_the_token() {
        let c = run(&[], &[("TELEGRAM_BOT_TOKEN", TOKEN)]).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("SECRET") && shown.contains("Token(***)"),
            "{shown}"
        );
    }

    #[test]
    fn parse_over_keeps_the_callers_token_and_defaults_unless_overridden() {
        let token = Token::parse("42:callers").unwrap();
        let mut defaults = Config::new(token.clone());
        defaults.health = Some("127.0.0.1:0".parse().unwrap());
        let over = |args: &[&str], env: &[(&str, &str)]| {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            parse_over(defaults.clone(), &args, |key| {
                env.iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            })
            .unwrap()
        };
        let c = over(&[], &[("TELEGRAM_BOT_TOKEN", TOKEN)]);
        assert_eq!(c.token, token, "no token is read");
        assert_eq!(c.health, defaults.health);
        assert_eq!(
            over(&[], &[("PORT", "3000")]).health,
            Some("0.0.0.0:3000".parse().unwrap())
        );
        assert_eq!(over(&["--no-health"], &[]).health, None);
    }

    #[test]
    fn webhook_flags_and_env_make_webhook_mode() {
        let env = [
            ("TELEGRAM_BOT_TOKEN", TOKEN),
            (
                "TELEGRAM_WEBHOOK_URL",
                "https://bot.example.org:8443/tg/hook?x=1",
            ),
            ("TELEGRAM_WEBHOOK_SECRET", "s3cr3t_-"),
        ];
        let c = run(
            &["--webhook-max-connections", "7", "--drop-pending-updates"],
            &env,
        )
        .unwrap();
        let webhook = c.webhook.unwrap();
        assert_eq!(webhook.path(), "/tg/hook");
        assert_eq!(webhook.max_connections, Some(7));
        assert!(webhook.drop_pending_updates);
        assert_eq!(webhook.secret.unwrap().expose(), "s3cr3t_-");
        assert_eq!(webhook.wait, Duration::from_secs(25));
        assert!(run(&[], &[("TELEGRAM_BOT_TOKEN", TOKEN)])
            .unwrap()
            .webhook
            .is_none());
        let bare = run(&["--webhook-url", "https://bot.example.org"], &env[..1]).unwrap();
        assert_eq!(bare.webhook.unwrap().path(), "/");
        // A local Bot API server or the testkit may call plain http on any port.
        let local = run(
            &[
                "--webhook-url",
                "http://127.0.0.1:9000/hook",
                "--api-url",
                "http://127.0.0.1:8081",
            ],
            &env[..1],
        )
        .unwrap();
        assert_eq!(local.webhook.unwrap().path(), "/hook");
    }

    #[test]
    fn bad_webhook_settings_are_one_line_without_the_secret_or_the_url() {
        let token = ("TELEGRAM_BOT_TOKEN", TOKEN);
        for (args, secret, expected) in [
            (
                &["--webhook-url", "http://bot.example.org/HIDDENPATH"][..],
                None,
                "https",
            ),
            (
                &["--webhook-url", "ftp://bot.example.org/HIDDENPATH"],
                None,
                "https",
            ),
            (
                &["--webhook-url", "https:///HIDDENPATH"],
                None,
                "must look like",
            ),
            (
                &["--webhook-url", "https://bot.example.org:9999/HIDDENPATH"],
                None,
                "port",
            ),
            (
                &["--webhook-url", "https://bot.example.org/metrics"],
                None,
                "/metrics",
            ),
            (
                &[
                    "--webhook-url",
                    "https://b.example/HIDDENPATH",
                    "--no-health",
                ],
                None,
                "--no-health",
            ),
            (&["--webhook-wait", "60"], None, "--webhook-wait"),
            (&["--drop-pending-updates"], None, "need --webhook-url"),
            (
                &["--webhook-url", "https://b.example/HIDDENPATH"],
                Some("HIDDEN with spaces"),
                "TELEGRAM_WEBHOOK_SECRET",
            ),
            (
                &["--webhook-url", "https://b.example/HIDDENPATH"],
                Some(""),
                "TELEGRAM_WEBHOOK_SECRET",
            ),
        ] {
            let mut env = vec![token];
            if let Some(secret) = secret {
                env.push(("TELEGRAM_WEBHOOK_SECRET", secret));
            }
            let line = run(args, &env).unwrap_err().to_string();
            assert!(line.contains(expected), "{line:?} lacks {expected:?}");
            assert!(!line.contains("HIDDEN") && !line.contains('\n'), "{line:?}");
        }
        let long = "a".repeat(257);
        let env = [token, ("TELEGRAM_WEBHOOK_SECRET", long.as_str())];
        assert!(run(&["--webhook-url", "https://b.example/x"], &env).is_err());
    }

    #[test]
    fn a_generated_secret_is_43_url_safe_characters_and_new_each_time() {
        let a = WebhookSecret::generate().unwrap();
        let b = WebhookSecret::generate().unwrap();
        assert_eq!(a.expose().len(), 43);
        assert!(WebhookSecret::parse(a.expose()).is_ok());
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "WebhookSecret(***)");
    }
}
