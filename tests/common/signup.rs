//! The sign-up example as a process of its own that a test can SIGKILL: the
//! test binary runs itself again, filtered to the calling test, with the
//! fake's URL and a `--state` in its environment; in that child the test
//! calls [`child`], which runs the bot until it is killed (see: #15).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use smolgram::api::types::ChatId;
use smolgram::api::Token;
use smolgram::config::{Config, StoreSpec};
use smolgram::testkit::FakeApi;

use super::DEADLINE;

const API: &str = "SMOLGRAM_TEST_CHILD_API";
const STATE: &str = "SMOLGRAM_TEST_CHILD_STATE";

/// In the child the parent started, runs `bot` against the parent's fake
/// with its store, and never returns; elsewhere returns at once.
pub fn child(bot: fn() -> smolgram::Bot) {
    let (Ok(url), Ok(spec)) = (std::env::var(API), std::env::var(STATE)) else {
        return;
    };
    let token = Token::parse(FakeApi::TOKEN).expect("the testkit token is well formed");
    let mut config = Config::new(token);
    config.api_url = url;
    config.health = None;
    config.poll_timeout = Duration::from_secs(1);
    config.state.store = StoreSpec::parse(&spec).expect("the parent's --state");
    let outcome = smolgram::run(bot(), &config);
    eprintln!("child: the bot stopped: {outcome:?}");
    std::process::exit(0);
}

/// The bot of the calling test `test` as a child process on `state`,
/// returned once its first `getUpdates` reached `api`; killed on drop.
pub struct Instance(Child);

impl Instance {
    pub fn start(api: &FakeApi, test: &str, state: &str) -> Instance {
        let polls = api.calls("getUpdates").len();
        let child = Command::new(std::env::current_exe().expect("the test binary's path"))
            .args(["--exact", test, "--nocapture", "--include-ignored"])
            .env(API, api.url())
            .env(STATE, state)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("the test binary starts again");
        let instance = Instance(child);
        api.wait_until("the child's first poll", DEADLINE, |api| {
            api.calls("getUpdates").len() > polls
        });
        instance
    }

    /// SIGKILL, as a power cut or the OOM killer would.
    pub fn kill(mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("the child is reaped");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `text` from the user of `chat` and waits until the bot's replies to
/// `chat` include `reply` (repeats after a restart allowed).
pub fn answer(api: &FakeApi, chat: ChatId, text: &str, reply: &str) {
    api.push_text(chat, text);
    api.wait_until(&format!("{reply:?} after {text:?}"), DEADLINE, |api| {
        api.sent()
            .iter()
            .filter(|s| s.chat == chat)
            .any(|s| s.text == reply)
    });
}

/// A form filled by `chat` with a SIGKILL of the bot after its name, the
/// rest answered by `next` (another instance on the same store): the
/// thanks reads the name given before the kill, and no step was forgotten.
pub fn form_across_a_kill(
    api: &FakeApi,
    chat: ChatId,
    first: Instance,
    next: impl FnOnce() -> Instance,
) {
    answer(api, chat, "/start", "What is your name?");
    answer(api, chat, "Ann", "How old are you?");
    first.kill();
    let second = next();
    answer(api, chat, "30", "Which city do you live in?");
    answer(api, chat, "Oslo", "Thanks, Ann (30) from Oslo!");
    let texts = super::texts_to(api, chat);
    assert!(
        !texts.iter().any(|t| t == "Send /start to sign up."),
        "a step was forgotten across the kill: {texts:?}"
    );
    drop(second);
}
