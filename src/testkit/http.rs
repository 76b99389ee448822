//! The server side of HTTP/1.1, as much as a Bot API client needs: request
//! line, headers, a `Content-Length` body, the query string, keep-alive, and
//! one buffered write per response.
//!
//! Clients reuse connections, so a [`Conn`] keeps the bytes it read past one
//! request for the next (pipelining works). Bodies must carry
//! `Content-Length`: `Transfer-Encoding` (chunked) is answered 411 and the
//! connection closed, as a Bot API client never needs it. Caps: 16 KiB of
//! head, 1 MiB of body; past them the answer is 400 and the connection closes.
//!
//! Must not: panic on any input, know about Telegram, or read beyond the caps.

use std::io;

use async_net::TcpStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// Most bytes of request line plus headers.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Most bytes of request body.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// One parsed request. Its method is not kept: like the Bot API, the fake
/// answers GET and POST alike.
#[derive(Debug)]
pub(crate) struct Request {
    /// The target up to `?`.
    pub(crate) path: String,
    /// The target after `?`, still percent-encoded; empty if none.
    pub(crate) query: String,
    /// Header names lowercased, values trimmed, in arrival order.
    pub(crate) headers: Vec<(String, String)>,
    /// Whether the client wants the connection kept after the answer.
    pub(crate) keep_alive: bool,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why no request could be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The peer left (or the socket failed): there is nobody to answer.
    Gone,
    /// The bytes are not a request we serve: answer `status` and close.
    Bad { status: u16, reason: &'static str },
}

impl ReadError {
    fn bad(reason: &'static str) -> ReadError {
        ReadError::Bad {
            status: 400,
            reason,
        }
    }
}

/// A response, written in one piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// A JSON body with `status`.
    pub(crate) fn json(status: u16, body: &serde_json::Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        }
    }

    /// A body sent verbatim; JSON-looking bodies are labelled as JSON, the
    /// rest as HTML (what a proxy in front of the Bot API sends).
    pub(crate) fn raw(status: u16, body: impl Into<Vec<u8>>) -> Response {
        let body = body.into();
        let content_type = if body.trim_ascii_start().starts_with(b"{") {
            "application/json"
        } else {
            "text/html"
        };
        Response {
            status,
            content_type,
            body,
        }
    }
}

/// One client connection and the bytes read from it but not yet used.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Conn {
        // Answers are written whole; Nagle would only delay them on a reused connection.
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads the next request. `Ok(None)`: the client closed cleanly between requests.
    pub(crate) async fn read_request(&mut self) -> Result<Option<Request>, ReadError> {
        let mut scanned = 0;
        let head_len = loop {
            // Re-scan only the new bytes (and 3 before them, for a split "\r\n\r\n").
            if let Some(i) = find(&self.buf[scanned..], b"\r\n\r\n") {
                break scanned + i + 4;
            }
            scanned = self.buf.len().saturating_sub(3);
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::bad("headers too large"));
            }
            if self.fill().await == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Gone)
                };
            }
        };
        if head_len > MAX_HEAD {
            return Err(ReadError::bad("headers too large"));
        }
        let head = std::str::from_utf8(&self.buf[..head_len - 4])
            .map_err(|_| ReadError::bad("headers are not utf-8"))?;
        let mut req = parse_head(head)?;
        let len = body_len(&req)?;
        if len > 0
            && self.buf.len() < head_len + len
            && req
                .header("expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            // curl waits for this before sending a large body.
            self.write_raw(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(|_| ReadError::Gone)?;
        }
        self.buf
            .reserve((head_len + len).saturating_sub(self.buf.len()));
        while self.buf.len() < head_len + len {
            if self.fill().await == 0 {
                return Err(ReadError::Gone);
            }
        }
        req.body = self.buf[head_len..head_len + len].to_vec();
        self.buf.drain(..head_len + len);
        Ok(Some(req))
    }

    /// Writes `resp`; `keep_alive: false` announces `Connection: close`.
    pub(crate) async fn write(&mut self, resp: &Response, keep_alive: bool) -> io::Result<()> {
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
            resp.status,
            reason_phrase(resp.status),
            resp.content_type,
            resp.body.len(),
            if keep_alive { "keep-alive" } else { "close" },
        );
        let mut out = Vec::with_capacity(head.len() + resp.body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&resp.body);
        self.write_raw(&out).await
    }

    async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Reads what the socket has into `buf`; 0 at end of stream.
    async fn fill(&mut self) -> usize {
        let start = self.buf.len();
        self.buf.resize(start + 8 * 1024, 0);
        // A reset is a departure like any other: nobody is left to answer.
        let n = self.stream.read(&mut self.buf[start..]).await.unwrap_or(0);
        self.buf.truncate(start + n);
        n
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses the request line and headers (without the final blank line).
fn parse_head(head: &str) -> Result<Request, ReadError> {
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::bad("malformed request line"));
    };
    if method.is_empty() || !target.starts_with('/') {
        return Err(ReadError::bad("malformed request line"));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(ReadError::bad("unsupported http version")),
    };
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::bad("malformed header"));
        };
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(ReadError::bad("malformed header"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        keep_alive: http11,
        body: Vec::new(),
    };
    if let Some(conn) = req.header("connection") {
        let has = |token: &str| {
            conn.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        // HTTP/1.1 keeps the connection unless told to close; 1.0 closes unless told to keep it.
        req.keep_alive = if http11 {
            !has("close")
        } else {
            has("keep-alive")
        };
    }
    Ok(req)
}

/// The body length the headers announce.
fn body_len(req: &Request) -> Result<usize, ReadError> {
    if req.header("transfer-encoding").is_some() {
        return Err(ReadError::Bad {
            status: 411,
            reason: "chunked bodies are not supported; send content-length",
        });
    }
    let mut len = None;
    for (_, value) in req.headers.iter().filter(|(n, _)| n == "content-length") {
        let n: usize = value
            .parse()
            .map_err(|_| ReadError::bad("invalid content-length"))?;
        if len.is_some_and(|l| l != n) {
            return Err(ReadError::bad("conflicting content-length"));
        }
        len = Some(n);
    }
    let len = len.unwrap_or(0);
    if len > MAX_BODY {
        return Err(ReadError::bad("body too large"));
    }
    Ok(len)
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        411 => "Length Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Splits `a=1&b=x%20y` into decoded pairs; `+` is a space, as in forms.
pub(crate) fn parse_form(s: &str) -> impl Iterator<Item = (String, String)> + '_ {
    s.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+`; a broken escape stays as written, and
/// bytes that are not UTF-8 become U+FFFD.
pub(crate) fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(hi, lo)| hi << 4 | lo),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Sends `bytes` to a fresh `Conn`, then hands it to `check` on the server side.
    fn with_conn(bytes: Vec<u8>, check: impl AsyncFnOnce(&mut Conn)) {
        async_io::block_on(async {
            let listener = async_net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .unwrap();
            let addr = listener.local_addr().unwrap();
            let client = std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.write_all(&bytes).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut answer = Vec::new();
                let _ = s.read_to_end(&mut answer);
            });
            let (stream, _) = listener.accept().await.unwrap();
            check(&mut Conn::new(stream)).await;
            client.join().unwrap();
        });
    }

    #[test]
    fn pipelined_requests_are_read_one_by_one() {
        let mut bytes =
            b"POST /a?x=1 HTTP/1.1\r\nContent-Length: 5\r\nContent-Type: t\r\n\r\nhello".to_vec();
        bytes.extend_from_slice(b"GET /b HTTP/1.1\r\nConnection: close\r\n\r\n");
        with_conn(bytes, async |conn| {
            let a = conn.read_request().await.unwrap().unwrap();
            assert_eq!((a.path.as_str(), a.query.as_str()), ("/a", "x=1"));
            assert_eq!(
                (a.body.as_slice(), a.header("content-type")),
                (&b"hello"[..], Some("t"))
            );
            assert!(a.keep_alive);
            let b = conn.read_request().await.unwrap().unwrap();
            assert_eq!(
                (b.path.as_str(), b.body.len(), b.keep_alive),
                ("/b", 0, false)
            );
            assert!(conn.read_request().await.unwrap().is_none());
        });
    }

    #[test]
    fn oversized_head_and_body_are_refused() {
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_HEAD + 10, b'a');
        with_conn(huge, async |conn| {
            assert_eq!(
                conn.read_request().await.unwrap_err(),
                ReadError::bad("headers too large")
            );
        });
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        with_conn(big.into_bytes(), async |conn| {
            assert_eq!(
                conn.read_request().await.unwrap_err(),
                ReadError::bad("body too large")
            );
        });
    }

    #[test]
    fn a_request_cut_short_is_a_departure() {
        with_conn(
            b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc".to_vec(),
            async |conn| {
                assert_eq!(conn.read_request().await.unwrap_err(), ReadError::Gone);
            },
        );
    }

    #[test]
    fn garbage_request_lines_are_bad_requests() {
        for head in [
            "",
            "GET",
            "GET /",
            "GET / HTTP/2",
            "GET x HTTP/1.1",
            "GET / HTTP/1.1 extra",
        ] {
            assert!(
                matches!(parse_head(head), Err(ReadError::Bad { status: 400, .. })),
                "{head:?}"
            );
        }
        assert!(parse_head("GET / HTTP/1.1\r\nno colon").is_err());
        assert!(parse_head("GET / HTTP/1.1\r\nbad name: x").is_err());
    }

    #[test]
    fn keep_alive_follows_the_version_and_the_connection_header() {
        let keep = |head: &str| parse_head(head).unwrap().keep_alive;
        assert!(keep("GET / HTTP/1.1"));
        assert!(!keep("GET / HTTP/1.1\r\nConnection: Close"));
        assert!(!keep("GET / HTTP/1.0"));
        assert!(keep("GET / HTTP/1.0\r\nConnection: keep-alive"));
    }

    #[test]
    fn chunked_is_refused_with_411_and_lengths_must_agree() {
        let len = |head: &str| body_len(&parse_head(head).unwrap());
        assert!(matches!(
            len("POST / HTTP/1.1\r\nTransfer-Encoding: chunked"),
            Err(ReadError::Bad { status: 411, .. })
        ));
        assert_eq!(
            len("POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3"),
            Ok(3)
        );
        assert!(len("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4").is_err());
        assert!(len("POST / HTTP/1.1\r\nContent-Length: -1").is_err());
        assert_eq!(len("GET / HTTP/1.1"), Ok(0));
    }

    #[test]
    fn percent_decoding_handles_escapes_plus_and_broken_input() {
        assert_eq!(percent_decode("a%20b+c%2B%C3%A9"), "a b c+é");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
        let form: Vec<_> = parse_form("chat_id=5&&text=hi%21&flag").collect();
        assert_eq!(
            form,
            [
                ("chat_id".into(), "5".into()),
                ("text".into(), "hi!".into()),
                ("flag".into(), String::new())
            ]
        );
    }
}
