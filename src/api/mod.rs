//! The Bot API client: calls, their retries and pacing, and the io pool
//! the requests run on.
//!
//! A request is encoded on the executor thread, sent and decoded on an io
//! thread (`ureq` blocks), and its typed result comes back over a channel.
//! `wire` holds the encoding and every shape of answer; `token` the
//! token. The request URL is `{api_url}/bot{token}/{method}`: it is built
//! here and never leaves this module. `multipart` turns a call whose
//! parameters hold an [`Upload`] into a streamed form; `files` downloads
//! (`{api_url}/file/bot{token}/{file_path}`, built in `wire` likewise).
//!
//! The client counts into the run's metrics and waits on the run's rate
//! limiter; it owns neither (the run hands them over).
//!
//! Must not: log or format the token, ever.

mod files; // getFile, downloads under a cap
pub mod generated;
pub use generated::methods;
mod io;
mod multipart; // Upload, and the multipart/form-data body of a call with files
mod resolve;
pub(crate) mod retry;
mod token;
mod transport;
pub mod types;
mod wire;

use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;

use generated::methods::{AnswerCallbackQuery, DeleteWebhook, GetMe, SendMessage};
pub(crate) use io::IoPool;
use multipart::Body;
pub use multipart::Upload;
pub use retry::RetryPolicy;
use retry::{Backoff, Verdict};
pub use token::Token;
use types::{BadUpdate, Message, Received, User};
use wire::{encode, Caller};

use crate::limit::{Limiter, Pace, RateLimits};
use crate::metrics::{bump, Metrics};
use crate::Error;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The deadline of a request other than the long poll.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A long poll may take its own `timeout` plus this much.
const POLL_SLACK: Duration = Duration::from_secs(10);
/// A `getUpdates` with `timeout=0` (the confirmation on the way out) gets
/// this long: with the 8 s drain it ends within Docker's 10 s grace.
const SHORT_POLL_DEADLINE: Duration = Duration::from_millis(1500);

/// A Bot API client. Cheap to clone; clones share one connection pool and
/// one io pool. Lives on the executor thread.
///
/// Calls are retried on transient failures as its [`RetryPolicy`] says
/// (see [`Client::call`]); [`Client::without_retries`] gives a clone that
/// returns the first error instead.
///
/// # Examples
/// ```
/// use smolgram::api::generated::methods::SendMessage;
/// use smolgram::api::{Client, Token, types::ChatId};
/// use smolgram::testkit::FakeApi;
///
/// let api = FakeApi::start();
/// let client = Client::new(&api.url(), &Token::parse(FakeApi::TOKEN).unwrap(), 4);
/// let rt = smolgram::Runtime::new();
/// let me = rt.block_on(client.get_me()).unwrap().unwrap();
/// assert!(me.is_bot);
/// rt.block_on(client.send_message(&SendMessage::new(ChatId(7), "hi"))).unwrap().unwrap();
/// assert_eq!(api.sent()[0].text, "hi");
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
    retry: RetryPolicy,
    /// A paid broadcast's client: sends take the paid global pace.
    paid: bool,
}

struct Inner {
    /// The API URL without the token, for `Debug`.
    api_url: String,
    io: IoPool<Caller>,
    /// A clone of each io thread's agent, to shut its connections down with.
    agents: Arc<Mutex<Vec<ureq::Agent>>>,
    /// The run's counters: requests, retries and failures.
    metrics: Rc<Metrics>,
    /// Sends wait their turn here.
    limiter: Limiter,
}

impl Client {
    /// A client of the Bot API at `api_url` (e.g. `https://api.telegram.org`)
    /// that runs its requests on at most `io_threads` threads, with the rate
    /// limits [`RateLimits::for_api`] gives that URL.
    pub fn new(api_url: &str, token: &Token, io_threads: usize) -> Client {
        Client::with_limits(api_url, token, io_threads, RateLimits::for_api(api_url))
    }

    /// [`Client::new`] with explicit rate limits for its sends.
    pub fn with_limits(
        api_url: &str,
        token: &Token,
        io_threads: usize,
        limits: RateLimits,
    ) -> Client {
        Client::with_metrics(api_url, token, io_threads, limits, Rc::default())
    }

    /// [`Client::with_limits`] counting into a run's `metrics`.
    pub(crate) fn with_metrics(
        api_url: &str,
        token: &Token,
        io_threads: usize,
        limits: RateLimits,
        metrics: Rc<Metrics>,
    ) -> Client {
        let api_url = api_url.trim_end_matches('/').to_owned();
        let config = ureq::Agent::config_builder()
            // Telegram's errors are JSON bodies on 4xx/5xx: we decode them ourselves.
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            // A request-level config for the other deadlines (the long poll's)
            // costs a copy of the whole config per request.
            .timeout_global(Some(CALL_TIMEOUT))
            // Each io thread has an agent of its own (see api/io.rs), and
            // each agent one kept-alive connection.
            .max_idle_connections(1)
            .max_idle_connections_per_host(1)
            // ureq's 128 KiB buffers per connection would be most of our RSS;
            // Bot API heads are small and bodies stream through the buffer.
            .input_buffer_size(32 * 1024)
            .output_buffer_size(16 * 1024)
            .user_agent(concat!("smolgram/", env!("CARGO_PKG_VERSION")))
            .build();
        // One connector for all agents: one TLS configuration and session cache.
        let connector = transport::connector();
        let base: Arc<str> = format!("{api_url}/bot{}/", token.expose()).into();
        let files: Arc<str> = format!("{api_url}/file/bot{}/", token.expose()).into();
        let agents = Arc::<Mutex<Vec<ureq::Agent>>>::default();
        let made = Arc::clone(&agents);
        Client {
            inner: Rc::new(Inner {
                api_url,
                io: IoPool::new(io_threads, move || {
                    let agent = ureq::Agent::with_parts(
                        config.clone(),
                        connector.clone(),
                        resolve::CachingResolver::default(),
                    );
                    made.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(agent.clone());
                    Caller::new(agent, Arc::clone(&base), Arc::clone(&files))
                }),
                agents,
                limiter: Limiter::new(limits, Rc::clone(&metrics)),
                metrics,
            }),
            retry: RetryPolicy::DEFAULT,
            paid: false,
        }
    }

    /// This client with another retry policy (same connections, same threads).
    pub fn with_retry(&self, retry: RetryPolicy) -> Client {
        Client {
            inner: Rc::clone(&self.inner),
            retry,
            paid: self.paid,
        }
    }

    /// This client for a paid broadcast's sends (`allow_paid_broadcast`):
    /// their global turns come at Telegram's paid pace, 1,000/s, not 30/s;
    /// each chat's limit still holds (see `limit`).
    pub(crate) fn for_paid_broadcast(&self) -> Client {
        Client {
            paid: true,
            ..self.clone()
        }
    }

    /// This client without retries: every call returns its first error.
    pub fn without_retries(&self) -> Client {
        self.with_retry(RetryPolicy::NONE)
    }

    /// The retry policy of this client.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Calls any Bot API `method` with `params` (a JSON object) and decodes
    /// its `result` as `T` (use `serde_json::Value` to take it as it is).
    ///
    /// Transient failures (network, timeout, 5xx, a non-API answer) are
    /// retried with backoff and a 429 after its `retry_after`, within this
    /// client's [`RetryPolicy`]; a `migrate_to_chat_id` answer is followed
    /// once, by sending again to the new `chat_id`.
    ///
    /// # Errors
    /// [`Error::Api`] when Telegram says no, [`Error::Http`] for a non-API
    /// answer, [`Error::Network`] when the request did not complete,
    /// [`Error::Decode`] when `result` is not a `T`: the last error, once
    /// retries are spent.
    pub async fn call<T: DeserializeOwned + Send + 'static>(
        &self,
        method: &str,
        params: &impl Serialize,
    ) -> Result<T, Error> {
        // JSON, or a form when the parameters hold an `Upload` (see api/multipart.rs).
        let mut body = multipart::encode(method, params)?;
        let pace = Pace::of(method);
        let limited = pace != Pace::Free;
        let mut chat = if limited { body.target_chat() } else { None };
        let started = Instant::now();
        let mut backoff = Backoff::transient();
        let mut attempt = 1;
        let mut migrated = false;
        loop {
            if self.paid {
                self.inner.limiter.acquire_paid(pace, chat).await;
            } else {
                self.inner.limiter.acquire(pace, chat).await;
            }
            let error = match self
                .request(method, body.clone(), None, std::convert::identity)
                .await
            {
                Ok(result) => return Ok(result),
                Err(error) => error,
            };
            if let Error::Api {
                migrate_to: Some(to),
                ..
            } = error
            {
                // Telegram's rule: a group that became a supergroup is reached at its new id.
                if let (false, Some(moved)) = (migrated, body.with_chat_id(to)) {
                    log::info!("chat migrated method={method} to={}; sending there", to.0);
                    body = moved;
                    chat = Some(to);
                    migrated = true;
                    continue;
                }
            }
            if let (true, Some(after)) = (limited, error.retry_after()) {
                // Telegram's own word on the pace: hold the chat's later sends too.
                self.inner.limiter.penalize(chat, after);
            }
            let delay = match retry::verdict(&error) {
                Verdict::After(after) => retry::after(after),
                Verdict::Backoff => backoff.next(),
                Verdict::Never => return Err(self.failed(error)),
            };
            if attempt >= self.retry.attempts || started.elapsed() + delay > self.retry.within {
                return Err(self.failed(error));
            }
            log::debug!("retrying method={method} attempt={attempt} in={delay:.1?} error={error}");
            bump(&self.inner.metrics.retries);
            async_io::Timer::after(delay).await;
            attempt += 1;
        }
    }

    /// Counts a call that failed for good.
    fn failed(&self, error: Error) -> Error {
        bump(&self.inner.metrics.failed_calls);
        error
    }

    /// `getMe`: the bot's own user.
    pub async fn get_me(&self) -> Result<User, Error> {
        self.send(&GetMe::new()).await
    }

    /// `sendMessage`; build `message` with [`SendMessage::new`] and its setters.
    pub async fn send_message(&self, message: &SendMessage) -> Result<Message, Error> {
        self.send(message).await
    }

    /// `answerCallbackQuery`: stops the button's spinner, optionally with a toast `text`.
    pub async fn answer_callback_query(
        &self,
        query_id: &str,
        text: Option<&str>,
    ) -> Result<(), Error> {
        let mut answer = AnswerCallbackQuery::new(query_id);
        if let Some(text) = text {
            answer = answer.text(text);
        }
        self.send(&answer).await?;
        Ok(())
    }

    /// `getUpdates`: a long poll of up to `timeout` for at most `limit`
    /// updates from `offset` on (which confirms every update below it).
    ///
    /// Each update is parsed on its own: one that breaks the schema comes
    /// back as an `Err` in its place and does not fail the batch. It asks
    /// for every update kind (`allowed_updates` is always sent: left out,
    /// Telegram would keep whatever list an earlier call set).
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        limit: u32,
        timeout: Duration,
    ) -> Result<Vec<Result<Received, BadUpdate>>, Error> {
        self.poll_updates(offset, limit, timeout, Vec::new(), types::UPDATE_KINDS)
            .await
    }

    /// [`get_updates`](Client::get_updates) that leaves out the updates whose
    /// ids are in `in_hand` (sorted) without decoding them: while a handler
    /// holds the oldest update, Telegram hands out the same updates again on
    /// every poll, and decoding them again was most of a burst's io work.
    /// `allowed` is sent as `allowed_updates`, always.
    pub(crate) async fn poll_updates(
        &self,
        offset: Option<i64>,
        limit: u32,
        timeout: Duration,
        in_hand: Vec<i64>,
        allowed: &[&str],
    ) -> Result<Vec<Result<Received, BadUpdate>>, Error> {
        #[derive(Serialize)]
        struct Params<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            offset: Option<i64>,
            limit: u32,
            timeout: u64,
            allowed_updates: &'a [&'a str],
        }
        let params = Params {
            offset,
            limit,
            timeout: timeout.as_secs(),
            allowed_updates: allowed,
        };
        let body = encode("getUpdates", &params)?;
        let parse = move |raw: Vec<Box<RawValue>>| {
            raw.into_iter()
                .filter(|update| {
                    let id = types::update_id_of(update.get());
                    id.is_none_or(|id| in_hand.binary_search(&id).is_err())
                })
                .map(types::parse_update)
                .collect()
        };
        let deadline = if timeout.is_zero() {
            SHORT_POLL_DEADLINE
        } else {
            timeout + POLL_SLACK
        };
        self.request("getUpdates", Body::Json(body), Some(deadline), parse)
            .await
    }

    /// `deleteWebhook` with `drop_pending_updates` false, once: the poller's
    /// own call (a webhook makes every `getUpdates` a 409), tried again by
    /// its policy, not this client's, and like `getUpdates` not counted as
    /// a failed call. Pending updates are kept: polling gets them next.
    pub(crate) async fn delete_webhook(&self) -> Result<(), Error> {
        let keep = DeleteWebhook::new().drop_pending_updates(false);
        let body = encode("deleteWebhook", &keep)?;
        self.request("deleteWebhook", Body::Json(body), None, |_: bool| ())
            .await
    }

    /// Sends `body` to `method` on an io thread, once, with a deadline: its
    /// own, or for `None` [`CALL_TIMEOUT`] (a form's is longer, see
    /// api/multipart.rs).
    ///
    /// The answer is decoded as `R` and turned into `T` by `then` on the io
    /// thread too, so that decoding never takes the executor's time.
    async fn request<R: DeserializeOwned + 'static, T: Send + 'static>(
        &self,
        method: &str,
        body: Body,
        deadline: Option<Duration>,
        then: impl FnOnce(R) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let name = method.to_owned();
        let started = Instant::now();
        let result = self
            .inner
            .io
            .run(method, move |caller| {
                body.send(caller, name, deadline).map(then)
            })
            .await?;
        self.inner.metrics.observe_request(method, &result);
        log::debug!(
            "api method={method} result={} ms={}",
            match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => e
                    .status()
                    .map_or_else(|| "network".to_owned(), |s| s.to_string()),
            },
            started.elapsed().as_millis()
        );
        result
    }
}

impl Drop for Inner {
    /// The last clone of a client is gone: its connections are shut down,
    /// which ends a request still in flight at once (a long poll whose
    /// future was dropped at the stop, say), and its io threads end with it.
    fn drop(&mut self) {
        let agents =
            std::mem::take(&mut *self.agents.lock().unwrap_or_else(PoisonError::into_inner));
        for agent in agents {
            agent.shutdown();
        }
        self.io.close();
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.inner.api_url)
            .field("io", &self.inner.io)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::ChatId;

    #[test]
    fn client_debug_hides_the_token() {
        let token = Token::parse("42:SECRETsecretSECRET").unwrap();
        let client = Client::new("https://api.example.org/", &token, 2);
        let shown = format!("{client:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("https://api.example.org"), "{shown}");
    }

    #[cfg(feature = "testkit")]
    #[test]
    fn a_poll_leaves_out_the_updates_in_hand() {
        use crate::testkit::FakeApi;
        let api = FakeApi::start();
        let ids: Vec<i64> = (0..3)
            .map(|i| api.push_text(ChatId(1), &i.to_string()))
            .collect();
        let client = Client::new(&api.url(), &Token::parse(FakeApi::TOKEN).unwrap(), 2);
        let rt = crate::Runtime::new();
        let poll = client.poll_updates(None, 100, Duration::ZERO, vec![ids[0], ids[2]], &[]);
        let batch = rt.block_on(poll).unwrap().unwrap();
        let got: Vec<i64> = batch.into_iter().map(|u| u.unwrap().id()).collect();
        assert_eq!(got, [ids[1]], "only the update not in hand comes back");
        assert_eq!(api.deliveries(ids[0]), 1, "the fake did hand it out");
    }
}
