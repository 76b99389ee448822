//! `RedisStore` against a real `redis-server`: each test starts its own on
//! a free port of 127.0.0.1 (killed when the test ends) and looks at what
//! the store wrote with raw RESP of its own.
//!
//! Every test is ignored: a machine without Redis passes a plain `cargo
//! test`. `.ci/run` installs Debian's `redis-server` and runs
//! `cargo test --test redis -- --ignored`, checking each name.

mod common;

#[allow(dead_code, reason = "the tests run the example's bot, not its main")]
#[path = "../examples/signup.rs"]
mod signup;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use async_io::block_on;
use common::{Logs, DEADLINE};
use smolgram::state::{RedisStore, Store, StoreError};

/// One `redis-server` of this test's own; killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// A server on a free port with `extra` arguments; another port if one
    /// is taken between our look and its bind.
    fn start(extra: &[&str]) -> Redis {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            if let Some(redis) = Redis::start_on(port, extra) {
                return redis;
            }
        }
        panic!("redis-server did not start on any of 5 ports");
    }

    /// A server on `port`, once it answers; `None` if it exits first.
    fn start_on(port: u16, extra: &[&str]) -> Option<Redis> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian package redis-server)");
        let mut redis = Redis { child, port };
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if redis
                .child
                .try_wait()
                .expect("redis-server's status")
                .is_some()
            {
                return None;
            }
            // A server with a password answers -NOAUTH: it is up all the same.
            if let Ok(reply) = raw_once(port, &[b"PING"]) {
                if reply.starts_with(b"+PONG") || reply.starts_with(b"-NOAUTH") {
                    return Some(redis);
                }
            }
            thread::sleep(Duration::from_millis(10));
        }
        redis.kill();
        None
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and waits until it is gone.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One command over a fresh std connection: its reply's bytes, whole.
fn raw_once(port: u16, args: &[&[u8]]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(DEADLINE))?;
    command(&mut stream, args)
}

/// Commands one after the other on one std connection: their replies.
fn raw_session(port: u16, commands: &[&[&[u8]]]) -> Vec<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let replies = commands.iter().map(|args| command(&mut stream, args));
    replies.collect::<std::io::Result<_>>().unwrap()
}

/// One command on `stream`: its reply's bytes, whole.
fn command(stream: &mut TcpStream, args: &[&[u8]]) -> std::io::Result<Vec<u8>> {
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg);
        request.extend_from_slice(b"\r\n");
    }
    stream.write_all(&request)?;
    let mut reply = Vec::new();
    let mut byte = [0u8];
    while !reply.ends_with(b"\r\n") {
        stream.read_exact(&mut byte)?;
        reply.push(byte[0]);
    }
    if reply[0] == b'$' && reply != b"$-1\r\n" {
        let len: usize = std::str::from_utf8(&reply[1..reply.len() - 2])
            .unwrap()
            .parse()
            .unwrap();
        let mut rest = vec![0u8; len + 2];
        stream.read_exact(&mut rest)?;
        reply.extend_from_slice(&rest);
    }
    Ok(reply)
}

/// `raw_once`, which must work.
fn raw(port: u16, args: &[&[u8]]) -> Vec<u8> {
    raw_once(port, args).expect("raw redis command")
}

/// Connections the server has accepted, this one included.
fn connections(port: u16) -> u64 {
    let info = String::from_utf8(raw(port, &[b"INFO", b"stats"])).unwrap();
    let line = info
        .lines()
        .find(|l| l.starts_with("total_connections_received:"));
    line.unwrap()[27..].trim().parse().unwrap()
}

/// A bulk reply as RESP sends it.
fn bulk(value: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", value.len()).into_bytes();
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

#[track_caller]
fn assert_unavailable(result: Result<impl std::fmt::Debug, StoreError>) -> StoreError {
    match result {
        Err(e @ StoreError::Unavailable { .. }) => e,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); .ci/run installs it"]
fn binary_values_round_trip_under_the_namespace_prefix() {
    let redis = Redis::start(&[]);
    let store = RedisStore::open(&redis.url(), "smolgram:1").unwrap();
    let value = b"a\r\nb\0c\r\n$-1\r\n";
    block_on(async {
        assert_eq!(store.get("key").await.unwrap(), None);
        assert_eq!(store.put("key", Some(value), None).await.unwrap(), None);
        assert_eq!(store.get("key").await.unwrap().as_deref(), Some(&value[..]));
    });
    assert_eq!(raw(redis.port, &[b"GET", b"smolgram:1:key"]), bulk(value));
    assert_eq!(raw(redis.port, &[b"PTTL", b"smolgram:1:key"]), b":-1\r\n");
    block_on(async {
        assert_eq!(store.put("key", None, None).await.unwrap(), None);
        assert_eq!(store.get("key").await.unwrap(), None);
        // The largest value is taken, one byte more is refused before sending.
        let largest = vec![7u8; 512 * 1024];
        store.put("big", Some(&largest), None).await.unwrap();
        assert_eq!(
            store.get("big").await.unwrap().as_deref(),
            Some(&largest[..])
        );
        let over = vec![7u8; 512 * 1024 + 1];
        match store.put("big", Some(&over), None).await {
            Err(StoreError::TooLarge { size, limit, .. }) => assert!(size > limit),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    });
    assert_eq!(raw(redis.port, &[b"EXISTS", b"smolgram:1:key"]), b":0\r\n");
    // Calls at once from several tasks take turns on the one connection:
    // Redis sees no connection but the pause's and the count's. A pause holds the
    // first reply, so that the second call comes while the first waits.
    let before = connections(redis.port);
    let pause = raw(redis.port, &[b"CLIENT", b"PAUSE", b"200", b"ALL"]);
    assert_eq!(pause, b"+OK\r\n");
    block_on(async {
        let (a, b) = futures_lite::future::zip(
            store.put("a", Some(b"1"), None),
            store.put("b", Some(b"2"), None),
        )
        .await;
        assert_eq!((a.unwrap(), b.unwrap()), (None, None));
        let (a, b) = futures_lite::future::zip(store.get("a"), store.get("b")).await;
        assert_eq!(
            (a.unwrap(), b.unwrap()),
            (Some(b"1".to_vec()), Some(b"2".to_vec()))
        );
    });
    let after = connections(redis.port);
    assert_eq!(after, before + 2, "{before} {after}");
    // Round trips on one connection: 1,000 writes and 1,000 reads, timed.
    block_on(async {
        let start = Instant::now();
        for i in 0..1000u32 {
            store.put("n", Some(&i.to_be_bytes()), None).await.unwrap();
        }
        let puts = start.elapsed();
        let start = Instant::now();
        for _ in 0..1000 {
            let got = store.get("n").await.unwrap();
            assert_eq!(got.as_deref(), Some(&999u32.to_be_bytes()[..]));
        }
        let gets = start.elapsed();
        eprintln!(
            "1,000 puts: {puts:?} ({:?} each); 1,000 gets: {gets:?}",
            puts / 1000
        );
    });
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); .ci/run installs it"]
fn a_value_with_a_ttl_reads_back_then_expires() {
    let redis = Redis::start(&[]);
    let store = RedisStore::open(&redis.url(), "smolgram:2").unwrap();
    let ttl = Duration::from_millis(200);
    let written = Instant::now();
    block_on(async {
        store.put("form", Some(b"step 1"), Some(ttl)).await.unwrap();
        assert_eq!(
            store.get("form").await.unwrap().as_deref(),
            Some(&b"step 1"[..])
        );
    });
    let pttl = raw(redis.port, &[b"PTTL", b"smolgram:2:form"]);
    let pttl: i64 = std::str::from_utf8(&pttl[1..pttl.len() - 2])
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=200).contains(&pttl), "PTTL {pttl}");
    block_on(async {
        while store.get("form").await.unwrap().is_some() {
            assert!(written.elapsed() < DEADLINE, "the key never expired");
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
    });
    assert!(
        written.elapsed() >= Duration::from_millis(150),
        "{:?}",
        written.elapsed()
    );
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); .ci/run installs it"]
fn a_password_logs_in_and_a_wrong_one_is_unavailable_and_never_printed() {
    let redis = Redis::start(&["--requirepass", "s3cret-pw"]);
    let port = redis.port;
    for url in [
        format!("redis://:s3cret-pw@127.0.0.1:{port}/1"),
        format!("redis://default:s3cret-pw@127.0.0.1:{port}/1"),
    ] {
        let store = RedisStore::open(&url, "smolgram:3").unwrap();
        block_on(async {
            store.put("k", Some(b"v"), None).await.unwrap();
            assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        });
        assert_eq!(store.describe(), format!("redis 127.0.0.1:{port}/1"));
        assert!(!format!("{store:?}").contains("s3cret-pw"), "{store:?}");
    }
    // In db 1, as the URL said; db 0 has no such key.
    let replies = raw_session(
        port,
        &[
            &[b"AUTH", b"s3cret-pw"],
            &[b"GET", b"smolgram:3:k"],
            &[b"SELECT", b"1"],
            &[b"GET", b"smolgram:3:k"],
        ],
    );
    assert_eq!(
        replies,
        [&b"+OK\r\n"[..], b"$-1\r\n", b"+OK\r\n", &bulk(b"v")]
    );
    let wrong = RedisStore::open(&format!("redis://:wrong-pw@127.0.0.1:{port}"), "smolgram:3")
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let none = RedisStore::open(&redis.url(), "smolgram:3").unwrap();
    for (store, secret) in [(&wrong, "wrong-pw"), (&none, "s3cret-pw")] {
        let err = assert_unavailable(block_on(store.get("k")));
        for shown in [
            err.to_string(),
            format!("{err:?}"),
            store.describe(),
            format!("{store:?}"),
        ] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(!shown.contains("s3cret-pw"), "{shown}");
        }
        assert!(err.to_string().contains("authentication failed"), "{err}");
        let err = assert_unavailable(block_on(store.put("k", Some(b"x"), None)));
        assert!(!err.to_string().contains(secret), "{err}");
    }
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); .ci/run installs it"]
fn a_redis_that_blips_is_unavailable_then_reconnected_logged_once_each_way() {
    let logs = Logs::capture();
    let mut redis = Redis::start(&[]);
    let port = redis.port;
    let timeout = Duration::from_millis(300);
    let store = RedisStore::open(&redis.url(), "smolgram:4")
        .unwrap()
        .with_timeout(timeout);
    // Other tests log at the same time: only this store's lines count.
    let ours = |needle: &str| -> Vec<String> {
        let this = format!("state: redis 127.0.0.1:{port}/0 ");
        let lines = logs.matching(&this).into_iter();
        lines.filter(|line| line.contains(needle)).collect()
    };
    block_on(store.put("k", Some(b"before"), None)).unwrap();
    redis.kill();
    for _ in 0..3 {
        let start = Instant::now();
        assert_unavailable(block_on(store.get("k")));
        assert_unavailable(block_on(store.put("k", Some(b"x"), None)));
        assert!(start.elapsed() < timeout * 6, "{:?}", start.elapsed());
    }
    let down = ours("unreachable");
    assert_eq!(down.len(), 1, "{down:?}");
    assert!(down[0].starts_with("WARN"), "{down:?}");
    assert!(
        down[0].contains(&format!("state: redis 127.0.0.1:{port}/0 unreachable: ")),
        "{down:?}"
    );
    assert!(down[0].ends_with("; updates wait for it"), "{down:?}");
    // A new server on the same port, empty: the same store connects again.
    let _again = Redis::start_on(port, &[]).expect("redis-server again on the same port");
    block_on(async {
        assert_eq!(store.get("k").await.unwrap(), None);
        store.put("k", Some(b"after"), None).await.unwrap();
        assert_eq!(
            store.get("k").await.unwrap().as_deref(),
            Some(&b"after"[..])
        );
    });
    let back = ours("back after");
    assert_eq!(back.len(), 1, "{back:?}");
    assert!(
        back[0].starts_with("INFO") && back[0].contains("back after 6 failures"),
        "{back:?}"
    );
    assert_eq!(ours("unreachable").len(), 1);
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); .ci/run installs it"]
fn a_server_that_never_answers_is_unavailable_within_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds every connection, answering nothing.
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let timeout = Duration::from_millis(300);
    let store = RedisStore::open(&format!("redis://127.0.0.1:{port}"), "smolgram:5")
        .unwrap()
        .with_timeout(timeout);
    for _ in 0..2 {
        let start = Instant::now();
        let err = assert_unavailable(block_on(store.get("k")));
        let elapsed = start.elapsed();
        assert!(elapsed >= timeout && elapsed < timeout * 3, "{elapsed:?}");
        assert!(err.to_string().contains("no reply within"), "{err}");
    }
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); .ci/run installs it"]
fn a_bad_url_is_an_open_error_with_its_reason() {
    for (url, reason) in [
        ("redis://", "no host"),
        ("http://x", "not a redis:// url"),
        ("redis://h:notaport", "port `notaport` is not a port number"),
        ("redis://h/notadb", "database `notadb` is not a number"),
        ("redis://u:pw-secret@h:0", "port `0` is not a port number"),
        ("redis://pw-secret@h", "credentials need a password"),
    ] {
        let err = RedisStore::open(url, "smolgram:6").unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{url}: {err:?}");
        let line = err.to_string();
        assert!(line.starts_with("state: cannot open "), "{line}");
        assert!(line.contains(&format!(": {reason}")), "{url}: {line}");
        assert!(!line.contains("pw-secret") && !format!("{err:?}").contains("pw-secret"));
        assert!(!line.contains('\n'));
    }
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); .ci/run installs it"]
fn a_form_moves_from_one_instance_to_another_on_one_redis() {
    const NAME: &str = "a_form_moves_from_one_instance_to_another_on_one_redis";
    common::signup::child(signup::bot);
    let redis = Redis::start(&[]);
    let spec = format!("redis://127.0.0.1:{}", redis.port);
    let api = smolgram::testkit::FakeApi::start();
    let first = common::signup::Instance::start(&api, NAME, &spec);
    let next = || common::signup::Instance::start(&api, NAME, &spec);
    common::signup::form_across_a_kill(&api, smolgram::api::types::ChatId(3), first, next);
    // The state is under the bot's id in Redis: the profile the form left.
    let profile = raw(redis.port, &[b"GET", b"smolgram:123456789:profile:u3"]);
    assert!(
        String::from_utf8_lossy(&profile).contains("Oslo"),
        "{}",
        String::from_utf8_lossy(&profile)
    );
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); .ci/run installs it"]
fn an_update_that_meets_a_redis_outage_waits_and_is_handled_once_it_is_back() {
    use smolgram::api::types::ChatId;
    use smolgram::config::StoreSpec;
    use smolgram::testkit::{FakeApi, TestBot};

    let logs = Logs::capture();
    let dir = std::env::temp_dir().join(format!("smolgram-redis-aof-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Its data kept across its own restart: what a real deployment configures.
    let keep = ["--appendonly", "yes", "--appendfsync", "always", "--dir"];
    let keep: Vec<&str> = keep.into_iter().chain([dir.to_str().unwrap()]).collect();
    let mut redis = Redis::start(&keep);
    let api = FakeApi::start();
    let mut config = TestBot::config(&api);
    config.state.store = StoreSpec::parse(&redis.url()).unwrap();
    let bot = TestBot::start_with(&api, config, signup::bot).unwrap();
    let chat = ChatId(8);
    common::signup::answer(&api, chat, "/start", "What is your name?");
    redis.kill();
    let id = api.push_text(chat, "Ann");
    api.wait_until("the outage noticed", DEADLINE, |_| {
        !logs.matching("state store unavailable").is_empty()
    });
    assert_eq!(api.sent_to(chat), 1, "nothing answered while Redis is down");
    assert!(api.confirmed_offset().is_none_or(|offset| offset <= id));
    let _back = Redis::start_on(redis.port, &keep).expect("redis-server again on its port");
    api.wait_until("the answer once it is back", DEADLINE, |api| {
        api.sent_to(chat) == 2
    });
    assert_eq!(common::texts_to(&api, chat)[1], "How old are you?");
    api.wait_until("confirmed", DEADLINE, |api| {
        api.confirmed_offset() > Some(id)
    });
    assert_eq!(logs.matching("state store works again").len(), 1);
    bot.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
