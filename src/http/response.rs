//! The one response type of [`crate::http`] and its encoder: a status line,
//! `Content-Type`, `Content-Length`, `Allow`, `Connection`, a body, in one
//! buffer.
//!
//! Must not: choose statuses, bodies or whether to keep the connection;
//! those are the callers' policy.

use std::borrow::Cow;
use std::fmt::Write as _;

/// What an answer tells the client about its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connection {
    /// `Connection: close`: the server closes after this answer.
    Close,
    /// `Connection: keep-alive`: the next request may follow on the same connection.
    KeepAlive,
}

/// One answer; [`Response::encode`] puts it on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The status code; the reason phrase follows from it.
    pub(crate) status: u16,
    /// The `Content-Type` header.
    pub(crate) content_type: &'static str,
    /// The `Allow` header, for a 405.
    pub(crate) allow: Option<&'static str>,
    /// The `Retry-After` header, in seconds, for a 503.
    pub(crate) retry_after: Option<&'static str>,
    /// The body; `Cow` so that fixed answers do not allocate and built ones
    /// (`/metrics`, JSON) can hand over their `String`.
    pub(crate) body: Cow<'static, str>,
}

impl Response {
    /// An answer without an `Allow` header.
    pub(crate) fn new(
        status: u16,
        content_type: &'static str,
        body: impl Into<Cow<'static, str>>,
    ) -> Response {
        Response {
            status,
            content_type,
            allow: None,
            retry_after: None,
            body: body.into(),
        }
    }

    /// The bytes on the wire, in one buffer so that one write sends them.
    /// `with_body` is false for HEAD: the headers, `Content-Length`
    /// included, stay those of GET (RFC 9110 §9.3.2).
    pub(crate) fn encode(&self, with_body: bool, connection: Connection) -> Vec<u8> {
        let mut out = String::with_capacity(128 + self.body.len());
        // Cannot fail: `fmt::Write` for `String` never does.
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = self.allow {
            let _ = write!(out, "Allow: {allow}\r\n");
        }
        if let Some(secs) = self.retry_after {
            let _ = write!(out, "Retry-After: {secs}\r\n");
        }
        out.push_str(match connection {
            Connection::Close => "Connection: close\r\n\r\n",
            Connection::KeepAlive => "Connection: keep-alive\r\n\r\n",
        });
        if with_body {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

/// The reason phrase of the statuses our servers send. Clients ignore it
/// (RFC 9112 §4), so an unlisted code gets a placeholder, not an error.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_writes_the_status_line_headers_and_a_body_only_when_asked() {
        let not_allowed = Response {
            allow: Some("GET, HEAD"),
            ..Response::new(405, "text/plain", "no\n")
        };
        assert_eq!(
            String::from_utf8(not_allowed.encode(true, Connection::Close)).unwrap(),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\
             Allow: GET, HEAD\r\nConnection: close\r\n\r\nno\n"
        );
        // HEAD: GET's headers, Content-Length included, and no body. An unlisted code still encodes.
        let teapot = Response::new(418, "application/json", String::from("{}"));
        assert_eq!(
            String::from_utf8(teapot.encode(false, Connection::KeepAlive)).unwrap(),
            "HTTP/1.1 418 Unknown\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\
             Connection: keep-alive\r\n\r\n"
        );
    }
}
