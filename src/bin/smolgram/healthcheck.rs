//! `smolgram healthcheck`: probes the local `/healthz` and exits 0 on a 200,
//! 1 otherwise; for a `FROM scratch` image's HEALTHCHECK, which has no curl.
//! With `--tls-cert` (the listener's own) it probes over https, trusting
//! only that certificate (the library's `PinnedCert`, cargo feature `tls`).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use smolgram::config::Config;

const DEADLINE: Duration = Duration::from_secs(3);

pub(crate) fn probe(config: &Config) -> ExitCode {
    let Some(mut addr) = config.health else {
        eprintln!("smolgram: healthcheck: the health listener is off (--no-health)");
        return ExitCode::FAILURE;
    };
    // A listener on every interface answers on loopback.
    if addr.ip().is_unspecified() {
        let loopback = match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        addr = SocketAddr::new(loopback, addr.port());
    }
    let (scheme, status) = match &config.tls {
        None => ("http", get_healthz(addr)),
        #[cfg(feature = "tls")]
        Some(tls) => match smolgram::PinnedCert::load(&tls.cert) {
            Ok(pin) => (
                "https",
                pin.connect(addr, DEADLINE).and_then(get_healthz_over),
            ),
            Err(e) => {
                eprintln!("smolgram: healthcheck: {e}");
                return ExitCode::FAILURE;
            }
        },
        #[cfg(not(feature = "tls"))]
        Some(_) => {
            eprintln!("smolgram: healthcheck: --tls-cert: this build has no TLS mode (cargo feature `tls`)");
            return ExitCode::FAILURE;
        }
    };
    match status {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("smolgram: healthcheck: {scheme}://{addr}/healthz answered {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("smolgram: healthcheck: {scheme}://{addr}/healthz: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One `GET /healthz` over plain http; its status code.
pub(crate) fn get_healthz(addr: SocketAddr) -> std::io::Result<u16> {
    let stream = TcpStream::connect_timeout(&addr, DEADLINE)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.set_write_timeout(Some(DEADLINE))?;
    get_healthz_over(stream)
}

/// One `GET /healthz` over a connection; its status code.
fn get_healthz_over(mut stream: impl Read + Write) -> std::io::Result<u16> {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head)?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an http answer"))
}
