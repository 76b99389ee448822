//! What users write bots with: the [`Bot`] router, its handlers and
//! [`Filter`]s, and the [`Context`] a handler gets.
//!
//! A handler is an async closure from [`Context`] to [`HandlerResult`]. It
//! runs on the executor thread, so it need not be `Send` and may hold `Rc`
//! state. Routing is a pure function of the update and the bot's username,
//! from the most specific handler to the least: a registered command wins
//! (for new messages), then the text handler (new text messages), then the
//! callback handlers (button presses: by data prefix, then any), then the
//! handlers by kind ([`Bot::on`], [`Bot::on_if`]) in the order they were
//! added, then the fallback, which sees everything else (kinds newer than
//! the types, commands addressed to another bot).
//!
//! The handlers also say which update kinds the bot wants:
//! [`Bot::allowed_updates`] is sent with every `getUpdates`, so that a list
//! an earlier deployment left with Telegram never starves a handler.
//!
//! Must not: know about threads, sockets or offsets.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::rc::Rc;

use futures_lite::future::BoxedLocal;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[cfg(feature = "stickers")]
use crate::api::generated::methods::SendSticker;
use crate::api::generated::methods::{
    AnswerCallbackQuery, DeleteMessage, EditMessageText, SendAnimation, SendAudio, SendDocument,
    SendMessage, SendPhoto, SendVideo, SendVoice,
};
use crate::api::generated::types::{MessageOrTrue, ReplyParameters, UPDATE_KINDS};
use crate::api::generated::{InputFile, Method};
use crate::api::types::{
    CallbackQuery, Chat, ChatId, InlineKeyboardMarkup, InlineQuery, MaybeInaccessibleMessage,
    Message, MessageId, Received, Update, UpdateKind, User,
};
use crate::api::Client;
use crate::jobs::{self, Jobs};
use crate::state::{State, States, Written};
use crate::Error;

/// Any error a handler may return; it is logged with the `update_id` and
/// counted, and the bot goes on.
pub type HandlerError = Box<dyn std::error::Error>;

/// What a handler returns.
pub type HandlerResult = Result<(), HandlerError>;

type Handler = Rc<dyn Fn(Context) -> BoxedLocal<HandlerResult>>;

/// A set of handlers: commands, text, callback queries, handlers by update
/// kind, and a fallback.
///
/// # Examples
/// ```
/// use smolgram::api::types::UpdateKind;
/// use smolgram::{Bot, Content, Filter};
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
///     })
///     .on_if(UpdateKind::Message, Filter::content(Content::Photo), |ctx| async move {
///         ctx.reply("nice photo").await?;
///         Ok(())
///     });
/// assert_eq!(bot.allowed_updates(), ["message"]);
/// ```
#[derive(Clone, Default)]
pub struct Bot {
    commands: HashMap<String, Handler>,
    /// `(name, description)` of the commands registered with one, in order.
    described: Vec<(String, String)>,
    register_commands: bool,
    text: Option<Handler>,
    callback_prefixes: Vec<(String, Handler)>,
    callback: Option<Handler>,
    kinds: Vec<(UpdateKind, Option<Filter>, Handler)>,
    fallback: Option<Handler>,
    /// Jobs in code, job types and broadcast builders (see `jobs`).
    pub(crate) jobs: jobs::Table,
}

impl Bot {
    /// A bot with no handlers (every update is confirmed and ignored).
    pub fn new() -> Bot {
        Bot::default()
    }

    /// Handles `/name` (also `/name@thisbot`) in new messages;
    /// [`Context::args`] has the rest of the line. Names match without
    /// regard to case.
    pub fn command<F, Fut>(mut self, name: &str, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        let name = name.trim_start_matches('/').to_lowercase();
        self.commands.insert(name, boxed(handler));
        self
    }

    /// [`command`](Bot::command) with a `description` for the command menu:
    /// [`register_commands`](Bot::register_commands) sends it to Telegram.
    pub fn command_with<F, Fut>(mut self, name: &str, description: &str, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        let key = name.trim_start_matches('/').to_lowercase();
        self.described.retain(|(n, _)| *n != key);
        self.described.push((key, description.to_owned()));
        self.command(name, handler)
    }

    /// At start, send `setMyCommands` with the commands registered by
    /// [`command_with`](Bot::command_with), so that Telegram's menu shows
    /// them; a failure is logged and the bot goes on.
    pub fn register_commands(mut self) -> Bot {
        self.register_commands = true;
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

    /// Handles new text messages that no command took as the steps of a
    /// conversation: `step` gets the update and the state the previous
    /// step left (`S::default()` at first), and returns the next one, which
    /// is stored before the chat's next update is handled. Returning the
    /// default ends the conversation and stores nothing. If `step` fails,
    /// the state stays as it was. Commands still route first, so a
    /// `/cancel` command can [`clear_state`](Context::clear_state).
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// use smolgram::{state::State, Bot};
    ///
    /// #[derive(Default, Serialize, Deserialize)]
    /// enum Greeting {
    ///     #[default]
    ///     Start,
    ///     AskedName,
    /// }
    ///
    /// impl State for Greeting {
    ///     const NAME: &'static str = "greeting";
    /// }
    ///
    /// let bot = Bot::new().dialogue(|ctx, step: Greeting| async move {
    ///     Ok(match step {
    ///         Greeting::Start => {
    ///             ctx.reply("what is your name?").await?;
    ///             Greeting::AskedName
    ///         }
    ///         Greeting::AskedName => {
    ///             ctx.reply(format!("hello, {}", ctx.text().unwrap_or_default())).await?;
    ///             Greeting::Start
    ///         }
    ///     })
    /// });
    /// # let _ = bot;
    /// ```
    pub fn dialogue<S, F, Fut>(self, step: F) -> Bot
    where
        S: State,
        F: Fn(Context, S) -> Fut + 'static,
        Fut: Future<Output = Result<S, HandlerError>> + 'static,
    {
        let step = Rc::new(step);
        self.text(move |ctx| {
            let step = Rc::clone(&step);
            async move {
                let now: S = ctx.get_state().await?;
                let (states, written, received) = ctx.state_parts();
                let next = step(ctx, now).await?;
                states
                    .slot::<S>(received.update(), &written)?
                    .set(&next)
                    .await?;
                Ok(())
            }
        })
    }

    /// Handles inline keyboard button presses that no
    /// [`callback_prefix`](Bot::callback_prefix) handler took.
    pub fn callback<F, Fut>(mut self, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.callback = Some(boxed(handler));
        self
    }

    /// Handles button presses whose `callback_data` starts with `prefix`;
    /// [`Context::args`] has the data after it (`vote:yes` → `yes`). The
    /// first prefix added that matches wins.
    pub fn callback_prefix<F, Fut>(mut self, prefix: &str, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.callback_prefixes
            .push((prefix.to_owned(), boxed(handler)));
        self
    }

    /// Handles every update of `kind` that no more specific handler took.
    ///
    /// ```
    /// use smolgram::api::types::UpdateKind;
    /// use smolgram::Bot;
    ///
    /// let bot = Bot::new().on(UpdateKind::InlineQuery, |ctx| async move {
    ///     let query = ctx.update().inline_query.as_ref().map(|q| q.query.clone());
    ///     log::info!("inline query {query:?}");
    ///     Ok(())
    /// });
    /// assert_eq!(bot.allowed_updates(), ["inline_query"]);
    /// ```
    pub fn on<F, Fut>(mut self, kind: UpdateKind, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.kinds.push((kind, None, boxed(handler)));
        self
    }

    /// [`on`](Bot::on) for the updates of `kind` that `filter` passes.
    pub fn on_if<F, Fut>(mut self, kind: UpdateKind, filter: Filter, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.kinds.push((kind, Some(filter), boxed(handler)));
        self
    }

    /// Handles edited messages: `on(UpdateKind::EditedMessage, handler)`.
    pub fn edited_message<F, Fut>(self, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.on(UpdateKind::EditedMessage, handler)
    }

    /// Handles new posts in channels the bot is in.
    pub fn channel_post<F, Fut>(self, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.on(UpdateKind::ChannelPost, handler)
    }

    /// Handles inline queries (`@yourbot query` typed in any chat).
    pub fn inline_query<F, Fut>(self, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.on(UpdateKind::InlineQuery, handler)
    }

    /// Handles changes of a member's status in a chat the bot administers.
    pub fn chat_member<F, Fut>(self, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.on(UpdateKind::ChatMember, handler)
    }

    /// Handles new messages with a photo.
    pub fn photo<F, Fut>(self, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.on_if(
            UpdateKind::Message,
            Filter::content(Content::Photo),
            handler,
        )
    }

    /// Handles new messages with a document.
    pub fn document<F, Fut>(self, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.on_if(
            UpdateKind::Message,
            Filter::content(Content::Document),
            handler,
        )
    }

    /// Handles every update no other handler took, including kinds newer
    /// than the types (their JSON is [`Context::raw`]); with a fallback the
    /// bot asks for every kind.
    pub fn fallback<F, Fut>(mut self, handler: F) -> Bot
    where
        F: Fn(Context) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.fallback = Some(boxed(handler));
        self
    }

    /// The update kinds the handlers take, as `getUpdates`'
    /// `allowed_updates` names them: every kind with a fallback, else those
    /// of the handlers (commands and text take `message`, callbacks
    /// `callback_query`). Sent with every poll.
    ///
    /// A bot with no handlers sends an empty list, which Telegram takes as
    /// its default set; those updates are confirmed and ignored.
    pub fn allowed_updates(&self) -> Vec<&'static str> {
        if self.fallback.is_some() {
            return UPDATE_KINDS.to_vec();
        }
        let mut kinds: Vec<UpdateKind> = self.kinds.iter().map(|(kind, _, _)| *kind).collect();
        if !self.commands.is_empty() || self.text.is_some() {
            kinds.push(UpdateKind::Message);
        }
        if self.callback.is_some() || !self.callback_prefixes.is_empty() {
            kinds.push(UpdateKind::CallbackQuery);
        }
        kinds.sort_unstable();
        kinds.dedup();
        kinds.into_iter().map(UpdateKind::name).collect()
    }

    /// The commands to send with `setMyCommands` at start, if the bot asked
    /// for it: `(name, description)`.
    pub(crate) fn commands_to_register(&self) -> Option<&[(String, String)]> {
        (self.register_commands && !self.described.is_empty()).then_some(&self.described[..])
    }

    /// Starts the handler for `update`, or `None` if no handler takes it.
    /// `username` is the bot's own, for `/command@username`.
    /// The handler's state writes are accounted for in `written`.
    pub(crate) fn route(
        &self,
        received: Rc<Received>,
        client: &Client,
        username: &str,
        states: &Rc<States>,
        jobs: &Rc<Jobs>,
        written: &Rc<Written>,
    ) -> Option<BoxedLocal<HandlerResult>> {
        let (handler, args_at) = self.pick(&received, username)?;
        let ctx = Context {
            received,
            client: client.clone(),
            args_at,
            states: Rc::clone(states),
            jobs: Rc::clone(jobs),
            written: Rc::clone(written),
        };
        Some(handler(ctx))
    }

    /// The handler for `received` and where its arguments start, if any.
    fn pick(&self, received: &Received, username: &str) -> Option<(&Handler, Option<usize>)> {
        let update = received.update();
        let kind = update.kind();
        if let (Some(UpdateKind::Message), Some(text)) = (
            kind,
            update.message.as_ref().and_then(|m| m.text.as_deref()),
        ) {
            match parse_command(text, username) {
                Some(Command::Ours { name, args }) => {
                    if let Some(h) = self.commands.get(&name.to_lowercase()) {
                        return Some((h, Some(args)));
                    }
                }
                // Addressed to another bot in the same group: only a fallback sees it.
                Some(Command::Theirs) => return self.fallback.as_ref().map(|h| (h, None)),
                None => {}
            }
            if let Some(h) = &self.text {
                return Some((h, None));
            }
        }
        if let Some(query) = &update.callback_query {
            let data = query.data.as_deref().unwrap_or_default();
            let by_prefix = self
                .callback_prefixes
                .iter()
                .find(|(prefix, _)| data.starts_with(prefix.as_str()));
            if let Some((prefix, h)) = by_prefix {
                return Some((h, Some(prefix.len())));
            }
            if let Some(h) = &self.callback {
                return Some((h, None));
            }
        }
        let by_kind = self.kinds.iter().find(|(k, filter, _)| {
            Some(*k) == kind && filter.as_ref().is_none_or(|f| (f.0)(update))
        });
        if let Some((_, _, h)) = by_kind {
            return Some((h, None));
        }
        self.fallback.as_ref().map(|h| (h, None))
    }
}

impl fmt::Debug for Bot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut commands: Vec<_> = self.commands.keys().collect();
        commands.sort();
        let prefixes: Vec<_> = self.callback_prefixes.iter().map(|(p, _)| p).collect();
        let kinds: Vec<_> = self.kinds.iter().map(|(k, _, _)| k.name()).collect();
        f.debug_struct("Bot")
            .field("commands", &commands)
            .field("text", &self.text.is_some())
            .field("callback_prefixes", &prefixes)
            .field("callback", &self.callback.is_some())
            .field("kinds", &kinds)
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

/// Which updates of a kind a handler takes ([`Bot::on_if`]): by chat type,
/// by what a message holds, or by any predicate. Filters combine with
/// [`and`](Filter::and) and [`or`](Filter::or).
///
/// ```
/// use smolgram::{Content, Filter};
///
/// let private_photos = Filter::private().and(Filter::content(Content::Photo));
/// let long_texts = Filter::message(|m| m.text.as_ref().is_some_and(|t| t.len() > 100));
/// # drop((private_photos, long_texts));
/// ```
#[derive(Clone)]
pub struct Filter(Rc<dyn Fn(&Update) -> bool>);

impl Filter {
    /// Updates for which `test` holds.
    pub fn predicate(test: impl Fn(&Update) -> bool + 'static) -> Filter {
        Filter(Rc::new(test))
    }

    /// Updates with a message ([`Update::effective_message`]) for which `test` holds.
    pub fn message(test: impl Fn(&Message) -> bool + 'static) -> Filter {
        Filter::predicate(move |u| u.effective_message().is_some_and(&test))
    }

    /// Updates in a chat of this type: `private`, `group`, `supergroup` or `channel`.
    pub fn chat_type(kind: &str) -> Filter {
        let kind = kind.to_owned();
        Filter::predicate(move |u| u.chat().is_some_and(|c| c.kind == kind))
    }

    /// Updates in a private chat with the bot.
    pub fn private() -> Filter {
        Filter::chat_type("private")
    }

    /// Updates in a group or a supergroup.
    pub fn group() -> Filter {
        Filter::chat_type("group").or(Filter::chat_type("supergroup"))
    }

    /// Messages that hold `content`.
    pub fn content(content: Content) -> Filter {
        Filter::message(move |m| content.is_in(m))
    }

    /// Updates both filters pass.
    pub fn and(self, other: Filter) -> Filter {
        Filter::predicate(move |u| (self.0)(u) && (other.0)(u))
    }

    /// Updates either filter passes.
    pub fn or(self, other: Filter) -> Filter {
        Filter::predicate(move |u| (self.0)(u) || (other.0)(u))
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Filter(..)")
    }
}

/// What a message holds, for [`Filter::content`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Content {
    /// `text`.
    Text,
    /// `photo`.
    Photo,
    /// `document`.
    Document,
    /// `video`.
    Video,
    /// `audio`.
    Audio,
    /// `voice`.
    Voice,
    /// `video_note`.
    VideoNote,
    /// `animation`.
    Animation,
    /// `sticker`.
    #[cfg(feature = "stickers")]
    Sticker,
    /// `location`.
    Location,
    /// `venue`.
    Venue,
    /// `contact`.
    Contact,
    /// `poll`.
    Poll,
    /// `dice`.
    Dice,
}

impl Content {
    /// Whether `message` holds it.
    pub fn is_in(self, m: &Message) -> bool {
        match self {
            Content::Text => m.text.is_some(),
            Content::Photo => m.photo.is_some(),
            Content::Document => m.document.is_some(),
            Content::Video => m.video.is_some(),
            Content::Audio => m.audio.is_some(),
            Content::Voice => m.voice.is_some(),
            Content::VideoNote => m.video_note.is_some(),
            Content::Animation => m.animation.is_some(),
            #[cfg(feature = "stickers")]
            Content::Sticker => m.sticker.is_some(),
            Content::Location => m.location.is_some(),
            Content::Venue => m.venue.is_some(),
            Content::Contact => m.contact.is_some(),
            Content::Poll => m.poll.is_some(),
            Content::Dice => m.dice.is_some(),
        }
    }
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

/// What a handler gets: the update (typed, and its JSON) and a client to
/// answer with.
///
/// It owns both, so an `async move` handler can keep it across awaits. The
/// shortcuts answer in the update's chat: [`reply`](Context::reply) and
/// `reply_photo`, `reply_document`, … (as a reply to the message, if the
/// update is one), [`edit_text`](Context::edit_text) and
/// [`delete_message`](Context::delete_message) (the update's message, or the
/// one a pressed button is under), [`answer_alert`](Context::answer_alert).
pub struct Context {
    received: Rc<Received>,
    client: Client,
    /// Byte offset of a command's arguments in the message text, or of the
    /// data after a callback prefix.
    args_at: Option<usize>,
    states: Rc<States>,
    #[cfg_attr(
        not(feature = "jobs"),
        allow(dead_code, reason = "read by the job calls only")
    )]
    jobs: Rc<Jobs>,
    /// What this update's state writes left to wait for.
    written: Rc<Written>,
}

/// A `reply_<kind>` shortcut: sends `$method` with `$file` to the update's chat.
macro_rules! reply_with_file {
    ($(#[$doc:meta])* $fn:ident, $method:ident) => {
        $(#[$doc])*
        ///
        /// # Errors
        /// [`Error::NoChat`] if the update has no chat; otherwise as [`Client::send`].
        pub async fn $fn(&self, file: impl Into<InputFile>) -> Result<Message, Error> {
            let mut method = $method::new(self.require_chat()?, file.into());
            if let Some(reply) = self.reply_parameters() {
                method = method.reply_parameters(reply);
            }
            self.client.send(&method).await
        }
    };
}

impl Context {
    /// The update being handled.
    pub fn update(&self) -> &Update {
        self.received.update()
    }

    /// The update's JSON as Telegram sent it: for fields and kinds newer
    /// than the types.
    pub fn raw(&self) -> &str {
        self.received.raw()
    }

    /// The update's kind; `None` for a kind newer than the types.
    pub fn kind(&self) -> Option<UpdateKind> {
        self.update().kind()
    }

    /// The update's `update_id`.
    pub fn update_id(&self) -> i64 {
        self.received.id()
    }

    /// The Bot API client, for any call.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The message, for the kinds that carry one (new and edited messages,
    /// channel posts, business messages).
    pub fn message(&self) -> Option<&Message> {
        self.update().effective_message()
    }

    /// The message text, if any.
    pub fn text(&self) -> Option<&str> {
        self.message()?.text.as_deref()
    }

    /// A command's arguments (`/echo a b` → `"a b"`), or the data after a
    /// [`Bot::callback_prefix`]; empty otherwise.
    pub fn args(&self) -> &str {
        let Some(at) = self.args_at else { return "" };
        if let Some(data) = self.callback_data() {
            return data.get(at..).unwrap_or("");
        }
        match self.text() {
            Some(text) => text.get(at..).unwrap_or("").trim_end(),
            None => "",
        }
    }

    /// The callback query, for button presses.
    pub fn callback_query(&self) -> Option<&CallbackQuery> {
        self.update().callback_query.as_deref()
    }

    /// The inline query, for updates of that kind.
    pub fn inline_query(&self) -> Option<&InlineQuery> {
        self.update().inline_query.as_deref()
    }

    /// The pressed button's `callback_data`.
    pub fn callback_data(&self) -> Option<&str> {
        self.callback_query()?.data.as_deref()
    }

    /// The chat the update came from, if it has one.
    pub fn chat(&self) -> Option<&Chat> {
        self.update().chat()
    }

    /// The chat's id, if the update has a chat.
    pub fn chat_id(&self) -> Option<ChatId> {
        self.chat().map(|c| c.id)
    }

    /// Who caused the update, if its kind says.
    pub fn from(&self) -> Option<&User> {
        self.update().from()
    }

    fn no_chat(&self) -> Error {
        Error::NoChat {
            update_id: self.update_id(),
        }
    }

    fn require_chat(&self) -> Result<ChatId, Error> {
        self.chat_id().ok_or_else(|| self.no_chat())
    }

    /// Replies answer the update's message, if it is one (and are still
    /// sent if that message is gone).
    fn reply_parameters(&self) -> Option<ReplyParameters> {
        let message = self.message()?;
        Some(
            ReplyParameters::new()
                .message_id(message.message_id)
                .allow_sending_without_reply(true),
        )
    }

    /// The message the update is about: its own, or the one a pressed
    /// button is under.
    fn target_message(&self) -> Result<(ChatId, MessageId), Error> {
        if let Some(m) = self.message() {
            return Ok((m.chat.id, m.message_id));
        }
        match self.callback_query().and_then(|q| q.message.as_ref()) {
            Some(MaybeInaccessibleMessage::Message(m)) => Ok((m.chat.id, m.message_id)),
            Some(MaybeInaccessibleMessage::InaccessibleMessage(m)) => Ok((m.chat.id, m.message_id)),
            None => Err(self.no_chat()),
        }
    }

    /// Sends `text` to the update's chat: as a reply to the message for a
    /// message, as a new message for a button press.
    ///
    /// # Errors
    /// [`Error::NoChat`] if the update has no chat; otherwise as
    /// [`Client::send`].
    pub async fn reply(&self, text: impl Into<String>) -> Result<Message, Error> {
        let mut message = SendMessage::new(self.require_chat()?, text);
        if let Some(reply) = self.reply_parameters() {
            message = message.reply_parameters(reply);
        }
        self.client.send(&message).await
    }

    reply_with_file!(
        /// Sends a photo to the update's chat, as [`reply`](Context::reply) does text.
        reply_photo,
        SendPhoto
    );
    reply_with_file!(
        /// Sends a document (any file) to the update's chat.
        reply_document,
        SendDocument
    );
    reply_with_file!(
        /// Sends a video to the update's chat.
        reply_video,
        SendVideo
    );
    reply_with_file!(
        /// Sends an audio file to the update's chat.
        reply_audio,
        SendAudio
    );
    reply_with_file!(
        /// Sends a voice note to the update's chat.
        reply_voice,
        SendVoice
    );
    reply_with_file!(
        /// Sends an animation (GIF or soundless video) to the update's chat.
        reply_animation,
        SendAnimation
    );
    #[cfg(feature = "stickers")]
    reply_with_file!(
        /// Sends a sticker to the update's chat.
        reply_sticker,
        SendSticker
    );

    /// Replaces the text of the update's message (for a button press, the
    /// message the button is under: the usual way to update a menu).
    /// Telegram keeps an inline keyboard only if the edit sends it again.
    ///
    /// # Errors
    /// [`Error::NoChat`] if the update has no message; otherwise as
    /// [`Client::send`].
    pub async fn edit_text(&self, text: impl Into<String>) -> Result<MessageOrTrue, Error> {
        self.client.send(&self.text_edit(text)?).await
    }

    /// [`edit_text`](Context::edit_text) that sends the message's inline
    /// keyboard with the new text: the way to update a menu and keep it.
    ///
    /// # Errors
    /// As [`edit_text`](Context::edit_text).
    pub async fn edit_text_with_keyboard(
        &self,
        text: impl Into<String>,
        keyboard: impl Into<InlineKeyboardMarkup>,
    ) -> Result<MessageOrTrue, Error> {
        let edit = self.text_edit(text)?.reply_markup(keyboard.into());
        self.client.send(&edit).await
    }

    fn text_edit(&self, text: impl Into<String>) -> Result<EditMessageText, Error> {
        let (chat, message) = self.target_message()?;
        Ok(EditMessageText::new()
            .chat_id(chat)
            .message_id(message)
            .text(text))
    }

    /// Deletes the update's message (for a button press, the message the
    /// button is under).
    ///
    /// # Errors
    /// [`Error::NoChat`] if the update has no message; otherwise as
    /// [`Client::send`].
    pub async fn delete_message(&self) -> Result<(), Error> {
        let (chat, message) = self.target_message()?;
        self.client.send(&DeleteMessage::new(chat, message)).await?;
        Ok(())
    }

    /// Sends any method with its typed parameters; see [`Client::send`].
    pub async fn send<M: Method>(&self, method: &M) -> Result<M::Output, Error> {
        self.client.send(method).await
    }

    /// Sends any message (with a keyboard, say).
    pub async fn send_message(&self, message: &SendMessage) -> Result<Message, Error> {
        self.client.send(message).await
    }

    /// Answers the button press being handled, with an optional toast `text`.
    ///
    /// # Errors
    /// [`Error::NoChat`] if the update is not a callback query.
    pub async fn answer_callback_query(&self, text: Option<&str>) -> Result<(), Error> {
        let query = self.callback_query().ok_or_else(|| self.no_chat())?;
        self.client.answer_callback_query(&query.id, text).await
    }

    /// Answers the button press being handled with an alert: `text` in a
    /// box the user must dismiss, instead of a toast.
    ///
    /// # Errors
    /// [`Error::NoChat`] if the update is not a callback query.
    pub async fn answer_alert(&self, text: &str) -> Result<(), Error> {
        let query = self.callback_query().ok_or_else(|| self.no_chat())?;
        let answer = AnswerCallbackQuery::new(query.id.as_str())
            .text(text)
            .show_alert(true);
        self.client.send(&answer).await?;
        Ok(())
    }

    /// This update's state of type `S` (its chat's, its user's, or its
    /// user's in its chat, as `S::SCOPE` says), or `S::default()` if it
    /// has none. See [`state`](crate::state).
    ///
    /// # Errors
    /// [`Error::NoScope`] if the update lacks the chat or user that the
    /// scope needs; [`Error::State`] if the store failed, and then the
    /// update is run again later whatever the handler does with the error.
    pub async fn get_state<S: State>(&self) -> Result<S, Error> {
        self.states
            .slot::<S>(self.update(), &self.written)?
            .get()
            .await
    }

    /// Stores `value` as this update's state of its type. The next update
    /// of the same chat sees it; this one counts as finished once the
    /// store has it durably.
    ///
    /// # Errors
    /// As [`get_state`](Context::get_state).
    pub async fn set_state<S: State>(&self, value: &S) -> Result<(), Error> {
        self.states
            .slot::<S>(self.update(), &self.written)?
            .set(value)
            .await
    }

    /// Changes this update's state of type `S` in place: reads it, lets
    /// `change` change it, stores it, with no other update of the same
    /// value in between (in this process; replicas sharing a Redis are not
    /// locked against each other). For values that many chats change, of
    /// [`Scope::Bot`](crate::state::Scope::Bot): a subscriber list.
    ///
    /// # Errors
    /// As [`get_state`](Context::get_state).
    pub async fn update_state<S: State, R>(
        &self,
        change: impl FnOnce(&mut S) -> R,
    ) -> Result<R, Error> {
        self.states
            .slot::<S>(self.update(), &self.written)?
            .update(change)
            .await
    }

    /// Removes this update's state of type `S`: the next read gives the default.
    ///
    /// # Errors
    /// As [`get_state`](Context::get_state).
    pub async fn clear_state<S: State>(&self) -> Result<(), Error> {
        self.states
            .slot::<S>(self.update(), &self.written)?
            .clear()
            .await
    }

    /// What a state write needs after the context is gone (into a
    /// dialogue's step).
    fn state_parts(&self) -> (Rc<States>, Rc<Written>, Rc<Received>) {
        (
            Rc::clone(&self.states),
            Rc::clone(&self.written),
            Rc::clone(&self.received),
        )
    }

    /// The run's jobs and state, and this update's writes: for the job and
    /// broadcast calls (in `jobs`).
    #[cfg(feature = "jobs")]
    pub(crate) fn job_parts(&self) -> (&Rc<Jobs>, &Rc<States>, &Rc<Written>) {
        (&self.jobs, &self.states, &self.written)
    }

    /// Calls any Bot API method by name; see [`Client::call`].
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
            .field("update", self.update())
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
