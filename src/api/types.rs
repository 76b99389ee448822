//! Bot API data as the runtime holds it: the id newtypes every type uses,
//! the typed [`Update`] (generated, with [`Update::chat`] and friends written
//! here) and the form an update travels in from `getUpdates` to a handler
//! ([`Received`]: the typed view and its raw JSON). Every generated type is
//! re-exported here, so `api::types::InlineKeyboardMarkup` is the one name.
//!
//! An update is decoded once, on the io thread that fetched it, under the
//! nesting limits ([`MAX_MESSAGE_DEPTH`](super::generated::MAX_MESSAGE_DEPTH)): the executor thread
//! only routes it. The poller reads its `update_id` first, from the leading
//! bytes, and skips the updates in hand without decoding them at all.
//! Unknown fields are ignored and an unknown kind decodes as an `Update`
//! whose [`kind`](Update::kind) is `None`; its raw JSON stays reachable
//! ([`Received::raw`], `Context::raw`). Each update of a batch is decoded on
//! its own: one that breaks the schema, or nests too deep, is reported as a
//! [`BadUpdate`] and must not fail its neighbours.
//!
//! Must not: fail a whole batch because one update is odd.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

// Every generated type, here beside the ids they use: `api::types::Message`.
pub use super::generated::types::*;

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

/// One update from `getUpdates`: the typed view, decoded once, and the JSON
/// it came as.
#[derive(Clone, Debug)]
pub struct Received {
    update: Update,
    raw: Box<RawValue>,
}

impl Received {
    /// Telegram's sequence number; confirmation works on it.
    pub fn id(&self) -> i64 {
        self.update.update_id
    }

    /// The typed update.
    pub fn update(&self) -> &Update {
        &self.update
    }

    /// The update's JSON as Telegram sent it, `update_id` included: for
    /// fields and kinds newer than these types.
    pub fn raw(&self) -> &str {
        self.raw.get()
    }

    /// The typed update, without its JSON.
    pub fn into_update(self) -> Update {
        self.update
    }
}

impl Update {
    /// The message of any kind that carries one: a new or edited message,
    /// channel post or business message, or a guest message.
    pub fn effective_message(&self) -> Option<&Message> {
        [
            &self.message,
            &self.edited_message,
            &self.channel_post,
            &self.edited_channel_post,
            &self.business_message,
            &self.edited_business_message,
            &self.guest_message,
        ]
        .into_iter()
        .find_map(|m| m.as_deref())
    }

    /// The chat the update belongs to, if its kind has one (a callback
    /// query's is that of the message its button is under).
    pub fn chat(&self) -> Option<&Chat> {
        if let Some(m) = self.effective_message() {
            return Some(&m.chat);
        }
        if let Some(q) = &self.callback_query {
            return match q.message.as_ref()? {
                MaybeInaccessibleMessage::Message(m) => Some(&m.chat),
                MaybeInaccessibleMessage::InaccessibleMessage(m) => Some(&m.chat),
            };
        }
        let chat = [
            #[cfg(feature = "business")]
            self.deleted_business_messages.as_ref().map(|d| &d.chat),
            #[cfg(feature = "reactions")]
            self.message_reaction.as_ref().map(|r| &r.chat),
            #[cfg(feature = "reactions")]
            self.message_reaction_count.as_ref().map(|r| &r.chat),
            self.my_chat_member.as_ref().map(|m| &m.chat),
            self.chat_member.as_ref().map(|m| &m.chat),
            self.chat_join_request.as_ref().map(|r| &r.chat),
            #[cfg(feature = "boosts")]
            self.chat_boost.as_ref().map(|b| &b.chat),
            #[cfg(feature = "boosts")]
            self.removed_chat_boost.as_ref().map(|b| &b.chat),
            self.stopped_message_generation.as_ref().map(|s| &s.chat),
            self.poll_answer
                .as_ref()
                .and_then(|a| a.voter_chat.as_ref()),
        ];
        chat.into_iter().flatten().next().map(|c| &**c)
    }

    /// Who caused the update, if its kind says.
    pub fn from(&self) -> Option<&User> {
        if let Some(m) = self.effective_message() {
            return m.from.as_deref();
        }
        let user = [
            self.callback_query.as_ref().map(|q| &q.from),
            self.inline_query.as_ref().map(|q| &q.from),
            self.chosen_inline_result.as_ref().map(|r| &r.from),
            #[cfg(feature = "payments")]
            self.shipping_query.as_ref().map(|q| &q.from),
            #[cfg(feature = "payments")]
            self.pre_checkout_query.as_ref().map(|q| &q.from),
            #[cfg(feature = "payments")]
            self.purchased_paid_media.as_ref().map(|p| &p.from),
            self.my_chat_member.as_ref().map(|m| &m.from),
            self.chat_member.as_ref().map(|m| &m.from),
            self.chat_join_request.as_ref().map(|r| &r.from),
            #[cfg(feature = "business")]
            self.business_connection.as_ref().map(|c| &c.user),
            self.managed_bot.as_ref().map(|b| &b.user),
            self.subscription.as_ref().map(|s| &s.user),
            #[cfg(feature = "reactions")]
            self.message_reaction.as_ref().and_then(|r| r.user.as_ref()),
            self.poll_answer.as_ref().and_then(|a| a.user.as_ref()),
        ];
        user.into_iter().flatten().next().map(|u| &**u)
    }
}

/// The chat and the user an update of a kind newer than our types is
/// about, read from its raw JSON (`chat.id`, `from.id` or `user.id` of the
/// kind's object).
pub(crate) fn actors_of(raw: &str) -> (Option<ChatId>, Option<UserId>) {
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
    let Ok(fields) = serde_json::from_str::<std::collections::HashMap<&str, &RawValue>>(raw) else {
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

/// Decodes one update of a `getUpdates` batch, under the nesting limit.
pub(crate) fn parse_update(raw: Box<RawValue>) -> Result<Received, BadUpdate> {
    match serde_json::from_str::<Update>(raw.get()) {
        Ok(update) => Ok(Received { update, raw }),
        Err(e) => Err(BadUpdate {
            id: update_id_of(raw.get()),
            reason: e.to_string(),
        }),
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
        assert_eq!(u.id(), 7);
        let update = u.update();
        assert_eq!(update.kind(), Some(UpdateKind::Message));
        assert_eq!(
            update.effective_message().unwrap().text.as_deref(),
            Some("hi")
        );
        assert_eq!(update.chat().unwrap().id, ChatId(42));
        assert_eq!(update.from().unwrap().id, UserId(42));
    }

    #[test]
    fn unknown_kind_and_fields_are_kept_as_raw_json() {
        let json = r#"{"update_id":9,"some_future_update":{"x":1}}"#;
        let u = parse_update(raw(json)).unwrap();
        assert_eq!(u.update().kind(), None);
        assert_eq!(u.raw(), json);
        let json = r#"{"update_id":10,"message":{"message_id":1,"date":1,"future":[1],
            "chat":{"id":1,"type":"private","future":{}}}}"#;
        let u = parse_update(raw(json)).unwrap();
        assert_eq!(u.update().kind(), Some(UpdateKind::Message));
        assert!(u.raw().contains(r#""future":[1]"#));
    }

    #[test]
    fn an_area_left_out_is_skipped_like_an_unknown_field() {
        let json = r#"{"update_id":8,"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},
            "sticker":{"file_id":"s","file_unique_id":"u","type":"regular","width":1,"height":1,
                "is_animated":false,"is_video":false},
            "successful_payment":{"currency":"XTR","total_amount":1,"invoice_payload":"p",
                "telegram_payment_charge_id":"t","provider_payment_charge_id":"q"},
            "rich_message":{"blocks":[{"type":"paragraph","text":"hi"}]}}}"#;
        let u = parse_update(raw(json)).unwrap();
        let m = u.update().message.as_deref().unwrap();
        assert_eq!(m.message_id, MessageId(1));
        #[cfg(feature = "stickers")]
        assert_eq!(m.sticker.as_ref().unwrap().file_id, "s");
        #[cfg(feature = "payments")]
        assert_eq!(m.successful_payment.as_ref().unwrap().total_amount, 1);
        #[cfg(feature = "rich-messages")]
        assert_eq!(m.rich_message.as_ref().unwrap().blocks.len(), 1);
        assert!(u.raw().contains("telegram_payment_charge_id"));
    }

    #[test]
    fn actors_of_every_kind_are_found() {
        let actors = |json: &str| {
            let u = parse_update(raw(json)).unwrap();
            let u = u.update();
            (u.chat().map(|c| c.id), u.from().map(|u| u.id))
        };
        let user = r#"{"id":77,"is_bot":false,"first_name":"U"}"#;
        let chat = r#"{"id":-5,"type":"group"}"#;
        let inline = format!(
            r#"{{"update_id":1,"inline_query":{{"id":"q","from":{user},"query":"x","offset":""}}}}"#
        );
        assert_eq!(actors(&inline), (None, Some(UserId(77))));
        let member = r#"{"status":"member","user":{"id":8,"is_bot":false,"first_name":"M"}}"#;
        let join = format!(
            r#"{{"update_id":2,"chat_member":{{"chat":{chat},"from":{user},"date":1,
                "old_chat_member":{member},"new_chat_member":{member}}}}}"#
        );
        assert_eq!(actors(&join), (Some(ChatId(-5)), Some(UserId(77))));
        let poll = format!(
            r#"{{"update_id":3,"poll_answer":{{"poll_id":"p","user":{user},"option_ids":[0],
                "option_persistent_ids":["a"]}}}}"#
        );
        assert_eq!(actors(&poll), (None, Some(UserId(77))));
    }

    #[test]
    fn actors_of_kinds_newer_than_the_types_are_read_raw() {
        let future = r#"{"update_id":1,"future_kind":{"chat":{"id":-5},"from":{"id":8}}}"#;
        assert_eq!(actors_of(future), (Some(ChatId(-5)), Some(UserId(8))));
        let user = r#"{"update_id":3,"future_kind":{"poll_id":"p","user":{"id":9}}}"#;
        assert_eq!(actors_of(user), (None, Some(UserId(9))));
        assert_eq!(actors_of(r#"{"update_id":4,"weird":[1,2]}"#), (None, None));
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
    fn an_update_nested_too_deep_is_a_bad_update_not_a_stack_overflow() {
        let message = |inner: &str| {
            format!(r#"{{"message_id":1,"date":1,"chat":{{"id":1,"type":"private"}}{inner}}}"#)
        };
        let mut nested = message("");
        for _ in 0..100 {
            nested = message(&format!(r#","reply_to_message":{nested}"#));
        }
        let json = format!(r#"{{"update_id":12,"message":{nested}}}"#);
        let bad = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || parse_update(raw(&json)).unwrap_err())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(bad.id, Some(12));
        assert!(bad.reason.contains("nested deeper"), "{}", bad.reason);
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
