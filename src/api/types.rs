//! Bot API data: what arrives (`Update`, `Message`, …) and what we send
//! (`SendMessage`, keyboards).
//!
//! Only the fields a bot needs first are typed; unknown fields are ignored,
//! and so is the absence of a field the runtime never reads (`date`, a
//! chat's `type`, a user's `first_name`): being strict there would drop an
//! update for nothing. Ids and the chat of a message are required. An
//! update kind we do not know is kept whole as raw JSON
//! ([`UpdateKind::Other`]) so that a Bot API addition never breaks a bot.
//! Each update of a batch is parsed on its own: one that breaks the schema is
//! reported as a [`BadUpdate`] and must not fail its neighbours.
//!
//! Must not: fail a whole batch because one update is odd.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A chat's id. Groups and channels are negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChatId(pub i64);

/// A user's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

/// A message's id, unique within its chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub i64);

/// One incoming update.
#[derive(Clone, Debug)]
pub struct Update {
    /// Telegram's sequence number; confirmation works on it.
    pub id: i64,
    /// What happened.
    pub kind: UpdateKind,
}

/// The kinds of update smolgram types; everything else is [`UpdateKind::Other`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum UpdateKind {
    /// A new message.
    Message(Message),
    /// A message was edited.
    EditedMessage(Message),
    /// An inline keyboard button was pressed.
    CallbackQuery(CallbackQuery),
    /// Any other update, kept whole (including `update_id`).
    Other(Box<RawValue>),
}

/// A message.
#[derive(Clone, Debug, Deserialize)]
pub struct Message {
    /// Its id within the chat.
    #[serde(rename = "message_id")]
    pub id: MessageId,
    /// The sender; absent in channels.
    pub from: Option<User>,
    /// Where it was sent.
    pub chat: Chat,
    /// Unix time it was sent; 0 for an inaccessible message (or if absent).
    #[serde(default)]
    pub date: i64,
    /// The text, for text messages.
    pub text: Option<String>,
}

/// A chat.
#[derive(Clone, Debug, Deserialize)]
pub struct Chat {
    /// Its id.
    pub id: ChatId,
    /// `private`, `group`, `supergroup` or `channel` (empty if absent).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The title of a group or channel.
    pub title: Option<String>,
    /// The `@username`, without the `@`.
    pub username: Option<String>,
}

/// A user or bot.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Whether it is a bot.
    #[serde(default)]
    pub is_bot: bool,
    /// The first name.
    #[serde(default)]
    pub first_name: String,
    /// The `@username`, without the `@`.
    pub username: Option<String>,
}

/// A press on an inline keyboard button.
#[derive(Clone, Debug, Deserialize)]
pub struct CallbackQuery {
    /// Pass it to `answerCallbackQuery`.
    pub id: String,
    /// Who pressed.
    pub from: User,
    /// The message that carried the button, if it is still accessible.
    pub message: Option<Message>,
    /// The button's `callback_data`.
    pub data: Option<String>,
}

impl Update {
    /// The message of a `message` or `edited_message` update.
    pub fn message(&self) -> Option<&Message> {
        match &self.kind {
            UpdateKind::Message(m) | UpdateKind::EditedMessage(m) => Some(m),
            _ => None,
        }
    }

    /// The chat the update belongs to, if any.
    pub fn chat(&self) -> Option<&Chat> {
        match &self.kind {
            UpdateKind::Message(m) | UpdateKind::EditedMessage(m) => Some(&m.chat),
            UpdateKind::CallbackQuery(q) => q.message.as_ref().map(|m| &m.chat),
            UpdateKind::Other(_) => None,
        }
    }

    /// Who caused the update, if known.
    pub fn from(&self) -> Option<&User> {
        match &self.kind {
            UpdateKind::Message(m) | UpdateKind::EditedMessage(m) => m.from.as_ref(),
            UpdateKind::CallbackQuery(q) => Some(&q.from),
            UpdateKind::Other(_) => None,
        }
    }
}

/// The chat and the user an update kind smolgram does not type is about,
/// read from its raw JSON (`chat.id`, `from.id` or `user.id` of the kind's
/// object: inline queries, chat member updates, poll answers, …).
pub(crate) fn actors_of(raw: &RawValue) -> (Option<ChatId>, Option<UserId>) {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    #[derive(Deserialize)]
    struct Actors {
        chat: Option<Id>,
        from: Option<Id>,
        user: Option<Id>,
    }
    let Ok(fields) = serde_json::from_str::<std::collections::HashMap<&str, &RawValue>>(raw.get())
    else {
        return (None, None);
    };
    let Some(actors) = fields
        .iter()
        .filter(|(key, _)| **key != "update_id")
        .find_map(|(_, value)| serde_json::from_str::<Actors>(value.get()).ok())
    else {
        return (None, None);
    };
    let user = actors.from.or(actors.user).map(|u| UserId(u.id));
    (actors.chat.map(|c| ChatId(c.id)), user)
}

/// An update that breaks the Bot API schema (valid JSON, wrong shape).
#[derive(Clone, Debug)]
pub struct BadUpdate {
    /// Its `update_id`; `None` when even that was unreadable.
    pub id: Option<i64>,
    /// What serde found wrong.
    pub reason: String,
}

/// The typed kinds; serde skips every other field without building it.
#[derive(Deserialize)]
struct Wire {
    update_id: i64,
    message: Option<Message>,
    edited_message: Option<Message>,
    callback_query: Option<CallbackQuery>,
}

/// The `update_id` of an update, read without decoding the rest: from the
/// first bytes when the JSON starts with it, as Telegram's always does
/// (`{"update_id":123,…`), else by a scan that skips every other field
/// without building it. `None` when the update has no integer `update_id`.
pub(crate) fn update_id_of(json: &str) -> Option<i64> {
    super::wire::leading_integer(json.as_bytes(), "update_id").or_else(|| {
        #[derive(Deserialize)]
        struct Id {
            update_id: i64,
        }
        serde_json::from_str::<Id>(json).ok().map(|i| i.update_id)
    })
}

/// Parses one update of a `getUpdates` batch.
pub(crate) fn parse_update(raw: Box<RawValue>) -> Result<Update, BadUpdate> {
    match serde_json::from_str::<Wire>(raw.get()) {
        Ok(wire) => {
            let kind = if let Some(m) = wire.message {
                UpdateKind::Message(m)
            } else if let Some(m) = wire.edited_message {
                UpdateKind::EditedMessage(m)
            } else if let Some(q) = wire.callback_query {
                UpdateKind::CallbackQuery(q)
            } else {
                UpdateKind::Other(raw)
            };
            Ok(Update {
                id: wire.update_id,
                kind,
            })
        }
        Err(e) => {
            let id = update_id_of(raw.get());
            Err(BadUpdate {
                id,
                reason: e.to_string(),
            })
        }
    }
}

/// `sendMessage`'s parameters. Build with [`SendMessage::new`] and the setters.
#[derive(Clone, Debug, Serialize)]
pub struct SendMessage {
    /// Where to send.
    pub chat_id: ChatId,
    /// What to say.
    pub text: String,
    /// `HTML`, `MarkdownV2` or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_mode: Option<String>,
    /// Which message this answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_parameters: Option<ReplyParameters>,
    /// An inline keyboard under the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_markup: Option<InlineKeyboardMarkup>,
}

impl SendMessage {
    /// A plain text message to `chat`.
    pub fn new(chat: ChatId, text: impl Into<String>) -> Self {
        SendMessage {
            chat_id: chat,
            text: text.into(),
            parse_mode: None,
            reply_parameters: None,
            reply_markup: None,
        }
    }

    /// Send it as a reply to `message` (still sent if that message is gone).
    pub fn reply_to(mut self, message: MessageId) -> Self {
        self.reply_parameters = Some(ReplyParameters {
            message_id: message,
            allow_sending_without_reply: true,
        });
        self
    }

    /// Attach an inline keyboard.
    pub fn keyboard(mut self, keyboard: InlineKeyboardMarkup) -> Self {
        self.reply_markup = Some(keyboard);
        self
    }
}

/// Which message a reply answers.
#[derive(Clone, Debug, Serialize)]
pub struct ReplyParameters {
    /// The message answered.
    pub message_id: MessageId,
    /// Send anyway if that message was deleted.
    pub allow_sending_without_reply: bool,
}

/// Rows of inline buttons under a message.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InlineKeyboardMarkup {
    /// The rows, top to bottom.
    pub inline_keyboard: Vec<Vec<InlineKeyboardButton>>,
}

impl InlineKeyboardMarkup {
    /// A keyboard with one row of buttons.
    pub fn row(buttons: impl IntoIterator<Item = InlineKeyboardButton>) -> Self {
        InlineKeyboardMarkup {
            inline_keyboard: vec![buttons.into_iter().collect()],
        }
    }
}

/// An inline keyboard button that sends `callback_data` back to the bot.
#[derive(Clone, Debug, Serialize)]
pub struct InlineKeyboardButton {
    /// The label.
    pub text: String,
    /// What the bot receives in [`CallbackQuery::data`] (1–64 bytes).
    pub callback_data: String,
}

impl InlineKeyboardButton {
    /// A button labelled `text` that sends `data`.
    pub fn callback(text: impl Into<String>, data: impl Into<String>) -> Self {
        InlineKeyboardButton {
            text: text.into(),
            callback_data: data.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn text_message_is_typed() {
        let u = parse_update(raw(
            r#"{"update_id":7,"message":{"message_id":3,"date":1,"chat":{"id":42,"type":"private"},
                "from":{"id":42,"is_bot":false,"first_name":"A"},"text":"hi","entities":[]}}"#,
        ))
        .unwrap();
        assert_eq!(u.id, 7);
        assert_eq!(u.message().unwrap().text.as_deref(), Some("hi"));
        assert_eq!(u.chat().unwrap().id, ChatId(42));
    }

    #[test]
    fn unknown_kind_is_kept_as_raw_json() {
        let json = r#"{"update_id":9,"some_future_update":{"x":1}}"#;
        let u = parse_update(raw(json)).unwrap();
        match u.kind {
            UpdateKind::Other(r) => assert_eq!(r.get(), json),
            other => panic!("expected Other, got {other:?}"),
        }
    }

    #[test]
    fn actors_of_untyped_kinds_are_found() {
        let inline = raw(
            r#"{"update_id":1,"inline_query":{"id":"q","from":{"id":77,"is_bot":false},"query":"x"}}"#,
        );
        assert_eq!(actors_of(&inline), (None, Some(UserId(77))));
        let member = raw(r#"{"update_id":2,"chat_member":{"chat":{"id":-5},"from":{"id":8}}}"#);
        assert_eq!(actors_of(&member), (Some(ChatId(-5)), Some(UserId(8))));
        let poll = raw(r#"{"update_id":3,"poll_answer":{"poll_id":"p","user":{"id":9}}}"#);
        assert_eq!(actors_of(&poll), (None, Some(UserId(9))));
        assert_eq!(
            actors_of(&raw(r#"{"update_id":4,"weird":[1,2]}"#)),
            (None, None)
        );
    }

    #[test]
    fn schema_violation_is_reported_with_its_update_id() {
        let bad = parse_update(raw(
            r#"{"update_id":11,"message":{"message_id":"x","text":"t"}}"#,
        ))
        .unwrap_err();
        assert_eq!(bad.id, Some(11));
        let worse = parse_update(raw(r#"{"message":{}}"#)).unwrap_err();
        assert_eq!(worse.id, None);
    }

    #[test]
    fn reply_with_keyboard_serializes_as_the_bot_api_expects() {
        let m = SendMessage::new(ChatId(5), "hi")
            .reply_to(MessageId(9))
            .keyboard(InlineKeyboardMarkup::row([InlineKeyboardButton::callback(
                "Ping", "ping",
            )]));
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["chat_id"], 5);
        assert_eq!(v["reply_parameters"]["message_id"], 9);
        assert_eq!(
            v["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
            "ping"
        );
        assert!(v.get("parse_mode").is_none());
    }

    #[test]
    fn the_update_id_is_found_first_or_anywhere() {
        assert_eq!(
            update_id_of(r#"{"message":{"text":"}"},"update_id":1}"#),
            Some(1)
        );
        for none in [
            r#"{"update_id":"1"}"#,
            r#"{"update_id":1.5}"#,
            r#"{"update_id":}"#,
            "",
        ] {
            assert_eq!(update_id_of(none), None, "{none}");
        }
    }
}
