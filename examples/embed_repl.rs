//! A bot started, stopped and started again from a session that owns the
//! thread, as a REPL's or a notebook's cells would: one command per line.
//!
//! ```text
//! start             start the bot (its own thread; returns once its port is bound)
//! send CHAT TEXT    a message through the running bot, from this thread
//! status            whether it runs, and its health address
//! stop              stop it (the usual drain) and print its summary
//! ```
//!
//! With `TELEGRAM_BOT_TOKEN` set it runs for real; without, against the
//! testkit's fake Bot API, so this runs anywhere:
//!
//! ```sh
//! printf 'start\nsend 7 hello\nstop\nstart\nstatus\nstop\n' | cargo run --example embed_repl
//! ```

use std::io::{BufRead, Write};

use smolgram::api::methods::SendMessage;
use smolgram::api::types::ChatId;
use smolgram::config::Config;
use smolgram::embed::{self, BotHandle};
use smolgram::Bot;

/// The session's bot: `/ping` answers `pong`.
pub fn bot() -> Bot {
    Bot::new().command("ping", |ctx| async move {
        ctx.reply("pong").await?;
        Ok(())
    })
}

/// Runs the commands of `input`, answering each on `out`; at the end of
/// the input a running bot is stopped. A bad command is an answer, not an
/// error: the session goes on.
pub fn session(config: &Config, input: impl BufRead, out: &mut impl Write) -> std::io::Result<()> {
    let mut running: Option<BotHandle> = None;
    for line in input.lines() {
        let line = line?;
        let answer = match (line.split_once(' ').unwrap_or((&line, "")), &running) {
            (("start", _), Some(_)) => "already running; stop it first".to_owned(),
            (("start", _), None) => match embed::spawn(config.clone(), bot) {
                Ok(bot) => {
                    let health = bot
                        .health_addr()
                        .map_or("off".to_owned(), |a| a.to_string());
                    running = Some(bot);
                    format!("started, health {health}")
                }
                Err(e) => format!("not started: {e}"),
            },
            (("send", rest), Some(bot)) => match rest.split_once(' ') {
                Some((chat, text)) if chat.parse::<i64>().is_ok() => {
                    let chat = ChatId(chat.parse().unwrap_or_default());
                    match bot.remote().send_blocking(SendMessage::new(chat, text)) {
                        Ok(message) => format!("sent message {}", message.message_id.0),
                        Err(e) => format!("not sent: {e}"),
                    }
                }
                _ => "usage: send CHAT TEXT".to_owned(),
            },
            (("status", _), Some(bot)) => match bot.health_addr() {
                Some(addr) => format!("running, health {addr}"),
                None => "running, no health port".to_owned(),
            },
            (("stop", _), Some(_)) => match running.take().map(BotHandle::stop) {
                Some(Ok(summary)) => format!("stopped, {summary}"),
                Some(Err(e)) => format!("stopped: {e}"),
                None => unreachable!("matched a running bot"),
            },
            (("send" | "status" | "stop", _), None) => "not running; start it first".to_owned(),
            _ => format!("unknown command {line:?}: start, send CHAT TEXT, status, stop"),
        };
        writeln!(out, "{answer}")?;
    }
    if let Some(bot) = running {
        match bot.stop() {
            Ok(summary) => writeln!(out, "stopped at the end, {summary}")?,
            Err(e) => writeln!(out, "stopped at the end: {e}")?,
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    smolgram::init_logging("warn");
    // A real bot with a token; without one, the fake Bot API, kept until the end.
    let (config, _fake) = match std::env::var_os("TELEGRAM_BOT_TOKEN") {
        Some(_) => match smolgram::config::from_env() {
            Ok(config) => (config, None),
            Err(e) => {
                eprintln!("embed_repl: {e}");
                std::process::exit(e.exit_code().into());
            }
        },
        None => {
            let api = smolgram::testkit::FakeApi::start();
            (smolgram::testkit::TestBot::config(&api), Some(api))
        }
    };
    session(&config, std::io::stdin().lock(), &mut std::io::stdout())
}
