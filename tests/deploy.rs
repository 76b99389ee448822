//! The deploy kit (Dockerfile, .dockerignore, railway.json, Procfile, the
//! systemd unit), read as text and held to what the binary really does: its
//! flags, its health port, its drain deadline, its exit codes.
//!
//! Needs no Docker engine and no running systemd. `systemd-analyze verify`
//! is an ignored test (the tool may be missing on a fresh machine): `.ci/run`
//! installs it and runs `cargo test --test deploy -- --ignored`.
//! scripts/check-image-layout (`just docker-check`) checks the built binary.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use smolgram::api::Token;
use smolgram::config::{self, Config};
use smolgram::testkit::FakeApi;

/// Where `just static` puts the x86_64 binary, and so what the image copies by default.
const STATIC_BINARY: &str = "target/x86_64-unknown-linux-musl/release/smolgram";

/// `docker stop` and `docker compose down` wait this long before SIGKILL.
const DOCKER_STOP_GRACE: Duration = Duration::from_secs(10);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    let full = root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The defaults of a run, whatever the token.
fn defaults() -> Config {
    Config::new(Token::parse(FakeApi::TOKEN).unwrap())
}

fn default_drain() -> Duration {
    defaults().drain_timeout
}

/// `smolgram [VERB] ARGS…` with `env` as its environment: the verb (`run`
/// if none), and the run's config as the library parses it (a `healthcheck`
/// reads no token).
fn parse(args: &[&str], env: &[(String, String)]) -> Result<(String, Config), smolgram::Error> {
    let (verb, rest) = match args.split_first() {
        Some((word, rest)) if !word.starts_with('-') => (word.to_string(), rest),
        _ => ("run".to_owned(), args),
    };
    let rest: Vec<String> = rest.iter().map(|a| a.to_string()).collect();
    let env = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let config = match verb.as_str() {
        "healthcheck" => config::parse_over(defaults(), &rest, env)?,
        _ => config::parse(&rest, env)?,
    };
    Ok((verb, config))
}

/// `smolgram --help`, as the binary prints it.
fn usage() -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smolgram"))
        .arg("--help")
        .output()
        .expect("the smolgram binary runs");
    assert!(out.status.success(), "smolgram --help: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8 usage")
}

/// contrib/env.example's variables: what the unit's EnvironmentFile starts from.
fn example_env() -> Vec<(String, String)> {
    read("contrib/env.example")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("env.example: {line:?} is not KEY=value"));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

// ---- Dockerfile -------------------------------------------------------------

/// A Dockerfile's instructions as (KEYWORD, arguments): comments dropped,
/// continuation lines joined, as docker's parser does.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let (keyword, args) = pending.split_once(' ').unwrap_or((pending.as_str(), ""));
        out.push((keyword.to_ascii_uppercase(), args.trim().to_owned()));
        pending.clear();
    }
    assert!(
        pending.is_empty(),
        "a continuation runs off the end: {pending:?}"
    );
    out
}

fn dockerfile() -> Vec<(String, String)> {
    instructions(&read("Dockerfile"))
}

/// The arguments of the one `keyword` instruction.
fn only<'a>(instructions: &'a [(String, String)], keyword: &str) -> &'a str {
    let found: Vec<&str> = instructions
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, args)| args.as_str())
        .collect();
    assert_eq!(found.len(), 1, "expected one {keyword}, got {found:?}");
    found[0]
}

/// An exec-form (JSON array) command; a shell form would need /bin/sh, which scratch lacks.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args)
        .unwrap_or_else(|e| panic!("{args:?} is not exec form (a JSON array): {e}"))
}

/// `ARG NAME=default` → default.
fn arg_default(instructions: &[(String, String)], name: &str) -> String {
    instructions
        .iter()
        .filter(|(k, _)| k == "ARG")
        .find_map(|(_, args)| args.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no ARG {name}=default"))
        .to_owned()
}

/// The COPY source with the build args at their defaults, as docker expands it.
fn default_copy_source(instructions: &[(String, String)]) -> String {
    let target = arg_default(instructions, "TARGET");
    let binary = arg_default(instructions, "BINARY").replace("${TARGET}", &target);
    let (source, _) = only(instructions, "COPY").split_once(' ').unwrap();
    source
        .replace("${BINARY}", &binary)
        .replace("${TARGET}", &target)
}

#[test]
fn dockerfile_is_one_scratch_stage_with_only_the_binary() {
    let docker = dockerfile();
    assert_eq!(only(&docker, "FROM"), "scratch");
    for shell_only in ["RUN", "SHELL", "ADD", "CMD"] {
        assert!(
            docker.iter().all(|(k, _)| k != shell_only),
            "{shell_only}: scratch has no shell, and the image holds one file"
        );
    }
    let copy: Vec<&str> = only(&docker, "COPY").split_whitespace().collect();
    assert_eq!(copy, ["${BINARY}", "/smolgram"], "one file, to /smolgram");
    assert_eq!(exec_form(only(&docker, "ENTRYPOINT")), ["/smolgram"]);
    assert_eq!(only(&docker, "STOPSIGNAL"), "SIGTERM");
}

#[test]
fn dockerfile_runs_as_a_numeric_non_root_user() {
    let docker = dockerfile();
    // By number: scratch has no /etc/passwd to look a name up in.
    let user = only(&docker, "USER");
    let (uid, gid) = user.split_once(':').expect("USER uid:gid");
    let uid: u32 = uid.parse().expect("numeric uid");
    let gid: u32 = gid.parse().expect("numeric gid");
    assert!(uid != 0 && gid != 0, "USER {user} is root");
    // The user must be declared before the process starts: nothing after it may undo it.
    let last = docker.iter().rposition(|(k, _)| k == "USER").unwrap();
    let entry = docker.iter().rposition(|(k, _)| k == "ENTRYPOINT").unwrap();
    assert!(last < entry, "USER must come before ENTRYPOINT");
}

#[test]
fn dockerfile_copies_the_static_build_by_default() {
    assert_eq!(default_copy_source(&dockerfile()), STATIC_BINARY);
}

#[test]
fn dockerfile_health_check_is_the_binarys_own_probe_of_the_exposed_port() {
    let docker = dockerfile();
    let exposed: u16 = only(&docker, "EXPOSE").parse().expect("EXPOSE PORT");
    let default_health = defaults().health.expect("health is on by default");
    assert_eq!(
        exposed,
        default_health.port(),
        "EXPOSE the default health port"
    );

    let healthcheck = only(&docker, "HEALTHCHECK");
    let (options, command) = healthcheck
        .split_once("CMD ")
        .expect("HEALTHCHECK [OPTIONS] CMD [...]");
    let command = exec_form(command);
    assert_eq!(command, ["/smolgram", "healthcheck"]);
    let copy_dest = only(&docker, "COPY").split_whitespace().nth(1).unwrap();
    assert_eq!(command[0], copy_dest, "the probe runs the copied binary");

    // The probe parses the same env as the bot (PORT): with none set it
    // knocks on the port the image exposes.
    match parse(
        &command[1..].iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    ) {
        Ok((verb, config)) if verb == "healthcheck" => {
            assert_eq!(config.health.map(|a| a.port()), Some(exposed))
        }
        other => panic!("`smolgram healthcheck` is not the probe: {other:?}"),
    }

    // The probe gives up after 3 s by itself (src/bin/smolgram/healthcheck.rs);
    // docker must not cut it off first.
    let timeout = options
        .split_whitespace()
        .find_map(|o| o.strip_prefix("--timeout="))
        .map(timespan)
        .expect("HEALTHCHECK --timeout=");
    assert!(timeout > Duration::from_secs(3), "--timeout={timeout:?}");
}

#[test]
fn image_drain_ends_before_docker_stop_kills() {
    // STOPSIGNAL SIGTERM starts the drain; `docker stop` SIGKILLs 10 s later.
    assert_eq!(only(&dockerfile(), "STOPSIGNAL"), "SIGTERM");
    assert!(default_drain() < DOCKER_STOP_GRACE, "{:?}", default_drain());
}

#[test]
fn dockerfile_source_final_stage_is_the_dockerfiles_image() {
    let source = instructions(&read("contrib/Dockerfile.source"));
    let last_from = source.iter().rposition(|(k, _)| k == "FROM").unwrap();
    assert_eq!(source[last_from].1, "scratch");
    let build = &source[..last_from];
    let run = build
        .iter()
        .filter(|(k, _)| k == "RUN")
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    // Cargo.lock's versions; --target keeps +crt-static off the proc-macros.
    assert!(
        run.contains("cargo build --release --locked --target"),
        "{run}"
    );

    // Everything after COPY is the same image as the Dockerfile's.
    let strip = |instructions: &[(String, String)]| -> Vec<(String, String)> {
        instructions
            .iter()
            .filter(|(k, _)| k != "ARG" && k != "COPY" && k != "FROM")
            .cloned()
            .collect()
    };
    assert_eq!(strip(&source[last_from..]), strip(&dockerfile()));
    assert_eq!(
        only(&source[last_from..], "COPY"),
        "--from=build /smolgram /smolgram"
    );
}

// ---- .dockerignore ----------------------------------------------------------

/// Docker's rules, for the subset of pattern syntax the ignore files may use
/// (checked): patterns in order, the last match wins, `!` re-admits, a match
/// of a parent directory counts, `*` and `?` stay within one path segment.
struct Ignore(Vec<(bool, Vec<String>)>);

impl Ignore {
    fn read(path: &str) -> Ignore {
        let mut patterns = Vec::new();
        for line in read(path).lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (admit, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, line),
            };
            assert!(
                pattern
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "*/._-".contains(c)),
                "{path}: {pattern:?} uses syntax this test does not model"
            );
            let segments = pattern
                .trim_matches('/')
                .split('/')
                .map(str::to_owned)
                .collect();
            patterns.push((admit, segments));
        }
        Ignore(patterns)
    }

    fn admits(&self, path: &str) -> bool {
        let path: Vec<&str> = path.split('/').collect();
        let mut admitted = true;
        for (admit, pattern) in &self.0 {
            // The path itself or one of its parent directories.
            let hit = (1..=path.len()).any(|n| {
                n == pattern.len() && pattern.iter().zip(&path[..n]).all(|(p, s)| glob(p, s))
            });
            if hit {
                admitted = *admit;
            }
        }
        admitted
    }
}

/// `*` any run of characters, everything else literal; within one segment.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            name.starts_with(head) && (head.len()..=name.len()).any(|i| glob(rest, &name[i..]))
        }
    }
}

#[test]
fn ignore_model_knows_dockers_rules() {
    assert!(glob("*-linux-musl*", "armv7-unknown-linux-musleabihf"));
    assert!(!glob("smolgram-*-musl", "smolgram-1-musl.tar.gz"));
    let ignore = Ignore(vec![
        (false, vec!["*".into()]),
        (true, vec!["a".into(), "b".into()]),
    ]);
    assert!(ignore.admits("a/b"));
    assert!(ignore.admits("a/b/c"), "inside an admitted directory");
    assert!(!ignore.admits("a"));
    assert!(!ignore.admits("a/c"));
}

#[test]
fn dockerignore_admits_the_static_binaries_and_nothing_else() {
    let ignore = Ignore::read(".dockerignore");
    let copied = default_copy_source(&dockerfile());
    let admitted = [
        copied.as_str(),
        "target/aarch64-unknown-linux-musl/release/smolgram",
        "target/armv7-unknown-linux-musleabihf/release/smolgram",
        // `just dist` names: dist/smolgram-<version>-<target>.
        "dist/smolgram-0.1.0-x86_64-unknown-linux-musl",
        "dist/smolgram-0.1.0-aarch64-unknown-linux-musl",
        "dist/smolgram-0.1.0-armv7-unknown-linux-musleabihf",
    ];
    for path in admitted {
        assert!(ignore.admits(path), "{path} must reach the build");
    }
    let excluded = [
        "Cargo.toml",
        "src/lib.rs",
        ".git",
        ".git/HEAD",
        ".env",
        "contrib/env.example",
        // A glibc build: needs a loader, which scratch lacks.
        "target/release/smolgram",
        "target/debug/smolgram",
        "target/x86_64-unknown-linux-musl/debug/smolgram",
        "target/x86_64-unknown-linux-musl/release/deps/smolgram-0123abcd",
        "target/x86_64-unknown-linux-musl/release/smolgram.d",
        "dist/smolgram-0.1.0-x86_64-unknown-linux-musl.tar.gz",
        "dist/smolgram-0.1.0-x86_64-unknown-linux-musl.sha256",
        "dist/SHA256SUMS",
    ];
    for path in excluded {
        assert!(!ignore.admits(path), "{path} must stay out of the context");
    }
}

#[test]
fn build_context_of_this_checkout_is_at_most_the_binaries() {
    let ignore = Ignore::read(".dockerignore");
    let mut sent = BTreeSet::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(root().join(&dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = dir.join(entry.file_name());
            let Some(name) = path.to_str().map(str::to_owned) else {
                continue;
            };
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push(path),
                Ok(_) if ignore.admits(&name) => {
                    sent.insert(name);
                }
                _ => {}
            }
        }
    }
    for path in &sent {
        let file = path.rsplit('/').next().unwrap();
        assert!(
            file == "smolgram" || file.starts_with("smolgram-"),
            "{path} would be sent to docker"
        );
    }
}

#[test]
fn dockerfile_source_context_has_the_sources_without_build_output() {
    let ignore = Ignore::read("contrib/Dockerfile.source.dockerignore");
    for path in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src/lib.rs",
        ".cargo/config.toml",
    ] {
        assert!(ignore.admits(path), "{path} is needed to build");
    }
    for path in [
        STATIC_BINARY,
        "target/debug/smolgram",
        "dist/x",
        ".git",
        ".env",
    ] {
        assert!(!ignore.admits(path), "{path} must stay out of the context");
    }
}

// ---- Railway, Heroku ----------------------------------------------------------

#[test]
fn railway_runs_one_replica_gated_on_liveness_and_drains_before_sigkill() {
    let railway: Value = serde_json::from_str(&read("railway.json")).expect("railway.json");
    assert_eq!(railway["build"]["builder"], "DOCKERFILE");
    let dockerfile = railway["build"]["dockerfilePath"].as_str().unwrap();
    assert!(root().join(dockerfile).is_file(), "{dockerfile}");

    let deploy = &railway["deploy"];
    // Railway keeps the old deployment polling until the new one's check
    // passes. /readyz is 503 during a 409, which two pollers of one token
    // cause each other, so gating on it holds the deploy (and both bots) in
    // a 409 tug of war for minutes, often until the check times out.
    assert_eq!(deploy["healthcheckPath"], "/healthz");
    assert_eq!(deploy["restartPolicyType"], "ON_FAILURE");
    // Two replicas of one token: a 409 that never ends.
    assert_eq!(deploy["numReplicas"], 1);
    assert_eq!(deploy["overlapSeconds"], 0, "no overlap: it is a 409 too");
    // Railway's parser wants numbers, and fails the deploy on a string.
    for key in [
        "numReplicas",
        "healthcheckTimeout",
        "overlapSeconds",
        "drainingSeconds",
        "restartPolicyMaxRetries",
    ] {
        assert!(deploy[key].is_u64(), "deploy.{key} must be a JSON number");
    }
    // SIGTERM to SIGKILL: Railway's default is 0 s, which cuts every drain.
    let draining = Duration::from_secs(deploy["drainingSeconds"].as_u64().unwrap());
    assert!(draining > default_drain(), "drainingSeconds {draining:?}");
}

#[test]
fn procfile_runs_the_bot_as_one_worker() {
    let procfile = read("Procfile");
    let processes: Vec<(&str, &str)> = procfile
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(':').expect("NAME: command"))
        .collect();
    // worker, not web: a long-polling bot takes no inbound traffic, and a web
    // dyno must answer on $PORT within 60 s or it is killed (R10).
    assert_eq!(processes.len(), 1, "{processes:?}");
    let (name, command) = processes[0];
    assert_eq!(name, "worker");
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[0], "./target/release/smolgram");
    assert!(matches!(
        parse(&words[1..], &example_env()),
        Ok((verb, _)) if verb == "run"
    ));
}

// ---- systemd -----------------------------------------------------------------

/// A unit file as (section, key, value), in order; keys may repeat.
fn unit() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    for line in read("contrib/smolgram.service").lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(!line.ends_with('\\'), "no continuations here: {line}");
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line.split_once('=').expect("Key=value");
        out.push((section.clone(), key.to_owned(), value.to_owned()));
    }
    out
}

/// Every value of `key` in [Service].
fn service(key: &str) -> Vec<String> {
    unit()
        .into_iter()
        .filter(|(s, k, _)| s == "Service" && k == key)
        .map(|(_, _, v)| v)
        .collect()
}

/// The one value of `key` in [Service].
fn service_one(key: &str) -> String {
    let values = service(key);
    assert_eq!(values.len(), 1, "{key}: {values:?}");
    values.into_iter().next().unwrap()
}

/// A systemd time span: `15`, `15s`, `1min 30s`, `500ms`.
fn timespan(value: &str) -> Duration {
    value
        .split_whitespace()
        .map(|part| {
            let digits = part
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(part.len());
            let n: u64 = part[..digits]
                .parse()
                .unwrap_or_else(|_| panic!("time span {value:?}"));
            match &part[digits..] {
                "" | "s" | "sec" => Duration::from_secs(n),
                "ms" | "msec" => Duration::from_millis(n),
                "m" | "min" => Duration::from_secs(n * 60),
                "h" | "hr" => Duration::from_secs(n * 3600),
                unit => panic!("time span {value:?}: unit {unit:?}"),
            }
        })
        .sum()
}

/// The unit's ExecStart parsed by smolgram's own parser, with env.example's env.
fn unit_config() -> Config {
    let exec = service_one("ExecStart");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(
        words[0], "/usr/local/bin/smolgram",
        "where the guide installs it"
    );
    match parse(&words[1..], &example_env()) {
        Ok((verb, config)) if verb == "run" => config,
        other => panic!("ExecStart={exec}: {other:?}"),
    }
}

#[test]
fn systemd_unit_exec_start_flags_are_smolgrams() {
    let config = unit_config();
    // Loopback: `smolgram healthcheck` reaches it; the network does not.
    let health: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    assert_eq!(config.health, Some(health));
    // A typo'd flag would have failed `unit_config` above; prove the parser
    // is strict, or this test proves nothing.
    assert!(parse(&["--health-adr", "127.0.0.1:8080"], &example_env()).is_err());
}

#[test]
fn systemd_unit_is_sandboxed() {
    let expected = [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictNamespaces", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("EnvironmentFile", "/etc/smolgram/env"),
    ];
    for (key, value) in expected {
        assert_eq!(service_one(key), value, "{key}");
    }
    // Exactly what it needs: the Bot API and DNS over IPv4/6, the health
    // port, the journal. Dropping AF_INET6 breaks IPv6-only hosts.
    let families: BTreeSet<String> = service_one("RestrictAddressFamilies")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let needed: BTreeSet<String> = ["AF_INET", "AF_INET6", "AF_UNIX"].map(str::to_owned).into();
    assert_eq!(families, needed);
    assert!(!service_one("MemoryMax").is_empty());
    assert!(unit()
        .iter()
        .any(|(s, k, v)| s == "Install" && k == "WantedBy" && v == "multi-user.target"));
}

#[test]
fn systemd_unit_stop_timeout_outlasts_the_drain() {
    assert_eq!(service_one("KillSignal"), "SIGTERM");
    let stop = timespan(&service_one("TimeoutStopSec"));
    // The unit's own --drain-timeout if it sets one, else the default; plus
    // room for the final confirmation after the drain.
    let drain = unit_config().drain_timeout.max(default_drain());
    assert!(
        stop >= drain + Duration::from_secs(5),
        "TimeoutStopSec {stop:?} vs drain {drain:?}"
    );
}

#[test]
fn systemd_unit_does_not_restart_on_bad_config_or_rejected_token() {
    assert_eq!(service_one("Restart"), "on-failure");
    assert!(timespan(&service_one("RestartSec")) >= Duration::from_secs(1));
    // The exit codes the binary documents.
    let usage = usage();
    assert!(usage.contains("2 bad configuration"), "{usage}");
    assert!(usage.contains("3 token rejected"), "{usage}");
    let codes = |key: &str| -> BTreeSet<String> {
        service(key)
            .iter()
            .flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    };
    let prevent = codes("RestartPreventExitStatus");
    assert!(
        prevent.contains("2") && prevent.contains("3"),
        "{prevent:?}"
    );
    // Still failures: `systemctl status` and OnFailure= must see them.
    let success = codes("SuccessExitStatus");
    assert!(
        !success.contains("2") && !success.contains("3"),
        "{success:?}"
    );
}

#[test]
fn env_example_sets_token_and_log_filter_and_says_chmod_600() {
    let env = example_env();
    let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["TELEGRAM_BOT_TOKEN", "RUST_LOG"]);
    assert!(read("contrib/env.example").contains("chmod 600"));
}

/// Ignored by a plain `cargo test`, which must pass on a machine without
/// systemd; `.ci/run` installs the tool and runs it with `--ignored`, where a
/// missing tool is a failure, never a pass.
#[test]
#[ignore = "needs systemd-analyze (Debian package systemd); .ci/run runs it"]
fn systemd_analyze_verifies_the_unit() {
    let version = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze cannot run ({e}); install Debian's package systemd")
        });
    assert!(version.status.success(), "systemd-analyze --version failed");
    // verify also checks that ExecStart's binary exists; the unit names the
    // installed path, so check a copy that names this build's binary.
    let dir = std::env::temp_dir().join(format!("smolgram-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("smolgram.service");
    let text = read("contrib/smolgram.service").replace(
        "ExecStart=/usr/local/bin/smolgram ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_smolgram")),
    );
    std::fs::write(&copy, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    // An unknown key or a bad value is only a warning on stderr, exit 0.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}
