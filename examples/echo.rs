//! The smallest useful bot: `/ping` answers `pong`, any other text is echoed.
//!
//! ```sh
//! TELEGRAM_BOT_TOKEN=123456:ABC… cargo run --example echo
//! ```

use std::process::ExitCode;

use smolgram::config::{self, Command};
use smolgram::Bot;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match config::parse(&args, |key| std::env::var(key).ok()) {
        Ok(Command::Run(config)) => config,
        Ok(_) => {
            eprintln!("usage: TELEGRAM_BOT_TOKEN=… cargo run --example echo");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::from(2);
        }
    };
    smolgram::init_logging(&config.log_filter);

    let bot = Bot::new()
        .command("ping", |ctx| async move {
            ctx.reply("pong").await?;
            Ok(())
        })
        .text(|ctx| async move {
            let text = ctx.text().unwrap_or_default().to_owned();
            ctx.reply(text).await?;
            Ok(())
        });

    match smolgram::run(bot, &config) {
        Ok(summary) => {
            eprintln!("echo: stopped, {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::FAILURE
        }
    }
}
