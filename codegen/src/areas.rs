//! The rarely used parts of the API, each behind a default-on cargo feature
//! of smolgram's, so that a binary which needs none of them can leave their
//! decoders out (see: #12, the binary's size).
//!
//! A type belongs to an area by its section of the Bot API page or by a word
//! of its name; a method likewise, or by a required parameter or its result
//! belonging to one. A type that a type outside every area requires (a
//! required field of it) is taken out of its area again, so that no common
//! type or method ever needs a feature: `ChatFullInfo` requires
//! `AcceptedGiftTypes`, so that one is always there. An optional field,
//! parameter or union member of an area's type is left out with the area;
//! its JSON is then skipped like an unknown field's.

use std::collections::{BTreeMap, BTreeSet};

use crate::graph;
use crate::spec::{Method, Spec, Type};

/// One area: its feature, and the sections and name words that put a type
/// or method into it.
struct Area {
    feature: &'static str,
    sections: &'static [&'static str],
    words: &'static [&'static str],
}

/// Every area, in the order they are tried: the first that matches wins.
const AREAS: &[Area] = &[
    Area {
        feature: "payments",
        sections: &["Payments"],
        words: &[],
    },
    Area {
        feature: "passport",
        sections: &["Telegram Passport"],
        words: &[],
    },
    Area {
        feature: "games",
        sections: &["Games"],
        words: &[],
    },
    Area {
        feature: "stickers",
        sections: &["Stickers"],
        words: &[],
    },
    Area {
        feature: "rich-messages",
        sections: &["Rich messages"],
        words: &[],
    },
    Area {
        feature: "business",
        sections: &[],
        words: &["Business", "Checklist"],
    },
    Area {
        feature: "stars",
        sections: &[],
        words: &["Gift", "Gifts", "Star", "Stars", "Paid", "Suggested"],
    },
    Area {
        feature: "boosts",
        sections: &[],
        words: &["Boost", "Boosts", "Giveaway"],
    },
    Area {
        feature: "backgrounds",
        sections: &[],
        words: &["Background"],
    },
    Area {
        feature: "reactions",
        sections: &[],
        words: &["Reaction", "Reactions"],
    },
];

/// Every area's feature, for `Cargo.toml` and the docs.
pub fn features() -> impl Iterator<Item = &'static str> {
    AREAS.iter().map(|a| a.feature)
}

/// The words of a `PascalCase` or `camelCase` name.
fn words(name: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in name.char_indices().skip(1) {
        if c.is_ascii_uppercase() {
            out.push(&name[start..i]);
            start = i;
        }
    }
    out.push(&name[start..]);
    out
}

fn area_of(section: &str, name: &str) -> Option<&'static str> {
    let name_words = words(name);
    AREAS
        .iter()
        .find(|a| a.sections.contains(&section) || name_words.iter().any(|w| a.words.contains(w)))
        .map(|a| a.feature)
}

/// The named types a type expression mentions.
fn mentioned<'e>(expr: &'e str, known: &BTreeMap<&str, &Type>) -> Vec<&'e str> {
    graph::words_of(expr)
        .filter(|word| known.contains_key(word))
        .collect()
}

/// Which area, if any, each type and method is in.
pub struct Gates {
    types: BTreeMap<String, Features>,
}

/// The features an item needs; none for the common ones.
pub type Features = BTreeSet<&'static str>;

/// A `#[cfg(…)]` attribute, without indent or newline; empty for none.
pub type Cfg = String;

impl Gates {
    pub fn new(spec: &Spec) -> Gates {
        let known: BTreeMap<&str, &Type> =
            spec.types.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut types: BTreeMap<String, &'static str> = spec
            .types
            .iter()
            .filter_map(|t| Some((t.name.clone(), area_of(&t.section, &t.name)?)))
            .collect();
        // What a type outside every area requires is outside too.
        let mut types = loop {
            let required: BTreeSet<String> = spec
                .types
                .iter()
                .filter(|t| !types.contains_key(&t.name))
                .flat_map(|t| t.fields.iter().filter(|f| f.required))
                .flat_map(|f| mentioned(&f.ty, &known))
                .filter(|name| types.contains_key(*name))
                .map(str::to_owned)
                .collect();
            if required.is_empty() {
                break types
                    .into_iter()
                    .map(|(name, feature)| (name, Features::from([feature])))
                    .collect::<BTreeMap<String, Features>>();
            }
            for name in required {
                types.remove(&name);
            }
        };
        // A type of one area that requires one of another needs both.
        loop {
            let mut grown = false;
            for t in &spec.types {
                let Some(own) = types.get(&t.name) else {
                    continue;
                };
                let mut all = own.clone();
                for f in t.fields.iter().filter(|f| f.required) {
                    for name in mentioned(&f.ty, &known) {
                        all.extend(types.get(name).into_iter().flatten());
                    }
                }
                if all.len() > own.len() {
                    types.insert(t.name.clone(), all);
                    grown = true;
                }
            }
            if !grown {
                break;
            }
        }
        Gates { types }
    }

    /// The features a type needs, by its API name.
    pub fn of_type(&self, name: &str) -> Features {
        self.types.get(name).cloned().unwrap_or_default()
    }

    /// The features a type expression needs beyond `owner`.
    fn needs(&self, expr: &str, owner: &Features) -> Features {
        graph::words_of(expr)
            .flat_map(|name| self.of_type(name))
            .filter(|feature| !owner.contains(feature))
            .collect()
    }

    /// The features a method needs: its own area's, and those of its
    /// required parameters and of its result.
    pub fn of_method(&self, m: &Method) -> Features {
        let required = m
            .params
            .iter()
            .filter(|p| p.required)
            .map(|p| p.ty.as_str());
        let mut features: Features = area_of(&m.section, &m.name).into_iter().collect();
        for expr in required.chain([m.returns.as_str()]) {
            features.extend(self.needs(expr, &Features::new()));
        }
        features
    }

    /// The `#[cfg]` a field, parameter or member of type `expr` needs
    /// inside an item that needs `owner`.
    pub fn cfg(&self, expr: &str, owner: &Features) -> Cfg {
        cfg_of(&self.needs(expr, owner))
    }
}

/// `#[cfg(feature = "a")]`, or `all(…)` of several.
pub fn cfg_of(features: &Features) -> Cfg {
    let list: Vec<String> = features
        .iter()
        .map(|f| format!("feature = \"{f}\""))
        .collect();
    match list.len() {
        0 => String::new(),
        1 => format!("#[cfg({})]", list[0]),
        _ => format!("#[cfg(all({}))]", list.join(", ")),
    }
}

/// `cfg` on a line of its own at `indent`, or nothing.
pub fn line(cfg: &str, indent: &str) -> String {
    if cfg.is_empty() {
        String::new()
    } else {
        format!("{indent}{cfg}\n")
    }
}

/// Puts `cfg` in front of every item of `code` (a line at the first column
/// that starts a doc comment or an `impl`).
pub fn gate_items(code: &str, cfg: &str) -> String {
    if cfg.is_empty() {
        return code.to_owned();
    }
    let mut out = String::with_capacity(code.len());
    let mut in_doc = false;
    for line in code.lines() {
        let doc = line.starts_with("///");
        if (doc && !in_doc) || line.starts_with("impl") {
            out.push_str(cfg);
            out.push('\n');
        }
        in_doc = doc || (in_doc && line.starts_with("#["));
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_words() {
        assert_eq!(
            words("getBusinessConnection"),
            ["get", "Business", "Connection"]
        );
        assert_eq!(words("StartParameter"), ["Start", "Parameter"]);
        assert_eq!(area_of("Available types", "StartParameter"), None);
        assert_eq!(area_of("Available types", "StarAmount"), Some("stars"));
        assert_eq!(area_of("Payments", "Invoice"), Some("payments"));
        assert_eq!(
            area_of("Available types", "ChatBoostUpdated"),
            Some("boosts")
        );
        assert_eq!(
            area_of("Available types", "GiveawayWinners"),
            Some("boosts")
        );
        assert_eq!(
            area_of("Available types", "BackgroundFill"),
            Some("backgrounds")
        );
        assert_eq!(area_of("Available types", "GiftBackground"), Some("stars"));
        assert_eq!(
            area_of("Available types", "ReactionType"),
            Some("reactions")
        );
        assert_eq!(area_of("Available types", "ChatMember"), None);
    }

    #[test]
    fn every_item_of_gated_code_gets_the_cfg() {
        let code =
            "/// A.\n#[derive(Debug)]\npub struct A;\n\nimpl A {\n    /// B.\n    fn b() {}\n}\n";
        let gated = gate_items(code, "#[cfg(x)]");
        assert_eq!(gated.matches("#[cfg(x)]").count(), 2, "{gated}");
        assert!(gated.starts_with("#[cfg(x)]\n/// A."));
        assert!(gated.contains("#[cfg(x)]\nimpl A {"));
    }
}
