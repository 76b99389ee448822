//! The notification inlet's payloads: what a `POST /notify` body says to
//! send, and to which chat (see: #14).
//!
//! Four shapes are understood: our own JSON (`chat`, `text`, optional
//! `parse_mode` and `silent`), a `text/plain` body, and the alert webhooks
//! of Alertmanager (`webhook_configs`) and Grafana (its webhook contact
//! point, an Alertmanager-like body with `title`, `message` and `state`).
//! An alert group becomes *one* plain-text message, so a page of alerts is
//! one notification, not a burst that the rate limits would stretch out.
//!
//! Must not: read sockets (that is `health`), send anything, or guess at
//! markup: alert text is sent plain, whatever it contains.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use event_listener::Event;
use log::warn;
use serde_json::{Map, Value};

use crate::api::generated::Recipient;
use crate::api::methods::SendMessage;
use crate::api::types::ChatId;
use crate::api::Client;
use crate::config::{recipient, NotifyConfig};
use crate::http::{BodyLength, Head, Response};
use crate::metrics::{bump, Metrics};
use crate::text::{self, MESSAGE_LIMIT};
use crate::webhook::same;
use crate::{wait, Shutdown};

/// The route's path on the health listener.
pub(crate) const PATH: &str = "/notify";

/// The largest body read; an alert group is a few KB.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// Messages queued at most; a request that does not fit is a 503.
pub(crate) const MAX_QUEUED: usize = 256;

/// How long a caller is asked to wait after a 503, in seconds.
const RETRY_AFTER: &str = "5";

/// The `/notify` route and its queue, shared by the listener's
/// connections and the delivery task.
#[derive(Debug)]
pub(crate) struct Outlet {
    config: NotifyConfig,
    metrics: Rc<Metrics>,
    queue: RefCell<VecDeque<SendMessage>>,
    arrived: Event,
}

impl Outlet {
    pub(crate) fn new(config: NotifyConfig, metrics: Rc<Metrics>) -> Outlet {
        Outlet {
            config,
            metrics,
            queue: RefCell::default(),
            arrived: Event::new(),
        }
    }

    /// Checks a head before its body is read: `POST` (405), the bearer
    /// token in constant time (401), a `Content-Length` (411) of at most
    /// [`MAX_BODY`] (413). `Ok(length)`: read that many bytes and call
    /// [`answer`](Self::answer).
    pub(crate) fn admit(&self, head: &Head<'_>) -> Result<usize, Response> {
        if head.method() != "POST" {
            self.count(3);
            return Err(Response {
                allow: Some("POST"),
                ..reply(405, "method not allowed\n")
            });
        }
        let given = head.header("Authorization").unwrap_or("");
        let given = given.strip_prefix("Bearer ").unwrap_or("").trim();
        if !same(given.as_bytes(), self.config.token.expose().as_bytes()) {
            self.count(1);
            return Err(reply(401, "unauthorized\n"));
        }
        match (head.header("Content-Length"), head.body_length()) {
            (Some(_), BodyLength::Fixed(n)) if n > MAX_BODY as u64 => {
                self.count(2);
                Err(reply(413, "body over 64 KiB\n"))
            }
            (Some(_), BodyLength::Fixed(n)) => Ok(n as usize),
            _ => {
                self.count(3);
                Err(reply(411, "a Content-Length is required\n"))
            }
        }
    }

    /// Queues an admitted body's message(s) and answers 202; 400 with the
    /// reason for a body we cannot read, 503 when the queue has no room for
    /// all its parts (none are queued then).
    pub(crate) fn answer(&self, plain: bool, body: &[u8]) -> Response {
        let note = match parse(plain, body) {
            Ok(note) => note,
            Err(why) => {
                self.count(3);
                return reply(400, format!("{why}\n"));
            }
        };
        let Some(chat) = note.chat.or_else(|| self.config.chat.clone()) else {
            self.count(3);
            return reply(400, "no chat, and SMOLGRAM_NOTIFY_CHAT is not set\n");
        };
        // Markup is not split (a cut could break a tag): a long marked-up
        // text goes as one message, and Telegram's answer decides.
        let parts = match note.parse_mode {
            None => text::split(&note.text, &[], MESSAGE_LIMIT)
                .into_iter()
                .map(|p| p.text)
                .collect(),
            Some(_) => vec![note.text],
        };
        let mut queue = self.queue.borrow_mut();
        if queue.len() + parts.len() > MAX_QUEUED {
            self.count(4);
            return Response {
                retry_after: Some(RETRY_AFTER),
                ..reply(503, "queue full; try again later\n")
            };
        }
        for part in parts {
            let mut call = SendMessage::new(chat.clone(), part).disable_notification(note.silent);
            if let Some(mode) = note.parse_mode {
                call = call.parse_mode(mode);
            }
            queue.push_back(call);
        }
        self.metrics.notify_pending.set(queue.len() as u64);
        self.count(0);
        self.arrived.notify(1);
        reply(202, "queued\n")
    }

    fn count(&self, outcome: usize) {
        bump(&self.metrics.notify[outcome]);
    }

    /// Sends the queue, in order, through `client` (its retries and rate
    /// limits), until a stop; then what is left within `drain`, and logs
    /// what could not be sent in time.
    pub(crate) async fn deliver(&self, client: &Client, shutdown: &Shutdown, drain: Duration) {
        loop {
            let next = self.queue.borrow_mut().pop_front();
            match next {
                Some(call) => self.send(client, &call).await,
                None if shutdown.is_requested() => return,
                None => {
                    let listener = self.arrived.listen();
                    if !self.queue.borrow().is_empty() {
                        continue;
                    }
                    // A stop wakes us too, to return above.
                    shutdown.race(listener).await;
                    if shutdown.is_requested() {
                        break;
                    }
                }
            }
        }
        let drained = wait::within(drain, async {
            loop {
                let next = self.queue.borrow_mut().pop_front();
                let Some(call) = next else { break };
                self.send(client, &call).await;
            }
        })
        .await;
        // Cut by the deadline, the drain was inside a send: that message may
        // or may not have reached Telegram; it is counted with the unsent.
        let left = self.queue.borrow().len();
        let in_flight = usize::from(drained.is_none());
        if left + in_flight > 0 {
            warn!(
                "notify stopped at the drain deadline unsent={left} in_flight={in_flight}; \
                 they were accepted (202) and are not sent"
            );
            for _ in 0..left + in_flight {
                bump(&self.metrics.notify_failed);
            }
        }
    }

    async fn send(&self, client: &Client, call: &SendMessage) {
        match client.send(call).await {
            Ok(_) => bump(&self.metrics.notify_sent),
            Err(e) => {
                // The error's Display never holds the token (see `Error`).
                warn!("notify send failed error={e}");
                bump(&self.metrics.notify_failed);
            }
        }
        self.metrics
            .notify_pending
            .set(self.queue.borrow().len() as u64);
    }
}

/// Whether `head` is for the route, when it is on.
pub(crate) fn is_route(head: &Head<'_>) -> bool {
    head.path() == PATH
}

/// Whether `head`'s body is `text/plain` (else JSON is expected).
pub(crate) fn is_plain(head: &Head<'_>) -> bool {
    head.header("Content-Type")
        .is_some_and(|t| t.trim_start().starts_with("text/plain"))
}

fn reply(status: u16, body: impl Into<std::borrow::Cow<'static, str>>) -> Response {
    Response::new(status, "text/plain", body)
}

/// One message to send, as the body asked for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Note {
    /// `None`: the default chat (`SMOLGRAM_NOTIFY_CHAT`).
    pub(crate) chat: Option<Recipient>,
    pub(crate) text: String,
    /// `"HTML"` or `"MarkdownV2"`, for our own JSON only.
    pub(crate) parse_mode: Option<&'static str>,
    pub(crate) silent: bool,
}

/// Reads a body. `plain` is whether its `Content-Type` is `text/plain`.
///
/// # Errors
/// A one-line reason for the 400.
pub(crate) fn parse(plain: bool, body: &[u8]) -> Result<Note, &'static str> {
    let body = std::str::from_utf8(body).map_err(|_| "body is not UTF-8")?;
    if plain {
        return note(None, body.to_owned(), None, false);
    }
    let Ok(Value::Object(json)) = serde_json::from_str::<Value>(body) else {
        return Err("body is not a JSON object (send text/plain for plain text)");
    };
    let chat = match json.get("chat") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(Recipient::from(ChatId(n.as_i64().ok_or("bad chat")?))),
        Some(Value::String(s)) => Some(recipient(s).ok_or("chat is not an id or @name")?),
        Some(_) => return Err("chat is not an id or @name"),
    };
    if let Some(Value::Array(alerts)) = json.get("alerts") {
        return note(chat, alerts_text(&json, alerts), None, false);
    }
    let Some(Value::String(text)) = json.get("text") else {
        return Err("unknown shape: no \"text\" and no \"alerts\"");
    };
    let parse_mode = match json.get("parse_mode").and_then(Value::as_str) {
        None => None,
        Some(m) if m.eq_ignore_ascii_case("html") => Some("HTML"),
        Some(m) if m.eq_ignore_ascii_case("markdown") => Some("MarkdownV2"),
        Some(_) => return Err("parse_mode is not html or markdown"),
    };
    let silent = json.get("silent").and_then(Value::as_bool).unwrap_or(false);
    note(chat, text.clone(), parse_mode, silent)
}

fn note(
    chat: Option<Recipient>,
    text: String,
    parse_mode: Option<&'static str>,
    silent: bool,
) -> Result<Note, &'static str> {
    if text.trim().is_empty() {
        return Err("text is empty");
    }
    Ok(Note {
        chat,
        text,
        parse_mode,
        silent,
    })
}

/// An alert group as one message: Alertmanager's own title shape,
/// `[FIRING:2] HighLoad (instance=pi)`, then a line per alert, resolved
/// ones marked. Grafana's `title` and `message`, when present, are used as
/// they are: they are its rendered templates.
fn alerts_text(group: &Map<String, Value>, alerts: &[Value]) -> String {
    let field = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    let root = Value::Object(group.clone());
    let title = field(&root, "title");
    let message = field(&root, "message");
    if !title.is_empty() && !message.is_empty() {
        return format!("{title}\n{message}");
    }
    let firing = alerts
        .iter()
        .filter(|a| field(a, "status") == "firing")
        .count();
    let mut out = if !title.is_empty() {
        title
    } else {
        let status = field(&root, "status").to_uppercase();
        let labels = root.get("groupLabels").and_then(Value::as_object);
        let name = labels
            .and_then(|l| l.get("alertname"))
            .and_then(Value::as_str)
            .unwrap_or("alert");
        let others = labels.map_or_else(String::new, |l| pairs(l, None, "alertname"));
        let count = if status == "FIRING" {
            format!(":{firing}")
        } else {
            String::new()
        };
        let others = if others.is_empty() {
            others
        } else {
            format!(" ({others})")
        };
        format!("[{status}{count}] {name}{others}")
    };
    let common = group.get("commonLabels").and_then(Value::as_object);
    for alert in alerts {
        let notes = alert.get("annotations").unwrap_or(&Value::Null);
        let labels = alert.get("labels").and_then(Value::as_object);
        let mut line = field(notes, "summary");
        if line.is_empty() {
            line = field(notes, "description");
        }
        if line.is_empty() {
            line = labels
                .and_then(|l| l.get("alertname"))
                .and_then(Value::as_str)
                .unwrap_or("alert")
                .to_owned();
        }
        let own = labels.map_or_else(String::new, |l| pairs(l, common, ""));
        out.push_str("\n• ");
        out.push_str(&line);
        if !own.is_empty() {
            out.push_str(&format!(" ({own})"));
        }
        if field(alert, "status") == "resolved" {
            out.push_str(" [resolved]");
        }
    }
    if !message.is_empty() {
        out.push('\n');
        out.push_str(&message);
    }
    out
}

/// `k=v, k=v` of `labels`, leaving out `skip` and those `common` to all.
fn pairs(labels: &Map<String, Value>, common: Option<&Map<String, Value>>, skip: &str) -> String {
    labels
        .iter()
        .filter(|(k, v)| *k != skip && common.and_then(|c| c.get(*k)) != Some(*v))
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_json_and_plain_text() {
        let n = parse(
            false,
            br#"{"chat":-100123,"text":"hi","parse_mode":"html","silent":true}"#,
        )
        .unwrap();
        assert_eq!(n.chat, Some(Recipient::from(ChatId(-100123))));
        assert_eq!(
            (n.text.as_str(), n.parse_mode, n.silent),
            ("hi", Some("HTML"), true)
        );
        let n = parse(false, br#"{"chat":"@ops","text":"x"}"#).unwrap();
        assert_eq!(n.chat, Some(Recipient::from("@ops")));
        assert_eq!(parse(false, br#"{"text":"x"}"#).unwrap().chat, None);
        let plain = parse(true, b"disk full").unwrap();
        assert_eq!((plain.chat, plain.text.as_str()), (None, "disk full"));
    }

    #[test]
    fn bad_bodies_have_a_one_line_reason() {
        for body in [
            &b"not json"[..],
            b"[1]",
            br#"{"chat":1}"#,
            br#"{"text":"  "}"#,
            br#"{"text":"x","parse_mode":"bbcode"}"#,
            br#"{"chat":"no spaces","text":"x"}"#,
        ] {
            let why = parse(false, body).unwrap_err();
            assert!(!why.contains('\n'), "{why}");
        }
        assert!(parse(true, b"").is_err());
    }

    #[test]
    fn an_alertmanager_group_is_one_message_naming_each_alert() {
        let body = br#"{"version":"4","status":"firing","receiver":"tg",
          "groupLabels":{"alertname":"HighLoad","instance":"pi"},
          "commonLabels":{"alertname":"HighLoad","instance":"pi"},
          "commonAnnotations":{},"externalURL":"http://am:9093",
          "alerts":[
            {"status":"firing","labels":{"alertname":"HighLoad","instance":"pi","cpu":"0"},
             "annotations":{"summary":"load 9 on cpu0"},"startsAt":"2026-12-02T10:00:00Z",
             "endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/g"},
            {"status":"resolved","labels":{"alertname":"HighLoad","instance":"pi","cpu":"1"},
             "annotations":{},"startsAt":"2026-12-02T10:00:00Z",
             "endsAt":"2026-12-02T10:05:00Z","generatorURL":"http://prom/g"}]}"#;
        let n = parse(false, body).unwrap();
        assert_eq!(
            n.text,
            "[FIRING:1] HighLoad (instance=pi)\n• load 9 on cpu0 (cpu=0)\n• HighLoad (cpu=1) [resolved]"
        );
        assert_eq!(n.parse_mode, None);
    }

    #[test]
    fn grafana_uses_its_title_and_message() {
        let body = br#"{"receiver":"tg","status":"firing","orgId":1,"state":"alerting",
          "title":"[FIRING:1] High memory usage","message":"**Firing**\nzone us-1",
          "alerts":[{"status":"firing","labels":{"alertname":"High memory usage"},
          "annotations":{"summary":"zone us-1"}}]}"#;
        let n = parse(false, body).unwrap();
        assert_eq!(
            n.text,
            "[FIRING:1] High memory usage\n**Firing**\nzone us-1"
        );
        let no_message = br#"{"status":"firing","title":"T","alerts":[{"status":"firing",
          "labels":{"alertname":"A"},"annotations":{"summary":"s"}}]}"#;
        assert_eq!(
            parse(false, no_message).unwrap().text,
            "T\n• s (alertname=A)"
        );
    }
}
