//! The Bot API client: request encoding, response and error decoding, the
//! token, and the io pool the requests run on.
//!
//! A request is encoded on the executor thread, sent and decoded on an io
//! thread (`ureq` blocks), and its typed result comes back over a channel.
//! Every response shape is decoded: `ok/result`; `ok: false` with
//! `error_code`, `description` and `parameters` (`retry_after`,
//! `migrate_to_chat_id`), whatever the HTTP status; and a body that is not
//! JSON at all (an nginx 502 page) becomes [`Error::Http`].
//!
//! The request URL is `{api_url}/bot{token}/{method}`: it is built here and
//! never leaves this module, and `ureq`'s errors are reduced to a
//! [`NetworkKind`] because some of them print the URI.
//!
//! Must not: log or format the token, ever.

mod io;
mod resolve;
pub(crate) mod retry;
pub mod types;

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub(crate) use io::IoPool;
pub use retry::RetryPolicy;
use retry::{Backoff, Verdict};
use types::{BadUpdate, ChatId, Message, SendMessage, Update, User};

use crate::limit::{Limiter, RateLimits};
use crate::metrics::{bump, Metrics};
use crate::{Error, NetworkKind};

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The deadline of a request other than the long poll.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A long poll may take its own `timeout` plus this much.
const POLL_SLACK: Duration = Duration::from_secs(10);
/// A `getUpdates` with `timeout=0` (the confirmation on the way out) gets
/// this long: with the 8 s drain it ends within Docker's 10 s grace.
const SHORT_POLL_DEADLINE: Duration = Duration::from_millis(1500);
/// The largest response body we read (a full getUpdates batch is far smaller).
const BODY_LIMIT: u64 = 16 * 1024 * 1024;

/// A bot token, `<digits>:<secret>`.
///
/// `Debug` prints `Token(***)`; there is no `Display`, so it cannot end up in
/// a log line by accident.
///
/// ```
/// let token = smolgram::api::Token::parse("123456:ABC-def_ghi").unwrap();
/// assert_eq!(format!("{token:?}"), "Token(***)");
/// assert_eq!(token.bot_id(), 123456);
/// assert!(smolgram::api::Token::parse("not a token").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl Token {
    /// Checks the shape `<digits>:<secret>` (secret: letters, digits, `_`, `-`).
    ///
    /// # Errors
    /// [`Error::Config`] saying what is wrong, without repeating the value.
    pub fn parse(value: &str) -> Result<Token, Error> {
        let value = value.trim();
        let Some((id, secret)) = value.split_once(':') else {
            return Err(Error::Config(
                "token has no ':'; expected <digits>:<secret> from @BotFather".into(),
            ));
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || id.parse::<i64>().is_err() {
            return Err(Error::Config(
                "token must start with the bot's numeric id; expected <digits>:<secret>".into(),
            ));
        }
        if secret.is_empty()
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error::Config(
                "token secret must be letters, digits, '_' or '-'; expected <digits>:<secret>"
                    .into(),
            ));
        }
        Ok(Token(value.into()))
    }

    /// The bot's user id: the digits before the colon. Not a secret.
    pub fn bot_id(&self) -> i64 {
        // Cannot fail: `parse` checked that these are digits that fit an i64.
        self.0
            .split_once(':')
            .and_then(|(id, _)| id.parse().ok())
            .expect("checked by Token::parse")
    }

    /// The whole token, for the request URL only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// A Bot API client. Cheap to clone; clones share one connection pool and
/// one io pool. Lives on the executor thread.
///
/// Calls are retried on transient failures as its [`RetryPolicy`] says
/// (see [`Client::call`]); [`Client::without_retries`] gives a clone that
/// returns the first error instead.
///
/// # Examples
/// ```
/// use smolgram::api::{Client, Token, types::{ChatId, SendMessage}};
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
}

struct Inner {
    /// `{api_url}/bot{token}/`: a secret, like the token.
    base: Arc<str>,
    /// The API URL without the token, for `Debug`.
    api_url: String,
    agent: ureq::Agent,
    io: IoPool,
    /// Requests, retries and failures are counted here.
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
        let api_url = api_url.trim_end_matches('/').to_owned();
        let config = ureq::Agent::config_builder()
            // Telegram's errors are JSON bodies on 4xx/5xx: we decode them ourselves.
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            // One kept-alive connection per io thread: with fewer, a burst
            // opens and closes connections, and pays for new buffers each time.
            .max_idle_connections(io_threads.max(1))
            .max_idle_connections_per_host(io_threads.max(1))
            // ureq's 128 KiB buffers per connection would be most of our RSS;
            // Bot API heads are small and bodies stream through the buffer.
            .input_buffer_size(32 * 1024)
            .output_buffer_size(16 * 1024)
            .user_agent(concat!("smolgram/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            inner: Rc::new(Inner {
                base: format!("{api_url}/bot{}/", token.expose()).into(),
                api_url,
                agent: ureq::Agent::with_parts(
                    config,
                    ureq::unversioned::transport::DefaultConnector::default(),
                    resolve::CachingResolver::default(),
                ),
                io: IoPool::new(io_threads),
                metrics: Rc::default(),
                limiter: Limiter::new(limits),
            }),
            retry: RetryPolicy::DEFAULT,
        }
    }

    /// This client with another retry policy (same connections, same threads).
    pub fn with_retry(&self, retry: RetryPolicy) -> Client {
        Client {
            inner: Rc::clone(&self.inner),
            retry,
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

    /// How many calls (all clones together, `getUpdates` aside) failed for
    /// good, after their retries.
    pub fn failed_calls(&self) -> u64 {
        self.inner.metrics.failed_calls.get()
    }

    /// The counters this client (and the run it belongs to) reports.
    pub(crate) fn metrics(&self) -> &Rc<Metrics> {
        &self.inner.metrics
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
        let mut body = encode(method, params)?;
        // Telegram's flood limits are on messages: sends, forwards, copies.
        let limited = ["send", "forward", "copy"]
            .iter()
            .any(|p| method.starts_with(p));
        let mut chat = if limited { target_chat(&body) } else { None };
        let started = Instant::now();
        let mut backoff = Backoff::transient();
        let mut attempt = 1;
        let mut migrated = false;
        loop {
            if limited {
                self.wait_turn(chat).await;
            }
            let error = match self
                .request(
                    method,
                    Arc::clone(&body),
                    CALL_TIMEOUT,
                    std::convert::identity,
                )
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
                if let (false, Some(moved)) = (migrated, with_chat_id(&body, to)) {
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

    /// Waits for the rate limiter's turn for a message to `chat`.
    async fn wait_turn(&self, chat: Option<ChatId>) {
        let limiter = &self.inner.limiter;
        limiter.acquire(chat).await;
        let (waits, waited) = limiter.waits();
        self.inner.metrics.limit_waits.set(waits);
        self.inner.metrics.limit_waited.set(waited);
    }

    /// Counts a call that failed for good.
    fn failed(&self, error: Error) -> Error {
        bump(&self.inner.metrics.failed_calls);
        error
    }

    /// `getMe`: the bot's own user.
    pub async fn get_me(&self) -> Result<User, Error> {
        self.call("getMe", &serde_json::json!({})).await
    }

    /// `sendMessage`.
    pub async fn send_message(&self, message: &SendMessage) -> Result<Message, Error> {
        self.call("sendMessage", message).await
    }

    /// `answerCallbackQuery`: stops the button's spinner, optionally with a toast `text`.
    pub async fn answer_callback_query(
        &self,
        query_id: &str,
        text: Option<&str>,
    ) -> Result<(), Error> {
        #[derive(Serialize)]
        struct Params<'a> {
            callback_query_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            text: Option<&'a str>,
        }
        let _: bool = self
            .call(
                "answerCallbackQuery",
                &Params {
                    callback_query_id: query_id,
                    text,
                },
            )
            .await?;
        Ok(())
    }

    /// `getUpdates`: a long poll of up to `timeout` for at most `limit`
    /// updates from `offset` on (which confirms every update below it).
    ///
    /// Each update is parsed on its own: one that breaks the schema comes
    /// back as an `Err` in its place and does not fail the batch.
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        limit: u32,
        timeout: Duration,
    ) -> Result<Vec<Result<Update, BadUpdate>>, Error> {
        #[derive(Serialize)]
        struct Params {
            #[serde(skip_serializing_if = "Option::is_none")]
            offset: Option<i64>,
            limit: u32,
            timeout: u64,
        }
        let params = Params {
            offset,
            limit,
            timeout: timeout.as_secs(),
        };
        let body = encode("getUpdates", &params)?;
        let parse = |raw: Vec<Box<RawValue>>| raw.into_iter().map(types::parse_update).collect();
        let deadline = if timeout.is_zero() {
            SHORT_POLL_DEADLINE
        } else {
            timeout + POLL_SLACK
        };
        self.request("getUpdates", body, deadline, parse).await
    }

    /// Sends `body` to `method` on an io thread, once, with a deadline.
    ///
    /// The answer is decoded as `R` and turned into `T` by `then` on the io
    /// thread too, so that decoding never takes the executor's time.
    async fn request<R: DeserializeOwned + 'static, T: Send + 'static>(
        &self,
        method: &str,
        body: Arc<[u8]>,
        deadline: Duration,
        then: fn(R) -> T,
    ) -> Result<T, Error> {
        let agent = self.inner.agent.clone();
        let base = Arc::clone(&self.inner.base);
        let name = method.to_owned();
        let started = Instant::now();
        let result = self
            .inner
            .io
            .run(method, move || {
                send(&agent, &base, name, &body, deadline).map(then)
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

/// The JSON body of a call.
fn encode(method: &str, params: &impl Serialize) -> Result<Arc<[u8]>, Error> {
    serde_json::to_vec(params)
        .map(Arc::from)
        .map_err(|e| Error::Decode {
            method: method.to_owned(),
            detail: format!("parameters do not encode: {e}"),
        })
}

/// The numeric `chat_id` a call is addressed to; `None` for none or an
/// `@username` (those are held only by a 429).
fn target_chat(body: &[u8]) -> Option<ChatId> {
    #[derive(Deserialize)]
    struct Target {
        chat_id: Option<i64>,
    }
    serde_json::from_slice::<Target>(body)
        .ok()?
        .chat_id
        .map(ChatId)
}

/// `body` with its `chat_id` replaced by `chat`; `None` if it has none.
fn with_chat_id(body: &[u8], chat: ChatId) -> Option<Arc<[u8]>> {
    let mut params: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).ok()?;
    let slot = params.get_mut("chat_id")?;
    *slot = chat.0.into();
    serde_json::to_vec(&params).ok().map(Arc::from)
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

/// On an io thread: one POST, its body read and decoded.
fn send<T: DeserializeOwned>(
    agent: &ureq::Agent,
    base: &str,
    method: String,
    body: &[u8],
    deadline: Duration,
) -> Result<T, Error> {
    let network = |kind| Error::Network {
        method: method.clone(),
        kind,
    };
    let mut response = agent
        .post(format!("{base}{method}"))
        .header("content-type", "application/json")
        .config()
        .timeout_global(Some(deadline))
        .build()
        .send(body)
        .map_err(|e| network(network_kind(&e)))?;
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(BODY_LIMIT)
        .read_to_vec()
        .map_err(|e| network(network_kind(&e)))?;
    decode(method, status, &bytes)
}

/// What a Bot API answer says; every field but `ok` is optional on the wire.
#[derive(Deserialize)]
struct Envelope<T> {
    ok: bool,
    result: Option<T>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

/// Turns a status and body into `T` or the one error that says what happened.
fn decode<T: DeserializeOwned>(method: String, status: u16, body: &[u8]) -> Result<T, Error> {
    if (200..300).contains(&status) {
        return match serde_json::from_slice::<Envelope<T>>(body) {
            Ok(Envelope {
                ok: true,
                result: Some(result),
                ..
            }) => Ok(result),
            Ok(Envelope {
                ok: true,
                result: None,
                ..
            }) => Err(Error::Decode {
                method,
                detail: "ok without a result".into(),
            }),
            Ok(env) => Err(api_error(method, status, env)),
            Err(e) => Err(Error::Decode {
                method,
                detail: e.to_string(),
            }),
        };
    }
    match serde_json::from_slice::<Envelope<IgnoredAny>>(body) {
        Ok(env) if !env.ok => Err(api_error(method, status, env)),
        _ => Err(Error::Http { method, status }),
    }
}

fn api_error<T>(method: String, status: u16, env: Envelope<T>) -> Error {
    let parameters = env.parameters.unwrap_or(Parameters {
        retry_after: None,
        migrate_to_chat_id: None,
    });
    Error::Api {
        method,
        code: env.error_code.unwrap_or(status),
        description: env.description.unwrap_or_default(),
        retry_after: parameters.retry_after.map(Duration::from_secs),
        migrate_to: parameters.migrate_to_chat_id.map(ChatId),
    }
}

/// What kind of failure a `ureq` error is, without its text (it may hold the URL).
fn network_kind(e: &ureq::Error) -> NetworkKind {
    match e {
        ureq::Error::Timeout(_) => NetworkKind::Timeout,
        ureq::Error::HostNotFound => NetworkKind::Dns,
        ureq::Error::ConnectionFailed => NetworkKind::Connect,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => NetworkKind::Tls,
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => NetworkKind::Connect,
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => NetworkKind::Timeout,
            _ => NetworkKind::Broken,
        },
        _ => NetworkKind::Broken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn decoded(status: u16, body: &str) -> Result<Value, Error> {
        decode("sendMessage".into(), status, body.as_bytes())
    }

    #[test]
    fn ok_result_is_returned() {
        assert_eq!(
            decoded(200, r#"{"ok":true,"result":{"a":1}}"#).unwrap()["a"],
            1
        );
    }

    #[test]
    fn retry_after_is_read_from_a_429() {
        let e = decoded(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        )
        .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.status(), Some(429));
    }

    #[test]
    fn migrate_to_chat_id_is_read() {
        let e = decoded(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#,
        )
        .unwrap_err();
        assert!(matches!(
            e,
            Error::Api {
                migrate_to: Some(ChatId(-1001234)),
                ..
            }
        ));
    }

    #[test]
    fn an_html_error_page_is_an_http_error() {
        let e = decoded(502, "<html><body><h1>502 Bad Gateway</h1></body></html>").unwrap_err();
        assert!(matches!(e, Error::Http { status: 502, .. }), "{e:?}");
    }

    #[test]
    fn truncated_json_on_200_is_a_decode_error() {
        let e = decoded(200, r#"{"ok":true,"result":[{"update_id":1"#).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e:?}");
    }

    #[test]
    fn error_code_missing_falls_back_to_the_status() {
        let e = decoded(500, r#"{"ok":false,"description":"Internal Server Error"}"#).unwrap_err();
        assert_eq!(e.status(), Some(500));
    }

    #[test]
    fn token_shapes_are_checked_without_echoing_the_value() {
        for bad in [
            "",
            "abc",
            "12345",
            ":secret",
            "12a:secret",
            "123:",
            "123:sec ret",
            "123:sec/ret",
        ] {
            let e = Token::parse(bad).unwrap_err().to_string();
            assert!(bad.len() < 4 || !e.contains(bad), "{e}");
        }
        assert!(Token::parse("123456789:AAH-x_yz").is_ok());
    }

    #[test]
    fn client_debug_hides_the_token() {
        let token = Token::parse("42:SECRETsecretSECRET").unwrap();
        let client = Client::new("https://api.example.org/", &token, 2);
        let shown = format!("{client:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("https://api.example.org"), "{shown}");
    }
}
