//! The fake Bot API over real HTTP: what a bot's client sees of it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::DEADLINE;
use serde_json::{json, Value};
use smolgram::api::types::{ChatId, MessageId};
use smolgram::testkit::{FakeApi, Fault};

/// A client that hands back 4xx/5xx answers instead of failing on them.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn method_url(api: &FakeApi, method: &str) -> String {
    format!("{}/bot{}/{method}", api.url(), FakeApi::TOKEN)
}

/// POSTs `params` as JSON; the status and the raw body, or ureq's error.
fn try_call(
    agent: &ureq::Agent,
    api: &FakeApi,
    method: &str,
    params: Value,
) -> Result<(u16, String), ureq::Error> {
    let mut resp = agent
        .post(method_url(api, method))
        .header("content-type", "application/json")
        .send(params.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, resp.body_mut().read_to_string()?))
}

/// Like [`try_call`], for answers that must arrive and be JSON.
fn call(agent: &ureq::Agent, api: &FakeApi, method: &str, params: Value) -> (u16, Value) {
    let (status, body) = try_call(agent, api, method, params).expect("request failed");
    let body = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, body)
}

/// The `update_id`s of a successful `getUpdates` answer.
fn update_ids(answer: &Value) -> Vec<i64> {
    assert_eq!(answer["ok"], true, "{answer}");
    let result = answer["result"].as_array().expect("result is an array");
    result
        .iter()
        .map(|u| u["update_id"].as_i64().unwrap())
        .collect()
}

/// Writes `bytes` on a fresh connection and reads until the server closes it.
fn raw_exchange(api: &FakeApi, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(api.addr()).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn get_me_describes_the_bot_and_method_names_ignore_case() {
    let api = FakeApi::start();
    let mut resp = agent().get(method_url(&api, "GETME")).call().unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"ok": true, "result": {"id": 123456789, "is_bot": true,
            "first_name": "Testkit", "username": "smolgram_test_bot"}})
    );
    assert_eq!(api.calls("getMe").len(), 1);
}

#[test]
fn wrong_token_is_401_and_unknown_method_is_404() {
    let api = FakeApi::start();
    let url = format!("{}/bot123:wrong/getMe", api.url());
    let mut resp = agent().get(&url).call().unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    let (status, body) = call(&agent(), &api, "sendTelepathy", json!({}));
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 404, "description": "Not Found"})
    );
    let resp = agent()
        .get(format!("{}/nothing", api.url()))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(
        api.calls("getMe").is_empty(),
        "a refused token records nothing"
    );
}

#[test]
fn pushed_text_is_delivered_by_get_updates() {
    let api = FakeApi::start();
    let id = api.push_text(ChatId(42), "hello");
    assert_eq!(id, 1);
    let (status, body) = call(&agent(), &api, "getUpdates", json!({}));
    assert_eq!(status, 200);
    assert_eq!(update_ids(&body), [1]);
    let message = &body["result"][0]["message"];
    assert_eq!(message["text"], "hello");
    assert_eq!(message["message_id"], 1);
    assert_eq!(
        message["chat"],
        json!({"id": 42, "type": "private", "first_name": "User"})
    );
    assert_eq!(message["from"]["id"], 42);
    assert_eq!(message["from"]["first_name"], "User");
    assert!(message["date"].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(api.deliveries(id), 1);
    assert_eq!(api.pending(), 1, "delivered is not confirmed");
}

#[test]
fn offset_confirms_below_it_and_confirmed_updates_are_gone_for_good() {
    let api = FakeApi::start();
    let agent = agent();
    let first = api.push_text(ChatId(1), "a");
    let second = api.push_text(ChatId(1), "b");
    assert_eq!(api.confirmed_offset(), None);
    assert_eq!(
        update_ids(&call(&agent, &api, "getUpdates", json!({})).1),
        [first, second]
    );
    let again = call(&agent, &api, "getUpdates", json!({"offset": second})).1;
    assert_eq!(
        update_ids(&again),
        [second],
        "unconfirmed updates come again"
    );
    assert_eq!(
        (
            api.pending(),
            api.confirmed_offset(),
            api.deliveries(second)
        ),
        (1, Some(second), 2)
    );
    let done = call(&agent, &api, "getUpdates", json!({"offset": second + 1})).1;
    assert_eq!(update_ids(&done), Vec::<i64>::new());
    assert_eq!(
        (api.pending(), api.confirmed_offset()),
        (0, Some(second + 1))
    );
}

#[test]
fn limit_caps_the_batch_in_update_id_order() {
    let api = FakeApi::start();
    for text in ["a", "b", "c"] {
        api.push_text(ChatId(1), text);
    }
    let (_, body) = call(&agent(), &api, "getUpdates", json!({"limit": 2}));
    assert_eq!(update_ids(&body), [1, 2]);
}

#[test]
fn query_string_and_form_parameters_are_understood() {
    let api = FakeApi::start();
    let agent = agent();
    api.push_text(ChatId(1), "a");
    api.push_text(ChatId(1), "b");
    let mut resp = agent
        .get(method_url(&api, "getUpdates"))
        .query("offset", "2")
        .query("allowed_updates", r#"["message"]"#)
        .call()
        .unwrap();
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(update_ids(&body), [2]);
    assert_eq!(
        api.calls("getUpdates")[0]["allowed_updates"],
        r#"["message"]"#
    );

    let resp = agent
        .post(method_url(&api, "sendMessage"))
        .send_form([
            ("chat_id", "7"),
            ("text", "a b&c=d é"),
            ("reply_parameters", r#"{"message_id":3}"#),
        ])
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sent = &api.sent()[0];
    assert_eq!((sent.chat, sent.text.as_str()), (ChatId(7), "a b&c=d é"));
    assert_eq!(sent.reply_to, Some(MessageId(3)));
}

#[test]
fn long_poll_is_answered_by_a_push_from_another_thread() {
    let api = FakeApi::start();
    let poller = {
        let (agent, url) = (agent(), method_url(&api, "getUpdates"));
        thread::spawn(move || {
            let mut resp = agent.get(&url).query("timeout", "5").call().unwrap();
            resp.body_mut().read_to_string().unwrap()
        })
    };
    api.wait_until("the long poll to arrive", DEADLINE, |api| {
        api.calls("getUpdates").len() == 1
    });
    let id = api.push_text(ChatId(9), "wake up");
    let body: Value = serde_json::from_str(&poller.join().unwrap()).unwrap();
    assert_eq!(update_ids(&body), [id]);
}

#[test]
fn a_newer_get_updates_ends_the_waiting_one_with_409() {
    let api = FakeApi::start();
    let older = {
        let (agent, url) = (agent(), method_url(&api, "getUpdates"));
        thread::spawn(move || {
            let mut resp = agent.get(&url).query("timeout", "5").call().unwrap();
            (
                resp.status().as_u16(),
                resp.body_mut().read_to_string().unwrap(),
            )
        })
    };
    // Recording a call and starting its poll happen in one step on the
    // server's single thread, so once recorded, the older poll is the current one.
    api.wait_until("the first long poll to arrive", DEADLINE, |api| {
        api.calls("getUpdates").len() == 1
    });
    let (status, newer) = call(&agent(), &api, "getUpdates", json!({"timeout": 0}));
    assert_eq!((status, update_ids(&newer)), (200, vec![]));
    let (status, body) = older.join().unwrap();
    assert_eq!(status, 409);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"ok": false, "error_code": 409, "description":
            "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"})
    );
}

#[test]
fn send_message_is_recorded_with_its_reply_target() {
    let api = FakeApi::start();
    let agent = agent();
    let asked = api.push_text(ChatId(5), "question");
    assert_eq!(asked, 1);
    let params = json!({"chat_id": 5, "text": "answer", "reply_parameters": {"message_id": 1},
        "reply_markup": {"inline_keyboard": [[{"text": "Ping", "callback_data": "ping"}]]}});
    let (status, body) = call(&agent, &api, "sendMessage", params.clone());
    assert_eq!(status, 200);
    let message = &body["result"];
    assert_eq!(message["message_id"], 2, "ids count per chat, both sides");
    assert_eq!(message["chat"]["id"], 5);
    assert_eq!(message["from"]["is_bot"], true);
    assert_eq!(message["text"], "answer");
    let (_, legacy) = call(
        &agent,
        &api,
        "sendMessage",
        json!({"chat_id": 6, "text": "other", "reply_to_message_id": 4}),
    );
    assert_eq!(legacy["result"]["message_id"], 1);

    let sent = api.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[0].chat, sent[0].reply_to),
        (ChatId(5), Some(MessageId(1)))
    );
    assert_eq!(
        (sent[0].text.as_str(), &sent[0].params),
        ("answer", &params)
    );
    assert_eq!(
        (sent[1].chat, sent[1].reply_to),
        (ChatId(6), Some(MessageId(4)))
    );
    assert_eq!((api.sent_to(ChatId(5)), api.sent_to(ChatId(8))), (1, 0));
}

#[test]
fn send_message_without_chat_or_text_is_a_bad_request() {
    let api = FakeApi::start();
    let (status, body) = call(&agent(), &api, "sendMessage", json!({"chat_id": 1}));
    assert_eq!((status, body["error_code"].as_i64()), (400, Some(400)));
    let (status, _) = call(&agent(), &api, "sendMessage", json!({"text": "x"}));
    assert_eq!(status, 400);
    let (status, _) = try_call(&agent(), &api, "sendMessage", json!([1])).unwrap();
    assert_eq!(status, 400);
    assert!(api.sent().is_empty());
    assert_eq!(
        api.calls("sendmessage").len(),
        2,
        "refused calls are recorded too"
    );
}

#[test]
fn callback_press_hangs_under_the_bots_last_message() {
    let api = FakeApi::start();
    let agent = agent();
    call(
        &agent,
        &api,
        "sendMessage",
        json!({"chat_id": 3, "text": "Choose"}),
    );
    let id = api.push_callback(ChatId(3), "ping");
    let (_, body) = call(&agent, &api, "getUpdates", json!({}));
    assert_eq!(update_ids(&body), [id]);
    let query = &body["result"][0]["callback_query"];
    assert_eq!(query["data"], "ping");
    assert_eq!(query["from"]["id"], 3);
    assert_eq!(query["message"]["message_id"], 1);
    assert_eq!(query["message"]["text"], "Choose");
    assert_eq!(query["message"]["from"]["is_bot"], true);
    let query_id = query["id"].as_str().unwrap().to_owned();

    let (status, answered) = call(
        &agent,
        &api,
        "answerCallbackQuery",
        json!({"callback_query_id": query_id}),
    );
    assert_eq!(
        (status, &answered),
        (200, &json!({"ok": true, "result": true}))
    );
    assert_eq!(
        api.calls("answerCallbackQuery")[0]["callback_query_id"],
        query_id.as_str()
    );
}

#[test]
fn raw_updates_are_queued_verbatim_with_the_next_id() {
    let api = FakeApi::start();
    api.push_text(ChatId(1), "first");
    let odd = api.push_raw(json!({"message_reaction": {"x": 1}, "update_id": 999}));
    let broken = api.push_raw(json!("not an object"));
    let (_, body) = call(&agent(), &api, "getUpdates", json!({}));
    let result = body["result"].as_array().unwrap();
    assert_eq!((odd, broken), (2, 3));
    assert_eq!(
        result[1],
        json!({"update_id": 2, "message_reaction": {"x": 1}})
    );
    assert_eq!(result[2], "not an object");
    assert_eq!(api.deliveries(3), 1);
}

#[test]
fn a_webhook_is_kept_refuses_polls_and_is_deleted_keeping_updates_unless_asked() {
    let api = FakeApi::start();
    let agent = agent();
    let kept = api.push_text(ChatId(1), "kept");
    let webhook_409 = json!({"ok": false, "error_code": 409, "description":
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"});
    let params = json!({"url": "https://example.org/hook", "secret_token": "s3",
        "allowed_updates": ["message"], "max_connections": 5});
    let (status, body) = call(&agent, &api, "setWebhook", params);
    assert_eq!((status, &body), (200, &json!({"ok": true, "result": true})));
    let webhook = api.webhook().expect("set");
    assert_eq!(
        (webhook.url.as_str(), webhook.secret_token.as_deref()),
        ("https://example.org/hook", Some("s3"))
    );
    assert_eq!(webhook.allowed_updates, Some(vec!["message".to_owned()]));
    let (_, info) = call(&agent, &api, "getWebhookInfo", json!({}));
    assert_eq!(
        info["result"],
        json!({"url": "https://example.org/hook", "has_custom_certificate": false,
            "pending_update_count": 1, "max_connections": 5, "allowed_updates": ["message"]})
    );
    // Every getUpdates is refused, and confirms nothing.
    let (status, body) = call(&agent, &api, "getUpdates", json!({"offset": kept + 1}));
    assert_eq!((status, &body), (409, &webhook_409));
    assert_eq!((api.pending(), api.confirmed_offset()), (1, None));
    // Deleted without dropping: the update is there for the next poll.
    let (status, _) = call(
        &agent,
        &api,
        "deleteWebhook",
        json!({"drop_pending_updates": false}),
    );
    assert_eq!((status, api.webhook()), (200, None));
    let (_, info) = call(&agent, &api, "getWebhookInfo", json!({}));
    assert_eq!(
        info["result"],
        json!({"url": "", "has_custom_certificate": false, "pending_update_count": 1})
    );
    let (_, body) = call(&agent, &api, "getUpdates", json!({}));
    assert_eq!(update_ids(&body), [kept]);
    // A waiting long poll is ended by a webhook set meanwhile.
    let waiting = {
        let agent = agent.clone();
        let url = method_url(&api, "getUpdates");
        thread::spawn(move || {
            let offset = (kept + 1).to_string();
            let query = [("timeout", "30"), ("offset", offset.as_str())];
            let mut resp = agent.get(&url).query_pairs(query).call().unwrap();
            (
                resp.status().as_u16(),
                resp.body_mut().read_to_string().unwrap(),
            )
        })
    };
    // It confirmed on arrival: then it waits.
    api.wait_until("the long poll", DEADLINE, |api| {
        api.confirmed_offset() == Some(kept + 1)
    });
    api.set_webhook("https://example.org/other");
    let (status, body) = waiting.join().unwrap();
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (409, webhook_409)
    );
    // Deleted with dropping (as a form): the queue is gone.
    api.push_text(ChatId(1), "dropped");
    let resp = agent
        .post(method_url(&api, "deleteWebhook"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send("drop_pending_updates=true")
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!((api.webhook(), api.pending()), (None, 0));
    assert_eq!(api.calls("deleteWebhook").len(), 2, "calls are recorded");
    assert_eq!(api.calls("setWebhook").len(), 1, "set_webhook is no call");
}

#[test]
fn methods_that_only_acknowledge_answer_true() {
    let api = FakeApi::start();
    let agent = agent();
    for method in [
        "setMyCommands",
        "sendChatAction",
        "deleteMessage",
        "close",
        "logOut",
    ] {
        let (status, body) = call(&agent, &api, method, json!({"chat_id": 1}));
        assert_eq!(
            (status, &body),
            (200, &json!({"ok": true, "result": true})),
            "{method}"
        );
        assert_eq!(api.calls(method).len(), 1, "{method}");
    }
    // An edit of a chat message answers the message, an inline one `true`.
    let (status, body) = call(
        &agent,
        &api,
        "editMessageText",
        json!({"chat_id": 1, "message_id": 1, "text": "new"}),
    );
    assert_eq!((status, &body["result"]["text"]), (200, &json!("new")));
    let (_, inline) = call(
        &agent,
        &api,
        "editMessageText",
        json!({"inline_message_id": "i", "text": "new"}),
    );
    assert_eq!(inline["result"], true);
}

#[test]
fn fault_drop_closes_the_connection_without_an_answer_once() {
    let api = FakeApi::start();
    api.fault("getMe", Fault::Drop, 1);
    assert!(try_call(&agent(), &api, "getMe", json!({})).is_err());
    assert_eq!(
        call(&agent(), &api, "getMe", json!({})).0,
        200,
        "count was 1"
    );
    assert_eq!(api.calls("getMe").len(), 2, "the dropped call is recorded");
}

#[test]
fn fault_status_sends_the_proxy_page_verbatim() {
    let api = FakeApi::start();
    let page = "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>";
    api.fault(
        "sendMessage",
        Fault::Status {
            code: 502,
            body: page.to_owned(),
        },
        1,
    );
    let mut resp = agent()
        .post(method_url(&api, "sendMessage"))
        .send_form([("chat_id", "1"), ("text", "x")])
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["content-type"], "text/html");
    assert_eq!(resp.body_mut().read_to_string().unwrap(), page);
    assert!(api.sent().is_empty(), "a faulted send sends nothing");
}

#[test]
fn fault_api_429_carries_retry_after_in_parameters() {
    let api = FakeApi::start();
    api.fault(
        "sendMessage",
        Fault::Api {
            code: 429,
            description: "Too Many Requests: retry after 3".to_owned(),
            retry_after: Some(3),
            migrate_to_chat_id: None,
        },
        1,
    );
    api.fault(
        "sendMessage",
        Fault::Api {
            code: 400,
            description: "Bad Request: group chat was upgraded to a supergroup chat".to_owned(),
            retry_after: None,
            migrate_to_chat_id: Some(-1001234),
        },
        1,
    );
    let params = json!({"chat_id": 1, "text": "x"});
    let (status, body) = call(&agent(), &api, "sendMessage", params.clone());
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3",
            "parameters": {"retry_after": 3}})
    );
    let (status, body) = call(&agent(), &api, "sendMessage", params.clone());
    assert_eq!(status, 400);
    assert_eq!(body["parameters"], json!({"migrate_to_chat_id": -1001234}));
    assert_eq!(call(&agent(), &api, "sendMessage", params).0, 200);
    assert_eq!(api.sent().len(), 1);
}

#[test]
fn fault_invalid_json_is_a_200_that_does_not_parse() {
    let api = FakeApi::start();
    api.fault("*", Fault::InvalidJson, 1);
    let (status, body) = try_call(&agent(), &api, "getMe", json!({})).unwrap();
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
}

#[test]
fn fault_delay_answers_normally_afterwards() {
    let api = FakeApi::start();
    api.fault("getme", Fault::Delay(Duration::from_millis(20)), 1);
    let started = Instant::now();
    let (status, body) = call(&agent(), &api, "getMe", json!({}));
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)));
    assert!(started.elapsed() >= Duration::from_millis(20));
}

#[test]
fn a_faulted_get_updates_confirms_nothing() {
    let api = FakeApi::start();
    let id = api.push_text(ChatId(1), "kept");
    api.fault(
        "getUpdates",
        Fault::Status {
            code: 500,
            body: r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#
                .to_owned(),
        },
        1,
    );
    let (status, body) = call(&agent(), &api, "getUpdates", json!({"offset": id + 1}));
    assert_eq!((status, body["error_code"].as_i64()), (500, Some(500)));
    assert_eq!(
        (api.pending(), api.confirmed_offset(), api.deliveries(id)),
        (1, None, 0)
    );
}

#[test]
fn faults_queue_in_order_and_star_matches_any_method() {
    let api = FakeApi::start();
    let status = |code: u16| Fault::Status {
        code,
        body: String::new(),
    };
    api.fault("*", status(503), 1);
    api.fault("getMe", status(504), 2);
    let agent = agent();
    let statuses: Vec<u16> = ["sendChatAction", "getMe", "getme", "getMe"]
        .iter()
        .map(|m| try_call(&agent, &api, m, json!({"chat_id": 1})).unwrap().0)
        .collect();
    assert_eq!(statuses, [503, 504, 504, 200]);
}

#[test]
fn one_connection_serves_pipelined_requests_until_connection_close() {
    let api = FakeApi::start();
    let get_me = format!(
        "GET /bot{}/getMe HTTP/1.1\r\nHost: x\r\n\r\n",
        FakeApi::TOKEN
    );
    let body = r#"{"chat_id":1,"text":"hi"}"#;
    let last = format!(
        "POST /bot{}/sendMessage HTTP/1.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        FakeApi::TOKEN,
        body.len()
    );
    let answer = raw_exchange(&api, format!("{get_me}{get_me}{last}").as_bytes());
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 3, "{answer}");
    assert_eq!(answer.matches("Connection: keep-alive").count(), 2);
    assert!(answer.contains("Connection: close"));
    assert_eq!(api.sent().len(), 1);
    assert_eq!(api.connections(), 1);
}

#[test]
fn garbage_gets_400_chunked_gets_411_and_the_server_lives_on() {
    let api = FakeApi::start();
    let answer = raw_exchange(&api, b"\x00\xffnot http at all\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let chunked = format!(
        "POST /bot{}/getMe HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        FakeApi::TOKEN
    );
    let answer = raw_exchange(&api, chunked.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 411 "), "{answer}");
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20 * 1024));
    assert!(raw_exchange(&api, huge.as_bytes()).starts_with("HTTP/1.1 400 "));
    assert_eq!(call(&agent(), &api, "getMe", json!({})).0, 200);
}

#[test]
fn a_client_leaving_mid_long_poll_does_not_break_the_server() {
    let api = FakeApi::start();
    let mut stream = TcpStream::connect(api.addr()).unwrap();
    let poll = format!(
        "GET /bot{}/getUpdates?timeout=30 HTTP/1.1\r\n\r\n",
        FakeApi::TOKEN
    );
    stream.write_all(poll.as_bytes()).unwrap();
    api.wait_until("the long poll to arrive", DEADLINE, |api| {
        api.calls("getUpdates").len() == 1
    });
    drop(stream);
    let id = api.push_text(ChatId(1), "still here");
    let (_, body) = call(&agent(), &api, "getUpdates", json!({}));
    assert_eq!(update_ids(&body), [id]);
}

#[test]
fn dropping_the_fake_ends_a_waiting_long_poll() {
    let api = FakeApi::start();
    let poller = {
        let (agent, url) = (agent(), method_url(&api, "getUpdates"));
        thread::spawn(move || {
            agent
                .get(&url)
                .query("timeout", "60")
                .call()
                .map(|r| r.status())
        })
    };
    api.wait_until("the long poll to arrive", DEADLINE, |api| {
        api.calls("getUpdates").len() == 1
    });
    drop(api); // joins the server thread: this would hang if the poll held it
    assert!(poller.join().unwrap().is_err(), "the connection was closed");
}

#[test]
fn wait_until_returns_once_another_thread_makes_the_condition_true() {
    let api = std::sync::Arc::new(FakeApi::start());
    let pusher = {
        let api = std::sync::Arc::clone(&api);
        thread::spawn(move || {
            for i in 0..3 {
                api.push_text(ChatId(1), &i.to_string());
            }
        })
    };
    api.wait_until("three pending updates", DEADLINE, |api| api.pending() == 3);
    pusher.join().unwrap();
}

#[test]
#[should_panic(expected = "timed out after 50ms waiting for a reply that never comes")]
fn wait_until_panics_with_its_label_at_the_deadline() {
    let api = FakeApi::start();
    api.wait_until(
        "a reply that never comes",
        Duration::from_millis(50),
        |api| !api.sent().is_empty(),
    );
}

#[test]
fn a_thousand_sends_on_one_connection_are_all_recorded() {
    let api = FakeApi::start();
    let agent = agent();
    for i in 0..1000 {
        let (status, _) = try_call(
            &agent,
            &api,
            "sendMessage",
            json!({"chat_id": 1, "text": i}),
        )
        .unwrap();
        assert_eq!(status, 200);
    }
    assert_eq!(api.sent_to(ChatId(1)), 1000);
    assert_eq!(api.sent()[999].text, "999");
    assert_eq!(api.connections(), 1, "the agent kept its one connection");
}

#[test]
fn connections_count_every_accepted_one() {
    let api = FakeApi::start();
    assert_eq!(api.connections(), 0);
    for _ in 0..3 {
        let answer = raw_exchange(&api, b"GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    }
    assert_eq!(api.connections(), 3);
}

/// Spawns a long poll of `timeout` seconds; its status and body, and when it was answered.
fn long_poll(api: &FakeApi, timeout: u32) -> thread::JoinHandle<(u16, String, Instant)> {
    let (agent, url) = (agent(), method_url(api, "getUpdates"));
    thread::spawn(move || {
        let mut resp = agent
            .get(&url)
            .query("timeout", timeout.to_string())
            .call()
            .unwrap();
        let body = resp.body_mut().read_to_string().unwrap();
        (resp.status().as_u16(), body, Instant::now())
    })
}

#[test]
fn a_fault_armed_while_a_long_poll_waits_is_served_to_that_poll() {
    let api = FakeApi::start();
    let poller = long_poll(&api, 30);
    api.wait_until("the long poll to arrive", DEADLINE, |api| {
        api.calls("getUpdates").len() == 1
    });
    api.fault(
        "getUpdates",
        Fault::Status {
            code: 502,
            body: "<html>bad gateway</html>".into(),
        },
        1,
    );
    let id = api.push_text(ChatId(1), "not for the faulted poll");
    let (status, body, _) = poller.join().unwrap();
    assert_eq!((status, body.as_str()), (502, "<html>bad gateway</html>"));
    assert_eq!(api.unserved_faults("getUpdates"), 0);
    assert_eq!((api.deliveries(id), api.calls("getUpdates").len()), (0, 1));
    let (_, next) = call(&agent(), &api, "getUpdates", json!({}));
    assert_eq!(update_ids(&next), [id], "the fault was used up");
}

#[test]
fn a_delay_armed_while_a_long_poll_waits_holds_it_then_answers_normally() {
    let api = FakeApi::start();
    let poller = long_poll(&api, 30);
    api.wait_until("the long poll to arrive", DEADLINE, |api| {
        api.calls("getUpdates").len() == 1
    });
    let armed = Instant::now();
    api.fault("getUpdates", Fault::Delay(Duration::from_millis(200)), 1);
    let id = api.push_text(ChatId(1), "late but here");
    let (status, body, answered) = poller.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(update_ids(&serde_json::from_str(&body).unwrap()), [id]);
    assert!(answered - armed >= Duration::from_millis(200));
    assert_eq!(api.unserved_faults("getUpdates"), 0);
}

#[test]
fn a_call_takes_one_fault_at_most() {
    let api = FakeApi::start();
    api.fault("getUpdates", Fault::Delay(Duration::from_millis(10)), 1);
    api.fault(
        "getUpdates",
        Fault::Status {
            code: 500,
            body: String::new(),
        },
        1,
    );
    // The delayed call answers normally; the 500 is the next call's.
    let (status, body) = call(&agent(), &api, "getUpdates", json!({"timeout": 0}));
    assert_eq!((status, update_ids(&body)), (200, vec![]));
    assert_eq!(api.unserved_faults("getupdates"), 1);
    let (status, _) = try_call(&agent(), &api, "getUpdates", json!({})).unwrap();
    assert_eq!(status, 500);
    assert_eq!(api.unserved_faults("GETUPDATES"), 0);
}

#[test]
fn unserved_faults_are_counted_under_the_name_they_were_armed_with() {
    let api = FakeApi::start();
    api.fault("*", Fault::Drop, 1);
    api.fault("sendMessage", Fault::Drop, 2);
    assert_eq!(
        (api.unserved_faults("*"), api.unserved_faults("sendmessage")),
        (1, 2)
    );
    assert!(try_call(&agent(), &api, "getMe", json!({})).is_err());
    assert_eq!(
        (api.unserved_faults("*"), api.unserved_faults("sendMessage")),
        (0, 2),
        "getMe took the one armed for any method"
    );
}
