//! Keyboards: inline buttons under a message, reply keyboards in place of
//! the user's keyboard, their removal and the forced reply, built over the
//! generated Bot API types.
//!
//! A [`Button`] is an [`InlineKeyboardButton`] with exactly one action,
//! made by one constructor per action kind, and a [`ReplyButton`] is a
//! [`KeyboardButton`] with at most one request. What Telegram would reject
//! and we can see locally (an empty or over-long `callback_data`, a button
//! with two actions or none, an over-long placeholder) fails *here*, when
//! the button is made, with a [`KeyboardError`] that says what and why:
//! never a silent drop, never a `400 Bad Request` from a send far away.
//! Once made, a button is valid, so a keyboard converts infallibly (`Into`)
//! to the generated [`ReplyMarkup`] every send method takes, and an
//! [`InlineKeyboard`] into the [`InlineKeyboardMarkup`] the edit methods
//! take.
//!
//! Must not: hold its own copy of the wire format (the generated types are
//! the wire format), or send anything.
//!
//! See the Bot API's [keyboards](https://core.telegram.org/bots/features#keyboards)
//! and [`InlineKeyboardMarkup`](https://core.telegram.org/bots/api#inlinekeyboardmarkup).
//!
//! # Examples
//! ```
//! use smolgram::api::generated::methods::SendMessage;
//! use smolgram::keyboard::{Button, InlineKeyboard};
//!
//! # fn main() -> Result<(), smolgram::keyboard::KeyboardError> {
//! let keyboard = InlineKeyboard::new()
//!     .row([Button::callback("Yes", "vote:yes")?, Button::callback("No", "vote:no")?])
//!     .row([Button::url("Why?", "https://example.org/why")]);
//! let send = SendMessage::new(7, "Ship it?").reply_markup(keyboard);
//! let json = serde_json::to_value(&send).unwrap();
//! assert_eq!(json["reply_markup"]["inline_keyboard"][0][1]["callback_data"], "vote:no");
//! # Ok(())
//! # }
//! ```

use std::fmt;

#[cfg(feature = "games")]
use crate::api::generated::types::CallbackGame;

use crate::api::generated::types::{
    CopyTextButton, ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton,
    KeyboardButtonPollType, KeyboardButtonRequestChat, KeyboardButtonRequestManagedBot,
    KeyboardButtonRequestUsers, LoginUrl, ReplyKeyboardMarkup, ReplyKeyboardRemove, ReplyMarkup,
    SwitchInlineQueryChosenChat, WebAppInfo,
};
use crate::text::utf16_len;

/// Telegram's bound on `callback_data`, in bytes
/// ([`InlineKeyboardButton`](https://core.telegram.org/bots/api#inlinekeyboardbutton)).
pub const CALLBACK_DATA_MAX: usize = 64;
/// Telegram's bound on the text a copy button copies, in characters
/// ([`CopyTextButton`](https://core.telegram.org/bots/api#copytextbutton)).
pub const COPY_TEXT_MAX: usize = 256;
/// Telegram's bound on an input field placeholder, in characters
/// ([`ReplyKeyboardMarkup`](https://core.telegram.org/bots/api#replykeyboardmarkup),
/// [`ForceReply`](https://core.telegram.org/bots/api#forcereply)).
pub const PLACEHOLDER_MAX: usize = 64;
/// Telegram's bound on how many users one `request_users` button may pick
/// ([`KeyboardButtonRequestUsers`](https://core.telegram.org/bots/api#keyboardbuttonrequestusers)).
pub const REQUEST_USERS_MAX: i64 = 10;

/// A keyboard or button Telegram would refuse, caught before it is sent.
///
/// Lengths "in characters" are counted as Telegram counts text, in UTF-16
/// code units, so an emoji outside the Basic Multilingual Plane counts 2.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyboardError {
    /// `callback_data` must be 1 to [`CALLBACK_DATA_MAX`] bytes.
    CallbackData {
        /// The button's label.
        text: String,
        /// The data's length in bytes (UTF-8).
        bytes: usize,
    },
    /// A copy button's text must be 1 to [`COPY_TEXT_MAX`] characters.
    CopyText {
        /// The button's label.
        text: String,
        /// The copied text's length in UTF-16 code units.
        units: usize,
    },
    /// A placeholder must be 1 to [`PLACEHOLDER_MAX`] characters.
    Placeholder {
        /// Its length in UTF-16 code units.
        units: usize,
    },
    /// `max_quantity` of a `request_users` button must be 1 to [`REQUEST_USERS_MAX`].
    MaxQuantity {
        /// The button's label.
        text: String,
        /// The quantity asked for.
        quantity: i64,
    },
    /// An inline button needs exactly one action (a URL, callback data, …).
    Actions {
        /// The button's label.
        text: String,
        /// The fields with an action that it has set.
        set: Vec<&'static str>,
    },
    /// A reply button may ask for at most one thing (a contact, a chat, …).
    Requests {
        /// The button's label.
        text: String,
        /// The request fields it has set.
        set: Vec<&'static str>,
    },
}

impl fmt::Display for KeyboardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyboardError::CallbackData { text, bytes } => write!(
                f,
                "button {text:?}: callback_data is {bytes} bytes, telegram takes 1 to \
                 {CALLBACK_DATA_MAX}; keep a short key in it and the rest in your own state"
            ),
            KeyboardError::CopyText { text, units } => write!(
                f,
                "button {text:?}: copy_text is {units} characters, telegram takes 1 to {COPY_TEXT_MAX}"
            ),
            KeyboardError::Placeholder { units } => write!(
                f,
                "keyboard: input field placeholder is {units} characters, telegram takes 1 to \
                 {PLACEHOLDER_MAX}"
            ),
            KeyboardError::MaxQuantity { text, quantity } => write!(
                f,
                "button {text:?}: request_users max_quantity is {quantity}, telegram takes 1 to \
                 {REQUEST_USERS_MAX}"
            ),
            KeyboardError::Actions { text, set } if set.is_empty() => write!(
                f,
                "inline button {text:?}: no action, telegram needs exactly one; make it with a \
                 Button constructor"
            ),
            KeyboardError::Actions { text, set } => write!(
                f,
                "inline button {text:?}: {} actions ({}), telegram takes exactly one",
                set.len(),
                set.join(", ")
            ),
            KeyboardError::Requests { text, set } => write!(
                f,
                "reply button {text:?}: {} requests ({}), telegram takes at most one",
                set.len(),
                set.join(", ")
            ),
        }
    }
}

impl std::error::Error for KeyboardError {}

/// An inline keyboard button with exactly one action
/// ([`InlineKeyboardButton`](https://core.telegram.org/bots/api#inlinekeyboardbutton)).
///
/// Made by the constructor of its action; the ones whose data Telegram
/// bounds return a `Result`. A hand-built [`InlineKeyboardButton`] becomes
/// one through `TryFrom`, which checks the same rules.
///
/// # Examples
/// ```
/// use smolgram::keyboard::Button;
///
/// let yes = Button::callback("Yes", "yes").unwrap();
/// assert_eq!(yes.as_inner().callback_data.as_deref(), Some("yes"));
///
/// let err = Button::callback("Long", "x".repeat(65)).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "button \"Long\": callback_data is 65 bytes, telegram takes 1 to 64; \
///      keep a short key in it and the rest in your own state"
/// );
/// ```
#[derive(Clone, Debug)]
pub struct Button(InlineKeyboardButton);

impl Button {
    /// A button that sends `data` back to the bot as a callback query
    /// (`callback_data`); 1 to [`CALLBACK_DATA_MAX`] bytes.
    pub fn callback(
        text: impl Into<String>,
        data: impl Into<String>,
    ) -> Result<Button, KeyboardError> {
        let button = InlineKeyboardButton::new(text).callback_data(data);
        Button::try_from(button)
    }

    /// A button that opens `url` (`http(s)://`, or `tg://user?id=…`).
    pub fn url(text: impl Into<String>, url: impl Into<String>) -> Button {
        Button(InlineKeyboardButton::new(text).url(url))
    }

    /// A button that opens the [Web App](https://core.telegram.org/bots/webapps)
    /// at the HTTPS `url`; private chats only.
    pub fn web_app(text: impl Into<String>, url: impl Into<String>) -> Button {
        Button(InlineKeyboardButton::new(text).web_app(WebAppInfo::new(url)))
    }

    /// A button that logs the user in to a website
    /// ([`LoginUrl`](https://core.telegram.org/bots/api#loginurl));
    /// `LoginUrl::new(url)` for the plain case.
    pub fn login(text: impl Into<String>, login: LoginUrl) -> Button {
        Button(InlineKeyboardButton::new(text).login_url(login))
    }

    /// A button that lets the user pick a chat and starts an inline query
    /// of this bot there with `query` (may be empty).
    pub fn switch_inline(text: impl Into<String>, query: impl Into<String>) -> Button {
        Button(InlineKeyboardButton::new(text).switch_inline_query(query))
    }

    /// A button that starts an inline query of this bot with `query` in the
    /// current chat.
    pub fn switch_inline_current_chat(text: impl Into<String>, query: impl Into<String>) -> Button {
        Button(InlineKeyboardButton::new(text).switch_inline_query_current_chat(query))
    }

    /// A button that starts an inline query in a chat of the kinds `chosen`
    /// allows ([`SwitchInlineQueryChosenChat`](https://core.telegram.org/bots/api#switchinlinequerychosenchat)).
    pub fn switch_inline_chosen_chat(
        text: impl Into<String>,
        chosen: SwitchInlineQueryChosenChat,
    ) -> Button {
        Button(InlineKeyboardButton::new(text).switch_inline_query_chosen_chat(chosen))
    }

    /// A button that copies `copied` to the clipboard; 1 to
    /// [`COPY_TEXT_MAX`] characters.
    pub fn copy_text(
        text: impl Into<String>,
        copied: impl Into<String>,
    ) -> Result<Button, KeyboardError> {
        let button = InlineKeyboardButton::new(text).copy_text(CopyTextButton::new(copied));
        Button::try_from(button)
    }

    /// A pay button, for invoices. Telegram wants it first in the first row.
    pub fn pay(text: impl Into<String>) -> Button {
        Button(InlineKeyboardButton::new(text).pay(true))
    }

    /// A button that starts the message's game. Telegram wants it first in
    /// the first row.
    #[cfg(feature = "games")]
    pub fn game(text: impl Into<String>) -> Button {
        Button(InlineKeyboardButton::new(text).callback_game(CallbackGame::new()))
    }

    /// Sets the button's style (`style`), as the Bot API names them.
    pub fn style(self, style: impl Into<String>) -> Button {
        Button(self.0.style(style))
    }

    /// Shows a custom emoji before the label (`icon_custom_emoji_id`).
    pub fn icon(self, custom_emoji_id: impl Into<String>) -> Button {
        Button(self.0.icon_custom_emoji_id(custom_emoji_id))
    }

    /// The generated button it is.
    pub fn as_inner(&self) -> &InlineKeyboardButton {
        &self.0
    }
}

/// The fields of an inline button that are an action, with whether each is set.
fn inline_actions(b: &InlineKeyboardButton) -> Vec<&'static str> {
    [
        ("url", b.url.is_some()),
        ("callback_data", b.callback_data.is_some()),
        ("web_app", b.web_app.is_some()),
        ("login_url", b.login_url.is_some()),
        ("switch_inline_query", b.switch_inline_query.is_some()),
        (
            "switch_inline_query_current_chat",
            b.switch_inline_query_current_chat.is_some(),
        ),
        (
            "switch_inline_query_chosen_chat",
            b.switch_inline_query_chosen_chat.is_some(),
        ),
        ("copy_text", b.copy_text.is_some()),
        #[cfg(feature = "games")]
        ("callback_game", b.callback_game.is_some()),
        // `pay: false` is no action; Telegram only reads `true`.
        ("pay", b.pay == Some(true)),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// Checks what [`Button`]'s constructors guarantee: exactly one action, and
/// the bounded data within its bounds.
impl TryFrom<InlineKeyboardButton> for Button {
    type Error = KeyboardError;

    fn try_from(button: InlineKeyboardButton) -> Result<Button, KeyboardError> {
        let set = inline_actions(&button);
        if set.len() != 1 {
            return Err(KeyboardError::Actions {
                text: button.text,
                set,
            });
        }
        if let Some(data) = &button.callback_data {
            if data.is_empty() || data.len() > CALLBACK_DATA_MAX {
                return Err(KeyboardError::CallbackData {
                    bytes: data.len(),
                    text: button.text,
                });
            }
        }
        if let Some(copy) = &button.copy_text {
            let units = utf16_len(&copy.text);
            if units == 0 || units > COPY_TEXT_MAX {
                return Err(KeyboardError::CopyText {
                    units,
                    text: button.text,
                });
            }
        }
        Ok(Button(button))
    }
}

impl From<Button> for InlineKeyboardButton {
    fn from(button: Button) -> Self {
        button.0
    }
}

/// Rows of [`Button`]s under a message
/// ([`InlineKeyboardMarkup`](https://core.telegram.org/bots/api#inlinekeyboardmarkup)).
///
/// Converts into the [`ReplyMarkup`] of the send methods and into the
/// [`InlineKeyboardMarkup`] of the edit methods. An empty keyboard is
/// valid: in an edit it removes the buttons.
///
/// # Examples
/// ```
/// use smolgram::keyboard::{Button, InlineKeyboard};
///
/// let digits = (1..=5).map(|n| Button::callback(n.to_string(), format!("digit:{n}")).unwrap());
/// let keyboard = InlineKeyboard::grid(digits, 3).row([Button::pay("Pay")]);
/// let labels: Vec<Vec<&str>> = keyboard
///     .rows()
///     .iter()
///     .map(|row| row.iter().map(|b| b.text.as_str()).collect())
///     .collect();
/// assert_eq!(labels, [vec!["1", "2", "3"], vec!["4", "5"], vec!["Pay"]]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct InlineKeyboard {
    rows: Vec<Vec<InlineKeyboardButton>>,
}

impl InlineKeyboard {
    /// A keyboard without buttons.
    pub fn new() -> Self {
        InlineKeyboard::default()
    }

    /// `buttons` laid out `columns` to a row, the last row holding the rest.
    ///
    /// # Panics
    /// If `columns` is 0, as [`slice::chunks`] does.
    pub fn grid(buttons: impl IntoIterator<Item = Button>, columns: usize) -> Self {
        InlineKeyboard::new().grid_rows(buttons, columns)
    }

    /// Adds a row of `buttons` below the others.
    pub fn row(mut self, buttons: impl IntoIterator<Item = Button>) -> Self {
        self.rows.push(buttons.into_iter().map(|b| b.0).collect());
        self
    }

    /// Adds `buttons` below the others, `columns` to a row, as [`grid`](Self::grid).
    ///
    /// # Panics
    /// If `columns` is 0.
    pub fn grid_rows(mut self, buttons: impl IntoIterator<Item = Button>, columns: usize) -> Self {
        assert!(
            columns > 0,
            "InlineKeyboard::grid: columns must be at least 1"
        );
        let buttons: Vec<InlineKeyboardButton> = buttons.into_iter().map(|b| b.0).collect();
        self.rows.extend(buttons.chunks(columns).map(<[_]>::to_vec));
        self
    }

    /// The rows so far, top first.
    pub fn rows(&self) -> &[Vec<InlineKeyboardButton>] {
        &self.rows
    }
}

impl From<InlineKeyboard> for InlineKeyboardMarkup {
    fn from(keyboard: InlineKeyboard) -> Self {
        InlineKeyboardMarkup::new(keyboard.rows)
    }
}

impl From<InlineKeyboard> for ReplyMarkup {
    fn from(keyboard: InlineKeyboard) -> Self {
        InlineKeyboardMarkup::from(keyboard).into()
    }
}

/// A single button is a keyboard of one row.
impl From<Button> for InlineKeyboard {
    fn from(button: Button) -> Self {
        InlineKeyboard::new().row([button])
    }
}

/// Which polls a [`ReplyButton::poll`] lets the user create
/// ([`KeyboardButtonPollType`](https://core.telegram.org/bots/api#keyboardbuttonpolltype)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollKind {
    /// A quiz or a regular poll, as the user likes.
    Any,
    /// Only a quiz.
    Quiz,
    /// Only a regular poll.
    Regular,
}

/// A button of a reply keyboard: text the user sends by tapping it, or one
/// request (a contact, a location, a poll, users, a chat, a Web App)
/// ([`KeyboardButton`](https://core.telegram.org/bots/api#keyboardbutton)).
///
/// # Examples
/// ```
/// use smolgram::keyboard::{ReplyButton, ReplyKeyboard};
///
/// let keyboard = ReplyKeyboard::new()
///     .row([ReplyButton::text("Menu"), ReplyButton::location("Where am I?")])
///     .resize()
///     .one_time();
/// let json = serde_json::to_value(smolgram::api::generated::types::ReplyMarkup::from(keyboard)).unwrap();
/// assert_eq!(json["keyboard"][0][1]["request_location"], true);
/// assert_eq!(json["resize_keyboard"], true);
/// ```
#[derive(Clone, Debug)]
pub struct ReplyButton(KeyboardButton);

impl ReplyButton {
    /// A button that sends its own `text`.
    pub fn text(text: impl Into<String>) -> ReplyButton {
        ReplyButton(KeyboardButton::new(text))
    }

    /// A button that sends the user's phone number as a contact; private
    /// chats only.
    pub fn contact(text: impl Into<String>) -> ReplyButton {
        ReplyButton(KeyboardButton::new(text).request_contact(true))
    }

    /// A button that sends the user's current location; private chats only.
    pub fn location(text: impl Into<String>) -> ReplyButton {
        ReplyButton(KeyboardButton::new(text).request_location(true))
    }

    /// A button that lets the user create a poll of `kind` and send it;
    /// private chats only.
    pub fn poll(text: impl Into<String>, kind: PollKind) -> ReplyButton {
        let poll = match kind {
            PollKind::Any => KeyboardButtonPollType::new(),
            PollKind::Quiz => KeyboardButtonPollType::new().kind("quiz"),
            PollKind::Regular => KeyboardButtonPollType::new().kind("regular"),
        };
        ReplyButton(KeyboardButton::new(text).request_poll(poll))
    }

    /// A button that lets the user pick users; the bot gets a
    /// `users_shared` message
    /// ([`KeyboardButtonRequestUsers`](https://core.telegram.org/bots/api#keyboardbuttonrequestusers)).
    /// `max_quantity`, when set, must be 1 to [`REQUEST_USERS_MAX`].
    pub fn users(
        text: impl Into<String>,
        request: KeyboardButtonRequestUsers,
    ) -> Result<ReplyButton, KeyboardError> {
        ReplyButton::try_from(KeyboardButton::new(text).request_users(request))
    }

    /// A button that lets the user pick a chat; the bot gets a
    /// `chat_shared` message
    /// ([`KeyboardButtonRequestChat`](https://core.telegram.org/bots/api#keyboardbuttonrequestchat)).
    pub fn chat(text: impl Into<String>, request: KeyboardButtonRequestChat) -> ReplyButton {
        ReplyButton(KeyboardButton::new(text).request_chat(request))
    }

    /// A button that lets the user create a bot managed by this one
    /// ([`KeyboardButtonRequestManagedBot`](https://core.telegram.org/bots/api#keyboardbuttonrequestmanagedbot)).
    pub fn managed_bot(
        text: impl Into<String>,
        request: KeyboardButtonRequestManagedBot,
    ) -> ReplyButton {
        ReplyButton(KeyboardButton::new(text).request_managed_bot(request))
    }

    /// A button that opens the [Web App](https://core.telegram.org/bots/webapps)
    /// at the HTTPS `url`; private chats only.
    pub fn web_app(text: impl Into<String>, url: impl Into<String>) -> ReplyButton {
        ReplyButton(KeyboardButton::new(text).web_app(WebAppInfo::new(url)))
    }

    /// Sets the button's style (`style`), as the Bot API names them.
    pub fn style(self, style: impl Into<String>) -> ReplyButton {
        ReplyButton(self.0.style(style))
    }

    /// Shows a custom emoji before the label (`icon_custom_emoji_id`).
    pub fn icon(self, custom_emoji_id: impl Into<String>) -> ReplyButton {
        ReplyButton(self.0.icon_custom_emoji_id(custom_emoji_id))
    }

    /// The generated button it is.
    pub fn as_inner(&self) -> &KeyboardButton {
        &self.0
    }
}

/// Checks what [`ReplyButton`]'s constructors guarantee: at most one
/// request, and `max_quantity` within its bounds.
impl TryFrom<KeyboardButton> for ReplyButton {
    type Error = KeyboardError;

    fn try_from(button: KeyboardButton) -> Result<ReplyButton, KeyboardError> {
        let set: Vec<&'static str> = [
            ("request_users", button.request_users.is_some()),
            ("request_chat", button.request_chat.is_some()),
            ("request_managed_bot", button.request_managed_bot.is_some()),
            ("request_contact", button.request_contact == Some(true)),
            ("request_location", button.request_location == Some(true)),
            ("request_poll", button.request_poll.is_some()),
            ("web_app", button.web_app.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if set.len() > 1 {
            return Err(KeyboardError::Requests {
                text: button.text,
                set,
            });
        }
        if let Some(quantity) = button.request_users.as_ref().and_then(|r| r.max_quantity) {
            if !(1..=REQUEST_USERS_MAX).contains(&quantity) {
                return Err(KeyboardError::MaxQuantity {
                    text: button.text,
                    quantity,
                });
            }
        }
        Ok(ReplyButton(button))
    }
}

impl From<ReplyButton> for KeyboardButton {
    fn from(button: ReplyButton) -> Self {
        button.0
    }
}

/// Checks a placeholder against [`PLACEHOLDER_MAX`].
fn placeholder(text: String) -> Result<String, KeyboardError> {
    let units = utf16_len(&text);
    if units == 0 || units > PLACEHOLDER_MAX {
        return Err(KeyboardError::Placeholder { units });
    }
    Ok(text)
}

/// A keyboard that takes the place of the user's own until removed
/// ([`ReplyKeyboardMarkup`](https://core.telegram.org/bots/api#replykeyboardmarkup)).
///
/// Its switches are off unless set: Telegram then draws it full height,
/// keeps it after a tap, and shows it to everyone in a group.
#[derive(Clone, Debug)]
pub struct ReplyKeyboard(ReplyKeyboardMarkup);

impl Default for ReplyKeyboard {
    fn default() -> Self {
        ReplyKeyboard(ReplyKeyboardMarkup::new(Vec::new()))
    }
}

impl ReplyKeyboard {
    /// A keyboard without buttons (add rows before sending: Telegram
    /// refuses an empty reply keyboard).
    pub fn new() -> Self {
        ReplyKeyboard::default()
    }

    /// `buttons` laid out `columns` to a row, the last row holding the rest.
    ///
    /// # Panics
    /// If `columns` is 0.
    pub fn grid(buttons: impl IntoIterator<Item = ReplyButton>, columns: usize) -> Self {
        assert!(
            columns > 0,
            "ReplyKeyboard::grid: columns must be at least 1"
        );
        let buttons: Vec<KeyboardButton> = buttons.into_iter().map(|b| b.0).collect();
        let mut keyboard = ReplyKeyboard::new();
        keyboard.0.keyboard = buttons.chunks(columns).map(<[_]>::to_vec).collect();
        keyboard
    }

    /// Adds a row of `buttons` below the others.
    pub fn row(mut self, buttons: impl IntoIterator<Item = ReplyButton>) -> Self {
        self.0
            .keyboard
            .push(buttons.into_iter().map(|b| b.0).collect());
        self
    }

    /// Fits the keyboard's height to its rows (`resize_keyboard`).
    pub fn resize(self) -> Self {
        ReplyKeyboard(self.0.resize_keyboard(true))
    }

    /// Hides the keyboard once a button is tapped; the user can bring it
    /// back (`one_time_keyboard`).
    pub fn one_time(self) -> Self {
        ReplyKeyboard(self.0.one_time_keyboard(true))
    }

    /// Keeps the keyboard shown even when the user's own is open
    /// (`is_persistent`).
    pub fn persistent(self) -> Self {
        ReplyKeyboard(self.0.is_persistent(true))
    }

    /// Shows the keyboard only to the users the message mentions and to the
    /// sender of the message it replies to (`selective`).
    pub fn selective(self) -> Self {
        ReplyKeyboard(self.0.selective(true))
    }

    /// The text in the empty input field while the keyboard is shown
    /// (`input_field_placeholder`); 1 to [`PLACEHOLDER_MAX`] characters.
    pub fn placeholder(self, text: impl Into<String>) -> Result<Self, KeyboardError> {
        Ok(ReplyKeyboard(
            self.0.input_field_placeholder(placeholder(text.into())?),
        ))
    }

    /// The generated markup it is.
    pub fn as_inner(&self) -> &ReplyKeyboardMarkup {
        &self.0
    }
}

impl From<ReplyKeyboard> for ReplyKeyboardMarkup {
    fn from(keyboard: ReplyKeyboard) -> Self {
        keyboard.0
    }
}

impl From<ReplyKeyboard> for ReplyMarkup {
    fn from(keyboard: ReplyKeyboard) -> Self {
        keyboard.0.into()
    }
}

/// Removes the reply keyboard and brings back the user's own
/// ([`ReplyKeyboardRemove`](https://core.telegram.org/bots/api#replykeyboardremove)).
///
/// ```
/// use smolgram::{api::generated::types::ReplyMarkup, keyboard::RemoveKeyboard};
///
/// let json = serde_json::to_value(ReplyMarkup::from(RemoveKeyboard::new())).unwrap();
/// assert_eq!(json, serde_json::json!({"remove_keyboard": true}));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RemoveKeyboard {
    selective: bool,
}

impl RemoveKeyboard {
    /// Removes it for everyone.
    pub fn new() -> Self {
        RemoveKeyboard::default()
    }

    /// Removes it only for the users the message mentions and the sender of
    /// the message it replies to (`selective`).
    pub fn selective(self) -> Self {
        RemoveKeyboard { selective: true }
    }
}

impl From<RemoveKeyboard> for ReplyKeyboardRemove {
    fn from(remove: RemoveKeyboard) -> Self {
        let markup = ReplyKeyboardRemove::new();
        if remove.selective {
            markup.selective(true)
        } else {
            markup
        }
    }
}

impl From<RemoveKeyboard> for ReplyMarkup {
    fn from(remove: RemoveKeyboard) -> Self {
        ReplyKeyboardRemove::from(remove).into()
    }
}

/// Opens the user's reply interface to the message, as if they had tapped
/// "Reply" ([`ForceReply`](https://core.telegram.org/bots/api#forcereply)):
/// step-by-step input without a keyboard.
///
/// ```
/// use smolgram::{api::generated::types::ReplyMarkup, keyboard::ForcedReply};
///
/// let prompt = ForcedReply::new().placeholder("Your name").unwrap();
/// let json = serde_json::to_value(ReplyMarkup::from(prompt)).unwrap();
/// assert_eq!(
///     json,
///     serde_json::json!({"force_reply": true, "input_field_placeholder": "Your name"})
/// );
/// ```
#[derive(Clone, Debug)]
pub struct ForcedReply(ForceReply);

impl Default for ForcedReply {
    fn default() -> Self {
        ForcedReply(ForceReply::new())
    }
}

impl ForcedReply {
    /// A forced reply for everyone, without a placeholder.
    pub fn new() -> Self {
        ForcedReply::default()
    }

    /// The text in the empty input field (`input_field_placeholder`); 1 to
    /// [`PLACEHOLDER_MAX`] characters.
    pub fn placeholder(self, text: impl Into<String>) -> Result<Self, KeyboardError> {
        Ok(ForcedReply(
            self.0.input_field_placeholder(placeholder(text.into())?),
        ))
    }

    /// Forces the reply only for the users the message mentions and the
    /// sender of the message it replies to (`selective`).
    pub fn selective(self) -> Self {
        ForcedReply(self.0.selective(true))
    }
}

impl From<ForcedReply> for ForceReply {
    fn from(reply: ForcedReply) -> Self {
        reply.0
    }
}

impl From<ForcedReply> for ReplyMarkup {
    fn from(reply: ForcedReply) -> Self {
        reply.0.into()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::api::generated::methods::{EditMessageText, SendMessage};

    fn inline(button: Button) -> Value {
        serde_json::to_value(InlineKeyboardButton::from(button)).unwrap()
    }

    fn reply(button: ReplyButton) -> Value {
        serde_json::to_value(KeyboardButton::from(button)).unwrap()
    }

    fn markup(markup: impl Into<ReplyMarkup>) -> Value {
        serde_json::to_value(markup.into()).unwrap()
    }

    #[test]
    fn every_inline_constructor_sets_its_one_action_field() {
        let cases = [
            (
                Button::callback("a", "data").unwrap(),
                json!({"text": "a", "callback_data": "data"}),
            ),
            (
                Button::url("a", "https://x.org"),
                json!({"text": "a", "url": "https://x.org"}),
            ),
            (
                Button::web_app("a", "https://app.x.org"),
                json!({"text": "a", "web_app": {"url": "https://app.x.org"}}),
            ),
            (
                Button::login(
                    "a",
                    LoginUrl::new("https://x.org/login").request_write_access(true),
                ),
                json!({"text": "a", "login_url": {"url": "https://x.org/login", "request_write_access": true}}),
            ),
            (
                Button::switch_inline("a", "cats"),
                json!({"text": "a", "switch_inline_query": "cats"}),
            ),
            (
                Button::switch_inline("a", ""),
                json!({"text": "a", "switch_inline_query": ""}),
            ),
            (
                Button::switch_inline_current_chat("a", "dogs"),
                json!({"text": "a", "switch_inline_query_current_chat": "dogs"}),
            ),
            (
                Button::switch_inline_chosen_chat(
                    "a",
                    SwitchInlineQueryChosenChat::new()
                        .query("q")
                        .allow_group_chats(true),
                ),
                json!({"text": "a", "switch_inline_query_chosen_chat": {"query": "q", "allow_group_chats": true}}),
            ),
            (
                Button::copy_text("a", "PROMO-42").unwrap(),
                json!({"text": "a", "copy_text": {"text": "PROMO-42"}}),
            ),
            (Button::pay("a"), json!({"text": "a", "pay": true})),
            #[cfg(feature = "games")]
            (Button::game("a"), json!({"text": "a", "callback_game": {}})),
        ];
        for (button, expected) in cases {
            assert_eq!(inline(button), expected);
        }
        let styled = Button::url("a", "https://x.org")
            .style("primary")
            .icon("5368324170671202286");
        assert_eq!(
            inline(styled),
            json!({"text": "a", "url": "https://x.org", "style": "primary", "icon_custom_emoji_id": "5368324170671202286"})
        );
    }

    #[test]
    fn callback_data_is_one_to_64_bytes_counted_in_utf8() {
        assert!(Button::callback("a", "x".repeat(64)).is_ok());
        assert_eq!(
            Button::callback("a", "x".repeat(65)).unwrap_err(),
            KeyboardError::CallbackData {
                text: "a".into(),
                bytes: 65
            }
        );
        assert_eq!(
            Button::callback("a", "").unwrap_err(),
            KeyboardError::CallbackData {
                text: "a".into(),
                bytes: 0
            }
        );
        // 32 Cyrillic letters are 64 bytes; 33 are 66: too long at 33 characters.
        assert!(Button::callback("a", "ж".repeat(32)).is_ok());
        assert!(matches!(
            Button::callback("a", "ж".repeat(33)),
            Err(KeyboardError::CallbackData { bytes: 66, .. })
        ));
    }

    #[test]
    fn copy_text_is_one_to_256_characters_counted_in_utf16() {
        assert!(Button::copy_text("a", "x".repeat(256)).is_ok());
        assert!(Button::copy_text("a", "👍".repeat(128)).is_ok());
        assert_eq!(
            Button::copy_text("a", "👍".repeat(129)).unwrap_err(),
            KeyboardError::CopyText {
                text: "a".into(),
                units: 258
            }
        );
        assert!(Button::copy_text("a", "").is_err());
    }

    #[test]
    fn a_hand_built_button_needs_exactly_one_action() {
        let none = Button::try_from(InlineKeyboardButton::new("bare")).unwrap_err();
        assert_eq!(
            none,
            KeyboardError::Actions {
                text: "bare".into(),
                set: vec![]
            }
        );
        assert_eq!(
            none.to_string(),
            "inline button \"bare\": no action, telegram needs exactly one; make it with a Button constructor"
        );
        let two = InlineKeyboardButton::new("two")
            .url("https://x.org")
            .callback_data("d");
        let err = Button::try_from(two).unwrap_err();
        assert_eq!(
            err.to_string(),
            "inline button \"two\": 2 actions (url, callback_data), telegram takes exactly one"
        );
        // `pay: false` is not an action, so this one has none.
        assert!(Button::try_from(InlineKeyboardButton::new("p").pay(false)).is_err());
        let long = InlineKeyboardButton::new("l").callback_data("x".repeat(100));
        assert!(matches!(
            Button::try_from(long),
            Err(KeyboardError::CallbackData { bytes: 100, .. })
        ));
        assert!(Button::try_from(InlineKeyboardButton::new("ok").pay(true)).is_ok());
    }

    #[test]
    fn inline_keyboard_rows_and_grid_keep_order() {
        let b = |n: usize| Button::callback(n.to_string(), n.to_string()).unwrap();
        let keyboard = InlineKeyboard::new()
            .row([b(0)])
            .grid_rows((1..=7).map(b), 3)
            .row([]);
        let json = markup(keyboard);
        let labels: Vec<Vec<String>> = json["inline_keyboard"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|b| b["text"].as_str().unwrap().to_owned())
                    .collect()
            })
            .collect();
        assert_eq!(
            labels,
            [
                vec!["0"],
                vec!["1", "2", "3"],
                vec!["4", "5", "6"],
                vec!["7"],
                vec![]
            ]
        );
        assert_eq!(
            json.as_object().unwrap().len(),
            1,
            "only inline_keyboard: {json}"
        );
        assert_eq!(InlineKeyboard::grid((1..=4).map(b), 2).rows().len(), 2);
        assert_eq!(
            markup(InlineKeyboard::new()),
            json!({"inline_keyboard": []})
        );
        assert_eq!(
            markup(InlineKeyboard::from(Button::pay("Pay"))),
            json!({"inline_keyboard": [[{"text": "Pay", "pay": true}]]})
        );
    }

    #[test]
    #[should_panic(expected = "columns must be at least 1")]
    fn a_grid_of_zero_columns_panics() {
        let _ = InlineKeyboard::grid([Button::pay("p")], 0);
    }

    #[test]
    fn an_inline_keyboard_goes_to_send_and_edit_methods() {
        let keyboard = || InlineKeyboard::new().row([Button::url("a", "https://x.org")]);
        let send = serde_json::to_value(SendMessage::new(1, "t").reply_markup(keyboard())).unwrap();
        let edit = serde_json::to_value(EditMessageText::new().reply_markup(keyboard())).unwrap();
        assert_eq!(send["reply_markup"], edit["reply_markup"]);
        assert_eq!(
            send["reply_markup"]["inline_keyboard"][0][0]["url"],
            "https://x.org"
        );
    }

    #[test]
    fn every_reply_constructor_sets_its_one_request_field() {
        let cases = [
            (ReplyButton::text("a"), json!({"text": "a"})),
            (
                ReplyButton::contact("a"),
                json!({"text": "a", "request_contact": true}),
            ),
            (
                ReplyButton::location("a"),
                json!({"text": "a", "request_location": true}),
            ),
            (
                ReplyButton::poll("a", PollKind::Any),
                json!({"text": "a", "request_poll": {}}),
            ),
            (
                ReplyButton::poll("a", PollKind::Quiz),
                json!({"text": "a", "request_poll": {"type": "quiz"}}),
            ),
            (
                ReplyButton::poll("a", PollKind::Regular),
                json!({"text": "a", "request_poll": {"type": "regular"}}),
            ),
            (
                ReplyButton::users("a", KeyboardButtonRequestUsers::new(1).max_quantity(3))
                    .unwrap(),
                json!({"text": "a", "request_users": {"request_id": 1, "max_quantity": 3}}),
            ),
            (
                ReplyButton::chat("a", KeyboardButtonRequestChat::new(2, true)),
                json!({"text": "a", "request_chat": {"request_id": 2, "chat_is_channel": true}}),
            ),
            (
                ReplyButton::managed_bot("a", KeyboardButtonRequestManagedBot::new(3)),
                json!({"text": "a", "request_managed_bot": {"request_id": 3}}),
            ),
            (
                ReplyButton::web_app("a", "https://app.x.org"),
                json!({"text": "a", "web_app": {"url": "https://app.x.org"}}),
            ),
            (
                ReplyButton::text("a").style("danger").icon("1"),
                json!({"text": "a", "style": "danger", "icon_custom_emoji_id": "1"}),
            ),
        ];
        for (button, expected) in cases {
            assert_eq!(reply(button), expected);
        }
    }

    #[test]
    fn a_reply_button_asks_for_at_most_one_thing() {
        let two = KeyboardButton::new("x")
            .request_contact(true)
            .request_location(true);
        let err = ReplyButton::try_from(two).unwrap_err();
        assert_eq!(
            err.to_string(),
            "reply button \"x\": 2 requests (request_contact, request_location), telegram takes at most one"
        );
        assert!(ReplyButton::try_from(KeyboardButton::new("x").request_contact(false)).is_ok());
        for quantity in [0, 11] {
            let err = ReplyButton::users(
                "u",
                KeyboardButtonRequestUsers::new(1).max_quantity(quantity),
            )
            .unwrap_err();
            assert_eq!(
                err,
                KeyboardError::MaxQuantity {
                    text: "u".into(),
                    quantity
                }
            );
        }
        assert!(
            ReplyButton::users("u", KeyboardButtonRequestUsers::new(1).max_quantity(10)).is_ok()
        );
    }

    #[test]
    fn reply_keyboard_switches_are_absent_unless_set() {
        let plain = ReplyKeyboard::new().row([ReplyButton::text("a")]);
        assert_eq!(markup(plain), json!({"keyboard": [[{"text": "a"}]]}));
        let all = ReplyKeyboard::grid(["a", "b", "c"].map(ReplyButton::text), 2)
            .resize()
            .one_time()
            .persistent()
            .selective()
            .placeholder("Pick one")
            .unwrap();
        assert_eq!(
            markup(all),
            json!({
                "keyboard": [[{"text": "a"}, {"text": "b"}], [{"text": "c"}]],
                "resize_keyboard": true,
                "one_time_keyboard": true,
                "is_persistent": true,
                "selective": true,
                "input_field_placeholder": "Pick one",
            })
        );
    }

    #[test]
    fn a_placeholder_is_one_to_64_characters() {
        assert!(ReplyKeyboard::new().placeholder("x".repeat(64)).is_ok());
        let err = ReplyKeyboard::new()
            .placeholder("x".repeat(65))
            .unwrap_err();
        assert_eq!(err, KeyboardError::Placeholder { units: 65 });
        assert_eq!(
            err.to_string(),
            "keyboard: input field placeholder is 65 characters, telegram takes 1 to 64"
        );
        assert!(ForcedReply::new().placeholder("").is_err());
        assert!(ForcedReply::new().placeholder("👍".repeat(33)).is_err());
    }

    #[test]
    fn remove_and_force_reply_serialise_as_telegram_expects() {
        assert_eq!(
            markup(RemoveKeyboard::new().selective()),
            json!({"remove_keyboard": true, "selective": true})
        );
        assert_eq!(markup(ForcedReply::new()), json!({"force_reply": true}));
        assert_eq!(
            markup(ForcedReply::new().selective()),
            json!({"force_reply": true, "selective": true})
        );
    }
}
