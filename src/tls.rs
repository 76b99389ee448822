//! TLS for the listener without a proxy (see: #13): the server's certificate
//! and key read from PEM files, the server side of a connection over any
//! async socket, and the pinned client `smolgram healthcheck` probes with.
//!
//! The server stream drives a `rustls::ServerConnection` by hand, in some
//! hundred lines, rather than through a crate: the listener needs only a
//! handshake, reads, writes and a close, and rustls does the rest. Every
//! buffer is rustls's own and bounded (16 KiB of received plaintext, 64 KiB
//! of records to send): a read only asks the socket for more when rustls has
//! nothing left to give, and a write first sends what is queued.
//!
//! The probe trusts exactly one certificate, byte for byte: the end-entity
//! certificate of the file the listener serves. A self-signed certificate
//! (what Telegram's `setWebhook` takes as `certificate`) has no issuer to
//! check and may name any host, so the pin is the check, not a name or a
//! chain; the handshake's signatures are still verified, so the server must
//! hold the certificate's key.
//!
//! Must not: hold a deadline (the listener races [`accept`] and every read
//! against its own), accept connections, panic on anything a peer sends, or
//! put a key's bytes into an error message.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_lite::future;
use futures_lite::io::{AsyncRead, AsyncWrite};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    ring, verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, ServerConfig,
    ServerConnection, SignatureScheme, StreamOwned,
};

use crate::config::TlsFiles;
use crate::Error;

/// The longest PEM file we read: a certificate chain is a few KiB, so a
/// larger file is a wrong path (`/dev/zero`, a log), not a certificate.
const MAX_PEM: u64 = 1024 * 1024;

/// The one protocol the listener speaks, offered in ALPN.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Reads `files` and builds the listener's TLS configuration: TLS 1.2 and
/// 1.3 on ring, no client certificates, ALPN `http/1.1`.
///
/// # Errors
/// [`Error::Config`], one line naming the file: missing or unreadable, no
/// certificate or no key in it, a key rustls cannot use, or a key that does
/// not match the certificate.
pub(crate) fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, Error> {
    let chain = read_chain(&files.cert)?;
    let key = read_key(&files.key)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("tls: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => Error::Config(format!(
                "tls key {}: does not match the certificate in {}",
                files.key.display(),
                files.cert.display()
            )),
            rustls::Error::InvalidCertificate(_) => Error::Config(format!(
                "tls certificate {}: not a valid X.509 certificate",
                files.cert.display()
            )),
            _ => Error::Config(format!(
                "tls key {}: not a key rustls can use (RSA, ECDSA P-256 or P-384, Ed25519)",
                files.key.display()
            )),
        })?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// The certificates in the PEM file `path`, in order; at least one.
/// Whether the first certificate of `files` names itself as its issuer: a
/// self-signed one, which `setWebhook` must be given as `certificate`
/// (Telegram has no issuer to trust it by). One from a CA is not uploaded.
///
/// # Errors
/// As [`server_config`] for the certificate file.
pub(crate) fn is_self_signed(files: &TlsFiles) -> Result<bool, Error> {
    let chain = read_chain(&files.cert)?;
    let names = chain.first().and_then(|leaf| issuer_and_subject(leaf));
    Ok(names.is_some_and(|(issuer, subject)| issuer == subject))
}

/// A certificate's issuer and subject names, as DER bytes (RFC 5280
/// §4.1: `Certificate` → `TBSCertificate` → version?, serial, signature,
/// issuer, validity, subject).
fn issuer_and_subject(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, certificate, _) = tlv(der)?;
    let (_, tbs, _) = tlv(certificate)?;
    let (tag, _, after_version) = tlv(tbs)?;
    // The version is an explicit [0], left out for v1.
    let fields = if tag == 0xa0 { after_version } else { tbs };
    let (_, _, fields) = tlv(fields)?; // serialNumber
    let (_, _, fields) = tlv(fields)?; // signature
    let (_, issuer, fields) = tlv(fields)?;
    let (_, _, fields) = tlv(fields)?; // validity
    let (_, subject, _) = tlv(fields)?;
    Some((issuer, subject))
}

/// One DER tag-length-value: the tag, the contents and what follows.
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0, |len, b| len << 8 | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let what = "tls certificate";
    let pem = read_pem(what, path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, path, &e))?;
    if chain.is_empty() {
        return Err(Error::Config(format!(
            "{what} {}: no PEM certificate in it; expected a BEGIN CERTIFICATE block",
            path.display()
        )));
    }
    Ok(chain)
}

/// The first private key in the PEM file `path`.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let what = "tls key";
    let pem = read_pem(what, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        pem::Error::NoItemsFound => Error::Config(format!(
            "{what} {}: no PEM private key in it; expected a BEGIN PRIVATE KEY, \
             RSA PRIVATE KEY or EC PRIVATE KEY block",
            path.display()
        )),
        e => pem_error(what, path, &e),
    })
}

/// The bytes of `path`, at most [`MAX_PEM`] of them.
fn read_pem(what: &str, path: &Path) -> Result<Vec<u8>, Error> {
    let cannot = |e: io::Error| Error::Config(format!("{what} {}: {e}", path.display()));
    let mut pem = Vec::new();
    File::open(path)
        .and_then(|file| file.take(MAX_PEM + 1).read_to_end(&mut pem))
        .map_err(cannot)?;
    if pem.len() as u64 > MAX_PEM {
        return Err(Error::Config(format!(
            "{what} {}: over {MAX_PEM} bytes; not a PEM file",
            path.display()
        )));
    }
    Ok(pem)
}

/// A PEM syntax error in one line, without the file's bytes (pki-types'
/// own text quotes the offending line, which may be a key's).
fn pem_error(what: &str, path: &Path, e: &pem::Error) -> Error {
    let why = match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line",
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64",
        pem::Error::SectionTooLarge => "a PEM block is too large",
        pem::Error::NoItemsFound => "nothing in it",
        _ => "not valid PEM",
    };
    Error::Config(format!("{what} {}: {why}", path.display()))
}

/// The server side of a TLS connection over `S` (an accepted
/// `async_net::TcpStream`), after the handshake [`accept`] completed.
///
/// Reading returns 0 after the client's `close_notify`; a client that
/// closes the socket without one is an [`io::ErrorKind::UnexpectedEof`].
/// Closing sends our `close_notify`, then closes `S`.
pub(crate) struct TlsStream<S> {
    /// The socket.
    io: S,
    /// rustls's state: keys, and the bounded buffers either way.
    conn: ServerConnection,
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream").finish_non_exhaustive()
    }
}

/// Completes the server side of a TLS handshake on `stream` with `config`.
///
/// Has no deadline of its own: a client that sends nothing keeps it waiting,
/// so the caller races it against its deadline (dropping it midway closes
/// the socket).
///
/// # Errors
/// What the socket reports, [`io::ErrorKind::InvalidData`] for anything
/// rustls refuses (plain HTTP, garbage, a TLS alert, no common cipher
/// suite; the alert rustls has for it is sent first, if the socket takes
/// it), and [`io::ErrorKind::UnexpectedEof`] when the client closes
/// midway.
pub(crate) async fn accept<S>(config: &Arc<ServerConfig>, stream: S) -> io::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
    let mut tls = TlsStream { io: stream, conn };
    future::poll_fn(|cx| tls.poll_handshake(cx)).await?;
    Ok(tls)
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream<S> {
    /// Reads and writes records until the handshake is done and its last
    /// records (TLS 1.3's session tickets) are sent.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.is_handshaking() {
            ready!(self.poll_send(cx))?;
            if !self.conn.is_handshaking() {
                break;
            }
            if !self.conn.wants_read() || ready!(self.poll_receive(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tls: client closed during the handshake",
                )));
            }
        }
        self.poll_send(cx)
    }

    /// Sends every record rustls has queued.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            let mut io = SyncIo {
                io: &mut self.io,
                cx,
            };
            match self.conn.write_tls(&mut io) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Reads one batch of records from the socket and processes them; the
    /// bytes read, 0 at the socket's end.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut io = SyncIo {
            io: &mut self.io,
            cx,
        };
        let n = match self.conn.read_tls(&mut io) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let Err(e) = self.conn.process_new_packets() {
            // Tell the client why, if the socket takes it now: the
            // connection is over either way.
            let _ = self.poll_send(cx);
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        Poll::Ready(Ok(n))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            // Plaintext first: the socket is read only when rustls has none,
            // so its buffer never grows past one batch of records.
            match this.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Ok(0) after close_notify; UnexpectedEof after a bare close.
                done => return Poll::Ready(done),
            }
            // An answer rustls owes the client (a key update's) goes out on
            // the way, but a client that does not read must not stop our read.
            if let Poll::Ready(Err(e)) = this.poll_send(cx) {
                return Poll::Ready(Err(e));
            }
            // At the socket's end, `reader()` now answers for itself.
            ready!(this.poll_receive(cx))?;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // What is queued goes first, so the queue holds at most one write.
        ready!(this.poll_send(cx))?;
        let n = this.conn.writer().write(buf)?;
        // Start sending now; what the socket does not take yet goes with
        // the next write, flush or close.
        if let Poll::Ready(Err(e)) = this.poll_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.conn.writer().flush()?;
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // rustls queues it once, however often this is polled.
        this.conn.send_close_notify();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_close(cx)
    }
}

/// The socket as the blocking `Read` + `Write` rustls wants, for one poll:
/// `Pending` becomes [`io::ErrorKind::WouldBlock`], with the waker set.
struct SyncIo<'a, 'b, S> {
    io: &'a mut S,
    cx: &'a mut Context<'b>,
}

impl<S: AsyncRead + Unpin> Read for SyncIo<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_read(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: AsyncWrite + Unpin> Write for SyncIo<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match Pin::new(&mut *self.io).poll_flush(self.cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// A client that trusts one certificate only: the end-entity certificate of
/// a PEM file, byte for byte, whatever name the server goes by. For
/// `smolgram healthcheck` against a listener serving that file.
///
/// # Examples
/// ```
/// use smolgram::PinnedCert;
///
/// let e = PinnedCert::load("no/such/cert.pem".as_ref()).unwrap_err();
/// assert!(e.to_string().contains("tls certificate no/such/cert.pem: "), "{e}");
/// ```
#[derive(Debug, Clone)]
pub struct PinnedCert {
    /// The file, for error messages.
    path: PathBuf,
    /// rustls's client configuration with the pin as its verifier.
    config: Arc<ClientConfig>,
}

/// A blocking TLS connection a [`PinnedCert`] made: read and write it as a
/// socket.
#[derive(Debug)]
pub struct PinnedStream(StreamOwned<ClientConnection, StdStream>);

impl PinnedCert {
    /// Reads the certificate to trust from the PEM file `cert` (its first
    /// certificate, as the listener serves it).
    ///
    /// # Errors
    /// [`Error::Config`], one line naming the file: missing, unreadable, or
    /// no certificate in it.
    pub fn load(cert: &Path) -> Result<PinnedCert, Error> {
        let pinned = read_chain(cert)?.swap_remove(0);
        let provider = Arc::new(ring::default_provider());
        let verifier = PinVerifier {
            cert: pinned,
            algorithms: provider.signature_verification_algorithms,
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("tls: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        Ok(PinnedCert {
            path: cert.to_owned(),
            config: Arc::new(config),
        })
    }

    /// Connects to `addr` and completes the handshake, each read and write
    /// within `deadline`.
    ///
    /// # Errors
    /// The socket's errors, [`io::ErrorKind::InvalidData`] for a server
    /// whose certificate is not the pinned one (naming the file), or that
    /// does not speak TLS.
    pub fn connect(&self, addr: SocketAddr, deadline: Duration) -> io::Result<PinnedStream> {
        let sock = StdStream::connect_timeout(&addr, deadline)?;
        sock.set_read_timeout(Some(deadline))?;
        sock.set_write_timeout(Some(deadline))?;
        // Any name will do: the pin is the check. An address sends no SNI.
        let name = ServerName::IpAddress(addr.ip().into());
        let conn =
            ClientConnection::new(Arc::clone(&self.config), name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| self.explain(e))?;
        }
        Ok(PinnedStream(stream))
    }

    /// `e`, or for a refused pin an error that says so and names the file.
    fn explain(&self, e: io::Error) -> io::Error {
        let refused = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
            == Some(&rustls::Error::InvalidCertificate(NOT_PINNED));
        if !refused {
            return e;
        }
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "tls: the server's certificate is not the one in {}",
                self.path.display()
            ),
        )
    }
}

impl Read for PinnedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for PinnedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// How [`PinVerifier`] refuses a certificate; [`PinnedCert::explain`] tells it apart.
const NOT_PINNED: CertificateError = CertificateError::ApplicationVerificationFailure;

/// The verifier of a [`PinnedCert`]: one certificate, byte-equal DER;
/// signatures checked with ring's algorithms.
#[derive(Debug)]
struct PinVerifier {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(NOT_PINNED))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{self, HeadRead};
    use crate::{wait, Runtime};

    use std::fs;
    use std::thread;
    use std::time::Instant;

    use futures_lite::io::AsyncWriteExt;
    use rcgen::{
        CertificateParams, KeyPair, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
    };

    /// How long any single wait in these tests may take before it fails.
    const WAIT: Duration = Duration::from_secs(5);

    /// The answer the test server sends to any request.
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";

    /// A self-signed certificate for `localhost` and its key, made now, as
    /// PEM files in a directory of their own (removed on drop).
    struct Pair {
        dir: PathBuf,
        files: TlsFiles,
    }

    impl Pair {
        fn new(name: &str, alg: &'static SignatureAlgorithm) -> Pair {
            let dir =
                std::env::temp_dir().join(format!("smolgram-tls-{name}-{}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            let key = KeyPair::generate_for(alg).unwrap();
            let cert = CertificateParams::new(vec!["localhost".to_owned()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            let files = TlsFiles {
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem"),
            };
            fs::write(&files.cert, cert.pem()).unwrap();
            fs::write(&files.key, key.serialize_pem()).unwrap();
            Pair { dir, files }
        }

        /// Writes `contents` to `name` in the pair's directory.
        fn file(&self, name: &str, contents: &str) -> PathBuf {
            let path = self.dir.join(name);
            fs::write(&path, contents).unwrap();
            path
        }

        fn config(&self) -> Arc<ServerConfig> {
            server_config(&self.files).expect("a fresh pair loads")
        }

        fn pin(&self) -> PinnedCert {
            PinnedCert::load(&self.files.cert).expect("a fresh certificate loads")
        }
    }

    impl Drop for Pair {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    /// Serves one connection on a runtime on this thread as the listener
    /// will: the handshake, one request head, `answer`, `close_notify`;
    /// each step within [`WAIT`]. `client` runs meanwhile on a helper
    /// thread. Returns the request head the server read, or its error, and
    /// what the client returned.
    fn serve_one<T: Send + 'static>(
        config: Arc<ServerConfig>,
        answer: Vec<u8>,
        client: impl FnOnce(SocketAddr) -> T + Send + 'static,
    ) -> (io::Result<String>, T) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || client(addr));
        let timed_out = |what: &str| io::Error::new(io::ErrorKind::TimedOut, what.to_owned());
        let rt = Runtime::new();
        let served = rt
            .block_on(async {
                let listener = async_net::TcpListener::try_from(listener)?;
                let (tcp, _) = wait::within(WAIT, listener.accept())
                    .await
                    .ok_or_else(|| timed_out("no connection"))??;
                let mut tls = wait::within(WAIT, accept(&config, tcp))
                    .await
                    .ok_or_else(|| timed_out("handshake"))??;
                let mut buf = Vec::new();
                let len = match wait::within(WAIT, http::read_head(&mut tls, &mut buf, 1024)).await
                {
                    Some(HeadRead::Complete(len)) => len,
                    other => return Err(io::Error::other(format!("request head: {other:?}"))),
                };
                wait::within(WAIT, async {
                    tls.write_all(&answer).await?;
                    tls.close().await
                })
                .await
                .ok_or_else(|| timed_out("answer"))??;
                Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
            })
            .expect("tests do not nest block_on");
        match client.join() {
            Ok(out) => (served, out),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// `GET /healthz` over `pin`'s connection; the whole answer.
    fn get(pin: &PinnedCert, addr: SocketAddr) -> io::Result<String> {
        let mut conn = pin.connect(addr, WAIT)?;
        assert_eq!(conn.0.conn.alpn_protocol(), Some(ALPN_HTTP1), "ALPN");
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    #[test]
    fn the_pinned_client_and_the_server_talk_http_over_a_real_socket_with_p256_and_ed25519() {
        for (name, alg) in [
            ("p256", &PKCS_ECDSA_P256_SHA256),
            ("ed25519", &PKCS_ED25519),
        ] {
            let pair = Pair::new(&format!("talk-{name}"), alg);
            let pin = pair.pin();
            let (served, answer) =
                serve_one(pair.config(), OK.to_vec(), move |addr| get(&pin, addr));
            let request = served.unwrap_or_else(|e| panic!("{name}: server: {e}"));
            assert!(
                request.starts_with("GET /healthz HTTP/1.1\r\n"),
                "{name}: {request:?}"
            );
            let answer = answer.unwrap_or_else(|e| panic!("{name}: client: {e}"));
            assert_eq!(answer.as_bytes(), OK, "{name}");
        }
    }

    #[test]
    fn an_answer_larger_than_the_send_buffers_arrives_whole() {
        let pair = Pair::new("large", &PKCS_ECDSA_P256_SHA256);
        let body: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
        let mut answer =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        answer.extend_from_slice(&body);
        let expected = answer.clone();
        let pin = pair.pin();
        let (served, got) = serve_one(pair.config(), answer, move |addr| get(&pin, addr));
        served.expect("server");
        let got = got.expect("client");
        assert_eq!(got.len(), expected.len());
        assert!(got.as_bytes() == expected, "the answer arrived changed");
    }

    #[test]
    fn the_pin_refuses_a_different_certificate_and_names_its_file() {
        let served_pair = Pair::new("served", &PKCS_ECDSA_P256_SHA256);
        // The same name and algorithm: only the bytes differ.
        let other = Pair::new("other", &PKCS_ECDSA_P256_SHA256);
        let pin = other.pin();
        let (served, answer) = serve_one(served_pair.config(), OK.to_vec(), move |addr| {
            get(&pin, addr)
        });
        let e = answer.expect_err("a certificate that is not the pinned one");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let line = e.to_string();
        assert!(line.contains("not the one in"), "{line}");
        assert!(
            line.contains(&other.files.cert.display().to_string()),
            "{line}"
        );
        let e = served.expect_err("the client refused the handshake");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }

    #[test]
    fn plain_http_to_the_tls_server_is_an_error_on_both_sides_not_a_hang() {
        let pair = Pair::new("plain", &PKCS_ECDSA_P256_SHA256);
        let started = Instant::now();
        let (served, answer) = serve_one(pair.config(), OK.to_vec(), |addr| {
            let mut conn = StdStream::connect_timeout(&addr, WAIT)?;
            conn.set_read_timeout(Some(WAIT))?;
            conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
            let mut answer = Vec::new();
            conn.read_to_end(&mut answer).map(|_| answer)
        });
        let e = served.expect_err("plain http is not tls");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        match answer {
            // A TLS alert record (content type 21), or nothing.
            Ok(bytes) => assert!(bytes.is_empty() || bytes[0] == 21, "{bytes:?}"),
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ),
                "the server left a plain-http client hanging: {e}"
            ),
        }
        assert!(started.elapsed() < WAIT, "ended within the deadline");
    }

    #[test]
    fn a_client_closing_mid_handshake_is_an_unexpected_eof() {
        let pair = Pair::new("eof", &PKCS_ECDSA_P256_SHA256);
        let (served, ()) = serve_one(pair.config(), OK.to_vec(), |addr| {
            // The first bytes of a ClientHello record, then the close.
            let mut conn = StdStream::connect_timeout(&addr, WAIT).unwrap();
            conn.write_all(&[22, 3, 1, 0, 200, 1]).unwrap();
        });
        let e = served.expect_err("no handshake");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }

    /// `files`' error line; it must be one line naming `named`.
    #[test]
    fn a_self_signed_certificate_is_told_from_one_a_ca_issued() {
        let own = Pair::new("self-signed", &PKCS_ECDSA_P256_SHA256);
        assert!(is_self_signed(&own.files).unwrap());
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "smolgram test CA");
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let issued = Pair::new("ca-issued", &PKCS_ECDSA_P256_SHA256);
        fs::write(&issued.files.cert, leaf.pem()).unwrap();
        assert!(!is_self_signed(&issued.files).unwrap());
        assert_eq!(tlv(&[0x30, 0x05, 1, 2]), None, "a length past the end");
        assert_eq!(
            tlv(&[0x30, 0x82, 0x00, 0x01, 7]),
            Some((0x30, &[7][..], &[][..]))
        );
    }

    fn config_error(files: &TlsFiles, named: &Path) -> String {
        let e = server_config(files).expect_err("a bad pair");
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains(&named.display().to_string()), "{line}");
        line
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_a_config_error_naming_both() {
        let a = Pair::new("mismatch-a", &PKCS_ECDSA_P256_SHA256);
        let b = Pair::new("mismatch-b", &PKCS_ECDSA_P256_SHA256);
        let files = TlsFiles {
            cert: a.files.cert.clone(),
            key: b.files.key.clone(),
        };
        let line = config_error(&files, &b.files.key);
        assert!(line.contains("does not match the certificate in"), "{line}");
        assert!(line.contains(&a.files.cert.display().to_string()), "{line}");
    }

    #[test]
    fn missing_empty_or_wrong_files_are_one_line_config_errors_naming_the_file() {
        let pair = Pair::new("wrong", &PKCS_ECDSA_P256_SHA256);
        let missing = pair.dir.join("missing.pem");
        let not_pem = pair.file("notes.txt", "hello, not a certificate\n");
        let cut = pair.file("cut.pem", "-----BEGIN PRIVATE KEY-----\nTUlJQ1NFQ1JFVA==\n");
        let bad_key = pair.file(
            "bad-key.pem",
            "-----BEGIN PRIVATE KEY-----\nTUlJQ1NFQ1JFVA==\n-----END PRIVATE KEY-----\n",
        );
        let bad_cert = pair.file(
            "bad-cert.pem",
            "-----BEGIN CERTIFICATE-----\nTUlJQ1NFQ1JFVA==\n-----END CERTIFICATE-----\n",
        );
        let cert = |path: &Path| TlsFiles {
            cert: path.to_owned(),
            key: pair.files.key.clone(),
        };
        let key = |path: &Path| TlsFiles {
            cert: pair.files.cert.clone(),
            key: path.to_owned(),
        };

        let line = config_error(&cert(&missing), &missing);
        assert!(line.contains("tls certificate "), "{line}");
        assert!(line.contains("os error 2"), "{line}");
        let line = config_error(&key(&missing), &missing);
        assert!(line.contains("tls key "), "{line}");

        let line = config_error(&cert(&not_pem), &not_pem);
        assert!(line.contains("no PEM certificate"), "{line}");
        let line = config_error(&key(&not_pem), &not_pem);
        assert!(line.contains("no PEM private key"), "{line}");
        // A certificate where the key should be holds no key either.
        let line = config_error(&key(&pair.files.cert), &pair.files.cert);
        assert!(line.contains("no PEM private key"), "{line}");

        let line = config_error(&key(&cut), &cut);
        assert!(line.contains("has no END line"), "{line}");
        assert!(
            !line.contains("TUlJQ1NFQ1JFVA"),
            "a key's bytes in an error: {line}"
        );
        let line = config_error(&key(&bad_key), &bad_key);
        assert!(line.contains("not a key rustls can use"), "{line}");

        let line = config_error(&cert(&bad_cert), &bad_cert);
        assert!(line.contains("not a valid X.509 certificate"), "{line}");

        let e = PinnedCert::load(&not_pem).expect_err("no certificate to pin");
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
    }
}
