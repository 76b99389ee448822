//! The due queue: which job runs next, its runs, and what the store keeps
//! of them.
//!
//! One loop waits on one timer, for the earliest due job, and on an event
//! that a new or changed job notifies; 1,000 jobs cost no more wake-ups
//! than one. A due job runs as its own task, within its timeout, a panic
//! caught; a job never runs twice at once (a run that outlasts its interval
//! delays the next). When a run ends, its next due time is computed from
//! the one it was due at (so runs do not drift) and stored.
//!
//! What the store holds, under keys no [`State`] type can take (`@`):
//! `@jobs`, the ids of the jobs made at run time; `@job:<id>`, each one's
//! record (its type, schedule, data and next due time). A job in code has a
//! record too (`@job:<name>`), for its next due time only, so a run missed
//! while the bot was down is noticed at the next start.
//!
//! A run is at least once: its next due time is stored when it ends, so a
//! run that a SIGKILL cuts short is run again at the next start.
//!
//! Must not: poll (the only timer is the earliest due job's, and the clock
//! looks again at most hourly), or start a run once the stop is asked for.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_executor::Task;
use event_listener::Event;
use futures_lite::future;
use futures_lite::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Clock, Ids, Job, JobContext, JobDef, JobId, JobOptions, Jobs, Kind, Misfire, Runner, Schedule,
};
use crate::api::retry::Backoff;
use crate::api::Client;
use crate::logger::panic_message;
use crate::metrics::{bump, Metrics};
use crate::state::{States, Written};
use crate::{wait, Error, HandlerResult, Runtime, Shutdown};

/// Lateness that is not a miss: a run this late (a busy thread, a restart
/// of a few seconds) still runs under [`Misfire::Skip`].
const GRACE: Duration = Duration::from_secs(5);
/// The key of the index of jobs made at run time.
const INDEX: &str = "@jobs";

/// A job as the scheduler holds it.
struct Entry {
    /// The job type's name, or a job in code's name.
    kind: String,
    schedule: Schedule,
    options: JobOptions,
    /// A job made at run time: its data, and it is in the index.
    data: Option<Value>,
    /// The next run; `None`: no more (a one-shot job that ran).
    due: Option<SystemTime>,
    running: bool,
    /// `None`: a stored job whose type this build has no handler for; it
    /// stays stored and does not run.
    runner: Option<Runner>,
}

/// What the store keeps of a job.
#[derive(Serialize, Deserialize)]
struct Record {
    kind: String,
    schedule: Schedule,
    #[serde(default)]
    misfire: Misfire,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    /// Milliseconds since the epoch; `None`: no more runs.
    due_ms: Option<u64>,
}

/// The due queue and the job types: one per run.
pub(crate) struct Scheduler {
    clock: Clock,
    kinds: HashMap<String, Kind>,
    defs: Vec<JobDef>,
    entries: RefCell<HashMap<JobId, Entry>>,
    /// Set once the stored jobs are read; adds wait for it, so an index
    /// written before would not drop them.
    loaded: Cell<bool>,
    /// A job was added, changed, or finished a run; or the jobs were loaded.
    changed: Event,
    ids: Ids,
    default_timeout: Duration,
    metrics: Rc<Metrics>,
}

impl Scheduler {
    /// A scheduler of the bot's jobs in code and job types, by `clock`.
    pub(crate) fn new(
        defs: Vec<JobDef>,
        kinds: HashMap<String, Kind>,
        clock: Clock,
        default_timeout: Duration,
        metrics: Rc<Metrics>,
    ) -> Scheduler {
        let ids = Ids::new(millis(clock.now()).unwrap_or_default());
        Scheduler {
            clock,
            kinds,
            defs,
            entries: RefCell::default(),
            loaded: Cell::new(false),
            changed: Event::new(),
            ids,
            default_timeout,
            metrics,
        }
    }

    /// Whether the bot has jobs at all: jobs in code or job types. A bot
    /// without never reads the store for them.
    fn is_used(&self) -> bool {
        !self.defs.is_empty() || !self.kinds.is_empty()
    }

    /// The time now, by the run's clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Adds a job of `data` on `schedule`, stored for `written`'s update;
    /// in a run of an update that already added it, only says its id.
    pub(crate) async fn add<J: Job>(
        &self,
        states: &States,
        written: &Written,
        schedule: Schedule,
        data: &J,
    ) -> Result<JobId, Error> {
        let Some(kind) = self.kinds.get(J::NAME) else {
            return Err(Error::Config(format!(
                "no handler for jobs of type `{}`: add one with Bot::on_job",
                J::NAME
            )));
        };
        let data = serde_json::to_value(data).map_err(|e| {
            Error::Config(format!(
                "job data of type `{}` does not encode: {e}",
                J::NAME
            ))
        })?;
        wait::until(&self.changed, || self.loaded.get()).await;
        let now = self.clock.now();
        // An instant just past (a delay of zero) is due now, not never.
        let first = match schedule {
            Schedule::Once(at) => Some(at),
            _ => schedule.next_after(now),
        };
        let Some(due) = first else {
            return Err(Error::Config(format!(
                "schedule `{schedule}` has no run after now"
            )));
        };
        let id = JobId(self.ids.next(J::NAME, written));
        if self.entries.borrow().contains_key(&id) {
            // An earlier run of this update made it; its index is stored
            // again, in case that run failed on it.
            self.store_index(states, written).await?;
            log::info!("job already scheduled id={id}; the update that makes it ran again");
            return Ok(id);
        }
        let entry = Entry {
            kind: J::NAME.to_owned(),
            schedule,
            options: kind.options,
            data: Some(data),
            due: Some(due),
            running: false,
            runner: Some(Rc::clone(&kind.runner)),
        };
        self.store(states, written, &id, &entry).await?;
        self.entries.borrow_mut().insert(id.clone(), entry);
        self.store_index(states, written).await?;
        self.changed.notify(usize::MAX);
        log::info!("job scheduled id={id} due={}", Stamp(due));
        Ok(id)
    }

    /// Cancels `id`: it runs no more (a run going on finishes).
    pub(crate) async fn cancel(
        &self,
        states: &States,
        written: &Written,
        id: &JobId,
    ) -> Result<bool, Error> {
        wait::until(&self.changed, || self.loaded.get()).await;
        let removed = {
            let mut entries = self.entries.borrow_mut();
            match entries.get(id) {
                Some(entry) if entry.data.is_some() => entries.remove(id).is_some(),
                _ => false,
            }
        };
        if removed {
            self.store_index(states, written).await?;
            states.put(&key(id), None, None, written).await?;
            self.changed.notify(usize::MAX);
            log::info!("job cancelled id={id}");
        }
        Ok(removed)
    }

    /// Reads the stored jobs, and the due times of the jobs in code.
    async fn load(&self, states: &States) -> Result<(), Error> {
        let written = Written::default();
        let now = self.clock.now();
        let mut entries = HashMap::new();
        for def in &self.defs {
            let id = JobId(def.name.clone());
            let stored = states.get_json::<Record>(&key(&id), &written).await?;
            // A record of another schedule (the code changed) is not this job's.
            let due = match stored {
                Some(r) if r.schedule == def.schedule => r.due_ms.map(from_millis),
                _ => def.schedule.next_after(now),
            };
            let entry = Entry {
                kind: def.name.clone(),
                schedule: def.schedule.clone(),
                options: def.options,
                data: None,
                due,
                running: false,
                runner: Some(Rc::clone(&def.runner)),
            };
            entries.insert(id, entry);
        }
        let ids = states
            .get_json::<Vec<JobId>>(INDEX, &written)
            .await?
            .unwrap_or_default();
        for id in ids {
            let Some(r) = states.get_json::<Record>(&key(&id), &written).await? else {
                continue;
            };
            let kind = self.kinds.get(&r.kind);
            if kind.is_none() {
                log::warn!(
                    "job id={id} is of type `{}`, which this bot has no handler for; it is kept and does not run",
                    r.kind
                );
            }
            let options = JobOptions {
                misfire: r.misfire,
                timeout: r.timeout_ms.map(Duration::from_millis),
            };
            let entry = Entry {
                kind: r.kind,
                schedule: r.schedule,
                options,
                data: Some(r.data.unwrap_or(Value::Null)),
                due: r.due_ms.map(from_millis),
                running: false,
                runner: kind.map(|k| Rc::clone(&k.runner)),
            };
            entries.insert(id, entry);
        }
        for (id, entry) in &mut entries {
            let Some(due) = entry.due else { continue };
            if due + GRACE >= now {
                continue;
            }
            entry.due = match entry.options.misfire {
                Misfire::RunOnce => Some(due),
                Misfire::Skip => first_after(&entry.schedule, due, now),
            };
            log::info!(
                "job id={id} missed its run at {} while the bot was down; misfire={}",
                Stamp(due),
                match entry.options.misfire {
                    Misfire::RunOnce => "run_once: runs now",
                    Misfire::Skip => "skip",
                }
            );
        }
        *self.entries.borrow_mut() = entries;
        self.count_scheduled();
        Ok(())
    }

    /// The jobs whose time has come, marked running, with what their runs need.
    fn take_due(
        &self,
        now: SystemTime,
    ) -> Vec<(JobId, SystemTime, Runner, Option<Value>, Duration)> {
        let mut due = Vec::new();
        for (id, entry) in self.entries.borrow_mut().iter_mut() {
            let (Some(at), Some(runner), false) = (entry.due, &entry.runner, entry.running) else {
                continue;
            };
            if at > now {
                continue;
            }
            entry.running = true;
            let timeout = entry.options.timeout.unwrap_or(self.default_timeout);
            due.push((
                id.clone(),
                at,
                Rc::clone(runner),
                entry.data.clone(),
                timeout,
            ));
        }
        due
    }

    /// The earliest due time of a job that is not running.
    fn next_due(&self) -> Option<SystemTime> {
        self.entries
            .borrow()
            .values()
            .filter(|e| !e.running && e.runner.is_some())
            .filter_map(|e| e.due)
            .min()
    }

    fn running(&self) -> usize {
        self.entries.borrow().values().filter(|e| e.running).count()
    }

    /// After the run of `id` that was due at `was_due`: its next due time,
    /// stored (a finished one-shot job made at run time is removed).
    async fn finished(
        &self,
        states: &States,
        id: &JobId,
        was_due: SystemTime,
        started: SystemTime,
    ) {
        let now = self.clock.now();
        let written = Written::default();
        let (record, remove) = {
            let mut entries = self.entries.borrow_mut();
            let Some(entry) = entries.get_mut(id) else {
                // Cancelled while it ran.
                return;
            };
            entry.running = false;
            entry.due = next_run(
                &entry.schedule,
                entry.options.misfire,
                was_due,
                started,
                now,
            );
            (entry.record(), entry.due.is_none() && entry.data.is_some())
        };
        let stored = if remove {
            self.entries.borrow_mut().remove(id);
            match self.store_index(states, &written).await {
                Ok(()) => states.put(&key(id), None, None, &written).await,
                Err(e) => Err(e),
            }
        } else {
            states.put_json(&key(id), &record, None, &written).await
        };
        if let Err(e) = stored {
            log::warn!("job id={id}: its next run could not be stored error={e}; after a restart it may run again");
        }
        self.count_scheduled();
        self.changed.notify(usize::MAX);
    }

    async fn store(
        &self,
        states: &States,
        written: &Written,
        id: &JobId,
        entry: &Entry,
    ) -> Result<(), Error> {
        states
            .put_json(&key(id), &entry.record(), None, written)
            .await
    }

    async fn store_index(&self, states: &States, written: &Written) -> Result<(), Error> {
        let ids: BTreeSet<JobId> = self
            .entries
            .borrow()
            .iter()
            .filter(|(_, e)| e.data.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        self.count_scheduled();
        states.put_json(INDEX, &ids, None, written).await
    }

    fn count_scheduled(&self) {
        let n = self
            .entries
            .borrow()
            .values()
            .filter(|e| e.due.is_some())
            .count();
        self.metrics.jobs_scheduled.set(n as u64);
    }
}

impl Entry {
    fn record(&self) -> Record {
        Record {
            kind: self.kind.clone(),
            schedule: self.schedule.clone(),
            misfire: self.options.misfire,
            timeout_ms: self.options.timeout.map(|t| t.as_millis() as u64),
            data: self.data.clone(),
            due_ms: self.due.and_then(millis),
        }
    }
}

/// The next due time after a run due at `was_due` that started at
/// `started` and ended at `now`. Runs due before it started were its own
/// (caught up in one); one that fell due while it ran (it outlasted its
/// interval) runs now, or is skipped, as `misfire` says.
fn next_run(
    schedule: &Schedule,
    misfire: Misfire,
    was_due: SystemTime,
    started: SystemTime,
    now: SystemTime,
) -> Option<SystemTime> {
    let next = first_after(schedule, was_due, started.max(was_due))?;
    if next + GRACE >= now {
        return Some(next);
    }
    match misfire {
        Misfire::RunOnce => Some(now),
        Misfire::Skip => first_after(schedule, was_due, now),
    }
}

/// The schedule's first fire time after `t`; an interval counts from
/// `anchor` (a due time of the job), so that its runs keep their phase
/// however many were missed.
fn first_after(schedule: &Schedule, anchor: SystemTime, t: SystemTime) -> Option<SystemTime> {
    match schedule {
        Schedule::Every(interval) if !interval.is_zero() && t >= anchor => {
            let gone = t.duration_since(anchor).unwrap_or_default().as_nanos();
            let steps = u32::try_from(gone / interval.as_nanos() + 1).ok()?;
            anchor.checked_add(interval.checked_mul(steps)?)
        }
        _ => schedule.next_after(t),
    }
}

/// Runs the jobs of `jobs` until `shutdown`, then lets the running ones
/// finish within `drain`: the scheduler's one task.
pub(crate) async fn run(
    jobs: Rc<Jobs>,
    rt: &Runtime,
    client: Client,
    states: Rc<States>,
    shutdown: Shutdown,
    drain: Duration,
) {
    let scheduler = &jobs.scheduler;
    if !scheduler.is_used() {
        return;
    }
    let mut backoff = Backoff::transient();
    let mut failing = false;
    loop {
        match scheduler.load(&states).await {
            Ok(()) => break,
            Err(e) => {
                if !failing {
                    log::warn!("jobs could not be read from the store error={e}; trying again");
                    failing = true;
                }
                if !shutdown.sleep(backoff.next()).await {
                    return;
                }
            }
        }
    }
    scheduler.loaded.set(true);
    scheduler.changed.notify(usize::MAX);
    let mut runs: Vec<Task<()>> = Vec::new();
    loop {
        let changed = scheduler.changed.listen();
        runs.retain(|task| !task.is_finished());
        for (id, due, runner, data, timeout) in scheduler.take_due(scheduler.clock.now()) {
            let ctx = JobContext::new(
                id.clone(),
                due,
                client.clone(),
                Rc::clone(&jobs),
                Rc::clone(&states),
            );
            let (jobs, states) = (Rc::clone(&jobs), Rc::clone(&states));
            runs.push(rt.spawn(async move {
                let started = jobs.scheduler.clock.now();
                let run = AssertUnwindSafe(runner(ctx, data)).catch_unwind();
                let outcome = wait::within(timeout, run).await;
                // Counted once its next run is set: a test that waits for
                // the count may move the clock.
                jobs.scheduler.finished(&states, &id, due, started).await;
                report(&jobs.scheduler.metrics, &id, timeout, outcome);
            }));
        }
        let next = scheduler.next_due();
        let woken = async {
            match next {
                Some(at) => scheduler.clock.sleep_until(at).await,
                None => future::pending().await,
            }
        };
        if shutdown.race(future::or(woken, changed)).await.is_none() {
            break;
        }
    }
    let running = scheduler.running();
    if running > 0 {
        log::info!("draining jobs={running} deadline={drain:?}");
        let finished = wait::within(
            drain,
            wait::until(&scheduler.changed, || scheduler.running() == 0),
        );
        if finished.await.is_none() {
            log::warn!(
                "drain deadline passed jobs={}; cancelled, they run again at the next start",
                scheduler.running()
            );
        }
    }
}

/// Logs and counts how a run ended.
fn report(
    metrics: &Metrics,
    id: &JobId,
    timeout: Duration,
    outcome: Option<Result<HandlerResult, Box<dyn std::any::Any + Send>>>,
) {
    let runs = &metrics.job_runs;
    match outcome {
        Some(Ok(Ok(()))) => bump(&runs[0]),
        Some(Ok(Err(e))) => {
            log::warn!("job failed id={id} error={e}");
            bump(&runs[1]);
        }
        Some(Err(panic)) => {
            let message = panic_message(&*panic);
            log::error!("job panicked id={id} panic={message:?}; its next run still comes");
            bump(&runs[2]);
        }
        None => {
            log::warn!("job timed out id={id} after={timeout:?}; abandoned");
            bump(&runs[3]);
        }
    }
}

/// The key of a job's record.
fn key(id: &JobId) -> String {
    format!("@job:{id}")
}

fn millis(t: SystemTime) -> Option<u64> {
    let since = t.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// An instant in logs: RFC 3339 in UTC, through the schedule's own text.
struct Stamp(SystemTime);

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = Schedule::Once(self.0).to_string();
        f.write_str(text.strip_prefix("at ").unwrap_or(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> SystemTime {
        match Schedule::parse(&format!("at {s}")).unwrap() {
            Schedule::Once(at) => at,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_run_that_ends_in_time_keeps_to_the_schedule() {
        let every = Schedule::parse("every 10m").unwrap();
        let due = t("2026-12-01T09:00:00Z");
        let next = next_run(&every, Misfire::Skip, due, due, t("2026-12-01T09:03:00Z"));
        assert_eq!(next, Some(t("2026-12-01T09:10:00Z")));
    }

    #[test]
    fn a_run_that_outlasts_its_interval_catches_up_once_or_skips() {
        let every = Schedule::parse("every 10m").unwrap();
        let due = t("2026-12-01T09:00:00Z");
        let late = t("2026-12-01T09:25:00Z");
        assert_eq!(
            next_run(&every, Misfire::RunOnce, due, due, late),
            Some(late)
        );
        assert_eq!(
            next_run(&every, Misfire::Skip, due, due, late),
            Some(t("2026-12-01T09:30:00Z"))
        );
        let once = Schedule::Once(due);
        assert_eq!(next_run(&once, Misfire::RunOnce, due, due, late), None);
    }

    #[test]
    fn a_catch_up_run_stands_for_every_run_missed_before_it_started() {
        let every = Schedule::parse("every 1h").unwrap();
        let due = t("2026-12-01T09:00:00Z");
        // Down from 08:30 to 14:20: the 09:00 run catches up at 14:20, and
        // covers 10:00 to 14:00; the next is 15:00, in phase.
        let started = t("2026-12-01T14:20:00Z");
        let ended = t("2026-12-01T14:20:01Z");
        for misfire in [Misfire::RunOnce, Misfire::Skip] {
            assert_eq!(
                next_run(&every, misfire, due, started, ended),
                Some(t("2026-12-01T15:00:00Z"))
            );
        }
        let daily = Schedule::parse("cron 0 8 * * *").unwrap();
        assert_eq!(
            next_run(&daily, Misfire::RunOnce, due, started, ended),
            Some(t("2026-12-02T08:00:00Z"))
        );
    }

    #[test]
    fn stamps_are_utc() {
        assert_eq!(
            Stamp(t("2026-12-01T09:00:00+01:00")).to_string(),
            "2026-12-01T08:00:00Z"
        );
    }
}
