//! The smallest useful bot: `/ping` answers `pong`, any other text is echoed.
//!
//! ```sh
//! TELEGRAM_BOT_TOKEN=123456:ABC… cargo run --example echo
//! ```

use std::process::ExitCode;

use smolgram::Bot;

fn main() -> ExitCode {
    let config = match smolgram::config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::from(e.exit_code());
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
            log::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
