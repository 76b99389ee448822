//! A bot from a config file (#14): the release binary with `--config`
//! against the testkit. Default deny, argv injection, output caps and the
//! token, buttons, SIGHUP reload, `check-config`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{secret, texts_to, Bin, DEADLINE};
use smolgram::api::types::ChatId;
use smolgram::testkit::FakeApi;

const ADMIN: ChatId = ChatId(42);
const STRANGER: ChatId = ChatId(7);

/// A directory of its own for one test, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("smolgram-filebot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The bot of `config` against `api`, once it polls.
fn start(api: &FakeApi, config: &Path) -> Bin {
    Bin::polling(api, &["--config", config.to_str().unwrap()], "info")
}

/// The texts sent to `chat`, once there are at least `n`.
#[track_caller]
fn texts(api: &FakeApi, chat: ChatId, n: usize) -> Vec<String> {
    api.wait_until(&format!("{n} messages to {chat:?}"), DEADLINE, |api| {
        api.sent_to(chat) >= n
    });
    texts_to(api, chat)
}

#[test]
fn only_the_allowlist_triggers_anything_and_others_get_the_refusal() {
    let dir = Dir::new("allow");
    let marker = dir.path("ran");
    let config = dir.write(
        "bot.toml",
        &format!(
            r#"
[bot]
allow = [{admin}]
refusal = "Not for you."
default_reply = "Try /touch"

[[command]]
name = "touch"
run = ["/usr/bin/touch", "{marker}"]
"#,
            admin = ADMIN.0
        ),
    );
    let api = FakeApi::start();
    let bin = start(&api, &config);
    api.push_text(STRANGER, "/touch");
    api.push_text(STRANGER, "hello");
    assert_eq!(texts(&api, STRANGER, 2), ["Not for you.", "Not for you."]);
    assert!(!Path::new(&marker).exists(), "a stranger's /touch ran");
    api.push_text(ADMIN, "hello");
    api.push_text(ADMIN, "/touch");
    assert_eq!(texts(&api, ADMIN, 2), ["Try /touch", "(no output)"]);
    assert!(
        Path::new(&marker).exists(),
        "the admin's /touch did not run"
    );
    assert!(!bin.output().contains(secret()));
}

#[test]
fn the_users_words_reach_the_program_as_literal_arguments() {
    let dir = Dir::new("argv");
    let config = dir.write(
        "bot.toml",
        &format!(
            r#"
[bot]
allow = [{admin}]
[[command]]
name = "args"
run = ["/usr/bin/printf", "<%s>"]
args = true
max_args = 10
[[command]]
name = "none"
run = ["/usr/bin/printf", "fixed"]
"#,
            admin = ADMIN.0
        ),
    );
    let api = FakeApi::start();
    let _bin = start(&api, &config);
    api.push_text(ADMIN, "/args ; rm -rf / $(id) `id` --flag\n'*'");
    api.push_text(ADMIN, "/none --help");
    let sent = texts(&api, ADMIN, 2);
    assert_eq!(sent[0], "<;><rm><-rf></><$(id)><`id`><--flag><'*'>");
    assert_eq!(sent[1], "/none takes no arguments.");
}

#[test]
fn output_is_capped_cleaned_and_never_shows_the_token() {
    let dir = Dir::new("output");
    let token_file = dir.write("token", FakeApi::TOKEN);
    let config = dir.write(
        "bot.toml",
        &format!(
            r#"
[bot]
allow = [{admin}]
[[command]]
name = "leak"
run = ["/bin/cat", "{token}"]
[[command]]
name = "flood"
run = ["/usr/bin/yes", "100 MB of this"]
max_output = 10000
[[command]]
name = "ansi"
run = ["/usr/bin/printf", "\u001b[31mred\u0007\r\n"]
[[command]]
name = "slow"
run = ["/bin/sleep", "30"]
timeout = 1
"#,
            admin = ADMIN.0,
            token = token_file.display()
        ),
    );
    let api = FakeApi::start();
    let bin = start(&api, &config);
    api.push_text(ADMIN, "/leak");
    assert_eq!(texts(&api, ADMIN, 1)[0], "[token]");
    api.push_text(ADMIN, "/ansi");
    assert_eq!(texts(&api, ADMIN, 2)[1], "\u{FFFD}[31mred\u{FFFD}\n");
    api.push_text(ADMIN, "/flood");
    let sent = texts(&api, ADMIN, 5);
    let flood = sent[2..5].concat();
    assert!(flood.starts_with("100 MB of this\n"), "{flood:.40}");
    assert!(
        flood.ends_with("[output cut at 10000 bytes; the program was stopped]"),
        "{flood}"
    );
    assert!(flood.len() < 10_100);
    api.push_text(ADMIN, "/slow");
    assert_eq!(texts(&api, ADMIN, 6)[5], "[stopped after 1 s]");
    let all: String = api.sent().iter().map(|s| s.text.clone()).collect();
    assert!(!all.contains(secret()) && !bin.output().contains(secret()));
}

#[test]
fn buttons_reply_or_trigger_their_command_for_the_allowed_only() {
    let dir = Dir::new("buttons");
    let config = dir.write(
        "bot.toml",
        &format!(
            r#"
[bot]
allow = [{admin}]
refusal = "No."
[[command]]
name = "start"
reply = "Pick one"
buttons = [[{{ text = "Up", command = "up" }}, {{ text = "Hi", reply = "hello" }}], [{{ text = "Site", url = "https://example.org" }}]]
[[command]]
name = "up"
run = ["/usr/bin/printf", "up 3 days"]
"#,
            admin = ADMIN.0
        ),
    );
    let api = FakeApi::start();
    let _bin = start(&api, &config);
    api.push_text(ADMIN, "/start");
    api.wait_until("the menu", DEADLINE, |api| api.sent_to(ADMIN) == 1);
    let menu = api.sent().remove(0);
    let rows = &menu.params["reply_markup"]["inline_keyboard"];
    assert_eq!(rows[0][0]["callback_data"], "b:start:0:0");
    assert_eq!(rows[1][0]["url"], "https://example.org");
    api.push_callback(ADMIN, "b:start:0:1");
    api.push_callback(ADMIN, "b:start:0:0");
    assert_eq!(texts(&api, ADMIN, 3)[1..], ["hello", "up 3 days"]);
    // The stranger's press, then a text in the same chat, whose refusal comes
    // after all that the press did: nothing but the refusal.
    api.push_callback(STRANGER, "b:start:0:0");
    api.push_text(STRANGER, "/start");
    assert_eq!(
        texts(&api, STRANGER, 1),
        ["No."],
        "a stranger's button ran something"
    );
    let answers = api.calls("answerCallbackQuery");
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[2]["text"], "No.");
}

#[test]
fn sighup_reloads_and_a_bad_new_file_keeps_the_old_one() {
    let dir = Dir::new("reload");
    let file = |reply: &str| {
        format!(
            "[bot]\nallow = [{}]\n[[command]]\nname = \"v\"\nreply = \"{reply}\"\n",
            ADMIN.0
        )
    };
    let config = dir.write("bot.toml", &file("one"));
    let api = FakeApi::start();
    let bin = start(&api, &config);
    api.push_text(ADMIN, "/v");
    assert_eq!(texts(&api, ADMIN, 1), ["one"]);
    dir.write("bot.toml", &file("two"));
    bin.signal("HUP");
    bin.wait_for_output("the reload", "config reloaded");
    api.push_text(ADMIN, "/v");
    assert_eq!(texts(&api, ADMIN, 2)[1], "two");
    dir.write("bot.toml", "[bot]\nallow = [42]\nalow = 1\n");
    bin.signal("HUP");
    let out = bin.wait_for_output("the refused reload", "config reload refused");
    assert!(
        out.contains("bot.toml:3:1: unknown key `alow` in [bot]"),
        "{out}"
    );
    api.push_text(ADMIN, "/v");
    assert_eq!(texts(&api, ADMIN, 3)[2], "two");
    bin.signal("TERM");
    let (status, _) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn check_config_says_ok_or_the_first_mistake_at_its_place() {
    let dir = Dir::new("check");
    let good = dir.write("good.toml", "[[command]]\nname = \"hi\"\nreply = \"hi\"\n");
    let bad = dir.write("bad.toml", "[[command]]\nname = \"hi\"\nreply = \"hi\n");
    let check = |path: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_smolgram"))
            .arg("check-config")
            .arg(path)
            .env_clear()
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, out) = check(&good);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok, 1 commands"), "{out}");
    let (code, out) = check(&bad);
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("bad.toml:3:9: "), "{out}");
    // A run with a bad file exits 2 before it calls Telegram.
    let api = FakeApi::start();
    let bin = Bin::against(&api, &["--config", bad.to_str().unwrap()], "info");
    let (status, out) = bin.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("bad.toml:3:9: "), "{out}");
}

#[test]
fn the_contrib_example_is_a_good_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/pi-status.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_smolgram"))
        .arg("check-config")
        .arg(&example)
        .env_clear()
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.ends_with("ok, 6 commands\n"), "{text}");
}
