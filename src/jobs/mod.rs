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

use std::collections::HashMap;

use std::rc::Rc;

pub(crate) use broadcast::{Broadcasts, Builder};
pub(crate) use job::{JobDef, Kind, Runner};
pub(crate) use scheduler::Scheduler;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::Bot;

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
