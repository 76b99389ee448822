//! Routing by update kind, the `allowed_updates` every poll sends, and the
//! `Context` shortcuts, against the testkit (see: #12).

mod common;

use std::sync::{Arc, Mutex};

use common::DEADLINE;
use serde_json::{json, Value};
use smolgram::api::generated::InputFile;
use smolgram::api::types::{ChatId, UpdateKind, UserId, UPDATE_KINDS};
use smolgram::testkit::{FakeApi, TestBot};
use smolgram::{Bot, Content, Context, Filter, HandlerResult};

type Log = Arc<Mutex<Vec<(String, i64)>>>;

/// A handler that notes `name` and the update's id in `log`.
fn note(
    log: &Log,
    name: &'static str,
) -> impl Fn(Context) -> std::future::Ready<HandlerResult> + 'static {
    let log = Arc::clone(log);
    move |ctx| {
        log.lock().unwrap().push((name.to_owned(), ctx.update_id()));
        std::future::ready(Ok(()))
    }
}

fn routed(log: &Log) -> Vec<(String, i64)> {
    let mut seen = log.lock().unwrap().clone();
    seen.sort_by_key(|(_, id)| *id);
    seen
}

#[test]
fn each_kind_reaches_its_handler_and_only_it() {
    let api = FakeApi::start();
    let log: Log = Arc::default();
    let handlers = Arc::clone(&log);
    let bot = TestBot::start(&api, move || {
        let log = &handlers;
        Bot::new()
            .command("start", note(log, "command"))
            .text(note(log, "text"))
            .callback_prefix("vote:", note(log, "vote"))
            .callback(note(log, "callback"))
            .photo(note(log, "photo"))
            .on_if(
                UpdateKind::Message,
                Filter::content(Content::Location).and(Filter::private()),
                note(log, "location"),
            )
            .on(UpdateKind::Message, note(log, "other message"))
            .edited_message(note(log, "edited"))
            .channel_post(note(log, "channel post"))
            .inline_query(note(log, "inline"))
            .chat_member(note(log, "member"))
            .on(UpdateKind::PollAnswer, note(log, "poll answer"))
            .fallback(note(log, "fallback"))
    });
    let user = r#"{"id": 5, "is_bot": false, "first_name": "U"}"#;
    let user: Value = serde_json::from_str(user).unwrap();
    let expected = [
        ("command", api.push_text(ChatId(5), "/start")),
        ("text", api.push_text(ChatId(5), "hello")),
        ("vote", api.push_callback(ChatId(5), "vote:yes")),
        ("callback", api.push_callback(ChatId(5), "other")),
        ("photo", api.push_photo(ChatId(5), "AgAD", Some("cat"))),
        ("location", api.push_location(ChatId(5), 52.5, 13.4)),
        // A location in a group fails the filter and falls to the plain message handler.
        ("other message", api.push_location(ChatId(-9), 1.0, 2.0)),
        (
            "other message",
            api.push_document(ChatId(5), "BQAD", "a.pdf"),
        ),
        ("edited", api.push_edited(ChatId(5), "hello!")),
        (
            "channel post",
            api.push_channel_post(ChatId(-1_000_000_000_007), "news"),
        ),
        ("inline", api.push_inline_query(UserId(5), "cats")),
        (
            "member",
            api.push_chat_member(ChatId(-9), UserId(5), "left", "member"),
        ),
        (
            "poll answer",
            api.push(
                UpdateKind::PollAnswer,
                json!({"poll_id": "p", "user": user, "option_ids": [0], "option_persistent_ids": ["a"]}),
            ),
        ),
        // A kind no handler names, and one newer than the types.
        (
            "fallback",
            api.push(
                UpdateKind::Poll,
                json!({"id": "p", "question": "?", "options": [], "total_voter_count": 0,
                    "is_closed": false, "is_anonymous": true, "type": "regular",
                    "allows_multiple_answers": false, "allows_revoting": false, "members_only": false}),
            ),
        ),
        (
            "fallback",
            api.push_raw(json!({"future_kind": {"chat": {"id": 3}}})),
        ),
    ];
    api.wait_until("every update routed", DEADLINE, |_| {
        log.lock().unwrap().len() == expected.len()
    });
    let summary = bot.stop().unwrap();
    assert_eq!(summary.skipped, 0, "every builder's update decodes");
    let expected: Vec<(String, i64)> = expected
        .iter()
        .map(|(name, id)| (name.to_string(), *id))
        .collect();
    assert_eq!(routed(&log), expected);
}

fn allowed_updates_sent(api: &FakeApi) -> Vec<Option<Value>> {
    api.calls("getUpdates")
        .iter()
        .map(|params| params.get("allowed_updates").cloned())
        .collect()
}

/// Run `make`'s bot until one text is answered, then report what every
/// `getUpdates`, the final confirmation included, asked for.
fn allowed_by(make: impl FnOnce() -> Bot + Send + 'static) -> Vec<Option<Value>> {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, make);
    let id = api.push_text(ChatId(1), "hi");
    api.wait_until("the update confirmed", DEADLINE, |api| {
        api.confirmed_offset() > Some(id)
    });
    bot.stop().unwrap();
    let sent = allowed_updates_sent(&api);
    assert!(sent.len() >= 2, "{sent:?}");
    sent
}

#[test]
fn allowed_updates_follow_the_handlers_and_are_always_sent() {
    let reply = |ctx: Context| async move {
        ctx.reply("ok").await?;
        Ok(())
    };
    let some = allowed_by(move || {
        Bot::new()
            .text(reply)
            .inline_query(|_| async { Ok(()) })
            .chat_member(|_| async { Ok(()) })
            .callback_prefix("x:", |_| async { Ok(()) })
    });
    let expected = json!(["message", "inline_query", "callback_query", "chat_member"]);
    assert!(
        some.iter().all(|a| a.as_ref() == Some(&expected)),
        "{some:?}"
    );

    let all = allowed_by(|| Bot::new().fallback(|_| async { Ok(()) }));
    let every = json!(UPDATE_KINDS);
    assert!(all.iter().all(|a| a.as_ref() == Some(&every)), "{all:?}");
    assert!(
        every
            .as_array()
            .unwrap()
            .contains(&json!("message_reaction")),
        "kinds Telegram leaves out by default are asked for by name"
    );

    let none = allowed_by(Bot::new);
    assert!(none.iter().all(|a| a == &Some(json!([]))), "{none:?}");
}

#[test]
fn a_malformed_or_too_deep_update_is_counted_and_skipped_and_its_neighbours_delivered() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, common::echo);
    let message = |inner: Value| {
        json!({"message_id": 1, "date": 1, "chat": {"id": 2, "type": "private"},
            "text": "deep", "reply_to_message": inner})
    };
    let mut deep = json!({"message_id": 0, "date": 1, "chat": {"id": 2, "type": "private"}});
    for _ in 0..100 {
        deep = message(deep);
    }
    api.push_text(ChatId(2), "before");
    let too_deep = api.push_raw(json!({ "message": deep }));
    let wrong = api.push_raw(json!({"message": {"message_id": 1, "text": "no chat, no date"}}));
    api.push_text(ChatId(2), "after");
    api.wait_until("both neighbours answered", DEADLINE, |api| {
        api.sent_to(ChatId(2)) == 2
    });
    api.wait_until("all confirmed", DEADLINE, |api| {
        api.confirmed_offset() > Some(wrong + 1)
    });
    let summary = bot.stop().unwrap();
    assert_eq!((summary.skipped, summary.handled), (2, 2));
    let texts: Vec<String> = api.sent().into_iter().map(|s| s.text).collect();
    assert_eq!(texts, ["before", "after"]);
    assert!(api.deliveries(too_deep) >= 1, "it was handed out");
}

#[test]
fn a_handler_reaches_the_raw_json_of_fields_newer_than_the_types() {
    let api = FakeApi::start();
    let seen = Arc::new(Mutex::new(None));
    let raw = Arc::clone(&seen);
    let bot = TestBot::start(&api, move || {
        Bot::new().on(UpdateKind::Message, move |ctx| {
            let raw = Arc::clone(&raw);
            async move {
                let value: Value = serde_json::from_str(ctx.raw())?;
                *raw.lock().unwrap() = Some((value, ctx.update_id()));
                Ok(())
            }
        })
    });
    let id = api.push_raw(json!({"message": {"message_id": 1, "date": 1,
        "chat": {"id": 4, "type": "private"}, "future_field": {"a": [1, 2]}}}));
    api.wait_until("handled", DEADLINE, |_| seen.lock().unwrap().is_some());
    bot.stop().unwrap();
    let (value, handled) = seen.lock().unwrap().take().unwrap();
    assert_eq!(handled, id);
    assert_eq!(value["update_id"], id);
    assert_eq!(value["message"]["future_field"]["a"][1], 2);
}

#[test]
fn context_shortcuts_send_the_right_method_and_params() {
    let api = FakeApi::start();
    // A file id the fake knows, as Telegram knows the ids it handed out.
    let back = api.add_file("back.jpg", vec![1, 2, 3]);
    let back_id = back.clone();
    let bot = TestBot::start(&api, move || {
        let back = back.clone();
        Bot::new()
            .photo(move |ctx| {
                let back = back.clone();
                async move {
                    let sent = ctx.reply_photo(InputFile::file_id(back)).await?;
                    if sent.photo.as_ref().map(Vec::len) != Some(1) {
                        return Err("sendPhoto's answer holds no photo".into());
                    }
                    ctx.reply_document(InputFile::url("https://example.org/a.pdf"))
                        .await?;
                    ctx.delete_message().await?;
                    Ok(())
                }
            })
            .callback_prefix("edit:", |ctx| async move {
                let to = ctx.args().to_owned();
                ctx.edit_text(to).await?;
                ctx.answer_alert("edited").await?;
                Ok(())
            })
    });
    api.push_photo(ChatId(6), "AgAD", None);
    api.wait_until("the photo handled", DEADLINE, |api| {
        api.calls("deleteMessage").len() == 1
    });
    api.push_callback(ChatId(6), "edit:new text");
    api.wait_until("the press answered", DEADLINE, |api| {
        api.calls("answerCallbackQuery").len() == 1
    });
    let summary = bot.stop().unwrap();
    assert_eq!((summary.failed, summary.handled), (0, 2), "{summary:?}");

    let photo_message = 1; // the first message in chat 6
    let sent_photo = &api.calls("sendPhoto")[0];
    assert_eq!(sent_photo["chat_id"], 6);
    assert_eq!(sent_photo["photo"], back_id.as_str());
    assert_eq!(
        sent_photo["reply_parameters"]["message_id"], photo_message,
        "a reply to the update's message"
    );
    let document = &api.calls("sendDocument")[0];
    assert_eq!(document["document"], "https://example.org/a.pdf");
    let delete = &api.calls("deleteMessage")[0];
    assert_eq!(
        (&delete["chat_id"], &delete["message_id"]),
        (&json!(6), &json!(photo_message))
    );
    let edit = &api.calls("editMessageText")[0];
    assert_eq!(edit["chat_id"], 6);
    assert_eq!(edit["text"], "new text");
    // The button hangs under the bot's last message: the document it sent.
    assert_eq!(edit["message_id"], 3);
    let answer = &api.calls("answerCallbackQuery")[0];
    assert_eq!(answer["show_alert"], true);
    assert_eq!(answer["text"], "edited");
}

#[test]
fn commands_with_descriptions_are_registered_at_start() {
    let api = FakeApi::start();
    let bot = TestBot::start(&api, || {
        Bot::new()
            .command_with("ping", "answers pong", |_| async { Ok(()) })
            .command("secret", |_| async { Ok(()) })
            .register_commands()
    });
    api.wait_until("setMyCommands", DEADLINE, |api| {
        !api.calls("setMyCommands").is_empty()
    });
    bot.stop().unwrap();
    assert_eq!(
        api.calls("setMyCommands")[0]["commands"],
        json!([{"command": "ping", "description": "answers pong"}])
    );
}
