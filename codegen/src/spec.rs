//! The facts file, `api-spec/bot-api.json`: names, anchors, types, required
//! flags, union members and return types of one Bot API version, nothing else
//! (no description prose).

use serde::{Deserialize, Serialize};

/// One Bot API version's facts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub version: String,
    pub release_date: String,
    pub source: String,
    pub types: Vec<Type>,
    pub methods: Vec<Method>,
}

/// An object type, or a union of object types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Type {
    pub name: String,
    pub anchor: String,
    pub section: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub union: Option<Union>,
}

/// The members of a union and how they are told apart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Union {
    /// The field whose constant value names the member, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discriminator: Option<String>,
    pub members: Vec<Member>,
    /// Non-object shapes the union may also take (`String`, `Array of X`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
}

/// One member of a union.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    #[serde(rename = "type")]
    pub name: String,
    /// Its discriminator value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A field of a type or a parameter of a method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    /// The type expression as the Bot API writes it (`Array of PhotoSize`).
    #[serde(rename = "type")]
    pub ty: String,
    pub required: bool,
}

/// A method: its parameters and what it returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Method {
    pub name: String,
    pub anchor: String,
    pub section: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Field>,
    /// A type expression, like a field's (`Message or True`).
    pub returns: String,
}

impl Spec {
    /// The facts as the file holds them: one field, parameter or member a
    /// line, so that a new API version reviews as a readable diff.
    pub fn to_json(&self) -> String {
        let line = |v: &dyn erased::Json| v.json();
        let mut out = String::new();
        out.push_str("{\n");
        out.push_str(&format!("  \"version\": {},\n", line(&self.version)));
        out.push_str(&format!(
            "  \"release_date\": {},\n",
            line(&self.release_date)
        ));
        out.push_str(&format!("  \"source\": {},\n", line(&self.source)));
        out.push_str("  \"types\": [\n");
        for (i, t) in self.types.iter().enumerate() {
            out.push_str("    {\n");
            out.push_str(&format!("      \"name\": {},\n", line(&t.name)));
            out.push_str(&format!("      \"anchor\": {},\n", line(&t.anchor)));
            out.push_str(&format!("      \"section\": {}", line(&t.section)));
            if !t.fields.is_empty() {
                out.push_str(",\n      \"fields\": [\n");
                list(&mut out, &t.fields, 8);
                out.push_str("      ]");
            }
            if let Some(u) = &t.union {
                out.push_str(",\n      \"union\": {\n");
                if let Some(d) = &u.discriminator {
                    out.push_str(&format!("        \"discriminator\": {},\n", line(d)));
                }
                if !u.extra.is_empty() {
                    out.push_str(&format!("        \"extra\": {},\n", line(&u.extra)));
                }
                out.push_str("        \"members\": [\n");
                list(&mut out, &u.members, 10);
                out.push_str("        ]\n      }");
            }
            out.push_str("\n    }");
            out.push_str(if i + 1 < self.types.len() {
                ",\n"
            } else {
                "\n"
            });
        }
        out.push_str("  ],\n  \"methods\": [\n");
        for (i, m) in self.methods.iter().enumerate() {
            out.push_str("    {\n");
            out.push_str(&format!("      \"name\": {},\n", line(&m.name)));
            out.push_str(&format!("      \"anchor\": {},\n", line(&m.anchor)));
            out.push_str(&format!("      \"section\": {},\n", line(&m.section)));
            if !m.params.is_empty() {
                out.push_str("      \"params\": [\n");
                list(&mut out, &m.params, 8);
                out.push_str("      ],\n");
            }
            out.push_str(&format!("      \"returns\": {}\n", line(&m.returns)));
            out.push_str("    }");
            out.push_str(if i + 1 < self.methods.len() {
                ",\n"
            } else {
                "\n"
            });
        }
        out.push_str("  ]\n}\n");
        out
    }
}

/// `items` one compact JSON object a line, indented by `indent`.
fn list<T: Serialize>(out: &mut String, items: &[T], indent: usize) {
    for (i, item) in items.iter().enumerate() {
        out.push_str(&" ".repeat(indent));
        out.push_str(&serde_json::to_string(item).expect("facts always encode"));
        out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
    }
}

mod erased {
    /// Anything that writes itself as one line of JSON.
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("facts always encode")
        }
    }
}
