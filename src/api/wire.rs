//! The wire: a call's JSON body, the one POST an io thread makes, and
//! every shape of answer decoded into a result or one [`Error`].
//!
//! Every response shape is decoded: `ok/result`; `ok: false` with
//! `error_code`, `description` and `parameters` (`retry_after`,
//! `migrate_to_chat_id`), whatever the HTTP status; and a body that is not
//! JSON at all (an nginx 502 page) becomes [`Error::Http`]. `ureq`'s errors
//! are reduced to a [`NetworkKind`], because some of them print the URI,
//! and the URI holds the token.
//!
//! Must not: log, or keep anything of a request once it is answered.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use ureq::http::Uri;

use super::types::ChatId;
use crate::{Error, NetworkKind};

/// The largest response body we read (a full getUpdates batch is far smaller).
const BODY_LIMIT: u64 = 16 * 1024 * 1024;

/// The JSON body of a call.
pub(super) fn encode(method: &str, params: &impl Serialize) -> Result<Arc<[u8]>, Error> {
    serde_json::to_vec(params)
        .map(Arc::from)
        .map_err(|e| Error::Decode {
            method: method.to_owned(),
            detail: format!("parameters do not encode: {e}"),
        })
}

/// The numeric `chat_id` a call is addressed to; `None` for none or an
/// `@username` (those are held only by a 429). Read off the front of the
/// body when `chat_id` is its first key (every typed method puts it first),
/// else from the whole body.
pub(super) fn target_chat(body: &[u8]) -> Option<ChatId> {
    #[derive(Deserialize)]
    struct Target {
        chat_id: Option<i64>,
    }
    leading_integer(body, "chat_id")
        .or_else(|| serde_json::from_slice::<Target>(body).ok()?.chat_id)
        .map(ChatId)
}

/// The value of `key` when it is the first key of the JSON object `json`
/// and a plain integer: a few bytes read, not the object. `None` otherwise
/// (another key first, an escaped key, a float, a string, out of range),
/// and the caller decodes the object instead.
pub(super) fn leading_integer(json: &[u8], key: &str) -> Option<i64> {
    let rest = json
        .trim_ascii_start()
        .strip_prefix(b"{")?
        .trim_ascii_start();
    let rest = rest.strip_prefix(b"\"")?.strip_prefix(key.as_bytes())?;
    let rest = rest.strip_prefix(b"\"")?.trim_ascii_start();
    let rest = rest.strip_prefix(b":")?.trim_ascii_start();
    let sign = usize::from(rest.first() == Some(&b'-'));
    let digits = sign
        + rest[sign..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
    let after = rest[digits..].trim_ascii_start();
    if !matches!(after.first(), Some(b',' | b'}')) {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// `body` with its `chat_id` replaced by `chat`; `None` if it has none.
pub(super) fn with_chat_id(body: &[u8], chat: ChatId) -> Option<Arc<[u8]>> {
    let mut params: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).ok()?;
    let slot = params.get_mut("chat_id")?;
    *slot = chat.0.into();
    serde_json::to_vec(&params).ok().map(Arc::from)
}

/// A POST being built.
pub(super) type Post = ureq::RequestBuilder<ureq::typestate::WithBody>;

/// How many methods' URIs an io thread keeps parsed (a bot calls a handful).
const URIS: usize = 32;

/// An io thread's way to the API: an agent of its own (so a kept-alive
/// connection of its own) and the URI of each method it called, parsed once
/// (parsing it per request was 3% of the instructions of a burst).
pub(super) struct Caller {
    agent: ureq::Agent,
    /// `{api_url}/bot{token}/`: a secret, like the token.
    base: Arc<str>,
    /// `{api_url}/file/bot{token}/`, where files are downloaded: a secret too.
    files: Arc<str>,
    /// Holds the token too.
    uris: RefCell<Vec<(String, Uri)>>,
}

impl Caller {
    /// Calls through `agent` to `base` (the API URL with the token), and
    /// downloads from `files` (its file URL with the token).
    pub(super) fn new(agent: ureq::Agent, base: Arc<str>, files: Arc<str>) -> Caller {
        Caller {
            agent,
            base,
            files,
            uris: RefCell::new(Vec::new()),
        }
    }

    /// `method`'s URI, parsed once; `None` if it does not parse (ureq then
    /// reports that, without the URI: it holds the token).
    fn uri(&self, method: &str) -> Option<Uri> {
        let mut uris = self.uris.borrow_mut();
        if let Some((_, uri)) = uris.iter().find(|(m, _)| m == method) {
            return Some(uri.clone());
        }
        let uri = Uri::try_from(format!("{}{method}", self.base)).ok()?;
        if uris.len() < URIS {
            uris.push((method.to_owned(), uri.clone()));
        }
        Some(uri)
    }

    /// One POST of a JSON body, its answer read and decoded; within
    /// `deadline`, or the agent's own for `None`.
    pub(super) fn send<T: DeserializeOwned>(
        &self,
        method: String,
        body: &[u8],
        deadline: Option<Duration>,
    ) -> Result<T, Error> {
        self.exchange(method, deadline, |request| {
            request
                .header("content-type", "application/json")
                .send(body)
        })
    }

    /// One POST that `send` gives its headers and body (a form's, say), its
    /// answer read and decoded; within `deadline`, or the agent's for `None`.
    pub(super) fn exchange<T: DeserializeOwned>(
        &self,
        method: String,
        deadline: Option<Duration>,
        send: impl FnOnce(Post) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, Error> {
        let network = |kind| Error::Network {
            method: method.clone(),
            kind,
        };
        let request = match self.uri(&method) {
            Some(uri) => self.agent.post(uri),
            None => self.agent.post(format!("{}{method}", self.base)),
        };
        let sent = match deadline {
            None => send(request),
            Some(deadline) => send(request.config().timeout_global(Some(deadline)).build()),
        };
        let mut response = sent.map_err(|e| network(network_kind(&e)))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
            .map_err(|e| network(network_kind(&e)))?;
        decode(method, status, &bytes)
    }

    /// GET of `{api_url}/file/bot{token}/{file_path}`, within `deadline`:
    /// the response, whatever its status. The URI holds the token, so it is
    /// built here and goes nowhere else; errors name `method` only.
    pub(super) fn get_file(
        &self,
        method: &str,
        file_path: &str,
        deadline: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let uri =
            Uri::try_from(format!("{}{file_path}", self.files)).map_err(|_| Error::Decode {
                method: method.to_owned(),
                detail: "file_path is not a URL path".to_owned(),
            })?;
        self.agent
            .get(uri)
            .config()
            .timeout_global(Some(deadline))
            .build()
            .call()
            .map_err(|e| Error::Network {
                method: method.to_owned(),
                kind: network_kind(&e),
            })
    }
}

/// What a Bot API answer says; every field but `ok` is optional on the wire.
#[derive(Deserialize)]
struct Envelope<T> {
    ok: bool,
    result: Option<T>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

/// Turns a status and body into `T` or the one error that says what happened.
pub(super) fn decode<T: DeserializeOwned>(
    method: String,
    status: u16,
    body: &[u8],
) -> Result<T, Error> {
    if (200..300).contains(&status) {
        // Read as text, as every other decoder reads (an update's raw JSON,
        // a union's member): one reader type, so one copy of each generated
        // decoder in the binary, not a second one over bytes (+345 KB).
        let text = match std::str::from_utf8(body) {
            Ok(text) => text,
            Err(e) => {
                let detail = e.to_string();
                return Err(Error::Decode { method, detail });
            }
        };
        return match serde_json::from_str::<Envelope<T>>(text) {
            Ok(Envelope {
                ok: true,
                result: Some(result),
                ..
            }) => Ok(result),
            Ok(Envelope {
                ok: true,
                result: None,
                ..
            }) => Err(Error::Decode {
                method,
                detail: "ok without a result".into(),
            }),
            Ok(env) => Err(api_error(method, status, env)),
            Err(e) => Err(Error::Decode {
                method,
                detail: e.to_string(),
            }),
        };
    }
    match serde_json::from_slice::<Envelope<IgnoredAny>>(body) {
        Ok(env) if !env.ok => Err(api_error(method, status, env)),
        _ => Err(Error::Http { method, status }),
    }
}

fn api_error<T>(method: String, status: u16, env: Envelope<T>) -> Error {
    let parameters = env.parameters.unwrap_or(Parameters {
        retry_after: None,
        migrate_to_chat_id: None,
    });
    Error::Api {
        method,
        code: env.error_code.unwrap_or(status),
        description: env.description.unwrap_or_default(),
        retry_after: parameters.retry_after.map(Duration::from_secs),
        migrate_to: parameters.migrate_to_chat_id.map(ChatId),
    }
}

/// What kind of failure a `ureq` error is, without its text (it may hold the URL).
pub(super) fn network_kind(e: &ureq::Error) -> NetworkKind {
    match e {
        ureq::Error::Timeout(_) => NetworkKind::Timeout,
        ureq::Error::HostNotFound => NetworkKind::Dns,
        ureq::Error::ConnectionFailed => NetworkKind::Connect,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => NetworkKind::Tls,
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => NetworkKind::Connect,
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => NetworkKind::Timeout,
            _ => NetworkKind::Broken,
        },
        _ => NetworkKind::Broken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_leading_integer_is_read_off_the_front() {
        let first = |json: &str| leading_integer(json.as_bytes(), "update_id");
        assert_eq!(first(r#"{"update_id":123,"message":{}}"#), Some(123));
        assert_eq!(first(r#" { "update_id" : 7 }"#), Some(7));
        assert_eq!(first(r#"{"update_id":-5,"x":1}"#), Some(-5));
        // Not first, or not plainly an integer: the caller decodes instead.
        for other in [
            r#"{"message":{},"update_id":1}"#,
            r#"{"update_id_x":1}"#,
            r#"{"update_id":1.5}"#,
            r#"{"update_id":12a}"#,
            r#"{"update_id":"1"}"#,
            r#"{"update_id":-}"#,
            r#"{"update_id":99999999999999999999}"#,
        ] {
            assert_eq!(first(other), None, "{other}");
        }
    }

    #[test]
    fn the_target_chat_is_found_first_or_anywhere() {
        let chat = |json: &str| target_chat(json.as_bytes());
        assert_eq!(
            chat(r#"{"chat_id":-100123,"text":"hi"}"#),
            Some(ChatId(-100123))
        );
        assert_eq!(
            chat(r#"{"text":"a \"chat_id\":1","chat_id":42}"#),
            Some(ChatId(42))
        );
        assert_eq!(chat(r#"{"chat_id":"@channel","text":"hi"}"#), None);
        assert_eq!(chat(r#"{"text":"hi"}"#), None);
    }

    fn decoded(status: u16, body: &str) -> Result<Value, Error> {
        decode("sendMessage".into(), status, body.as_bytes())
    }

    #[test]
    fn ok_result_is_returned() {
        assert_eq!(
            decoded(200, r#"{"ok":true,"result":{"a":1}}"#).unwrap()["a"],
            1
        );
    }

    #[test]
    fn retry_after_is_read_from_a_429() {
        let e = decoded(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        )
        .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.status(), Some(429));
    }

    #[test]
    fn migrate_to_chat_id_is_read() {
        let e = decoded(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#,
        )
        .unwrap_err();
        assert!(matches!(
            e,
            Error::Api {
                migrate_to: Some(ChatId(-1001234)),
                ..
            }
        ));
    }

    #[test]
    fn an_html_error_page_is_an_http_error() {
        let e = decoded(502, "<html><body><h1>502 Bad Gateway</h1></body></html>").unwrap_err();
        assert!(matches!(e, Error::Http { status: 502, .. }), "{e:?}");
    }

    #[test]
    fn truncated_json_on_200_is_a_decode_error() {
        let e = decoded(200, r#"{"ok":true,"result":[{"update_id":1"#).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e:?}");
    }

    #[test]
    fn error_code_missing_falls_back_to_the_status() {
        let e = decoded(500, r#"{"ok":false,"description":"Internal Server Error"}"#).unwrap_err();
        assert_eq!(e.status(), Some(500));
    }
}
