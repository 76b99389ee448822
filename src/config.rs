//! Env variables and flags → one validated [`Config`] (or another
//! [`Command`]), with one clear line for anything wrong.
//!
//! Flags win over env variables, env variables over defaults. The
//! environment is passed in as a function, so this module is the only one
//! that reads it and tests need no process-wide state.
//!
//! Must not: read the environment outside this module, or repeat the token
//! in an error.

use std::net::SocketAddr;
use std::time::Duration;

use crate::api::{RetryPolicy, Token};
use crate::{Error, RateLimits};

/// The official Bot API.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// Everything a bot run needs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The bot token; `None` only for `demo`, which uses the testkit's.
    pub token: Option<Token>,
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
}

impl Config {
    /// The defaults, with `token`.
    pub fn new(token: Option<Token>) -> Config {
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
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the bot.
    Run(Config),
    /// Run the bot against the built-in fake Bot API with a scripted
    /// conversation; with `serve`, keep running until a signal.
    Demo {
        /// The configuration (its token and API URL are the fake's).
        config: Config,
        /// Keep running after the script.
        serve: bool,
    },
    /// Probe the local health endpoint and exit 0 if it answers 200.
    Healthcheck(Config),
    /// Print the usage.
    Help,
    /// Print the version.
    Version,
}

/// The usage text for `--help`.
pub const USAGE: &str = "\
smolgram: a Telegram bot runtime for small machines

usage: smolgram [run] [flags]      run the bot (needs TELEGRAM_BOT_TOKEN)
       smolgram demo [--serve]     the bot against a built-in fake Bot API, no token, no network
       smolgram healthcheck        exit 0 if the local /healthz answers 200, else 1
       smolgram --help | --version

flags:
  --health-addr HOST:PORT  health listener address (default 0.0.0.0:$PORT, else 0.0.0.0:8080; port 0 picks one)
  --no-health              no health listener
  --require-health         exit 2 if the health port is busy (default: warn and keep retrying)
  --api-url URL            Bot API base URL (default $TELEGRAM_API_URL, else https://api.telegram.org)
  --poll-timeout SECS      getUpdates long-poll timeout, 1-50 (default 25)
  --drain-timeout SECS     how long a stop waits for running handlers (default 8)
  --io-threads N           most blocking HTTP requests at once, 2-256 (default 16)
  --max-handlers N         handlers running at once over all chats, 1-10000 (default 64)
  --handler-timeout SECS   abandon a handler still running after this, 1-3600 (default 60)
  --rate-limits on|off     outbound limits (default: on for api.telegram.org, off for other API URLs)
  --global-rate N          messages/s over all chats (default 30; 0 = no limit; implies on)
  --chat-rate N            messages/s per private chat, burst 3 (default 1; 0 = no limit; implies on)
  --group-rate N           messages/min per group, burst 3 (default 20; 0 = no limit; implies on)
  --send-attempts N        tries of a handler's failed Bot API call, 1-100 (default 5; 1 = no retry)
  --send-retry-within SECS no retry of such a call starts later than this (default 60)

env: TELEGRAM_BOT_TOKEN (or TELEGRAM_BOT_TOKEN_FILE), TELEGRAM_API_URL, PORT, RUST_LOG (default info)
exit codes: 0 stopped cleanly, 1 runtime failure, 2 bad configuration or busy required port,
            3 token rejected by Telegram, 130/143 second SIGINT/SIGTERM";

/// Parses the arguments (without the program name) and the environment.
///
/// # Errors
/// [`Error::Config`] with one line naming the flag or variable at fault.
///
/// ```
/// use smolgram::config::{parse, Command};
/// let env = |key: &str| (key == "PORT").then(|| "9000".to_owned());
/// let Command::Demo { config, serve } = parse(&["demo".into()], env).unwrap() else { panic!() };
/// assert_eq!(config.health.unwrap().port(), 9000);
/// assert!(!serve);
/// assert!(parse(&[], |_| None).unwrap_err().to_string().contains("TELEGRAM_BOT_TOKEN"));
/// ```
pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Command, Error> {
    let mut args = args.iter().map(String::as_str).peekable();
    let verb = match args.peek() {
        Some(&word) if !word.starts_with('-') => {
            args.next();
            word
        }
        _ => "run",
    };
    let mut config = Config::new(None);
    let mut health_flag = None;
    let mut no_health = false;
    let mut api_flag = None;
    let mut serve = false;
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
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
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
            "--send-attempts" => config.retry.attempts = number(flag, &value()?, 1, 100)? as u32,
            "--send-retry-within" => config.retry.within = seconds(flag, &value()?, 0, 3600)?,
            "--serve" if verb == "demo" => serve = true,
            _ => {
                return Err(config_error(format!(
                    "unknown argument {arg:?} for '{verb}'; see --help"
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
    } else if verb == "demo" {
        // The demo must not collide with a real bot on 8080: any free port.
        Some(SocketAddr::from(([127, 0, 0, 1], 0)))
    } else {
        config.health
    };

    match verb {
        "run" => {
            let (token, source) = token(&env)?;
            config.token = Some(Token::parse(&token).map_err(|e| match e {
                Error::Config(why) => config_error(format!("{source}: {why}")),
                other => other,
            })?);
            Ok(Command::Run(config))
        }
        "demo" => Ok(Command::Demo { config, serve }),
        "healthcheck" => Ok(Command::Healthcheck(config)),
        _ => Err(config_error(format!(
            "unknown command {verb:?}; see --help"
        ))),
    }
}

/// For a bot's own `main`: the process's flags and environment as the
/// [`Config`] of a run. `demo`, `healthcheck`, `--help` and `--version`
/// belong to the `smolgram` binary and are errors here.
///
/// # Errors
/// As [`parse`].
pub fn from_env() -> Result<Config, Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args, |key| std::env::var(key).ok())? {
        Command::Run(config) => Ok(config),
        _ => Err(config_error(
            "this bot takes only the run flags (see the smolgram README); set TELEGRAM_BOT_TOKEN"
                .into(),
        )),
    }
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
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match parse(&args, |key| {
            env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        })? {
            Command::Run(config) => Ok(config),
            other => panic!("expected run, got {other:?}"),
        }
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
                "unknown command",
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
        assert_eq!(c.token.unwrap().bot_id(), 123456);
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
}
