//! `generate`: Rust source from the facts.
//!
//! The rules, each in one place below:
//! - an object is a struct with public fields; an optional field is an
//!   `Option` that is skipped when `None`; a field holding another object is
//!   boxed (keeps every struct small, so a decode's stack frames stay small,
//!   and makes recursive types like `Message` possible); unknown fields are
//!   ignored; its `Deserialize` is written out, not derived: from a JSON
//!   object only, keys matched as text (serde's derive adds a decoder from
//!   an array and matchers on bytes and indices: 0.47 MB of the binary);
//! - a type users send (one reachable from a method's parameters) also gets
//!   `new(required…)` and a setter per optional field;
//! - a union is an enum of boxed members: told apart by its discriminator
//!   when it has one (`type`, `status`, `source`), else tried in turn, most
//!   required fields first, always from the union's raw JSON text, never
//!   through a `Value` (one decoder per member, not two); a kind this
//!   version does not know decodes as `Unknown(Value)`, never as an error;
//! - ids that are chats, users or messages are smolgram's newtypes;
//!   `Integer or String` (a `chat_id`) is a `Recipient`; `InputFile` the
//!   hand-written `InputFile`, and so is a `String` that names a file to
//!   send in an `Input*` type (`InputMediaPhoto.media`);
//! - a method is a parameter struct with `new(required…)`, setters, and an
//!   impl of `Method` naming it and its result type.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use crate::areas::{self, Cfg, Features, Gates};
use crate::graph;
use crate::spec::{Field, Method, Spec, Type};

/// Types the facts name that are hand-written in `support.rs`, not generated.
pub const HAND_WRITTEN: &[&str] = &["InputFile"];

/// Unions whose `Deserialize` is hand-written in `support.rs`, because what
/// tells their members apart is not a discriminator (`date` is 0 for an
/// inaccessible message).
const HAND_DECODED: &[&str] = &["MaybeInaccessibleMessage"];

/// Bot API names that would clash with smolgram's own: the `MessageId`
/// object (`{"message_id": …}`) beside the `MessageId` newtype.
const RENAMED: &[(&str, &str)] = &[("MessageId", "SentMessageId")];

/// Names for the unions the Bot API writes inline (`A or B or C`), by their
/// members. A new one stops the generator until it is named here.
const ANONYMOUS: &[(&[&str], &str)] = &[
    (
        &[
            "InlineKeyboardMarkup",
            "ReplyKeyboardMarkup",
            "ReplyKeyboardRemove",
            "ForceReply",
        ],
        "ReplyMarkup",
    ),
    (
        &[
            "InputMediaAudio",
            "InputMediaDocument",
            "InputMediaLivePhoto",
            "InputMediaPhoto",
            "InputMediaVideo",
        ],
        "MediaGroupItem",
    ),
    (
        &[
            "InputMediaAnimation",
            "InputMediaAudio",
            "InputMediaDocument",
            "InputMediaPhoto",
            "InputMediaVideo",
            "InputMediaVoiceNote",
        ],
        "RichMessageMedia",
    ),
    (&["Message", "True"], "MessageOrTrue"),
];

/// Rust's keywords, strict and reserved: such a field becomes `r#name`.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "typeof", "unsafe",
    "unsized", "use", "virtual", "where", "while", "yield",
];

const DOCS: &str = "https://core.telegram.org/bots/api";

/// A type expression, parsed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ty {
    Int,
    Float,
    Str,
    Bool,
    File,
    Recipient,
    Named(String),
    Array(Box<Ty>),
    /// An inline union, by its members.
    Anonymous(Vec<String>),
}

fn parse(expr: &str) -> Ty {
    if let Some(rest) = expr.strip_prefix("Array of ") {
        if rest.contains(", ") || rest.contains(" and ") {
            let members = rest
                .split(", ")
                .flat_map(|part| part.split(" and "))
                .map(str::to_owned)
                .collect();
            return Ty::Array(Box::new(Ty::Anonymous(members)));
        }
        return Ty::Array(Box::new(parse(rest)));
    }
    if expr.contains(" or ") {
        let parts: Vec<&str> = expr.split(" or ").collect();
        return match parts[..] {
            ["Integer", "String"] => Ty::Recipient,
            ["InputFile", "String"] => Ty::File,
            _ => Ty::Anonymous(parts.into_iter().map(str::to_owned).collect()),
        };
    }
    match expr {
        "Integer" => Ty::Int,
        "Float" => Ty::Float,
        "String" => Ty::Str,
        "Boolean" | "True" => Ty::Bool,
        "InputFile" => Ty::File,
        name => Ty::Named(name.to_owned()),
    }
}

/// The Rust name of a Bot API type.
pub fn rust_type_name(api: &str) -> String {
    RENAMED
        .iter()
        .find(|(from, _)| *from == api)
        .map_or(api, |(_, to)| to)
        .to_owned()
}

/// `sendPhoto` → `SendPhoto`.
pub fn pascal(method: &str) -> String {
    let mut chars = method.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// `edited_message` → `EditedMessage`.
fn snake_to_pascal(name: &str) -> String {
    name.split('_').map(pascal).collect()
}

/// Whether a `String` field of a type users send names a file to send
/// (a `file_id`, a URL or `attach://<part>`): the Bot API types these
/// `String`, we give them [`InputFile`] so that an upload can fill them in.
fn is_file_reference(owner: &str, field: &str) -> bool {
    owner.starts_with("Input")
        && matches!(
            field,
            "media" | "thumbnail" | "photo" | "cover" | "animation" | "video" | "sticker"
        )
}

/// The newtype an integer field holds, when it is clearly a chat, user or
/// message id (ephemeral message ids are their own numbering, so not those).
fn id_newtype(owner: &str, field: &str) -> Option<&'static str> {
    if field == "id" {
        return match owner {
            "Chat" | "ChatFullInfo" => Some("ChatId"),
            "User" => Some("UserId"),
            _ => None,
        };
    }
    if field.contains("ephemeral") {
        return None;
    }
    let one = field.strip_suffix('s').filter(|_| field.ends_with("_ids"));
    let base = one.unwrap_or(field);
    let is = |id: &str| base == id || base.ends_with(&format!("_{id}"));
    if is("chat_id") {
        Some("ChatId")
    } else if is("user_id") {
        Some("UserId")
    } else if is("message_id") {
        Some("MessageId")
    } else {
        None
    }
}

struct Model<'a> {
    spec: &'a Spec,
    types: BTreeMap<&'a str, &'a Type>,
    /// Each anonymous union's members → its name.
    anonymous: BTreeMap<Vec<String>, String>,
    /// Types reachable from a method's parameters: users build these.
    input: BTreeSet<String>,
    /// A member type's discriminator field and value, from its unions.
    tags: BTreeMap<String, (String, String)>,
    /// The types on a cycle, by their Rust names: their decoders count
    /// nesting.
    cyclic: BTreeSet<String>,
    /// Which feature, if any, each type and method needs.
    gates: Gates,
}

/// The generated files: (file name, unformatted code).
pub fn emit(spec: &Spec) -> Result<Vec<(String, String)>, String> {
    let model = Model::new(spec)?;
    Ok(vec![
        ("types.rs".to_owned(), model.types_file()?),
        ("methods.rs".to_owned(), model.methods_file()?),
    ])
}

impl<'a> Model<'a> {
    fn new(spec: &'a Spec) -> Result<Model<'a>, String> {
        let types: BTreeMap<&str, &Type> =
            spec.types.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut model = Model {
            spec,
            types,
            anonymous: BTreeMap::new(),
            input: BTreeSet::new(),
            tags: BTreeMap::new(),
            cyclic: graph::cyclic(&graph::edges(&spec.types))
                .into_iter()
                .map(rust_type_name)
                .collect(),
            gates: Gates::new(spec),
        };
        for t in &spec.types {
            let Some(union) = &t.union else { continue };
            let Some(field) = &union.discriminator else {
                continue;
            };
            for m in &union.members {
                let value = m
                    .value
                    .clone()
                    .ok_or_else(|| format!("{}: {} has no value", t.name, m.name))?;
                let tag = (field.clone(), value);
                if let Some(other) = model.tags.insert(m.name.clone(), tag.clone()) {
                    if other != tag {
                        return Err(format!("{}: tagged differently in two unions", m.name));
                    }
                }
            }
        }
        let mut expressions = Vec::new();
        for t in &spec.types {
            expressions.extend(t.fields.iter().map(|f| f.ty.as_str()));
        }
        for m in &spec.methods {
            expressions.extend(m.params.iter().map(|f| f.ty.as_str()));
            expressions.push(m.returns.as_str());
        }
        for expr in expressions {
            model.note_anonymous(&parse(expr))?;
        }
        model.check_names()?;
        model.input = model.reachable_from_params()?;
        Ok(model)
    }

    fn note_anonymous(&mut self, ty: &Ty) -> Result<(), String> {
        match ty {
            Ty::Array(inner) => self.note_anonymous(inner),
            Ty::Anonymous(members) => {
                let mut key = members.clone();
                key.sort();
                let name = ANONYMOUS
                    .iter()
                    .find(|(m, _)| {
                        let mut known: Vec<String> = m.iter().map(|s| (*s).to_owned()).collect();
                        known.sort();
                        known == key
                    })
                    .map(|(_, name)| (*name).to_owned())
                    .ok_or_else(|| {
                        format!(
                            "the inline union `{}` has no name: add it to ANONYMOUS in codegen/src/emit.rs",
                            members.join(" or ")
                        )
                    })?;
                for m in members {
                    if m != "True" && !self.types.contains_key(m.as_str()) {
                        return Err(format!("{name}: member {m} is not a type"));
                    }
                }
                self.anonymous.insert(members.clone(), name);
                Ok(())
            }
            Ty::Named(name) if !self.types.contains_key(name.as_str()) => {
                Err(format!("unknown type `{name}`"))
            }
            _ => Ok(()),
        }
    }

    /// Every Rust name is defined once, methods' and types' alike.
    fn check_names(&self) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        let names = self
            .spec
            .types
            .iter()
            .filter(|t| !HAND_WRITTEN.contains(&t.name.as_str()))
            .map(|t| rust_type_name(&t.name))
            .chain(self.anonymous.values().cloned())
            .chain(self.spec.methods.iter().map(|m| pascal(&m.name)))
            .chain(
                [
                    "Recipient",
                    "InputFile",
                    "ChatId",
                    "UserId",
                    "MessageId",
                    "Value",
                ]
                .map(String::from),
            );
        for name in names {
            if !seen.insert(name.clone()) {
                return Err(format!(
                    "two definitions named `{name}`: add one to RENAMED"
                ));
            }
        }
        Ok(())
    }

    fn reachable_from_params(&self) -> Result<BTreeSet<String>, String> {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<Ty> = self
            .spec
            .methods
            .iter()
            .flat_map(|m| m.params.iter().map(|p| parse(&p.ty)))
            .collect();
        while let Some(ty) = queue.pop_front() {
            match ty {
                Ty::Array(inner) => queue.push_back(*inner),
                Ty::Anonymous(members) => {
                    queue.extend(members.into_iter().filter(|m| m != "True").map(Ty::Named))
                }
                Ty::Named(name) => {
                    if !seen.insert(name.clone()) {
                        continue;
                    }
                    let t = self.types[name.as_str()];
                    queue.extend(t.fields.iter().map(|f| parse(&f.ty)));
                    if let Some(u) = &t.union {
                        queue.extend(u.members.iter().map(|m| Ty::Named(m.name.clone())));
                    }
                }
                _ => {}
            }
        }
        Ok(seen)
    }

    fn is_struct(&self, name: &str) -> bool {
        self.types
            .get(name)
            .is_some_and(|t| t.union.is_none() && !HAND_WRITTEN.contains(&name))
    }

    /// The Rust type of `ty` in `owner`'s `field`; `boxed` for a field (not
    /// an element of a `Vec`).
    fn rust(&self, ty: &Ty, owner: &str, field: &str, boxed: bool) -> String {
        match ty {
            Ty::Int => id_newtype(owner, field).unwrap_or("i64").to_owned(),
            Ty::Float => "f64".to_owned(),
            Ty::Str if is_file_reference(owner, field) => "InputFile".to_owned(),
            Ty::Str => "String".to_owned(),
            Ty::Bool => "bool".to_owned(),
            Ty::File => "InputFile".to_owned(),
            Ty::Recipient => "Recipient".to_owned(),
            Ty::Named(name) if boxed && self.is_struct(name) => {
                format!("Box<{}>", rust_type_name(name))
            }
            Ty::Named(name) => rust_type_name(name),
            Ty::Array(inner) => format!("Vec<{}>", self.rust(inner, owner, field, false)),
            Ty::Anonymous(members) => self.anonymous[members].clone(),
        }
    }

    /// How a `new` or setter argument of `ty` is taken, and turned into the
    /// field's type: (parameter type, conversion of `name`).
    fn argument(&self, ty: &Ty, owner: &str, field: &str, name: &str) -> (String, String) {
        let plain = self.rust(ty, owner, field, false);
        match ty {
            Ty::Int | Ty::Float | Ty::Bool => (plain, name.to_owned()),
            Ty::Named(n) if self.is_struct(n) => (
                format!("impl Into<{plain}>"),
                format!("Box::new({name}.into())"),
            ),
            _ => (format!("impl Into<{plain}>"), format!("{name}.into()")),
        }
    }

    fn types_file(&self) -> Result<String, String> {
        let mut out = String::new();
        let spec = self.spec;
        writeln!(
            out,
            "//! Every object type of Bot API {} ({}), and its unions.\n//!\n//! @generated by `codegen/` from `api-spec/bot-api.json`: do not edit; run\n//! `cargo run --manifest-path codegen/Cargo.toml -- generate`.\n",
            spec.version, spec.release_date
        )
        .unwrap();
        out.push_str("#![allow(\n    clippy::new_without_default,\n    clippy::too_many_arguments,\n    clippy::match_single_binding\n)]\n\n");
        out.push_str(
            "use std::fmt;\n\nuse serde::de::{Error as _, IgnoredAny, MapAccess, Visitor};\nuse serde::{Deserialize, Deserializer, Serialize};\nuse serde_json::Value;\n\n",
        );
        out.push_str("use super::nesting::{Level, Nesting};\nuse super::support::{field_of, member, next, raw, InputFile, Key, Recipient};\nuse crate::api::types::{ChatId, MessageId, UserId};\n\n");
        let update = self
            .types
            .get("Update")
            .ok_or("the facts have no Update type")?;
        let kinds: Vec<String> = update
            .fields
            .iter()
            .filter(|f| !f.required)
            .map(|f| format!("\"{}\"", f.name))
            .collect();
        writeln!(
            out,
            "/// The update kinds: the optional fields of [`Update`], as `allowed_updates` names them.\npub const UPDATE_KINDS: &[&str] = &[{}];\n",
            kinds.join(", ")
        )
        .unwrap();
        self.update_kind(&mut out, update);
        for t in &spec.types {
            if HAND_WRITTEN.contains(&t.name.as_str()) {
                continue;
            }
            let mut item = String::new();
            match &t.union {
                None => self.object(&mut item, t),
                Some(_) => self.union(&mut item, t),
            }
            out.push_str(&areas::gate_items(&item, &self.type_cfg(&t.name)));
        }
        for (members, name) in &self.anonymous {
            self.anonymous_union(&mut out, members, name);
        }
        Ok(out)
    }

    /// `UpdateKind`: one variant per optional field of `Update`, its name
    /// as `allowed_updates` spells it, and `Update::kind`.
    fn update_kind(&self, out: &mut String, update: &Type) {
        let kinds: Vec<(&str, String, Cfg)> = update
            .fields
            .iter()
            .filter(|f| !f.required)
            .map(|f| {
                let cfg = self.gates.cfg(&f.ty, &Features::new());
                (f.name.as_str(), snake_to_pascal(&f.name), cfg)
            })
            .collect();
        out.push_str("/// An update's kind: which optional field of [`Update`] it carries.\n#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[non_exhaustive]\npub enum UpdateKind {\n");
        for (name, variant, cfg) in &kinds {
            out.push_str(&areas::line(cfg, "    "));
            writeln!(out, "    /// `{name}`.\n    {variant},").unwrap();
        }
        out.push_str("}\n\nimpl UpdateKind {\n    /// Every kind, in the order of [`Update`]'s fields.\n    pub const ALL: &'static [UpdateKind] = &[");
        let all: Vec<String> = kinds
            .iter()
            .map(|(_, v, cfg)| format!("{cfg} UpdateKind::{v}").trim_start().to_owned())
            .collect();
        out.push_str(&all.join(", "));
        out.push_str("];\n\n    /// The kind's name, as `allowed_updates` spells it.\n    pub const fn name(self) -> &'static str {\n        match self {\n");
        for (name, variant, cfg) in &kinds {
            out.push_str(&areas::line(cfg, "            "));
            writeln!(out, "            UpdateKind::{variant} => \"{name}\",").unwrap();
        }
        out.push_str("        }\n    }\n}\n\nimpl Update {\n    /// The kind of this update: its first optional field that is set;\n    /// `None` for a kind newer than these types.\n    pub fn kind(&self) -> Option<UpdateKind> {\n");
        for (name, variant, cfg) in &kinds {
            let (ident, _) = ident_of(name);
            out.push_str(&areas::line(cfg, "        "));
            writeln!(
                out,
                "        if self.{ident}.is_some() {{\n            return Some(UpdateKind::{variant});\n        }}"
            )
            .unwrap();
        }
        out.push_str("        None\n    }\n}\n\n");
    }

    fn object(&self, out: &mut String, t: &Type) {
        let name = rust_type_name(&t.name);
        writeln!(
            out,
            "/// The `{}` object ([Bot API]({DOCS}#{})).",
            t.name, t.anchor
        )
        .unwrap();
        out.push_str("#[derive(Clone, Debug, Serialize)]\n");
        writeln!(out, "pub struct {name} {{").unwrap();
        let cfgs = self.field_cfgs(&t.fields, &self.gates.of_type(&t.name));
        self.fields(out, &t.name, &t.fields, &cfgs, "field");
        out.push_str("}\n\n");
        struct_decode(out, &name, &t.fields, &cfgs, &self.guard(&t.name));
        if self.input.contains(&t.name) {
            let tag = self.tags.get(&t.name);
            self.builder(out, &name, &t.name, &t.fields, &cfgs, Built::Object(tag));
        }
    }

    /// The `#[cfg]` of each field of an item of area `gate`: what its type
    /// needs beyond the item's own area. A required field never needs one
    /// (see `areas.rs`: what is required stays out of the areas).
    fn field_cfgs(&self, fields: &[Field], gate: &Features) -> Vec<Cfg> {
        fields
            .iter()
            .map(|f| {
                let cfg = self.gates.cfg(&f.ty, gate);
                assert!(
                    cfg.is_empty() || !f.required,
                    "{}: a required field needs {cfg}",
                    f.name
                );
                cfg
            })
            .collect()
    }

    /// The type's `#[cfg]`, by its API name.
    fn type_cfg(&self, name: &str) -> Cfg {
        areas::cfg_of(&self.gates.of_type(name))
    }

    fn fields(&self, out: &mut String, owner: &str, fields: &[Field], cfgs: &[Cfg], what: &str) {
        for (f, cfg) in fields.iter().zip(cfgs) {
            let ty = self.rust(&parse(&f.ty), owner, &f.name, true);
            let (ident, rename) = ident_of(&f.name);
            out.push_str(&areas::line(cfg, "    "));
            if f.required {
                writeln!(out, "    /// The `{}` {what}.", f.name).unwrap();
            } else {
                writeln!(out, "    /// The `{}` {what}; optional.", f.name).unwrap();
            }
            if let Some(rename) = rename {
                writeln!(out, "    #[serde(rename = \"{rename}\")]").unwrap();
            }
            if f.required {
                writeln!(out, "    pub {ident}: {ty},").unwrap();
            } else {
                // Parameters are only sent, so they need no `default`.
                if what == "parameter" {
                    out.push_str("    #[serde(skip_serializing_if = \"Option::is_none\")]\n");
                } else {
                    out.push_str(
                        "    #[serde(default, skip_serializing_if = \"Option::is_none\")]\n",
                    );
                }
                writeln!(out, "    pub {ident}: Option<{ty}>,").unwrap();
            }
        }
    }

    /// `new(required…)` and a setter per optional field. A discriminator
    /// field is set to its member's constant, and a required `True` to true.
    fn builder(
        &self,
        out: &mut String,
        name: &str,
        owner: &str,
        fields: &[Field],
        cfgs: &[Cfg],
        built: Built,
    ) {
        let tag = match built {
            Built::Object(tag) => tag,
            Built::Method => None,
        };
        let mut args = Vec::new();
        let mut inits = Vec::new();
        for (f, cfg) in fields.iter().zip(cfgs) {
            let (ident, _) = ident_of(&f.name);
            let ty = parse(&f.ty);
            if let Some((field, value)) = tag.filter(|(field, _)| *field == f.name) {
                debug_assert_eq!(field, &f.name);
                inits.push(format!("{ident}: \"{value}\".to_owned()"));
            } else if f.required && f.ty == "True" {
                inits.push(format!("{ident}: true"));
            } else if f.required {
                let (arg, conversion) = self.argument(&ty, owner, &f.name, &ident);
                args.push(format!("{ident}: {arg}"));
                if conversion == ident {
                    inits.push(ident.clone());
                } else {
                    inits.push(format!("{ident}: {conversion}"));
                }
            } else {
                inits.push(format!("{cfg} {ident}: None").trim_start().to_owned());
            }
        }
        writeln!(out, "impl {name} {{").unwrap();
        let what = match built {
            Built::Method => "Parameters",
            Built::Object(_) => "The object",
        };
        writeln!(
            out,
            "    /// {what} with the required fields given and the optional ones unset.\n    pub fn new({}) -> Self {{\n        {name} {{ {} }}\n    }}",
            args.join(", "),
            inits.join(", ")
        )
        .unwrap();
        for (f, cfg) in fields.iter().zip(cfgs).filter(|(f, _)| !f.required) {
            let (ident, _) = ident_of(&f.name);
            if tag.is_some_and(|(field, _)| *field == f.name) {
                continue;
            }
            if !cfg.is_empty() {
                write!(out, "\n    {cfg}").unwrap();
            }
            let value = "value";
            let (arg, conversion) = self.argument(&parse(&f.ty), owner, &f.name, value);
            writeln!(
                out,
                "\n    /// Sets `{}`.\n    pub fn {}(mut self, {value}: {arg}) -> Self {{\n        self.{ident} = Some({conversion});\n        self\n    }}",
                f.name,
                setter_name(&ident)
            )
            .unwrap();
        }
        out.push_str("}\n\n");
    }

    fn union(&self, out: &mut String, t: &Type) {
        let union = t.union.as_ref().expect("a union");
        let name = rust_type_name(&t.name);
        let members: Vec<String> = union.members.iter().map(|m| m.name.clone()).collect();
        let variants = variant_names(&t.name, &members);
        let told = match &union.discriminator {
            Some(d) => format!("told apart by `{d}`"),
            None => "told apart by their fields".to_owned(),
        };
        writeln!(
            out,
            "/// The `{}` union: one of its member objects, {told} ([Bot API]({DOCS}#{})).",
            t.name, t.anchor
        )
        .unwrap();
        let hand = HAND_DECODED.contains(&t.name.as_str());
        if !hand {
            out.push_str("///\n/// A kind this version does not know decodes as `Unknown`, never as an error.\n");
        }
        let untagged_decode = union.discriminator.is_none() && !hand;
        if untagged_decode && !union.extra.is_empty() {
            panic!("{}: extra items need a discriminator", t.name);
        }
        out.push_str("#[derive(Clone, Debug, Serialize)]\n");
        out.push_str("#[serde(untagged)]\n#[non_exhaustive]\n");
        writeln!(out, "pub enum {name} {{").unwrap();
        let mut order: Vec<usize> = (0..members.len()).collect();
        if untagged_decode {
            // Tried in turn: the member with the most required fields first.
            order.sort_by_key(|&i| std::cmp::Reverse(self.required_count(&members[i])));
        }
        for extra in &union.extra {
            match parse(extra) {
                Ty::Str => out.push_str("    /// Plain text.\n    Text(String),\n"),
                Ty::Array(inner) => writeln!(
                    out,
                    "    /// A sequence of them.\n    List(Vec<{}>),",
                    self.rust(&inner, &t.name, "", false)
                )
                .unwrap(),
                other => panic!("{}: extra item {other:?} is not supported", t.name),
            }
        }
        for &i in &order {
            let m = &union.members[i];
            let value = m
                .value
                .as_ref()
                .map(|v| format!(" (`\"{v}\"`)"))
                .unwrap_or_default();
            out.push_str(&areas::line(
                &self.gates.cfg(&m.name, &Features::new()),
                "    ",
            ));
            writeln!(
                out,
                "    /// Its [`{}`] member{value}.\n    {}(Box<{}>),",
                rust_type_name(&m.name),
                variants[i],
                rust_type_name(&m.name)
            )
            .unwrap();
        }
        if !hand {
            out.push_str(
                "    /// A kind this version does not know, as it came.\n    Unknown(Value),\n",
            );
        }
        out.push_str("}\n\n");
        if let Some(field) = &union.discriminator {
            self.tagged_decode(out, &name, field, union, &variants);
        } else if untagged_decode {
            let tried: Vec<(&str, &str)> = order
                .iter()
                .map(|&i| (variants[i].as_str(), members[i].as_str()))
                .collect();
            self.untagged_decode(out, &name, &tried, false);
        }
        for (m, variant) in members.iter().zip(&variants) {
            self.member_into_union(out, &name, variant, m);
        }
    }

    /// The first line of a decoder of a type on a cycle, which counts one
    /// level of nesting (`Message` on a budget of its own); empty for the
    /// other types, whose nesting the API's shape bounds.
    fn guard(&self, name: &str) -> String {
        if !self.cyclic.contains(name) {
            return String::new();
        }
        let level = if name == "Message" {
            "Message"
        } else {
            "Other"
        };
        format!("        let _nesting = Nesting::enter::<D::Error>(Level::{level})?;\n")
    }

    fn member_into_union(&self, out: &mut String, union: &str, variant: &str, member: &str) {
        let cfg = self.gates.cfg(member, &Features::new());
        from_member(out, union, variant, &rust_type_name(member), &cfg);
    }

    fn required_count(&self, member: &str) -> usize {
        self.types
            .get(member)
            .map_or(0, |t| t.fields.iter().filter(|f| f.required).count())
    }

    /// A discriminated union's `Deserialize`: the tag peeked from the raw
    /// text, then the member decoded from that text (see `support.rs` for
    /// why never through a `Value`).
    fn tagged_decode(
        &self,
        out: &mut String,
        name: &str,
        field: &str,
        union: &crate::spec::Union,
        variants: &[String],
    ) {
        writeln!(
            out,
            "impl<'de> Deserialize<'de> for {name} {{\n    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{\n{}        let raw = raw(deserializer)?;\n        let json = raw.get();",
            self.guard(name)
        )
        .unwrap();
        for extra in &union.extra {
            match parse(extra) {
                Ty::Str => out.push_str("        if json.starts_with('\"') {\n            return member(json).map(Self::Text);\n        }\n"),
                _ => out.push_str("        if json.starts_with('[') {\n            return member(json).map(Self::List);\n        }\n"),
            }
        }
        writeln!(
            out,
            "        Ok(match field_of::<String>(json, \"{field}\").as_deref() {{"
        )
        .unwrap();
        // Members that share a value (cached and uploaded inline results) are
        // tried in order; their required fields tell them apart.
        let mut by_value: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, m) in union.members.iter().enumerate() {
            let v = m.value.clone().expect("a tagged member has a value");
            match by_value.iter_mut().find(|(value, _)| *value == v) {
                Some((_, list)) => list.push(i),
                None => by_value.push((v, vec![i])),
            }
        }
        for (value, list) in &by_value {
            let mut arm = format!(
                "Self::{}(member(json)?)",
                variants[*list.last().expect("not empty")]
            );
            for &i in list.iter().rev().skip(1) {
                arm = format!(
                    "match member::<_, D::Error>(json) {{ Ok(member) => Self::{}(member), Err(_) => {arm} }}",
                    variants[i]
                );
            }
            let cfg = self
                .gates
                .cfg(&union.members[list[0]].name, &Features::new());
            out.push_str(&areas::line(&cfg, "            "));
            writeln!(out, "            Some(\"{value}\") => {arm},").unwrap();
        }
        out.push_str("            _ => Self::Unknown(member(json)?),\n        })\n    }\n}\n\n");
    }

    /// A union without a discriminator: its members tried in turn from the
    /// raw text, in the order `variants` lists them, `true` last.
    fn untagged_decode(
        &self,
        out: &mut String,
        name: &str,
        variants: &[(&str, &str)],
        has_true: bool,
    ) {
        writeln!(
            out,
            "impl<'de> Deserialize<'de> for {name} {{\n    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{\n{}        let raw = raw(deserializer)?;\n        let json = raw.get();",
            self.guard(name)
        )
        .unwrap();
        let mut tried = variants.to_vec();
        if has_true {
            tried.push(("True", "True"));
        }
        for (variant, member) in tried {
            out.push_str(&areas::line(
                &self.gates.cfg(member, &Features::new()),
                "        ",
            ));
            writeln!(
                out,
                "        if let Ok(member) = member::<_, D::Error>(json) {{\n            return Ok(Self::{variant}(member));\n        }}"
            )
            .unwrap();
        }
        out.push_str("        member(json).map(Self::Unknown)\n    }\n}\n\n");
    }

    fn anonymous_union(&self, out: &mut String, members: &[String], name: &str) {
        let objects: Vec<String> = members.iter().filter(|m| *m != "True").cloned().collect();
        let tagged = objects
            .iter()
            .map(|m| self.tags.get(m).map(|(field, _)| field.clone()))
            .collect::<Option<BTreeSet<String>>>()
            .filter(|fields| fields.len() == 1 && objects.len() == members.len());
        let listed = members
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(
            out,
            "/// One of {listed}: a union the Bot API writes inline ([Bot API]({DOCS}#available-types)).\n///\n/// A kind this version does not know decodes as `Unknown`, never as an error."
        )
        .unwrap();
        out.push_str("#[derive(Clone, Debug, Serialize)]\n");
        out.push_str("#[serde(untagged)]\n#[non_exhaustive]\n");
        writeln!(out, "pub enum {name} {{").unwrap();
        let variants = variant_names(name, &objects);
        let mut order: Vec<usize> = (0..objects.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.required_count(&objects[i])));
        for &i in &order {
            out.push_str(&areas::line(
                &self.gates.cfg(&objects[i], &Features::new()),
                "    ",
            ));
            writeln!(
                out,
                "    /// Its [`{}`] member.\n    {}(Box<{}>),",
                rust_type_name(&objects[i]),
                variants[i],
                rust_type_name(&objects[i])
            )
            .unwrap();
        }
        if members.iter().any(|m| m == "True") {
            out.push_str("    /// `true`: done, with nothing to return.\n    True(bool),\n");
        }
        out.push_str(
            "    /// A kind this version does not know, as it came.\n    Unknown(Value),\n}\n\n",
        );
        if let Some(fields) = tagged {
            let field = fields.into_iter().next().expect("one field");
            let union = crate::spec::Union {
                discriminator: Some(field.clone()),
                members: objects
                    .iter()
                    .map(|m| crate::spec::Member {
                        name: m.clone(),
                        value: Some(self.tags[m].1.clone()),
                    })
                    .collect(),
                extra: Vec::new(),
            };
            self.tagged_decode(out, name, &field, &union, &variants);
        } else {
            let tried: Vec<(&str, &str)> = order
                .iter()
                .map(|&i| (variants[i].as_str(), objects[i].as_str()))
                .collect();
            self.untagged_decode(out, name, &tried, members.iter().any(|m| m == "True"));
        }
        for (m, variant) in objects.iter().zip(&variants) {
            self.member_into_union(out, name, variant, m);
        }
    }

    fn methods_file(&self) -> Result<String, String> {
        let spec = self.spec;
        let mut out = String::new();
        writeln!(
            out,
            "//! The parameters of every method of Bot API {} ({}), each with its [`Method`] impl.\n//!\n//! @generated by `codegen/` from `api-spec/bot-api.json`: do not edit; run\n//! `cargo run --manifest-path codegen/Cargo.toml -- generate`.\n",
            spec.version, spec.release_date
        )
        .unwrap();
        out.push_str("#![allow(clippy::new_without_default, clippy::too_many_arguments)]\n\n");
        out.push_str("use serde::Serialize;\n\n");
        out.push_str("use super::send::Method;\nuse super::support::{InputFile, Recipient};\n#[allow(unused_imports)]\nuse super::types::*;\nuse crate::api::types::{ChatId, MessageId, UserId};\n\n");
        let names: Vec<String> = spec
            .methods
            .iter()
            .map(|m| format!("\"{}\"", m.name))
            .collect();
        writeln!(
            out,
            "/// Every method's name, as the Bot API spells it.\npub const METHODS: &[&str] = &[{}];\n",
            names.join(", ")
        )
        .unwrap();
        for m in &spec.methods {
            let mut item = String::new();
            self.method(&mut item, m);
            let cfg = areas::cfg_of(&self.gates.of_method(m));
            out.push_str(&areas::gate_items(&item, &cfg));
        }
        Ok(out)
    }

    fn method(&self, out: &mut String, m: &Method) {
        let name = pascal(&m.name);
        writeln!(
            out,
            "/// The parameters of [`{}`]({DOCS}#{}); send them with [`Client::send`](crate::api::Client::send).",
            m.name, m.anchor
        )
        .unwrap();
        out.push_str("#[derive(Clone, Debug, Serialize)]\n#[non_exhaustive]\n");
        writeln!(out, "pub struct {name} {{").unwrap();
        let cfgs = self.field_cfgs(&m.params, &self.gates.of_method(m));
        self.fields(out, &m.name, &m.params, &cfgs, "parameter");
        out.push_str("}\n\n");
        self.builder(out, &name, &m.name, &m.params, &cfgs, Built::Method);
        let output = self.rust(&parse(&m.returns), &m.name, "", false);
        writeln!(
            out,
            "impl Method for {name} {{\n    const NAME: &'static str = \"{}\";\n    type Output = {output};\n}}\n",
            m.name
        )
        .unwrap();
    }
}

/// What a `builder` builds: an object (a union's member has its tag field
/// and value), or a method's parameters.
#[derive(Clone, Copy)]
enum Built<'a> {
    Object(Option<&'a (String, String)>),
    Method,
}

/// An object's `Deserialize`, written out rather than derived: a map of
/// keys matched as text, so no decoder from a JSON array (`visit_seq`), no
/// field matcher on bytes or indices beside the one on text, one per type
/// (see: #12, the binary's size). Unknown keys are skipped; a repeated key
/// keeps its last value.
fn struct_decode(out: &mut String, name: &str, fields: &[Field], cfgs: &[Cfg], guard: &str) {
    let locals: Vec<(String, &Field, &Cfg)> = fields
        .iter()
        .zip(cfgs)
        .map(|(f, cfg)| (format!("f_{}", f.name), f, cfg))
        .collect();
    writeln!(
        out,
        "impl<'de> Deserialize<'de> for {name} {{\n    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{\n        struct Fields;\n        impl<'de> Visitor<'de> for Fields {{\n            type Value = {name};\n            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\n                f.write_str(\"a {name}\")\n            }}\n            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<{name}, A::Error> {{"
    )
    .unwrap();
    for (local, _, cfg) in &locals {
        out.push_str(&areas::line(cfg, "                "));
        writeln!(out, "                let mut {local} = None;").unwrap();
    }
    out.push_str("                while let Some(key) = map.next_key::<Key<'de>>()? {\n                    match key.as_str() {\n");
    for (local, f, cfg) in &locals {
        out.push_str(&areas::line(cfg, "                        "));
        let value = if f.required {
            "Some(next(&mut map)?)"
        } else {
            "next(&mut map)?"
        };
        writeln!(
            out,
            "                        \"{}\" => {local} = {value},",
            f.name
        )
        .unwrap();
    }
    out.push_str("                        _ => {\n                            map.next_value::<IgnoredAny>()?;\n                        }\n                    }\n                }\n");
    writeln!(out, "                Ok({name} {{").unwrap();
    for (local, f, cfg) in &locals {
        let (ident, _) = ident_of(&f.name);
        out.push_str(&areas::line(cfg, "                    "));
        if f.required {
            writeln!(
                out,
                "                    {ident}: {local}.ok_or_else(|| A::Error::missing_field(\"{}\"))?,",
                f.name
            )
            .unwrap();
        } else {
            writeln!(out, "                    {ident}: {local},").unwrap();
        }
    }
    writeln!(
        out,
        "                }})\n            }}\n        }}\n{guard}        deserializer.deserialize_map(Fields)\n    }}\n}}\n"
    )
    .unwrap();
}

/// `impl From<Member> for Union`, with the member's `#[cfg]`.
fn from_member(out: &mut String, union: &str, variant: &str, member: &str, cfg: &str) {
    out.push_str(&areas::line(cfg, ""));
    writeln!(
        out,
        "impl From<{member}> for {union} {{\n    fn from(member: {member}) -> Self {{\n        {union}::{variant}(Box::new(member))\n    }}\n}}\n"
    )
    .unwrap();
}

/// The Rust identifier of a field, and the serde rename it needs.
fn ident_of(field: &str) -> (String, Option<String>) {
    if field == "type" {
        ("kind".to_owned(), Some("type".to_owned()))
    } else if KEYWORDS.contains(&field) {
        (format!("r#{field}"), None)
    } else {
        (field.to_owned(), None)
    }
}

/// A setter's name: the field's, without `r#` trouble (`new` is taken).
fn setter_name(ident: &str) -> String {
    match ident {
        "new" => "new_".to_owned(),
        other => other.to_owned(),
    }
}

/// The variant names of a union's members: the union's name stripped from
/// the front when every member starts with it, else the members' common
/// leading words, else the whole names.
fn variant_names(union: &str, members: &[String]) -> Vec<String> {
    let words = |s: &str| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in s.chars() {
            match out.last_mut() {
                Some(w) if !c.is_ascii_uppercase() => w.push(c),
                _ => out.push(c.to_string()),
            }
        }
        out
    };
    let strip = |prefix: &[String]| -> Option<Vec<String>> {
        let names: Vec<String> = members
            .iter()
            .map(|m| {
                let w = words(m);
                (w.len() > prefix.len() && w[..prefix.len()] == *prefix)
                    .then(|| w[prefix.len()..].concat())
            })
            .collect::<Option<_>>()?;
        let distinct: BTreeSet<&String> = names.iter().collect();
        (distinct.len() == names.len() && !names.iter().any(|n| n == "Unknown")).then_some(names)
    };
    if let Some(names) = strip(&words(union)) {
        return names;
    }
    let first = words(&members[0]);
    let mut common = 0;
    while common < first.len()
        && members.iter().all(|m| {
            let w = words(m);
            w.len() > common + 1 && w[common] == first[common]
        })
    {
        common += 1;
    }
    let names = match common {
        0 => members.to_vec(),
        _ => strip(&first[..common]).unwrap_or_else(|| members.to_vec()),
    };
    drop_shared_suffix(union, names)
}

/// `names` without the trailing words they all share with `union`'s name
/// (`InputMessageContent`: `TextMessageContent` → `Text`), if that leaves
/// them distinct and not empty.
fn drop_shared_suffix(union: &str, names: Vec<String>) -> Vec<String> {
    let words = |s: &str| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in s.chars() {
            match out.last_mut() {
                Some(w) if !c.is_ascii_uppercase() => w.push(c),
                _ => out.push(c.to_string()),
            }
        }
        out
    };
    let union_words = words(union);
    let split: Vec<Vec<String>> = names.iter().map(|n| words(n)).collect();
    let mut shared = 0;
    while shared < union_words.len()
        && split.iter().all(|w| {
            w.len() > shared + 1
                && w[w.len() - 1 - shared] == union_words[union_words.len() - 1 - shared]
        })
    {
        shared += 1;
    }
    if shared == 0 {
        return names;
    }
    let stripped: Vec<String> = split
        .iter()
        .map(|w| w[..w.len() - shared].concat())
        .collect();
    let distinct: BTreeSet<&String> = stripped.iter().collect();
    if distinct.len() == stripped.len() && !stripped.iter().any(|n| n == "Unknown") {
        stripped
    } else {
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_expressions_parse() {
        assert_eq!(
            parse("Array of Array of PhotoSize"),
            Ty::Array(Box::new(Ty::Array(Box::new(Ty::Named("PhotoSize".into())))))
        );
        assert_eq!(parse("Integer or String"), Ty::Recipient);
        assert_eq!(parse("InputFile or String"), Ty::File);
        assert_eq!(
            parse("Array of InputMediaAudio, InputMediaDocument and InputMediaPhoto"),
            Ty::Array(Box::new(Ty::Anonymous(vec![
                "InputMediaAudio".into(),
                "InputMediaDocument".into(),
                "InputMediaPhoto".into()
            ])))
        );
        assert_eq!(parse("True"), Ty::Bool);
    }

    #[test]
    fn ids_are_newtypes_where_they_clearly_are_ids() {
        assert_eq!(id_newtype("Chat", "id"), Some("ChatId"));
        assert_eq!(id_newtype("User", "id"), Some("UserId"));
        assert_eq!(id_newtype("Story", "id"), None);
        assert_eq!(id_newtype("Message", "migrate_to_chat_id"), Some("ChatId"));
        assert_eq!(
            id_newtype("deleteMessages", "message_ids"),
            Some("MessageId")
        );
        assert_eq!(id_newtype("Message", "message_thread_id"), None);
        assert_eq!(id_newtype("ReplyParameters", "ephemeral_message_id"), None);
        assert_eq!(
            id_newtype("setManagedBotAccessSettings", "added_user_ids"),
            Some("UserId")
        );
    }

    #[test]
    fn variant_names_drop_the_shared_prefix() {
        let names = |u: &str, m: &[&str]| {
            variant_names(u, &m.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            names("ChatMember", &["ChatMemberOwner", "ChatMemberLeft"]),
            ["Owner", "Left"]
        );
        assert_eq!(
            names("InputPollMedia", &["InputMediaPhoto", "InputMediaVenue"]),
            ["Photo", "Venue"]
        );
        assert_eq!(
            names("ReplyMarkup", &["InlineKeyboardMarkup", "ForceReply"]),
            ["InlineKeyboardMarkup", "ForceReply"]
        );
        assert_eq!(
            names(
                "MaybeInaccessibleMessage",
                &["Message", "InaccessibleMessage"]
            ),
            ["Message", "InaccessibleMessage"]
        );
    }
}
