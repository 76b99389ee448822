//! The bot token: its shape checked once, its secret never printed.
//!
//! The token is half of every request URL, so whoever can print it can
//! run the bot. `Debug` prints `Token(***)`, there is no `Display`, and the
//! only way to the secret is crate-private, for the URL.
//!
//! Must not: implement `Display`, or put the secret into an error.

use std::fmt;
use std::sync::Arc;

use crate::Error;

/// A bot token, `<digits>:<secret>`.
///
/// `Debug` prints `Token(***)`; there is no `Display`, so it cannot end up in
/// a log line by accident.
///
/// ```
/// let token = smolgram::api::Token::parse("123456:ABC-def_ghi").unwrap();
/// assert_eq!(format!("{token:?}"), "Token(***)");
/// assert_eq!(token.bot_id(), 123456);
/// assert!(smolgram::api::Token::parse("not a token").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl Token {
    /// Checks the shape `<digits>:<secret>` (secret: letters, digits, `_`, `-`).
    ///
    /// # Errors
    /// [`Error::Config`] saying what is wrong, without repeating the value.
    pub fn parse(value: &str) -> Result<Token, Error> {
        let value = value.trim();
        let Some((id, secret)) = value.split_once(':') else {
            return Err(Error::Config(
                "token has no ':'; expected <digits>:<secret> from @BotFather".into(),
            ));
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || id.parse::<i64>().is_err() {
            return Err(Error::Config(
                "token must start with the bot's numeric id; expected <digits>:<secret>".into(),
            ));
        }
        if secret.is_empty()
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error::Config(
                "token secret must be letters, digits, '_' or '-'; expected <digits>:<secret>"
                    .into(),
            ));
        }
        Ok(Token(value.into()))
    }

    /// The bot's user id: the digits before the colon. Not a secret.
    pub fn bot_id(&self) -> i64 {
        // Cannot fail: `parse` checked that these are digits that fit an i64.
        self.0
            .split_once(':')
            .and_then(|(id, _)| id.parse().ok())
            .expect("checked by Token::parse")
    }

    /// `text` with every copy of the token (or of its secret half) replaced
    /// by `[token]`: for output the bot did not write, such as a program's
    /// that a config-file bot runs, before it is sent or logged.
    ///
    /// ```
    /// let token = smolgram::api::Token::parse("123456:ABC-def_ghi").unwrap();
    /// assert_eq!(token.redact("t=123456:ABC-def_ghi s=ABC-def_ghi"), "t=[token] s=[token]");
    /// ```
    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        // `parse` checked the colon; the secret alone is as good as the token.
        let secret = self.0.split_once(':').map_or(&*self.0, |(_, s)| s);
        if !text.contains(secret) {
            return text.into();
        }
        text.replace(&*self.0, "[token]")
            .replace(secret, "[token]")
            .into()
    }

    /// The whole token, for the request URL only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shapes_are_checked_without_echoing_the_value() {
        for bad in [
            "",
            "abc",
            "12345",
            ":secret",
            "12a:secret",
            "123:",
            "123:sec ret",
            "123:sec/ret",
        ] {
            let e = Token::parse(bad).unwrap_err().to_string();
            assert!(bad.len() < 4 || !e.contains(bad), "{e}");
        }
        assert!(Token::parse("123456789:AAH-x_yz").is_ok());
    }
}
