//! The digest example (`examples/digest.rs`) against the testkit, by a
//! clock the test moves: subscribers, a reminder, the daily digest and an
//! announcement to every subscriber (see: #16).

mod common;

#[allow(dead_code, reason = "the tests run the example's bot, not its main")]
#[path = "../examples/digest.rs"]
mod digest;

use std::time::{Duration, UNIX_EPOCH};

use common::{texts_to, DEADLINE};
use smolgram::api::types::ChatId;
use smolgram::jobs::ManualClock;
use smolgram::testkit::{FakeApi, TestBot};
use smolgram::RateLimits;

/// 2027-01-15T08:00:00Z; the digest is due at 07:00Z (08:00 at +01:00).
const T0: u64 = 1_800_000_000;
const CHATS: [ChatId; 3] = [ChatId(1), ChatId(2), ChatId(3)];

#[test]
fn subscribers_get_the_digest_daily_and_announcements_and_a_reminder_comes() {
    let api = FakeApi::start();
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(T0));
    let mut config = TestBot::config(&api);
    config.clock = clock.clone().into();
    config.rate_limits = Some(RateLimits::OFF);
    let bot = TestBot::start_with(&api, config, digest::bot).unwrap();
    for (i, chat) in CHATS.into_iter().enumerate() {
        api.push_text(chat, "/start");
        api.wait_until("subscribed", DEADLINE, |api| api.sent_to(chat) == 1);
        assert!(texts_to(&api, chat)[0].starts_with(&format!("Subscribed ({} in all)", i + 1)));
    }
    api.push_text(CHATS[0], "/remind 1 tea");
    api.wait_until("the answer", DEADLINE, |api| api.sent_to(CHATS[0]) == 2);
    clock.advance(Duration::from_secs(60));
    api.wait_until("the reminder", DEADLINE, |api| api.sent_to(CHATS[0]) == 3);
    assert_eq!(texts_to(&api, CHATS[0])[2], "Reminder: tea");
    // 07:00 UTC the next day: the digest, to each subscriber once.
    clock.advance(Duration::from_secs(23 * 3600 - 60));
    for chat in CHATS {
        api.wait_until("the digest", DEADLINE, |api| {
            texts_to(api, chat)
                .iter()
                .any(|t| t.starts_with("Digest for 2027-01-16"))
        });
    }
    api.push_text(CHATS[1], "/stop");
    api.wait_until("unsubscribed", DEADLINE, |api| {
        texts_to(api, CHATS[1]).last().map(String::as_str) == Some("Unsubscribed.")
    });
    api.push_text(CHATS[2], "/announce hello all");
    api.wait_until("the announcement", DEADLINE, |api| {
        [CHATS[0], CHATS[2]]
            .iter()
            .all(|&chat| texts_to(api, chat).last().map(String::as_str) == Some("hello all"))
    });
    assert!(!texts_to(&api, CHATS[1]).iter().any(|t| t == "hello all"));
    for chat in CHATS {
        let digests = texts_to(&api, chat);
        let digests = digests.iter().filter(|t| t.starts_with("Digest")).count();
        assert_eq!(digests, 1, "{chat:?}");
    }
    bot.stop().unwrap();
}
