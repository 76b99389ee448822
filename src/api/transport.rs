//! The TCP transport under ureq: what ureq's own `TcpTransport` does, in
//! fewer system calls per request on a kept-alive connection.
//!
//! A request on a pooled connection asks twice whether the connection is
//! still open (when it leaves the pool and when it goes back), and ureq's
//! probe is three calls: non-blocking on, a one-byte read, non-blocking off.
//! Here it is one, a `recv` with `MSG_PEEK | MSG_DONTWAIT`, with the same
//! answers: would block means open; end of stream, an error or unexpected
//! bytes mean closed. And ureq sets a socket timeout before each write and
//! read whenever the remaining time differs from the last one set, which it
//! does on every request (the budget is counted from each request's start);
//! here the remaining time is rounded up to [`TIMEOUT_STEP`], so that calls
//! with the same deadline leave the socket alone. A request may so outlive
//! its deadline by less than one step. And ureq hands over a request's head
//! and body in two pieces, each sent at once; here they are held until ureq
//! waits for the answer (or [`SEND_AT`] bytes are waiting), then written
//! together: one write, one segment, one wake-up of the server.
//!
//! Counted with strace on the throughput bench (2000 echo updates): per
//! request, 4 `ioctl`s, 3 `setsockopt`s and 2 `sendto`s before; 0, 0.06
//! and 1 after.
//!
//! Must not: change what a request sends or reads, or outlast its deadline
//! by more than [`TIMEOUT_STEP`].

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rustix::net::RecvFlags;
use ureq::unversioned::transport::time::Duration as Budget;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    RustlsConnector, ShutdownHandle, Transport,
};
use ureq::Timeout;

/// How much of a request is held back at most before it is written: a
/// request's head and a small body go out in one write, a large body in
/// pieces of about this size.
const SEND_AT: usize = 16 * 1024;

/// The grain of the socket timeouts: the remaining time is rounded up to it.
pub(super) const TIMEOUT_STEP: Duration = Duration::from_millis(100);

/// ureq's default chain with [`LeanTcp`] in place of its TCP connector: a
/// CONNECT proxy if the environment names one (`HTTPS_PROXY`, …), else a
/// direct connection; then TLS for `https`. Clones share the chain.
pub(super) fn connector() -> Shared<impl Connector> {
    Shared(Arc::new(
        ().chain(ConnectProxyConnector::default())
            .chain(LeanTcp)
            .chain(RustlsConnector::default()),
    ))
}

/// A connector chain shared by several agents (one per io thread): one TLS
/// configuration, built once, and one TLS session cache.
#[derive(Debug)]
pub(super) struct Shared<C>(Arc<C>);

impl<C> Clone for Shared<C> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<C: Connector> Connector for Shared<C> {
    type Out = C::Out;

    fn connect(
        &self,
        details: &ConnectionDetails<'_>,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        self.0.connect(details, chained)
    }
}

/// Opens plain TCP connections for the connector chain, like ureq's
/// `TcpConnector` (which it replaces there), as [`LeanTransport`]s.
#[derive(Debug, Default)]
pub(super) struct LeanTcp;

impl<In: Transport> Connector<In> for LeanTcp {
    type Out = Either<In, LeanTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails<'_>,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(proxied) = chained {
            // A CONNECT proxy earlier in the chain opened the connection already.
            return Ok(Some(Either::A(proxied)));
        }
        let budget = details.timeout.not_zero().map(|t| *t);
        let stream = Arc::new(connect(&details.addrs, budget)?);
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        (details.register_shutdown)(Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>)?;
        let config = details.config;
        Ok(Some(Either::B(LeanTransport {
            stream,
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
            unsent: Vec::new(),
            read_timeout: None,
            write_timeout: None,
        })))
    }
}

/// Tries each address in turn, each with an equal share of what is left of
/// `budget`; the first that connects wins, else the last error.
fn connect(addrs: &[SocketAddr], budget: Option<Duration>) -> Result<TcpStream, ureq::Error> {
    let started = Instant::now();
    let mut last = None;
    for (i, addr) in addrs.iter().enumerate() {
        let attempt = match budget {
            None => TcpStream::connect(addr),
            Some(budget) => {
                let left = budget.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(ureq::Error::Timeout(Timeout::Connect));
                }
                let share = left / (addrs.len() - i) as u32;
                TcpStream::connect_timeout(addr, share.max(Duration::from_millis(10)))
            }
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) if timed_out(&e) => last = Some(ureq::Error::Timeout(Timeout::Connect)),
            Err(e) => last = Some(e.into()),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused).into()))
}

/// A socket timeout fires as `WouldBlock` on Linux, `TimedOut` elsewhere.
fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One TCP connection: ureq's buffers, the socket, the timeouts last set.
pub(super) struct LeanTransport {
    /// Shared (weakly) with the agent, which may shut it down from another thread.
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    /// What ureq handed over to send and is not sent yet: a request's head
    /// and body leave in one write, not two.
    unsent: Vec<u8>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl Transport for LeanTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = checked(timeout.for_write())?;
        self.unsent
            .extend_from_slice(&self.buffers.output()[..amount]);
        if self.unsent.len() >= SEND_AT {
            self.flush(timeout)?;
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        // The request is complete once ureq waits for the answer.
        if !self.unsent.is_empty() {
            self.flush(checked(timeout.for_write())?)?;
        }
        let timeout = checked(timeout.for_read())?;
        let wanted = coarse(timeout.after);
        set_timeout(
            &self.stream,
            &mut self.read_timeout,
            wanted,
            TcpStream::set_read_timeout,
        )?;
        let started = Instant::now();
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match (&*self.stream).read(input) {
                // A signal interrupts a read with a timeout instead of
                // restarting it (Linux, even with SA_RESTART): go on with what
                // is left of the time.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    let left = wanted.map(|w| w.saturating_sub(started.elapsed()));
                    if left == Some(Duration::ZERO) {
                        return Err(ureq::Error::Timeout(timeout.reason));
                    }
                    set_timeout(
                        &self.stream,
                        &mut self.read_timeout,
                        left,
                        TcpStream::set_read_timeout,
                    )?;
                }
                result => break result.map_err(|e| io_error(e, timeout.reason))?,
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match rustix::net::recv(
            &*self.stream,
            &mut byte,
            RecvFlags::PEEK | RecvFlags::DONTWAIT,
        ) {
            // Nothing waiting: the peer has not closed it, nor sent bytes we did not ask for.
            Err(rustix::io::Errno::AGAIN) => true,
            // End of stream, unexpected bytes, or an error.
            _ => false,
        }
    }
}

impl LeanTransport {
    /// Writes what ureq has handed over and not yet sent, in one write.
    fn flush(&mut self, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let wanted = coarse(timeout.after);
        set_timeout(
            &self.stream,
            &mut self.write_timeout,
            wanted,
            TcpStream::set_write_timeout,
        )?;
        let sent = (&*self.stream).write_all(&self.unsent);
        self.unsent.clear();
        sent.map_err(|e| io_error(e, timeout.reason))
    }
}

/// Sets a socket timeout unless `last` says it is set to that already.
fn set_timeout(
    stream: &TcpStream,
    last: &mut Option<Duration>,
    wanted: Option<Duration>,
    set: fn(&TcpStream, Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    if *last != wanted {
        set(stream, wanted)?;
        *last = wanted;
    }
    Ok(())
}

impl fmt::Debug for LeanTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeanTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// ureq's rule: a budget that is spent is a timeout before any I/O.
fn checked(timeout: NextTimeout) -> Result<NextTimeout, ureq::Error> {
    if timeout.after.is_zero() {
        Err(ureq::Error::Timeout(timeout.reason))
    } else {
        Ok(timeout)
    }
}

/// The socket timeout for what is left of a budget: none when there is no
/// deadline, else the time left rounded up to [`TIMEOUT_STEP`].
fn coarse(after: Budget) -> Option<Duration> {
    if after.is_not_happening() {
        return None;
    }
    let step = TIMEOUT_STEP.as_nanos();
    let steps = (after.as_nanos().max(1)).div_ceil(step);
    Some(Duration::from_nanos((steps * step) as u64))
}

/// An I/O error as ureq reports it: a socket timeout is the budget's timeout.
fn io_error(e: io::Error, reason: Timeout) -> ureq::Error {
    if timed_out(&e) {
        ureq::Error::Timeout(reason)
    } else {
        e.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn lean(stream: TcpStream) -> LeanTransport {
        LeanTransport {
            stream: Arc::new(stream),
            buffers: LazyBuffers::new(1024, SEND_AT),
            unsent: Vec::new(),
            read_timeout: None,
            write_timeout: None,
        }
    }

    /// Whether `condition` holds within five seconds, asked every millisecond.
    fn soon(mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    fn pair() -> (LeanTransport, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (lean(client), server)
    }

    #[test]
    fn a_quiet_connection_is_open_and_stays_blocking() {
        let (mut transport, mut server) = pair();
        assert!(transport.is_open());
        assert!(
            transport.is_open(),
            "the probe took nothing and changed nothing"
        );
        // Still a blocking socket: a read waits for the bytes the peer sends late.
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            server.write_all(b"late").unwrap();
            server
        });
        assert!(transport.await_input(five_seconds()).unwrap());
        assert_eq!(transport.buffers().input(), b"late");
        drop(writer.join());
    }

    fn five_seconds() -> NextTimeout {
        NextTimeout {
            after: Budget::Exact(Duration::from_secs(5)),
            ..NextTimeout::default()
        }
    }

    /// Hands `bytes` to the transport as ureq does: in its output buffer.
    fn transmit(transport: &mut LeanTransport, bytes: &[u8]) {
        transport.buffers().output()[..bytes.len()].copy_from_slice(bytes);
        transport
            .transmit_output(bytes.len(), five_seconds())
            .unwrap();
    }

    #[test]
    fn a_request_is_written_once_ureq_waits_for_the_answer() {
        let (mut transport, mut server) = pair();
        transmit(&mut transport, b"HEAD|");
        transmit(&mut transport, b"body");
        server.set_nonblocking(true).unwrap();
        let mut got = [0u8; 9];
        assert_eq!(
            server.read(&mut got).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "nothing is written before the answer is awaited"
        );
        server.set_nonblocking(false).unwrap();
        let client = std::thread::spawn(move || {
            assert!(transport.await_input(five_seconds()).unwrap());
            transport.buffers().input().to_vec()
        });
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"HEAD|body", "head and body, in order");
        server.write_all(b"answer").unwrap();
        assert_eq!(client.join().unwrap(), b"answer");
    }

    #[test]
    fn a_large_body_is_written_without_waiting_for_the_answer() {
        let (mut transport, mut server) = pair();
        let big = vec![7u8; SEND_AT];
        transmit(&mut transport, &big);
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = vec![0u8; SEND_AT];
        server.read_exact(&mut got).unwrap();
        assert_eq!(got, big);
    }

    #[test]
    fn a_closed_or_chatty_connection_is_not_open() {
        let (mut closed, server) = pair();
        drop(server);
        // The FIN may take a moment to arrive on loopback.
        assert!(soon(|| !closed.is_open()));

        let (mut chatty, mut server) = pair();
        server.write_all(b"x").unwrap();
        assert!(soon(|| !chatty.is_open()));
    }

    #[test]
    fn timeouts_are_rounded_up_to_a_step_so_a_similar_one_is_not_set_again() {
        let ms = |n| Budget::Exact(Duration::from_millis(n));
        assert_eq!(coarse(ms(9_999)), Some(Duration::from_secs(10)));
        assert_eq!(coarse(ms(9_901)), Some(Duration::from_secs(10)));
        assert_eq!(coarse(ms(10_001)), Some(Duration::from_millis(10_100)));
        assert_eq!(
            coarse(Budget::Exact(Duration::from_nanos(1))),
            Some(TIMEOUT_STEP)
        );
        assert_eq!(coarse(Budget::NotHappening), None);
    }

    #[test]
    fn a_spent_budget_is_a_timeout_before_any_io() {
        let (mut transport, _server) = pair();
        let spent = NextTimeout {
            after: Budget::Exact(Duration::ZERO),
            reason: Timeout::Global,
            ..NextTimeout::default()
        };
        assert!(matches!(
            transport.await_input(spent),
            Err(ureq::Error::Timeout(Timeout::Global))
        ));
    }

    #[test]
    fn a_read_that_waits_past_its_timeout_is_the_budgets_timeout() {
        let (mut transport, _server) = pair();
        let short = NextTimeout {
            after: Budget::Exact(Duration::from_millis(1)),
            reason: Timeout::RecvResponse,
            ..NextTimeout::default()
        };
        assert!(matches!(
            transport.await_input(short),
            Err(ureq::Error::Timeout(Timeout::RecvResponse))
        ));
    }
}
