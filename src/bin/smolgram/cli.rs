//! The command line: the verb (`run`, `demo`, `healthcheck`, `--help`,
//! `--version`), the verbs' own flags (`--serve`), and the usage text. The
//! run's flags and the environment are the library's: [`config`] parses
//! them.
//!
//! Must not: parse a run flag itself, or read the environment but through
//! the function it is given.

use std::path::PathBuf;

use smolgram::api::Token;
use smolgram::config::{self, Config};
use smolgram::testkit::FakeApi;
use smolgram::Error;

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Command {
    /// Run the bot: the built-in echo bot, or the one a config file
    /// describes (`--config`, `$SMOLGRAM_CONFIG`).
    Run {
        config: Config,
        bot_file: Option<PathBuf>,
    },
    /// Check a bot's config file and exit: 0 good, 2 with its first mistake.
    CheckConfig(PathBuf),
    /// Run the bot against the built-in fake Bot API with a scripted
    /// conversation; with `serve`, keep running until a signal.
    Demo { config: Config, serve: bool },
    /// Probe the local health endpoint and exit 0 if it answers 200; over
    /// https, trusting only the listener's own certificate (`--tls-cert`).
    Healthcheck(Config),
    /// Send a message and files to one chat, then exit.
    Send(Box<crate::send::Send>),
    /// Print the usage.
    Help,
    /// Print the version.
    Version,
}

/// The usage text for `--help`.
pub(crate) const USAGE: &str = "\
smolgram: a Telegram bot runtime for small machines

usage: smolgram [run] [flags]      run the bot (needs TELEGRAM_BOT_TOKEN)
       smolgram demo [--serve]     the bot against a built-in fake Bot API, no token, no network;
                                   --serve keeps running, health where a run's is ($PORT, else 8080)
       smolgram healthcheck        exit 0 if the local /healthz answers 200, else 1 (https with --tls-cert)
       smolgram --config bot.toml [flags]   run the bot a config file describes (or $SMOLGRAM_CONFIG);
                                   SIGHUP reloads it, a bad new file keeps the old one
       smolgram check-config FILE  exit 0 if FILE is a good bot config, else 2 with file:line:column
       smolgram send --chat ID|@name [TEXT…]   send TEXT (else stdin) and files to one chat, then exit:
         [--file PATH]… [--photo PATH]… [--parse-mode html|markdown] [--silent] [--as-file] [--timeout SECS]
         exit 0 sent, 2 usage, 3 token rejected, 4 chat or message refused, 5 network or timeout
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
  --webhook-url URL        webhook mode: Telegram POSTs updates to URL, whose path is served on the health
                           listener (default $TELEGRAM_WEBHOOK_URL; unset: long polling)
  --webhook-max-connections N  setWebhook's max_connections, 1-100 (default Telegram's 40)
  --webhook-wait SECS      answer 503 (Telegram sends it again) if the handler takes longer, 1-59 (default 25)
  --drop-pending-updates   setWebhook drops the updates waiting at Telegram (default: keep them)
  --tls-cert PEM --tls-key PEM  serve the listener over https (a self-signed certificate is uploaded
                           with setWebhook); healthcheck then probes over https, trusting only PEM

env: TELEGRAM_BOT_TOKEN (or TELEGRAM_BOT_TOKEN_FILE), TELEGRAM_API_URL, PORT, RUST_LOG (default info),
     SMOLGRAM_CONFIG,
     TELEGRAM_WEBHOOK_URL, TELEGRAM_WEBHOOK_SECRET (1-256 of A-Za-z0-9_-; default: random at each start),
     TELEGRAM_TLS_CERT, TELEGRAM_TLS_KEY,
     SMOLGRAM_NOTIFY_TOKEN (16+ chars; turns on POST /notify), SMOLGRAM_NOTIFY_CHAT (id or @name)
exit codes: 0 stopped cleanly, 1 runtime failure, 2 bad configuration or busy required port,
            3 token rejected by Telegram, 130/143 second SIGINT/SIGTERM";

/// Parses the arguments (without the program name) and the environment.
///
/// # Errors
/// [`Error::Config`] with one line naming the argument or variable at fault.
pub(crate) fn parse(
    args: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Command, Error> {
    let (verb, rest) = match args.split_first() {
        Some((word, rest)) if !word.starts_with('-') => (word.as_str(), rest),
        _ => ("run", args),
    };
    let asked = |names: [&str; 2]| rest.iter().any(|a| names.contains(&a.as_str()));
    if asked(["-h", "--help"]) {
        return Ok(Command::Help);
    }
    if asked(["-V", "--version"]) {
        return Ok(Command::Version);
    }
    match verb {
        "run" => {
            let (bot_file, flags) = take_value(rest, "--config")?;
            let bot_file = bot_file.or_else(|| env("SMOLGRAM_CONFIG").filter(|v| !v.is_empty()));
            Ok(Command::Run {
                config: config::parse(&flags, env)?,
                bot_file: bot_file.map(PathBuf::from),
            })
        }
        "check-config" => match rest {
            [file] if !file.starts_with('-') => Ok(Command::CheckConfig(file.into())),
            _ => Err(Error::Config("usage: smolgram check-config FILE".into())),
        },
        "demo" => {
            let serve = rest.iter().any(|a| a == "--serve");
            let flags: Vec<String> = rest.iter().filter(|a| *a != "--serve").cloned().collect();
            let mut defaults = Config::new(fake_token());
            // A one-off demo must not collide with a real bot on 8080: any free port on
            // loopback. `--serve` stands in for a real run (in an image, under its
            // HEALTHCHECK, which probes $PORT or 8080), so it keeps the run's default.
            // See: #18
            if !serve {
                defaults.health = Some(([127, 0, 0, 1], 0).into());
            }
            let config = config::parse_over(defaults, &flags, env)?;
            Ok(Command::Demo { config, serve })
        }
        // The probe needs only the health address; it sends no Bot API call.
        "healthcheck" => Ok(Command::Healthcheck(config::parse_over(
            Config::new(fake_token()),
            rest,
            env,
        )?)),
        "send" => Ok(Command::Send(Box::new(crate::send::parse(rest, env)?))),
        _ => Err(Error::Config(format!(
            "unknown command {verb:?}; see --help"
        ))),
    }
}

/// `flag`'s value (`--flag V` or `--flag=V`) and the other arguments.
fn take_value(args: &[String], flag: &str) -> Result<(Option<String>, Vec<String>), Error> {
    let mut value = None;
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == flag {
            let v = args
                .next()
                .filter(|v| !v.starts_with('-'))
                .ok_or_else(|| Error::Config(format!("{flag} needs a value")))?;
            value = Some(v.clone());
        } else if let Some(v) = arg.strip_prefix(flag).and_then(|v| v.strip_prefix('=')) {
            value = Some(v.to_owned());
        } else {
            rest.push(arg.clone());
        }
    }
    Ok((value, rest))
}

/// The testkit's token: the demo's fake accepts it, and the health probe
/// needs none.
fn fake_token() -> Token {
    // Cannot fail: the testkit's token is well formed (its own tests check it).
    Token::parse(FakeApi::TOKEN).expect("the testkit token is well formed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(args: &[&str], env: &[(&str, &str)]) -> Result<Command, Error> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&args, |key| {
            env.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_verb_comes_first_and_run_is_the_default() {
        let token = [("TELEGRAM_BOT_TOKEN", "123:abc")];
        assert!(matches!(
            command(&[], &token),
            Ok(Command::Run { bot_file: None, .. })
        ));
        assert!(matches!(
            command(&["run", "--no-health"], &token),
            Ok(Command::Run { config, .. }) if config.health.is_none()
        ));
        assert!(matches!(command(&["--help"], &[]), Ok(Command::Help)));
        assert!(matches!(
            command(&["demo", "-V"], &[]),
            Ok(Command::Version)
        ));
        let e = command(&["fly"], &token).unwrap_err().to_string();
        assert!(e.contains("unknown command \"fly\""), "{e}");
    }

    #[test]
    fn demo_takes_any_free_port_but_serve_listens_where_a_run_and_its_probe_do() {
        let demo = |args: &[&str], env: &[(&str, &str)]| match command(args, env) {
            Ok(Command::Demo { config, serve }) => (config.health, serve),
            other => panic!("{args:?} {env:?}: {other:?}"),
        };
        let probe = |env: &[(&str, &str)]| match command(&["healthcheck"], env) {
            Ok(Command::Healthcheck(config)) => config.health,
            other => panic!("healthcheck {env:?}: {other:?}"),
        };
        // No token needed; a one-off demo stays off a real bot's port.
        let any_free = Some("127.0.0.1:0".parse().unwrap());
        assert_eq!(demo(&["demo"], &[]), (any_free, false));
        // `--serve` is what an image runs under its HEALTHCHECK, `smolgram healthcheck`
        // with the container's env: it listens where a run would, $PORT or 8080.
        let run = Config::new(fake_token()).health;
        assert_eq!(run, Some("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(demo(&["demo", "--serve"], &[]), (run, true));
        assert_eq!(probe(&[]), run);
        let port = [("PORT", "9000")];
        let on_port = Some("0.0.0.0:9000".parse().unwrap());
        assert_eq!(demo(&["demo", "--serve"], &port), (on_port, true));
        assert_eq!(probe(&port), on_port);
        // A flag still says where, as for a run.
        let flag = ["demo", "--serve", "--health-addr", "127.0.0.1:0"];
        assert_eq!(demo(&flag, &port), (any_free, true));
    }

    #[test]
    fn a_config_file_comes_from_the_flag_else_the_environment() {
        let env = [
            ("TELEGRAM_BOT_TOKEN", "123:abc"),
            ("SMOLGRAM_CONFIG", "/env.toml"),
        ];
        let file = |args: &[&str], env: &[(&str, &str)]| match command(args, env) {
            Ok(Command::Run { bot_file, .. }) => bot_file,
            other => panic!("{args:?}: {other:?}"),
        };
        assert_eq!(file(&[], &env), Some("/env.toml".into()));
        assert_eq!(
            file(&["--config", "/a.toml", "--no-health"], &env),
            Some("/a.toml".into())
        );
        assert_eq!(
            file(&["run", "--config=/b.toml"], &env[..1]),
            Some("/b.toml".into())
        );
        let e = command(&["--config"], &env).unwrap_err().to_string();
        assert_eq!(e, "config: --config needs a value");
        assert!(
            matches!(command(&["check-config", "x.toml"], &[]), Ok(Command::CheckConfig(p)) if p == std::path::Path::new("x.toml"))
        );
        assert!(command(&["check-config"], &[]).is_err());
    }

    #[test]
    fn serve_belongs_to_the_demo_only() {
        let token = [("TELEGRAM_BOT_TOKEN", "123:abc")];
        for args in [&["--serve"][..], &["healthcheck", "--serve"]] {
            let e = command(args, &token).unwrap_err().to_string();
            assert!(e.contains("--serve"), "{args:?}: {e}");
        }
    }

    #[test]
    fn healthcheck_reads_the_health_address_and_tls_files_like_a_run() {
        let Ok(Command::Healthcheck(config)) = command(&["healthcheck"], &[("PORT", "3000")])
        else {
            panic!("healthcheck")
        };
        assert_eq!(config.health, Some("0.0.0.0:3000".parse().unwrap()));
        assert_eq!(config.tls, None, "plain http unless told");
        let env = [
            ("TELEGRAM_TLS_CERT", "/env.pem"),
            ("TELEGRAM_TLS_KEY", "/env.key"),
        ];
        let Ok(Command::Healthcheck(config)) = command(&["healthcheck"], &env) else {
            panic!("healthcheck with tls")
        };
        assert_eq!(config.tls.unwrap().cert, std::path::Path::new("/env.pem"));
        let flags = [
            "healthcheck",
            "--tls-cert=/flag.pem",
            "--tls-key",
            "/flag.key",
        ];
        let Ok(Command::Healthcheck(config)) = command(&flags, &env) else {
            panic!("healthcheck with tls flags")
        };
        assert_eq!(config.tls.unwrap().cert, std::path::Path::new("/flag.pem"));
        let e = command(&["healthcheck", "--tls-cert", "/c.pem"], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("go together"), "{e}");
    }
}
