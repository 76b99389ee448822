//! The server thread: the accept loop, one task per connection, and the Bot
//! API methods the fake answers (routing, parameters, faults, long polls).
//!
//! One thread runs one `LocalExecutor`: a connection is a task and a long
//! poll is a task parked on an `Event`, so thousands of requests a second
//! need no thread per request and no sleeps. When the handle asks to stop,
//! the accept loop returns and the executor is dropped with every task in
//! it, which closes every socket, a long poll in mid-wait included.
//!
//! Must not: panic on anything a client sends, or hold the state lock
//! across an `.await`.

use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use async_io::Timer;
use async_net::{TcpListener, TcpStream};
use futures_lite::future;
use serde_json::{json, Map, Value};

use super::deliver;
use super::http::{self, Conn, ReadError, Request, Response};
use super::multipart::{self, Form, Received};
use super::state::{bot_json, Poll, Refusal, Shared};
use super::{FakeApi, Fault, Webhook};
use crate::api::types::{ChatId, MessageId};

type Params = Map<String, Value>;

/// Telegram's exact words for a `getUpdates` that another one replaced.
const CONFLICT: &str =
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";

/// Telegram's exact words for a `getUpdates` while a webhook is set.
const WEBHOOK_ACTIVE: &str = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first";

/// Telegram's words for a send to a user who blocked the bot.
const BLOCKED: &str = "Forbidden: bot was blocked by the user";
/// And to a chat that does not exist (or the bot was never in).
const NOT_FOUND: &str = "Bad Request: chat not found";
/// And to a bot over its pace.
const TOO_MANY: &str = "Too Many Requests: retry after 1";

/// Starts the server thread on `listener`; it runs until `shared.stop` is requested.
pub(crate) fn spawn(listener: TcpListener, shared: Arc<Shared>) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("smolgram-testkit".to_owned())
        .spawn(move || {
            let ex = LocalExecutor::new();
            async_io::block_on(ex.run(accept_loop(&ex, listener, shared)));
            // `ex` drops here, and with it every connection task and its socket.
        })
}

async fn accept_loop(ex: &LocalExecutor<'_>, listener: TcpListener, shared: Arc<Shared>) {
    for slot in 0..deliver::MAX_CONNECTIONS {
        ex.spawn(deliver::deliver(Arc::clone(&shared), slot))
            .detach();
    }
    loop {
        match shared.stop.race(listener.accept()).await {
            None => return,
            Some(Ok((stream, _))) => {
                shared.with(|s| s.accepted());
                ex.spawn(serve(stream, Arc::clone(&shared))).detach();
            }
            Some(Err(e)) => {
                // Out of file descriptors, most likely: give the clients a moment to close some.
                log::warn!("testkit: accept failed: {e}");
                Timer::after(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Answers the requests of one connection until it closes.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let mut conn = Conn::new(stream);
    loop {
        let req = match conn.read_request().await {
            Ok(Some(req)) => req,
            Ok(None) | Err(ReadError::Gone) => return,
            Err(ReadError::Bad { status, reason }) => {
                let _ = conn.write(&Response::raw(status, reason), false).await;
                return;
            }
        };
        if req.path.starts_with("/file/") {
            if multipart::serve_file(&mut conn, &shared, &req).await {
                continue;
            }
            return;
        }
        // An upload: its body streams in now (testkit/multipart.rs).
        let form = match req.streamed {
            None => None,
            Some(streamed) => match multipart::receive(&mut conn, &req, streamed, &shared).await {
                Received::Form(form) => Some(form),
                Received::Refused(resp) => {
                    let _ = conn.write(&resp, false).await;
                    return;
                }
                Received::Gone => return,
            },
        };
        // `None`: a `Fault::Drop`, which closes without a word.
        let Some(resp) = answer(&shared, &req, form).await else {
            return;
        };
        if conn.write(&resp, req.keep_alive).await.is_err() || !req.keep_alive {
            return;
        }
    }
}

/// Routes one request: token, method, faults, then the method itself.
async fn answer(shared: &Shared, req: &Request, form: Option<Form>) -> Option<Response> {
    let Some((token, method)) = req
        .path
        .strip_prefix("/bot")
        .and_then(|r| r.split_once('/'))
    else {
        return Some(api_error(404, "Not Found", None));
    };
    if token != FakeApi::TOKEN {
        return Some(api_error(401, "Unauthorized", None));
    }
    // Telegram matches method names case-insensitively.
    let method = method.to_ascii_lowercase();
    let params = match params(req) {
        Ok(mut params) => {
            let fields = form.as_ref().map(|f| f.fields.iter()).into_iter().flatten();
            params.extend(fields.map(|(k, v)| (k.clone(), Value::String(v.clone()))));
            params
        }
        Err(description) => return Some(api_error(400, description, None)),
    };
    let fault = shared.with(|s| {
        s.record_call(&method, Value::Object(params.clone()));
        s.take_fault(&method)
    });
    let took_fault = fault.is_some();
    if let Some(fault) = fault {
        match serve_fault(fault).await {
            Faulted::Instead(resp) => return Some(resp),
            Faulted::Close => return None,
            Faulted::Normally => {}
        }
    }
    // Telegram's answers for a chat that blocked the bot or is not there,
    // and for a bot over its global pace: to every method that posts in a chat.
    if method.starts_with("send") {
        let chat = int_param(&params, "chat_id").map(ChatId);
        let paid = bool_param(&params, "allow_paid_broadcast");
        match shared.with(|s| s.refusal(chat, paid, Instant::now())) {
            Some(Refusal::Blocked) => return Some(api_error(403, BLOCKED, None)),
            Some(Refusal::Missing) => return Some(api_error(400, NOT_FOUND, None)),
            Some(Refusal::TooFast) => {
                let mut parameters = Map::new();
                parameters.insert("retry_after".to_owned(), 1.into());
                return Some(api_error(429, TOO_MANY, Some(parameters)));
            }
            None => {}
        }
    }
    Some(match method.as_str() {
        "getme" => ok(bot_json()),
        // A call takes one fault at most: one that took it here waits for none.
        "getupdates" => return get_updates(shared, &params, !took_fault).await,
        "sendmessage" => send_message(shared, params),
        "getfile" => shared.with(|s| multipart::get_file(s, &params)),
        upload if multipart::is_upload(upload) => {
            return shared.with(|s| multipart::send_media(s, upload, &params, form))
        }
        "editmessagetext" => edit_message_text(shared, &params),
        "setwebhook" => set_webhook(shared, &params, form.as_ref()),
        "deletewebhook" => {
            let drop_pending = bool_param(&params, "drop_pending_updates");
            shared.with(|s| s.delete_webhook(drop_pending));
            ok(Value::Bool(true))
        }
        "getwebhookinfo" => ok(shared.with(|s| s.webhook_info())),
        "answercallbackquery"
        | "answerinlinequery"
        | "setmycommands"
        | "sendchataction"
        | "deletemessage"
        | "close"
        | "logout" => ok(Value::Bool(true)),
        _ => api_error(404, "Not Found", None),
    })
}

/// What a faulted call does instead of its method.
enum Faulted {
    /// Answers this.
    Instead(Response),
    /// Closes the connection without a word.
    Close,
    /// Answers normally, now (a [`Fault::Delay`] has passed).
    Normally,
}

/// Serves `fault`: waits out a delay, or says what to answer instead.
async fn serve_fault(fault: Fault) -> Faulted {
    match fault {
        Fault::Delay(delay) => {
            Timer::after(delay).await;
            Faulted::Normally
        }
        Fault::Drop => Faulted::Close,
        Fault::Status { code, body } => Faulted::Instead(Response::raw(code, body)),
        Fault::Api {
            code,
            description,
            retry_after,
            migrate_to_chat_id,
        } => {
            let mut parameters = Map::new();
            if let Some(secs) = retry_after {
                parameters.insert("retry_after".to_owned(), secs.into());
            }
            if let Some(chat) = migrate_to_chat_id {
                parameters.insert("migrate_to_chat_id".to_owned(), chat.into());
            }
            Faulted::Instead(api_error(code, &description, Some(parameters)))
        }
        // Cut mid-object, as a proxy that gave up halfway would.
        Fault::InvalidJson => {
            Faulted::Instead(Response::raw(200, r#"{"ok":true,"result":{"message_id":"#))
        }
        // A body that was not streamed was read whole: the answer only.
        Fault::MidUpload { code, .. } => Faulted::Instead(api_error(code, "Bad Gateway", None)),
    }
}

/// Long poll: confirm below `offset`, then answer at once if anything is
/// pending, else wait up to `timeout` seconds for a push. A newer
/// `getUpdates` ends the wait with 409, as Telegram does; while a webhook
/// is set, every `getUpdates` is a 409 that confirms nothing, and one set
/// during the wait ends it so (how Telegram ends a waiting poll then, the
/// fake does not claim to know; the next poll's 409 is its). A fault armed for
/// `getUpdates` while the poll waits is served to it at once, as a proxy in
/// front of the Bot API may fail a pending request (a [`Fault::Delay`]
/// holds it that much longer). `None`: close without a word.
async fn get_updates(shared: &Shared, params: &Params, mut faultable: bool) -> Option<Response> {
    let offset = int_param(params, "offset");
    let limit = match int_param(params, "limit") {
        None | Some(0) => 100,
        Some(n) => n.clamp(1, 100) as usize,
    };
    let timeout = number_param(params, "timeout").unwrap_or(0.0);
    // NaN and negatives mean "do not wait"; a day is more than any test needs.
    let timeout = Duration::try_from_secs_f64(timeout.clamp(0.0, 86_400.0)).unwrap_or_default();
    let deadline = Instant::now() + timeout;
    let Some(generation) = shared.with(|s| s.webhook().is_none().then(|| s.begin_poll(offset)))
    else {
        return Some(api_error(409, WEBHOOK_ACTIVE, None));
    };
    shared.wake_polls(); // an older poll, if one waits, now sees it lost
    loop {
        // Listen before looking, so that a push in between still wakes us.
        let listener = shared.listen_polls();
        match shared.with(|s| s.poll(generation, limit, faultable)) {
            Poll::Conflict => return Some(api_error(409, CONFLICT, None)),
            Poll::Webhook => return Some(api_error(409, WEBHOOK_ACTIVE, None)),
            Poll::Fault(fault) => {
                faultable = false;
                match serve_fault(fault).await {
                    Faulted::Instead(resp) => return Some(resp),
                    Faulted::Close => return None,
                    // Look again at once: what came meanwhile is answered now.
                    Faulted::Normally => continue,
                }
            }
            Poll::Batch(batch) if !batch.is_empty() || Instant::now() >= deadline => {
                return Some(ok(Value::Array(batch)))
            }
            Poll::Batch(_) => {}
        }
        let timer = async {
            Timer::at(deadline).await;
        };
        future::or(listener, timer).await;
    }
}

fn send_message(shared: &Shared, params: Params) -> Response {
    let chat = match params.get("chat_id") {
        None => return api_error(400, "Bad Request: chat_id is empty", None),
        Some(_) => match int_param(&params, "chat_id") {
            Some(id) => ChatId(id),
            // `@channel` names and the like: the fake knows numeric chats only.
            None => return api_error(400, "Bad Request: chat not found", None),
        },
    };
    let text = match params.get("text") {
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Number(_)) => v.to_string(),
        _ => String::new(),
    };
    if text.is_empty() {
        return api_error(400, "Bad Request: message text is empty", None);
    }
    let reply_parameters = match params.get("reply_parameters") {
        // A form sends nested objects as JSON text.
        Some(Value::String(s)) => serde_json::from_str(s).ok(),
        other => other.cloned(),
    };
    let reply_to = reply_parameters
        .as_ref()
        .and_then(|r| r.as_object())
        .and_then(|r| int_param(r, "message_id"))
        .or_else(|| int_param(&params, "reply_to_message_id"))
        .map(MessageId);
    let message = shared.with(|s| s.send(chat, &text, reply_to, Value::Object(params)));
    ok(message)
}

/// `editMessageText`: the edited message for a chat message, `true` for an
/// inline one, as Telegram answers.
fn edit_message_text(shared: &Shared, params: &Params) -> Response {
    let text = params
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (
        int_param(params, "chat_id"),
        int_param(params, "message_id"),
    ) {
        (Some(chat), Some(id)) => ok(shared.with(|s| s.edited_text(ChatId(chat), id, text))),
        _ if params.contains_key("inline_message_id") => ok(Value::Bool(true)),
        _ => api_error(400, "Bad Request: message to edit not found", None),
    }
}

/// `setWebhook`: keeps `url` (empty removes the webhook), `secret_token`,
/// `allowed_updates` and `max_connections`; `drop_pending_updates` forgets
/// the queue. Wakes a waiting long poll, which then answers 409.
fn set_webhook(shared: &Shared, params: &Params, form: Option<&Form>) -> Response {
    let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
    let allowed_updates = match params.get("allowed_updates") {
        // A form sends the list as JSON text.
        Some(Value::String(s)) => serde_json::from_str(s).ok(),
        Some(list) => serde_json::from_value(list.clone()).ok(),
        None => None,
    };
    let webhook = Webhook {
        url: text("url").unwrap_or_default(),
        secret_token: text("secret_token").filter(|t| !t.is_empty()),
        allowed_updates,
        max_connections: int_param(params, "max_connections").and_then(|n| u32::try_from(n).ok()),
        certificate: certificate(params, form),
    };
    let drop_pending = bool_param(params, "drop_pending_updates");
    shared.with(|s| s.set_webhook(webhook, drop_pending));
    shared.wake_polls();
    ok(Value::Bool(true))
}

/// `setWebhook`'s `certificate`, as the Bot API finds it: the file part of
/// that name, else the one its `attach://<name>` field names.
fn certificate(params: &Params, form: Option<&Form>) -> Option<Vec<u8>> {
    let form = form?;
    let attached = params
        .get("certificate")
        .and_then(Value::as_str)
        .and_then(|v| v.trim().strip_prefix("attach://"));
    form.file("certificate")
        .or_else(|| form.file(attached?))
        .map(<[u8]>::to_vec)
}

/// The query string and the body, merged (the body wins).
fn params(req: &Request) -> Result<Params, &'static str> {
    let mut params: Params = http::parse_form(&req.query)
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if req.body.is_empty() {
        return Ok(params);
    }
    let content_type = req
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        match serde_json::from_slice(&req.body) {
            Ok(Value::Object(body)) => params.extend(body),
            Ok(_) => return Err("Bad Request: parameters must be a JSON object"),
            Err(_) => return Err("Bad Request: can't parse JSON object"),
        }
    } else if content_type.starts_with("multipart/") {
        return Err("Bad Request: the testkit does not support multipart/form-data");
    } else {
        let body = String::from_utf8_lossy(&req.body);
        params.extend(http::parse_form(&body).map(|(k, v)| (k, Value::String(v))));
    }
    Ok(params)
}

/// An integer parameter, sent as a JSON number or as text (forms, query strings).
fn int_param(params: &Params, key: &str) -> Option<i64> {
    match params.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean parameter, sent as JSON or as text (`true`, `1`); absent is false.
fn bool_param(params: &Params, key: &str) -> bool {
    match params.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.trim(), "true" | "True" | "1"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

fn number_param(params: &Params, key: &str) -> Option<f64> {
    match params.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn ok(result: Value) -> Response {
    Response::json(200, &json!({ "ok": true, "result": result }))
}

/// A Bot API error; its HTTP status is its `error_code`, as Telegram sends it.
fn api_error(code: u16, description: &str, parameters: Option<Params>) -> Response {
    let mut body = json!({ "ok": false, "error_code": code, "description": description });
    if let Some(parameters) = parameters.filter(|p| !p.is_empty()) {
        body["parameters"] = Value::Object(parameters);
    }
    Response::json(code, &body)
}
