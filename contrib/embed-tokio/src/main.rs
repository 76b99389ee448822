//! A tokio web service that notifies users through a smolgram bot.
//!
//! The bot runs on a thread of its own (`smolgram::embed::spawn`); the web
//! handler, a tokio task, sends through the bot's `Remote`: the call crosses
//! to the bot's executor and its answer comes back, through the bot's own
//! connections and rate limits. `GET /notify?chat=7&text=hello` sends
//! "hello" to chat 7.
//!
//! ```sh
//! TELEGRAM_BOT_TOKEN=123456:ABC… cargo run --release   # serves on 127.0.0.1:3000 until Ctrl-C
//! cargo run -- --self-test                             # the fake Bot API, one request, then stops
//! ```

use smolgram::api::methods::SendMessage;
use smolgram::api::types::ChatId;
use smolgram::embed::{self, Remote};
use smolgram::testkit::{FakeApi, TestBot};
use smolgram::Bot;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request: `GET /notify?chat=ID&text=TEXT` (the text with `+` for spaces).
async fn handle(stream: TcpStream, remote: Remote) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let target = line.split(' ').nth(1).unwrap_or_default();
    let query = target.strip_prefix("/notify?").unwrap_or_default();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    };
    let (status, body) = match (param("chat").and_then(|c| c.parse().ok()), param("text")) {
        (Some(chat), Some(text)) => {
            let message = SendMessage::new(ChatId(chat), text.replace('+', " "));
            // From this tokio task to the bot's executor and back.
            match remote.send(message).await {
                Ok(sent) => ("200 OK", format!("sent {}\n", sent.message_id.0)),
                Err(e) => ("502 Bad Gateway", format!("{e}\n")),
            }
        }
        _ => (
            "400 Bad Request",
            "usage: GET /notify?chat=ID&text=TEXT\n".to_owned(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .get_mut()
        .write_all(format!("{head}{body}").as_bytes())
        .await
}

async fn serve(listener: TcpListener, remote: Remote) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(handle(stream, remote.clone()));
    }
}

/// One request to the service, as a user's browser would make it.
async fn get(addr: std::net::SocketAddr, target: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer)
}

fn bot() -> Bot {
    Bot::new().command("ping", |ctx| async move {
        ctx.reply("pong").await?;
        Ok(())
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    smolgram::init_logging("info");
    if std::env::args().any(|a| a == "--self-test") {
        return self_test().await;
    }
    let config = smolgram::config::from_env()?;
    let bot = embed::spawn(config, bot)?;
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    println!("serving http://127.0.0.1:3000/notify?chat=ID&text=TEXT until Ctrl-C");
    tokio::select! {
        () = serve(listener, bot.remote()) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    // Stopping waits for the drain: off tokio's worker threads.
    let summary = tokio::task::spawn_blocking(move || bot.stop()).await??;
    println!("stopped, {summary}");
    Ok(())
}

/// The service against the testkit's fake Bot API: one notification
/// through the web handler, checked at the fake; then a stop.
async fn self_test() -> Result<(), Box<dyn std::error::Error>> {
    let api = FakeApi::start();
    let bot = embed::spawn(TestBot::config(&api), bot)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener, bot.remote()));
    let answer = get(addr, "/notify?chat=7&text=deploy+finished").await?;
    let sent: Vec<String> = api.sent().into_iter().map(|s| s.text).collect();
    if !answer.starts_with("HTTP/1.1 200") || sent != ["deploy finished"] {
        return Err(format!("self-test: answer {answer:?}, the fake got {sent:?}").into());
    }
    let bad = get(addr, "/notify?text=nobody").await?;
    if !bad.starts_with("HTTP/1.1 400") {
        return Err(format!("self-test: a request without a chat got {bad:?}").into());
    }
    // `finished` is a plain future: tokio awaits the bot's end without blocking a worker.
    bot.request_stop();
    let summary = bot.finished().await?;
    println!("self-test: ok, the web handler sent through the bot; stopped, {summary}");
    Ok(())
}
