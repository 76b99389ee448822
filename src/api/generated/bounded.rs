//! Decoding with nesting limits, found by a flat scan before serde recurses:
//! JSON nested deeper than [`MAX_DEPTH`], or holding messages inside
//! messages deeper than [`MAX_MESSAGE_DEPTH`], is an error.
//!
//! serde's derived decoders recurse once per nesting level, and a `Message`
//! level's frames are large (about 9 KiB optimised, 40 KiB in a debug
//! build, measured); on an io thread's 256 KiB stack, serde_json's own limit
//! of 128 levels is far too deep. Other types' frames are small, so the
//! scan limits the nesting of message objects (the values of the fields in
//! `MESSAGE_FIELDS`) tightly and all nesting loosely. Real updates stay well
//! inside both: Telegram sends a `reply_to_message` or a `pinned_message`
//! without a message of its own inside.
//!
//! Must not: recurse while scanning, or let serde see input over a limit.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::types::MESSAGE_FIELDS;

/// The deepest nesting of objects and arrays [`decode`] accepts.
pub const MAX_DEPTH: usize = 32;

/// The deepest nesting of messages [`decode`] accepts: an update's message
/// is 1, the message it replies to 2. A JSON this deep in messages and in
/// all (the worst case) decodes within an io thread's stack, in a debug
/// build too (tested).
pub const MAX_MESSAGE_DEPTH: usize = 4;

// `within_limits` marks message containers by depth in a `u64`.
const _: () = assert!(MAX_DEPTH < 64);

/// Decodes `json` as a `T`, refusing JSON over the nesting limits.
///
/// # Errors
/// A nesting limit, or whatever serde finds wrong with the JSON.
pub fn decode<T: DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
    within_limits(json.as_bytes())?;
    serde_json::from_str(json)
}

/// An error if `json` nests objects and arrays deeper than [`MAX_DEPTH`], or
/// message objects deeper than [`MAX_MESSAGE_DEPTH`]. Brackets inside
/// strings do not count; an object under a key with an escape in it counts
/// as a message (an escape may spell `reply_to_message`).
fn within_limits(json: &[u8]) -> Result<(), serde_json::Error> {
    let over = |what: &str, limit: usize| {
        Err(serde_json::Error::custom(format!(
            "{what} nested deeper than {limit} levels"
        )))
    };
    let mut depth = 0usize;
    // Bit `d` is set when the container opened at depth `d` is a message.
    let mut messages: u64 = 0;
    let mut message_depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut string_start = 0;
    let mut string_had_escape = false;
    // The last string, while it may still turn out to be a key.
    let mut last_string: Option<(usize, usize, bool)> = None;
    // The key whose value comes next, right after its colon.
    let mut key: Option<(usize, usize, bool)> = None;
    for (i, &byte) in json.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => {
                    escaped = true;
                    string_had_escape = true;
                }
                b'"' => {
                    in_string = false;
                    last_string = Some((string_start, i, string_had_escape));
                }
                _ => {}
            }
            continue;
        }
        if byte.is_ascii_whitespace() {
            continue;
        }
        let value_key = key.take();
        match byte {
            b'"' => {
                in_string = true;
                string_start = i + 1;
                string_had_escape = false;
            }
            b':' => key = last_string.take(),
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return over("JSON", MAX_DEPTH);
                }
                let is_message = byte == b'{'
                    && value_key.is_some_and(|(start, end, escape)| {
                        escape
                            || MESSAGE_FIELDS
                                .iter()
                                .any(|f| f.as_bytes() == &json[start..end])
                    });
                if is_message {
                    message_depth += 1;
                    if message_depth > MAX_MESSAGE_DEPTH {
                        return over("messages", MAX_MESSAGE_DEPTH);
                    }
                    messages |= 1 << depth;
                }
            }
            b'}' | b']' => {
                if messages & (1 << depth) != 0 {
                    messages &= !(1 << depth);
                    message_depth -= 1;
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    Ok(())
}

/// A `T` decoded with the nesting limit, from inside a larger document (a
/// Bot API answer's `result`): taken raw first, then checked, then decoded.
pub(super) struct Bounded<T>(pub(super) T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Bounded<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        decode(raw.get()).map(Bounded).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        "[".repeat(levels) + &"]".repeat(levels)
    }

    #[test]
    fn nesting_up_to_the_limit_passes_and_one_more_fails() {
        assert!(within_limits(nested(MAX_DEPTH).as_bytes()).is_ok());
        let e = within_limits(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("JSON nested deeper"), "{e}");
    }

    fn messages(levels: usize, key: &str) -> String {
        format!(r#"{{"{key}":"#).repeat(levels) + "{}" + &"}".repeat(levels)
    }

    #[test]
    fn messages_inside_messages_are_limited_by_their_keys() {
        let ok = messages(MAX_MESSAGE_DEPTH, "reply_to_message");
        assert!(within_limits(ok.as_bytes()).is_ok(), "{ok}");
        let over = messages(MAX_MESSAGE_DEPTH + 1, "pinned_message");
        let e = within_limits(over.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("messages nested deeper"), "{e}");
        let escaped = messages(MAX_MESSAGE_DEPTH + 1, r"reply_to_m\u0065ssage");
        assert!(
            within_limits(escaped.as_bytes()).is_err(),
            "an escape counts"
        );
        let other = messages(MAX_MESSAGE_DEPTH + 1, "chat");
        assert!(within_limits(other.as_bytes()).is_ok(), "other keys do not");
        // A key's name as a value, or an array under the key, is no message.
        let values = r#"{"text":"reply_to_message","a":{"b":1},"message":[{"c":{}}]}"#;
        assert!(within_limits(values.as_bytes()).is_ok());
        let sideways = format!(
            "[{}]",
            vec![messages(MAX_MESSAGE_DEPTH, "message"); 3].join(",")
        );
        assert!(
            within_limits(sideways.as_bytes()).is_ok(),
            "siblings do not add up"
        );
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        let deep_text = format!(r#"{{"text":"{}\"{}"}}"#, "[{".repeat(100), "]}".repeat(100));
        assert!(within_limits(deep_text.as_bytes()).is_ok(), "{deep_text}");
        let v: serde_json::Value = decode(&deep_text).unwrap();
        assert!(v["text"].as_str().unwrap().starts_with("[{[{"));
    }

    #[test]
    fn a_bounded_result_inside_an_answer_is_checked() {
        #[derive(Deserialize)]
        struct Answer {
            result: Bounded<serde_json::Value>,
        }
        let ok: Answer = serde_json::from_str(r#"{"result":{"a":[1]}}"#).unwrap();
        assert_eq!(ok.result.0["a"][0], 1);
        let deep = format!(r#"{{"result":{}}}"#, nested(MAX_DEPTH + 1));
        assert!(serde_json::from_str::<Answer>(&deep).is_err());
    }
}
