//! The smolgram binary: parses the command line, runs the built-in bot (or
//! the demo, or a health probe) with the library, maps the outcome to an
//! exit code. No logic the library lacks.

mod demo;
mod echo;
mod healthcheck;

use std::process::ExitCode;

use smolgram::config::{self, Command, USAGE};
use smolgram::{Error, Summary};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match config::parse(&args, |key| std::env::var(key).ok()) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("smolgram: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    match command {
        Command::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("{}", version());
            ExitCode::SUCCESS
        }
        Command::Run(config) => {
            start_logging(&config.log_filter);
            exit_code(smolgram::run(echo::bot(), &config))
        }
        Command::Demo { config, serve } => {
            start_logging(&config.log_filter);
            demo::run(config, serve)
        }
        Command::Healthcheck(config) => healthcheck::probe(&config),
    }
}

/// `smolgram 0.1.0 (commit 0123abcd, x86_64-unknown-linux-musl)`.
fn version() -> String {
    format!(
        "smolgram {} (commit {}, {})",
        env!("CARGO_PKG_VERSION"),
        env!("SMOLGRAM_COMMIT"),
        env!("SMOLGRAM_TARGET")
    )
}

/// Installs the logger, and a panic hook that reports a panic as one log
/// line (handler panics are caught by the runtime; this names the place).
fn start_logging(filter: &str) {
    smolgram::init_logging(filter);
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("non-string panic");
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        log::error!("panic at={place} message={payload:?}");
    }));
}

/// 0 clean stop, 1 runtime failure, 2 configuration or required port,
/// 3 token rejected by Telegram.
pub(crate) fn exit_code(result: Result<Summary, Error>) -> ExitCode {
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(match e {
                Error::Config(_) | Error::Bind { .. } => 2,
                Error::Api {
                    code: 401 | 404, ..
                } => 3,
                _ => 1,
            })
        }
    }
}
