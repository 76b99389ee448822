//! The nesting limits, counted by the decoders of the types that can hold
//! themselves: [`Message`](super::types::Message) (a reply holds the message
//! it replies to) and the other types on a cycle of the type graph (rich
//! text and blocks). `codegen/` finds those types and makes each one's
//! decoder hold a [`Nesting`] while it runs; every other type nests no deeper
//! than the shape of the API allows, and serde_json skips unknown fields
//! without recursing.
//!
//! The count is per thread, so it holds across the fresh decoders a union
//! starts on its raw text. A `Message` level's frames are large (about 9 KiB
//! optimised, 40 KiB in a debug build), so messages have a budget of their
//! own: serde_json's limit of 128 levels would overflow an io thread's
//! 256 KiB stack long before.
//!
//! Must not: let a decoder of a recursive type run without its guard.

use std::cell::Cell;

/// The deepest nesting of messages a decoder accepts: an update's message
/// is 1, the message it replies to 2. Real updates stay well inside: Telegram
/// sends a `reply_to_message` or `pinned_message` without one of its own.
pub const MAX_MESSAGE_DEPTH: usize = 4;

/// The deepest nesting of the other recursive types (a rich text inside a
/// rich text, a block inside a block) a decoder accepts.
pub const MAX_DEPTH: usize = 32;

/// What a [`Nesting`] counts.
#[derive(Clone, Copy)]
pub(super) enum Level {
    /// A `Message`.
    Message,
    /// Any other type on a cycle.
    Other,
}

thread_local! {
    /// How deep in messages, and in other recursive values, the decoders on
    /// this thread are.
    static DEPTH: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// One level of nesting, held while a recursive type decodes.
pub(super) struct Nesting(Level);

impl Nesting {
    /// Enters a level, or fails if that is deeper than its limit.
    pub(super) fn enter<E: serde::de::Error>(level: Level) -> Result<Nesting, E> {
        DEPTH.with(|depth| {
            let (messages, other) = depth.get();
            let (next, limit, what) = match level {
                Level::Message => ((messages + 1, other), MAX_MESSAGE_DEPTH, "messages"),
                Level::Other => ((messages, other + 1), MAX_DEPTH, "values"),
            };
            if next.0 > MAX_MESSAGE_DEPTH || next.1 > MAX_DEPTH {
                return Err(E::custom(format!(
                    "{what} nested deeper than {limit} levels"
                )));
            }
            depth.set(next);
            Ok(Nesting(level))
        })
    }
}

impl Drop for Nesting {
    fn drop(&mut self) {
        DEPTH.with(|depth| {
            let (messages, other) = depth.get();
            depth.set(match self.0 {
                Level::Message => (messages - 1, other),
                Level::Other => (messages, other - 1),
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Error = serde_json::Error;

    #[test]
    fn each_level_has_its_limit_and_leaving_gives_it_back() {
        let messages: Vec<Nesting> = (0..MAX_MESSAGE_DEPTH)
            .map(|_| Nesting::enter::<Error>(Level::Message).unwrap())
            .collect();
        let e = Nesting::enter::<Error>(Level::Message).err().unwrap();
        assert_eq!(e.to_string(), "messages nested deeper than 4 levels");
        let other: Vec<Nesting> = (0..MAX_DEPTH)
            .map(|_| Nesting::enter::<Error>(Level::Other).unwrap())
            .collect();
        assert!(Nesting::enter::<Error>(Level::Other).is_err());
        drop(messages);
        drop(other);
        assert_eq!(DEPTH.with(Cell::get), (0, 0));
        assert!(Nesting::enter::<Error>(Level::Message).is_ok());
    }
}
