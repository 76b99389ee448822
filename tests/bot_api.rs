//! The generated Bot API types and methods (`api::generated`): real-shaped
//! updates decode, unknown fields and kinds never fail a decode, sends skip
//! what is unset, deep nesting is an error and never a stack overflow, and
//! every method and type of the vendored facts is there (see: #12).

use std::collections::BTreeSet;

use serde_json::{json, Value};
use smolgram::api::generated::methods::{
    GetChatMember, SendMediaGroup, SendMessage, SendPhoto, METHODS,
};
use smolgram::api::generated::types::{
    ChatMember, InlineKeyboardButton, InlineKeyboardMarkup, InlineQueryResult, InputMediaDocument,
    InputMediaPhoto, MaybeInaccessibleMessage, MessageOrigin, ReactionType, ReplyKeyboardRemove,
    ReplyMarkup, ReplyParameters, RichText, Update, User, UPDATE_KINDS,
};
use smolgram::api::generated::{InputFile, Method, MAX_DEPTH, MAX_MESSAGE_DEPTH};
use smolgram::api::types::{ChatId, MessageId, UserId};

/// The io threads' stack (api/io.rs): decoding runs there.
const IO_STACK: usize = 256 * 1024;

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> serde_json::Result<T> {
    serde_json::from_str(json)
}

fn update(json: Value) -> Update {
    decode(&json.to_string()).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn user(id: i64) -> Value {
    json!({"id": id, "is_bot": false, "first_name": "Ada", "language_code": "en"})
}

fn group() -> Value {
    json!({"id": -1002003004005_i64, "type": "supergroup", "title": "Rust on small boards", "is_forum": true})
}

#[test]
fn a_photo_reply_with_entities_decodes_with_its_ids_typed() {
    let u = update(json!({
        "update_id": 900001,
        "message": {
            "message_id": 77, "date": 1767225600, "chat": group(), "from": user(31337),
            "message_thread_id": 12,
            "photo": [
                {"file_id": "ph-small", "file_unique_id": "u1", "width": 90, "height": 60, "file_size": 1200},
                {"file_id": "ph-big", "file_unique_id": "u2", "width": 1280, "height": 853}
            ],
            "caption": "board #3 boots in 40 ms",
            "caption_entities": [{"type": "hashtag", "offset": 6, "length": 2}],
            "reply_to_message": {
                "message_id": 70, "date": 1767225000, "chat": group(), "from": user(42),
                "text": "how fast does it boot?"
            },
            "forward_origin": {"type": "channel", "date": 1767220000,
                "chat": {"id": -100777, "type": "channel", "title": "Boards"}, "message_id": 5}
        }
    }));
    assert_eq!(u.update_id, 900001);
    let m = u.message.expect("a message update");
    assert_eq!(m.message_id, MessageId(77));
    assert_eq!(m.chat.id, ChatId(-1002003004005));
    assert_eq!(m.chat.kind, "supergroup");
    assert_eq!(m.from.as_ref().unwrap().id, UserId(31337));
    let photo = m.photo.as_ref().unwrap();
    assert_eq!(photo.last().unwrap().file_id, "ph-big");
    assert_eq!(m.caption_entities.as_ref().unwrap()[0].kind, "hashtag");
    let reply = m.reply_to_message.as_ref().unwrap();
    assert_eq!(reply.text.as_deref(), Some("how fast does it boot?"));
    match m.forward_origin.as_ref().unwrap() {
        MessageOrigin::Channel(c) => {
            assert_eq!((c.chat.id, c.message_id), (ChatId(-100777), MessageId(5)))
        }
        other => panic!("expected a channel origin, got {other:?}"),
    }
    assert!(u.callback_query.is_none() && u.edited_message.is_none());
}

#[test]
fn callback_queries_tell_an_inaccessible_message_by_its_zero_date() {
    let press = |message: Value| {
        update(json!({"update_id": 5, "callback_query": {
            "id": "4382bfdwdsb323b2d9", "from": user(8), "chat_instance": "-77",
            "data": "vote:yes", "message": message
        }}))
    };
    let here = press(
        json!({"message_id": 3, "date": 1767225600, "chat": group(), "text": "Vote?",
        "reply_markup": {"inline_keyboard": [[{"text": "Yes", "callback_data": "vote:yes"}]]}}),
    );
    let q = here.callback_query.unwrap();
    assert_eq!(q.data.as_deref(), Some("vote:yes"));
    match q.message.unwrap() {
        MaybeInaccessibleMessage::Message(m) => {
            let keyboard = m.reply_markup.unwrap();
            assert_eq!(
                keyboard.inline_keyboard[0][0].callback_data.as_deref(),
                Some("vote:yes")
            );
        }
        other => panic!("expected an accessible message, got {other:?}"),
    }
    let gone = press(json!({"message_id": 3, "date": 0, "chat": group()}));
    assert!(matches!(
        gone.callback_query.unwrap().message,
        Some(MaybeInaccessibleMessage::InaccessibleMessage(_))
    ));
}

#[test]
fn member_updates_reactions_and_inline_queries_decode() {
    let member = update(json!({"update_id": 6, "chat_member": {
        "chat": group(), "from": user(1), "date": 1767225600,
        "old_chat_member": {"status": "left", "user": user(9)},
        "new_chat_member": {"status": "restricted", "user": user(9), "is_member": true,
            "can_send_messages": false, "can_send_audios": false, "can_send_documents": false,
            "can_send_photos": false, "can_send_videos": false, "can_send_video_notes": false,
            "can_send_voice_notes": false, "can_send_polls": false, "can_send_other_messages": false,
            "can_add_web_page_previews": false, "can_react_to_messages": false, "can_edit_tag": false, "can_change_info": false,
            "can_invite_users": true, "can_pin_messages": false, "can_manage_topics": false,
            "until_date": 0}
    }}));
    let change = member.chat_member.unwrap();
    assert!(matches!(change.old_chat_member, ChatMember::Left(_)));
    match change.new_chat_member {
        ChatMember::Restricted(r) => assert!(r.can_invite_users && !r.can_send_messages),
        other => panic!("expected restricted, got {other:?}"),
    }
    let reaction = update(json!({"update_id": 7, "message_reaction": {
        "chat": group(), "message_id": 70, "user": user(2), "date": 1767225600,
        "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "🔥"}, {"type": "paid"}]
    }}));
    let r = reaction.message_reaction.unwrap();
    assert!(matches!(&r.new_reaction[0], ReactionType::Emoji(e) if e.emoji == "🔥"));
    assert!(matches!(&r.new_reaction[1], ReactionType::Paid(_)));
    let inline = update(json!({"update_id": 8, "inline_query": {
        "id": "iq1", "from": user(3), "query": "rp2040", "offset": ""
    }}));
    assert_eq!(inline.inline_query.unwrap().query, "rp2040");
}

#[test]
fn unknown_fields_and_unknown_union_kinds_decode() {
    let u = update(json!({"update_id": 9, "a_field_from_2030": {"x": 1},
        "message_reaction": {
            "chat": group(), "message_id": 1, "date": 1, "old_reaction": [],
            "new_reaction": [{"type": "hologram", "hologram_id": "h7"}],
            "also_new": true
        },
    }));
    match &u.message_reaction.unwrap().new_reaction[0] {
        ReactionType::Unknown(raw) => assert_eq!(raw["hologram_id"], "h7"),
        other => panic!("expected Unknown, got {other:?}"),
    }
    let member: ChatMember =
        serde_json::from_value(json!({"status": "overlord", "user": user(1)})).unwrap();
    assert!(matches!(member, ChatMember::Unknown(raw) if raw["status"] == "overlord"));
    let origin: MessageOrigin =
        serde_json::from_value(json!({"type": "time_travel", "date": 1})).unwrap();
    assert!(matches!(origin, MessageOrigin::Unknown(_)));
}

#[test]
fn members_that_share_a_tag_are_told_apart_by_their_fields() {
    let cached: InlineQueryResult =
        serde_json::from_value(json!({"type": "photo", "id": "1", "photo_file_id": "AgAD"}))
            .unwrap();
    assert!(matches!(cached, InlineQueryResult::CachedPhoto(p) if p.photo_file_id == "AgAD"));
    let by_url: InlineQueryResult = serde_json::from_value(json!({"type": "photo", "id": "2",
        "photo_url": "https://example.org/p.jpg", "thumbnail_url": "https://example.org/t.jpg"}))
    .unwrap();
    assert!(matches!(by_url, InlineQueryResult::Photo(_)));
}

#[test]
fn rich_text_is_a_string_a_list_or_a_styled_piece() {
    let text: RichText = serde_json::from_value(json!([
        "plain ", {"type": "bold", "text": ["very ", {"type": "italic", "text": "deep"}]},
        {"type": "sparkles", "text": "?"}
    ]))
    .unwrap();
    let RichText::List(parts) = &text else {
        panic!("{text:?}")
    };
    assert!(matches!(&parts[0], RichText::Text(t) if t == "plain "));
    let RichText::Bold(bold) = &parts[1] else {
        panic!("{:?}", parts[1])
    };
    assert!(
        matches!(&bold.text, RichText::List(inner) if matches!(&inner[1], RichText::Italic(_)))
    );
    assert!(matches!(&parts[2], RichText::Unknown(_)));
    let back = serde_json::to_value(&text).unwrap();
    assert_eq!(
        back[1]["text"][1],
        json!({"type": "italic", "text": "deep"})
    );
}

#[test]
fn a_known_kind_that_breaks_its_shape_is_an_error() {
    let no_user = serde_json::from_value::<ChatMember>(json!({"status": "creator"}));
    assert!(no_user.is_err(), "{no_user:?}");
    let no_chat = decode::<Update>(r#"{"update_id":1,"message":{"message_id":1,"date":1}}"#);
    assert!(no_chat.unwrap_err().to_string().contains("chat"));
}

#[test]
fn a_send_serializes_only_what_was_set() {
    let photo = SendPhoto::new(ChatId(5), InputFile::file_id("ph-big")).caption("hi");
    let v = serde_json::to_value(&photo).unwrap();
    let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["caption", "chat_id", "photo"]));
    assert_eq!(v, json!({"chat_id": 5, "photo": "ph-big", "caption": "hi"}));
    assert_eq!(SendPhoto::NAME, "sendPhoto");
    let to_channel = serde_json::to_value(SendMessage::new("@boards", "up")).unwrap();
    assert_eq!(to_channel, json!({"chat_id": "@boards", "text": "up"}));
}

#[test]
fn keyboards_and_media_serialize_as_the_bot_api_expects() {
    let keyboard: ReplyMarkup =
        InlineKeyboardMarkup::new(vec![vec![
            InlineKeyboardButton::new("Ping").callback_data("ping")
        ]])
        .into();
    let reply = SendMessage::new(ChatId(1), "menu")
        .reply_markup(keyboard)
        .reply_parameters(ReplyParameters::new().message_id(MessageId(9)));
    assert_eq!(
        serde_json::to_value(&reply).unwrap(),
        json!({"chat_id": 1, "text": "menu", "reply_parameters": {"message_id": 9},
            "reply_markup": {"inline_keyboard": [[{"text": "Ping", "callback_data": "ping"}]]}})
    );
    let remove = serde_json::to_value(ReplyMarkup::from(ReplyKeyboardRemove::new())).unwrap();
    assert_eq!(remove, json!({"remove_keyboard": true}));
    let album = SendMediaGroup::new(
        ChatId(1),
        vec![
            InputMediaPhoto::new(InputFile::Attach("p0".into())).into(),
            InputMediaDocument::new(InputFile::url("https://example.org/spec.pdf"))
                .caption("spec")
                .into(),
        ],
    );
    assert_eq!(
        serde_json::to_value(&album).unwrap()["media"],
        json!([{"type": "photo", "media": "attach://p0"},
            {"type": "document", "media": "https://example.org/spec.pdf", "caption": "spec"}])
    );
    assert_eq!(GetChatMember::new(ChatId(-5), UserId(6)).user_id, UserId(6));
}

/// A `message` update whose message replies to one that replies to one …,
/// `levels` messages deep; the last one holds `inner` fields.
fn nested_replies(levels: usize, inner: &str) -> String {
    let head = r#"{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"reply_to_message":"#;
    let last = format!(r#"{{"message_id":1,"date":1,"chat":{{"id":1,"type":"private"}}{inner}}}"#);
    let mut json = String::from(r#"{"update_id":1,"message":"#);
    for _ in 1..levels {
        json.push_str(head);
    }
    json.push_str(&last);
    json.push_str(&"}".repeat(levels));
    json
}

/// A `rich_message` field of `quotes` block quotations, one inside the other.
fn rich_quotes(quotes: usize) -> String {
    let open = r#"{"type":"blockquote","blocks":["#.repeat(quotes);
    let close = "]}".repeat(quotes);
    format!(r#","rich_message":{{"blocks":[{open}{{"type":"paragraph","text":"deep"}}{close}]}}"#)
}

/// Runs `f` on a thread with the io threads' stack: an overflow aborts the
/// test binary, which fails the test.
fn on_io_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(IO_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn deep_nesting_is_an_error_and_never_a_stack_overflow() {
    for levels in [100, 10_000] {
        let json = nested_replies(levels, "");
        let result = on_io_stack(move || decode::<Update>(&json).map(|_| ()));
        let e = result.expect_err("nested too deep");
        assert!(e.to_string().contains("nested deeper"), "{levels}: {e}");
    }
    let arrays = "[".repeat(10_000) + &"]".repeat(10_000);
    let result = on_io_stack(move || decode::<Value>(&arrays).map(|_| ()));
    assert!(result.is_err());
}

#[test]
fn an_update_at_both_limits_decodes_on_an_io_threads_stack() {
    // Four messages; in the last, a rich message whose blocks hold `quotes`
    // quotations one inside the other. Each quotation is two recursive
    // levels (the block and the quotation), the paragraph at the bottom two
    // more (its block and its rich text).
    let quotes = (MAX_DEPTH - 2) / 2;
    let json = nested_replies(MAX_MESSAGE_DEPTH, &rich_quotes(quotes));
    let levels = on_io_stack(move || {
        let u = decode::<Update>(&json).expect("within the limits");
        let mut m = u.message.expect("a message");
        let mut levels = 1;
        while let Some(next) = m.reply_to_message {
            m = next;
            levels += 1;
        }
        assert_eq!(m.rich_message.expect("the rich message").blocks.len(), 1);
        levels
    });
    assert_eq!(levels, MAX_MESSAGE_DEPTH);
    let more_messages = nested_replies(MAX_MESSAGE_DEPTH + 1, "");
    let e = decode::<Update>(&more_messages).unwrap_err();
    assert!(e.to_string().contains("messages nested deeper"), "{e}");
    let deeper = nested_replies(MAX_MESSAGE_DEPTH, &rich_quotes(quotes + 1));
    let e = decode::<Update>(&deeper).unwrap_err();
    assert!(e.to_string().contains("values nested deeper"), "{e}");
    // Nesting elsewhere (unknown fields, siblings) counts for nothing.
    let wide = nested_replies(
        MAX_MESSAGE_DEPTH,
        &format!(r#","future":{}"#, "[".repeat(100) + &"]".repeat(100)),
    );
    assert!(decode::<Update>(&wide).is_ok());
}

/// The facts, as `codegen check` reads them.
fn facts() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/api-spec/bot-api.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_method_and_update_kind_of_the_facts_is_generated() {
    let facts = facts();
    assert_eq!(facts["version"], "10.3");
    let methods: Vec<&str> = facts["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(methods.len(), 185);
    assert_eq!(METHODS, methods.as_slice());
    let types = facts["types"].as_array().unwrap();
    assert_eq!(types.len(), 400);
    let unions = types.iter().filter(|t| t.get("union").is_some()).count();
    assert_eq!(unions, 26);
    let update = types.iter().find(|t| t["name"] == "Update").unwrap();
    let kinds: Vec<&str> = update["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["required"] == false)
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 27);
    assert_eq!(UPDATE_KINDS, kinds.as_slice());
}

#[test]
fn an_object_decodes_from_a_map_by_its_keys_only() {
    let ada: User =
        decode(r#"{"id":1,"f\u0069rst_name":"A","is_bot":false,"first_name":"Ada","x":[{}]}"#)
            .unwrap();
    assert_eq!(ada.id, UserId(1));
    assert_eq!(ada.first_name, "Ada", "a repeated key keeps its last value");
    assert!(ada.last_name.is_none());
    let missing = decode::<User>(r#"{"id":1,"is_bot":false}"#).unwrap_err();
    assert!(
        missing.to_string().contains("missing field `first_name`"),
        "{missing}"
    );
    assert!(
        decode::<User>(r#"[1,false,"Ada"]"#).is_err(),
        "no object from an array (see: #12, the binary's size)"
    );
}
