//! A sign-up form of three questions that survives a restart mid-form:
//! `/start` asks for a name, then an age, then a city, one step per
//! message; `/me` shows what was signed; `/cancel` drops a form half
//! filled. Each user's step is kept per chat, so two people can fill it
//! in the same group at once.
//!
//! Where the state is kept is the run's `--state`:
//!
//! ```sh
//! TELEGRAM_BOT_TOKEN=123456:ABC… cargo run --example signup -- --state file:signup.state
//! ```

use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use smolgram::state::{Scope, State};
use smolgram::{Bot, Context, HandlerResult};

/// Where a user is in the form; the variant routes their next message.
#[derive(Debug, Default, Serialize, Deserialize)]
pub enum SignUp {
    /// No form under way.
    #[default]
    Idle,
    /// Asked for the name.
    Name,
    /// Asked for the age.
    Age { name: String },
    /// Asked for the city.
    City { name: String, age: u8 },
}

impl State for SignUp {
    const NAME: &'static str = "signup";
}

/// What a finished form leaves: the user's, in every chat.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub age: u8,
    pub city: String,
}

impl State for Profile {
    const NAME: &'static str = "profile";
    const SCOPE: Scope = Scope::User;
}

pub fn bot() -> Bot {
    Bot::new()
        .command("start", |ctx| async move {
            ctx.set_state(&SignUp::Name).await?;
            ctx.reply("What is your name?").await?;
            Ok(())
        })
        .command("cancel", |ctx| async move {
            ctx.clear_state::<SignUp>().await?;
            ctx.reply("Cancelled.").await?;
            Ok(())
        })
        .command("me", me)
        .dialogue(step)
}

/// One answer: checked, then the next question.
async fn step(ctx: Context, now: SignUp) -> Result<SignUp, smolgram::HandlerError> {
    let answer = ctx.text().unwrap_or_default().trim().to_owned();
    Ok(match now {
        SignUp::Idle => {
            ctx.reply("Send /start to sign up.").await?;
            SignUp::Idle
        }
        SignUp::Name => {
            ctx.reply("How old are you?").await?;
            SignUp::Age { name: answer }
        }
        SignUp::Age { name } => match answer.parse::<u8>() {
            Ok(age) => {
                ctx.reply("Which city do you live in?").await?;
                SignUp::City { name, age }
            }
            Err(_) => {
                ctx.reply("Your age, as a number please.").await?;
                SignUp::Age { name }
            }
        },
        SignUp::City { name, age } => {
            // Saved before the thanks: whoever reads it has been told.
            let thanks = format!("Thanks, {name} ({age}) from {answer}!");
            let profile = Profile {
                name,
                age,
                city: answer,
            };
            ctx.set_state(&profile).await?;
            ctx.reply(thanks).await?;
            SignUp::Idle
        }
    })
}

async fn me(ctx: Context) -> HandlerResult {
    let profile: Profile = ctx.get_state().await?;
    let text = if profile.name.is_empty() {
        "Not signed up yet: send /start.".to_owned()
    } else {
        format!("{} ({}) from {}", profile.name, profile.age, profile.city)
    };
    ctx.reply(text).await?;
    Ok(())
}

fn main() -> ExitCode {
    let config = match smolgram::config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("signup: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    smolgram::init_logging(&config.log_filter);
    match smolgram::run(bot(), &config) {
        Ok(summary) => {
            eprintln!("signup: stopped, {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
