//! A bot's config file (`--config bot.toml`): its model and its loading,
//! every mistake one line with `file:line:column` (see: #14).
//!
//! ```toml
//! [bot]
//! allow = [123456789]            # users or chats that may trigger anything
//! refusal = "Not for you."       # optional; others get nothing at all without it
//! default_reply = "Try /help"    # optional; for text that is no command
//!
//! [[command]]
//! name = "uptime"
//! run = ["/usr/bin/uptime", "-p"] # a fixed argv, no shell
//! ```
//!
//! See `contrib/pi-status.toml` for every key. Unknown keys are errors, so
//! a misspelt `alow` cannot quietly open a command to everyone.
//!
//! Must not: read anything but the file it is given, or accept a command
//! nobody may trigger without saying so.

use std::path::Path;
use std::time::Duration;

use smolgram::Error;

use crate::program::Program;
use crate::toml::{self, Entry, Pos, Table, Value};

/// The most bytes of a config file read.
const MAX_FILE: u64 = 1024 * 1024;

/// A program's timeout unless its command names one.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The output kept unless a command names its own cap.
const DEFAULT_MAX_OUTPUT: usize = 64 * 1024;

/// The user's words a command taking arguments gets, unless it says.
const DEFAULT_MAX_ARGS: usize = 8;

/// The whole bot a config file describes.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct BotFile {
    /// The users and chats that may trigger commands without their own list.
    pub(crate) allow: Vec<i64>,
    /// Sent to anyone else who tries; `None`: they get no answer.
    pub(crate) refusal: Option<String>,
    /// The answer to text that is no known command.
    pub(crate) default_reply: Option<String>,
    /// The commands, in file order.
    pub(crate) commands: Vec<CommandSpec>,
}

/// One `[[command]]`.
#[derive(Debug, PartialEq)]
pub(crate) struct CommandSpec {
    /// `uptime` for `/uptime`.
    pub(crate) name: String,
    /// Who may trigger it, when not the bot's `allow`.
    pub(crate) allow: Option<Vec<i64>>,
    /// A text sent first.
    pub(crate) reply: Option<String>,
    /// `reply`'s parse mode: `HTML` or `MarkdownV2`.
    pub(crate) parse_mode: Option<&'static str>,
    /// Inline buttons under `reply`, in rows.
    pub(crate) buttons: Vec<Vec<Button>>,
    /// The program to run, whose output is sent back.
    pub(crate) run: Option<Program>,
    /// The most user words appended to the argv; 0: the command takes none.
    pub(crate) max_args: usize,
    /// Whether runs may overlap; otherwise one at a time.
    pub(crate) concurrent: bool,
}

/// An inline button.
#[derive(Debug, PartialEq)]
pub(crate) struct Button {
    pub(crate) text: String,
    pub(crate) action: Action,
}

/// What a button does.
#[derive(Debug, PartialEq)]
pub(crate) enum Action {
    /// Sends this text.
    Reply(String),
    /// Triggers this command, as if typed (its allowlist applies).
    Command(String),
    /// Opens this URL (Telegram does; the bot sees nothing).
    Url(String),
}

impl BotFile {
    /// The command `name`, if the file has it.
    pub(crate) fn command(&self, name: &str) -> Option<&CommandSpec> {
        self.commands.iter().find(|c| c.name == name)
    }

    /// Whether `user` or `chat` is on the bot's own list.
    pub(crate) fn allows_any(&self, user: Option<i64>, chat: Option<i64>) -> bool {
        [user, chat]
            .iter()
            .flatten()
            .any(|id| self.allow.contains(id))
    }

    /// Whether `user` in `chat` may trigger `command`.
    pub(crate) fn allows(
        &self,
        command: &CommandSpec,
        user: Option<i64>,
        chat: Option<i64>,
    ) -> bool {
        let list = command.allow.as_ref().unwrap_or(&self.allow);
        [user, chat].iter().flatten().any(|id| list.contains(id))
    }
}

/// Reads and checks the config file at `path`.
///
/// # Errors
/// [`Error::Config`]: `path:line:column: what is wrong`, or the file unreadable.
pub(crate) fn load(path: &Path) -> Result<BotFile, Error> {
    use std::io::Read;
    let shown = path.display();
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_string(&mut text))
        .map_err(|e| Error::Config(format!("config {shown}: {e}")))?;
    if text.len() as u64 > MAX_FILE {
        return Err(Error::Config(format!(
            "config {shown}: over {MAX_FILE} bytes"
        )));
    }
    parse(&text).map_err(|(pos, message)| {
        Error::Config(format!("{shown}:{}:{}: {message}", pos.line, pos.column))
    })
}

/// An error at a place in the file.
type Fault = (Pos, String);

/// Checks the parsed text.
pub(crate) fn parse(text: &str) -> Result<BotFile, Fault> {
    let root = toml::parse(text).map_err(|e| (e.pos, e.message))?;
    let mut top = Keys::new(&root, "the file");
    let mut file = BotFile::default();
    if let Some(bot) = top.take("bot") {
        let mut bot = Keys::table(bot, "[bot]")?;
        file.allow = bot.take("allow").map(ids).transpose()?.unwrap_or_default();
        file.refusal = bot.take("refusal").map(text_of).transpose()?;
        file.default_reply = bot.take("default_reply").map(text_of).transpose()?;
        bot.done()?;
    }
    let commands = match top.take("command") {
        Some(Entry {
            value: Value::Array(items),
            ..
        }) => items.as_slice(),
        Some(other) => {
            return Err(fault(
                other.value_pos,
                "`command` must be [[command]] tables",
            ))
        }
        None => &[],
    };
    top.done()?;
    for (pos, item) in commands {
        let Value::Table(table) = item else {
            return Err(fault(*pos, "`command` must be [[command]] tables"));
        };
        let command = command(table, *pos)?;
        if file.command(&command.name).is_some() {
            return Err(fault(*pos, format!("a second command `{}`", command.name)));
        }
        file.commands.push(command);
    }
    check_buttons(&file, commands)?;
    Ok(file)
}

/// One `[[command]]` table, at `pos`.
fn command(table: &Table, pos: Pos) -> Result<CommandSpec, Fault> {
    let mut keys = Keys::new(table, "[[command]]");
    let name_entry = keys
        .take("name")
        .ok_or_else(|| fault(pos, "a [[command]] without `name`"))?;
    let name = text_of(name_entry)?;
    let valid = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(fault(
            name_entry.value_pos,
            "a command name is 1-32 of a-z, 0-9 and _",
        ));
    }
    let allow = keys.take("allow").map(ids).transpose()?;
    let reply = keys.take("reply").map(text_of).transpose()?;
    let parse_mode = keys.take("parse_mode").map(parse_mode).transpose()?;
    let buttons = keys
        .take("buttons")
        .map(buttons)
        .transpose()?
        .unwrap_or_default();
    let run = keys.take("run").map(argv).transpose()?;
    let takes_args = keys.take("args").map(boolean).transpose()?.unwrap_or(false);
    let max_args = keys
        .take("max_args")
        .map(|e| number(e, 1, 64))
        .transpose()?
        .unwrap_or(DEFAULT_MAX_ARGS as i64) as usize;
    let timeout = keys
        .take("timeout")
        .map(|e| number(e, 1, 3600))
        .transpose()?;
    let max_output = keys
        .take("max_output")
        .map(|e| number(e, 1, 1 << 20))
        .transpose()?;
    let env = keys.take("env").map(env).transpose()?.unwrap_or_default();
    let concurrent = keys
        .take("concurrent")
        .map(boolean)
        .transpose()?
        .unwrap_or(false);
    let run_only = [
        "args",
        "max_args",
        "timeout",
        "max_output",
        "env",
        "concurrent",
    ];
    if run.is_none() {
        if let Some(key) = run_only.iter().find_map(|k| table.get(k)) {
            return Err(fault(key.key_pos, format!("`{}` needs `run`", key.key)));
        }
        if reply.is_none() {
            return Err(fault(
                pos,
                format!("command `{name}` has neither `reply` nor `run`"),
            ));
        }
    }
    if !buttons.is_empty() && reply.is_none() {
        return Err(fault(
            pos,
            format!("command `{name}` has `buttons` but no `reply` to put them under"),
        ));
    }
    keys.done()?;
    Ok(CommandSpec {
        allow,
        reply,
        parse_mode,
        buttons,
        run: run.map(|argv| Program {
            argv,
            env,
            timeout: timeout.map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(s as u64)),
            max_output: max_output.map_or(DEFAULT_MAX_OUTPUT, |n| n as usize),
        }),
        max_args: if takes_args { max_args } else { 0 },
        concurrent,
        name,
    })
}

/// Every `command = "…"` button names a command of the file.
fn check_buttons(file: &BotFile, tables: &[(Pos, Value)]) -> Result<(), Fault> {
    for (command, (pos, _)) in file.commands.iter().zip(tables) {
        for button in command.buttons.iter().flatten() {
            if let Action::Command(target) = &button.action {
                if file.command(target).is_none() {
                    return Err(fault(
                        *pos,
                        format!("button `{}` names no command `{target}`", button.text),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A table's keys, taken one by one; [`Keys::done`] refuses what is left.
struct Keys<'a> {
    table: &'a Table,
    what: &'static str,
    taken: Vec<&'a str>,
}

impl<'a> Keys<'a> {
    fn new(table: &'a Table, what: &'static str) -> Keys<'a> {
        Keys {
            table,
            what,
            taken: Vec::new(),
        }
    }

    /// The keys of `entry`, which must be a table.
    fn table(entry: &'a Entry, what: &'static str) -> Result<Keys<'a>, Fault> {
        match &entry.value {
            Value::Table(table) => Ok(Keys::new(table, what)),
            _ => Err(fault(
                entry.key_pos,
                format!("`{}` must be a table", entry.key),
            )),
        }
    }

    fn take(&mut self, key: &'a str) -> Option<&'a Entry> {
        self.taken.push(key);
        self.table.get(key)
    }

    fn done(self) -> Result<(), Fault> {
        match self
            .table
            .entries
            .iter()
            .find(|e| !self.taken.contains(&e.key.as_str()))
        {
            Some(e) => Err(fault(
                e.key_pos,
                format!("unknown key `{}` in {}", e.key, self.what),
            )),
            None => Ok(()),
        }
    }
}

fn fault(pos: Pos, message: impl Into<String>) -> Fault {
    (pos, message.into())
}

fn text_of(entry: &Entry) -> Result<String, Fault> {
    match &entry.value {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::String(_) => Err(fault(entry.value_pos, format!("`{}` is empty", entry.key))),
        _ => Err(fault(
            entry.value_pos,
            format!("`{}` must be a string", entry.key),
        )),
    }
}

fn boolean(entry: &Entry) -> Result<bool, Fault> {
    match entry.value {
        Value::Bool(b) => Ok(b),
        _ => Err(fault(
            entry.value_pos,
            format!("`{}` must be true or false", entry.key),
        )),
    }
}

fn number(entry: &Entry, min: i64, max: i64) -> Result<i64, Fault> {
    match entry.value {
        Value::Integer(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(fault(
            entry.value_pos,
            format!("`{}` must be a whole number, {min}-{max}", entry.key),
        )),
    }
}

fn parse_mode(entry: &Entry) -> Result<&'static str, Fault> {
    match &entry.value {
        Value::String(s) if s.eq_ignore_ascii_case("html") => Ok("HTML"),
        Value::String(s) if s.eq_ignore_ascii_case("markdown") => Ok("MarkdownV2"),
        _ => Err(fault(
            entry.value_pos,
            "`parse_mode` must be \"html\" or \"markdown\"",
        )),
    }
}

/// A list of user or chat ids.
fn ids(entry: &Entry) -> Result<Vec<i64>, Fault> {
    let Value::Array(items) = &entry.value else {
        return Err(fault(
            entry.value_pos,
            format!("`{}` must be a list of user or chat ids", entry.key),
        ));
    };
    items
        .iter()
        .map(|(pos, v)| match v {
            Value::Integer(id) if *id != 0 => Ok(*id),
            _ => Err(fault(
                *pos,
                "a user or chat id is a number such as 123456789",
            )),
        })
        .collect()
}

/// `run`: a non-empty list of strings, the first an absolute path.
fn argv(entry: &Entry) -> Result<Vec<String>, Fault> {
    let Value::Array(items) = &entry.value else {
        return Err(fault(
            entry.value_pos,
            "`run` must be a list: the program, then its arguments",
        ));
    };
    let argv = items
        .iter()
        .map(|(pos, v)| match v {
            Value::String(s) if !s.contains('\0') => Ok(s.clone()),
            _ => Err(fault(*pos, "each of `run` must be a string")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    match argv.first() {
        None => Err(fault(entry.value_pos, "`run` is empty")),
        Some(program) if !program.starts_with('/') => Err(fault(
            items[0].0,
            "the program must be an absolute path: there is no PATH lookup",
        )),
        Some(_) => Ok(argv),
    }
}

/// `env`: a table of strings, never a token's variable.
fn env(entry: &Entry) -> Result<Vec<(String, String)>, Fault> {
    let Value::Table(table) = &entry.value else {
        return Err(fault(
            entry.value_pos,
            "`env` must be a table such as { LANG = \"C\" }",
        ));
    };
    table
        .entries
        .iter()
        .map(|e| {
            if e.key.contains("TOKEN") || e.key.is_empty() || e.key.contains('=') {
                return Err(fault(
                    e.key_pos,
                    format!("`{}` cannot be passed to a program", e.key),
                ));
            }
            Ok((e.key.clone(), text_of(e)?))
        })
        .collect()
}

/// `buttons`: rows of `{ text, reply | command | url }`.
fn buttons(entry: &Entry) -> Result<Vec<Vec<Button>>, Fault> {
    let rows_wrong = || {
        fault(
            entry.value_pos,
            "`buttons` must be rows: [[{ text = …, reply = … }]]",
        )
    };
    let Value::Array(rows) = &entry.value else {
        return Err(rows_wrong());
    };
    rows.iter()
        .map(|(_, row)| {
            let Value::Array(row) = row else {
                return Err(rows_wrong());
            };
            row.iter().map(|(pos, b)| button(*pos, b)).collect()
        })
        .collect()
}

fn button(pos: Pos, value: &Value) -> Result<Button, Fault> {
    let Value::Table(table) = value else {
        return Err(fault(
            pos,
            "a button is { text = …, reply | command | url = … }",
        ));
    };
    let mut keys = Keys::new(table, "a button");
    let text = keys
        .take("text")
        .ok_or_else(|| fault(pos, "a button without `text`"))
        .and_then(text_of)?;
    let reply = keys
        .take("reply")
        .map(text_of)
        .transpose()?
        .map(Action::Reply);
    let command = keys
        .take("command")
        .map(text_of)
        .transpose()?
        .map(Action::Command);
    let url = keys.take("url").map(text_of).transpose()?.map(Action::Url);
    keys.done()?;
    let mut actions = [reply, command, url].into_iter().flatten();
    match (actions.next(), actions.next()) {
        (Some(action), None) => Ok(Button { text, action }),
        _ => Err(fault(
            pos,
            format!("button `{text}` needs one of `reply`, `command` or `url`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        let (pos, message) = parse(text).unwrap_err();
        format!("{}:{}: {message}", pos.line, pos.column)
    }

    #[test]
    fn a_whole_file_becomes_the_model() {
        let file = parse(
            r#"
[bot]
allow = [1, -100]
refusal = "no"
[[command]]
name = "start"
reply = "hi"
buttons = [[{ text = "Up", command = "uptime" }, { text = "Site", url = "https://e.org" }]]
[[command]]
name = "uptime"
allow = [1]
run = ["/usr/bin/uptime", "-p"]
args = true
max_args = 2
timeout = 5
env = { LANG = "C" }
"#,
        )
        .unwrap();
        assert_eq!(file.allow, [1, -100]);
        assert_eq!(file.refusal.as_deref(), Some("no"));
        let start = file.command("start").unwrap();
        assert_eq!(start.buttons[0][0].action, Action::Command("uptime".into()));
        assert_eq!(start.max_args, 0);
        let uptime = file.command("uptime").unwrap();
        let run = uptime.run.as_ref().unwrap();
        assert_eq!(run.argv, ["/usr/bin/uptime", "-p"]);
        assert_eq!(run.timeout, Duration::from_secs(5));
        assert_eq!(run.env, [("LANG".to_string(), "C".to_string())]);
        assert_eq!(uptime.max_args, 2);
        assert!(file.allows(uptime, Some(1), Some(1)));
        assert!(
            !file.allows(uptime, Some(2), Some(-100)),
            "its own list replaces the bot's"
        );
        assert!(
            file.allows(start, Some(2), Some(-100)),
            "a chat on the list lets anyone in it"
        );
        assert!(!file.allows(start, None, None));
    }

    #[test]
    fn nobody_is_allowed_unless_listed() {
        let file = parse("[[command]]\nname = \"hi\"\nreply = \"hi\"\n").unwrap();
        let hi = file.command("hi").unwrap();
        assert!(!file.allows(hi, Some(1), Some(1)));
    }

    #[test]
    fn mistakes_are_one_line_at_their_place() {
        let cases = [
            ("[bot]\nalow = [1]\n", "2:1: unknown key `alow` in [bot]"),
            ("[[command]]\nname = \"x\"\n", "1:1: command `x` has neither `reply` nor `run`"),
            ("[[command]]\nname = \"Up\"\nreply = \"x\"\n", "2:8: a command name is 1-32 of a-z, 0-9 and _"),
            ("[[command]]\nname = \"x\"\nrun = [\"uptime\"]\n", "3:8: the program must be an absolute path: there is no PATH lookup"),
            ("[[command]]\nname = \"x\"\nreply = \"x\"\ntimeout = 5\n", "4:1: `timeout` needs `run`"),
            ("[[command]]\nname = \"x\"\nrun = [\"/bin/true\"]\ntimeout = 0\n", "4:11: `timeout` must be a whole number, 1-3600"),
            ("[[command]]\nname = \"x\"\nrun = [\"/bin/true\"]\nenv = { TELEGRAM_BOT_TOKEN = \"x\" }\n", "4:9: `TELEGRAM_BOT_TOKEN` cannot be passed to a program"),
            ("[[command]]\nname = \"x\"\nreply = \"x\"\nbuttons = [[{ text = \"b\", command = \"y\" }]]\n", "1:1: button `b` names no command `y`"),
            ("[[command]]\nname = \"x\"\nreply = \"x\"\n[[command]]\nname = \"x\"\nreply = \"y\"\n", "4:1: a second command `x`"),
            ("[bot]\nallow = [\"me\"]\n", "2:10: a user or chat id is a number such as 123456789"),
        ];
        for (text, want) in cases {
            assert_eq!(error(text), want, "{text}");
        }
    }

    #[test]
    fn load_names_the_file_and_reads_no_more_than_the_cap() {
        let dir = std::env::temp_dir().join(format!("smolgram-botfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bot.toml");
        std::fs::write(&path, "[bot]\nallow = [1]\nx = 1\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.ends_with("bot.toml:3:1: unknown key `x` in [bot]"), "{e}");
        let e = load(&dir.join("missing.toml")).unwrap_err().to_string();
        assert!(
            e.contains("missing.toml") && e.contains("No such file"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
