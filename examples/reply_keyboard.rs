//! A reply keyboard: `/start` puts fruit buttons in place of the user's
//! keyboard (two rows, fitted to them, hidden after a tap). A tap sends the
//! button's text as a plain message; the bot answers the choice and removes
//! the keyboard, and asks again for any other text.
//!
//! ```sh
//! TELEGRAM_BOT_TOKEN=123456:ABC… cargo run --example reply_keyboard
//! ```

use std::process::ExitCode;

use smolgram::api::methods::SendMessage;
use smolgram::keyboard::{RemoveKeyboard, ReplyButton, ReplyKeyboard};
use smolgram::Bot;

pub const FRUITS: [&str; 3] = ["Apple", "Banana", "Cherry"];

pub fn keyboard() -> ReplyKeyboard {
    ReplyKeyboard::new()
        .row([ReplyButton::text(FRUITS[0]), ReplyButton::text(FRUITS[1])])
        .row([ReplyButton::text(FRUITS[2]), ReplyButton::text("Cancel")])
        .resize()
        .one_time()
}

pub fn bot() -> Bot {
    Bot::new()
        .command("start", |ctx| async move {
            let Some(chat) = ctx.chat_id() else {
                return Ok(());
            };
            let ask = SendMessage::new(chat, "Pick a fruit:").reply_markup(keyboard());
            ctx.send_message(&ask).await?;
            Ok(())
        })
        .text(|ctx| async move {
            let Some(chat) = ctx.chat_id() else {
                return Ok(());
            };
            let answer = match ctx.text().unwrap_or_default() {
                "Cancel" => "Maybe later.".to_owned(),
                fruit if FRUITS.contains(&fruit) => format!("{fruit} it is."),
                _ => {
                    ctx.reply("Tap a button, or /start to see them again.")
                        .await?;
                    return Ok(());
                }
            };
            // `one_time` only hides the keyboard (the user can bring it
            // back); a message with `RemoveKeyboard` takes it away.
            let done = SendMessage::new(chat, answer).reply_markup(RemoveKeyboard::new());
            ctx.send_message(&done).await?;
            Ok(())
        })
}

fn main() -> ExitCode {
    let config = match smolgram::config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("reply_keyboard: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    smolgram::init_logging(&config.log_filter);
    match smolgram::run(bot(), &config) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
