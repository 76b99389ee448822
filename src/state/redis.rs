//! The Redis store: state shared by several instances of one bot, over one
//! connection of our own RESP2 client.
//!
//! One connection, one request at a time: a request takes the connection
//! out of its cell and puts it back only after a whole, expected reply, so
//! a timeout, an I/O error or a reply we cannot read drops it and the next
//! call connects again. Each connect and each request is bounded by the
//! store's timeout; an outage is logged once when it starts and once when
//! it ends, not once per call. Writes are durable when Redis acknowledges
//! them (what Redis keeps across its own crash is its configuration's
//! business). Host names are resolved by async-net, which hands a lookup
//! to its blocking pool; an IP address is used as is.
//!
//! Must not: block the executor thread, allocate from a length Redis sent
//! before checking it, or print the password (not in `describe`, `Debug`,
//! errors or logs).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::Duration;

use async_net::TcpStream;
use event_listener::Event;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::store::{Store, StoreError, StoreFuture};
use crate::wait;

/// The largest value stored; a larger one is [`StoreError::TooLarge`].
const MAX_VALUE: usize = 512 * 1024;

/// The largest reply read: a larger bulk string is a failure, and the
/// connection is dropped before anything of it is buffered.
const MAX_REPLY: usize = 1024 * 1024;

/// Room for a reply's header (`$1048576\r\n`) and trailer beyond [`MAX_REPLY`].
const MAX_BUFFER: usize = MAX_REPLY + 64;

/// How much a read asks the socket for at most.
const READ_CHUNK: usize = 8192;

/// What a connect and a request each may take unless [`RedisStore::with_timeout`] says.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest time to live sent (about 4,000 years): Redis refuses an
/// expiry that overflows its clock.
const MAX_TTL_MS: u128 = 1 << 47;

/// State in Redis, under keys `{namespace}:{key}`.
///
/// # Examples
/// ```
/// use smolgram::state::{RedisStore, Store};
///
/// let store = RedisStore::open("redis://:secret@127.0.0.1:6380/2", "smolgram:123456").unwrap();
/// assert_eq!(store.describe(), "redis 127.0.0.1:6380/2");
/// assert!(!format!("{store:?}").contains("secret"));
/// ```
pub struct RedisStore {
    target: Target,
    namespace: String,
    timeout: Duration,
    conn: RefCell<Option<Conn>>,
    /// Whether a request holds the connection; `free` announces its end.
    busy: Cell<bool>,
    free: Event,
    /// Failed calls since the last one that worked: the outage's length.
    failures: Cell<u64>,
}

/// Where to connect and how to log in, from the URL.
#[derive(Clone, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    db: u32,
    user: Option<String>,
    password: Option<String>,
}

impl RedisStore {
    /// The store at `url` (`redis://[[user]:password@]host[:port][/db]`,
    /// port 6379 and db 0 unless given; user and password may be
    /// percent-encoded), its keys prefixed `{namespace}:`. It does not
    /// connect: the first call does, and the next one after a failure.
    pub fn open(url: &str, namespace: &str) -> Result<RedisStore, StoreError> {
        let target = Target::parse(url).map_err(|detail| StoreError::Open {
            store: redacted(url),
            detail,
        })?;
        Ok(RedisStore {
            target,
            namespace: namespace.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            conn: RefCell::new(None),
            busy: Cell::new(false),
            free: Event::new(),
            failures: Cell::new(0),
        })
    }

    /// The same store with `timeout` for each connect and each request
    /// (2 s unless set).
    pub fn with_timeout(mut self, timeout: Duration) -> RedisStore {
        self.timeout = timeout;
        self
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.namespace)
    }

    /// One command, its reply if `expected` takes it; one at a time, each
    /// bounded.
    async fn call(&self, args: &[&[u8]], expected: Expected) -> Result<Reply, StoreError> {
        let Some(_turn) = wait::within(self.timeout, self.turn()).await else {
            let detail = format!("busy: no turn on the connection within {:?}", self.timeout);
            return Err(self.unavailable(detail));
        };
        match self.attempt(args, expected).await {
            Ok(reply) => {
                self.recovered();
                Ok(reply)
            }
            Err(detail) => Err(self.failed(detail)),
        }
    }

    /// Waits until no request holds the connection, then holds it.
    async fn turn(&self) -> Turn<'_> {
        wait::until(&self.free, || !self.busy.get()).await;
        self.busy.set(true);
        Turn(self)
    }

    /// Connects if need be and runs the command. The connection goes back
    /// to its cell only after an expected reply: on every other path
    /// (cancellation too) it is dropped here.
    async fn attempt(&self, args: &[&[u8]], expected: Expected) -> Result<Reply, String> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => wait::within(self.timeout, Conn::open(&self.target))
                .await
                .ok_or_else(|| format!("no connection within {:?}", self.timeout))??,
        };
        let reply = wait::within(self.timeout, conn.call(args))
            .await
            .ok_or_else(|| format!("no reply within {:?}", self.timeout))??;
        if let Reply::Error(line) = &reply {
            if !is_auth_error(line) {
                self.conn.replace(Some(conn));
            }
            return Err(refusal(line));
        }
        if !expected(&reply) {
            let command = String::from_utf8_lossy(args[0]);
            return Err(format!("unexpected reply to {command}: {}", reply.kind()));
        }
        self.conn.replace(Some(conn));
        Ok(reply)
    }

    /// A failed call's error; the outage's first is logged.
    fn failed(&self, detail: String) -> StoreError {
        let detail = self.scrub(detail);
        if self.failures.get() == 0 {
            log::warn!(
                "state: {} unreachable: {detail}; updates wait for it",
                self.describe()
            );
        }
        self.failures.set(self.failures.get() + 1);
        self.unavailable(detail)
    }

    /// A call worked: the end of an outage, if there was one, is logged.
    fn recovered(&self) {
        let failures = self.failures.replace(0);
        if failures > 0 {
            log::info!("state: {} back after {failures} failures", self.describe());
        }
    }

    fn unavailable(&self, detail: String) -> StoreError {
        StoreError::Unavailable {
            store: self.describe(),
            detail,
        }
    }

    /// `detail` without the password, should a server ever echo it.
    fn scrub(&self, detail: String) -> String {
        match &self.target.password {
            Some(password) if !password.is_empty() && detail.contains(password.as_str()) => {
                detail.replace(password.as_str(), "***")
            }
            _ => detail,
        }
    }
}

/// Whether a reply is one the command can have; any other means the
/// connection is out of step, and it is dropped.
type Expected = fn(&Reply) -> bool;

fn is_ok(reply: &Reply) -> bool {
    matches!(reply, Reply::Simple(ok) if ok == "OK")
}

fn is_bulk(reply: &Reply) -> bool {
    matches!(reply, Reply::Bulk(_))
}

fn is_integer(reply: &Reply) -> bool {
    matches!(reply, Reply::Integer(_))
}

/// A request's hold on the connection; dropping it (cancellation too)
/// lets the next one in.
struct Turn<'a>(&'a RedisStore);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.busy.set(false);
        self.0.free.notify(1);
    }
}

impl Store for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let key = self.key(key);
            match self.call(&[b"GET", key.as_bytes()], is_bulk).await? {
                Reply::Bulk(value) => Ok(value),
                _ => unreachable!("`is_bulk` let only a bulk string through"),
            }
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Option<&'a [u8]>,
        ttl: Option<Duration>,
    ) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            let Some(value) = value else {
                let key = self.key(key);
                self.call(&[b"DEL", key.as_bytes()], is_integer).await?;
                return Ok(None);
            };
            if value.len() > MAX_VALUE {
                return Err(StoreError::TooLarge {
                    key: key.to_owned(),
                    size: value.len(),
                    limit: MAX_VALUE,
                });
            }
            let key = self.key(key);
            match ttl {
                Some(ttl) => {
                    // PX 0 is refused: a zero time to live expires at the next millisecond.
                    let ms = ttl.as_millis().clamp(1, MAX_TTL_MS).to_string();
                    let args: [&[u8]; 5] = [b"SET", key.as_bytes(), value, b"PX", ms.as_bytes()];
                    self.call(&args, is_ok).await?
                }
                None => self.call(&[b"SET", key.as_bytes(), value], is_ok).await?,
            };
            Ok(None)
        })
    }

    fn describe(&self) -> String {
        format!("redis {}", self.target)
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("connected", &self.conn.borrow().is_some())
            .field("failures", &self.failures.get())
            .finish()
    }
}

impl fmt::Display for Target {
    /// `HOST:PORT/DB`, an IPv6 host in brackets; never the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            write!(f, "{}:{}/{}", self.host, self.port, self.db)
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis://")?;
        if self.user.is_some() || self.password.is_some() {
            write!(f, "{}:***@", self.user.as_deref().unwrap_or(""))?;
        }
        write!(f, "{self}")
    }
}

impl Target {
    /// `redis://[[user]:password@]host[:port][/db]`, or why not.
    fn parse(url: &str) -> Result<Target, String> {
        let Some(rest) = url.strip_prefix("redis://") else {
            return Err("not a redis:// url (rediss:// and unix sockets are not supported)".into());
        };
        let (credentials, address) = match rest.rsplit_once('@') {
            Some((credentials, address)) => (Some(credentials), address),
            None => (None, rest),
        };
        let (user, password) = match credentials {
            Some(credentials) => credentials_of(credentials)?,
            None => (None, None),
        };
        let (host_port, db) = address.split_once('/').unwrap_or((address, ""));
        let db = match db {
            "" => 0,
            db => db
                .parse()
                .map_err(|_| format!("database `{db}` is not a number"))?,
        };
        let (host, port) = host_and_port(host_port)?;
        Ok(Target {
            host,
            port,
            db,
            user,
            password,
        })
    }
}

/// `user:password` or `:password`, percent-decoded.
fn credentials_of(credentials: &str) -> Result<(Option<String>, Option<String>), String> {
    let Some((user, password)) = credentials.split_once(':') else {
        return Err("credentials need a password: user:password@ or :password@".into());
    };
    let user = match percent_decoded(user)? {
        user if user.is_empty() => None,
        user => Some(user),
    };
    Ok((user, Some(percent_decoded(password)?)))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; port 6379 unless given.
fn host_and_port(host_port: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err("an ipv6 host needs its closing `]`".into());
        };
        match after {
            "" => (host, None),
            after => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("`{after}` after the ipv6 host")),
            },
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        None => 6379,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("port `{port}` is not a port number")),
        },
    };
    Ok((host.to_owned(), port))
}

/// `text` with its `%XX` escapes decoded, as UTF-8.
fn percent_decoded(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or("a bad %-escape in the credentials")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "credentials are not utf-8 once decoded".into())
}

/// `url` with everything between `://` and the last `@` hidden.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        (None, Some(at)) => format!("***{}", &url[at..]),
        _ => url.to_owned(),
    }
}

/// Whether Redis refused us for the login, not for the command.
fn is_auth_error(line: &str) -> bool {
    line.starts_with("NOAUTH") || line.starts_with("WRONGPASS")
}

/// An error reply as a failure's detail.
fn refusal(line: &str) -> String {
    if is_auth_error(line) {
        format!("authentication failed (check the url's user and password): {line}")
    } else {
        format!("redis said: {line}")
    }
}

/// One connection: the socket and what was read past the last reply.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connected, logged in and on the right database.
    async fn open(target: &Target) -> Result<Conn, String> {
        let stream = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // Small requests, each waited for: Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        let mut conn = Conn {
            stream,
            buf: Vec::new(),
        };
        if let Some(password) = &target.password {
            let reply = match &target.user {
                Some(user) => {
                    conn.call(&[b"AUTH", user.as_bytes(), password.as_bytes()])
                        .await?
                }
                None => conn.call(&[b"AUTH", password.as_bytes()]).await?,
            };
            expect_ok("AUTH", reply)?;
        }
        if target.db != 0 {
            let db = target.db.to_string();
            let reply = conn.call(&[b"SELECT", db.as_bytes()]).await?;
            expect_ok("SELECT", reply)?;
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply; an error reply is a reply.
    async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, String> {
        self.stream
            .write_all(&encode(args))
            .await
            .map_err(|e| format!("write: {e}"))?;
        self.reply().await
    }

    async fn reply(&mut self) -> Result<Reply, String> {
        loop {
            if let Some((reply, used)) = parse(&self.buf)? {
                self.buf.drain(..used);
                return Ok(reply);
            }
            if self.buf.len() > MAX_BUFFER {
                return Err("reply too large".into());
            }
            // Read into the connection's buffer, not into an array in this
            // future: every call's boxed future is as large as its largest
            // state, and 64 handlers may wait for their turn at once.
            let filled = self.buf.len();
            self.buf.resize(filled + READ_CHUNK, 0);
            let read = self.stream.read(&mut self.buf[filled..]).await;
            let n = *read.as_ref().unwrap_or(&0);
            self.buf.truncate(filled + n);
            let n = read.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed by redis".into());
            }
        }
    }
}

/// `+OK` to a login step, or why not.
fn expect_ok(command: &str, reply: Reply) -> Result<(), String> {
    match reply {
        Reply::Simple(ok) if ok == "OK" => Ok(()),
        Reply::Error(line) => Err(format!("{command}: {}", refusal(&line))),
        other => Err(format!("unexpected reply to {command}: {}", other.kind())),
    }
}

/// A RESP2 reply, of the kinds our commands get.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR …`: the line without its `-`.
    Error(String),
    /// `:1`
    Integer(i64),
    /// `$3\r\nabc`; `$-1` is `None`.
    Bulk(Option<Vec<u8>>),
}

impl Reply {
    fn kind(&self) -> &'static str {
        match self {
            Reply::Simple(_) => "a simple string",
            Reply::Error(_) => "an error",
            Reply::Integer(_) => "an integer",
            Reply::Bulk(None) => "nil",
            Reply::Bulk(Some(_)) => "a bulk string",
        }
    }
}

/// A command as a RESP array of bulk strings: binary-safe.
fn encode(args: &[&[u8]]) -> Vec<u8> {
    let size: usize = args.iter().map(|arg| arg.len() + 16).sum();
    let mut out = Vec::with_capacity(size + 16);
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The reply at the start of `buf` and its length in bytes; `None` if
/// `buf` does not hold all of it yet. A bulk length over [`MAX_REPLY`] is
/// refused before its bytes are waited for.
fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() > MAX_BUFFER {
            return Err("reply line too long".into());
        }
        return Ok(None);
    };
    let Some((&kind, line)) = buf[..end].split_first() else {
        return Err("protocol: an empty reply line".into());
    };
    let line = std::str::from_utf8(line).map_err(|_| "protocol: a reply line not in utf-8")?;
    let after = end + 2;
    let reply = match kind {
        b'+' => Reply::Simple(line.to_owned()),
        b'-' => Reply::Error(line.to_owned()),
        b':' => Reply::Integer(number(line)?),
        b'$' => return bulk(buf, after, number(line)?),
        b'*' => return Err("protocol: an array reply, which no command here gets".into()),
        other => return Err(format!("protocol: unknown reply type byte {other:#04x}")),
    };
    Ok(Some((reply, after)))
}

/// A bulk string of `len` bytes starting at `start` in `buf`.
fn bulk(buf: &[u8], start: usize, len: i64) -> Result<Option<(Reply, usize)>, String> {
    if len == -1 {
        return Ok(Some((Reply::Bulk(None), start)));
    }
    let len = usize::try_from(len).map_err(|_| format!("protocol: bulk length {len}"))?;
    if len > MAX_REPLY {
        return Err(format!("reply too large: {len} bytes, over {MAX_REPLY}"));
    }
    let end = start + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err("protocol: a bulk string without its \\r\\n".into());
    }
    Ok(Some((Reply::Bulk(Some(buf[start..end].to_vec())), end + 2)))
}

fn number(line: &str) -> Result<i64, String> {
    line.parse()
        .map_err(|_| format!("protocol: `{line}` is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_binary_safe_bulk_strings() {
        assert_eq!(
            encode(&[b"SET", b"k", b"a\r\n\0b"]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\r\n\0b\r\n".to_vec()
        );
        assert_eq!(
            encode(&[b"GET", b""]),
            b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn each_reply_kind_is_read_with_its_length() {
        assert_eq!(
            parse(b"+OK\r\nrest").unwrap(),
            Some((Reply::Simple("OK".into()), 5))
        );
        assert_eq!(parse(b":-3\r\n").unwrap(), Some((Reply::Integer(-3), 5)));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Reply::Bulk(None), 5)));
        assert_eq!(
            parse(b"$0\r\n\r\n").unwrap(),
            Some((Reply::Bulk(Some(Vec::new())), 6))
        );
        assert_eq!(
            parse(b"-WRONGPASS invalid username-password pair\r\n").unwrap(),
            Some((
                Reply::Error("WRONGPASS invalid username-password pair".into()),
                43
            ))
        );
    }

    #[test]
    fn a_reply_cut_anywhere_waits_for_the_rest() {
        let whole = b"$5\r\na\r\n\0b\r\n";
        for cut in 0..whole.len() {
            assert_eq!(parse(&whole[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (reply, used) = parse(whole).unwrap().unwrap();
        assert_eq!(reply, Reply::Bulk(Some(b"a\r\n\0b".to_vec())));
        assert_eq!(used, whole.len());
    }

    #[test]
    fn an_oversized_or_bad_bulk_length_is_refused_before_any_wait() {
        let err = parse(b"$1048577\r\n").unwrap_err();
        assert!(err.starts_with("reply too large"), "{err}");
        assert!(
            parse(b"$1048576\r\n").unwrap().is_none(),
            "the cap itself is allowed"
        );
        assert!(parse(b"$99999999999999999999\r\n").is_err());
        assert!(parse(b"$-2\r\n").is_err());
        assert!(parse(b"$3\r\nabcXY").is_err(), "no \\r\\n after the bytes");
    }

    #[test]
    fn an_unknown_type_or_an_endless_line_is_a_protocol_error() {
        assert!(parse(b"?x\r\n").unwrap_err().contains("unknown reply type"));
        assert!(parse(b"*1\r\n").is_err());
        assert!(parse(&vec![b'+'; MAX_BUFFER + 1]).is_err());
        assert!(parse(b"+partial line").unwrap().is_none());
    }

    #[test]
    fn urls_give_host_port_db_and_credentials() {
        let t = Target::parse("redis://u:p%40ss@redis.internal:6380/3").unwrap();
        assert_eq!(t.to_string(), "redis.internal:6380/3");
        assert_eq!(t.user.as_deref(), Some("u"));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        let t = Target::parse("redis://:a@b@h").unwrap();
        assert_eq!(
            (t.password.as_deref(), t.to_string().as_str()),
            (Some("a@b"), "h:6379/0")
        );
        assert_eq!(
            Target::parse("redis://[::1]:7000/").unwrap().to_string(),
            "[::1]:7000/0"
        );
        assert_eq!(Target::parse("redis://h").unwrap().user, None);
    }

    #[test]
    fn the_password_is_in_no_printout() {
        let store = RedisStore::open("redis://bob:hunter2@h:1/0", "ns").unwrap();
        assert_eq!(store.describe(), "redis h:1/0");
        assert!(!format!("{store:?}").contains("hunter2"), "{store:?}");
        let err = RedisStore::open("redis://bob:hunter2@h:x/0", "ns").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        assert_eq!(store.scrub("said hunter2".into()), "said ***");
    }
}
