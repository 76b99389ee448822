//! What the generated types stand on and the generator cannot write: the
//! chat a method is sent to ([`Recipient`]), a file to send ([`InputFile`]),
//! the helpers every union decoder uses ([`raw`], [`field_of`], [`member`]),
//! and the decoding of `MaybeInaccessibleMessage`, whose members are told
//! apart by a value (`date` is 0 for an inaccessible message), not by a
//! discriminator.
//!
//! A union is decoded from its own JSON text: taken raw, its tag peeked, then
//! the member decoded from the text with `serde_json::from_str`. Reading it
//! into a `serde_json::Value` first would compile a second decoder of every
//! member (from a `Value` beside from text), `Message`'s 160 KiB included: the
//! binary was 0.8 MB larger (see: #12). The nesting count is per thread
//! (see `nesting.rs`), so the decoders started on a member's text count on
//! from where the document left off.
//!
//! Must not: decode a member through a `Value` or serde's untagged buffer.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::types::{InaccessibleMessage, MaybeInaccessibleMessage, Message};
use crate::api::multipart::{self, Upload};
use crate::api::types::{ChatId, UserId};

/// Where a method is sent: a chat's id, or a public chat's `@username`
/// (what the Bot API calls `Integer or String`).
///
/// ```
/// use smolgram::api::{generated::Recipient, types::ChatId};
///
/// assert_eq!(Recipient::from(ChatId(-100)), Recipient::Id(ChatId(-100)));
/// assert_eq!(Recipient::from("@news"), Recipient::Username("@news".into()));
/// assert_eq!(serde_json::to_string(&Recipient::from(7)).unwrap(), "7");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Recipient {
    /// A chat's id.
    Id(ChatId),
    /// A public chat's or channel's username, with its `@`.
    Username(String),
}

impl From<ChatId> for Recipient {
    fn from(chat: ChatId) -> Self {
        Recipient::Id(chat)
    }
}

/// A user's private chat with the bot has the user's id.
impl From<UserId> for Recipient {
    fn from(user: UserId) -> Self {
        Recipient::Id(ChatId(user.0))
    }
}

impl From<i64> for Recipient {
    fn from(chat: i64) -> Self {
        Recipient::Id(ChatId(chat))
    }
}

impl From<&str> for Recipient {
    fn from(username: &str) -> Self {
        Recipient::Username(username.to_owned())
    }
}

impl From<String> for Recipient {
    fn from(username: String) -> Self {
        Recipient::Username(username)
    }
}

/// A file to send: one Telegram already has, one at a URL, or one uploaded
/// with the request ([`Upload`]: from a path, bytes or a reader).
///
/// It travels as the string the Bot API expects: the file id, the URL, or
/// `attach://<name>` naming a part of the `multipart/form-data` body that
/// carries an upload (see [`Upload`]).
///
/// ```
/// use smolgram::api::generated::InputFile;
///
/// let json = |f: &InputFile| serde_json::to_string(f).unwrap();
/// assert_eq!(json(&InputFile::file_id("AgAD")), r#""AgAD""#);
/// assert_eq!(json(&InputFile::url("https://example.org/a.png")), r#""https://example.org/a.png""#);
/// assert_eq!(json(&InputFile::Attach("photo".into())), r#""attach://photo""#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputFile {
    /// The `file_id` of a file Telegram already has.
    FileId(String),
    /// An HTTP URL Telegram downloads the file from.
    Url(String),
    /// The multipart part of the same request that holds the file.
    Attach(String),
    /// A file uploaded with the request; the call goes as
    /// `multipart/form-data` and this as `attach://` its part.
    Upload(Upload),
}

impl From<Upload> for InputFile {
    fn from(upload: Upload) -> Self {
        InputFile::Upload(upload)
    }
}

impl InputFile {
    /// A file Telegram already has, by its `file_id`.
    pub fn file_id(id: impl Into<String>) -> Self {
        InputFile::FileId(id.into())
    }

    /// A file Telegram fetches from `url`.
    pub fn url(url: impl Into<String>) -> Self {
        InputFile::Url(url.into())
    }
}

/// The prefix of a part name, as the Bot API writes it.
const ATTACH: &str = "attach://";

impl Serialize for InputFile {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            InputFile::FileId(s) | InputFile::Url(s) => serializer.serialize_str(s),
            InputFile::Attach(name) => serializer.collect_str(&format_args!("{ATTACH}{name}")),
            // Set aside by the call being encoded; there is nowhere to put it outside one.
            InputFile::Upload(upload) => match multipart::attach(upload) {
                Some(name) => serializer.collect_str(&format_args!("{ATTACH}{name}")),
                None => Err(S::Error::custom(
                    "an upload is sent only by Client::send or Client::call",
                )),
            },
        }
    }
}

/// The reverse of `Serialize`, for types that carry an `InputFile` both ways.
impl<'de> Deserialize<'de> for InputFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(if let Some(name) = s.strip_prefix(ATTACH) {
            InputFile::Attach(name.to_owned())
        } else if s.starts_with("http://") || s.starts_with("https://") {
            InputFile::Url(s)
        } else {
            InputFile::FileId(s)
        })
    }
}

/// A union's JSON text, as it came. Only serde_json can give it (from text,
/// or re-written from a `Value` by `serde_json::from_value`), not other
/// formats' deserializers.
pub(super) fn raw<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Box<RawValue>, D::Error> {
    Box::<RawValue>::deserialize(deserializer)
}

/// A member decoded from the union's text `json`, its error in the outer
/// decoder's type.
pub(super) fn member<T: DeserializeOwned, E: serde::de::Error>(json: &str) -> Result<T, E> {
    serde_json::from_str(json).map_err(E::custom)
}

/// The value of the top-level `field` of the object `json`, if it has one of
/// type `T`; the other fields are skipped, not built.
pub(super) fn field_of<T: DeserializeOwned>(json: &str, field: &str) -> Option<T> {
    /// Seeks `.0` among an object's keys.
    struct Seek<'f, T>(&'f str, std::marker::PhantomData<T>);
    /// Whether a key is `.0`, without allocating it.
    struct KeyIs<'f>(&'f str);
    impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
            deserializer.deserialize_str(self)
        }
    }
    impl Visitor<'_> for KeyIs<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<bool, E> {
            Ok(key == self.0)
        }
    }
    impl<'de, T: DeserializeOwned> Visitor<'de> for Seek<'_, T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
            // serde_json wants the whole object read, so the rest is skipped.
            let mut value = None;
            while let Some(found) = map.next_key_seed(KeyIs(self.0))? {
                if found && value.is_none() {
                    value = map.next_value::<Option<T>>().unwrap_or(None);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(value)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(json);
    (&mut deserializer)
        .deserialize_map(Seek(field, std::marker::PhantomData))
        .ok()
        .flatten()
}

/// The value of the key just read, as a `T`: each field of a generated
/// decoder is a call of this, kept out of line so that a field costs a call,
/// not a copy of serde_json's value parser (-11 KB, see: #12).
#[inline(never)]
pub(super) fn next<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
) -> Result<T, A::Error> {
    map.next_value()
}

/// An object's key, borrowed from the text when it has no escapes: what the
/// generated object decoders match on.
pub(super) struct Key<'de>(Cow<'de, str>);

impl Key<'_> {
    /// The key, unescaped.
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Takes the key as it comes.
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// Telegram's rule: an inaccessible message has `date` 0; any other date is
/// a message the bot may read.
impl<'de> Deserialize<'de> for MaybeInaccessibleMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = raw(deserializer)?;
        let json = raw.get();
        Ok(if field_of::<i64>(json, "date") == Some(0) {
            MaybeInaccessibleMessage::InaccessibleMessage(member::<Box<InaccessibleMessage>, _>(
                json,
            )?)
        } else {
            MaybeInaccessibleMessage::Message(member::<Box<Message>, _>(json)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_file_round_trips_as_its_string() {
        for file in [
            InputFile::file_id("AgADBAAD"),
            InputFile::url("https://example.org/cat.jpg"),
            InputFile::Attach("part0".into()),
        ] {
            let json = serde_json::to_string(&file).unwrap();
            assert_eq!(serde_json::from_str::<InputFile>(&json).unwrap(), file);
        }
    }

    #[test]
    fn a_recipient_is_a_number_or_a_username() {
        assert_eq!(
            serde_json::to_string(&Recipient::from("@chan")).unwrap(),
            r#""@chan""#
        );
        assert_eq!(
            serde_json::to_string(&Recipient::from(UserId(5))).unwrap(),
            "5"
        );
        let back: Recipient = serde_json::from_str("-1001").unwrap();
        assert_eq!(back, Recipient::Id(ChatId(-1001)));
    }

    #[test]
    fn a_field_is_found_at_the_top_level_only() {
        let json = r#"{"chat":{"type":"private"},"d\u0061te":0,"type":"photo","n":[1,{"x":2}]}"#;
        assert_eq!(field_of::<String>(json, "type").as_deref(), Some("photo"));
        assert_eq!(field_of::<i64>(json, "date"), Some(0), "an escaped key");
        assert_eq!(field_of::<String>(json, "x"), None, "a nested key");
        assert_eq!(
            field_of::<String>(json, "n"),
            None,
            "a value of another type"
        );
        assert_eq!(field_of::<String>("[1]", "type"), None, "no object");
    }

    #[test]
    fn a_zero_date_is_an_inaccessible_message() {
        let chat = r#""chat":{"id":1,"type":"private"}"#;
        let gone: MaybeInaccessibleMessage =
            serde_json::from_str(&format!(r#"{{"message_id":5,"date":0,{chat}}}"#)).unwrap();
        assert!(
            matches!(gone, MaybeInaccessibleMessage::InaccessibleMessage(m) if m.message_id.0 == 5)
        );
        let here: MaybeInaccessibleMessage = serde_json::from_str(&format!(
            r#"{{"message_id":6,"date":1700000000,{chat},"text":"t"}}"#
        ))
        .unwrap();
        assert!(
            matches!(here, MaybeInaccessibleMessage::Message(m) if m.text.as_deref() == Some("t"))
        );
    }
}
