//! Scheduled jobs (#16). So far only their schedules: when a job fires,
//! as pure arithmetic on [`SystemTime`](std::time::SystemTime)s.
//!
//! The rest of #16 (the jobs themselves, their timers on the executor and
//! their persistence) is to come; it will use [`Schedule::next_after`] and
//! store a [`Schedule`] as its canonical text.

mod schedule;

pub use schedule::{Cron, Schedule, ScheduleError, Zone};
