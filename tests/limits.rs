//! Outbound rate limits on a running bot: a chat's flood is paced, and it
//! does not hold up other chats.

mod common;

use std::time::Duration;

use common::DEADLINE;
use smolgram::api::methods::SendMessage;
use smolgram::api::types::ChatId;
use smolgram::testkit::{FakeApi, TestBot};
use smolgram::{Bot, RateLimits};

const FLOOD: ChatId = ChatId(1);
const OTHER: ChatId = ChatId(2);

fn flood_bot() -> Bot {
    Bot::new()
        .command("flood", |ctx| async move {
            for i in 0..10 {
                ctx.send_message(&SendMessage::new(FLOOD, format!("flood {i}")))
                    .await?;
            }
            Ok(())
        })
        .text(|ctx| async move {
            ctx.reply("hi").await?;
            Ok(())
        })
}

#[test]
fn a_flood_to_one_chat_is_paced_and_other_chats_do_not_wait_for_it() {
    let api = FakeApi::start();
    let mut config = TestBot::config(&api);
    // 4/s per chat, no burst: the flood takes over two seconds.
    config.rate_limits = Some(RateLimits {
        private_per_sec: 4.0,
        private_burst: 1,
        ..RateLimits::DEFAULT
    });
    let bot = TestBot::start_with(&api, config, flood_bot).unwrap();
    api.push_text(FLOOD, "/flood");
    api.wait_until("the flood under way", DEADLINE, |api| {
        api.sent_to(FLOOD) >= 2
    });
    api.push_text(OTHER, "me too");
    api.wait_until("the flood done", DEADLINE, |api| api.sent_to(FLOOD) == 10);
    let order: Vec<ChatId> = api.sent().iter().map(|s| s.chat).collect();
    let other_at = order
        .iter()
        .position(|c| *c == OTHER)
        .expect("the other chat answered");
    assert!(
        other_at < 6,
        "the other chat waited behind the flood: {order:?}"
    );

    let times = api.call_times("sendMessage");
    let flood_times: Vec<_> = api
        .calls("sendMessage")
        .iter()
        .zip(&times)
        .filter(|(params, _)| params["chat_id"] == FLOOD.0)
        .map(|(_, at)| *at)
        .collect();
    // The k-th flood message goes k turns (250 ms each) after the first; the
    // fake sees it a request's latency later, so allow 50 ms of that.
    for (k, at) in flood_times.iter().enumerate() {
        let since_first = *at - flood_times[0];
        let turn = Duration::from_millis(250) * k as u32;
        assert!(
            since_first + Duration::from_millis(50) >= turn,
            "message {k} after {since_first:?}"
        );
    }
    bot.stop().unwrap();
}

#[test]
fn with_limits_off_a_flood_is_not_paced() {
    let api = FakeApi::start();
    let mut config = TestBot::config(&api);
    config.rate_limits = Some(RateLimits::OFF);
    let bot = TestBot::start_with(&api, config, flood_bot).unwrap();
    api.push_text(FLOOD, "/flood");
    api.wait_until("the flood done", DEADLINE, |api| api.sent_to(FLOOD) == 10);
    let times = api.call_times("sendMessage");
    assert!(
        times[9] - times[0] < Duration::from_secs(5),
        "no pacing: {:?}",
        times[9] - times[0]
    );
    bot.stop().unwrap();
}
