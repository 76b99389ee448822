//! The fake's webhook deliverers: while a webhook is set (and the test said
//! where the bot listens, [`FakeApi::deliver_webhooks_to`]), they POST the
//! queued updates to it as Telegram does: up to `max_connections` at once,
//! one chat's updates one at a time and in order, the secret token in its
//! header, connections kept alive; a 2xx takes the update off the queue,
//! anything else (no answer within [`TIMEOUT`] included) sends it again
//! later.
//!
//! Each deliverer is a task on the server's executor; [`MAX_CONNECTIONS`] of
//! them start with the server. One whose slot is in use waits for a change
//! of the queue or of a post; those over the webhook's `max_connections`
//! (all of them, without a webhook) wait for the webhook to change, so that
//! a burst of updates and replies wakes only the deliverers it may give
//! work.
//!
//! Must not: hold the state lock across an `.await`, or decide what is
//! delivered when (that is the state's `next_post` and `posted`).
//!
//! [`FakeApi::deliver_webhooks_to`]: super::FakeApi::deliver_webhooks_to

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Timer;
use async_net::TcpStream;
use futures_lite::future;
use futures_lite::io::AsyncWriteExt;

use super::state::{NoPost, Post, Shared};
use crate::http::{self, HeadRead};
use crate::wait;

/// Telegram's most `max_connections`: the deliverers that start.
pub(crate) const MAX_CONNECTIONS: usize = 100;

/// How long a post may take before it counts as failed: the Bot API
/// server's own limit.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Deliverer `slot`, until the server stops (its executor drops it).
pub(crate) async fn deliver(shared: Arc<Shared>, slot: usize) {
    let mut conn: Option<TcpStream> = None;
    loop {
        // Taken before looking, so that no change between the two is missed.
        let changed = shared.listen_deliveries();
        let webhook_changed = shared.listen_webhook_changes();
        match shared.with(|s| s.next_post(slot, Instant::now())) {
            Ok(post) => {
                // Not notified while posting: a burst's changes then cost
                // only the deliverers that wait for work.
                drop((changed, webhook_changed));
                let status = wait::within(TIMEOUT, send(&mut conn, &post))
                    .await
                    .unwrap_or(None);
                if status.is_none() {
                    conn = None;
                }
                shared.with(|s| s.posted(post.id, status.unwrap_or(0)));
            }
            Err(NoPost::Slot) => webhook_changed.await,
            // A change of the webhook wakes `changed` too.
            Err(NoPost::Queue(None)) => changed.await,
            Err(NoPost::Queue(Some(at))) => {
                future::or(changed, async {
                    Timer::at(at).await;
                })
                .await;
            }
        }
    }
}

/// Posts on `conn` (connecting first if it is `None`) and reads the
/// answer's status; `None` for no answer. Leaves `conn` open only if the
/// answer allows another request on it.
async fn send(conn: &mut Option<TcpStream>, post: &Post) -> Option<u16> {
    if conn.is_none() {
        *conn = Some(TcpStream::connect(post.to).await.ok()?);
    }
    let stream = conn.as_mut()?;
    let secret = post.secret.as_ref().map_or(String::new(), |s| {
        format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n")
    });
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{secret}Connection: keep-alive\r\n\r\n{}",
        post.path,
        post.host,
        post.body.len(),
        post.body
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    let HeadRead::Complete(len) = http::read_head(stream, &mut buf, 16 * 1024).await else {
        return None;
    };
    let head = String::from_utf8(buf[..len].to_vec()).ok()?;
    let status: u16 = head.get(9..12)?.parse().ok()?;
    let header = |name: &str| {
        head.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let length: usize = header("content-length")?.parse().ok()?;
    if !http::read_body(stream, &mut buf, len + length).await {
        return None;
    }
    if header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close")) {
        *conn = None;
    }
    Some(status)
}
