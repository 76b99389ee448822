//! The one public error type.
//!
//! Every variant carries the Bot API *method name*, never a URL: the URL holds
//! the token. A `ureq::Error` is reduced to a [`NetworkKind`] for the same
//! reason (some of its variants print the URI).
//!
//! Must not: hold or format the token, or pass on a foreign error's text that
//! may contain it.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::api::types::ChatId;

/// What went wrong, in one lowercase line (`what: detail; hint`).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `Runtime::block_on` was called while a `block_on` already runs on this thread.
    AlreadyRunning,
    /// The Bot API answered `ok: false`.
    Api {
        /// The Bot API method, e.g. `sendMessage`.
        method: String,
        /// Telegram's `error_code` (the HTTP status when the body had none).
        code: u16,
        /// Telegram's `description`.
        description: String,
        /// `parameters.retry_after`: wait this long before the next request (429).
        retry_after: Option<Duration>,
        /// `parameters.migrate_to_chat_id`: the group became this supergroup.
        migrate_to: Option<ChatId>,
    },
    /// The Bot API answered with a status and a body that is not Bot API JSON
    /// (an nginx 502 page, say).
    Http {
        /// The Bot API method.
        method: String,
        /// The HTTP status.
        status: u16,
    },
    /// The request did not complete: no connection, a timeout, a reset.
    Network {
        /// The Bot API method.
        method: String,
        /// What failed, without the URL.
        kind: NetworkKind,
    },
    /// The Bot API answered 200 with a body we could not decode.
    Decode {
        /// The Bot API method.
        method: String,
        /// serde's message (it never holds the URL).
        detail: String,
    },
    /// The configuration is invalid: a flag, an env variable, the token's shape.
    Config(String),
    /// The health listener could not bind its address.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why, e.g. `address in use`.
        kind: std::io::ErrorKind,
    },
    /// A handler asked to answer an update that has no chat (or no callback query).
    NoChat {
        /// The update being handled.
        update_id: i64,
    },
    /// A handler asked for state of a scope the update lacks: a chat's
    /// state for an inline query, say.
    NoScope {
        /// The update being handled.
        update_id: i64,
        /// What the scope needs: `a chat`, `a user`, `a chat and a user`.
        scope: &'static str,
    },
    /// The state store failed: see [`StoreError`](crate::state::StoreError).
    /// A transient failure also runs the update again later.
    State(crate::state::StoreError),
    /// A file to upload could not be opened or read, or a downloaded one
    /// could not be written (see [`Upload`](crate::api::Upload) and
    /// [`Client::download`](crate::api::Client::download)).
    File {
        /// The Bot API method, or `download`.
        method: String,
        /// Which file: an upload's file name, a download's `file_id` (never
        /// its `file_path`: a local Bot API server's holds the token).
        file: String,
        /// What failed, e.g. `No such file or directory (os error 2)`.
        detail: String,
    },
    /// A file is larger than the cap it was given.
    TooLarge {
        /// `download`, or the Bot API method.
        method: String,
        /// The file's size when it was known beforehand; `None` when the
        /// stream went past the cap.
        size: Option<u64>,
        /// The cap, in bytes.
        cap: u64,
    },
    /// A call through an [`embed::Remote`](crate::embed::Remote) found the
    /// bot stopped: not made, or cut off at the end of the drain.
    Stopped,
    /// An I/O error outside the Bot API (the signal handler, a socket).
    Io {
        /// What we were doing.
        what: &'static str,
        /// The error kind.
        kind: std::io::ErrorKind,
    },
}

/// Why a Bot API request did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetworkKind {
    /// The host name did not resolve.
    Dns,
    /// The TCP connection was refused or could not be made.
    Connect,
    /// The request took longer than its deadline.
    Timeout,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// The connection broke mid-request or the response was not HTTP.
    Broken,
    /// The io pool is gone (the runtime is shutting down).
    PoolClosed,
}

impl Error {
    /// Telegram's `retry_after`, if the API asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether Telegram rejected the token: 401 (revoked) or 404 (no such
    /// bot). Nothing to retry; the run ends.
    pub fn is_token_rejected(&self) -> bool {
        matches!(
            self,
            Error::Api {
                code: 401 | 404,
                ..
            }
        )
    }

    /// The process exit code this error calls for: 2 for a bad configuration,
    /// a health port that cannot be bound or a state store that cannot be
    /// opened, 3 when Telegram rejects the token, 1 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Bind { .. } => 2,
            Error::State(crate::state::StoreError::Open { .. }) => 2,
            e if e.is_token_rejected() => 3,
            _ => 1,
        }
    }

    /// The Bot API `error_code` or HTTP status, if the API answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { code, .. } => Some(*code),
            Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyRunning => f.write_str(
                "runtime is already running on this thread; spawn instead of nesting block_on",
            ),
            Error::Api {
                method,
                code,
                description,
                retry_after,
                ..
            } => {
                write!(f, "{method}: telegram {code}: {description}")?;
                if let Some(after) = retry_after {
                    write!(f, "; retry after {}s", after.as_secs())?;
                }
                Ok(())
            }
            Error::Http { method, status } => {
                write!(
                    f,
                    "{method}: http {status} with a body that is not bot api json"
                )
            }
            Error::Network { method, kind } => write!(f, "{method}: network: {kind}"),
            Error::Decode { method, detail } => write!(f, "{method}: unexpected answer: {detail}"),
            Error::Config(msg) => write!(f, "config: {msg}"),
            Error::Bind { addr, kind } => {
                write!(f, "health: cannot bind {addr}: {kind}")?;
                if *kind == std::io::ErrorKind::AddrInUse {
                    f.write_str("; another process holds the port (drop --require-health to run without it)")?;
                }
                Ok(())
            }
            Error::NoChat { update_id } => {
                write!(
                    f,
                    "update {update_id} has nothing to answer: no chat or no callback query"
                )
            }
            Error::NoScope { update_id, scope } => {
                write!(f, "update {update_id} has no state of its own: it lacks {scope}")
            }
            Error::State(e) => e.fmt(f),
            Error::File {
                method,
                file,
                detail,
            } => write!(f, "{method}: file {file:?}: {detail}"),
            Error::TooLarge { method, size, cap } => match size {
                Some(size) => write!(
                    f,
                    "{method}: file of {size} bytes is over the cap of {cap}; raise the cap to take it"
                ),
                None => write!(
                    f,
                    "{method}: file is over the cap of {cap} bytes; raise the cap to take it"
                ),
            },
            Error::Stopped => f.write_str("the bot has stopped; start it again to call through it"),
            Error::Io { what, kind } => write!(f, "{what}: {kind}"),
        }
    }
}

impl fmt::Display for NetworkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkKind::Dns => "host name did not resolve",
            NetworkKind::Connect => "cannot connect",
            NetworkKind::Timeout => "timed out",
            NetworkKind::Tls => "tls failed",
            NetworkKind::Broken => "connection broken",
            NetworkKind::PoolClosed => "io pool closed",
        })
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> Error {
        Error::Api {
            method: "getUpdates".into(),
            code,
            description: String::new(),
            retry_after: None,
            migrate_to: None,
        }
    }

    #[test]
    fn only_an_unknown_or_revoked_token_is_rejected() {
        assert!(api(401).is_token_rejected());
        assert!(api(404).is_token_rejected());
        assert!(!api(409).is_token_rejected());
        assert!(!api(429).is_token_rejected());
        assert!(!Error::Http {
            method: "getUpdates".into(),
            status: 401
        }
        .is_token_rejected());
    }

    #[test]
    fn exit_codes_follow_one_rule() {
        assert_eq!(Error::Config("x".into()).exit_code(), 2);
        let bind = Error::Bind {
            addr: "127.0.0.1:8080".parse().unwrap(),
            kind: std::io::ErrorKind::AddrInUse,
        };
        assert_eq!(bind.exit_code(), 2);
        assert_eq!(api(401).exit_code(), 3);
        assert_eq!(api(404).exit_code(), 3);
        assert_eq!(api(500).exit_code(), 1);
        assert_eq!(Error::AlreadyRunning.exit_code(), 1);
    }

    #[test]
    fn display_is_one_lowercase_line_without_trailing_period() {
        let errors = [
            Error::AlreadyRunning,
            Error::Stopped,
            Error::Api {
                method: "sendMessage".into(),
                code: 429,
                description: "Too Many Requests: retry after 3".into(),
                retry_after: Some(Duration::from_secs(3)),
                migrate_to: None,
            },
            Error::Http {
                method: "getUpdates".into(),
                status: 502,
            },
            Error::Network {
                method: "getMe".into(),
                kind: NetworkKind::Timeout,
            },
            Error::Config("TELEGRAM_BOT_TOKEN is not set".into()),
            Error::Bind {
                addr: "127.0.0.1:8080".parse().unwrap(),
                kind: std::io::ErrorKind::AddrInUse,
            },
            Error::File {
                method: "sendPhoto".into(),
                file: "cat.jpg".into(),
                detail: "No such file or directory (os error 2)".into(),
            },
            Error::TooLarge {
                method: "download".into(),
                size: Some(30),
                cap: 20,
            },
        ];
        for e in errors {
            let line = e.to_string();
            assert!(!line.contains('\n'), "{line}");
            assert!(!line.ends_with('.'), "{line}");
            assert!(line.chars().next().unwrap().is_lowercase(), "{line}");
        }
    }
}
