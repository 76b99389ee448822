//! `smolgram send`: one message (and files) to one chat, for shells, cron,
//! CI and systemd's `OnFailure=`, then exit (see: #14).
//!
//! The text comes from the arguments, else from stdin. Without a parse mode
//! a text over Telegram's 4096 characters goes as several messages in order
//! (split at paragraph, line, then word ends by the library's `text::split`);
//! with `--as-file` it goes as one `message.txt` document instead. Files go
//! after the text, in the order given. Each call has the bot's retries (429
//! after its `retry_after`, the network and 5xx with backoff), all within
//! `--timeout`.
//!
//! Exit codes: 0 sent, 2 usage, 3 token rejected, 4 Telegram refused the
//! chat or the message (not found, blocked, no rights, bad markup), 5 gave
//! up on the network or the timeout.
//!
//! Must not: print the token, or send part of the text silently dropped.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use smolgram::api::generated::Recipient;
use smolgram::api::methods::{SendDocument, SendMessage, SendPhoto};
use smolgram::api::types::ChatId;
use smolgram::api::{Client, RetryPolicy, Upload};
use smolgram::config::{self, Config};
use smolgram::text::{self, MESSAGE_LIMIT};
use smolgram::{Error, Runtime};

/// The most text read from stdin.
const MAX_STDIN: u64 = 16 * 1024 * 1024;

/// What to send, and how.
#[derive(Debug)]
pub(crate) struct Send {
    config: Config,
    chat: Recipient,
    /// `None`: read stdin (unless there are files).
    text: Option<String>,
    files: Vec<(Kind, PathBuf)>,
    parse_mode: Option<&'static str>,
    silent: bool,
    as_file: bool,
    timeout: Duration,
}

/// How a file goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Document,
    Photo,
}

/// Parses `send`'s arguments: its own flags, the text's words, and the
/// run's flags (`--api-url`) with the environment (the token).
///
/// # Errors
/// [`Error::Config`] naming the argument at fault.
pub(crate) fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Send, Error> {
    let usage = |why: String| Error::Config(format!("send: {why}; see --help"));
    let mut chat = None;
    let mut words = Vec::new();
    let mut files = Vec::new();
    let mut parse_mode = None;
    let mut silent = false;
    let mut as_file = false;
    let mut timeout = Duration::from_secs(60);
    let mut run_flags = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag {
            "--chat" => {
                chat = Some(
                    recipient(&value()?)
                        .ok_or_else(|| usage("--chat is a chat id (-100…) or @username".into()))?,
                )
            }
            "--file" => files.push((Kind::Document, PathBuf::from(value()?))),
            "--photo" => files.push((Kind::Photo, PathBuf::from(value()?))),
            "--parse-mode" => {
                parse_mode = Some(match value()?.to_ascii_lowercase().as_str() {
                    "html" => "HTML",
                    "markdown" | "markdownv2" => "MarkdownV2",
                    other => {
                        return Err(usage(format!(
                            "--parse-mode {other:?} is not html or markdown"
                        )))
                    }
                })
            }
            "--silent" => silent = true,
            "--as-file" => as_file = true,
            "--timeout" => {
                let secs = value()?;
                match secs.trim_end_matches('s').parse::<u64>() {
                    Ok(n) if (1..=3600).contains(&n) => timeout = Duration::from_secs(n),
                    _ => {
                        return Err(usage(format!(
                            "--timeout {secs:?} is not 1 to 3600 seconds"
                        )))
                    }
                }
            }
            "--" => words.extend(args.by_ref().cloned()),
            flag if flag.starts_with("--") => {
                run_flags.push(arg.clone());
                // The run's flags that take a value take the next word too.
                if inline.is_none() && takes_value(flag) {
                    run_flags.extend(args.next().cloned());
                }
            }
            _ => words.push(arg.clone()),
        }
    }
    let chat = chat.ok_or_else(|| usage("--chat is required".into()))?;
    let text = (!words.is_empty()).then(|| words.join(" "));
    let config = config::parse(&run_flags, env)?;
    Ok(Send {
        config,
        chat,
        text,
        files,
        parse_mode,
        silent,
        as_file,
        timeout,
    })
}

/// Whether a run flag reads a value (`--api-url URL`), so that its value
/// is not taken for the text.
fn takes_value(flag: &str) -> bool {
    !matches!(
        flag,
        "--no-health" | "--require-health" | "--drop-pending-updates"
    )
}

/// `-100123`, `42` or `@channel`.
fn recipient(chat: &str) -> Option<Recipient> {
    let chat = chat.trim();
    if let Ok(id) = chat.parse::<i64>() {
        return Some(Recipient::from(ChatId(id)));
    }
    let name = chat.strip_prefix('@')?;
    let fits = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    fits.then(|| Recipient::from(chat))
}

/// Sends, and says how it went as the exit code; errors as one line.
pub(crate) fn run(send: Send) -> ExitCode {
    match deliver(send) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smolgram: send: {e}");
            ExitCode::from(code(&e))
        }
    }
}

/// The documented exit code for `error`.
fn code(error: &Error) -> u8 {
    match error {
        Error::Config(_) => 2,
        e if e.is_token_rejected() => 3,
        Error::Api {
            code: 400..=499, ..
        } => 4,
        _ => 5,
    }
}

fn deliver(mut send: Send) -> Result<(), Error> {
    let text = match send.text.take() {
        Some(text) => Some(text),
        None if send.files.is_empty() => Some(read_stdin()?),
        None => None,
    };
    let text = text.filter(|t| !t.trim().is_empty());
    if text.is_none() && send.files.is_empty() {
        return Err(Error::Config("nothing to send (no text, no file)".into()));
    }
    let long = text
        .as_deref()
        .is_some_and(|t| text::utf16_len(t) > MESSAGE_LIMIT);
    if long && send.parse_mode.is_some() && !send.as_file {
        return Err(Error::Config(format!(
            "a text with --parse-mode over {MESSAGE_LIMIT} characters cannot be split safely; use --as-file"
        )));
    }
    let config = &send.config;
    let retry = RetryPolicy {
        within: send.timeout,
        ..config.retry
    };
    let client = Client::new(&config.api_url, &config.token, 4).with_retry(retry);
    let rt = Runtime::new();
    // One sendDocument for a file and for a text sent as one.
    let document = |file: Upload| {
        let call = SendDocument::new(send.chat.clone(), file).disable_notification(send.silent);
        let client = &client;
        async move { client.send(&call).await.map(drop) }
    };
    let work = async {
        if let Some(text) = &text {
            if long && send.as_file {
                let file = Upload::bytes("message.txt", text.clone().into_bytes());
                document(file).await?;
            } else {
                for part in text::split(text, &[], MESSAGE_LIMIT) {
                    let mut call = SendMessage::new(send.chat.clone(), part.text)
                        .disable_notification(send.silent);
                    if let Some(mode) = send.parse_mode {
                        call = call.parse_mode(mode);
                    }
                    client.send(&call).await?;
                }
            }
        }
        for (kind, path) in &send.files {
            if !path.is_file() {
                return Err(Error::Config(format!(
                    "{} is not a readable file",
                    path.display()
                )));
            }
            let file = Upload::path(path);
            match kind {
                Kind::Document => document(file).await?,
                Kind::Photo => {
                    let call =
                        SendPhoto::new(send.chat.clone(), file).disable_notification(send.silent);
                    client.send(&call).await?;
                }
            }
        }
        Ok(())
    };
    let timeout = send.timeout;
    let bounded = futures_lite::future::or(async { Some(work.await) }, async {
        async_io::Timer::after(timeout).await;
        None
    });
    rt.block_on(bounded)?.unwrap_or(Err(Error::Io {
        what: "gave up at --timeout",
        kind: std::io::ErrorKind::TimedOut,
    }))
}

/// All of stdin, as text.
fn read_stdin() -> Result<String, Error> {
    let mut text = String::new();
    let read = std::io::stdin()
        .take(MAX_STDIN + 1)
        .read_to_string(&mut text);
    match read {
        Ok(n) if n as u64 > MAX_STDIN => Err(Error::Config(format!(
            "stdin holds over {} MiB; send it with --file",
            MAX_STDIN >> 20
        ))),
        Ok(_) => Ok(text),
        Err(e) => Err(Error::Io {
            what: "reading stdin (not UTF-8?)",
            kind: e.kind(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_is_an_id_or_an_at_username() {
        assert_eq!(
            recipient("-1001234"),
            Some(Recipient::from(ChatId(-1001234)))
        );
        assert_eq!(recipient("@news_feed"), Some(Recipient::from("@news_feed")));
        for bad in ["news", "@", "@a b", "@news;rm", ""] {
            assert_eq!(recipient(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn flags_text_and_the_runs_flags_are_told_apart() {
        let env = |key: &str| (key == "TELEGRAM_BOT_TOKEN").then(|| "123:abc".to_owned());
        let args: Vec<String> = [
            "--chat=@ops",
            "--api-url",
            "http://127.0.0.1:9",
            "disk",
            "--",
            "--full",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let send = parse(&args, env).unwrap();
        assert_eq!(send.chat, Recipient::from("@ops"));
        assert_eq!(send.text.as_deref(), Some("disk --full"));
        assert_eq!(send.config.api_url, "http://127.0.0.1:9");
        let bogus: Vec<String> = ["--chat", "1", "--bogus"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(parse(&bogus, env)
            .unwrap_err()
            .to_string()
            .contains("--bogus"));
    }
}
