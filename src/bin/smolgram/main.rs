//! The smolgram binary: parses the command line, runs the built-in bot (or
//! the demo, or a health probe) with the library, maps the outcome to an
//! exit code. No logic the library lacks.

mod botfile;
mod cli;
mod demo;
mod echo;
mod filebot;
mod healthcheck;
mod program;
mod send;
mod toml;

use std::process::ExitCode;

use cli::{Command, USAGE};
use smolgram::{Error, Summary};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args, |key| std::env::var(key).ok()) {
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
        Command::Run { config, bot_file } => {
            smolgram::init_logging(&config.log_filter);
            let bot = match bot_file {
                Some(path) => filebot::bot(&path, config.token.clone(), config.handler_timeout),
                None => Ok(echo::bot()),
            };
            exit_code(bot.and_then(|bot| smolgram::run(bot, &config)))
        }
        Command::CheckConfig(path) => match botfile::load(&path) {
            Ok(file) => {
                println!("{}: ok, {} commands", path.display(), file.commands.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("smolgram: {e}");
                ExitCode::from(e.exit_code())
            }
        },
        Command::Demo { config, serve } => {
            smolgram::init_logging(&config.log_filter);
            demo::run(config, serve)
        }
        Command::Healthcheck(config) => healthcheck::probe(&config),
        Command::Send(send) => send::run(*send),
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

/// The run's outcome as the exit code [`Error::exit_code`] gives, the error
/// logged as one line.
pub(crate) fn exit_code(result: Result<Summary, Error>) -> ExitCode {
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// On musl (the static binaries), dlmalloc: musl's own allocator is a lock
/// for all threads and unmaps memory it soon maps again (see Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;
