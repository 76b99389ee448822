//! The server side of HTTP/1.1 request heads, and the one response encoder
//! (in `response`): reading a head up to a cap, parsing it strictly,
//! answering.
//!
//! The health listener and the testkit's fake Bot API both serve HTTP; one
//! parser means one dialect, so a request that one of them refuses the other
//! refuses too, for the same reason. A [`Head`] borrows the caller's read
//! buffer (method, path, query, version, header values) and parsing
//! allocates nothing. What follows the head is the caller's policy: the
//! listener refuses bodies and answers one request per connection; the
//! testkit reads `Content-Length` bodies and keeps connections alive. So
//! [`Head::body_length`] only *reports* the declared length, and
//! [`Head::keep_alive`] what the client asked for.
//!
//! Strict means: the whole head is UTF-8; the method and header names are
//! RFC 9110 `tchar`; the target starts with `/` and has no control bytes;
//! only HTTP/1.0 and HTTP/1.1; no whitespace before a header's colon (RFC
//! 9112 §5.1) and no obsolete line folding (§5.2); header values have no
//! control bytes but tab; `Content-Length` is digits only, and repeated ones
//! agree (§6.3). Line ends are CRLF or a bare LF (§2.2 lets a server accept
//! it; some hand-written probes send it).
//!
//! One mechanism, one file: reading and parsing are under 300 lines; the rest
//! is their tests, an input that must be refused on each line.
//!
//! Must not: panic on any input, read past the caller's cap, or know about
//! Telegram, routes or either caller's policy.

// Without the testkit only the listener uses this module, and it needs
// neither keep-alive nor the query; the testkit and its tests use them all.
#![cfg_attr(not(feature = "testkit"), allow(dead_code))]

use futures_lite::io::{AsyncRead, AsyncReadExt};

mod response;
pub(crate) use response::{Connection, Response};

/// How many bytes one read asks for while looking for the end of a head:
/// a probe's or a Bot API client's head fits in one.
const CHUNK: usize = 1024;

/// What reading a request head came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadRead {
    /// `buf[..len]` is a complete head, its empty line included. Bytes after
    /// it (a body, a pipelined request) stay in `buf` for the caller.
    Complete(usize),
    /// End of stream with nothing in `buf`: a clean close between requests.
    Closed,
    /// End of stream in the middle of a head.
    Cut,
    /// The read failed (a reset, say): there is nobody left to answer.
    Failed,
    /// No end of head within the cap.
    TooLarge,
}

/// Reads from `conn` into `buf` until `buf` holds a complete head, at most
/// `cap` bytes of it. Bytes already in `buf` (left over from a previous
/// request) count. No read ever makes `buf` longer than `cap`, and `buf`
/// only ever holds bytes really read, so a caller may drop this future
/// midway (on its deadline). Has no deadline of its own.
pub(crate) async fn read_head(
    conn: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    cap: usize,
) -> HeadRead {
    let mut chunk = [0u8; CHUNK];
    let mut from = 0;
    loop {
        match head_len(buf, from) {
            Some(len) if len <= cap => return HeadRead::Complete(len),
            Some(_) => return HeadRead::TooLarge,
            None if buf.len() >= cap => return HeadRead::TooLarge,
            None => {}
        }
        // The end may straddle two reads: look again at the last two bytes.
        from = buf.len().saturating_sub(2);
        let want = CHUNK.min(cap - buf.len());
        match conn.read(&mut chunk[..want]).await {
            Ok(0) if buf.is_empty() => return HeadRead::Closed,
            Ok(0) => return HeadRead::Cut,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return HeadRead::Failed,
        }
    }
}

/// Reads from `conn` into `buf` until it holds `end` bytes (a head and the
/// body its `Content-Length` declares, say); bytes already there count.
/// `false` if the stream ended or failed first. Reads at most what is
/// missing, so `buf` never holds more than `end` bytes of this request
/// plus what the head read brought; no deadline of its own.
pub(crate) async fn read_body(
    conn: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    end: usize,
) -> bool {
    let mut chunk = [0u8; 8 * CHUNK];
    while buf.len() < end {
        let want = chunk.len().min(end - buf.len());
        match conn.read(&mut chunk[..want]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

/// The length of the head in `buf`, up to and including its empty line,
/// looking for it from `from` on; a bare `\n` ends a line as well as `\r\n`.
fn head_len(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find_map(|i| {
        if buf[i] != b'\n' {
            return None;
        }
        match &buf[i + 1..] {
            [b'\n', ..] => Some(i + 2),
            [b'\r', b'\n', ..] => Some(i + 3),
            _ => None,
        }
    })
}

/// The HTTP versions we serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// `HTTP/1.0`: closes after the answer unless told `keep-alive`.
    Http10,
    /// `HTTP/1.1`: keeps the connection unless told `close`.
    Http11,
}

/// How long the body after a head is, as the head declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLength {
    /// `Content-Length` bytes; 0 without one.
    Fixed(u64),
    /// A `Transfer-Encoding` (chunked, say): the length is only known by
    /// decoding, and it overrides any `Content-Length` (RFC 9112 §6.3).
    Encoded,
}

/// A parsed request head, borrowing the bytes it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head<'a> {
    method: &'a str,
    target: &'a str,
    version: Version,
    /// The header lines, already checked, then the empty line.
    fields: &'a str,
    body_length: BodyLength,
}

impl<'a> Head<'a> {
    /// Parses `head` (as [`read_head`] found it; the empty line may be left
    /// off). `Err` holds why it is a bad request, for a log or a 400's body.
    pub(crate) fn parse(head: &'a [u8]) -> Result<Head<'a>, &'static str> {
        let head = std::str::from_utf8(head).map_err(|_| "request head is not utf-8")?;
        let (request_line, fields) = head.split_once('\n').unwrap_or((head, ""));
        let request_line = request_line.strip_suffix('\r').unwrap_or(request_line);
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("request line is not `method target version`");
        };
        if method.is_empty() || !method.bytes().all(is_token) {
            return Err("bad method");
        }
        if !target.starts_with('/') || target.bytes().any(|b| b.is_ascii_control()) {
            return Err("bad target");
        }
        let version = match version {
            "HTTP/1.1" => Version::Http11,
            "HTTP/1.0" => Version::Http10,
            v if v.starts_with("HTTP/") => return Err("unsupported http version"),
            _ => return Err("not http"),
        };
        let mut length = None;
        let mut encoded = false;
        for line in lines(fields) {
            if line.starts_with([' ', '\t']) {
                return Err("obsolete line folding");
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err("header line without a colon");
            };
            // Whitespace before the colon lands here too: RFC 9112 §5.1
            // says to refuse it, as proxies may read the name differently.
            if name.is_empty() || !name.bytes().all(is_token) {
                return Err("bad header name");
            }
            let value = trim_ows(value);
            if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                return Err("bad header value");
            }
            if name.eq_ignore_ascii_case("transfer-encoding") {
                encoded = true;
            } else if name.eq_ignore_ascii_case("content-length") {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("bad content-length");
                }
                let n: u64 = value.parse().map_err(|_| "content-length out of range")?;
                // Two lengths that disagree are how request smuggling starts.
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting content-length");
                }
                length = Some(n);
            }
        }
        let body_length = if encoded {
            BodyLength::Encoded
        } else {
            BodyLength::Fixed(length.unwrap_or(0))
        };
        Ok(Head {
            method,
            target,
            version,
            fields,
            body_length,
        })
    }

    /// The method, e.g. `GET`; case-sensitive, as RFC 9110 §9.1 says.
    pub(crate) fn method(&self) -> &'a str {
        self.method
    }

    /// The target up to `?` (or `#`), e.g. `/healthz`.
    pub(crate) fn path(&self) -> &'a str {
        self.path_and_query().0
    }

    /// The target after `?`, still percent-encoded; empty if none.
    pub(crate) fn query(&self) -> &'a str {
        self.path_and_query().1
    }

    fn path_and_query(&self) -> (&'a str, &'a str) {
        // A fragment is never sent on purpose; dropping it, `/healthz#x` is `/healthz`.
        let target = self.target.split_once('#').map_or(self.target, |(t, _)| t);
        target.split_once('?').unwrap_or((target, ""))
    }

    /// The request's HTTP version.
    // Only tests read it yet.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn version(&self) -> Version {
        self.version
    }

    /// The header lines as `(name, value)`: names as sent, values without
    /// the whitespace around them, in arrival order.
    pub(crate) fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        // `parse` saw a colon on every line, so `filter_map` drops nothing.
        lines(self.fields)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name, trim_ows(value)))
    }

    /// The value of the first header called `name`, in any case.
    pub(crate) fn header(&self, name: &str) -> Option<&'a str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The body length the head declares.
    pub(crate) fn body_length(&self) -> BodyLength {
        self.body_length
    }

    /// Whether the client wants the connection kept after the answer:
    /// HTTP/1.1 unless a `Connection` header says `close`, HTTP/1.0 only if
    /// one says `keep-alive` (RFC 9112 §9.3). Every `Connection` line counts.
    pub(crate) fn keep_alive(&self) -> bool {
        let (mut close, mut keep) = (false, false);
        let options = self
            .headers()
            .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, value)| value.split(',').map(trim_ows));
        for option in options {
            close |= option.eq_ignore_ascii_case("close");
            keep |= option.eq_ignore_ascii_case("keep-alive");
        }
        !close && (self.version == Version::Http11 || keep)
    }
}

/// The lines of a header section up to its empty line, without line ends.
fn lines(fields: &str) -> impl Iterator<Item = &str> {
    fields
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .take_while(|line| !line.is_empty())
}

/// `s` without the spaces and tabs around it (RFC 9110 `OWS`).
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Whether `b` may appear in a method or a header name (RFC 9110 `tchar`).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures_lite::future;

    /// A cap for these tests (the callers test their own); not a multiple
    /// of a read, so that a read past it shows.
    const CAP: usize = 8 * 1024 + 7;

    /// Reads a head out of what `conn` sends into `buf`.
    fn read(mut conn: impl AsyncRead + Unpin, buf: &mut Vec<u8>) -> HeadRead {
        future::block_on(read_head(&mut conn, buf, CAP))
    }

    fn read_all(bytes: &[u8]) -> HeadRead {
        read(bytes, &mut Vec::new())
    }

    fn parsed(head: &[u8]) -> Head<'_> {
        Head::parse(head).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(head)))
    }

    /// A connection whose every read fails, as a reset one does.
    struct Broken;

    impl AsyncRead for Broken {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
        }
    }

    #[test]
    fn head_ends_at_the_first_empty_line_crlf_or_bare_lf() {
        let crlf = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nrest";
        let mut buf = Vec::new();
        assert_eq!(
            read(&crlf[..], &mut buf),
            HeadRead::Complete(crlf.len() - 4)
        );
        assert_eq!(buf, crlf, "the bytes after the head stay for the caller");
        let lf = b"GET /healthz HTTP/1.1\nHost: x\n\n";
        assert_eq!(read_all(lf), HeadRead::Complete(lf.len()));
        assert_eq!(
            read_all(b"GET / HTTP/1.1\nX: y\n\r\n"),
            HeadRead::Complete(22)
        );
    }

    #[test]
    fn head_end_is_found_across_reads() {
        for whole in [&b"GET /healthz HTTP/1.1\r\n\r\n"[..], b"GET / HTTP/1.1\n\n"] {
            for split in 0..whole.len() {
                let (a, b) = whole.split_at(split);
                let mut buf = Vec::new();
                let read = read(AsyncReadExt::chain(a, b), &mut buf);
                assert_eq!(read, HeadRead::Complete(whole.len()), "split at {split}");
            }
        }
    }

    #[test]
    fn head_over_the_cap_is_too_large_and_nothing_past_the_cap_is_read() {
        let mut big = b"GET /healthz HTTP/1.1\r\nX-Big: ".to_vec();
        big.resize(CAP + 1, b'a');
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(read_all(&big), HeadRead::TooLarge);
        // Endless bytes without an empty line: stops at the cap, not at EOF.
        let mut buf = Vec::new();
        assert_eq!(
            read(futures_lite::io::repeat(b'a'), &mut buf),
            HeadRead::TooLarge
        );
        assert_eq!(buf.len(), CAP, "read past the cap");
        // A head of exactly the cap is fine.
        big.drain(30..35);
        assert_eq!(big.len(), CAP);
        assert_eq!(read_all(&big), HeadRead::Complete(CAP));
    }

    #[test]
    fn nothing_then_eof_is_closed_half_a_head_is_cut_and_a_reset_failed() {
        assert_eq!(read_all(b""), HeadRead::Closed);
        assert_eq!(read_all(b"GET /healthz HTTP/1.1\r\n"), HeadRead::Cut);
        assert_eq!(read(Broken, &mut b"GET /".to_vec()), HeadRead::Failed);
    }

    #[test]
    fn bytes_left_in_the_buffer_are_used_before_reading() {
        // `Broken` fails every read: only what `buf` holds can answer.
        assert_eq!(
            read(Broken, &mut b"GET / HTTP/1.1\r\n\r\nGET /b".to_vec()),
            HeadRead::Complete(18)
        );
        assert_eq!(
            read(&b"\n"[..], &mut b"GET / HTTP/1.1\r\n\r".to_vec()),
            HeadRead::Complete(18)
        );
        assert_eq!(read(Broken, &mut vec![b'a'; CAP + 1]), HeadRead::TooLarge);
    }

    #[test]
    fn parse_reads_method_and_path_and_drops_the_query() {
        let get = parsed(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            (get.method(), get.path(), get.version()),
            ("GET", "/healthz", Version::Http11)
        );
        assert_eq!(
            parsed(b"HEAD /healthz?x=1 HTTP/1.0\r\n\r\n").path(),
            "/healthz"
        );
        assert_eq!(
            parsed(b"GET /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n").path(),
            "/healthz"
        );
        // The query is kept apart; a fragment (never sent on purpose) is dropped.
        for (target, path, query) in [
            ("/a?b=%20&c", "/a", "b=%20&c"),
            ("/a#f?x", "/a", ""),
            ("/a?q#f", "/a", "q"),
        ] {
            let head = format!("GET {target} HTTP/1.1\r\n\r\n");
            let head = parsed(head.as_bytes());
            assert_eq!((head.path(), head.query()), (path, query), "{target}");
        }
    }

    #[test]
    fn parse_refuses_garbage_versions_and_bad_headers() {
        for head in [
            &b"\x00\x01\x02garbage\r\n\r\n"[..],
            b"\r\n\r\n",
            b"GET /healthz\r\n\r\n",
            b"GET  /healthz HTTP/1.1\r\n\r\n",
            b"GET healthz HTTP/1.1\r\n\r\n",
            b"G(T /healthz HTTP/1.1\r\n\r\n",
            b"GET /healthz HTTP/2.0\r\n\r\n",
            b"GET /healthz SPDY/3\r\n\r\n",
            b"GET /he\x7flthz HTTP/1.1\r\n\r\n",
            b"GET /h\xc3 HTTP/1.1\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nContent-Length: +0\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\tX: folded\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: a\rb\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: \xff\r\n\r\n",
        ] {
            assert!(
                Head::parse(head).is_err(),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn headers_are_found_in_any_case_with_their_whitespace_trimmed() {
        let head =
            parsed(b"GET / HTTP/1.1\nContent-Type:\t text/x \nX-Tab: a\tb\nX-A:\nx-a: 2\n\n");
        assert_eq!(head.header("content-type"), Some("text/x"));
        assert_eq!(head.header("x-tab"), Some("a\tb"), "a tab is content");
        // The first of two counts; an empty value is still a value.
        assert_eq!((head.header("X-A"), head.header("host")), (Some(""), None));
        let names: Vec<_> = head.headers().map(|(name, _)| name).collect();
        assert_eq!(names, ["Content-Type", "X-Tab", "X-A", "x-a"]);
    }

    #[test]
    fn content_length_is_digits_only_repeats_must_agree_and_transfer_encoding_wins() {
        let length = |head: &str| {
            Head::parse(format!("POST / HTTP/1.1\r\n{head}\r\n").as_bytes())
                .map(|h| h.body_length())
        };
        assert_eq!(length(""), Ok(BodyLength::Fixed(0)));
        assert_eq!(length("Content-Length: 42\r\n"), Ok(BodyLength::Fixed(42)));
        assert_eq!(
            length("Content-Length: 007\r\ncontent-length: 7\r\n"),
            Ok(BodyLength::Fixed(7))
        );
        assert_eq!(
            length("Content-Length: 3\r\nContent-Length: 4\r\n"),
            Err("conflicting content-length")
        );
        for bad in ["3, 3", "-1", "0x10", "", "1 2", "99999999999999999999999"] {
            assert!(
                length(&format!("Content-Length: {bad}\r\n")).is_err(),
                "{bad:?}"
            );
        }
        for encoded in [
            "Transfer-Encoding: chunked\r\n",
            "transfer-encoding: gzip\r\nContent-Length: 5\r\n",
        ] {
            assert_eq!(length(encoded), Ok(BodyLength::Encoded), "{encoded:?}");
        }
    }

    #[test]
    fn keep_alive_follows_the_version_and_every_connection_header() {
        for (version, connection, keep) in [
            ("1.1", &[][..], true),
            ("1.1", &["Keep-Alive"], true),
            ("1.1", &["upgrade,\tCLOSE"], false),
            ("1.1", &["keep-alive", "close"], false),
            ("1.0", &[], false),
            ("1.0", &["closed"], false),
            ("1.0", &["foo, keep-alive"], true),
            ("1.0", &["keep-alive, close"], false),
        ] {
            let lines: String = connection
                .iter()
                .map(|c| format!("Connection: {c}\r\n"))
                .collect();
            let head = format!("GET / HTTP/{version}\r\n{lines}\r\n");
            assert_eq!(parsed(head.as_bytes()).keep_alive(), keep, "{head:?}");
        }
    }

    #[test]
    fn no_input_makes_the_reader_or_the_parser_panic() {
        // The bytes heads are made of, and the ones that break them.
        let alphabet = b"GET /?#:HTP1.0 \r\n\t\x00\x7f\xc3\xa9\xffaZ-,Content-Length";
        let mut rng = fastrand::Rng::with_seed(10);
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..rng.usize(..64))
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let (cap, mut buf) = (rng.usize(..80), Vec::new());
            let read = future::block_on(read_head(&mut &bytes[..], &mut buf, cap));
            assert!(buf.len() <= cap, "read past the cap {cap}");
            let head = match read {
                HeadRead::Complete(len) => &bytes[..len],
                _ => &bytes[..],
            };
            if let Ok(head) = Head::parse(head) {
                let _ = (
                    head.path(),
                    head.query(),
                    head.header("a"),
                    head.keep_alive(),
                );
            }
        }
    }
}
