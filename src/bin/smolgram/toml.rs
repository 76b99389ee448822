//! The part of TOML 1.0 a bot's config file needs, parsed with the line and
//! column of every key and value, so that a mistake, here or in the
//! config's own checks (`botfile`), is one line at its place (see: #14).
//!
//! Supported: comments; `[table]` and `[[array.of.tables]]` headers (dotted
//! too); bare and quoted keys; basic, literal and multi-line strings with
//! TOML's escapes; decimal, hex, octal and binary integers with `_`;
//! booleans; arrays over several lines; inline tables. Not supported, and
//! said so: floats, dates and times, dotted keys left of `=`. The `toml`
//! crate would do all of it for ~138 KB of the static binary; this is a
//! tenth of that.
//!
//! Must not: panic on any input, recurse without a bound, or do I/O.

use std::collections::HashSet;

/// 1-based line and column; the column counts characters, not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: u32,
    pub(crate) column: u32,
}

/// A value.
#[derive(Debug, PartialEq)]
pub(crate) enum Value {
    String(String),
    Integer(i64),
    Bool(bool),
    /// Each item with its position.
    Array(Vec<(Pos, Value)>),
    Table(Table),
}

/// A table's entries in file order.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Table {
    pub(crate) entries: Vec<Entry>,
}

/// One key of a table, with where the key and its value are.
#[derive(Debug, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_pos: Pos,
    pub(crate) value_pos: Pos,
    pub(crate) value: Value,
}

impl Table {
    /// The entry for `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.key == key)
    }
}

/// What is wrong, and where: `message` is one lowercase line.
#[derive(Debug, PartialEq)]
pub(crate) struct ParseError {
    pub(crate) pos: Pos,
    pub(crate) message: String,
}

/// Arrays and inline tables nested deeper than this are refused.
const MAX_DEPTH: usize = 32;

type Result<T> = std::result::Result<T, ParseError>;

/// Parses a whole document into its root table.
pub(crate) fn parse(text: &str) -> Result<Table> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = Parser { s: text, i: 0 };
    let mut root = Table::default();
    // The table that `key = value` lines go to, as a path from the root.
    let mut path: Vec<String> = Vec::new();
    let mut defined: HashSet<Vec<String>> = HashSet::new();
    loop {
        p.skip_blank_lines();
        let Some(c) = p.peek() else {
            return Ok(root);
        };
        let at = p.pos();
        if c == '[' {
            let array = p.s[p.i..].starts_with("[[");
            p.i += if array { 2 } else { 1 };
            let keys = p.dotted_key()?;
            let close = if array { "]]" } else { "]" };
            if !p.s[p.i..].starts_with(close) {
                return Err(p.error(format!("expected `{close}` to close the header")));
            }
            p.i += close.len();
            p.end_of_line()?;
            let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
            open_header(&mut root, &keys, array, at)?;
            if !array && !defined.insert(names.clone()) {
                return Err(fault(
                    at,
                    format!("the table [{}] is defined twice", names.join(".")),
                ));
            }
            path = names;
        } else {
            let (key, key_pos) = p.key()?;
            p.skip_spaces();
            if p.peek() == Some('.') {
                return Err(p.error("dotted keys are not supported left of `=`; use a [table]"));
            }
            if p.peek() != Some('=') {
                return Err(p.error(format!("expected `=` after the key `{key}`")));
            }
            p.i += 1;
            p.skip_spaces();
            let value_pos = p.pos();
            let value = p.value(0)?;
            p.end_of_line()?;
            let table = table_at(&mut root, &path, at)?;
            insert(table, key, key_pos, value_pos, value)?;
        }
    }
}

fn fault(pos: Pos, message: impl Into<String>) -> ParseError {
    ParseError {
        pos,
        message: message.into(),
    }
}

/// Adds `key` to `table`, unless it is there.
fn insert(
    table: &mut Table,
    key: String,
    key_pos: Pos,
    value_pos: Pos,
    value: Value,
) -> Result<()> {
    if table.get(&key).is_some() {
        return Err(fault(key_pos, format!("the key `{key}` is defined twice")));
    }
    table.entries.push(Entry {
        key,
        key_pos,
        value_pos,
        value,
    });
    Ok(())
}

/// The table a `[header]` (or the last table of an `[[array]]`) names,
/// made on the way where missing.
fn open_header(root: &mut Table, keys: &[(String, Pos)], array: bool, at: Pos) -> Result<()> {
    let Some(((last, last_pos), parents)) = keys.split_last() else {
        return Err(fault(at, "a header needs a name"));
    };
    let mut table = root;
    for (key, pos) in parents {
        table = child(table, key, *pos)?;
    }
    match (table.get_mut(last), array) {
        (None, false) => insert(
            table,
            last.clone(),
            *last_pos,
            at,
            Value::Table(Table::default()),
        ),
        (None, true) => {
            let first = vec![(at, Value::Table(Table::default()))];
            insert(table, last.clone(), *last_pos, at, Value::Array(first))
        }
        (Some(entry), true) => match &mut entry.value {
            Value::Array(items) if items.iter().all(|(_, v)| matches!(v, Value::Table(_))) => {
                items.push((at, Value::Table(Table::default())));
                Ok(())
            }
            _ => Err(fault(at, format!("`{last}` is not an array of tables"))),
        },
        (Some(entry), false) => match entry.value {
            // Made on the way by an earlier, longer header: defined now.
            Value::Table(_) => Ok(()),
            _ => Err(fault(at, format!("the key `{last}` is defined twice"))),
        },
    }
}

/// `table`'s sub-table `key` (an array of tables' last one), made if missing.
fn child<'t>(table: &'t mut Table, key: &str, pos: Pos) -> Result<&'t mut Table> {
    if table.get(key).is_none() {
        insert(
            table,
            key.to_owned(),
            pos,
            pos,
            Value::Table(Table::default()),
        )?;
    }
    let entry = table.get_mut(key).expect("inserted above");
    match &mut entry.value {
        Value::Table(t) => Ok(t),
        Value::Array(items) => match items.last_mut() {
            Some((_, Value::Table(t))) => Ok(t),
            _ => Err(fault(pos, format!("`{key}` is not a table"))),
        },
        _ => Err(fault(pos, format!("`{key}` is not a table"))),
    }
}

/// The table at `path` from the root.
fn table_at<'t>(root: &'t mut Table, path: &[String], at: Pos) -> Result<&'t mut Table> {
    let mut table = root;
    for key in path {
        table = child(table, key, at)?;
    }
    Ok(table)
}

/// The text and where in it the parse is.
struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        Some(c)
    }

    fn pos(&self) -> Pos {
        let before = &self.s[..self.i];
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        fault(self.pos(), message)
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.i += 1;
        }
    }

    fn skip_comment(&mut self) {
        if self.peek() == Some('#') {
            let end = self.s[self.i..]
                .find('\n')
                .map_or(self.s.len(), |n| self.i + n);
            self.i = end;
            if self.s[..end].ends_with('\r') {
                self.i -= 1;
            }
        }
    }

    /// Spaces, comments and line ends, up to the next thing or the end.
    fn skip_blank_lines(&mut self) {
        loop {
            self.skip_spaces();
            self.skip_comment();
            if self.s[self.i..].starts_with("\r\n") {
                self.i += 2;
            } else if self.peek() == Some('\n') {
                self.i += 1;
            } else {
                return;
            }
        }
    }

    /// After a value or header: spaces, a comment, then a line end or the end.
    fn end_of_line(&mut self) -> Result<()> {
        self.skip_spaces();
        self.skip_comment();
        let rest = &self.s[self.i..];
        if rest.is_empty() || rest.starts_with('\n') || rest.starts_with("\r\n") {
            Ok(())
        } else {
            Err(self.error("unexpected text after the value; one key = value per line"))
        }
    }

    /// A bare or quoted key, and where it starts.
    fn key(&mut self) -> Result<(String, Pos)> {
        let at = self.pos();
        let key = match self.peek() {
            Some('"') => self.basic_string()?,
            Some('\'') => self.literal_string()?,
            _ => {
                let start = self.i;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    self.i += 1;
                }
                if start == self.i {
                    return Err(self.error("expected a key"));
                }
                self.s[start..self.i].to_owned()
            }
        };
        Ok((key, at))
    }

    /// `a.b.c` in a header.
    fn dotted_key(&mut self) -> Result<Vec<(String, Pos)>> {
        let mut keys = Vec::new();
        loop {
            self.skip_spaces();
            keys.push(self.key()?);
            self.skip_spaces();
            if self.peek() != Some('.') {
                return Ok(keys);
            }
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH}")));
        }
        let rest = &self.s[self.i..];
        match self.peek() {
            Some('"') if rest.starts_with("\"\"\"") => self.multiline_basic().map(Value::String),
            Some('"') => self.basic_string().map(Value::String),
            Some('\'') if rest.starts_with("'''") => self.multiline_literal().map(Value::String),
            Some('\'') => self.literal_string().map(Value::String),
            Some('[') => self.array(depth),
            Some('{') => self.inline_table(depth),
            Some('t') if self.word("true") => Ok(Value::Bool(true)),
            Some('f') if self.word("false") => Ok(Value::Bool(false)),
            Some(c) if c.is_ascii_digit() || c == '+' || c == '-' || c == 'i' || c == 'n' => {
                self.integer()
            }
            _ => Err(self.error("expected a value: a string, a number, true, false, [ or {")),
        }
    }

    /// Takes `word` if it is next and ends there.
    fn word(&mut self, word: &str) -> bool {
        let rest = &self.s[self.i..];
        let ends = rest[word.len().min(rest.len())..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
        if rest.starts_with(word) && ends {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn integer(&mut self) -> Result<Value> {
        let at = self.pos();
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || "_+-.:".contains(c)) {
            self.i += 1;
        }
        let token = &self.s[start..self.i];
        let bad = |message: &str| Err(fault(at, message));
        let invalid = || fault(at, "not a valid integer");
        if token.contains(':')
            || token
                .get(1..)
                .is_some_and(|t| t.contains('-') && !t.starts_with('-'))
        {
            return bad("dates and times are not supported");
        }
        let (sign, digits) = match token.as_bytes().first() {
            Some(b'-') => (-1, &token[1..]),
            Some(b'+') => (1, &token[1..]),
            _ => (1, token),
        };
        let (radix, body) = match digits.get(..2) {
            Some("0x") => (16, &digits[2..]),
            Some("0o") => (8, &digits[2..]),
            Some("0b") => (2, &digits[2..]),
            _ => (10, digits),
        };
        if radix == 10 && (body.contains(['.', 'e', 'E']) || matches!(body, "inf" | "nan")) {
            return bad("floats are not supported; use a whole number");
        }
        let underscores_ok = !body.starts_with('_') && !body.ends_with('_') && !body.contains("__");
        let leading_zero = radix == 10 && body.len() > 1 && body.starts_with('0');
        if body.is_empty() || !underscores_ok || leading_zero || (radix != 10 && sign < 0) {
            return bad("not a valid integer");
        }
        let clean: String = body.chars().filter(|&c| c != '_').collect();
        let magnitude = i128::from_str_radix(&clean, radix).map_err(|_| invalid())?;
        match i64::try_from(sign * magnitude) {
            Ok(n) => Ok(Value::Integer(n)),
            Err(_) => bad("the integer does not fit 64 bits"),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value> {
        self.i += 1; // [
        let mut items = Vec::new();
        loop {
            self.skip_blank_lines();
            if self.peek() == Some(']') {
                self.i += 1;
                return Ok(Value::Array(items));
            }
            let at = self.pos();
            items.push((at, self.value(depth + 1)?));
            self.skip_blank_lines();
            match self.peek() {
                Some(',') => self.i += 1,
                Some(']') => {}
                _ => return Err(self.error("expected `,` or `]` in the array")),
            }
        }
    }

    fn inline_table(&mut self, depth: usize) -> Result<Value> {
        self.i += 1; // {
        let mut table = Table::default();
        self.skip_spaces();
        if self.peek() == Some('}') {
            self.i += 1;
            return Ok(Value::Table(table));
        }
        loop {
            self.skip_spaces();
            self.no_newline()?;
            let (key, key_pos) = self.key()?;
            self.skip_spaces();
            if self.peek() != Some('=') {
                return Err(self.error(format!("expected `=` after the key `{key}`")));
            }
            self.i += 1;
            self.skip_spaces();
            self.no_newline()?;
            let value_pos = self.pos();
            let value = self.value(depth + 1)?;
            insert(&mut table, key, key_pos, value_pos, value)?;
            self.skip_spaces();
            self.no_newline()?;
            match self.peek() {
                Some(',') => self.i += 1,
                Some('}') => {
                    self.i += 1;
                    return Ok(Value::Table(table));
                }
                _ => return Err(self.error("expected `,` or `}` in the inline table")),
            }
        }
    }

    fn no_newline(&self) -> Result<()> {
        match self.peek() {
            Some('\n' | '\r') | None => Err(self.error("an inline table must end on its line")),
            Some('#') => Err(self.error("an inline table cannot hold a comment")),
            _ => Ok(()),
        }
    }

    /// A character that may stand in a string as it is.
    fn plain(&self, c: char, multiline: bool) -> Result<char> {
        let ok = c == '\t' || (multiline && c == '\n') || !(c.is_control());
        if ok {
            Ok(c)
        } else {
            Err(self.error("a control character in a string; write it as an escape"))
        }
    }

    fn basic_string(&mut self) -> Result<String> {
        self.one_line('"', true)
    }

    fn literal_string(&mut self) -> Result<String> {
        self.one_line('\'', false)
    }

    /// A string on one line between `quote`s, with escapes if `escapes`.
    fn one_line(&mut self, quote: char, escapes: bool) -> Result<String> {
        let at = self.pos();
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None | Some('\n') => {
                    return Err(fault(at, "a string that does not end on its line"))
                }
                Some(c) if c == quote => {
                    self.i += 1;
                    return Ok(out);
                }
                Some('\\') if escapes => out.push(self.escape()?),
                Some(c) => {
                    out.push(self.plain(c, false)?);
                    self.i += c.len_utf8();
                }
            }
        }
    }

    fn multiline_basic(&mut self) -> Result<String> {
        self.multi_line('"', true)
    }

    fn multiline_literal(&mut self) -> Result<String> {
        self.multi_line('\'', false)
    }

    /// A string between tripled `quote`s, over lines, with escapes (and
    /// line-ending backslashes) if `escapes`.
    fn multi_line(&mut self, quote: char, escapes: bool) -> Result<String> {
        let at = self.pos();
        let fence: String = [quote; 3].iter().collect();
        self.i += 3;
        self.newline_after_opening();
        let mut out = String::new();
        loop {
            let rest = &self.s[self.i..];
            if rest.starts_with(&fence) {
                // Up to two quotes may end the content: `""""` is a quote, then the end.
                let quotes = rest.chars().take_while(|&c| c == quote).count().min(5);
                out.extend(std::iter::repeat_n(quote, quotes - 3));
                self.i += quotes;
                return Ok(out);
            }
            match self.peek() {
                None => {
                    return Err(fault(
                        at,
                        format!("a {fence} string without its closing {fence}"),
                    ))
                }
                Some('\\') if escapes && self.line_ending_backslash() => {}
                Some('\\') if escapes => out.push(self.escape()?),
                Some('\r') if rest.starts_with("\r\n") => {
                    out.push('\n');
                    self.i += 2;
                }
                Some(c) => {
                    out.push(self.plain(c, true)?);
                    self.i += c.len_utf8();
                }
            }
        }
    }

    /// A newline right after an opening `"""` or `'''` is not content.
    fn newline_after_opening(&mut self) {
        if self.s[self.i..].starts_with("\r\n") {
            self.i += 2;
        } else if self.peek() == Some('\n') {
            self.i += 1;
        }
    }

    /// `\` at a line's end: it, the line end and the whitespace after go.
    fn line_ending_backslash(&mut self) -> bool {
        let rest = &self.s[self.i + 1..];
        let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        let after = &rest[spaces..];
        if !(after.starts_with('\n') || after.starts_with("\r\n")) {
            return false;
        }
        let body = &self.s[self.i + 1..];
        let skipped = body.len() - body.trim_start_matches([' ', '\t', '\n', '\r']).len();
        self.i += 1 + skipped;
        true
    }

    fn escape(&mut self) -> Result<char> {
        let at = self.pos();
        self.i += 1; // the backslash
        let c = self
            .bump()
            .ok_or_else(|| fault(at, "a string that ends in a lone `\\`"))?;
        let hex = |p: &mut Self, n: usize| {
            let digits =
                p.s.get(p.i..p.i + n)
                    .filter(|d| d.chars().all(|c| c.is_ascii_hexdigit()));
            let code = digits.and_then(|d| u32::from_str_radix(d, 16).ok());
            match code.and_then(char::from_u32) {
                Some(c) => {
                    p.i += n;
                    Ok(c)
                }
                None => Err(fault(
                    at,
                    format!(
                        "`\\{}` needs {n} hex digits of a Unicode scalar",
                        if n == 4 { 'u' } else { 'U' }
                    ),
                )),
            }
        };
        match c {
            'b' => Ok('\u{8}'),
            't' => Ok('\t'),
            'n' => Ok('\n'),
            'f' => Ok('\u{c}'),
            'r' => Ok('\r'),
            'e' => Ok('\u{1b}'),
            '"' => Ok('"'),
            '\\' => Ok('\\'),
            'u' => hex(self, 4),
            'U' => hex(self, 8),
            other => Err(fault(
                at,
                format!("`\\{}` is no escape", other.escape_debug()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PI: &str = r#"# A Pi-status bot
[bot]
allow = [123456789, -1001234567890]
refusal = "Not for you."
[[command]]
name = "uptime"
run = ["/usr/bin/uptime", "-p"]
timeout = 10
[[command]]
name = "start"
reply = """
Hi! I am the Pi.
Pick one:"""
buttons = [[{ text = "Uptime", command = "uptime" }, { text = "Docs", url = "https://example.org" }]]
env = { LANG = "C.UTF-8" }
"#;

    fn at(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }

    fn error(text: &str) -> (u32, u32, String) {
        let e = parse(text).unwrap_err();
        (e.pos.line, e.pos.column, e.message)
    }

    #[test]
    fn a_config_parses_to_its_tree_with_positions() {
        let root = parse(PI).unwrap();
        let bot = root.get("bot").unwrap();
        let Value::Table(bot) = &bot.value else {
            panic!("bot")
        };
        let allow = bot.get("allow").unwrap();
        assert_eq!((allow.key_pos, allow.value_pos), (at(3, 1), at(3, 9)));
        assert_eq!(
            allow.value,
            Value::Array(vec![
                (at(3, 10), Value::Integer(123456789)),
                (at(3, 21), Value::Integer(-1001234567890)),
            ])
        );
        let Value::Array(commands) = &root.get("command").unwrap().value else {
            panic!("commands")
        };
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[1].0, at(9, 1));
        let Value::Table(start) = &commands[1].1 else {
            panic!("start")
        };
        assert_eq!(
            start.get("reply").unwrap().value,
            Value::String("Hi! I am the Pi.\nPick one:".into())
        );
        let Value::Array(rows) = &start.get("buttons").unwrap().value else {
            panic!("rows")
        };
        let Value::Array(row) = &rows[0].1 else {
            panic!("row")
        };
        let Value::Table(docs) = &row[1].1 else {
            panic!("button")
        };
        assert_eq!(
            docs.get("url").unwrap().value,
            Value::String("https://example.org".into())
        );
        assert_eq!(docs.get("url").unwrap().key_pos, at(14, 71));
        let Value::Table(env) = &start.get("env").unwrap().value else {
            panic!("env")
        };
        assert_eq!(
            env.get("LANG").unwrap().value,
            Value::String("C.UTF-8".into())
        );
    }

    #[test]
    fn strings_numbers_and_headers_as_toml_has_them() {
        let root = parse(
            "\u{feff}a = \"t\\tq\\\"\\u00e9\\U0001F600\"\r\nb = 'C:\\x'\nc = '''\nraw\\n'''\n\
             d = \"\"\"one \\\n    two\"\"\"\ne = 0x1F\nf = -1_000\ng = 0b101\nh = false\n\
             [x.y]\nz = []\n[x]\nw = 1\n",
        )
        .unwrap();
        let get = |k: &str| &root.get(k).unwrap().value;
        assert_eq!(get("a"), &Value::String("t\tq\"é😀".into()));
        assert_eq!(get("b"), &Value::String("C:\\x".into()));
        assert_eq!(get("c"), &Value::String("raw\\n".into()));
        assert_eq!(get("d"), &Value::String("one two".into()));
        assert_eq!(get("e"), &Value::Integer(31));
        assert_eq!(get("f"), &Value::Integer(-1000));
        assert_eq!(get("g"), &Value::Integer(5));
        assert_eq!(get("h"), &Value::Bool(false));
        let Value::Table(x) = get("x") else {
            panic!("x")
        };
        assert!(x.get("y").is_some() && x.get("w").is_some());
    }

    #[test]
    fn each_mistake_is_named_at_its_place() {
        let cases: &[(&str, (u32, u32), &str)] = &[
            ("a = 1\na = 2\n", (2, 1), "the key `a` is defined twice"),
            ("[t]\n[t]\n", (2, 1), "the table [t] is defined twice"),
            ("a = 1\n[a]\n", (2, 1), "the key `a` is defined twice"),
            ("a =\n", (1, 4), "expected a value"),
            ("a 1\n", (1, 3), "expected `=` after the key `a`"),
            (
                "a = \"open\nb = 1\n",
                (1, 5),
                "a string that does not end on its line",
            ),
            ("a = \"\\q\"\n", (1, 6), "`\\q` is no escape"),
            ("a = \"\u{7}\"\n", (1, 6), "a control character in a string"),
            ("a = 12x\n", (1, 5), "not a valid integer"),
            ("a = 01\n", (1, 5), "not a valid integer"),
            (
                "a = 99999999999999999999\n",
                (1, 5),
                "the integer does not fit 64 bits",
            ),
            ("a = 1 2\n", (1, 7), "unexpected text after the value"),
            ("a = 1.5\n", (1, 5), "floats are not supported"),
            (
                "a = 1979-05-27\n",
                (1, 5),
                "dates and times are not supported",
            ),
            (
                "a = { b = 1,\nc = 2 }\n",
                (1, 13),
                "an inline table must end on its line",
            ),
            ("a = [1 2]\n", (1, 8), "expected `,` or `]` in the array"),
            ("a.b = 1\n", (1, 2), "dotted keys are not supported"),
            ("[t\n", (1, 3), "expected `]` to close the header"),
            (
                "a = \"\"\"never closed\n",
                (1, 5),
                "a \"\"\" string without its closing",
            ),
            ("x = [1]\n[[x]]\n", (2, 1), "`x` is not an array of tables"),
            ("é = 1\n", (1, 1), "expected a key"),
            ("a = 'b'\n  c = tru\n", (2, 7), "expected a value"),
        ];
        for (text, (line, column), message) in cases {
            let (l, c, m) = error(text);
            assert!(m.starts_with(message), "{text:?}: {m}");
            assert_eq!((l, c), (*line, *column), "{text:?}: {m}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("a = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(error(&deep).2.starts_with("nested deeper than 32"));
    }

    #[test]
    fn no_prefix_or_mutation_of_a_config_panics() {
        for end in (0..PI.len()).filter(|&i| PI.is_char_boundary(i)) {
            let _ = parse(&PI[..end]);
        }
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"[]{}=\"'\\,.#\n\r\t 0x_-+aZ\x01";
        for _ in 0..5000 {
            let mut bytes = PI.as_bytes().to_vec();
            for _ in 0..1 + next() % 4 {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = alphabet[(next() % alphabet.len() as u64) as usize];
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = parse(text);
            }
        }
    }
}
