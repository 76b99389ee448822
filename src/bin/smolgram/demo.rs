//! `smolgram demo`: the built-in bot against the testkit's fake Bot API, with
//! a scripted user. No token, no network.
//!
//! The bot runs on the main thread exactly as in production (same service,
//! same signals); the script runs on a second thread, talks to the fake API
//! as a Telegram user would, prints the conversation, probes `/healthz`,
//! and then stops the bot (unless `--serve`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use smolgram::api::types::ChatId;
use smolgram::config::Config;
use smolgram::testkit::FakeApi;
use smolgram::Shutdown;

use crate::{echo, exit_code, healthcheck};

/// The demo user's private chat.
const CHAT: ChatId = ChatId(1001);
/// How long the script waits for each answer.
const DEADLINE: Duration = Duration::from_secs(10);
/// How often a waiting script looks whether the bot was stopped under it:
/// a stop need not change anything the fake would wake it for.
const LOOK: Duration = Duration::from_millis(100);

pub(crate) fn run(mut config: Config, serve: bool) -> ExitCode {
    let api = Arc::new(FakeApi::start());
    config.api_url = api.url();
    let shutdown = Shutdown::new();
    let mut script = None;
    let result = smolgram::run_with(echo::bot(), &config, &shutdown, |service| {
        let health = service.health_addr();
        println!("smolgram demo: fake Bot API at {}", api.url());
        match health {
            Some(addr) => println!("health: http://{addr}/healthz"),
            None => println!("health: off"),
        }
        let (user, stop) = (Arc::clone(&api), shutdown.clone());
        script = Some(thread::spawn(move || {
            let outcome = conversation(&user, health, &stop);
            match &outcome {
                Ok(()) if serve && !stop.is_requested() => {
                    println!("serving until SIGTERM or Ctrl-C")
                }
                Ok(()) => stop.request(),
                Err(e) => {
                    eprintln!("smolgram demo: {e}");
                    stop.request();
                }
            }
            outcome
        }));
    });
    let code = exit_code(result);
    // The fake lives until here: the bot's final confirmation still reaches it.
    drop(api);
    match script.map(thread::JoinHandle::join) {
        // The run failed before the script started: its exit code says why.
        None => code,
        Some(Ok(Ok(()))) => code,
        Some(_) => ExitCode::FAILURE,
    }
}

/// The scripted user: four messages and a button press, each waiting for
/// the bot's answer; then a health probe. A signal ends it early, quietly:
/// the bot is stopping, and that is no failure of the demo.
fn conversation(api: &FakeApi, health: Option<SocketAddr>, stop: &Shutdown) -> Result<(), String> {
    for text in ["/start", "hello, smolgram", "/echo alpha beta 42", "/ping"] {
        println!("user > {text}");
        let before = api.sent_to(CHAT);
        api.push_text(CHAT, text);
        if !show_replies(api, before, stop)? {
            return Ok(());
        }
    }
    println!("user > [presses Ping]");
    let before = api.sent_to(CHAT);
    api.push_callback(CHAT, "ping");
    match wait(api, stop, |api| {
        !api.calls("answerCallbackQuery").is_empty()
    }) {
        Waited::Done => {}
        Waited::Stopped => return Ok(()),
        Waited::TimedOut => return Err("the button press was not answered".into()),
    }
    println!("bot  : answerCallbackQuery (the button stops spinning)");
    if !show_replies(api, before, stop)? {
        return Ok(());
    }
    if let Some(addr) = health {
        let status = healthcheck::get_healthz(addr).map_err(|e| format!("health probe: {e}"))?;
        println!("GET /healthz -> {status}");
    }
    Ok(())
}

/// Waits for the bot's next message in the demo chat and prints it;
/// `false` if a stop came first.
fn show_replies(api: &FakeApi, before: usize, stop: &Shutdown) -> Result<bool, String> {
    match wait(api, stop, |api| api.sent_to(CHAT) > before) {
        Waited::Done => {}
        Waited::Stopped => return Ok(false),
        Waited::TimedOut => return Err(format!("no answer within {DEADLINE:?}")),
    }
    for sent in api.sent().iter().filter(|s| s.chat == CHAT).skip(before) {
        let buttons: Vec<&str> = sent.params["reply_markup"]["inline_keyboard"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row.as_array().into_iter().flatten())
            .filter_map(|button| button["text"].as_str())
            .collect();
        for (i, line) in sent.text.lines().enumerate() {
            println!("{} {line}", if i == 0 { "bot  >" } else { "      " });
        }
        if !buttons.is_empty() {
            println!("       [{}]", buttons.join("] ["));
        }
    }
    Ok(true)
}

enum Waited {
    Done,
    Stopped,
    TimedOut,
}

/// Waits up to [`DEADLINE`] for `cond`, looking at `stop` every [`LOOK`]
/// too: a stop may come before the bot ever calls the fake again.
fn wait(api: &FakeApi, stop: &Shutdown, mut cond: impl FnMut(&FakeApi) -> bool) -> Waited {
    let until = Instant::now() + DEADLINE;
    while Instant::now() < until {
        if api.wait_for(LOOK, &mut cond) {
            return Waited::Done;
        }
        if stop.is_requested() {
            return Waited::Stopped;
        }
    }
    Waited::TimedOut
}
