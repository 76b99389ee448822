//! Invariants of `smolgram::text`: escaping, and splitting long text with
//! its entities (see: #12).

use smolgram::api::generated::types::MessageEntity;
use smolgram::text::{
    escape_html, escape_markdown, escape_markdown_v2, escape_markdown_v2_code,
    escape_markdown_v2_url, fits, split, utf16_len, Formatted, ParseMode, Part, TooLong,
    CAPTION_LIMIT, MESSAGE_LIMIT,
};

/// The text an entity covers, read by UTF-16 offset and length as Telegram does.
fn covered(text: &str, offset: i64, length: i64) -> String {
    let units: Vec<u16> = text.encode_utf16().collect();
    let (start, end) = (offset as usize, (offset + length) as usize);
    String::from_utf16(&units[start..end]).expect("entity bounds split a surrogate pair")
}

fn texts(parts: &[Part]) -> Vec<&str> {
    parts.iter().map(|p| p.text.as_str()).collect()
}

/// What every split must give, whatever the input: parts within the limit
/// that join back to the text, cuts at char boundaries (a `String` cannot
/// hold half a pair; the offsets are checked against the UTF-16 text), and
/// each entity's text, read from its pieces, equal to its text in the whole.
fn check_split(text: &str, entities: &[MessageEntity], limit: usize) -> Vec<Part> {
    let parts = split(text, entities, limit);
    let joined: String = parts.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(joined, text, "parts must join back to the text");
    let utf16: Vec<u16> = text.encode_utf16().collect();
    let mut offset = 0;
    for part in &parts {
        let units = utf16_len(&part.text);
        assert!(
            units >= 1 && units <= limit,
            "part of {units} units, limit {limit}: {:?}",
            part.text
        );
        assert_eq!(part.offset, offset, "part offsets run on");
        if offset > 0 {
            assert!(
                !(0xDC00..0xE000).contains(&utf16[offset]),
                "cut at {offset} splits a surrogate pair"
            );
        }
        offset += units;
    }
    for (i, original) in entities.iter().enumerate() {
        let tag = original.url.as_deref();
        let pieces: String = parts
            .iter()
            .flat_map(|p| {
                p.entities
                    .iter()
                    .filter(move |e| e.url.as_deref() == tag && e.kind == original.kind)
                    .map(move |e| covered(&p.text, e.offset, e.length))
            })
            .collect();
        assert_eq!(
            pieces,
            covered(text, original.offset, original.length),
            "entity {i} reads the same before and after the split"
        );
    }
    parts
}

#[test]
fn html_escaping_covers_its_four_characters() {
    assert_eq!(escape_html("&"), "&amp;");
    assert_eq!(escape_html("<"), "&lt;");
    assert_eq!(escape_html(">"), "&gt;");
    assert_eq!(escape_html("\""), "&quot;");
    assert_eq!(escape_html("'"), "'");
    assert_eq!(
        escape_html("&amp;"),
        "&amp;amp;",
        "escaping twice shows the first escape"
    );
    assert_eq!(escape_html("日本 👍 plain"), "日本 👍 plain");
}

#[test]
fn markdown_v2_escapes_all_18_specials_and_the_backslash() {
    let specials = "_*[]()~`>#+-=|{}.!";
    assert_eq!(specials.chars().count(), 18);
    for c in specials.chars().chain(['\\']) {
        assert_eq!(
            escape_markdown_v2(&c.to_string()),
            format!("\\{c}"),
            "{c:?}"
        );
    }
    for c in (' '..='~').filter(|&c| !specials.contains(c) && c != '\\') {
        assert_eq!(
            escape_markdown_v2(&c.to_string()),
            c.to_string(),
            "{c:?} needs no escape"
        );
    }
    assert_eq!(escape_markdown_v2("👍 日本"), "👍 日本");
}

#[test]
fn markdown_v2_code_and_url_escape_only_their_two() {
    for c in (' '..='~').map(String::from) {
        let code = if c == "`" || c == "\\" {
            format!("\\{c}")
        } else {
            c.clone()
        };
        assert_eq!(escape_markdown_v2_code(&c), code, "code {c:?}");
        let url = if c == ")" || c == "\\" {
            format!("\\{c}")
        } else {
            c.clone()
        };
        assert_eq!(escape_markdown_v2_url(&c), url, "url {c:?}");
    }
}

#[test]
fn legacy_markdown_escapes_its_four() {
    for c in (' '..='~').map(String::from) {
        let want = if "_*`[".contains(c.as_str()) {
            format!("\\{c}")
        } else {
            c.clone()
        };
        assert_eq!(escape_markdown(&c), want, "{c:?}");
    }
}

#[test]
fn parse_mode_names_are_the_bot_api_strings() {
    assert_eq!(ParseMode::Html.as_str(), "HTML");
    assert_eq!(ParseMode::MarkdownV2.as_str(), "MarkdownV2");
    assert_eq!(ParseMode::Markdown.as_str(), "Markdown");
    assert_eq!(String::from(ParseMode::MarkdownV2), "MarkdownV2");
    assert_eq!(ParseMode::Html.to_string(), "HTML");
    assert_eq!(ParseMode::MarkdownV2.escape("a.b"), r"a\.b");
    assert_eq!(ParseMode::Html.escape("a<b"), "a&lt;b");
    assert_eq!(ParseMode::Markdown.escape("a_b"), r"a\_b");
}

#[test]
fn fits_counts_utf16_and_says_by_how_much() {
    assert_eq!(fits(&"a".repeat(MESSAGE_LIMIT), MESSAGE_LIMIT), Ok(()));
    assert_eq!(
        fits(&"a".repeat(MESSAGE_LIMIT + 1), MESSAGE_LIMIT),
        Err(TooLong {
            units: 4097,
            limit: 4096
        })
    );
    // 1024 CJK characters are 1024 units (3072 bytes): they fit a caption.
    assert_eq!(fits(&"日".repeat(1024), CAPTION_LIMIT), Ok(()));
    assert_eq!(
        fits(&"😀".repeat(513), CAPTION_LIMIT).unwrap_err().units,
        1026
    );
    assert_eq!(fits("", 0), Ok(()));
}

#[test]
fn empty_text_gives_no_parts() {
    assert!(split("", &[], 10).is_empty());
}

#[test]
fn text_exactly_at_the_limit_is_one_part() {
    let text = "a".repeat(10);
    assert_eq!(texts(&check_split(&text, &[], 10)), [text.as_str()]);
    let emoji = "👍".repeat(5); // 10 units
    assert_eq!(check_split(&emoji, &[], 10).len(), 1);
    assert_eq!(check_split(&"a".repeat(11), &[], 10).len(), 2);
}

#[test]
fn a_paragraph_break_wins_over_a_line_break_and_a_space() {
    let text = "aaaa bbb\ncc\n\ndd eee\nff gg";
    // Window of 16: the last paragraph break (after "\n\n", 13) is in its back half.
    assert_eq!(
        texts(&check_split(text, &[], 16)),
        ["aaaa bbb\ncc\n\n", "dd eee\nff gg"]
    );
    // Without one, a line break; without that, a space.
    assert_eq!(
        texts(&check_split("aaaa bbb\ncc dd", &[], 12)),
        ["aaaa bbb\n", "cc dd"]
    );
    assert_eq!(
        texts(&check_split("aaaa bbb cc", &[], 10)),
        ["aaaa bbb ", "cc"]
    );
}

#[test]
fn an_early_break_does_not_make_a_short_part() {
    // The paragraph break at 3 is in the front half of a window of 20: the
    // space near its end is taken instead.
    let text = "ab\n\ncd ef gh ij kl mn op";
    assert_eq!(
        texts(&check_split(text, &[], 20)),
        ["ab\n\ncd ef gh ij kl ", "mn op"]
    );
}

#[test]
fn a_word_longer_than_the_limit_is_cut_hard() {
    let word = "abcdefghijklmnopqrstuvwxyz";
    assert_eq!(
        texts(&check_split(word, &[], 10)),
        ["abcdefghij", "klmnopqrst", "uvwxyz"]
    );
}

#[test]
fn a_surrogate_pair_at_the_limit_moves_whole_to_the_next_part() {
    // "a" then emoji: the 5th unit of a 5-unit window is the first half of a pair.
    let text = format!("a{}", "😀".repeat(4)); // 9 units
    let parts = check_split(&text, &[], 5);
    assert_eq!(texts(&parts), ["a😀😀", "😀😀"]);
    assert_eq!(utf16_len(&parts[0].text), 5);
    let parts = check_split(&"😀".repeat(3), &[], 3);
    assert_eq!(texts(&parts), ["😀", "😀", "😀"]);
}

#[test]
fn cjk_counts_one_unit_a_character() {
    let text = "日本語のテキスト".repeat(3); // 24 characters, 72 bytes
    let parts = check_split(&text, &[], 8);
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| p.text.chars().count() == 8));
}

#[test]
fn a_hard_cut_keeps_emoji_sequences_and_accents_whole() {
    let family = "👨\u{200D}👩\u{200D}👧"; // 8 units
    let text = format!("ab{family}");
    assert_eq!(texts(&check_split(&text, &[], 9)), ["ab", family]);
    let accented = "e\u{301}e\u{301}e\u{301}"; // é as e + combining acute
    assert_eq!(
        texts(&check_split(accented, &[], 3)),
        ["e\u{301}", "e\u{301}", "e\u{301}"]
    );
    let flags = "🇫🇷🇩🇪"; // two flags of two regional indicators each
    assert_eq!(texts(&check_split(flags, &[], 6)), ["🇫🇷", "🇩🇪"]);
}

#[test]
fn an_entity_straddling_the_limit_moves_whole_to_the_next_part() {
    let text = "intro text then a bold phrase here";
    let bold = "bold phrase";
    let offset = text.find(bold).unwrap() as i64;
    let entity = MessageEntity::new("bold", offset, bold.len() as i64);
    let parts = check_split(text, &[entity], 25);
    assert_eq!(texts(&parts), ["intro text then a ", "bold phrase here"]);
    let moved = &parts[1].entities[0];
    assert_eq!((moved.offset, moved.length), (0, 11));
    assert!(parts[0].entities.is_empty());
}

#[test]
fn an_entity_after_emoji_keeps_its_utf16_offset() {
    let f = Formatted::new()
        .plain(&"😀".repeat(6)) // 12 units
        .plain(" ")
        .italic("tail 日本")
        .plain(" end");
    let parts = check_split(f.text(), f.entities(), 14);
    assert_eq!(texts(&parts), ["😀😀😀😀😀😀 ", "tail 日本 end"]);
    let e = &parts[1].entities[0];
    assert_eq!((e.kind.as_str(), e.offset, e.length), ("italic", 0, 7));
    assert_eq!(covered(&parts[1].text, e.offset, e.length), "tail 日本");
}

#[test]
fn an_entity_longer_than_the_limit_is_reopened_in_each_part() {
    let code = "line one\nline two\nline three\n";
    let f = Formatted::new()
        .plain("see:\n")
        .pre(code, Some("rust"))
        .plain("done");
    let parts = check_split(f.text(), f.entities(), 16);
    // Cut at lines inside the block, each piece a `pre` of its own.
    let pres: Vec<String> = parts
        .iter()
        .flat_map(|p| {
            p.entities
                .iter()
                .map(|e| covered(&p.text, e.offset, e.length))
        })
        .collect();
    assert_eq!(pres, ["line one\n", "line two\n", "line three\n"]);
    for part in &parts {
        for e in &part.entities {
            assert_eq!(
                (e.kind.as_str(), e.language.as_deref()),
                ("pre", Some("rust"))
            );
        }
    }
}

#[test]
fn an_entity_longer_than_the_limit_does_not_hold_a_cut_back() {
    // Cutting before the block would give a part of the title alone, and
    // the block would still need a cut: it is cut at a line instead.
    let f = Formatted::new()
        .bold("Log")
        .plain("\n\n")
        .code(&"ok\n".repeat(2000));
    let parts = check_split(f.text(), f.entities(), MESSAGE_LIMIT);
    assert_eq!(parts.len(), 2);
    assert_eq!(
        utf16_len(&parts[0].text),
        4094,
        "5 units of title, 1363 lines of 3"
    );
    assert!(parts[0].text.ends_with("ok\n"));
    let kinds = |p: &Part| {
        p.entities
            .iter()
            .map(|e| e.kind.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&parts[0]), ["bold", "code"]);
    assert_eq!(kinds(&parts[1]), ["code"]);
}

#[test]
fn nested_entities_are_both_clipped() {
    // bold over all of it, a link inside, longer than one part.
    let text = "aaaa bbbb cccc dddd";
    let bold = MessageEntity::new("bold", 0, 19).url("b");
    let link = MessageEntity::new("text_link", 5, 9).url("l");
    let parts = check_split(text, &[bold, link], 10);
    assert_eq!(texts(&parts), ["aaaa ", "bbbb cccc ", "dddd"]);
    assert_eq!(parts[1].entities.len(), 2);
}

#[test]
fn entities_outside_the_text_are_clipped_to_it() {
    let beyond = MessageEntity::new("bold", 3, 100);
    let negative = MessageEntity::new("italic", -5, 7);
    let empty = MessageEntity::new("code", 1, 0);
    let parts = split("hello", &[beyond, negative, empty], 10);
    let spans: Vec<(&str, i64, i64)> = parts[0]
        .entities
        .iter()
        .map(|e| (e.kind.as_str(), e.offset, e.length))
        .collect();
    assert_eq!(spans, [("bold", 3, 2), ("italic", 0, 2)]);
}

#[test]
#[should_panic(expected = "limit must be at least 2")]
fn a_limit_below_a_surrogate_pair_panics() {
    let _ = split("a", &[], 1);
}

/// A random text from pieces that stress the cut: spaces, line and
/// paragraph breaks, surrogate pairs, joiners, CJK, accents.
fn random_text(rng: &mut fastrand::Rng) -> String {
    const PIECES: &[&str] = &[
        "a",
        "word",
        " ",
        " ",
        "\n",
        "\n\n",
        "😀",
        "👨\u{200D}👩\u{200D}👧",
        "日本",
        "e\u{301}",
        "🇫🇷",
        "\t",
        "longerwordwithoutbreaks",
    ];
    let n = rng.usize(0..60);
    (0..n).map(|_| PIECES[rng.usize(..PIECES.len())]).collect()
}

/// The UTF-16 positions of `text`'s char boundaries, its end included.
fn bounds(text: &str) -> Vec<usize> {
    let mut bounds = vec![0usize];
    for c in text.chars() {
        bounds.push(bounds.last().unwrap() + c.len_utf16());
    }
    bounds
}

/// Entities at char boundaries (as Telegram gives them), some long, some
/// nested, tagged by `url` so each piece can be matched to its original.
fn random_entities(rng: &mut fastrand::Rng, text: &str) -> Vec<MessageEntity> {
    let bounds = bounds(text);
    if bounds.len() < 2 {
        return Vec::new();
    }
    (0..rng.usize(0..5))
        .map(|i| {
            let (a, b) = (rng.usize(..bounds.len()), rng.usize(..bounds.len()));
            let (s, e) = (bounds[a.min(b)], bounds[a.max(b)]);
            let kind = ["bold", "italic", "pre", "text_link"][rng.usize(..4)];
            MessageEntity::new(kind, s as i64, (e - s) as i64).url(format!("e{i}"))
        })
        .filter(|e| e.length > 0)
        .collect()
}

#[test]
fn every_split_of_random_text_keeps_the_invariants() {
    let mut rng = fastrand::Rng::with_seed(12);
    for round in 0..3000 {
        let text = random_text(&mut rng);
        let entities = random_entities(&mut rng, &text);
        let limit = rng.usize(2..40);
        let parts = check_split(&text, &entities, limit);
        // No cut inside an entity that fits where one inside fewer was
        // possible: a cut inside one at all means every cut in the window was.
        let inside = |u: usize| {
            entities
                .iter()
                .filter(|e| e.length as usize <= limit)
                .filter(|e| (e.offset as usize) < u && u < (e.offset + e.length) as usize)
                .count()
        };
        let bounds = bounds(&text);
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            let (start, cut) = (part.offset, part.offset + utf16_len(&part.text));
            let fewest = (start + 1..=start + limit)
                .filter(|u| bounds.contains(u))
                .map(inside)
                .min()
                .unwrap();
            assert_eq!(
                inside(cut),
                fewest,
                "round {round}: cut {start}..{cut} inside {} entities, {fewest} possible; \
                 limit {limit}, {entities:?}, text {text:?}",
                inside(cut)
            );
        }
    }
}
