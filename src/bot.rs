//! What users write bots with: the [`Bot`] router, its handlers, and the
//! [`Context`] a handler gets.
//!
//! A handler is an async closure from [`Context`] to [`HandlerResult`]. It
//! runs on the executor thread, so it need not be `Send` and may hold `Rc`
//! state. Routing is a pure function of the update and the bot's username:
//! a registered command wins, then the text handler (for new text messages),
//! then the callback handler (for button presses), then the fallback, which
//! sees everything else (edited messages, unknown kinds as raw JSON, commands
//! addressed to another bot).
//!
//! Must not: know about threads, sockets or offsets.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::rc::Rc;

use futures_lite::future::BoxedLocal;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::types::{CallbackQuery, ChatId, Message, SendMessage, Update, UpdateKind};
use crate::api::Client;
use crate::Error;

/// Any error a handler may return; it is logged with the `update_id` and
/// counted, and the bot goes on.
pub type HandlerError = Box<dyn std::error::Error>;

/// What a handler returns.
pub type HandlerResult = Result<(), HandlerError>;

type Handler = Rc<dyn Fn(Context) -> BoxedLocal<HandlerResult>>;

/// A set of handlers: commands, text, callback queries and a fallback.
///
/// # Examples
/// ```
/// use smolgram::Bot;
///
/// let bot = Bot::new()
///     .command("ping", |ctx| async move {
///         ctx.reply("pong").await?;
///         Ok(())
///     })
///     .text(|ctx| async move {
///         let echo = ctx.text().unwrap_or_default().to_owned();
///         ctx.reply(echo).await?;
///         Ok(())
///     });
/// # drop(bot);
/// ```
#[derive(Clone, Default)]
pub struct Bot {
    commands: HashMap<String, Handler>,
    text: Option<Handler>,
    callback: Option<Handler>,
    fallback: Option<Handler>,
}

impl Bot {
    /// A bot with no handlers (every update is confirmed and ignored).
    pub fn new() -> Bot {
        Bot::default()
    }

    /// Handles `/name` (also `/name@thisbot`); [`Context::args`] has the rest
    /// of the line. Names match without regard to case.
    pub fn command<F, Fut>(mut self, name: &str, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        let name = name.trim_start_matches('/').to_lowercase();
        self.commands.insert(name, boxed(handler));
        self
    }

    /// Handles new text messages that no command took.
    pub fn text<F, Fut>(mut self, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.text = Some(boxed(handler));
        self
    }

    /// Handles inline keyboard button presses.
    pub fn callback<F, Fut>(mut self, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.callback = Some(boxed(handler));
        self
    }

    /// Handles every update no other handler took, including kinds smolgram
    /// does not type ([`UpdateKind::Other`]).
    pub fn fallback<F, Fut>(mut self, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.fallback = Some(boxed(handler));
        self
    }

    /// Starts the handler for `update`, or `None` if no handler takes it.
    /// `username` is the bot's own, for `/command@username`.
    pub(crate) fn route(
        &self,
        update: Update,
        client: &Client,
        username: &str,
    ) -> Option<BoxedLocal<HandlerResult>> {
        let mut args = None;
        let handler = match &update.kind {
            UpdateKind::Message(Message {
                text: Some(text), ..
            }) => match parse_command(text, username) {
                Some(Command::Ours { name, args: rest }) => {
                    match self.commands.get(&name.to_lowercase()) {
                        Some(h) => {
                            args = Some(rest);
                            Some(h)
                        }
                        None => self.text.as_ref(),
                    }
                }
                Some(Command::Theirs) => None,
                None => self.text.as_ref(),
            },
            UpdateKind::CallbackQuery(_) => self.callback.as_ref(),
            _ => None,
        };
        let handler = handler.or(self.fallback.as_ref())?;
        let ctx = Context {
            update,
            client: client.clone(),
            args_at: args,
        };
        Some(handler(ctx))
    }
}

impl fmt::Debug for Bot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut commands: Vec<_> = self.commands.keys().collect();
        commands.sort();
        f.debug_struct("Bot")
            .field("commands", &commands)
            .field("text", &self.text.is_some())
            .field("callback", &self.callback.is_some())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

fn boxed<F, Fut>(handler: F) -> Handler
where
    F: Fn(Context) -> Fut + 'static,
    Fut: Future<Output = HandlerResult> + 'static,
{
    Rc::new(move |ctx| Box::pin(handler(ctx)))
}

enum Command<'a> {
    /// For us: the name and where its arguments start in the text.
    Ours { name: &'a str, args: usize },
    /// `/name@otherbot`: addressed to another bot in the same group.
    Theirs,
}

/// Reads `/name[@bot] args` at the start of `text`.
fn parse_command<'a>(text: &'a str, username: &str) -> Option<Command<'a>> {
    let rest = text.strip_prefix('/')?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let word = &rest[..end];
    let (name, addressee) = match word.split_once('@') {
        Some((name, bot)) => (name, Some(bot)),
        None => (word, None),
    };
    if name.is_empty() {
        return None;
    }
    if addressee.is_some_and(|bot| !bot.eq_ignore_ascii_case(username)) {
        return Some(Command::Theirs);
    }
    let args = 1 + end + rest[end..].len() - rest[end..].trim_start().len();
    Some(Command::Ours { name, args })
}

/// What a handler gets: the update and a client to answer with.
///
/// It owns both, so an `async move` handler can keep it across awaits.
pub struct Context {
    update: Update,
    client: Client,
    /// Byte offset of a command's arguments in the message text.
    args_at: Option<usize>,
}

impl Context {
    /// The update being handled.
    pub fn update(&self) -> &Update {
        &self.update
    }

    /// The Bot API client, for any call.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The message, for `message` and `edited_message` updates.
    pub fn message(&self) -> Option<&Message> {
        self.update.message()
    }

    /// The message text, if any.
    pub fn text(&self) -> Option<&str> {
        self.message()?.text.as_deref()
    }

    /// A command's arguments (`/echo a b` → `"a b"`); empty otherwise.
    pub fn args(&self) -> &str {
        match (self.args_at, self.text()) {
            (Some(at), Some(text)) => text.get(at..).unwrap_or("").trim_end(),
            _ => "",
        }
    }

    /// The callback query, for button presses.
    pub fn callback_query(&self) -> Option<&CallbackQuery> {
        match &self.update.kind {
            UpdateKind::CallbackQuery(q) => Some(q),
            _ => None,
        }
    }

    /// The chat the update came from, if it has one.
    pub fn chat_id(&self) -> Option<ChatId> {
        self.update.chat().map(|c| c.id)
    }

    /// Sends `text` to the update's chat: as a reply to the message for a
    /// message, as a new message for a button press.
    ///
    /// # Errors
    /// [`Error::NoChat`] if the update has no chat; otherwise as
    /// [`Client::send_message`].
    pub async fn reply(&self, text: impl Into<String>) -> Result<Message, Error> {
        let chat = self.chat_id().ok_or(Error::NoChat {
            update_id: self.update.id,
        })?;
        let mut message = SendMessage::new(chat, text);
        if let Some(m) = self.message() {
            message = message.reply_to(m.id);
        }
        self.client.send_message(&message).await
    }

    /// Sends any message (with a keyboard, say).
    pub async fn send_message(&self, message: &SendMessage) -> Result<Message, Error> {
        self.client.send_message(message).await
    }

    /// Answers the button press being handled, with an optional toast `text`.
    ///
    /// # Errors
    /// [`Error::NoChat`] if the update is not a callback query.
    pub async fn answer_callback_query(&self, text: Option<&str>) -> Result<(), Error> {
        let query = self.callback_query().ok_or(Error::NoChat {
            update_id: self.update.id,
        })?;
        self.client.answer_callback_query(&query.id, text).await
    }

    /// Calls any Bot API method; see [`Client::call`].
    pub async fn call<T: DeserializeOwned + Send + 'static>(
        &self,
        method: &str,
        params: &impl Serialize,
    ) -> Result<T, Error> {
        self.client.call(method, params).await
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("update", &self.update)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(text: &str) -> Option<(String, String)> {
        match parse_command(text, "my_bot")? {
            Command::Ours { name, args } => Some((name.to_owned(), text[args..].to_owned())),
            Command::Theirs => Some(("<theirs>".into(), String::new())),
        }
    }

    #[test]
    fn commands_are_parsed_with_args_and_addressee() {
        assert_eq!(
            command("/echo alpha beta 42"),
            Some(("echo".into(), "alpha beta 42".into()))
        );
        assert_eq!(command("/ping"), Some(("ping".into(), "".into())));
        assert_eq!(
            command("/ping@My_Bot  x"),
            Some(("ping".into(), "x".into()))
        );
        assert_eq!(
            command("/ping@other_bot"),
            Some(("<theirs>".into(), "".into()))
        );
        assert_eq!(command("hello /ping"), None);
        assert_eq!(command("/"), None);
        assert_eq!(command("/ @x"), None);
    }
}
