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
use std::time::Duration;

use smolgram::api::{types::ChatId, Token};
use smolgram::config::Config;
use smolgram::testkit::FakeApi;
use smolgram::{Runtime, Service, Shutdown};

use crate::{echo, exit_code, healthcheck};

/// The demo user's private chat.
const CHAT: ChatId = ChatId(1001);
/// How long the script waits for each answer.
const DEADLINE: Duration = Duration::from_secs(10);

pub(crate) fn run(mut config: Config, serve: bool) -> ExitCode {
    let api = Arc::new(FakeApi::start());
    // Cannot fail: the testkit's token is well formed (its own tests check it).
    config.token = Some(Token::parse(FakeApi::TOKEN).expect("testkit token is valid"));
    config.api_url = api.url();
    // Signals first: a supervisor may send SIGTERM as soon as the health port answers.
    let shutdown = Shutdown::new();
    let signals = match shutdown.watch_signals() {
        Ok(signals) => signals,
        Err(e) => return exit_code(Err(e)),
    };
    let service = match Service::new(echo::bot(), &config) {
        Ok(service) => service.with_shutdown(shutdown.clone()),
        Err(e) => return exit_code(Err(e)),
    };
    let health = service.health_addr();
    println!("smolgram demo: fake Bot API at {}", api.url());
    match health {
        Some(addr) => println!("health: http://{addr}/healthz"),
        None => println!("health: off"),
    }
    let rt = Runtime::new();
    rt.spawn(signals).detach();
    let user = Arc::clone(&api);
    let script = thread::spawn(move || {
        let outcome = conversation(&user, health, &shutdown);
        match &outcome {
            Ok(()) if serve && !shutdown.is_requested() => {
                println!("serving until SIGTERM or Ctrl-C")
            }
            Ok(()) => shutdown.request(),
            Err(e) => {
                eprintln!("smolgram demo: {e}");
                shutdown.request();
            }
        }
        outcome
    });
    let code = exit_code(rt.block_on(service.run(&rt)).and_then(|r| r));
    // The fake lives until here: the bot's final confirmation still reaches it.
    drop(api);
    match script.join() {
        Ok(Ok(())) => code,
        _ => ExitCode::FAILURE,
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
    if !api.wait_for(DEADLINE, |api| {
        api.sent_to(CHAT) > before || stop.is_requested()
    }) {
        return Err(format!("no answer within {DEADLINE:?}"));
    }
    if api.sent_to(CHAT) == before {
        return Ok(false);
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

/// Waits up to [`DEADLINE`] for `cond`, looking at `stop` every 100 ms too:
/// a stop may come before the bot ever calls the fake again.
fn wait(api: &FakeApi, stop: &Shutdown, mut cond: impl FnMut(&FakeApi) -> bool) -> Waited {
    let until = std::time::Instant::now() + DEADLINE;
    while std::time::Instant::now() < until {
        if api.wait_for(Duration::from_millis(100), &mut cond) {
            return Waited::Done;
        }
        if stop.is_requested() {
            return Waited::Stopped;
        }
    }
    Waited::TimedOut
}
