//! The health listener: `/healthz`, `/readyz` and `/metrics`, its bind
//! policy, and the limits that keep it harmless (a read and write deadline
//! per connection, a cap on the request head, a cap on open connections).
//!
//! It runs on the bot's own single-thread executor, so its first duty is to
//! never hold that thread: every read and write races a deadline, and each
//! connection is its own task. At [`MAX_CONNECTIONS`] the *oldest*
//! connection is closed to make room, not the new one: a new connection is
//! most likely a probe that sends its request at once, the oldest most
//! likely a client that sends nothing, so a thousand idle or slowloris
//! connections cannot lock a probe out, and open sockets stay bounded.
//!
//! A key design decision is that the port is *bound*, never probed by
//! connecting first: a probe can find the port free and the bind still fail
//! a moment later, which is how the Python bot died with `OSError: [Errno 98]
//! Address already in use`. So the bind's own answer is handled instead: a
//! busy port is not fatal unless the operator asked for it (`require`); the
//! bot keeps polling, says so once, and [`HealthListener::serve`] retries the
//! bind every [`RETRY`] until the port frees.
//!
//! Reading and parsing the request head and encoding the answer are
//! [`crate::http`]'s; this module adds the listener's policy on top: a head
//! of at most [`MAX_HEAD`], one request per connection, no request bodies
//! but the webhook's and `/notify`'s (each route admits its head first, and
//! one `body` read serves both, within the deadline and the route's cap),
//! `Connection: close` on every answer. Routing is one `match` on
//! `(method, path)` returning a [`Response`]; what `/readyz` and `/metrics`
//! report comes from the service as a [`Probe`].
//!
//! One mechanism, one file: the listener is some 330 lines, and the rest is
//! its tests, most of them over real sockets (a silent client, the cap, a
//! busy port).
//!
//! Must not: let one client stall the thread, hold unbounded state per
//! client, or stop the bot because the port is busy.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use async_executor::Task;
use async_io::{Async, Timer};
use async_net::TcpStream;
use futures_lite::future;
use futures_lite::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use log::{debug, info, warn};
#[cfg(feature = "tls")]
use rustls::ServerConfig;

use crate::http::{self, BodyLength, Connection, Head, HeadRead, Response};
use crate::metrics::Metrics;
use crate::notify::{self, Outlet};
use crate::readiness::Readiness;
#[cfg(feature = "tls")]
use crate::tls;
use crate::webhook::Inlet;
use crate::{wait, Error, Runtime};

/// How often a listener whose port was busy tries to bind it again.
pub(crate) const RETRY: Duration = Duration::from_secs(2);

/// How many connections are handled at once; a new one beyond closes the oldest.
pub(crate) const MAX_CONNECTIONS: usize = 64;

/// How long a client has to send its whole request head, and again how long
/// the answer may take to write.
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);

/// The longest request head we read. A probe sends a few hundred bytes; a
/// client that sends more is not a probe.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// How long a webhook connection may wait for its next request: the Bot
/// API server's own idle timeout, so that it is the one to close.
const KEEP_ALIVE: Duration = Duration::from_secs(60);

/// The largest body of a refused webhook request read before the answer,
/// so that closing with it unread does not reset the answer away; a larger
/// one is left unread.
const MAX_DISCARD: usize = 64 * 1024;

/// How long to pause after a failed `accept` (out of file descriptors, say)
/// so that a persistent failure does not spin the executor thread.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What `/readyz` and `/metrics` report; the service provides it.
#[derive(Debug)]
pub(crate) struct Probe {
    /// The run's counters and gauges.
    pub(crate) metrics: Rc<Metrics>,
    /// Whether the run is ready, and why not.
    pub(crate) readiness: Rc<Readiness>,
    /// The webhook route, in webhook mode.
    pub(crate) inlet: Option<Rc<Inlet>>,
    /// The `/notify` route, when `SMOLGRAM_NOTIFY_TOKEN` is set.
    pub(crate) outlet: Option<Rc<Outlet>>,
}

/// The health listener: bound (or waiting for its port) and ready to
/// [`serve`](HealthListener::serve).
#[derive(Debug)]
pub(crate) struct HealthListener {
    /// The address asked for (port 0 included).
    addr: SocketAddr,
    /// The socket and its real address, or `None` while the port is busy.
    bound: Option<(Listener, SocketAddr)>,
    /// The read deadline for the head, and the write deadline for the answer.
    deadline: Duration,
    /// The most connections handled at once.
    max_connections: usize,
    /// Serve https with this, not http.
    #[cfg(feature = "tls")]
    tls: Option<Arc<ServerConfig>>,
}

impl HealthListener {
    /// Binds `addr` now, synchronously, so the caller knows the real port
    /// before the executor runs. Port 0 picks a free port.
    ///
    /// # Errors
    /// [`Error::Bind`] when the port is busy and `require` is set, and for
    /// any other bind failure (permission denied, address not available)
    /// whether or not `require` is set: those do not fix themselves. A busy
    /// port without `require` is logged once and returns a pending listener
    /// that [`serve`](HealthListener::serve) keeps binding.
    pub(crate) fn bind(addr: SocketAddr, require: bool) -> Result<HealthListener, Error> {
        let bound = match try_bind(addr) {
            Ok((listener, local)) => {
                info!("health listening addr={local}");
                Some((listener, local))
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && !require => {
                warn!("health port busy addr={addr}; still polling, retrying bind every {RETRY:?}");
                None
            }
            Err(e) => {
                return Err(Error::Bind {
                    addr,
                    kind: e.kind(),
                })
            }
        };
        Ok(HealthListener {
            addr,
            bound,
            deadline: DEADLINE,
            max_connections: MAX_CONNECTIONS,
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    #[cfg(feature = "tls")]
    /// Serves https with `tls` instead of http: each connection's handshake
    /// within the deadline, then the same requests over it.
    pub(crate) fn with_tls(mut self, tls: Arc<ServerConfig>) -> HealthListener {
        self.tls = Some(tls);
        self
    }

    /// The bound address (the real port when 0 was asked for), or `None`
    /// while the port is busy.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.bound.as_ref().map(|(_, local)| *local)
    }

    /// Serves until dropped; the caller races it against the bot and drops
    /// it at exit, which also cancels every connection still open.
    ///
    /// A pending listener first retries its bind every [`RETRY`], quietly,
    /// and logs `health listening` once it holds the port. Each accepted
    /// connection runs in its own task on `rt`, at most
    /// [`MAX_CONNECTIONS`] at once.
    pub(crate) async fn serve(self, rt: &Runtime, probe: Probe) {
        let listener = match self.bound {
            Some((listener, _)) => listener,
            None => rebind(self.addr).await,
        };
        // Room for as many webhook requests as Telegram sends at once.
        let max_connections =
            self.max_connections + probe.inlet.as_ref().map_or(0, |i| i.max_connections());
        let probe = Rc::new(probe);
        // The tasks of the connections being handled, oldest first, each
        // with its mark as a webhook connection. Keeping the handles (not
        // detaching) bounds them and cancels them when `serve` is dropped;
        // finished ones are swept on each accept.
        let mut open: VecDeque<(Task<()>, Rc<Cell<bool>>)> = VecDeque::new();
        let mut at_cap = false;
        let mut accept_failing: Option<io::ErrorKind> = None;
        loop {
            let (stream, peer) = match accept(&listener).await {
                Ok(accepted) => {
                    accept_failing = None;
                    accepted
                }
                Err(e) => {
                    if accept_failing != Some(e.kind()) {
                        warn!("health accept failed error={e}; retrying every {ACCEPT_PAUSE:?}");
                        accept_failing = Some(e.kind());
                    }
                    Timer::after(ACCEPT_PAUSE).await;
                    continue;
                }
            };
            open.retain(|(task, _)| !task.is_finished());
            if open.len() >= max_connections {
                if !at_cap {
                    warn!(
                        "health connections at cap max={max_connections}; closing the oldest for each new one"
                    );
                    at_cap = true;
                }
                // The oldest that is not Telegram's, unless all are.
                let oldest = open.iter().position(|(_, webhook)| !webhook.get());
                // Dropping the task cancels it and closes its socket.
                drop(open.remove(oldest.unwrap_or(0)));
            } else if at_cap {
                info!("health connections below cap again max={max_connections}");
                at_cap = false;
            }
            let webhook = Rc::new(Cell::new(false));
            #[cfg(feature = "tls")]
            let task = connection(
                stream,
                peer,
                self.deadline,
                self.tls.clone(),
                Rc::clone(&probe),
                Rc::clone(&webhook),
            );
            #[cfg(not(feature = "tls"))]
            let task = {
                let (deadline, probe, mark) =
                    (self.deadline, Rc::clone(&probe), Rc::clone(&webhook));
                async move {
                    let mut stream = stream;
                    handle(&mut stream, peer, deadline, probe, mark).await
                }
            };
            open.push_back((rt.spawn(task), webhook));
            // Let the new connection read its request before the next accept:
            // a backlog of connections must not push a waiting probe out.
            future::yield_now().await;
        }
    }
}

#[cfg(test)]
impl HealthListener {
    /// Sets the per-connection deadline, so that tests need not wait 5 s.
    pub(crate) fn with_deadline(mut self, deadline: Duration) -> HealthListener {
        self.deadline = deadline;
        self
    }

    /// Sets the connection cap, so that tests need not open 65 sockets.
    pub(crate) fn with_max_connections(mut self, max: usize) -> HealthListener {
        self.max_connections = max;
        self
    }
}

/// The listening socket, registered with the reactor.
type Listener = Async<std::net::TcpListener>;

/// Accepts one connection, trying `accept` again only when the reactor says
/// the socket is readable.
///
/// `Async::accept` (and async-net's) tries again on every poll after the
/// first, taking a poll for a wake-up; but `serve` shares its task with the
/// bot, which is polled for every answer of the API: that was a failed
/// `accept` and an `epoll_ctl` per answer (strace: 1081 of each for 2000
/// updates). `poll_readable` is ready only once the reactor saw the socket.
async fn accept(listener: &Listener) -> io::Result<(TcpStream, SocketAddr)> {
    loop {
        match listener.get_ref().accept() {
            Ok((stream, peer)) => return Ok((TcpStream::try_from(stream)?, peer)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        future::poll_fn(|cx| listener.poll_readable(cx)).await?;
    }
}

/// Binds `addr` and registers the socket with the reactor.
///
/// `std` binds (with `SO_REUSEADDR` on Unix, so a previous run's `TIME_WAIT`
/// connections do not hold the port); async-net only wraps the socket.
/// Registering and `getsockname` fail only when the process is out of
/// descriptors or memory; to the operator that is still "cannot bind".
fn try_bind(addr: SocketAddr) -> io::Result<(Listener, SocketAddr)> {
    let listener = std::net::TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    Ok((Async::new(listener)?, local))
}

/// Binds `addr` again every [`RETRY`] until it works. `bind` has already
/// warned that the port is busy, so only a *different* failure is logged.
async fn rebind(addr: SocketAddr) -> Listener {
    let mut last = io::ErrorKind::AddrInUse;
    loop {
        Timer::after(RETRY).await;
        match try_bind(addr) {
            Ok((listener, local)) => {
                info!("health listening addr={local}");
                return listener;
            }
            Err(e) if e.kind() != last => {
                warn!("health bind failed addr={addr} error={e}; retrying every {RETRY:?}");
                last = e.kind();
            }
            Err(_) => {}
        }
    }
}

/// A connection's byte stream, plain or TLS: one [`handle`] for both (a
/// trait object, so that its code is in the binary once).
trait Conn: AsyncRead + AsyncWrite + Unpin {}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn for S {}

#[cfg(feature = "tls")]
/// One connection: its TLS handshake first (within `deadline`) if `tls`,
/// then [`handle`].
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    deadline: Duration,
    tls: Option<Arc<ServerConfig>>,
    probe: Rc<Probe>,
    webhook: Rc<Cell<bool>>,
) {
    let Some(tls) = tls else {
        let mut stream = stream;
        return handle(&mut stream, peer, deadline, probe, webhook).await;
    };
    match wait::within(deadline, tls::accept(&tls, stream)).await {
        Some(Ok(mut stream)) => handle(&mut stream, peer, deadline, probe, webhook).await,
        Some(Err(e)) => debug!("health tls handshake failed peer={peer} error={e}"),
        None => debug!("health closing silent tls connection peer={peer} deadline={deadline:?}"),
    }
}

/// Reads a request, answers it and closes; each step within `deadline`.
/// A webhook request (see `webhook`) may keep its connection for the next,
/// which may then be up to [`KEEP_ALIVE`] in coming; `webhook` marks the
/// connection as one, so that the cap closes it last.
async fn handle(
    mut stream: &mut dyn Conn,
    peer: SocketAddr,
    deadline: Duration,
    probe: Rc<Probe>,
    webhook: Rc<Cell<bool>>,
) {
    let mut buf = Vec::new();
    loop {
        let idle = if webhook.get() { KEEP_ALIVE } else { deadline };
        let len = match wait::within(idle, http::read_head(&mut stream, &mut buf, MAX_HEAD)).await {
            None => {
                debug!("health closing silent connection peer={peer} deadline={idle:?}");
                return;
            }
            // The client closed or broke the connection before sending a head:
            // there is nobody to answer.
            Some(HeadRead::Closed | HeadRead::Failed) => return,
            Some(HeadRead::Cut) => Err("connection closed mid-head"),
            Some(HeadRead::TooLarge) => Err("head over the size cap"),
            Some(HeadRead::Complete(len)) => Ok(len),
        };
        let head = len.and_then(|len| Ok((len, Head::parse(&buf[..len])?)));
        let inlet = match &head {
            Ok((_, request)) => probe.inlet.as_ref().filter(|i| i.path() == request.path()),
            Err(_) => None,
        };
        let outlet = match &head {
            Ok((_, request)) if inlet.is_none() && notify::is_route(request) => {
                probe.outlet.as_ref()
            }
            _ => None,
        };
        let (response, with_body, keep, answering) = match (head, inlet) {
            // The webhook's and /notify's bodies: each route checks the head
            // first, and a refused request's small body is read and dropped.
            (Ok((len, request)), None) if outlet.is_some() => {
                let outlet = outlet.expect("matched just above");
                let (read, plain) = (outlet.admit(&request), notify::is_plain(&request));
                let declared = declared(&request);
                let Some(length) = body(&mut stream, &mut buf, len, declared, read, deadline).await
                else {
                    debug!("notify body cut or late peer={peer}");
                    return;
                };
                let response = match length {
                    Ok(length) => {
                        let response = outlet.answer(plain, &buf[len..len + length]);
                        debug!("notify request peer={peer} status={}", response.status);
                        response
                    }
                    Err(response) => response,
                };
                (response, true, false, None)
            }
            (Ok((len, request)), Some(inlet)) => {
                let (keep, declared) = (request.keep_alive(), declared(&request));
                let read = match inlet.admit(&request) {
                    Err((response, how)) => {
                        probe.metrics.answered(how);
                        Err(response)
                    }
                    Ok(length) => {
                        webhook.set(true);
                        Ok(length)
                    }
                };
                match body(&mut stream, &mut buf, len, declared, read, deadline).await {
                    None => {
                        debug!("webhook body cut or late peer={peer}");
                        return;
                    }
                    Some(Err(response)) => (response, true, false, None),
                    Some(Ok(length)) => {
                        let end = len + length;
                        let (response, answering) = inlet.answer(&buf[len..end]).await;
                        buf.drain(..end);
                        debug!("webhook request peer={peer} status={}", response.status);
                        (response, true, keep && inlet.keeps(), Some(answering))
                    }
                }
            }
            (Ok((_, request)), None) => {
                let response = match request_policy(&request) {
                    Ok(()) => route(request.method(), request.path(), &probe),
                    Err(reason) => {
                        debug!("health bad request peer={peer} reason={reason}");
                        bad_request()
                    }
                };
                debug!(
                    "health request peer={peer} method={} path={} status={}",
                    request.method(),
                    request.path(),
                    response.status
                );
                // HEAD gets the headers of GET, Content-Length included.
                (response, request.method() != "HEAD", false, None)
            }
            (Err(reason), _) => {
                debug!("health bad request peer={peer} reason={reason}");
                (bad_request(), true, false, None)
            }
        };
        let connection = if keep {
            Connection::KeepAlive
        } else {
            Connection::Close
        };
        let bytes = response.encode(with_body, connection);
        let written = wait::within(deadline, async {
            stream.write_all(&bytes).await?;
            if !keep {
                // Sends FIN after the answer, so the client reads it to the end.
                stream.close().await?;
            }
            Ok::<_, io::Error>(())
        })
        .await;
        drop(answering);
        match written {
            Some(Ok(())) if keep => continue,
            Some(Ok(())) => {}
            Some(Err(e)) => debug!("health write failed peer={peer} error={e}"),
            None => debug!("health write timed out peer={peer} deadline={deadline:?}"),
        }
        return;
    }
}

/// The body of a request a route admitted (`Ok(length)`), read within
/// `deadline` after the head's `len` bytes; `None` if it came cut or late.
/// A refused one (`Err`) has its body read only if small, so that closing
/// with it unread does not reset the answer away.
async fn body(
    mut stream: &mut dyn Conn,
    buf: &mut Vec<u8>,
    len: usize,
    declared: usize,
    read: Result<usize, Response>,
    deadline: Duration,
) -> Option<Result<usize, Response>> {
    match read {
        Err(response) => {
            if declared <= MAX_DISCARD {
                let body = http::read_body(&mut stream, buf, len + declared);
                let _ = wait::within(deadline, body).await;
            }
            Some(Err(response))
        }
        Ok(length) => {
            let body = http::read_body(&mut stream, buf, len + length);
            (wait::within(deadline, body).await == Some(true)).then_some(Ok(length))
        }
    }
}

/// The body length a head declares; `usize::MAX` for a chunked one.
fn declared(request: &Head<'_>) -> usize {
    match request.body_length() {
        BodyLength::Fixed(n) => usize::try_from(n).unwrap_or(usize::MAX),
        BodyLength::Encoded => usize::MAX,
    }
}

/// The health routes' policy: no request bodies. A body would have to be
/// read (or left unread, which turns our close into a reset that can eat
/// the answer), and no probe sends one; so a `Content-Length` other than 0,
/// or any `Transfer-Encoding`, is refused.
fn request_policy(head: &Head<'_>) -> Result<(), &'static str> {
    match head.body_length() {
        BodyLength::Fixed(0) => Ok(()),
        BodyLength::Fixed(_) | BodyLength::Encoded => Err("request has a body"),
    }
}

/// Chooses the answer: one arm per endpoint.
fn route(method: &str, path: &str, probe: &Probe) -> Response {
    match (method, path) {
        ("GET" | "HEAD", "/healthz") => text(200, "ok\n"),
        ("GET" | "HEAD", "/readyz") => match probe.readiness.not_ready() {
            None => text(200, "ready\n"),
            // 503: orchestrators take the bot out of rotation, not restart it.
            Some(why) => text(503, format!("not ready: {why}\n")),
        },
        ("GET" | "HEAD", "/metrics") => Response {
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            ..text(200, probe.metrics.render(&probe.readiness))
        },
        // 405, not 404: the endpoint exists, only not for this method.
        (_, "/healthz" | "/readyz" | "/metrics") => Response {
            allow: Some("GET, HEAD"),
            ..text(405, "method not allowed\n")
        },
        _ => text(404, "not found\n"),
    }
}

/// A `text/plain` answer.
fn text(status: u16, body: impl Into<Cow<'static, str>>) -> Response {
    Response::new(status, "text/plain", body)
}

/// The answer to anything we will not parse: garbage, an over-long head,
/// an unsupported version, a body.
fn bad_request() -> Response {
    text(400, "bad request\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shutdown;

    use std::io::{Read, Write};
    use std::net::TcpStream as StdStream;
    use std::thread;
    use std::time::Instant;

    /// How long any single wait in these tests may take before it fails.
    const WAIT: Duration = Duration::from_secs(5);

    // ---- policy and routing, no sockets ----

    /// Parses `head` under the health routes' policy.
    fn request(head: &[u8]) -> Result<Head<'_>, &'static str> {
        let head = Head::parse(head)?;
        request_policy(&head)?;
        Ok(head)
    }

    #[test]
    fn requests_with_a_body_are_refused_and_an_empty_one_is_not() {
        for head in [
            &b"GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\n"[..],
            b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /healthz HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(
                request(head).map(|h| h.path()),
                Err("request has a body"),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
        for head in [
            &b"GET /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n"[..],
            b"GET /healthz HTTP/1.1\r\nContent-Length: 00\r\ncontent-length: 0\r\n\r\n",
        ] {
            assert_eq!(request(head).map(|h| h.path()), Ok("/healthz"));
        }
        // The parser's own refusals come through unchanged.
        assert_eq!(
            request(b"GET /healthz HTTP/2.0\r\n\r\n").map(|h| h.path()),
            Err("unsupported http version")
        );
    }

    #[test]
    fn routing_answers_healthz_and_refuses_the_rest() {
        assert_eq!(route("GET", "/healthz", &probe()).status, 200);
        assert_eq!(route("HEAD", "/healthz", &probe()).status, 200);
        assert_eq!(route("GET", "/nope", &probe()).status, 404);
        let post = route("POST", "/healthz", &probe());
        assert_eq!(post.status, 405);
        assert_eq!(post.allow, Some("GET, HEAD"));
    }

    #[test]
    fn head_answer_keeps_content_length_and_drops_the_body() {
        let ok = route("GET", "/healthz", &probe());
        let get = String::from_utf8(ok.encode(true, Connection::Close)).unwrap();
        let head = String::from_utf8(ok.encode(false, Connection::Close)).unwrap();
        assert_eq!(
            get,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\
             Connection: close\r\n\r\nok\n"
        );
        assert_eq!(head, get.strip_suffix("ok\n").unwrap());
    }

    /// A probe of a bot that has just polled, and its stop handle.
    fn probe_stopped_by() -> (Probe, Shutdown) {
        let shutdown = Shutdown::new();
        let readiness = Readiness::new(Duration::from_secs(60), shutdown.clone());
        readiness.polled();
        let probe = Probe {
            metrics: Rc::default(),
            readiness: Rc::new(readiness),
            inlet: None,
            outlet: None,
        };
        (probe, shutdown)
    }

    fn probe() -> Probe {
        probe_stopped_by().0
    }

    #[test]
    fn readyz_says_why_not_and_metrics_is_prometheus_text() {
        let (ready, shutdown) = probe_stopped_by();
        assert_eq!(route("GET", "/readyz", &ready).status, 200);
        ready.readiness.set_conflict(true);
        let conflict = route("GET", "/readyz", &ready);
        assert_eq!(conflict.status, 503);
        assert!(conflict.body.contains("409"), "{}", conflict.body);
        ready.readiness.set_conflict(false);
        shutdown.request();
        assert!(route("GET", "/readyz", &ready)
            .body
            .contains("shutting down"));
        let never = Probe {
            metrics: Rc::default(),
            readiness: Rc::new(Readiness::new(Duration::from_secs(60), Shutdown::new())),
            inlet: None,
            outlet: None,
        };
        assert_eq!(route("HEAD", "/readyz", &never).status, 503);

        let metrics = route("GET", "/metrics", &probe());
        assert_eq!(metrics.status, 200);
        assert!(metrics
            .content_type
            .starts_with("text/plain; version=0.0.4"));
        assert!(
            metrics.body.contains("smolgram_ready 1"),
            "{}",
            metrics.body
        );
        assert_eq!(route("POST", "/metrics", &probe()).status, 405);
    }

    // ---- the listener on a real socket ----

    /// Serves `listener` on a runtime on this thread while `client` runs on
    /// a helper thread; returns the client's result (or its panic).
    fn serve_during<T: Send + 'static>(
        listener: HealthListener,
        client: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (done_tx, done_rx) = async_channel::bounded::<()>(1);
        let client = thread::spawn(move || {
            // Dropped when the client returns or panics: either ends the serving.
            let _done = done_tx;
            client()
        });
        let rt = Runtime::new();
        rt.block_on(future::or(listener.serve(&rt, probe()), async {
            let _ = done_rx.recv().await;
        }))
        .expect("tests do not nest block_on");
        match client.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    fn try_connect(addr: SocketAddr) -> io::Result<StdStream> {
        let conn = StdStream::connect_timeout(&addr, WAIT)?;
        conn.set_read_timeout(Some(WAIT))?;
        conn.set_write_timeout(Some(WAIT))?;
        Ok(conn)
    }

    fn connect(addr: SocketAddr) -> StdStream {
        try_connect(addr).expect("connect to the listener")
    }

    /// Sends `raw` and reads the answer to the end (the server closes).
    fn exchange(addr: SocketAddr, raw: &[u8]) -> io::Result<String> {
        let mut conn = try_connect(addr)?;
        conn.write_all(raw)?;
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    fn status_of(answer: &str) -> u16 {
        answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an http answer: {answer:?}"))
    }

    fn body_of(answer: &str) -> &str {
        answer.split_once("\r\n\r\n").expect("a complete head").1
    }

    fn local() -> HealthListener {
        HealthListener::bind("127.0.0.1:0".parse().unwrap(), true).expect("bind 127.0.0.1:0")
    }

    #[test]
    fn endpoints_answer_over_a_real_socket() {
        let listener = local();
        let addr = listener.local_addr().expect("port 0 binds at once");
        assert_ne!(addr.port(), 0, "the real port is known before serving");
        serve_during(listener, move || {
            let get = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            assert_eq!(status_of(&get), 200, "{get}");
            assert_eq!(body_of(&get), "ok\n");
            assert!(get.contains("Connection: close\r\n"), "{get}");

            let head = exchange(addr, b"HEAD /healthz HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(status_of(&head), 200, "{head}");
            assert!(head.contains("Content-Length: 3\r\n"), "{head}");
            assert_eq!(body_of(&head), "");

            let query = exchange(addr, b"GET /healthz?x=1 HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(status_of(&query), 200, "{query}");

            let nope = exchange(addr, b"GET /nope HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(status_of(&nope), 404, "{nope}");

            let post = exchange(addr, b"POST /healthz HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(status_of(&post), 405, "{post}");
            assert!(post.contains("Allow: GET, HEAD\r\n"), "{post}");

            let garbage = exchange(addr, b"\x16\x03\x01 hello\r\n\r\n").unwrap();
            assert_eq!(status_of(&garbage), 400, "{garbage}");

            let version = exchange(addr, b"GET /healthz HTTP/2.0\r\n\r\n").unwrap();
            assert_eq!(status_of(&version), 400, "{version}");

            let body =
                exchange(addr, b"GET /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap();
            assert_eq!(status_of(&body), 200, "{body}");
        });
    }

    #[test]
    fn a_head_cut_short_by_eof_is_a_400_and_a_bare_lf_head_is_answered() {
        let listener = local();
        let addr = listener.local_addr().unwrap();
        serve_during(listener, move || {
            let mut cut = connect(addr);
            cut.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            cut.shutdown(std::net::Shutdown::Write).unwrap();
            let mut answer = Vec::new();
            cut.read_to_end(&mut answer).unwrap();
            let answer = String::from_utf8_lossy(&answer);
            assert_eq!(status_of(&answer), 400, "{answer}");
            assert_eq!(body_of(&answer), "bad request\n");

            let lf = exchange(addr, b"GET /healthz HTTP/1.1\nHost: t\n\n").unwrap();
            assert_eq!(status_of(&lf), 200, "{lf}");
            assert_eq!(body_of(&lf), "ok\n");
        });
    }

    #[test]
    fn over_long_head_is_refused_without_hanging() {
        let listener = local();
        let addr = listener.local_addr().unwrap();
        serve_during(listener, move || {
            let mut raw = b"GET /healthz HTTP/1.1\r\nX-Big: ".to_vec();
            raw.resize(10 * 1024, b'a');
            raw.extend_from_slice(b"\r\n\r\n");
            let started = Instant::now();
            match exchange(addr, &raw) {
                // The 400, or nothing if the close overtook it.
                Ok(answer) if answer.is_empty() => {}
                Ok(answer) => assert_eq!(status_of(&answer), 400, "{answer}"),
                // The unread rest of the head turns the close into a reset.
                Err(e) => assert!(
                    !matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ),
                    "the listener hung on an over-long head: {e}"
                ),
            }
            assert!(started.elapsed() < WAIT, "answered within the deadline");
            // And the listener still answers afterwards.
            let get = exchange(addr, b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(status_of(&get), 200, "{get}");
        });
    }

    #[test]
    fn busy_port_with_require_is_a_one_line_bind_error_naming_the_address() {
        let occupier = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = occupier.local_addr().unwrap();
        let err = HealthListener::bind(addr, true).unwrap_err();
        assert!(
            matches!(err, Error::Bind { addr: a, kind: io::ErrorKind::AddrInUse } if a == addr),
            "{err:?}"
        );
        let line = err.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains(&addr.to_string()), "{line}");
    }

    #[test]
    fn other_bind_errors_are_fatal_even_without_require() {
        // TEST-NET-1 (RFC 5737) is on no local interface.
        let addr: SocketAddr = "192.0.2.1:0".parse().unwrap();
        let err = HealthListener::bind(addr, false).unwrap_err();
        assert!(
            matches!(err, Error::Bind { kind, .. } if kind != io::ErrorKind::AddrInUse),
            "{err:?}"
        );
    }

    #[test]
    fn busy_port_never_stops_the_listener_and_is_taken_once_free() {
        let occupier = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = occupier.local_addr().unwrap();
        let listener = HealthListener::bind(addr, false).expect("a busy port is not fatal");
        assert_eq!(listener.local_addr(), None);
        drop(occupier);
        serve_during(listener, move || {
            // The first retry comes after RETRY; allow a few more.
            let deadline = Instant::now() + RETRY * 5;
            loop {
                if let Ok(answer) = exchange(addr, b"GET /healthz HTTP/1.1\r\n\r\n") {
                    assert_eq!(status_of(&answer), 200, "{answer}");
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "port not taken within {:?}",
                    RETRY * 5
                );
                // Polling a condition, not ordering events: the bind happens
                // on the server's own timer.
                thread::sleep(Duration::from_millis(50));
            }
        });
    }

    #[test]
    fn silent_connection_does_not_stall_others_and_is_closed_after_the_deadline() {
        let deadline = Duration::from_secs(2);
        let listener = local().with_deadline(deadline);
        let addr = listener.local_addr().unwrap();
        serve_during(listener, move || {
            let mut silent = connect(addr);
            let get = exchange(addr, b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(status_of(&get), 200, "{get}");
            // Answered while the silent one was still open, so it did not wait for it.
            silent.set_nonblocking(true).unwrap();
            let still_open = silent.read(&mut [0; 1]);
            assert!(
                matches!(&still_open, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                "the silent connection ended before another client was answered: {still_open:?}"
            );
            silent.set_nonblocking(false).unwrap();
            silent.set_read_timeout(Some(deadline + WAIT)).unwrap();
            match silent.read(&mut [0; 1]) {
                Ok(0) => {}
                Ok(_) => panic!("a silent connection got an answer"),
                Err(e) => assert!(
                    !matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ),
                    "the silent connection was not closed after the deadline: {e}"
                ),
            }
        });
    }

    #[test]
    fn over_the_cap_the_oldest_connection_makes_room() {
        // A deadline far beyond every wait below: only the cap can close `first`.
        let listener = local()
            .with_max_connections(2)
            .with_deadline(Duration::from_secs(60));
        let addr = listener.local_addr().unwrap();
        serve_during(listener, move || {
            let mut first = connect(addr);
            // `first` is surely accepted and waiting before the others come.
            first.write_all(b"GET /hea").unwrap();
            let _second = connect(addr);
            // Two silent connections fill the cap; a probe still gets in,
            // and the oldest connection is the one closed for it.
            let get = exchange(addr, b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(status_of(&get), 200, "{get}");
            let mut rest = Vec::new();
            match first.read_to_end(&mut rest) {
                Ok(_) => assert!(rest.is_empty(), "closed without an answer"),
                Err(e) => assert!(
                    !matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ),
                    "the oldest connection was not closed: {e}"
                ),
            }
        });
    }
}
