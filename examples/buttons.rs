//! Inline buttons and per-chat state: `/start` shows `+1` and `reset`
//! buttons; each press is answered with a toast and a message with the new
//! count. State is an `Rc<RefCell<…>>`: handlers run on one thread.
//!
//! ```sh
//! TELEGRAM_BOT_TOKEN=123456:ABC… cargo run --example buttons
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::ExitCode;
use std::rc::Rc;

use smolgram::api::methods::SendMessage;
use smolgram::api::types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup};
use smolgram::Bot;

fn keyboard() -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        InlineKeyboardButton::new("+1").callback_data("inc"),
        InlineKeyboardButton::new("reset").callback_data("reset"),
    ]])
}

fn main() -> ExitCode {
    let config = match smolgram::config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("buttons: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    smolgram::init_logging(&config.log_filter);

    let counts: Rc<RefCell<HashMap<ChatId, u64>>> = Rc::default();
    let bot = Bot::new()
        .command("start", |ctx| async move {
            let Some(chat) = ctx.chat_id() else {
                return Ok(());
            };
            let message = SendMessage::new(chat, "Count with me:").reply_markup(keyboard());
            ctx.send_message(&message).await?;
            Ok(())
        })
        .callback(move |ctx| {
            let counts = Rc::clone(&counts);
            async move {
                let Some(chat) = ctx.chat_id() else {
                    return Ok(());
                };
                let data = ctx.callback_query().and_then(|q| q.data.clone());
                // The borrow ends before the next await: never hold it across one.
                let count = {
                    let mut counts = counts.borrow_mut();
                    let count = counts.entry(chat).or_default();
                    *count = if data.as_deref() == Some("inc") {
                        *count + 1
                    } else {
                        0
                    };
                    *count
                };
                ctx.answer_callback_query(Some(&format!("count = {count}")))
                    .await?;
                ctx.send_message(
                    &SendMessage::new(chat, format!("count = {count}")).reply_markup(keyboard()),
                )
                .await?;
                Ok(())
            }
        });

    match smolgram::run(bot, &config) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
