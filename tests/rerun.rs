//! An update run again after a store failure (or delivered again after a
//! restart) starts no broadcast and schedules no job twice: their ids come
//! from the update, and a second run finds them made.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use common::{wait_metric, DEADLINE};
use serde::{Deserialize, Serialize};
use smolgram::api::generated::methods::SendMessage;
use smolgram::api::types::ChatId;
use smolgram::jobs::{Broadcast, Job, JobContext};
use smolgram::state::{MemoryStore, Scope, State, Store, StoreError, StoreFuture};
use smolgram::testkit::{FakeApi, TestBot};
use smolgram::{Bot, RateLimits};

const ADMIN: ChatId = ChatId(1);

/// What the handlers write after making their job or broadcast: its first
/// write fails, so the update runs again.
#[derive(Serialize, Deserialize, Default)]
struct Tally(u32);

impl State for Tally {
    const NAME: &'static str = "tally";
    const SCOPE: Scope = Scope::Chat;
}

#[derive(Serialize, Deserialize)]
struct Remind;

impl Job for Remind {
    const NAME: &'static str = "remind";
}

/// A memory store whose first write of a `tally` fails as an unavailable
/// store's would.
struct FailsOnce {
    inner: MemoryStore,
    failed: Cell<bool>,
}

impl Store for FailsOnce {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.inner.get(key)
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Option<&'a [u8]>,
        ttl: Option<Duration>,
    ) -> StoreFuture<'a, Option<u64>> {
        if key.starts_with("tally:") && !self.failed.replace(true) {
            return Box::pin(async {
                Err(StoreError::Unavailable {
                    store: "fails-once".into(),
                    detail: "down for one write".into(),
                })
            });
        }
        self.inner.put(key, value, ttl)
    }

    fn describe(&self) -> String {
        "fails-once".into()
    }
}

/// `/go`: a broadcast to chats 100..110, then the tally; `/remind`: a job
/// an hour from now, then the tally. Each replies once it got through.
fn bot() -> Bot {
    Bot::new()
        .on_job(|_ctx: JobContext, _: Remind| async { Ok(()) })
        .command("go", |ctx| async move {
            let chats = (100..110).map(ChatId);
            let news = Broadcast::message(chats, &SendMessage::new(ChatId(0), "news"));
            let id = ctx.broadcast(news).await?;
            ctx.set_state(&Tally(1)).await?;
            ctx.reply(format!("started {id}")).await?;
            Ok(())
        })
        .command("remind", |ctx| async move {
            let id = ctx.schedule_in(Duration::from_secs(3600), &Remind).await?;
            ctx.set_state(&Tally(1)).await?;
            ctx.reply(format!("scheduled {id}")).await?;
            Ok(())
        })
}

fn start(api: &FakeApi) -> TestBot {
    let mut config = TestBot::config(api);
    config.rate_limits = Some(RateLimits::OFF);
    TestBot::start_with_store(api, config, || {
        let store = FailsOnce {
            inner: MemoryStore::new(),
            failed: Cell::new(false),
        };
        (bot(), Rc::new(store) as Rc<dyn Store>)
    })
    .unwrap()
}

#[test]
fn a_broadcast_started_by_an_update_that_runs_again_goes_out_once() {
    let api = FakeApi::start();
    let bot = start(&api);
    api.push_text(ADMIN, "/go");
    api.wait_until("every chat, and the reply", DEADLINE, |api| {
        api.sent_count() >= 11 && api.sent_to(ADMIN) == 1
    });
    let summary_of_sends = |api: &FakeApi| {
        (100..110)
            .map(|chat| api.sent_to(ChatId(chat)))
            .collect::<Vec<_>>()
    };
    assert_eq!(summary_of_sends(&api), vec![1; 10], "each chat once");
    // It ran twice.
    wait_metric(bot.health_addr().unwrap(), "smolgram_state_retries_total 1");
    // Its first run's error counts, as any handler's does.
    let summary = bot.stop().unwrap();
    assert_eq!((summary.handled, summary.failed), (1, 1));
    // Nothing came later: the ten went once, and the admin got one reply.
    assert_eq!(api.sent_count(), 11);
}

#[test]
fn a_job_scheduled_by_an_update_that_runs_again_is_scheduled_once() {
    let api = FakeApi::start();
    let bot = start(&api);
    api.push_text(ADMIN, "/remind");
    api.wait_until("the reply", DEADLINE, |api| api.sent_to(ADMIN) == 1);
    // It ran twice.
    wait_metric(bot.health_addr().unwrap(), "smolgram_state_retries_total 1");
    wait_metric(bot.health_addr().unwrap(), "smolgram_jobs_scheduled 1");
    bot.stop().unwrap();
}
