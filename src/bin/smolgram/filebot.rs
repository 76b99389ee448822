//! The bot a config file describes (`smolgram --config bot.toml`), on the
//! library's [`Bot`]: commands answered with text and buttons, or with a
//! program's output; SIGHUP reloads the file (see: #14).
//!
//! Default deny: a command runs only for a user or chat on its allowlist
//! (the command's, else the bot's); anyone else gets the refusal text if
//! the file has one, and nothing happens. A pressed button counts as its
//! command typed by whoever pressed it. Plain text (no command) is answered
//! only in private chats, with `default_reply`, and only to those allowed.
//!
//! A reload parses the new file on a thread of its own; a good one is used
//! from the next update on, a bad one is one error line and the old file
//! stays. A run in progress keeps the file it started with.
//!
//! Must not: run anything for someone not on the list, send a program's
//! output uncleaned (see `program::clean`), or stop the bot over a reload.

use std::cell::RefCell;
use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::StreamExt;
use smolgram::api::methods::{SendDocument, SendMessage};
use smolgram::api::types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup};
use smolgram::api::{Token, Upload};
use smolgram::text::{self, MESSAGE_LIMIT};
use smolgram::{Bot, Context, Error, HandlerResult};

use crate::botfile::{self, Action, BotFile, CommandSpec};
use crate::program::{self, End, Outcome, Program};

/// Output of more messages than this goes as one `output.txt` instead.
const MAX_PARTS: usize = 3;

/// The file in use, swapped whole by a reload.
type Current = Arc<Mutex<Arc<BotFile>>>;

/// What every handler shares.
struct Shared {
    current: Current,
    /// Commands with a run in progress (those not `concurrent`).
    running: RefCell<HashSet<String>>,
    /// For redacting it from programs' output.
    token: Token,
}

impl Shared {
    fn file(&self) -> Arc<BotFile> {
        // A reload only swaps the Arc: a poisoned lock still holds a whole file.
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Loads `path` and builds its bot; SIGHUP reloads `path` from then on.
/// A program's timeout over `handler_timeout` is cut to it (the
/// dispatcher abandons the handler then, which kills the program): warned.
///
/// # Errors
/// [`Error::Config`] for the file (`path:line:column: …`), or [`Error::Io`]
/// if the SIGHUP handler cannot be installed.
pub(crate) fn bot(path: &Path, token: Token, handler_timeout: Duration) -> Result<Bot, Error> {
    let file = botfile::load(path)?;
    for command in &file.commands {
        match &command.run {
            Some(run) if run.timeout > handler_timeout => log::warn!(
                "command={} timeout={:?} is over --handler-timeout {handler_timeout:?}, which ends it first",
                command.name,
                run.timeout
            ),
            _ => {}
        }
    }
    log::info!(
        "config loaded path={} commands={}",
        path.display(),
        file.commands.len()
    );
    let current: Current = Arc::new(Mutex::new(Arc::new(file)));
    reload_on_sighup(path.to_owned(), current.clone())?;
    let shared = Rc::new(Shared {
        current,
        running: RefCell::default(),
        token,
    });
    let on_text = shared.clone();
    Ok(Bot::new()
        .text(move |ctx| on_text_message(on_text.clone(), ctx))
        .callback(move |ctx| on_button(shared.clone(), ctx)))
}

/// A thread that waits for SIGHUP and loads the file again each time.
fn reload_on_sighup(path: PathBuf, current: Current) -> Result<(), Error> {
    let mut signals =
        async_signal::Signals::new([async_signal::Signal::Hup]).map_err(|e| Error::Io {
            what: "cannot install the SIGHUP handler",
            kind: e.kind(),
        })?;
    std::thread::Builder::new()
        .name("smolgram-reload".into())
        .spawn(move || {
            while futures_lite::future::block_on(signals.next()).is_some() {
                match botfile::load(&path) {
                    Ok(file) => {
                        log::info!("config reloaded commands={}", file.commands.len());
                        *current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(file);
                    }
                    Err(e) => log::error!("config reload refused, the old one stays: {e}"),
                }
            }
        })
        .map_err(|e| Error::Io {
            what: "cannot start the reload thread",
            kind: e.kind(),
        })?;
    Ok(())
}

/// A message or a file to send.
enum Out {
    Text(SendMessage),
    File(SendDocument),
}

/// A plain text to `chat`.
fn text(chat: ChatId, text: impl Into<String>) -> Out {
    Out::Text(SendMessage::new(chat, text.into()))
}

/// Sends `out` in order: every handler's messages go through this one
/// boxed future, whose code is in the binary once.
fn say<'a>(ctx: &'a Context, out: Vec<Out>) -> Pin<Box<dyn Future<Output = HandlerResult> + 'a>> {
    Box::pin(async move {
        for out in out {
            match out {
                Out::Text(message) => drop(ctx.send_message(&message).await?),
                Out::File(document) => drop(ctx.send(&document).await?),
            }
        }
        Ok(())
    })
}

/// A text message: a command of the file, else the default reply.
async fn on_text_message(shared: Rc<Shared>, ctx: Context) -> HandlerResult {
    let file = shared.file();
    let (Some(chat), Some(message)) = (ctx.chat_id(), ctx.text()) else {
        return Ok(());
    };
    let user = ctx.from().map(|u| u.id.0);
    let private = user == Some(chat.0);
    let (name, args) = match message.strip_prefix('/') {
        Some(line) => {
            let (word, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            // `/cmd@OurBot`: the library already sent other bots' commands elsewhere.
            (
                Some(word.split('@').next().unwrap_or_default().to_lowercase()),
                args,
            )
        }
        None => (None, ""),
    };
    if let Some(command) = name.as_deref().and_then(|n| file.command(n)) {
        return trigger(&shared, &ctx, &file, command, chat, user, args).await;
    }
    // Plain text or an unknown command (in a group perhaps another bot's):
    // answered only in a private chat.
    let out = match (&file.default_reply, private && file.allows_any(user, None)) {
        (_, _) if !private => vec![],
        (Some(reply), true) => vec![text(chat, reply.as_str())],
        (None, true) => vec![],
        (_, false) => refusal(&file, chat),
    };
    say(&ctx, out).await
}

/// A pressed button: `b:<command>:<row>:<column>`.
async fn on_button(shared: Rc<Shared>, ctx: Context) -> HandlerResult {
    let file = shared.file();
    let data = ctx.callback_data().unwrap_or_default().to_owned();
    let user = ctx.callback_query().map(|q| q.from.id.0);
    let button = parse_button(&data).and_then(|(name, row, column)| {
        let command = file.command(name)?;
        Some((command, command.buttons.get(row)?.get(column)?))
    });
    let chat = ctx.chat_id();
    let (Some((command, button)), Some(chat)) = (button, chat) else {
        // A button of an older file, or a message Telegram no longer shows.
        ctx.answer_callback_query(Some("This button is no longer in use."))
            .await?;
        return Ok(());
    };
    if !file.allows(command, user, Some(chat.0)) {
        ctx.answer_callback_query(file.refusal.as_deref()).await?;
        return Ok(());
    }
    ctx.answer_callback_query(None).await?;
    match &button.action {
        Action::Reply(reply) => say(&ctx, vec![text(chat, reply.as_str())]).await,
        Action::Command(target) => match file.command(target) {
            Some(target) => trigger(&shared, &ctx, &file, target, chat, user, "").await,
            None => Ok(()),
        },
        // Telegram opens URL buttons itself.
        Action::Url(_) => Ok(()),
    }
}

/// `command` asked for by `user` in `chat` with `args`: checked, then its
/// reply, then its program and what it printed.
async fn trigger(
    shared: &Shared,
    ctx: &Context,
    file: &BotFile,
    command: &CommandSpec,
    chat: ChatId,
    user: Option<i64>,
    args: &str,
) -> HandlerResult {
    let words: Vec<&str> = args.split_whitespace().collect();
    let (before, turn) = prepare(shared, file, command, chat, user, &words);
    say(ctx, before).await?;
    let (Some(run), Some(_turn)) = (&command.run, turn) else {
        return Ok(());
    };
    log::info!(
        "run command={} user={} args={}",
        command.name,
        user.unwrap_or_default(),
        words.len()
    );
    let outcome = program::run(run, &words).await;
    let report = report(&command.name, run, &outcome, &shared.token);
    say(ctx, output(chat, &command.name, report)).await
}

/// What goes out before `command` runs, and its turn to run (`None`: it
/// does not run: refused, wrong arguments, no program, running already).
fn prepare<'a>(
    shared: &'a Shared,
    file: &BotFile,
    command: &CommandSpec,
    chat: ChatId,
    user: Option<i64>,
    words: &[&str],
) -> (Vec<Out>, Option<Turn<'a>>) {
    if !file.allows(command, user, Some(chat.0)) {
        log::info!(
            "refused command={} user={} chat={}",
            command.name,
            user.unwrap_or_default(),
            chat.0
        );
        return (refusal(file, chat), None);
    }
    if words.len() > command.max_args {
        let why = match command.max_args {
            0 => format!("/{} takes no arguments.", command.name),
            n => format!("/{} takes at most {n} arguments.", command.name),
        };
        return (vec![text(chat, why)], None);
    }
    let mut out = Vec::new();
    if let Some(reply) = &command.reply {
        let mut message = SendMessage::new(chat, reply.as_str());
        if let Some(mode) = command.parse_mode {
            message = message.parse_mode(mode);
        }
        if !command.buttons.is_empty() {
            message = message.reply_markup(keyboard(command));
        }
        out.push(Out::Text(message));
    }
    if command.run.is_none() {
        return (out, None);
    }
    let turn = Turn::take(shared, command);
    if turn.is_none() {
        let busy = format!(
            "/{} is still running; try again when it is done.",
            command.name
        );
        out.push(text(chat, busy));
    }
    (out, turn)
}

/// What a run printed, cleaned, with a last line on how it ended unless
/// it succeeded.
fn report(name: &str, run: &Program, outcome: &Outcome, token: &Token) -> String {
    let mut report = program::clean(&outcome.output, token);
    let note = match &outcome.end {
        End::Exited(status) if status.success() => None,
        End::Exited(status) => Some(match status.code() {
            Some(code) => format!("[exit status {code}]"),
            None => "[killed by a signal]".to_owned(),
        }),
        End::Cut => Some(format!(
            "[output cut at {} bytes; the program was stopped]",
            run.max_output
        )),
        End::TimedOut => Some(format!("[stopped after {} s]", run.timeout.as_secs())),
        End::NotStarted(e) => {
            log::warn!("run command={name} could not start error={e}");
            Some(format!("[could not start: {e}]"))
        }
    };
    if let Some(note) = note {
        if !report.is_empty() && !report.ends_with('\n') {
            report.push('\n');
        }
        report.push_str(&note);
    }
    if report.trim().is_empty() {
        report = "(no output)".to_owned();
    }
    report
}

/// `report` as messages in order, or over [`MAX_PARTS`] of them as one file.
fn output(chat: ChatId, name: &str, report: String) -> Vec<Out> {
    let parts = text::split(&report, &[], MESSAGE_LIMIT);
    if parts.len() > MAX_PARTS {
        let file = Upload::bytes(format!("{name}.txt"), report.into_bytes());
        return vec![Out::File(SendDocument::new(chat, file))];
    }
    parts
        .into_iter()
        .map(|part| text(chat, part.text))
        .collect()
}

/// The refusal text, if the file has one.
fn refusal(file: &BotFile, chat: ChatId) -> Vec<Out> {
    file.refusal
        .iter()
        .map(|r| text(chat, r.as_str()))
        .collect()
}

/// A command's buttons; each callback button's data names its place.
fn keyboard(command: &CommandSpec) -> InlineKeyboardMarkup {
    let rows = command.buttons.iter().enumerate().map(|(r, row)| {
        row.iter()
            .enumerate()
            .map(|(c, button)| {
                let key = InlineKeyboardButton::new(button.text.as_str());
                match &button.action {
                    Action::Url(url) => key.url(url.as_str()),
                    _ => key.callback_data(format!("b:{}:{r}:{c}", command.name)),
                }
            })
            .collect()
    });
    InlineKeyboardMarkup::new(rows.collect::<Vec<Vec<_>>>())
}

/// `b:<command>:<row>:<column>` → its parts.
fn parse_button(data: &str) -> Option<(&str, usize, usize)> {
    let mut parts = data.strip_prefix("b:")?.split(':');
    let name = parts.next()?;
    let row = parts.next()?.parse().ok()?;
    let column = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((name, row, column))
}

/// A command's one run at a time: taken while it runs, given back on drop.
struct Turn<'a> {
    shared: &'a Shared,
    name: Option<String>,
}

impl<'a> Turn<'a> {
    /// `None` if `command` is not concurrent and runs already.
    fn take(shared: &'a Shared, command: &CommandSpec) -> Option<Turn<'a>> {
        if command.concurrent {
            return Some(Turn { shared, name: None });
        }
        let fresh = shared.running.borrow_mut().insert(command.name.clone());
        fresh.then(|| Turn {
            shared,
            name: Some(command.name.clone()),
        })
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Some(name) = &self.name {
            self.shared.running.borrow_mut().remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_data_names_its_command_and_place_and_nothing_else() {
        assert_eq!(parse_button("b:uptime:0:1"), Some(("uptime", 0, 1)));
        for bad in ["", "b:", "b:x:0", "b:x:0:1:2", "x:uptime:0:1", "b:x:-1:0"] {
            assert_eq!(parse_button(bad), None, "{bad}");
        }
    }
}
