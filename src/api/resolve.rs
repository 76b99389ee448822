//! Host name resolution for the io threads.
//!
//! ureq resolves the host before *every* request, even when a kept-alive
//! connection will carry it, and when the request has a deadline it spawns a
//! thread for each lookup. Measured here, that was a thread per
//! `sendMessage`. A bot sends every request to one host, so this resolver
//! looks it up on the calling io thread (a blocking call is what io threads
//! are for) and keeps the answer for [`TTL`]. A failed lookup is not kept.
//!
//! Must not: spawn threads, or keep an answer longer than [`TTL`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::time::Duration as Deadline;
use ureq::unversioned::transport::NextTimeout;

/// How long an answer is used: short enough to follow a DNS change of the
/// API host (or a proxy) within a minute.
pub(crate) const TTL: Duration = Duration::from_secs(60);

/// The last answer, for one `host:port`.
#[derive(Debug, Default)]
pub(crate) struct CachingResolver {
    last: Mutex<Option<(String, Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        _deadline: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        // A poisoned lock only means another io thread panicked mid-update:
        // the cached value is still a plain value, so go on with it.
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((host, at, addrs)) = last.as_ref() {
            if host == key && at.elapsed() < TTL {
                return Ok(addrs.clone());
            }
        }
        drop(last);
        // No deadline: ureq's resolver then looks up on this thread.
        let inline = NextTimeout {
            after: Deadline::NotHappening,
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        let addrs = DefaultResolver::default().resolve(uri, config, inline)?;
        last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = Some((key.to_owned(), Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_reused_for_the_same_host_only() {
        let resolver = CachingResolver::default();
        let config = ureq::config::Config::default();
        let first: Uri = "http://127.0.0.1:8081/botX/getMe".parse().unwrap();
        let addrs = resolver
            .resolve(&first, &config, NextTimeout::default())
            .unwrap();
        assert_eq!(addrs[0], "127.0.0.1:8081".parse().unwrap());
        let cached_at = resolver.last.lock().unwrap().as_ref().unwrap().1;
        resolver
            .resolve(&first, &config, NextTimeout::default())
            .unwrap();
        assert_eq!(
            resolver.last.lock().unwrap().as_ref().unwrap().1,
            cached_at,
            "reused"
        );
        let other: Uri = "http://127.0.0.2:9/x".parse().unwrap();
        let addrs = resolver
            .resolve(&other, &config, NextTimeout::default())
            .unwrap();
        assert_eq!(addrs[0], "127.0.0.2:9".parse().unwrap());
    }
}
