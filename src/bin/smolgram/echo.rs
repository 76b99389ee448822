//! The built-in bot: `/start` and `/help` with a Ping button, `/ping`,
//! `/echo ARGS`, and any other text echoed back as a reply. Written with the
//! public API only.

use smolgram::api::methods::SendMessage;
use smolgram::api::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use smolgram::{Bot, Context, HandlerResult};

const HELP: &str = "Hi, I am a smolgram echo bot.\n\
/ping answers pong\n\
/echo TEXT repeats TEXT\n\
Anything else I echo back.";

/// The bot the binary runs.
pub(crate) fn bot() -> Bot {
    Bot::new()
        .command("start", help)
        .command("help", help)
        .command("ping", |ctx| async move {
            ctx.reply("pong").await?;
            Ok(())
        })
        .command("echo", |ctx| async move {
            let args = ctx.args();
            ctx.reply(if args.is_empty() {
                "usage: /echo TEXT"
            } else {
                args
            })
            .await?;
            Ok(())
        })
        .text(|ctx| async move {
            let text = ctx.text().unwrap_or_default().to_owned();
            ctx.reply(text).await?;
            Ok(())
        })
        .callback(|ctx| async move {
            if ctx.callback_data() == Some("ping") {
                ctx.answer_callback_query(None).await?;
                ctx.reply("pong").await?;
            } else {
                ctx.answer_callback_query(Some("unknown button")).await?;
            }
            Ok(())
        })
}

async fn help(ctx: Context) -> HandlerResult {
    let Some(chat) = ctx.chat_id() else {
        return Ok(());
    };
    let ping = InlineKeyboardMarkup::new(vec![vec![
        InlineKeyboardButton::new("Ping").callback_data("ping")
    ]]);
    ctx.send_message(&SendMessage::new(chat, HELP).reply_markup(ping))
        .await?;
    Ok(())
}
