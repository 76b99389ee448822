//! TEMPORARY stub, replaced by the real listener.
use std::net::SocketAddr;
use crate::{Error, Runtime};
#[derive(Debug)]
pub(crate) struct HealthListener(Option<SocketAddr>);
impl HealthListener {
    pub(crate) fn bind(addr: SocketAddr, _require: bool) -> Result<HealthListener, Error> { Ok(HealthListener(Some(addr))) }
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> { self.0 }
    pub(crate) async fn serve(self, _rt: &Runtime) { futures_lite::future::pending().await }
}
