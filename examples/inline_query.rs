//! Inline mode: type `@yourbot some text` in any chat and the bot offers
//! the text upper-cased, lower-cased and reversed; tapping one sends it.
//! Each offer is an `InlineQueryResultArticle`, sent with `answerInlineQuery`.
//!
//! ```sh
//! TELEGRAM_BOT_TOKEN=123456:ABC… cargo run --example inline_query
//! ```
//!
//! Telegram sends inline queries only to bots with inline mode on:
//! @BotFather, `/setinline`.

use std::process::ExitCode;

use smolgram::api::methods::AnswerInlineQuery;
use smolgram::api::types::{
    InlineQuery, InlineQueryResult, InlineQueryResultArticle, InputTextMessageContent,
};
use smolgram::Bot;

/// The answer to `query`: one article per way of changing its text, none
/// for an empty query (Telegram refuses a message without text).
pub fn answer(query: &InlineQuery) -> AnswerInlineQuery {
    let text = query.query.trim();
    let offers = match text {
        "" => vec![],
        text => vec![
            ("upper", "UPPER CASE", text.to_uppercase()),
            ("lower", "lower case", text.to_lowercase()),
            ("reversed", "desrever", text.chars().rev().collect()),
        ],
    };
    let results: Vec<InlineQueryResult> = offers
        .into_iter()
        .map(|(id, title, out)| {
            InlineQueryResultArticle::new(id, title, InputTextMessageContent::new(&out))
                .description(out)
                .into()
        })
        .collect();
    // The results depend on the text alone: Telegram may reuse them for
    // the same query from anyone, for 5 minutes.
    AnswerInlineQuery::new(&query.id, results).cache_time(300)
}

pub fn bot() -> Bot {
    Bot::new().inline_query(|ctx| async move {
        let Some(query) = ctx.inline_query() else {
            return Ok(());
        };
        ctx.send(&answer(query)).await?;
        Ok(())
    })
}

fn main() -> ExitCode {
    let config = match smolgram::config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("inline_query: {e}");
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
