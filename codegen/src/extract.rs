//! `extract AIOGRAM_DIR`: the facts of aiogram's `.butcher/` spec, without
//! its prose. Names, anchors, sections, fields and required flags come from
//! `schema/schema.json`; union members from each union's HTML member list;
//! discriminators from `types/*/subtypes.yml` (or, where that names none, a
//! `type` field every member holds); discriminator values and return types
//! from the descriptions, by their patterns (`always '<value>'` or
//! `must be <value>`; the first sentence about what is returned that names
//! a type). No description text is kept.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::spec::{Field, Member, Method, Spec, Type, Union};

/// Reads the spec under `aiogram` (an unpacked aiogram sdist).
pub fn extract(aiogram: &Path) -> Result<Spec, String> {
    let butcher = aiogram.join(".butcher");
    let schema_path = butcher.join("schema/schema.json");
    let text =
        fs::read_to_string(&schema_path).map_err(|e| format!("{}: {e}", schema_path.display()))?;
    let schema: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", schema_path.display()))?;
    let version = str_at(&schema, &["api", "version"])?;
    let release_date = str_at(&schema, &["api", "release_date"])?;
    let package = aiogram
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    let mut entries = Vec::new();
    for section in array(&schema, "items")? {
        let title = str_at(section, &["title"])?;
        for child in array(section, "children")? {
            entries.push((title.clone(), child));
        }
    }
    let type_names: BTreeSet<String> = entries
        .iter()
        .filter_map(|(_, c)| c["name"].as_str())
        .filter(|n| n.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(str::to_owned)
        .collect();

    let mut types = Vec::new();
    let mut methods = Vec::new();
    for (section, entry) in &entries {
        let name = str_at(entry, &["name"])?;
        let anchor = str_at(entry, &["anchor"])?;
        let fields = fields_of(entry)?;
        if type_names.contains(&name) {
            let union = if fields.is_empty() {
                union_of(&butcher, &name, entry, &entries)?
            } else {
                None
            };
            types.push(Type {
                name,
                anchor,
                section: section.clone(),
                fields,
                union,
            });
        } else {
            let description = str_at(entry, &["description"])?;
            let returns = returns_of(&description, &type_names)
                .ok_or_else(|| format!("{name}: no return type in its description"))?;
            methods.push(Method {
                name,
                anchor,
                section: section.clone(),
                params: fields,
                returns,
            });
        }
    }
    Ok(Spec {
        version,
        release_date,
        source: format!("{package} .butcher/schema/schema.json and .butcher/types/*/subtypes.yml"),
        types,
        methods,
    })
}

fn str_at(v: &Value, path: &[&str]) -> Result<String, String> {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("schema: no string at {}", path.join(".")))
}

fn array<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    v[key]
        .as_array()
        .ok_or_else(|| format!("schema: no array {key}"))
}

fn fields_of(entry: &Value) -> Result<Vec<Field>, String> {
    array(entry, "annotations")?
        .iter()
        .map(|a| {
            Ok(Field {
                name: str_at(a, &["name"])?,
                ty: str_at(a, &["type"])?,
                required: a["required"]
                    .as_bool()
                    .ok_or("schema: an annotation without `required`")?,
            })
        })
        .collect()
}

/// The union `name` is, if its description lists members.
fn union_of(
    butcher: &Path,
    name: &str,
    entry: &Value,
    entries: &[(String, &Value)],
) -> Result<Option<Union>, String> {
    let html = str_at(entry, &["html_description"])?;
    let Some(list) = html
        .split_once("<ul>")
        .and_then(|(_, rest)| rest.split_once("</ul>"))
        .map(|(list, _)| list)
    else {
        return Ok(None);
    };
    let names: Vec<String> = list
        .split("<li>")
        .filter_map(|item| {
            let (_, rest) = item.split_once("\">")?;
            let (member, _) = rest.split_once("</a>")?;
            Some(member.to_owned())
        })
        .collect();
    let find = |member: &str| {
        entries
            .iter()
            .find(|(_, e)| e["name"].as_str() == Some(member))
            .map(|(_, e)| *e)
            .ok_or_else(|| format!("{name}: member {member} is not a type"))
    };
    let subtypes = fs::read_to_string(butcher.join("types").join(name).join("subtypes.yml"))
        .unwrap_or_default();
    let mut discriminator = yaml_value(&subtypes, "discriminator");
    let extra = yaml_list(&subtypes, "extra_items");
    let value_of = |member: &Value, field: &str| -> Option<String> {
        member["annotations"]
            .as_array()?
            .iter()
            .find(|a| a["name"].as_str() == Some(field))
            .and_then(|a| a["description"].as_str())
            .and_then(constant_of)
    };
    if discriminator.is_none() {
        // No discriminator named: `type` is one if every member has a constant there.
        let all = names
            .iter()
            .map(|m| find(m).map(|e| value_of(e, "type").is_some()))
            .collect::<Result<Vec<bool>, String>>()?;
        if all.iter().all(|&b| b) {
            discriminator = Some("type".to_owned());
        }
    }
    let mut members = Vec::new();
    for member in &names {
        let value = match &discriminator {
            Some(field) => Some(
                value_of(find(member)?, field)
                    .ok_or_else(|| format!("{name}: {member} has no constant {field}"))?,
            ),
            None => {
                find(member)?;
                None
            }
        };
        members.push(Member {
            name: member.clone(),
            value,
        });
    }
    Ok(Some(Union {
        discriminator,
        members,
        extra,
    }))
}

/// `key: "value"` in a flat YAML file.
fn yaml_value(yaml: &str, key: &str) -> Option<String> {
    yaml.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?.trim();
        Some(rest.trim_matches('"').to_owned()).filter(|v| !v.is_empty())
    })
}

/// The `- item` lines under `key:` in a flat YAML file.
fn yaml_list(yaml: &str, key: &str) -> Vec<String> {
    let mut lines = yaml
        .lines()
        .skip_while(|l| l.trim_end() != format!("{key}:"));
    lines.next();
    lines
        .map_while(|l| l.trim_start().strip_prefix("- "))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .collect()
}

/// The constant a discriminator field's description names: `always 'x'`
/// or `must be x`.
fn constant_of(description: &str) -> Option<String> {
    if let Some((_, rest)) = description.split_once("always '") {
        return rest.split_once('\'').map(|(v, _)| v.to_owned());
    }
    let (_, rest) = description.split_once("must be ")?;
    let value: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    Some(value).filter(|v| !v.is_empty())
}

/// The return type a method's description names, as a type expression:
/// the first sentence about what is returned that names a type.
pub fn returns_of(description: &str, types: &BTreeSet<String>) -> Option<String> {
    for sentence in description.split(['.', '!']) {
        if !sentence.to_ascii_lowercase().contains("return") {
            continue;
        }
        let words: Vec<&str> = sentence
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let mut found = Vec::new();
        for (i, word) in words.iter().enumerate() {
            let known = types.contains(*word) || matches!(*word, "True" | "String" | "Integer");
            if !known {
                continue;
            }
            let array = i >= 2 && words[i - 2] == "Array" && words[i - 1] == "of";
            let ty = if array {
                format!("Array of {word}")
            } else {
                (*word).to_owned()
            };
            if !found.contains(&ty) {
                found.push(ty);
            }
        }
        if !found.is_empty() {
            return Some(found.join(" or "));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_types_are_read_from_the_sentence_that_names_them() {
        let types: BTreeSet<String> = ["Message", "Update", "StarTransactions", "User"]
            .map(String::from)
            .into();
        let cases = [
            ("Does a thing. Returns True when it worked.", "True"),
            ("Gives back an Array of Update values; returns them all.", "Array of Update"),
            (
                "For a chat message the changed Message is returned, otherwise True is returned.",
                "Message or True",
            ),
            (
                "Returns what the Bot earned, oldest first. In the end it returns a StarTransactions value.",
                "StarTransactions",
            ),
            ("Too early, it may return error 429. Else it returns True.", "True"),
        ];
        for (text, want) in cases {
            assert_eq!(returns_of(text, &types).as_deref(), Some(want), "{text}");
        }
        assert_eq!(returns_of("Nothing here.", &types), None);
    }

    #[test]
    fn discriminator_constants_are_read() {
        assert_eq!(
            constant_of("Which kind it is, always 'creator'").as_deref(),
            Some("creator")
        );
        assert_eq!(
            constant_of("Its kind, must be mpeg4_gif here").as_deref(),
            Some("mpeg4_gif")
        );
        assert_eq!(constant_of("Its kind"), None);
    }

    #[test]
    fn flat_yaml_is_read() {
        let yaml = "discriminator: \"status\"\nextra_items:\n  - String\n  - Array of RichText\n";
        assert_eq!(yaml_value(yaml, "discriminator").as_deref(), Some("status"));
        assert_eq!(
            yaml_list(yaml, "extra_items"),
            ["String", "Array of RichText"]
        );
        assert_eq!(yaml_value("{ }", "discriminator"), None);
    }
}
