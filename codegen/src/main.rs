//! smolgram's Bot API generator.
//!
//! `cargo run --manifest-path codegen/Cargo.toml -- <verb>`:
//! - `extract AIOGRAM_DIR`: writes `api-spec/bot-api.json`, the facts of an
//!   unpacked aiogram source distribution (see `api-spec/NOTICE`);
//! - `generate`: writes the Rust files of `src/api/generated/` from the facts;
//! - `check`: regenerates in memory and fails, one line per file, if the
//!   committed files differ, or if a type or method of the facts is missing
//!   from the output.
//!
//! The output is plain Rust (serde derives and a few hand-rolled impls), run
//! through `rustfmt` so that `cargo fmt --check` agrees with `check`.

mod areas;
mod check;
mod emit;
mod extract;
mod graph;
mod spec;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use spec::Spec;

/// Where the facts live, from the repository root.
const FACTS: &str = "api-spec/bot-api.json";
/// Where the generated files go, from the repository root.
const OUT_DIR: &str = "src/api/generated";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen/ sits in the repository root")
        .to_path_buf();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["extract", dir] => run_extract(&root, Path::new(dir)),
        ["generate"] => run_generate(&root),
        ["check"] => run_check(&root),
        _ => Err("usage: codegen extract AIOGRAM_DIR | generate | check".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("codegen: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_extract(root: &Path, aiogram: &Path) -> Result<(), String> {
    let spec = extract::extract(aiogram)?;
    let path = root.join(FACTS);
    fs::create_dir_all(path.parent().expect("FACTS has a directory"))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    fs::write(&path, spec.to_json()).map_err(|e| format!("{}: {e}", path.display()))?;
    let unions = spec.types.iter().filter(|t| t.union.is_some()).count();
    println!(
        "wrote {FACTS}: Bot API {} ({}), {} types ({unions} unions), {} methods",
        spec.version,
        spec.release_date,
        spec.types.len(),
        spec.methods.len()
    );
    Ok(())
}

fn load(root: &Path) -> Result<Spec, String> {
    let path = root.join(FACTS);
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The generated files, formatted, by path from the repository root.
fn generated(root: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let spec = load(root)?;
    emit::emit(&spec)?
        .into_iter()
        .map(|(name, code)| Ok((Path::new(OUT_DIR).join(name), check::rustfmt(&code)?)))
        .collect()
}

fn run_generate(root: &Path) -> Result<(), String> {
    let files = generated(root)?;
    for (path, code) in &files {
        let full = root.join(path);
        fs::write(&full, code).map_err(|e| format!("{}: {e}", full.display()))?;
        println!("wrote {} ({} lines)", path.display(), code.lines().count());
    }
    Ok(())
}

fn run_check(root: &Path) -> Result<(), String> {
    let spec = load(root)?;
    let files = generated(root)?;
    let mut problems = check::differences(root, &files);
    problems.extend(check::coverage(&spec, &files));
    problems.extend(check::features(root));
    if problems.is_empty() {
        Ok(())
    } else {
        for problem in &problems {
            eprintln!("codegen check: {problem}");
        }
        Err(format!(
            "{} problem(s); run `cargo run --manifest-path codegen/Cargo.toml -- generate`",
            problems.len()
        ))
    }
}
