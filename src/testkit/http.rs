//! The server side of HTTP/1.1 for the fake Bot API, on top of
//! [`crate::http`]: a `Content-Length` body, keep-alive and pipelining,
//! `100 Continue`, and the query string's and forms' decoding.
//!
//! Heads are read and parsed by `crate::http`, as strictly as the health
//! listener's, and answers encoded by it. Clients reuse connections, so a
//! [`Conn`] keeps the bytes it read past one request for the next
//! (pipelining works). Bodies must carry `Content-Length`:
//! `Transfer-Encoding` (chunked) is answered 411 and the connection closed,
//! as a Bot API client never needs it. Caps: 16 KiB of head, 1 MiB of body;
//! past them the answer is 400 and the connection closes. A multipart body
//! (an upload) is the exception: it is left unread, chunked or not, for
//! `testkit/multipart.rs` to stream under a cap of its own. Every close after
//! an answer lingers, so that a refused client reads its 400, not a reset.
//!
//! Must not: panic on any input, know about Telegram, or read beyond the caps.

use std::borrow::Cow;
use std::io;
use std::time::Duration;

use async_io::Timer;
use async_net::TcpStream;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};

pub(crate) use crate::http::Response;
use crate::http::{self, BodyLength, Connection, Head, HeadRead};

/// Most bytes of request line plus headers.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Most bytes of request body.
pub(crate) const MAX_BODY: usize = 1024 * 1024;
/// How long a closing connection waits for the client to stop sending.
const LINGER: Duration = Duration::from_secs(1);

/// One parsed request, owned: it outlives the connection's buffer that its
/// head was parsed from. Its method is not kept: like the Bot API, the fake answers
/// GET and POST alike.
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
    /// A multipart body, left unread for [`Conn::read_body`] (see
    /// `testkit/multipart.rs`): uploads are streamed, never held whole.
    pub(crate) streamed: Option<Streamed>,
}

/// How a body left to stream is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streamed {
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

impl Request {
    /// Copies out of `head` what the server reads; the body comes later.
    fn new(head: &Head<'_>) -> Request {
        Request {
            path: head.path().to_owned(),
            query: head.query().to_owned(),
            headers: head
                .headers()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
                .collect(),
            keep_alive: head.keep_alive(),
            body: Vec::new(),
            streamed: None,
        }
    }

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

// The fake's own ways to build the shared `Response`: they are testkit
// policy (JSON, the proxy's HTML), so they live here, not in `crate::http`.
impl Response {
    /// A JSON body with `status`.
    pub(crate) fn json(status: u16, body: &serde_json::Value) -> Response {
        Response::new(status, "application/json", body.to_string())
    }

    /// A body sent verbatim; JSON-looking bodies are labelled as JSON, the
    /// rest as HTML (what a proxy in front of the Bot API sends).
    pub(crate) fn raw(status: u16, body: impl Into<Cow<'static, str>>) -> Response {
        let body = body.into();
        let content_type = if body.trim_ascii_start().starts_with('{') {
            "application/json"
        } else {
            "text/html"
        };
        Response::new(status, content_type, body)
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
        let head_len = match http::read_head(&mut self.stream, &mut self.buf, MAX_HEAD).await {
            HeadRead::Complete(len) => len,
            HeadRead::Closed => return Ok(None),
            // A reset is a departure like any other: nobody is left to answer.
            HeadRead::Cut | HeadRead::Failed => return Err(ReadError::Gone),
            HeadRead::TooLarge => return Err(ReadError::bad("headers too large")),
        };
        let (mut req, len) = request(&self.buf[..head_len])?;
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

    /// Writes `resp`; `keep_alive: false` announces `Connection: close` and
    /// then [lingers](Conn::linger), so that the client reads the answer.
    pub(crate) async fn write(&mut self, resp: &Response, keep_alive: bool) -> io::Result<()> {
        let connection = if keep_alive {
            Connection::KeepAlive
        } else {
            Connection::Close
        };
        // Every answer has its body: Bot API clients send GET and POST, never HEAD.
        self.write_raw(&resp.encode(true, connection)).await?;
        if !keep_alive {
            self.linger().await;
        }
        Ok(())
    }

    /// Closes gently after the last answer: sends FIN, then reads and drops
    /// what the client still sends (the rest of a head over the cap, say)
    /// until it closes, for at most [`LINGER`] and [`MAX_BODY`] bytes.
    /// Closing with bytes unread sends a reset, and a reset can destroy the
    /// answer before the client reads it (RFC 9112 §9.6).
    async fn linger(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        let drain = async {
            let mut drained = 0;
            while drained < MAX_BODY {
                self.buf.clear();
                match self.fill().await {
                    0 => return,
                    n => drained += n,
                }
            }
        };
        future::or(drain, async {
            Timer::after(LINGER).await;
        })
        .await;
    }

    /// Fills `out` with what follows the head: bytes read already, then the
    /// socket's. 0 at end of stream.
    pub(crate) async fn read_body(&mut self, out: &mut [u8]) -> usize {
        if self.buf.is_empty() && self.fill().await == 0 {
            return 0;
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf.drain(..n);
        n
    }

    /// Gives back bytes read past a streamed body: the next request's.
    pub(crate) fn unread(&mut self, bytes: &[u8]) {
        self.buf.splice(0..0, bytes.iter().copied());
    }

    /// A 200 with a binary body (a file download), kept alive or closed.
    pub(crate) async fn write_bytes(&mut self, body: &[u8], keep_alive: bool) -> io::Result<()> {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
            body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        self.write_raw(head.as_bytes()).await?;
        self.write_raw(body).await?;
        if !keep_alive {
            self.linger().await;
        }
        Ok(())
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

/// Parses a head as the fake serves it: the request, and how many body
/// bytes follow it.
fn request(head: &[u8]) -> Result<(Request, usize), ReadError> {
    let head = Head::parse(head).map_err(ReadError::bad)?;
    let mut req = Request::new(&head);
    // Uploads stream past the body cap, chunked or not (testkit/multipart.rs).
    let multipart = req
        .header("content-type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/"));
    let len = match head.body_length() {
        BodyLength::Encoded if multipart => {
            req.streamed = Some(Streamed::Chunked);
            0
        }
        BodyLength::Fixed(len) if multipart => {
            req.streamed = Some(Streamed::Length(len));
            0
        }
        BodyLength::Encoded => {
            return Err(ReadError::Bad {
                status: 411,
                reason: "chunked bodies are not supported; send content-length",
            })
        }
        BodyLength::Fixed(len) => usize::try_from(len)
            .ok()
            .filter(|&len| len <= MAX_BODY)
            .ok_or(ReadError::bad("body too large"))?,
    };
    Ok((req, len))
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
                // A server that stops reading at a cap may reset the
                // connection midway; only what it read matters here.
                let _ = s.write_all(&bytes);
                let _ = s.shutdown(std::net::Shutdown::Write);
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
    fn bare_lf_heads_are_read_and_pipelined_like_crlf_ones() {
        let bytes =
            b"POST /a HTTP/1.1\nContent-Length: 2\nX-Y:  z \n\nhiGET /b?q HTTP/1.0\n\n".to_vec();
        with_conn(bytes, async |conn| {
            let a = conn.read_request().await.unwrap().unwrap();
            assert_eq!((a.path.as_str(), a.body.as_slice()), ("/a", &b"hi"[..]));
            assert_eq!((a.header("x-y"), a.keep_alive), (Some("z"), true));
            let b = conn.read_request().await.unwrap().unwrap();
            assert_eq!(
                (b.path.as_str(), b.query.as_str(), b.keep_alive),
                ("/b", "q", false)
            );
            assert!(conn.read_request().await.unwrap().is_none());
        });
    }

    #[test]
    fn a_head_cut_short_is_a_departure_and_garbage_is_a_400() {
        with_conn(b"GET / HTTP/1.1\r\nHost:".to_vec(), async |conn| {
            assert_eq!(conn.read_request().await.unwrap_err(), ReadError::Gone);
        });
        with_conn(
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(),
            async |conn| {
                assert_eq!(
                    conn.read_request().await.unwrap_err(),
                    ReadError::bad("bad header name")
                );
            },
        );
    }

    #[test]
    fn raw_bodies_that_look_like_json_are_labelled_json_and_the_rest_html() {
        assert_eq!(
            Response::raw(502, " {\"ok\":false}").content_type,
            "application/json"
        );
        assert_eq!(
            Response::raw(502, String::from("<html>")).content_type,
            "text/html"
        );
        assert_eq!(
            Response::json(200, &serde_json::json!({"ok": true})).body,
            r#"{"ok":true}"#
        );
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
        let parse_head = |head: &str| request(head.as_bytes()).map(|(req, _)| req);
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
        let keep = |head: &str| request(head.as_bytes()).unwrap().0.keep_alive;
        assert!(keep("GET / HTTP/1.1"));
        assert!(!keep("GET / HTTP/1.1\r\nConnection: Close"));
        assert!(!keep("GET / HTTP/1.0"));
        assert!(keep("GET / HTTP/1.0\r\nConnection: keep-alive"));
    }

    #[test]
    fn chunked_is_refused_with_411_and_lengths_must_agree() {
        let len = |head: &str| request(head.as_bytes()).map(|(_, len)| len);
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
