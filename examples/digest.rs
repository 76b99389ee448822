//! Jobs and broadcasts: a daily digest at 08:00 to everyone who pressed
//! `/start`, reminders that survive a restart, and an announcement to all.
//!
//! - `/start` subscribes the chat, `/stop` unsubscribes it;
//! - `/remind 10 tea` reminds the chat of "tea" in 10 minutes (`/remind`
//!   takes minutes; the reminder is kept in the state store, so a restart
//!   in between does not lose it, and one that fell due while the bot was
//!   down comes at its next start);
//! - `/cancel <id>` cancels a reminder by the id `/remind` answered;
//! - `/announce <text>` sends `text` to every subscriber, within Telegram's
//!   limits, resuming after a restart where it stopped;
//! - every day at 08:00 (UTC+1; a fixed offset, see the README on zones)
//!   the digest goes to every subscriber the same way.
//!
//! ```sh
//! TELEGRAM_BOT_TOKEN=123456:ABC… cargo run --example digest -- --state file:digest.state
//! ```

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use smolgram::api::methods::SendMessage;
use smolgram::api::types::ChatId;
use smolgram::jobs::{Broadcast, Job, JobContext, JobId, Schedule};
use smolgram::state::{Scope, State};
use smolgram::{Bot, Context, HandlerResult};

/// When the digest goes out.
pub const DIGEST_AT: &str = "cron 0 8 * * * tz +01:00";

/// The chats that pressed `/start`: the bot's one list.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Subscribers(pub BTreeSet<ChatId>);

impl State for Subscribers {
    const NAME: &'static str = "subscribers";
    const SCOPE: Scope = Scope::Bot;
    // Kept for ever, not for the run's default of 30 days.
    const TTL: Option<Duration> = Some(Duration::ZERO);
}

/// A reminder: which chat, of what.
#[derive(Debug, Serialize, Deserialize)]
pub struct Remind {
    pub chat: ChatId,
    pub text: String,
}

impl Job for Remind {
    const NAME: &'static str = "remind";
}

pub fn bot() -> Bot {
    Bot::new()
        .command("start", |ctx| async move {
            let chat = ctx.chat_id().ok_or("no chat")?;
            let n = ctx
                .update_state(|s: &mut Subscribers| {
                    s.0.insert(chat);
                    s.0.len()
                })
                .await?;
            ctx.reply(format!(
                "Subscribed ({n} in all): the digest comes daily at 08:00. /remind 10 tea reminds you in 10 minutes."
            ))
            .await?;
            Ok(())
        })
        .command("stop", |ctx| async move {
            let chat = ctx.chat_id().ok_or("no chat")?;
            ctx.update_state(|s: &mut Subscribers| s.0.remove(&chat))
                .await?;
            ctx.reply("Unsubscribed.").await?;
            Ok(())
        })
        .command("remind", remind)
        .command("cancel", |ctx| async move {
            let id = JobId::from(ctx.args().trim());
            let text = if ctx.cancel_job(&id).await? {
                "Cancelled."
            } else {
                "No such reminder."
            };
            ctx.reply(text).await?;
            Ok(())
        })
        .command("announce", |ctx| async move {
            let text = ctx.args().trim().to_owned();
            if text.is_empty() {
                ctx.reply("Usage: /announce <text>").await?;
                return Ok(());
            }
            let subscribers: Subscribers = ctx.get_state().await?;
            let n = subscribers.0.len();
            let message = SendMessage::new(ChatId(0), text);
            let id = ctx
                .broadcast(Broadcast::message(subscribers.0, &message))
                .await?;
            ctx.reply(format!("Sending to {n} chats ({id}).")).await?;
            Ok(())
        })
        .on_job(|ctx: JobContext, remind: Remind| async move {
            ctx.send_message(remind.chat, format!("Reminder: {}", remind.text))
                .await?;
            Ok(())
        })
        .job("digest", digest_schedule(), digest)
}

/// [`DIGEST_AT`], which is well formed.
pub fn digest_schedule() -> Schedule {
    Schedule::parse(DIGEST_AT).unwrap_or(Schedule::Every(Duration::from_secs(86_400)))
}

/// `/remind <minutes> <text>`.
async fn remind(ctx: Context) -> HandlerResult {
    let chat = ctx.chat_id().ok_or("no chat")?;
    let args = ctx.args().trim();
    let (minutes, text) = args.split_once(' ').unwrap_or((args, ""));
    let (Ok(minutes), false) = (minutes.parse::<u32>(), text.trim().is_empty()) else {
        ctx.reply("Usage: /remind <minutes> <text>").await?;
        return Ok(());
    };
    let delay = Duration::from_secs(u64::from(minutes) * 60);
    let job = Remind {
        chat,
        text: text.trim().to_owned(),
    };
    let id = ctx.schedule_in(delay, &job).await?;
    ctx.reply(format!("I will remind you in {minutes} min ({id})."))
        .await?;
    Ok(())
}

/// The daily digest, to every subscriber.
async fn digest(ctx: JobContext) -> HandlerResult {
    let subscribers: Subscribers = ctx.get_state(None, None).await?;
    if subscribers.0.is_empty() {
        return Ok(());
    }
    let day = Schedule::Once(ctx.due()).to_string();
    let day = day.get(3..13).unwrap_or_default().to_owned();
    let text = format!("Digest for {day}: {} subscribers.", subscribers.0.len());
    ctx.broadcast(Broadcast::message(
        subscribers.0,
        &SendMessage::new(ChatId(0), text),
    ))
    .await?;
    Ok(())
}

fn main() -> ExitCode {
    let config = match smolgram::config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("digest: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    smolgram::init_logging(&config.log_filter);
    match smolgram::run(bot(), &config) {
        Ok(summary) => {
            eprintln!("digest: stopped, {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
