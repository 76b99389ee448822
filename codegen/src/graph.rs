//! The type graph of the facts: which type refers to which (a field's type,
//! a union's member or extra shape), and the types that sit on a cycle of it.
//! A decoder recurses once per level of nesting only through those, so they
//! are where the generated decoders count nesting (see `support.rs`).

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::Type;

/// The words of a type expression (`Array of PhotoSize`): the type names
/// it mentions are among them.
pub fn words_of(expr: &str) -> impl Iterator<Item = &str> {
    expr.split(|c: char| !c.is_ascii_alphanumeric())
}

/// The named types each type refers to directly.
pub fn edges(types: &[Type]) -> BTreeMap<&str, BTreeSet<&str>> {
    let known: BTreeSet<&str> = types.iter().map(|t| t.name.as_str()).collect();
    let names = |expr: &str| -> Vec<&str> {
        words_of(expr)
            .filter_map(|word| known.get(word).copied())
            .collect()
    };
    types
        .iter()
        .map(|t| {
            let mut to: BTreeSet<&str> = BTreeSet::new();
            for f in &t.fields {
                to.extend(names(&f.ty));
            }
            if let Some(union) = &t.union {
                for m in &union.members {
                    to.extend(names(&m.name));
                }
                for extra in &union.extra {
                    to.extend(names(extra));
                }
            }
            (t.name.as_str(), to)
        })
        .collect()
}

/// The types on a cycle of `edges`: each reaches itself.
pub fn cyclic<'a>(edges: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> BTreeSet<&'a str> {
    edges
        .keys()
        .copied()
        .filter(|&start| {
            let mut seen = BTreeSet::new();
            let mut todo: Vec<&str> = edges[start].iter().copied().collect();
            while let Some(t) = todo.pop() {
                if t == start {
                    return true;
                }
                if seen.insert(t) {
                    todo.extend(edges.get(t).into_iter().flatten().copied());
                }
            }
            false
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Field, Member, Union};

    fn object(name: &str, fields: &[&str]) -> Type {
        Type {
            name: name.to_owned(),
            anchor: name.to_lowercase(),
            section: String::new(),
            fields: fields
                .iter()
                .map(|ty| Field {
                    name: ty.to_lowercase(),
                    ty: (*ty).to_owned(),
                    required: false,
                })
                .collect(),
            union: None,
        }
    }

    #[test]
    fn cycles_through_fields_and_unions_are_found() {
        let mut either = object("Either", &[]);
        either.union = Some(Union {
            discriminator: None,
            members: vec![Member {
                name: "Node".to_owned(),
                value: None,
            }],
            extra: vec!["Array of Either".to_owned()],
        });
        let types = vec![
            object("Node", &["Array of Either", "Leaf"]),
            object("Leaf", &["Integer", "String"]),
            either,
            object("Selfish", &["Selfish"]),
            object("Root", &["Node"]),
        ];
        let edges = edges(&types);
        assert_eq!(edges["Leaf"], BTreeSet::new());
        let cyclic: Vec<&str> = cyclic(&edges).into_iter().collect();
        assert_eq!(cyclic, ["Either", "Node", "Selfish"]);
    }
}
