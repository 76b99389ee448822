//! The examples' bots against the testkit: each does what its header says,
//! checked by the requests it sends (see: #12).

mod common;

// Each example is `bot()` (what these tests run) and `main` (what they do not).
#[allow(dead_code, reason = "the tests run the example's bot, not its main")]
#[path = "../examples/edit_callback.rs"]
mod edit_callback;
#[allow(dead_code, reason = "the tests run the example's bot, not its main")]
#[path = "../examples/embed_executor.rs"]
mod embed_executor;
#[allow(dead_code, reason = "the tests run the example's bot, not its main")]
#[path = "../examples/embed_repl.rs"]
mod embed_repl;
#[allow(dead_code, reason = "the tests run the example's bot, not its main")]
#[path = "../examples/files.rs"]
mod files;
#[allow(dead_code, reason = "the tests run the example's bot, not its main")]
#[path = "../examples/inline_query.rs"]
mod inline_query;
#[allow(dead_code, reason = "the tests run the example's bot, not its main")]
#[path = "../examples/reply_keyboard.rs"]
mod reply_keyboard;

use std::path::{Path, PathBuf};

use common::DEADLINE;
use serde_json::{json, Value};
use smolgram::api::types::{ChatId, UserId};
use smolgram::testkit::{Digest, FakeApi, TestBot};

const CHAT: ChatId = ChatId(7);

/// A directory of this test's own, removed with what is in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("smolgram-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn files_answers_downloads_with_their_size_and_sends_a_document_back_from_disk() {
    let api = FakeApi::start();
    let inbox = TempDir::new("examples-files");
    let dir = inbox.path().to_owned();
    let bot = TestBot::start(&api, move || files::bot(dir));

    let report: Vec<u8> = (0..50_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let id = api.add_file("report.pdf", report.clone());
    api.push_document(CHAT, &id, "report.pdf");
    api.wait_until("the size, then the document back", DEADLINE, |api| {
        api.sent_to(CHAT) == 1 && api.uploads().len() == 1
    });
    assert_eq!(api.calls("getFile")[0]["file_id"], id.as_str());
    assert_eq!(
        api.sent()[0].text,
        "report.pdf: 50000 bytes; here it is back"
    );
    let back = api.upload("report.pdf").expect("the document went back");
    assert_eq!(back.method, "senddocument");
    assert_eq!((back.len, back.digest), (50_000, Digest::of(&report)));
    // Saved under the file's unique id (the fake's is `u-<file_id>`), not the sender's name.
    let saved = std::fs::read(inbox.path().join(format!("u-{id}"))).unwrap();
    assert_eq!(Digest::of(&saved), Digest::of(&report));

    let photo = vec![0xd8; 3_000];
    let id = api.add_file("photo.jpg", photo);
    api.push_photo(CHAT, &id, None);
    api.wait_until("the photo's size", DEADLINE, |api| api.sent_to(CHAT) == 2);
    assert_eq!(api.sent()[1].text, "photo 640×480: 3000 bytes");
    assert_eq!(api.uploads().len(), 1, "a photo is only answered");

    let summary = bot.stop().unwrap();
    assert_eq!((summary.handled, summary.failed), (2, 0));
}

#[test]
fn files_refuses_a_file_over_the_cap_before_downloading_it() {
    let api = FakeApi::start();
    let inbox = TempDir::new("examples-cap");
    let dir = inbox.path().to_owned();
    let bot = TestBot::start(&api, move || files::bot(dir));

    let id = api.add_file("big.iso", vec![0; files::CAP as usize + 1]);
    api.push_document(CHAT, &id, "big.iso");
    api.wait_until("the refusal", DEADLINE, |api| api.sent_to(CHAT) == 1);
    assert_eq!(
        api.sent()[0].text,
        format!("too big: I take files up to {} bytes", files::CAP)
    );
    assert!(api.uploads().is_empty(), "nothing is sent back");
    let left: Vec<_> = std::fs::read_dir(inbox.path()).unwrap().collect();
    assert!(left.is_empty(), "no part of it is saved: {left:?}");
    assert_eq!(bot.stop().unwrap().failed, 0);
}

#[test]
fn files_cat_uploads_the_compiled_in_photo_byte_for_byte() {
    let api = FakeApi::start();
    let inbox = TempDir::new("examples-cat");
    let dir = inbox.path().to_owned();
    let bot = TestBot::start(&api, move || files::bot(dir));

    api.push_text(CHAT, "/cat");
    api.wait_until("the photo", DEADLINE, |api| api.uploads().len() == 1);
    let cat = api.upload("cat.png").expect("an upload named cat.png");
    assert_eq!(cat.method, "sendphoto");
    assert_eq!(
        (cat.len, cat.digest),
        (files::CAT.len() as u64, Digest::of(files::CAT))
    );
    assert!(
        files::CAT.starts_with(b"\x89PNG\r\n\x1a\n"),
        "a PNG Telegram takes"
    );
    let call = &api.calls("sendPhoto")[0];
    // A form's fields are text; the reply names the user's /cat, message 1.
    assert_eq!(call["chat_id"], "7");
    assert_eq!(call["photo"], "attach://file0");
    let reply: Value = serde_json::from_str(call["reply_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(reply["message_id"], 1);
    assert_eq!(bot.stop().unwrap().failed, 0);
}

#[test]
fn reply_keyboard_offers_rows_then_removes_them_after_a_choice() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, reply_keyboard::bot);

    api.push_text(CHAT, "/start");
    api.push_text(CHAT, "Durian");
    api.push_text(CHAT, "Banana");
    api.wait_until("three answers", DEADLINE, |api| api.sent_to(CHAT) == 3);
    let sent = api.sent();

    assert_eq!(sent[0].text, "Pick a fruit:");
    let offer = &sent[0].params["reply_markup"];
    let labels: Vec<Vec<&str>> = offer["keyboard"]
        .as_array()
        .expect("a reply keyboard")
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|b| b["text"].as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(labels, [["Apple", "Banana"], ["Cherry", "Cancel"]]);
    assert_eq!(offer["resize_keyboard"], true);
    assert_eq!(offer["one_time_keyboard"], true);

    // Text that is no button: asked again, the keyboard left where it is.
    assert_eq!(sent[1].text, "Tap a button, or /start to see them again.");
    assert_eq!(sent[1].params.get("reply_markup"), None);

    assert_eq!(sent[2].text, "Banana it is.");
    assert_eq!(
        sent[2].params["reply_markup"],
        json!({"remove_keyboard": true})
    );
    assert_eq!(bot.stop().unwrap().failed, 0);
}

#[test]
fn inline_query_answers_with_an_article_per_change_of_the_text() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, inline_query::bot);

    api.push_inline_query(UserId(5), "Hello smol");
    api.wait_until("the answer", DEADLINE, |api| {
        api.calls("answerInlineQuery").len() == 1
    });
    let answer = &api.calls("answerInlineQuery")[0];
    assert_eq!(answer["inline_query_id"], "testkit-inline-1");
    assert_eq!(answer["cache_time"], 300);
    let results = answer["results"].as_array().expect("results");
    let offered: Vec<(&str, &str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap(),
                r["id"].as_str().unwrap(),
                r["input_message_content"]["message_text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        offered,
        [
            ("article", "upper", "HELLO SMOL"),
            ("article", "lower", "hello smol"),
            ("article", "reversed", "loms olleH"),
        ]
    );

    // Nothing to change: no results, since a message needs text.
    api.push_inline_query(UserId(5), "  ");
    api.wait_until("the second answer", DEADLINE, |api| {
        api.calls("answerInlineQuery").len() == 2
    });
    let empty = &api.calls("answerInlineQuery")[1];
    assert_eq!(empty["inline_query_id"], "testkit-inline-2");
    assert_eq!(empty["results"], json!([]));
    let summary = bot.stop().unwrap();
    assert_eq!((summary.handled, summary.failed), (2, 0));
}

/// The `callback_data` of each button of a keyboard's first row.
fn first_row_data(markup: &Value) -> Vec<&str> {
    markup["inline_keyboard"][0]
        .as_array()
        .expect("an inline keyboard")
        .iter()
        .map(|b| b["callback_data"].as_str().expect("a callback button"))
        .collect()
}

#[test]
fn edit_callback_edits_the_pressed_message_in_place_and_answers_the_press() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, edit_callback::bot);

    api.push_text(CHAT, "/start");
    api.wait_until("the counter", DEADLINE, |api| api.sent_to(CHAT) == 1);
    let counter = &api.sent()[0];
    assert_eq!(counter.text, "Count: 0");
    assert_eq!(
        first_row_data(&counter.params["reply_markup"]),
        ["count:-1", "count:1"]
    );

    // The fake puts a press under the bot's last message in the chat: the
    // counter, message 2 (the user's /start was 1; ids count per chat).
    let presses = [
        ("count:1", "Count: 1", ["count:0", "count:2"]),
        ("count:2", "Count: 2", ["count:1", "count:3"]),
        ("count:1", "Count: 1", ["count:0", "count:2"]),
    ];
    for (press, (data, text, buttons)) in presses.into_iter().enumerate() {
        api.push_callback(CHAT, data);
        api.wait_until(&format!("edit {}", press + 1), DEADLINE, |api| {
            api.calls("editMessageText").len() == press + 1
                && api.calls("answerCallbackQuery").len() == press + 1
        });
        let edit = &api.calls("editMessageText")[press];
        assert_eq!(
            (&edit["chat_id"], &edit["message_id"]),
            (&json!(7), &json!(2))
        );
        assert_eq!(edit["text"], text);
        assert_eq!(first_row_data(&edit["reply_markup"]), buttons);
        let answer = &api.calls("answerCallbackQuery")[press];
        assert_eq!(
            answer["callback_query_id"],
            format!("testkit-{}", press + 1)
        );
    }
    assert_eq!(api.sent_to(CHAT), 1, "edited in place, never sent again");
    let summary = bot.stop().unwrap();
    assert_eq!((summary.handled, summary.failed), (4, 0));
}

#[test]
fn the_examples_run_unchanged_as_webhooks() {
    let api = FakeApi::start();
    let bot =
        TestBot::start_with(&api, TestBot::webhook_config(&api), reply_keyboard::bot).unwrap();
    api.push_text(CHAT, "/start");
    api.push_text(CHAT, "Banana");
    api.wait_until("both answered over the webhook", DEADLINE, |api| {
        api.pending() == 0 && api.sent_to(CHAT) == 2
    });
    let texts: Vec<String> = api.sent().into_iter().map(|s| s.text).collect();
    assert_eq!(texts, ["Pick a fruit:", "Banana it is."]);
    assert!(api.calls("getUpdates").is_empty());
    assert_eq!(bot.stop().unwrap().failed, 0);

    let api = FakeApi::start();
    let bot = TestBot::start_with(&api, TestBot::webhook_config(&api), inline_query::bot).unwrap();
    let webhook = api.webhook().unwrap();
    assert_eq!(
        webhook.allowed_updates,
        Some(vec!["inline_query".to_owned()])
    );
    api.push_inline_query(UserId(5), "Hello smol");
    api.wait_until("the answer over the webhook", DEADLINE, |api| {
        api.pending() == 0 && api.calls("answerInlineQuery").len() == 1
    });
    assert_eq!(bot.stop().unwrap().failed, 0);
}

#[test]
fn embed_repl_starts_sends_stops_and_starts_again_on_the_same_port() {
    let api = FakeApi::start();
    let mut config = TestBot::config(&api);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    config.health = Some(port);
    config.require_health = true;
    let input = "start\nsend 7 one\nstart\nstop\nsend 7 lost\nstart\nsend 7 two\nstatus\nfly\n";
    let mut out = Vec::new();
    embed_repl::session(&config, input.as_bytes(), &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let started = format!("started, health {port}");
    assert_eq!(lines[0], started);
    assert_eq!(lines[1], "sent message 1");
    assert_eq!(lines[2], "already running; stop it first");
    assert!(lines[3].starts_with("stopped, handled=0"), "{out}");
    assert_eq!(lines[4], "not running; start it first");
    assert_eq!(lines[5], started, "the same port again");
    assert_eq!(lines[6], "sent message 2");
    assert_eq!(lines[7], format!("running, health {port}"));
    assert!(lines[8].starts_with("unknown command \"fly\""), "{out}");
    assert!(lines[9].starts_with("stopped at the end"), "{out}");
    assert_eq!(common::texts_to(&api, CHAT), ["one", "two"]);
    assert!(
        std::net::TcpStream::connect(port).is_err(),
        "released at the end"
    );
}

#[test]
fn embed_executor_runs_the_bot_beside_the_programs_own_work() {
    let api = FakeApi::start();
    let config = TestBot::config(&api);
    let shutdown = smolgram::Shutdown::new();
    let work = embed_executor::ping(&api, CHAT);
    let summary = embed_executor::run(&config, &shutdown, work).unwrap();
    // The work waited for the bot's answer on the same thread: both ran.
    assert_eq!(summary.handled, 1);
    assert_eq!(api.sent()[0].text, "pong");
    assert!(shutdown.is_requested(), "the work's end stopped the bot");
}
