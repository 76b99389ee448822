//! The bot's run as one future on the caller's own smol `LocalExecutor`,
//! beside the caller's own work, on one thread: no thread of the bot's,
//! no second executor to drive.
//!
//! With `TELEGRAM_BOT_TOKEN` set it runs for real until Ctrl-C; without,
//! against the testkit's fake Bot API, where the program's own work is a
//! user who says `/ping` and waits for the answer; then it stops the bot:
//!
//! ```sh
//! cargo run --example embed_executor
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use futures_lite::future;
use smolgram::api::types::ChatId;
use smolgram::config::Config;
use smolgram::testkit::FakeApi;
use smolgram::{Bot, Error, Service, Shutdown, Summary};

/// The bot: `/ping` answers `pong`.
pub fn bot() -> Bot {
    Bot::new().command("ping", |ctx| async move {
        ctx.reply("pong").await?;
        Ok(())
    })
}

/// Runs the bot on this thread's `LocalExecutor` while `work`, the
/// program's own, runs beside it on the same executor; when `work` ends
/// (or `shutdown` is requested elsewhere) the bot stops, with its drain.
pub fn run(
    config: &Config,
    shutdown: &Shutdown,
    work: impl Future<Output = ()>,
) -> Result<Summary, Error> {
    let service = Service::new(bot(), config)?;
    let ours = LocalExecutor::new();
    let bot = ours.spawn(service.future(shutdown.clone()));
    future::block_on(ours.run(async {
        future::or(work, shutdown.requested()).await;
        shutdown.request();
        bot.await
    }))
}

/// A user of the fake Bot API: says `/ping` and waits, without blocking
/// the executor, until the bot has answered (10 s at most).
pub async fn ping(api: &FakeApi, chat: ChatId) {
    api.push_text(chat, "/ping");
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.sent_to(chat) == 0 && Instant::now() < deadline {
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
}

fn main() -> std::process::ExitCode {
    smolgram::init_logging("info");
    let shutdown = Shutdown::new();
    let outcome = match std::env::var_os("TELEGRAM_BOT_TOKEN") {
        // For real: the program's work is to wait for Ctrl-C or SIGTERM.
        Some(_) => smolgram::config::from_env().and_then(|config| {
            let signals = shutdown.watch_signals()?;
            run(&config, &shutdown, signals)
        }),
        None => {
            let api = FakeApi::start();
            run(
                &smolgram::testkit::TestBot::config(&api),
                &shutdown,
                ping(&api, ChatId(7)),
            )
        }
    };
    match outcome {
        Ok(summary) => {
            println!("embed_executor: stopped, {summary}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("embed_executor: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
