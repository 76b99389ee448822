//! Scheduled jobs through a running bot, by a clock the tests move: a job
//! in code on its schedule, a missed run caught up once, a reminder made
//! by a handler that survives a restart (file store), the skip policy,
//! cancelling, failures, panics and timeouts, and the stop (see: #16).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{texts_to, wait_metric, Logs, DEADLINE};
use serde::{Deserialize, Serialize};
use smolgram::api::types::ChatId;
use smolgram::config::{Config, StoreSpec};
use smolgram::jobs::{Job, JobContext, JobId, JobOptions, ManualClock, Misfire, Schedule};
use smolgram::testkit::{FakeApi, TestBot};
use smolgram::{Bot, HandlerResult};

const CHAT: ChatId = ChatId(42);
/// 2027-01-15T08:00:00Z: where the test clocks start.
const T0: u64 = 1_800_000_000;
const HOUR: Duration = Duration::from_secs(3600);

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0)
}

/// Seconds after `T0`.
fn since_t0(t: SystemTime) -> u64 {
    t.duration_since(t0()).unwrap().as_secs()
}

fn config(api: &FakeApi, clock: &ManualClock) -> Config {
    let mut config = TestBot::config(api);
    config.clock = clock.clone().into();
    config
}

/// A state file of its own for `test`, empty.
fn state_file(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smolgram-jobs-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("bot.state")
}

/// A run's line: when it was due and when it ran, in seconds after `T0`.
async fn report(ctx: JobContext) -> HandlerResult {
    let line = format!("due={} now={}", since_t0(ctx.due()), since_t0(ctx.now()));
    ctx.send_message(CHAT, line).await?;
    Ok(())
}

#[test]
fn a_job_in_code_runs_by_its_schedule_and_a_missed_run_comes_once() {
    let api = FakeApi::start();
    let clock = ManualClock::new(t0());
    let every = Schedule::parse("every 1h").unwrap();
    let bot = TestBot::start_with(&api, config(&api, &clock), move || {
        Bot::new().job("hourly", every, report)
    })
    .unwrap();
    wait_metric(bot.health_addr().unwrap(), "smolgram_jobs_scheduled 1");
    clock.advance(HOUR / 2);
    clock.advance(HOUR / 2);
    api.wait_until("the first run", DEADLINE, |api| api.sent_to(CHAT) == 1);
    // A run ends after its message: moved before, the clock would make it
    // a run that outlasted its interval.
    wait_metric(
        bot.health_addr().unwrap(),
        "smolgram_job_runs_total{outcome=\"ok\"} 1",
    );
    clock.advance(HOUR);
    api.wait_until("the second run", DEADLINE, |api| api.sent_to(CHAT) == 2);
    wait_metric(
        bot.health_addr().unwrap(),
        "smolgram_job_runs_total{outcome=\"ok\"} 2",
    );
    // Three and a half hours at once: the 3:00 run, late, stands for the
    // 4:00 and 5:00 ones; the next is 6:00, in phase.
    clock.advance(HOUR * 7 / 2);
    api.wait_until("the catch-up", DEADLINE, |api| api.sent_to(CHAT) == 3);
    wait_metric(
        bot.health_addr().unwrap(),
        "smolgram_job_runs_total{outcome=\"ok\"} 3",
    );
    clock.advance(HOUR / 2);
    api.wait_until("the 6:00 run", DEADLINE, |api| api.sent_to(CHAT) == 4);
    assert_eq!(
        texts_to(&api, CHAT),
        [
            "due=3600 now=3600",
            "due=7200 now=7200",
            "due=10800 now=19800",
            "due=21600 now=21600"
        ]
    );
    bot.stop().unwrap();
}

/// A reminder: `/remind <seconds> <text>` makes one.
#[derive(Serialize, Deserialize)]
struct Remind {
    chat: ChatId,
    text: String,
}

impl Job for Remind {
    const NAME: &'static str = "remind";
}

/// One that is dropped when it was missed.
#[derive(Serialize, Deserialize)]
struct Fleeting(ChatId);

impl Job for Fleeting {
    const NAME: &'static str = "fleeting";
    const MISFIRE: Misfire = Misfire::Skip;
}

fn reminders() -> Bot {
    Bot::new()
        .command("remind", |ctx| async move {
            let (secs, text) = ctx.args().split_once(' ').unwrap_or(("0", ""));
            let delay = Duration::from_secs(secs.parse()?);
            let chat = ctx.chat_id().ok_or("no chat")?;
            let text = text.to_owned();
            let id = ctx.schedule_in(delay, &Remind { chat, text }).await?;
            ctx.reply(format!("ok {id}")).await?;
            Ok(())
        })
        .command("fleeting", |ctx| async move {
            let chat = ctx.chat_id().ok_or("no chat")?;
            let id = ctx.schedule_in(HOUR, &Fleeting(chat)).await?;
            ctx.reply(format!("ok {id}")).await?;
            Ok(())
        })
        .command("cancel", |ctx| async move {
            let cancelled = ctx.cancel_job(&JobId::from(ctx.args())).await?;
            ctx.reply(format!("cancelled={cancelled}")).await?;
            Ok(())
        })
        .on_job(|ctx: JobContext, r: Remind| async move {
            ctx.send_message(r.chat, format!("reminder: {}", r.text))
                .await?;
            Ok(())
        })
        .on_job(|ctx: JobContext, Fleeting(chat)| async move {
            ctx.send_message(chat, "fleeting").await?;
            Ok(())
        })
}

fn reminders_on(api: &FakeApi, clock: &ManualClock, file: &Path) -> TestBot {
    let mut config = config(api, clock);
    config.state.store = StoreSpec::File(file.to_owned());
    TestBot::start_with(api, config, reminders).unwrap()
}

/// The id in the bot's last answer, `ok <id>`.
fn last_id(api: &FakeApi) -> String {
    let texts = texts_to(api, CHAT);
    let last = texts.last().expect("an answer");
    last.strip_prefix("ok ").expect("an id").to_owned()
}

#[test]
fn a_reminder_made_by_a_handler_survives_a_restart_and_comes_once() {
    let logs = Logs::capture();
    let api = FakeApi::start();
    let clock = ManualClock::new(t0());
    let file = state_file("remind");
    let bot = reminders_on(&api, &clock, &file);
    api.push_text(CHAT, "/remind 600 tea");
    api.wait_until("the answer", DEADLINE, |api| api.sent_to(CHAT) == 1);
    assert!(last_id(&api).starts_with("remind#"));
    bot.stop().unwrap();
    // Due while the bot is down: it comes at the next start, once.
    clock.advance(Duration::from_secs(700));
    let bot = reminders_on(&api, &clock, &file);
    api.wait_until("the reminder", DEADLINE, |api| api.sent_to(CHAT) == 2);
    assert_eq!(texts_to(&api, CHAT)[1], "reminder: tea");
    wait_metric(bot.health_addr().unwrap(), "smolgram_jobs_scheduled 0");
    assert_eq!(logs.matching("missed its run").len(), 1);
    bot.stop().unwrap();
    // Its record is gone: a third start sends nothing, and says nothing of it.
    let bot = reminders_on(&api, &clock, &file);
    clock.advance(HOUR * 24);
    api.push_text(CHAT, "/remind 60 later");
    api.wait_until("the answer", DEADLINE, |api| api.sent_to(CHAT) == 3);
    clock.advance(Duration::from_secs(60));
    api.wait_until("the later one", DEADLINE, |api| api.sent_to(CHAT) == 4);
    assert_eq!(
        texts_to(&api, CHAT)[2..]
            .iter()
            .filter(|t| t.starts_with("reminder"))
            .collect::<Vec<_>>(),
        ["reminder: later"]
    );
    assert_eq!(logs.matching("missed its run").len(), 1);
    bot.stop().unwrap();
}

#[test]
fn a_skipped_job_missed_while_down_does_not_run_and_a_cancelled_one_never_does() {
    let logs = Logs::capture();
    let api = FakeApi::start();
    let clock = ManualClock::new(t0());
    let file = state_file("skip");
    let bot = reminders_on(&api, &clock, &file);
    api.push_text(CHAT, "/fleeting");
    api.wait_until("the answer", DEADLINE, |api| api.sent_to(CHAT) == 1);
    api.push_text(CHAT, "/remind 60 never");
    api.wait_until("the answer", DEADLINE, |api| api.sent_to(CHAT) == 2);
    let id = last_id(&api);
    api.push_text(CHAT, &format!("/cancel {id}"));
    api.wait_until("the cancel", DEADLINE, |api| api.sent_to(CHAT) == 3);
    assert_eq!(texts_to(&api, CHAT)[2], "cancelled=true");
    wait_metric(bot.health_addr().unwrap(), "smolgram_jobs_scheduled 1");
    bot.stop().unwrap();
    clock.advance(HOUR * 2);
    let bot = reminders_on(&api, &clock, &file);
    api.wait_until("the skip logged", DEADLINE, |_| {
        !logs.matching("misfire=skip").is_empty()
    });
    wait_metric(bot.health_addr().unwrap(), "smolgram_jobs_scheduled 0");
    api.push_text(CHAT, &format!("/cancel {id}"));
    api.wait_until("the second cancel", DEADLINE, |api| api.sent_to(CHAT) == 4);
    assert_eq!(
        texts_to(&api, CHAT)[3..],
        ["cancelled=false"],
        "neither the skipped nor the cancelled job ran"
    );
    bot.stop().unwrap();
}

#[test]
fn a_failing_panicking_or_hanging_job_is_counted_and_its_next_run_still_comes() {
    let api = FakeApi::start();
    let clock = ManualClock::new(t0());
    let every = Schedule::parse("every 1m").unwrap();
    let options = JobOptions {
        timeout: Some(Duration::from_millis(200)),
        ..JobOptions::default()
    };
    let bot = TestBot::start_with(&api, config(&api, &clock), move || {
        Bot::new().job_with("moody", every, options, |ctx| async move {
            let minute = since_t0(ctx.due()) / 60;
            match minute {
                1 => panic!("first run"),
                2 => Err("second run".into()),
                3 => std::future::pending().await,
                _ => report(ctx).await,
            }
        })
    })
    .unwrap();
    wait_metric(bot.health_addr().unwrap(), "smolgram_jobs_scheduled 1");
    let minute = Duration::from_secs(60);
    clock.advance(minute);
    wait_metric(
        bot.health_addr().unwrap(),
        "smolgram_job_runs_total{outcome=\"panic\"} 1",
    );
    clock.advance(minute);
    wait_metric(
        bot.health_addr().unwrap(),
        "smolgram_job_runs_total{outcome=\"error\"} 1",
    );
    clock.advance(minute);
    wait_metric(
        bot.health_addr().unwrap(),
        "smolgram_job_runs_total{outcome=\"timeout\"} 1",
    );
    clock.advance(minute);
    api.wait_until("the fourth run", DEADLINE, |api| api.sent_to(CHAT) == 1);
    assert_eq!(texts_to(&api, CHAT), ["due=240 now=240"]);
    bot.stop().unwrap();
}

#[test]
fn on_stop_a_running_job_finishes_within_the_drain_and_no_new_run_starts() {
    let api = FakeApi::start();
    let clock = ManualClock::new(t0());
    let every = Schedule::parse("every 1m").unwrap();
    let bot = TestBot::start_with(&api, config(&api, &clock), move || {
        Bot::new().job("slow", every, |ctx| async move {
            ctx.send_message(CHAT, "start").await?;
            async_io::Timer::after(Duration::from_millis(500)).await;
            ctx.send_message(CHAT, "end").await?;
            Ok(())
        })
    })
    .unwrap();
    wait_metric(bot.health_addr().unwrap(), "smolgram_jobs_scheduled 1");
    clock.advance(Duration::from_secs(60));
    api.wait_until("the run's start", DEADLINE, |api| api.sent_to(CHAT) == 1);
    let shutdown = bot.shutdown();
    shutdown.request();
    // Due again while stopping: not started.
    clock.advance(Duration::from_secs(60));
    bot.join(DEADLINE).unwrap();
    assert_eq!(texts_to(&api, CHAT), ["start", "end"]);
}
