//! Outbound rate limits: the bot's global pace, each private chat's and each
//! group's, and the holds that a 429 puts on them.
//!
//! Telegram's rules: about 30 messages a second over all chats, one a second
//! in a private chat (a short burst is tolerated) and 20 a minute in a group
//! (chat ids below zero: groups, supergroups, channels). Past them it answers
//! 429 with a `retry_after`; keeping under them is cheaper than being told.
//!
//! Each limit is a GCRA bucket (virtual scheduling): one `Instant` at which
//! it would be full again. A turn is *reserved* the moment it is asked for,
//! so waiters are served first come, first served, each woken once by its
//! own timer at its own instant: no polling, no thundering herd. A message
//! takes its chat's turn first and only then its global one, so a flood of
//! replies to one chat draws global turns at that chat's pace (1/s) and
//! other chats wait for nothing but the global pace.
//!
//! A bucket that is full again behaves like a new one, so it is dropped
//! when the map of chats has doubled since the last sweep: a bot that talks
//! to a million chats over months keeps only the recently busy ones.
//!
//! A paid broadcast's sends (`allow_paid_broadcast`, paid in Stars) may go
//! at up to 1,000 a second: they take their global turn from a bucket of
//! their own at that pace ([`Limiter::acquire_paid`]), and their chat's
//! turn as any message. A 429 for the whole bot holds both buckets.
//!
//! Which methods are paced at all is one table, the generated
//! [`pace_class`](crate::api::generated::pace_class) ([`Pace::of`] reads it):
//! messages take turns; edits, chat actions and drafts only wait out 429
//! holds; the rest never wait.
//!
//! One mechanism, one file: the schedule's arithmetic and the tests that pin
//! it down (about half the file) belong together.
//!
//! Must not: sleep the executor thread (waits are `async_io` timers) or drop
//! a message (every `acquire` gets its turn, however late).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::api::types::ChatId;
use crate::metrics::{bump, Metrics};

/// The chat map is swept of idle buckets when it reaches this size, then
/// each time it has doubled since the last sweep (amortised O(1) per send).
const PRUNE_AT: usize = 1024;
/// Telegram's pace for paid broadcasts: up to 1,000 messages a second.
const PAID_PER_SEC: f64 = 1000.0;
/// The longest interval, burst allowance or hold we accept: keeps `Instant`
/// arithmetic from overflowing on a nonsense rate or `retry_after`.
const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// The limits; 0 for a rate turns that limit off.
///
/// A burst is how many messages may go at once to a chat that was quiet;
/// the rate is the pace after it, so a minute that starts a group's flood
/// holds `group_burst - 1` messages more than `group_per_min` (Telegram
/// tolerates short bursts; a 429 still holds the chat). The global limit has
/// no burst: 30/s is one message every 1/30 s, never 31 in a second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    /// Messages per second over all chats (Telegram: about 30).
    pub global_per_sec: f64,
    /// Messages per second to one private chat (Telegram: 1).
    pub private_per_sec: f64,
    /// Messages that may go at once to a private chat that was quiet.
    pub private_burst: u32,
    /// Messages per minute to one group, supergroup or channel (Telegram: 20).
    pub group_per_min: f64,
    /// Messages that may go at once to a group that was quiet.
    pub group_burst: u32,
}

impl RateLimits {
    /// Telegram's published limits, with a burst of 3 per chat.
    pub const DEFAULT: RateLimits = RateLimits {
        global_per_sec: 30.0,
        private_per_sec: 1.0,
        private_burst: 3,
        group_per_min: 20.0,
        group_burst: 3,
    };

    /// No limit: nothing waits except for a 429's `retry_after`.
    pub const OFF: RateLimits = RateLimits {
        global_per_sec: 0.0,
        private_per_sec: 0.0,
        private_burst: 1,
        group_per_min: 0.0,
        group_burst: 1,
    };
}

impl RateLimits {
    /// The limits for an API at `api_url`: [`RateLimits::DEFAULT`] for
    /// Telegram's own, [`RateLimits::OFF`] for any other (a test server, an
    /// emulator, a benchmark's fake), which has no such limits. A 429 holds
    /// sends either way. A self-hosted Bot API server forwards to Telegram
    /// and should be given the defaults explicitly (`--rate-limits on`).
    pub fn for_api(api_url: &str) -> RateLimits {
        if is_telegram(api_url) {
            RateLimits::DEFAULT
        } else {
            RateLimits::OFF
        }
    }
}

/// Whether `api_url` is Telegram's own Bot API (`api.telegram.org`), not a
/// local server, an emulator or a fake.
pub(crate) fn is_telegram(api_url: &str) -> bool {
    let host = api_url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', ':'])
        .next();
    host == Some("api.telegram.org")
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits::DEFAULT
    }
}

/// How the limiter treats a Bot API method: the generated table's class.
pub(crate) use crate::api::generated::PaceClass as Pace;

impl Pace {
    /// The pace of `method` (exact, case-sensitive Bot API name), from the
    /// one table, [`pace_class`](crate::api::generated::pace_class).
    ///
    /// A name the table does not know (a method newer than our facts, called
    /// through `Client::call`) is judged by its verb: a `send…` posts in a
    /// chat, an `edit…` changes a message shown; the rest is free.
    pub(crate) fn of(method: &str) -> Pace {
        crate::api::generated::pace_class(method).unwrap_or_else(|| {
            if method.starts_with("send") {
                Pace::Message
            } else if method.starts_with("edit") {
                Pace::Held
            } else {
                Pace::Free
            }
        })
    }
}

/// Waits for the turns the [`RateLimits`] give out. Single-threaded: shared
/// as `Rc<Limiter>` on the executor thread, `RefCell` inside.
pub(crate) struct Limiter {
    limits: RateLimits,
    schedule: RefCell<Schedule>,
    /// The run's counters: acquires that had to wait, and their waits in all.
    metrics: Rc<Metrics>,
}

impl Limiter {
    /// A limiter with nothing sent yet, counting its waits in `metrics`.
    pub(crate) fn new(limits: RateLimits, metrics: Rc<Metrics>) -> Limiter {
        Limiter {
            limits,
            schedule: RefCell::new(Schedule::new(limits, Instant::now())),
            metrics,
        }
    }

    /// Waits until a call of `pace` to `chat` may go, and takes its turn.
    ///
    /// A message takes its chat's turn first, then a global one: it
    /// reserves a global turn only once its chat's has come, so a chat's
    /// flood never holds global turns while it waits for its own. A message
    /// with no numeric chat (`@channel`), and a [`Pace::Held`] call, take no
    /// turn and wait only for the 429 holds on their chat and the whole bot
    /// (see [`Limiter::penalize`]); a [`Pace::Free`] call never waits.
    ///
    /// Dropped while waiting, it leaves its turn unused: later ones do not
    /// move up, so the limiter errs on the slow side.
    pub(crate) async fn acquire(&self, pace: Pace, chat: Option<ChatId>) {
        self.acquire_as(pace, chat, false).await;
    }

    /// [`acquire`](Limiter::acquire) for a paid broadcast's send: its
    /// global turn comes from the paid bucket (1,000/s while the global
    /// limit is on), its chat's turn as for any message.
    pub(crate) async fn acquire_paid(&self, pace: Pace, chat: Option<ChatId>) {
        self.acquire_as(pace, chat, true).await;
    }

    async fn acquire_as(&self, pace: Pace, chat: Option<ChatId>, paid: bool) {
        let started = Instant::now();
        let mut waited = false;
        match (pace, chat) {
            (Pace::Free, _) => return,
            (Pace::Message, Some(chat)) => {
                // Bound first: a `RefCell` borrow must not live across `.await`.
                let ticket = self.schedule.borrow_mut().reserve_chat(chat, started);
                if let Some(ticket) = ticket {
                    waited |= self.wait(Some(chat), ticket).await;
                }
                let (bucket, ticket) = {
                    let mut schedule = self.schedule.borrow_mut();
                    if paid {
                        (Global::Paid, schedule.reserve_paid(Instant::now()))
                    } else {
                        (Global::Plain, schedule.reserve_global(Instant::now()))
                    }
                };
                waited |= self.wait_global(bucket, ticket).await;
            }
            (_, chat) => {
                if let Some(chat) = chat {
                    let ticket = self.schedule.borrow().unreserved(Some(chat), started);
                    waited |= self.wait(Some(chat), ticket).await;
                }
                let ticket = self.schedule.borrow().unreserved(None, Instant::now());
                waited |= self.wait(None, ticket).await;
            }
        }
        if waited {
            let metrics = &self.metrics;
            bump(&metrics.limit_waits);
            metrics
                .limit_waited
                .set(metrics.limit_waited.get() + started.elapsed());
        }
    }

    /// A 429 with `retry_after` for `chat` (`None`: the whole bot): nothing
    /// for that chat (or nothing at all) goes before now + `retry_after`.
    ///
    /// Waiters keep their order and spacing, moved back together; a
    /// message that already has its chat's turn and waits only for the
    /// global one is not recalled, like a request already on the wire.
    pub(crate) fn penalize(&self, chat: Option<ChatId>, retry_after: Duration) {
        self.schedule
            .borrow_mut()
            .penalize(chat, Instant::now(), retry_after);
    }

    /// Chats with a bucket right now: the busy ones, plus idle ones not yet
    /// swept (at most as many again, or [`PRUNE_AT`] in all).
    pub(crate) fn tracked_chats(&self) -> usize {
        self.schedule.borrow().chats.len()
    }

    /// Waits for `ticket` of `bucket` (`None`: the global one); `true` if
    /// it had to.
    async fn wait(&self, bucket: Option<ChatId>, ticket: Ticket) -> bool {
        let global = match bucket {
            Some(chat) => return self.wait_for(|s| s.due(Some(chat), ticket)).await,
            None => Global::Plain,
        };
        self.wait_global(global, ticket).await
    }

    /// Waits for `ticket` of a global bucket, plain or paid.
    async fn wait_global(&self, bucket: Global, ticket: Ticket) -> bool {
        self.wait_for(|s| match bucket {
            Global::Plain => s.due(None, ticket),
            // A whole-bot 429 holds paid sends too.
            Global::Paid => s.paid.due(ticket).max(s.global.hold),
        })
        .await
    }

    async fn wait_for(&self, due: impl Fn(&Schedule) -> Instant) -> bool {
        let mut waited = false;
        loop {
            // Read afresh after each timer: a 429 may have moved the turn.
            let due = due(&self.schedule.borrow());
            if due <= Instant::now() {
                return waited;
            }
            waited = true;
            async_io::Timer::at(due).await;
        }
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("limits", &self.limits)
            .field("tracked_chats", &self.tracked_chats())
            .finish_non_exhaustive()
    }
}

/// Which global bucket a message takes its turn from.
#[derive(Clone, Copy, Debug)]
enum Global {
    Plain,
    Paid,
}

/// One limit as GCRA sees it: a turn every `interval`, and turns may run up
/// to `tolerance` ahead of that pace (`(burst - 1) × interval`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rule {
    interval: Duration,
    tolerance: Duration,
}

impl Rule {
    const OFF: Rule = Rule {
        interval: Duration::ZERO,
        tolerance: Duration::ZERO,
    };

    /// `count` messages per `period` seconds, `burst` at once; off unless
    /// `count` is positive.
    fn new(count: f64, period: f64, burst: u32) -> Rule {
        if !(count.is_finite() && count > 0.0) {
            return Rule::OFF;
        }
        // Rounded up to the nanosecond: 1/30 s rounded down fits a 31st
        // message into one second.
        let nanos = (period / count * 1e9)
            .ceil()
            .min(MAX_WAIT.as_secs_f64() * 1e9);
        let interval = Duration::from_nanos(nanos as u64);
        let tolerance = interval.saturating_mul(burst.max(1) - 1).min(MAX_WAIT);
        Rule {
            interval,
            tolerance,
        }
    }

    fn is_off(self) -> bool {
        self.interval.is_zero()
    }
}

/// One limit's state: GCRA's theoretical arrival time, and a 429's hold.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// When the bucket is full again. Each turn pushes it one interval on;
    /// the next turn is free once it is at most `tolerance` ahead of now.
    tat: Instant,
    /// Nothing goes before this: the end of the latest 429's `retry_after`.
    hold: Instant,
    /// How far holds have moved the queue back in all, so that a ticket
    /// reserved before a hold is moved by as much.
    shifted: Duration,
}

/// A reserved turn, and the bucket's `shifted` when it was reserved.
#[derive(Clone, Copy, Debug)]
struct Ticket {
    at: Instant,
    shifted: Duration,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            tat: now,
            hold: now,
            shifted: Duration::ZERO,
        }
    }

    /// The next free turn, not reserved.
    fn next(&self, rule: Rule, now: Instant) -> Instant {
        let paced = self.tat.checked_sub(rule.tolerance).unwrap_or(now);
        now.max(paced).max(self.hold)
    }

    fn reserve(&mut self, rule: Rule, now: Instant) -> Ticket {
        let at = self.next(rule, now);
        self.tat = self.tat.max(at) + rule.interval;
        Ticket {
            at,
            shifted: self.shifted,
        }
    }

    /// When `ticket`'s turn is, holds since its reservation included.
    fn due(&self, ticket: Ticket) -> Instant {
        (ticket.at + self.shifted.saturating_sub(ticket.shifted)).max(self.hold)
    }

    /// Nothing before `now + retry_after`. The queue moves back by the part
    /// of that hold not already in force, so a second 429 for the same
    /// flood does not add up; after the hold, turns come at the plain pace
    /// with no burst, since the limit was evidently exceeded.
    fn hold(&mut self, rule: Rule, now: Instant, retry_after: Duration) {
        let until = now + retry_after.min(MAX_WAIT);
        let shift = until.saturating_duration_since(self.hold.max(now));
        self.hold = self.hold.max(until);
        self.shifted += shift;
        self.tat = (self.tat + shift).max(until + rule.tolerance);
    }

    /// Full and not held: a new bucket would behave the same.
    fn is_idle(&self, now: Instant) -> bool {
        self.tat <= now && self.hold <= now
    }
}

/// The limiter's arithmetic, with the clock passed in (tests set it).
#[derive(Debug)]
struct Schedule {
    global_rule: Rule,
    private_rule: Rule,
    group_rule: Rule,
    /// Paid broadcasts' global pace: off when the global limit is off.
    paid_rule: Rule,
    global: Bucket,
    paid: Bucket,
    chats: HashMap<ChatId, Bucket>,
    /// The map size at which idle buckets are swept next.
    prune_at: usize,
}

impl Schedule {
    fn new(limits: RateLimits, now: Instant) -> Schedule {
        Schedule {
            // No global burst: Telegram counts ~30 in any second.
            global_rule: Rule::new(limits.global_per_sec, 1.0, 1),
            private_rule: Rule::new(limits.private_per_sec, 1.0, limits.private_burst),
            group_rule: Rule::new(limits.group_per_min, 60.0, limits.group_burst),
            paid_rule: if limits.global_per_sec > 0.0 {
                Rule::new(PAID_PER_SEC.max(limits.global_per_sec), 1.0, 1)
            } else {
                Rule::OFF
            },
            global: Bucket::new(now),
            paid: Bucket::new(now),
            chats: HashMap::new(),
            prune_at: PRUNE_AT,
        }
    }

    /// Telegram's rule: negative ids are groups, supergroups and channels.
    fn rule(&self, chat: ChatId) -> Rule {
        if chat.0 < 0 {
            self.group_rule
        } else {
            self.private_rule
        }
    }

    /// `chat`'s bucket, made if new; idle ones are swept first when a new
    /// one would take the map past its threshold.
    fn bucket(&mut self, chat: ChatId, now: Instant) -> &mut Bucket {
        if self.chats.len() >= self.prune_at && !self.chats.contains_key(&chat) {
            self.chats.retain(|_, bucket| !bucket.is_idle(now));
            self.prune_at = (self.chats.len() * 2).max(PRUNE_AT);
        }
        self.chats.entry(chat).or_insert_with(|| Bucket::new(now))
    }

    /// Reserves `chat`'s next turn; `None` if its limit is off and no 429
    /// holds it (then it gets no bucket either).
    fn reserve_chat(&mut self, chat: ChatId, now: Instant) -> Option<Ticket> {
        let rule = self.rule(chat);
        if rule.is_off() && !self.chats.contains_key(&chat) {
            return None;
        }
        Some(self.bucket(chat, now).reserve(rule, now))
    }

    fn reserve_global(&mut self, now: Instant) -> Ticket {
        self.global.reserve(self.global_rule, now)
    }

    /// A paid broadcast's global turn: from its own bucket, not before a
    /// whole-bot hold ends.
    fn reserve_paid(&mut self, now: Instant) -> Ticket {
        let now = now.max(self.global.hold);
        self.paid.reserve(self.paid_rule, now)
    }

    /// A turn that takes nothing: due now, or when the hold on `chat`'s
    /// bucket (`None`: the whole bot's) ends.
    fn unreserved(&self, chat: Option<ChatId>, now: Instant) -> Ticket {
        let bucket = match chat {
            None => Some(&self.global),
            Some(chat) => self.chats.get(&chat),
        };
        Ticket {
            at: now,
            shifted: bucket.map_or(Duration::ZERO, |b| b.shifted),
        }
    }

    /// When `ticket` of `chat`'s bucket (`None`: the global one) is due. A
    /// swept bucket was idle, so its tickets were due already.
    fn due(&self, chat: Option<ChatId>, ticket: Ticket) -> Instant {
        match chat {
            None => self.global.due(ticket),
            Some(chat) => self.chats.get(&chat).map_or(ticket.at, |b| b.due(ticket)),
        }
    }

    fn penalize(&mut self, chat: Option<ChatId>, now: Instant, retry_after: Duration) {
        match chat {
            None => self.global.hold(self.global_rule, now, retry_after),
            Some(chat) => {
                let rule = self.rule(chat);
                self.bucket(chat, now).hold(rule, now, retry_after);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use futures_lite::future;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// One message to `chat` asked for at `now`, as `acquire` takes it:
    /// the chat's turn, then the global one reserved when that turn comes.
    fn send(s: &mut Schedule, chat: ChatId, now: Instant) -> Instant {
        let now = match s.reserve_chat(chat, now) {
            Some(ticket) => s.due(Some(chat), ticket).max(now),
            None => now,
        };
        let ticket = s.reserve_global(now);
        s.due(None, ticket)
    }

    /// When each of `n` messages to `chat`, all asked for at `t0`, gets
    /// its chat's turn (offsets from `t0`).
    fn chat_turns(s: &mut Schedule, chat: ChatId, t0: Instant, n: usize) -> Vec<Duration> {
        (0..n)
            .map(|_| {
                let ticket = s.reserve_chat(chat, t0).expect("chat is limited");
                s.due(Some(chat), ticket) - t0
            })
            .collect()
    }

    #[test]
    fn only_telegrams_own_api_gets_the_limits_by_default() {
        for (url, limits) in [
            ("https://api.telegram.org", RateLimits::DEFAULT),
            ("https://api.telegram.org:443/", RateLimits::DEFAULT),
            ("http://127.0.0.1:8081", RateLimits::OFF),
            ("https://api.telegram.org.evil.example", RateLimits::OFF),
        ] {
            assert_eq!(RateLimits::for_api(url), limits, "{url}");
        }
    }

    #[test]
    fn global_pace_is_one_message_every_thirtieth_of_a_second() {
        let t0 = Instant::now();
        let mut s = Schedule::new(RateLimits::DEFAULT, t0);
        let turns: Vec<_> = (1..=31)
            .map(|id| send(&mut s, ChatId(id), t0) - t0)
            .collect();
        let interval = s.global_rule.interval;
        assert_eq!(interval, Duration::from_nanos(33_333_334));
        for (k, turn) in turns.iter().enumerate() {
            assert_eq!(*turn, interval * k as u32, "message {}", k + 1);
        }
        assert_eq!(
            turns
                .iter()
                .filter(|t| **t < Duration::from_secs(1))
                .count(),
            30
        );
    }

    #[test]
    fn private_chat_gets_a_burst_of_3_then_one_per_second_and_refills_when_quiet() {
        let t0 = Instant::now();
        let mut s = Schedule::new(RateLimits::DEFAULT, t0);
        let secs = |v: &[u64]| v.iter().map(|n| ms(n * 1000)).collect::<Vec<_>>();
        assert_eq!(
            chat_turns(&mut s, ChatId(7), t0, 6),
            secs(&[0, 0, 0, 1, 2, 3])
        );
        // The last turn was at +3 s: three seconds later the burst is back.
        let later = t0 + ms(6000);
        assert_eq!(chat_turns(&mut s, ChatId(7), later, 4), secs(&[0, 0, 0, 1]));
    }

    #[test]
    fn group_gets_a_burst_of_3_then_one_every_3_seconds() {
        let t0 = Instant::now();
        let mut s = Schedule::new(RateLimits::DEFAULT, t0);
        let turns = chat_turns(&mut s, ChatId(-100), t0, 30);
        let secs = |v: &[u64]| v.iter().map(|n| ms(n * 1000)).collect::<Vec<_>>();
        assert_eq!(turns[..6], secs(&[0, 0, 0, 3, 6, 9]));
        // 20 a minute, and the burst on top once.
        let first_minute = turns.iter().filter(|t| **t < ms(60_000)).count();
        assert_eq!(first_minute, 20 + 3 - 1);
    }

    #[test]
    fn a_flood_to_one_chat_delays_another_by_the_global_pace_only() {
        let t0 = Instant::now();
        let mut s = Schedule::new(RateLimits::DEFAULT, t0);
        let flood = chat_turns(&mut s, ChatId(1), t0, 1000);
        assert_eq!(flood[999], ms(997_000));
        // Only the flood's burst has come, so only it holds global turns.
        for _ in flood.iter().filter(|t| t.is_zero()) {
            s.reserve_global(t0);
        }
        let interval = s.global_rule.interval;
        assert_eq!(send(&mut s, ChatId(2), t0) - t0, interval * 3);
        assert_eq!(send(&mut s, ChatId(-5), t0) - t0, interval * 4);
    }

    #[test]
    fn a_429_holds_its_chat_and_keeps_the_queue_in_order() {
        let t0 = Instant::now();
        let mut s = Schedule::new(RateLimits::DEFAULT, t0);
        let tickets: Vec<_> = (0..5)
            .map(|_| s.reserve_chat(ChatId(7), t0).unwrap())
            .collect();
        s.penalize(Some(ChatId(7)), t0 + ms(500), ms(10_000));
        let due = |s: &Schedule, t| s.due(Some(ChatId(7)), t) - t0;
        // Waiting ones move back together, spacing kept; nothing before +10.5 s.
        assert_eq!(due(&s, tickets[3]), ms(11_000));
        assert_eq!(due(&s, tickets[4]), ms(12_000));
        let after = s.reserve_chat(ChatId(7), t0 + ms(500)).unwrap();
        assert_eq!(due(&s, after), ms(13_000));
        // A second 429 for the same flood only adds what goes past the first.
        s.penalize(Some(ChatId(7)), t0 + ms(600), ms(10_000));
        assert_eq!(due(&s, tickets[3]), ms(11_100));
        assert_eq!(due(&s, after), ms(13_100));
        // Other chats are not held.
        assert_eq!(send(&mut s, ChatId(8), t0 + ms(500)) - t0, ms(500));
    }

    #[test]
    fn a_whole_bot_429_holds_every_chat_and_chatless_calls() {
        let t0 = Instant::now();
        let mut s = Schedule::new(RateLimits::DEFAULT, t0);
        s.penalize(None, t0, ms(5000));
        assert_eq!(send(&mut s, ChatId(9), t0) - t0, ms(5000));
        assert_eq!(s.due(None, s.unreserved(None, t0)) - t0, ms(5000));
        assert_eq!(
            s.due(None, s.unreserved(None, t0 + ms(5000))) - t0,
            ms(5000)
        );
    }

    #[test]
    fn limits_off_never_wait_and_track_nothing_but_a_429_still_holds() {
        let t0 = Instant::now();
        let mut s = Schedule::new(RateLimits::OFF, t0);
        for chat in [ChatId(1), ChatId(-1)] {
            for _ in 0..1000 {
                assert_eq!(send(&mut s, chat, t0), t0);
            }
        }
        assert!(s.chats.is_empty());
        s.penalize(Some(ChatId(1)), t0, ms(2000));
        assert_eq!(send(&mut s, ChatId(2), t0), t0);
        assert_eq!(send(&mut s, ChatId(1), t0) - t0, ms(2000));
    }

    #[test]
    fn paid_sends_go_at_1000_a_second_beside_the_plain_pace() {
        let t0 = Instant::now();
        let mut s = Schedule::new(RateLimits::DEFAULT, t0);
        let paid: Vec<_> = (0..100).map(|_| s.reserve_paid(t0).at - t0).collect();
        assert_eq!(paid[99], Duration::from_millis(99), "{paid:?}");
        // The plain pace does not wait for the paid sends, nor they for it.
        assert_eq!(s.reserve_global(t0).at, t0);
        s.penalize(None, t0, ms(2000));
        assert_eq!(
            s.reserve_paid(t0).at - t0,
            ms(2000),
            "a whole-bot 429 holds them"
        );
        let off = Schedule::new(RateLimits::OFF, t0);
        assert!(off.paid_rule.is_off());
    }

    #[test]
    fn idle_buckets_are_swept_once_the_map_has_grown() {
        let t0 = Instant::now();
        let mut s = Schedule::new(RateLimits::DEFAULT, t0);
        for id in 0..PRUNE_AT as i64 {
            s.reserve_chat(ChatId(id), t0);
        }
        // All busy (full again only at +1 s): a sweep keeps them all.
        s.reserve_chat(ChatId(-1), t0 + ms(500));
        assert_eq!(s.chats.len(), PRUNE_AT + 1);
        assert_eq!(s.prune_at, 2 * PRUNE_AT);
        // Ten seconds on they are idle: the map grows to its new threshold,
        // then the next new chat sweeps them and only the new busy ones stay.
        let later = t0 + ms(10_000);
        let fresh = PRUNE_AT as i64 + 10;
        for id in 0..fresh {
            s.reserve_chat(ChatId(1_000_000 + id), later);
            assert!(s.chats.len() <= 2 * PRUNE_AT);
        }
        assert_eq!(s.chats.len(), fresh as usize);
    }

    #[test]
    fn acquire_waits_its_turn_without_holding_up_other_chats() {
        let limits = RateLimits {
            private_burst: 1,
            ..RateLimits::DEFAULT
        };
        let metrics = Rc::new(Metrics::default());
        let limiter = Rc::new(Limiter::new(limits, Rc::clone(&metrics)));
        let done = Rc::new(RefCell::new(Vec::new()));
        let rt = crate::Runtime::new();
        let started = Instant::now();
        let tasks: Vec<_> = [("a1", 1), ("a2", 1), ("b", 2)]
            .into_iter()
            .map(|(name, chat)| {
                let (limiter, done) = (Rc::clone(&limiter), Rc::clone(&done));
                rt.spawn(async move {
                    limiter.acquire(Pace::Message, Some(ChatId(chat))).await;
                    done.borrow_mut().push((name, started.elapsed()));
                })
            })
            .collect();
        let all = async {
            for task in tasks {
                task.await;
            }
        };
        let deadline = async {
            async_io::Timer::after(Duration::from_secs(5)).await;
            panic!("three acquires not done within 5 s");
        };
        rt.block_on(future::or(all, deadline)).unwrap();
        let done = done.borrow();
        let order: Vec<_> = done.iter().map(|(name, _)| *name).collect();
        assert_eq!(order, ["a1", "b", "a2"], "{done:?}");
        assert!(done[1].1 < ms(500), "b waited for chat 1: {done:?}");
        assert!(
            done[2].1 >= ms(1000),
            "a2 went before chat 1's turn: {done:?}"
        );
        let (waits, total) = (metrics.limit_waits.get(), metrics.limit_waited.get());
        assert_eq!(waits, 2, "b for the global pace, a2 for its chat");
        assert!(total >= ms(1000), "{total:?}");
    }

    #[test]
    fn methods_are_paced_by_one_table() {
        for method in ["sendMessage", "sendPhoto", "sendMediaGroup", "copyMessages"] {
            assert_eq!(Pace::of(method), Pace::Message, "{method}");
        }
        assert_eq!(Pace::of("sendChatAction"), Pace::Held, "see: #10");
        assert_eq!(Pace::of("editMessageText"), Pace::Held);
        assert_eq!(Pace::of("stopPoll"), Pace::Held);
        assert_eq!(Pace::of("getMe"), Pace::Free);
        assert_eq!(Pace::of("answerCallbackQuery"), Pace::Free);
        // Names the table lacks go by their verb; names are exact.
        assert_eq!(Pace::of("sendTelepathy"), Pace::Message);
        assert_eq!(Pace::of("editTelepathy"), Pace::Held);
        assert_eq!(Pace::of("getTelepathy"), Pace::Free);
        assert_eq!(Pace::of("SendMessage"), Pace::Free);
    }

    /// The methods the hand-written table before #12 did not pace, and why
    /// the generated one does.
    #[test]
    fn methods_newly_paced_by_the_table_are_decided() {
        let decided = [
            // Each posts a new message in the chat, which Telegram's flood limits count.
            ("sendLivePhoto", Pace::Message),
            ("sendChecklist", Pace::Message),
            ("sendRichMessage", Pace::Message),
            // A gift appears in the chat as a service message.
            ("sendGift", Pace::Message),
            // Edits of a message already shown: no turn, but held by a 429.
            ("editMessageChecklist", Pace::Held),
            ("editEphemeralMessageText", Pace::Held),
            ("editEphemeralMessageMedia", Pace::Held),
            ("editEphemeralMessageCaption", Pace::Held),
            ("editEphemeralMessageReplyMarkup", Pace::Held),
            // Changes the game message's score line, an edit.
            ("setGameScore", Pace::Held),
            // Streamed drafts update one pending message, like a chat action.
            ("sendMessageDraft", Pace::Held),
            ("sendRichMessageDraft", Pace::Held),
        ];
        for (method, pace) in decided {
            assert_eq!(Pace::of(method), pace, "{method}");
        }
    }

    #[test]
    fn a_held_call_takes_no_turn_but_waits_out_its_chats_429() {
        let t0 = Instant::now();
        let mut s = Schedule::new(RateLimits::DEFAULT, t0);
        s.penalize(Some(ChatId(5)), t0, ms(3000));
        assert_eq!(
            s.due(Some(ChatId(5)), s.unreserved(Some(ChatId(5)), t0)) - t0,
            ms(3000)
        );
        assert_eq!(
            s.due(Some(ChatId(6)), s.unreserved(Some(ChatId(6)), t0)),
            t0
        );
        // No turn taken: chat 6's first message still goes at once.
        let first = s.reserve_chat(ChatId(6), t0).unwrap();
        assert_eq!(s.due(Some(ChatId(6)), first), t0);
    }
}
