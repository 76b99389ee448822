//! Editing a message from its own buttons: `/start` sends `Count: 0` over
//! − and + buttons; a press answers the callback, then edits that same
//! message's text and buttons in place (`editMessageText` with
//! `reply_markup`) instead of sending a new one.
//!
//! The count lives in the buttons, not in the bot: each carries the value
//! it leads to (`count:1`), so a restart loses nothing and two counters in
//! one chat never mix.
//!
//! ```sh
//! TELEGRAM_BOT_TOKEN=123456:ABC… cargo run --example edit_callback
//! ```

use std::process::ExitCode;

use smolgram::api::methods::SendMessage;
use smolgram::keyboard::{Button, InlineKeyboard};
use smolgram::Bot;

pub fn keyboard(count: i64) -> InlineKeyboard {
    // Cannot fail: `count:` and an i64 are at most 26 bytes, within 1 to 64.
    let button =
        |label, to: i64| Button::callback(label, format!("count:{to}")).expect("26 bytes at most");
    InlineKeyboard::new().row([
        button("−", count.saturating_sub(1)),
        button("+", count.saturating_add(1)),
    ])
}

pub fn bot() -> Bot {
    Bot::new()
        .command("start", |ctx| async move {
            let Some(chat) = ctx.chat_id() else {
                return Ok(());
            };
            let counter = SendMessage::new(chat, "Count: 0").reply_markup(keyboard(0));
            ctx.send_message(&counter).await?;
            Ok(())
        })
        .callback_prefix("count:", |ctx| async move {
            let count: i64 = ctx.args().parse()?;
            // Until it is answered, the user's app shows the press as pending.
            ctx.answer_callback_query(None).await?;
            // An edit keeps only the buttons it sends again.
            ctx.edit_text_with_keyboard(format!("Count: {count}"), keyboard(count))
                .await?;
            Ok(())
        })
}

fn main() -> ExitCode {
    let config = match smolgram::config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("edit_callback: {e}");
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
