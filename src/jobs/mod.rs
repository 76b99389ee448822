//! Scheduled jobs and broadcasts (#16): work that an update did not ask
//! for just now, run on the executor beside the handlers.
//!
//! - A job in code ([`Bot::job`](crate::Bot::job)) runs on a [`Schedule`]:
//!   every interval, at an instant, or on a cron spec in a time zone.
//! - A job made at run time ([`Context::schedule`](crate::Context::schedule),
//!   "remind me in 10 minutes") carries data of a [`Job`] type, is kept in
//!   the state store and survives restarts; [`Bot::on_job`](crate::Bot::on_job)
//!   says what runs it.
//! - A [`Broadcast`] sends one message (or one built per chat) to a list of
//!   chats within Telegram's limits, its progress kept in the store.
//!
//! Here: the shared run-time (`Jobs`, one per run). `schedule`: when a
//! job fires (pure arithmetic). `clock`: the time they run by, the
//! system's or a test's. `job`: what a job is (its data type, id, misfire
//! policy). `register`: the job calls of `Bot` and `Context`. `context`:
//! [`JobContext`], what a job's handler gets. `scheduler`: the due queue,
//! the runs and their persistence. `broadcast`: the broadcasts.
//!
//! Must not: block the thread, or keep a timer per job (one timer waits for
//! the earliest due job, whatever their number).

pub(crate) mod broadcast;
mod clock;
mod context;
mod job;
#[cfg(feature = "jobs")]
mod register;
mod schedule;
pub(crate) mod scheduler;

pub use broadcast::{Broadcast, BroadcastId, Failure, Progress, Reason};
pub use clock::{Clock, ManualClock};
pub use context::JobContext;
pub use job::{Job, JobId, JobOptions, Misfire};
pub use schedule::{Cron, Schedule, ScheduleError, Zone};

use std::cell::Cell;
use std::collections::HashMap;

use std::rc::Rc;

pub(crate) use broadcast::{Broadcasts, Builder};
pub(crate) use job::{JobDef, Kind, Runner};
pub(crate) use scheduler::Scheduler;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::state::Written;
use crate::Bot;

/// The ids of the jobs and broadcasts a run makes, `{prefix}#…`: in an
/// update's run, named after the update, the same in every run of it (see
/// `Written::next_made`); elsewhere (a job's run) unique within this run of
/// the bot: its start time and a count.
pub(crate) struct Ids {
    started_ms: u64,
    made: Cell<u64>,
}

impl Ids {
    /// Ids for a run of the bot that started at `started_ms`.
    pub(crate) fn new(started_ms: u64) -> Ids {
        Ids {
            started_ms,
            made: Cell::new(0),
        }
    }

    /// The next id of `prefix` made for `written`'s run.
    pub(crate) fn next(&self, prefix: &str, written: &Written) -> String {
        if let Some(made) = written.next_made() {
            return format!("{prefix}#{made}");
        }
        self.made.set(self.made.get() + 1);
        format!("{prefix}#{}-{}", base36(self.started_ms), self.made.get())
    }
}

fn base36(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// What a [`Bot`](crate::Bot) holds of jobs: its jobs in code, its job
/// types' handlers and its broadcasts' builders.
#[derive(Clone, Default)]
pub(crate) struct Table {
    pub(crate) defs: Vec<JobDef>,
    pub(crate) kinds: HashMap<String, Kind>,
    pub(crate) builders: HashMap<String, Builder>,
}

/// The run's jobs and broadcasts, shared (as `Rc<Jobs>`) by every
/// [`Context`](crate::Context) and [`JobContext`].
pub(crate) struct Jobs {
    pub(crate) scheduler: Scheduler,
    pub(crate) broadcasts: Broadcasts,
}

impl Jobs {
    /// The jobs and broadcasts of `bot`, for one run by `config`.
    pub(crate) fn new(bot: &Bot, config: &Config, metrics: Rc<Metrics>) -> Jobs {
        let table = bot.jobs.clone();
        Jobs {
            scheduler: Scheduler::new(
                table.defs,
                table.kinds,
                config.clock.clone(),
                config.handler_timeout,
                Rc::clone(&metrics),
            ),
            broadcasts: Broadcasts::new(table.builders, metrics),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_outside_an_update_are_short_and_unique_within_the_run() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(36 * 36 + 35), "10z");
        let ids = Ids::new(36 * 36 + 35);
        let job_run = Written::default();
        assert_eq!(ids.next("bc", &job_run), "bc#10z-1");
        assert_eq!(ids.next("remind", &job_run), "remind#10z-2");
    }
}
