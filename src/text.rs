//! Message text: the parse modes, escaping for each, Telegram's length
//! limits, and the splitting of a long text with its entities.
//!
//! Telegram counts text in UTF-16 code units, and a [`MessageEntity`]'s
//! `offset` and `length` are UTF-16 code units too, while a Rust `str` is
//! UTF-8. Everything here that measures text counts what Telegram counts
//! ([`utf16_len`]), so an emoji outside the Basic Multilingual Plane (a
//! surrogate pair) is 2, a CJK character 1, an `é` 1.
//!
//! Splitting works on plain text plus entities, not on HTML or MarkdownV2
//! strings, on purpose: Telegram applies its limit to the text *after*
//! parsing the markup, a cut through a markup string can break a tag or an
//! escape, and the parts would each need their open tags re-closed.
//! Entities have none of these problems: build the text with [`Formatted`]
//! (or take a message's `text` and `entities`), [`split`] it, and send each
//! [`Part`] with its `entities` and no `parse_mode`.
//!
//! Must not: send anything, or guess at markup.
//!
//! See the Bot API's [formatting options](https://core.telegram.org/bots/api#formatting-options).
//!
//! # Examples
//! ```
//! use smolgram::text::{split, Formatted, MESSAGE_LIMIT};
//!
//! let long = Formatted::new()
//!     .bold("Report")
//!     .plain("\n\n")
//!     .plain(&"All quiet. ".repeat(500));
//! let parts = split(long.text(), long.entities(), MESSAGE_LIMIT);
//! assert_eq!(parts.len(), 2);
//! assert!(parts.iter().all(|p| smolgram::text::utf16_len(&p.text) <= MESSAGE_LIMIT));
//! assert_eq!(parts[0].entities[0].kind, "bold");
//! ```

use std::fmt;

use crate::api::generated::types::MessageEntity;

/// The most a message's text may hold, in UTF-16 code units, after its
/// markup is parsed ([`sendMessage`](https://core.telegram.org/bots/api#sendmessage)).
pub const MESSAGE_LIMIT: usize = 4096;
/// The most a media caption may hold, in UTF-16 code units
/// ([`sendPhoto`](https://core.telegram.org/bots/api#sendphoto)).
pub const CAPTION_LIMIT: usize = 1024;

/// How Telegram reads the markup in a text
/// ([formatting options](https://core.telegram.org/bots/api#formatting-options)).
///
/// Goes to a generated method's `parse_mode` through `Into<String>`:
///
/// ```
/// use smolgram::{api::generated::methods::SendMessage, text::{escape_html, ParseMode}};
///
/// let name = "<Tom & Jerry>";
/// let send = SendMessage::new(7, format!("<b>{}</b>", escape_html(name))).parse_mode(ParseMode::Html);
/// assert_eq!(send.parse_mode.as_deref(), Some("HTML"));
/// assert_eq!(send.text, "<b>&lt;Tom &amp; Jerry&gt;</b>");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseMode {
    /// A subset of HTML ([`HTML style`](https://core.telegram.org/bots/api#html-style));
    /// escape with [`escape_html`].
    Html,
    /// Telegram's Markdown dialect
    /// ([`MarkdownV2 style`](https://core.telegram.org/bots/api#markdownv2-style));
    /// escape with [`escape_markdown_v2`] and its variants for code and link URLs.
    MarkdownV2,
    /// The legacy Markdown, kept by Telegram for old bots
    /// ([`Markdown style`](https://core.telegram.org/bots/api#markdown-style)):
    /// no underline, strikethrough, spoiler or nesting; prefer `MarkdownV2`.
    Markdown,
}

impl ParseMode {
    /// The mode's name as the Bot API spells it: `HTML`, `MarkdownV2`, `Markdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParseMode::Html => "HTML",
            ParseMode::MarkdownV2 => "MarkdownV2",
            ParseMode::Markdown => "Markdown",
        }
    }

    /// `text` escaped for this mode, so that Telegram shows it as it is:
    /// [`escape_html`], [`escape_markdown_v2`] or [`escape_markdown`].
    pub fn escape(self, text: &str) -> String {
        match self {
            ParseMode::Html => escape_html(text),
            ParseMode::MarkdownV2 => escape_markdown_v2(text),
            ParseMode::Markdown => escape_markdown(text),
        }
    }
}

impl fmt::Display for ParseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The generated methods take `parse_mode` as `impl Into<String>`.
impl From<ParseMode> for String {
    fn from(mode: ParseMode) -> Self {
        mode.as_str().to_owned()
    }
}

/// `text` with `&`, `<`, `>` and `"` written as the entities Telegram's HTML
/// knows (`&amp;`, `&lt;`, `&gt;`, `&quot;`), for [`ParseMode::Html`].
///
/// Safe both between tags and inside a quoted attribute (`<a href="…">`):
/// Telegram reads `&quot;` in either place.
///
/// ```
/// assert_eq!(smolgram::text::escape_html(r#"a<b & "c">"#), "a&lt;b &amp; &quot;c&quot;&gt;");
/// ```
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The characters MarkdownV2 reserves outside code and URLs.
const MARKDOWN_V2_SPECIAL: &str = "_*[]()~`>#+-=|{}.!";

/// `text` with a `\` before each character MarkdownV2 reserves
/// (`` _*[]()~`>#+-=|{}.! `` and `\` itself), for ordinary text in
/// [`ParseMode::MarkdownV2`].
///
/// Inside `` `code` `` and ```` ``` ```` blocks the rule differs: use
/// [`escape_markdown_v2_code`]; inside the `(…)` of a link, use
/// [`escape_markdown_v2_url`].
///
/// ```
/// assert_eq!(smolgram::text::escape_markdown_v2("1+1=2. Done!"), r"1\+1\=2\. Done\!");
/// ```
pub fn escape_markdown_v2(text: &str) -> String {
    escape_with(text, |c| c == '\\' || MARKDOWN_V2_SPECIAL.contains(c))
}

/// `text` with a `\` before each `` ` `` and `\`: the only characters
/// MarkdownV2 reserves inside `pre` and `code` entities.
///
/// ```
/// assert_eq!(smolgram::text::escape_markdown_v2_code(r"let s = `\n`;"), r"let s = \`\\n\`;");
/// ```
pub fn escape_markdown_v2_code(text: &str) -> String {
    escape_with(text, |c| c == '`' || c == '\\')
}

/// `text` with a `\` before each `)` and `\`: the only characters
/// MarkdownV2 reserves inside the URL part `(…)` of a link or mention.
///
/// ```
/// use smolgram::text::{escape_markdown_v2, escape_markdown_v2_url};
///
/// let url = "https://en.wikipedia.org/wiki/Rust_(programming_language)";
/// let link = format!("[{}]({})", escape_markdown_v2("Rust (wiki)"), escape_markdown_v2_url(url));
/// assert_eq!(link, r"[Rust \(wiki\)](https://en.wikipedia.org/wiki/Rust_(programming_language\))");
/// ```
pub fn escape_markdown_v2_url(text: &str) -> String {
    escape_with(text, |c| c == ')' || c == '\\')
}

/// `text` with a `\` before each `_`, `*`, `` ` `` and `[`, for ordinary
/// text in the legacy [`ParseMode::Markdown`]. That mode has no way to
/// write these characters inside an entity of the same kind.
///
/// ```
/// assert_eq!(smolgram::text::escape_markdown("snake_case *x*"), r"snake\_case \*x\*");
/// ```
pub fn escape_markdown(text: &str) -> String {
    escape_with(text, |c| matches!(c, '_' | '*' | '`' | '['))
}

fn escape_with(text: &str, special: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if special(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text`'s length as Telegram counts it, in UTF-16 code units.
///
/// ```
/// use smolgram::text::utf16_len;
///
/// assert_eq!(utf16_len("hi"), 2);
/// assert_eq!(utf16_len("é"), 1);
/// assert_eq!(utf16_len("日本"), 2);
/// assert_eq!(utf16_len("👍"), 2); // one surrogate pair
/// ```
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// A text over the limit, for callers that refuse rather than [`split`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLong {
    /// The text's length in UTF-16 code units.
    pub units: usize,
    /// The limit it is over, in UTF-16 code units.
    pub limit: usize,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let TooLong { units, limit } = self;
        write!(
            f,
            "text too long: {units} utf-16 code units, telegram takes at most {limit}; \
             split it with smolgram::text::split"
        )
    }
}

impl std::error::Error for TooLong {}

/// `Ok` if `text` fits in `limit` UTF-16 code units ([`MESSAGE_LIMIT`],
/// [`CAPTION_LIMIT`]), else how long it is.
///
/// ```
/// use smolgram::text::{fits, TooLong, CAPTION_LIMIT};
///
/// assert_eq!(fits("short", CAPTION_LIMIT), Ok(()));
/// let err = fits(&"👍".repeat(600), CAPTION_LIMIT).unwrap_err();
/// assert_eq!(err, TooLong { units: 1200, limit: 1024 });
/// assert_eq!(
///     err.to_string(),
///     "text too long: 1200 utf-16 code units, telegram takes at most 1024; \
///      split it with smolgram::text::split"
/// );
/// ```
pub fn fits(text: &str, limit: usize) -> Result<(), TooLong> {
    let units = utf16_len(text);
    if units > limit {
        return Err(TooLong { units, limit });
    }
    Ok(())
}

/// One piece of a [`split`] text: at most the limit, with the entities
/// that fall in it.
#[derive(Clone, Debug)]
pub struct Part {
    /// Where the part starts in the whole text, in UTF-16 code units.
    pub offset: usize,
    /// The part's text.
    pub text: String,
    /// The entities over the part, clipped to it, their offsets counted
    /// from the part's start.
    pub entities: Vec<MessageEntity>,
}

/// Splits `text`, whose formatting is `entities`, into parts of at most
/// `limit` UTF-16 code units ([`MESSAGE_LIMIT`] for a message,
/// [`CAPTION_LIMIT`] for a caption), each with its entities re-based to
/// its own start.
///
/// Each part is cut in the back half of what may go in it (so no part is
/// needlessly short), at the last, in this order of preference:
/// 1. paragraph break (after a blank line, `\n\n`),
/// 2. line break (after `\n`),
/// 3. space (after any other whitespace),
/// 4. character boundary that does not split a visible character (not
///    before a zero-width joiner, variation selector, combining mark or
///    skin tone, nor after a joiner),
/// 5. character boundary,
///
/// that is not inside an entity. Only where entities cover all of the back
/// half is the front half searched, in the same order. No cut ever falls
/// inside a surrogate pair; the cuts of classes 1 to 4 never fall inside a
/// visible character either, and a class 5 cut is taken only where the
/// whole window holds no other.
///
/// **What is kept**: everything. The parts, joined, are exactly `text`;
/// the whitespace at a break ends the part before it.
///
/// **An entity that cannot fit** is cut rather than refused, and
/// re-opened in the next part: each part holds a copy of it (same kind,
/// URL, language, …) over its own piece. One longer than the limit cannot
/// stay whole, so it never holds a cut back: it is cut by the same
/// preferences as the text around it, and a long `pre` block arrives as
/// consecutive code blocks, cut at a line. Where every cut would fall
/// inside some shorter entity (a chain of overlapping ones), the cut falls
/// inside as few as it can.
///
/// An empty `text` gives no parts (Telegram refuses an empty message). An
/// entity outside the text is clipped to it, and one left empty appears
/// in no part. A part may hold only whitespace if `text` has a run of
/// whitespace longer than `limit`; Telegram refuses such a message.
///
/// The markup of [`ParseMode::Html`] and [`ParseMode::MarkdownV2`] strings
/// is not understood here (see the [module docs](self)): split the text and
/// entities, then send each part with `entities` and no `parse_mode`.
///
/// # Panics
/// If `limit` is less than 2: a surrogate pair would not fit.
///
/// # Examples
/// ```
/// use smolgram::api::generated::types::MessageEntity;
/// use smolgram::text::split;
///
/// let text = "first paragraph\n\nsecond, with a long link";
/// let link = MessageEntity::new("text_link", 32, 9).url("https://example.org");
/// let parts = split(text, &[link], 30);
/// let texts: Vec<&str> = parts.iter().map(|p| p.text.as_str()).collect();
/// assert_eq!(texts, ["first paragraph\n\n", "second, with a long link"]);
/// let moved = &parts[1].entities[0];
/// assert_eq!((moved.offset, moved.length), (15, 9)); // "long link"
/// ```
pub fn split(text: &str, entities: &[MessageEntity], limit: usize) -> Vec<Part> {
    assert!(
        limit >= 2,
        "text::split: limit must be at least 2, the length of a surrogate pair"
    );
    let bounds = Boundaries::of(text);
    let (units, bytes) = (&bounds.units, &bounds.bytes);
    let total = *units.last().expect("a text has at least its end boundary");

    // Entity spans in UTF-16 units, clipped to the text; empty ones dropped.
    let spans: Vec<(usize, usize, &MessageEntity)> = entities
        .iter()
        .filter_map(|e| {
            let start = clamp(e.offset, total);
            let end = clamp(e.offset.saturating_add(e.length), total);
            (start < end).then_some((start, end, e))
        })
        .collect();
    // inside[u]: how many entities a cut at unit position u would fall inside
    // (start < u < end), by a difference array over the positions. One
    // longer than the limit is cut wherever it is cut, so it never counts.
    let mut inside = vec![0i32; total + 2];
    for &(start, end, _) in spans.iter().filter(|&&(s, e, _)| e - s <= limit) {
        inside[start + 1] += 1;
        inside[end] -= 1;
    }
    for u in 1..inside.len() {
        inside[u] += inside[u - 1];
    }

    let mut parts = Vec::new();
    let mut first = 0; // index into `units` of the current part's start
    while units[first] < total {
        let start = units[first];
        let last = if total - start <= limit {
            units.len() - 1
        } else {
            // Boundaries first+1..=end are the candidates; end exists and is
            // past `first` because a char is at most 2 units and limit >= 2.
            let end = units.partition_point(|&u| u <= start + limit) - 1;
            bounds.cut(&inside, first, end)
        };
        let (part_start, part_end) = (units[first], units[last]);
        parts.push(Part {
            offset: part_start,
            text: text[bytes[first]..bytes[last]].to_owned(),
            entities: spans
                .iter()
                .filter(|&&(s, e, _)| s < part_end && e > part_start)
                .map(|&(s, e, entity)| {
                    let (s, e) = (s.max(part_start), e.min(part_end));
                    let mut entity = entity.clone();
                    entity.offset = (s - part_start) as i64;
                    entity.length = (e - s) as i64;
                    entity
                })
                .collect(),
        });
        first = last;
    }
    parts
}

/// An entity's bound as a position in a text of `total` units.
fn clamp(units: i64, total: usize) -> usize {
    usize::try_from(units.max(0)).map_or(total, |u| u.min(total))
}

/// A text's character boundaries, indexed alike: boundary `j` is at UTF-16
/// position `units[j]` and byte `bytes[j]`, after `chars[j - 1]`.
struct Boundaries {
    units: Vec<usize>,
    bytes: Vec<usize>,
    chars: Vec<char>,
    /// How many regional indicators end at each char (a flag is two).
    flag_run: Vec<u32>,
}

impl Boundaries {
    fn of(text: &str) -> Self {
        let mut b = Boundaries {
            units: Vec::with_capacity(text.len() + 1),
            bytes: Vec::with_capacity(text.len() + 1),
            chars: Vec::with_capacity(text.len()),
            flag_run: Vec::with_capacity(text.len()),
        };
        let (mut at, mut run) = (0, 0);
        for (byte, c) in text.char_indices() {
            b.units.push(at);
            b.bytes.push(byte);
            b.chars.push(c);
            run = if is_regional_indicator(c) { run + 1 } else { 0 };
            b.flag_run.push(run);
            at += c.len_utf16();
        }
        b.units.push(at);
        b.bytes.push(text.len());
        b
    }

    /// The boundary index in `first+1..=end` to end a part at, by
    /// [`split`]'s preferences: outside every entity if possible, else
    /// inside as few as possible.
    fn cut(&self, inside: &[i32], first: usize, end: usize) -> usize {
        let units = &self.units;
        let (lo, hi) = (units[first], units[end]);
        // The fewest entities a cut in the window must fall inside: those
        // that span it (longer than the part can be), or a chain of
        // overlapping ones that covers it.
        let fewest = (first + 1..=end)
            .map(|j| inside[units[j]])
            .min()
            .unwrap_or(0);
        let prev = |j: usize| self.chars[j - 1];
        let soft: [&dyn Fn(usize) -> bool; 4] = [
            &|j| prev(j) == '\n' && j >= first + 2 && prev(j - 1) == '\n',
            &|j| prev(j) == '\n',
            &|j| prev(j).is_whitespace(),
            &|j| !self.joins(j),
        ];
        // The first boundary that fills the part to half the window.
        let half = first + 1 + units[first + 1..=end].partition_point(|&u| u - lo < (hi - lo) / 2);
        let last = |from: usize, allowed: i32, class: &dyn Fn(usize) -> bool| {
            (from..=end)
                .rev()
                .find(|&j| inside[units[j]] <= allowed && class(j))
        };
        for allowed in [0, fewest] {
            for from in [half, first + 1] {
                if let Some(j) = soft.iter().find_map(|class| last(from, allowed, class)) {
                    return j;
                }
            }
            if let Some(j) = last(first + 1, allowed, &|_| true) {
                return j;
            }
        }
        // Cannot happen: with `allowed == fewest` the boundary that gave
        // `fewest` is allowed, and the window holds at least one.
        end
    }

    /// Whether a cut at boundary `j` would split what shows as one
    /// character: an emoji sequence, a flag, a letter and its accent.
    fn joins(&self, j: usize) -> bool {
        const ZWJ: char = '\u{200D}';
        let (before, Some(&after)) = (self.chars[j - 1], self.chars.get(j)) else {
            return false;
        };
        before == ZWJ
            || matches!(after,
                ZWJ
                | '\u{FE00}'..='\u{FE0F}' // variation selectors
                | '\u{0300}'..='\u{036F}' // combining diacritical marks
                | '\u{20D0}'..='\u{20FF}' // combining marks for symbols (keycaps)
                | '\u{1F3FB}'..='\u{1F3FF}' // skin tones
                | '\u{E0020}'..='\u{E007F}') // tag characters (subdivision flags)
            // Regional indicators pair up from the start of their run.
            || (self.flag_run[j - 1] % 2 == 1 && is_regional_indicator(after))
    }
}

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

/// Text and its entities, built piece by piece with the UTF-16 offsets
/// Telegram wants: the way to format without escaping anything.
///
/// Send [`text`](Self::text) with [`entities`](Self::entities) and no
/// `parse_mode`, or [`split`] them first.
///
/// # Examples
/// ```
/// use smolgram::text::Formatted;
///
/// let f = Formatted::new().plain("👍 ").bold("done").plain(", see ").link("the log", "https://example.org/log");
/// assert_eq!(f.text(), "👍 done, see the log");
/// let spans: Vec<(&str, i64, i64)> =
///     f.entities().iter().map(|e| (e.kind.as_str(), e.offset, e.length)).collect();
/// assert_eq!(spans, [("bold", 3, 4), ("text_link", 13, 7)]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Formatted {
    text: String,
    units: usize,
    entities: Vec<MessageEntity>,
}

impl Formatted {
    /// Empty text.
    pub fn new() -> Self {
        Formatted::default()
    }

    /// Appends `text` unformatted.
    pub fn plain(mut self, text: &str) -> Self {
        self.text.push_str(text);
        self.units += utf16_len(text);
        self
    }

    /// Appends `text` under `entity`, whose `offset` and `length` are set
    /// here; any [`MessageEntity`] kind
    /// ([`MessageEntity`](https://core.telegram.org/bots/api#messageentity)).
    /// An empty `text` adds no entity (Telegram refuses an empty one).
    pub fn entity(mut self, text: &str, mut entity: MessageEntity) -> Self {
        let units = utf16_len(text);
        entity.offset = self.units as i64;
        entity.length = units as i64;
        if units > 0 {
            self.entities.push(entity);
        }
        self.text.push_str(text);
        self.units += units;
        self
    }

    /// Appends `text` in bold.
    pub fn bold(self, text: &str) -> Self {
        self.kind("bold", text)
    }

    /// Appends `text` in italics.
    pub fn italic(self, text: &str) -> Self {
        self.kind("italic", text)
    }

    /// Appends `text` underlined.
    pub fn underline(self, text: &str) -> Self {
        self.kind("underline", text)
    }

    /// Appends `text` struck through.
    pub fn strikethrough(self, text: &str) -> Self {
        self.kind("strikethrough", text)
    }

    /// Appends `text` hidden until tapped.
    pub fn spoiler(self, text: &str) -> Self {
        self.kind("spoiler", text)
    }

    /// Appends `text` as inline code.
    pub fn code(self, text: &str) -> Self {
        self.kind("code", text)
    }

    /// Appends `text` as a code block, highlighted as `language` if given.
    pub fn pre(self, text: &str, language: Option<&str>) -> Self {
        let entity = MessageEntity::new("pre", 0, 0);
        let entity = match language {
            Some(language) => entity.language(language),
            None => entity,
        };
        self.entity(text, entity)
    }

    /// Appends `text` as a link to `url`.
    pub fn link(self, text: &str, url: &str) -> Self {
        self.entity(text, MessageEntity::new("text_link", 0, 0).url(url))
    }

    fn kind(self, kind: &str, text: &str) -> Self {
        self.entity(text, MessageEntity::new(kind, 0, 0))
    }

    /// The text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The entities so far, in the order they were appended.
    pub fn entities(&self) -> &[MessageEntity] {
        &self.entities
    }

    /// Its length as Telegram counts it, in UTF-16 code units.
    pub fn len_utf16(&self) -> usize {
        self.units
    }

    /// The text and its entities.
    pub fn into_parts(self) -> (String, Vec<MessageEntity>) {
        (self.text, self.entities)
    }
}
