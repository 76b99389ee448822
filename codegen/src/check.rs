//! `check`: the committed output is what the facts give, and covers them.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::emit;
use crate::spec::Spec;

/// `code` as `rustfmt` (edition 2021, default style, like `cargo fmt`) writes it.
pub fn rustfmt(code: &str) -> Result<String, String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("rustfmt: {e}; install it with `rustup component add rustfmt`"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = code.to_owned();
    // Written from a thread so that a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| format!("rustfmt: {e}"))?;
    writer
        .join()
        .expect("the writer thread does not panic")
        .map_err(|e| format!("rustfmt: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or("failed");
        return Err(format!("rustfmt: {first}"));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("rustfmt: {e}"))
}

/// One line per generated file that is missing or differs on disk.
pub fn differences(root: &Path, files: &[(PathBuf, String)]) -> Vec<String> {
    files
        .iter()
        .filter_map(|(path, want)| match fs::read_to_string(root.join(path)) {
            Ok(have) if have == *want => None,
            Ok(have) => Some(format!(
                "{} differs from the facts{}",
                path.display(),
                first_difference(&have, want)
                    .map(|line| format!(" (first at line {line})"))
                    .unwrap_or_default()
            )),
            Err(e) => Some(format!("{}: {e}", path.display())),
        })
        .collect()
}

/// The 1-based line where `a` and `b` first differ.
fn first_difference(a: &str, b: &str) -> Option<usize> {
    let mut a_lines = a.lines();
    let mut b_lines = b.lines();
    let mut n = 1;
    loop {
        match (a_lines.next(), b_lines.next()) {
            (None, None) => return None,
            (x, y) if x != y => return Some(n),
            _ => n += 1,
        }
    }
}

/// One line per type or method of the facts that the output lacks.
pub fn coverage(spec: &Spec, files: &[(PathBuf, String)]) -> Vec<String> {
    let all: String = files.iter().map(|(_, code)| code.as_str()).collect();
    let mut missing = Vec::new();
    for t in &spec.types {
        let name = emit::rust_type_name(&t.name);
        if emit::HAND_WRITTEN.contains(&t.name.as_str()) {
            continue;
        }
        let defined = all.contains(&format!("pub struct {name} "))
            || all.contains(&format!("pub enum {name} "));
        if !defined {
            missing.push(format!("type {} has no definition", t.name));
        }
    }
    for m in &spec.methods {
        let defined = all.contains(&format!("pub struct {} ", emit::pascal(&m.name)))
            && all.contains(&format!("const NAME: &'static str = \"{}\";", m.name));
        if !defined {
            missing.push(format!(
                "method {} has no parameter struct or Method impl",
                m.name
            ));
        }
    }
    missing
}

/// One line per area feature of `codegen/src/areas.rs` that smolgram's
/// `Cargo.toml` does not declare, or does not turn on with `full-api`.
pub fn features(root: &Path) -> Vec<String> {
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let full = manifest
        .lines()
        .find(|line| line.starts_with("full-api = ["))
        .unwrap_or("");
    crate::areas::features()
        .filter(|f| {
            let quoted = format!("\"{f}\"");
            !full.contains(&quoted) || !manifest.lines().any(|l| l.starts_with(&format!("{f} = [")))
        })
        .map(|f| format!("Cargo.toml: the feature `{f}` is not declared, or not in `full-api`"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_spec() -> Spec {
        serde_json::from_str(
            r#"{"version":"1.0","release_date":"2000-01-01","source":"test",
            "types":[{"name":"User","anchor":"user","section":"Available types",
                "fields":[{"name":"id","type":"Integer","required":true},
                          {"name":"first_name","type":"String","required":false}]},
                     {"name":"Update","anchor":"update","section":"Getting updates",
                "fields":[{"name":"update_id","type":"Integer","required":true},
                          {"name":"my_user","type":"User","required":false}]}],
            "methods":[{"name":"getMe","anchor":"getme","section":"Available methods","returns":"User"}]}"#,
        )
        .unwrap()
    }

    fn files_of(spec: &Spec) -> Vec<(PathBuf, String)> {
        emit::emit(spec)
            .unwrap()
            .into_iter()
            .map(|(name, code)| (PathBuf::from(name), rustfmt(&code).unwrap()))
            .collect()
    }

    #[test]
    fn check_fails_on_a_modified_generated_file() {
        let spec = tiny_spec();
        let files = files_of(&spec);
        let dir = std::env::temp_dir().join(format!("codegen-check-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for (path, code) in &files {
            fs::write(dir.join(path), code).unwrap();
        }
        assert!(
            differences(&dir, &files).is_empty(),
            "as generated: no difference"
        );
        let (first, code) = &files[0];
        fs::write(dir.join(first), code.replace("pub ", "pub(crate) ")).unwrap();
        let found = differences(&dir, &files);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("differs"), "{found:?}");
        fs::remove_file(dir.join(first)).unwrap();
        assert_eq!(
            differences(&dir, &files).len(),
            1,
            "a missing file is a difference"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn coverage_finds_a_type_or_method_the_output_lacks() {
        let spec = tiny_spec();
        let files = files_of(&spec);
        assert_eq!(coverage(&spec, &files), Vec::<String>::new());
        let mut more = spec.clone();
        more.types[0].name = "Chat".into();
        more.methods[0].name = "getChat".into();
        let missing = coverage(&more, &files);
        assert_eq!(missing.len(), 2, "{missing:?}");
    }

    #[test]
    fn output_is_already_rustfmt_clean() {
        for (path, code) in files_of(&tiny_spec()) {
            assert_eq!(rustfmt(&code).unwrap(), code, "{}", path.display());
        }
    }
}
