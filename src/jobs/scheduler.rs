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
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_executor::Task;
use event_listener::Event;
use futures_lite::future::{self, BoxedLocal};
use futures_lite::FutureExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Clock, Jobs, Schedule};
use crate::api::generated::methods::SendMessage;
use crate::api::generated::Method;
use crate::api::retry::Backoff;
use crate::api::types::{ChatId, Message, UserId};
use crate::api::Client;
use crate::logger::panic_message;
use crate::metrics::{bump, Metrics};
use crate::state::{State, States, Written};
use crate::{wait, Error, HandlerResult, Runtime, Shutdown};

/// Lateness that is not a miss: a run this late (a busy thread, a restart
/// of a few seconds) still runs under [`Misfire::Skip`].
const GRACE: Duration = Duration::from_secs(5);
/// The key of the index of jobs made at run time.
const INDEX: &str = "@jobs";

/// A type of data that jobs made at run time carry: a reminder's chat and
/// text, say. [`Bot::on_job`](crate::Bot::on_job) gives its handler,
/// [`Context::schedule`](crate::Context::schedule) makes a job of it.
///
/// It is stored as JSON with the job, so keep [`NAME`](Job::NAME) (and
/// the JSON) across versions; a job whose data no longer decodes fails
/// its run, logged.
///
/// # Examples
/// ```
/// use serde::{Deserialize, Serialize};
/// use smolgram::jobs::{Job, Misfire};
///
/// #[derive(Serialize, Deserialize)]
/// struct Remind {
///     chat: i64,
///     text: String,
/// }
///
/// impl Job for Remind {
///     const NAME: &'static str = "remind";
///     // A reminder missed while the bot was down still comes (the default).
///     const MISFIRE: Misfire = Misfire::RunOnce;
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + 'static {
    /// The type's name in the store: unique among the bot's job types.
    const NAME: &'static str;
    /// What a run missed while the bot was down (or too busy) becomes.
    const MISFIRE: Misfire = Misfire::RunOnce;
    /// How long a run may take; `None`: the handler timeout (60 s).
    const TIMEOUT: Option<Duration> = None;
}

/// What becomes of runs whose time passed while the bot was not running
/// (or a run still going when the next was due).
///
/// The default is [`RunOnce`](Misfire::RunOnce): a reminder that fell due
/// during a restart should still come, late rather than never, and a daily
/// digest missed for a week should come once, not seven times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// However many runs were missed, run once as soon as possible, then
    /// go on with the schedule.
    #[default]
    RunOnce,
    /// Missed runs are dropped (more than 5 s late counts as missed); the
    /// next one is the schedule's next after now. A one-shot job that was
    /// missed does not run.
    Skip,
}

/// How a job in code runs: its [`Misfire`] policy and its timeout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobOptions {
    /// What runs missed while the bot was down become.
    pub misfire: Misfire,
    /// How long a run may take; `None`: the handler timeout (60 s).
    pub timeout: Option<Duration>,
}

/// A job's id: a job in code's name, or for one made at run time its
/// type's name and a suffix unique to it (`remind#lq2x5c-1`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for JobId {
    fn from(id: &str) -> JobId {
        JobId(id.to_owned())
    }
}

/// A job's handler, its data erased: `None` for a job in code.
pub(crate) type Runner = Rc<dyn Fn(JobContext, Option<Value>) -> BoxedLocal<HandlerResult>>;

/// A job in code, as the [`Bot`](crate::Bot) keeps it.
#[derive(Clone)]
pub(crate) struct JobDef {
    pub(crate) name: String,
    pub(crate) schedule: Schedule,
    pub(crate) options: JobOptions,
    pub(crate) runner: Runner,
}

/// A job type's handler and options, as the bot keeps them.
#[derive(Clone)]
pub(crate) struct Kind {
    pub(crate) runner: Runner,
    pub(crate) options: JobOptions,
}

impl Kind {
    /// The handler of `J`'s jobs: their data decoded, then `handler`.
    pub(crate) fn of<J, F, Fut>(handler: F) -> Kind
    where
        J: Job,
        F: Fn(JobContext, J) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        let runner: Runner = Rc::new(move |ctx, data| {
            match serde_json::from_value::<J>(data.unwrap_or(Value::Null)) {
                Ok(data) => Box::pin(handler(ctx, data)),
                Err(e) => {
                    let e = format!("its data does not decode as {}: {e}", J::NAME);
                    Box::pin(async move { Err(e.into()) })
                }
            }
        });
        Kind {
            runner,
            options: JobOptions {
                misfire: J::MISFIRE,
                timeout: J::TIMEOUT,
            },
        }
    }
}

/// What a job's handler gets: the Bot API, the state store, and the jobs.
///
/// A job has no update, so its state calls name whose state they mean:
/// the chat, the user, or both, as the type's [`Scope`](crate::state::Scope)
/// needs.
pub struct JobContext {
    id: JobId,
    due: SystemTime,
    client: Client,
    jobs: Rc<Jobs>,
    states: Rc<States>,
    written: Rc<Written>,
}

impl JobContext {
    /// A context for the run of `id` that was due at `due`.
    pub(crate) fn new(
        id: JobId,
        due: SystemTime,
        client: Client,
        jobs: Rc<Jobs>,
        states: Rc<States>,
    ) -> JobContext {
        JobContext {
            id,
            due,
            client,
            jobs,
            states,
            written: Rc::default(),
        }
    }

    /// This job's id.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// When this run was due (it may start later: a miss caught up).
    pub fn due(&self) -> SystemTime {
        self.due
    }

    /// The time now, by the run's clock ([`Clock`]).
    pub fn now(&self) -> SystemTime {
        self.jobs.scheduler.clock.now()
    }

    /// The Bot API client, for any call.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends any Bot API method; see [`Client::send`].
    ///
    /// # Errors
    /// As [`Client::send`].
    pub async fn send<M: Method>(&self, method: &M) -> Result<M::Output, Error> {
        self.client.send(method).await
    }

    /// Sends `text` to `chat`.
    ///
    /// # Errors
    /// As [`Client::send`].
    pub async fn send_message(
        &self,
        chat: ChatId,
        text: impl Into<String>,
    ) -> Result<Message, Error> {
        self.client.send(&SendMessage::new(chat, text.into())).await
    }

    /// The state of type `S` of `chat` and/or `user` (as `S::SCOPE` needs),
    /// or `S::default()`.
    ///
    /// # Errors
    /// [`Error::NoScope`] if the scope needs what was not given;
    /// [`Error::State`] if the store failed.
    pub async fn get_state<S: State>(
        &self,
        chat: Option<ChatId>,
        user: Option<UserId>,
    ) -> Result<S, Error> {
        self.states
            .slot_of::<S>(chat, user, &self.written)?
            .get()
            .await
    }

    /// Stores `value` as the state of `chat` and/or `user`.
    ///
    /// # Errors
    /// As [`get_state`](JobContext::get_state).
    pub async fn set_state<S: State>(
        &self,
        chat: Option<ChatId>,
        user: Option<UserId>,
        value: &S,
    ) -> Result<(), Error> {
        self.states
            .slot_of::<S>(chat, user, &self.written)?
            .set(value)
            .await
    }

    /// Makes a job of `data` that runs on `schedule`; see
    /// [`Context::schedule`](crate::Context::schedule).
    ///
    /// # Errors
    /// As [`Context::schedule`](crate::Context::schedule).
    pub async fn schedule<J: Job>(&self, schedule: Schedule, data: &J) -> Result<JobId, Error> {
        self.jobs
            .scheduler
            .add(&self.states, &self.written, schedule, data)
            .await
    }

    /// Makes a job of `data` that runs once, `delay` from now.
    ///
    /// # Errors
    /// As [`Context::schedule`](crate::Context::schedule).
    pub async fn schedule_in<J: Job>(&self, delay: Duration, data: &J) -> Result<JobId, Error> {
        let at = self.now() + delay;
        self.schedule(Schedule::Once(at), data).await
    }

    /// Cancels the job `id`; `false` if there was none.
    ///
    /// # Errors
    /// [`Error::State`] if the store failed.
    pub async fn cancel(&self, id: &JobId) -> Result<bool, Error> {
        self.jobs
            .scheduler
            .cancel(&self.states, &self.written, id)
            .await
    }

    /// The run's jobs and broadcasts, for `broadcast`.
    pub(crate) fn jobs(&self) -> &Rc<Jobs> {
        &self.jobs
    }

    /// The run's state and this run's writes, for `broadcast`.
    pub(crate) fn states(&self) -> (&Rc<States>, &Rc<Written>) {
        (&self.states, &self.written)
    }
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.id)
            .field("due", &self.due)
            .finish_non_exhaustive()
    }
}

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
    /// For ids unique within the run (their prefix is the start time).
    made: Cell<u64>,
    started_ms: u64,
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
        let started_ms = millis(clock.now()).unwrap_or_default();
        Scheduler {
            clock,
            kinds,
            defs,
            entries: RefCell::default(),
            loaded: Cell::new(false),
            changed: Event::new(),
            made: Cell::new(0),
            started_ms,
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

    /// Adds a job of `data` on `schedule`, stored for `written`'s update.
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
        self.made.set(self.made.get() + 1);
        let id = JobId(format!(
            "{}#{}-{}",
            J::NAME,
            base36(self.started_ms),
            self.made.get()
        ));
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
            let stored = read::<Record>(states, &written, &key(&id)).await?;
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
        let ids = read::<Vec<JobId>>(states, &written, INDEX)
            .await?
            .unwrap_or_default();
        for id in ids {
            let Some(r) = read::<Record>(states, &written, &key(&id)).await? else {
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
                Misfire::Skip => entry.schedule.next_after(now),
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
    async fn finished(&self, states: &States, id: &JobId, was_due: SystemTime) {
        let now = self.clock.now();
        let written = Written::default();
        let (record, remove) = {
            let mut entries = self.entries.borrow_mut();
            let Some(entry) = entries.get_mut(id) else {
                // Cancelled while it ran.
                return;
            };
            entry.running = false;
            entry.due = next_run(&entry.schedule, entry.options.misfire, was_due, now);
            (entry.record(), entry.due.is_none() && entry.data.is_some())
        };
        let stored = if remove {
            self.entries.borrow_mut().remove(id);
            match self.store_index(states, &written).await {
                Ok(()) => states.put(&key(id), None, None, &written).await,
                Err(e) => Err(e),
            }
        } else {
            put_json(states, &written, &key(id), &record).await
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
        put_json(states, written, &key(id), &entry.record()).await
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
        put_json(states, written, INDEX, &ids).await
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

/// The next due time after a run due at `was_due` ended at `now`: the
/// schedule's next after `was_due`, unless that has passed too (the run
/// outlasted its interval), and then as `misfire` says.
fn next_run(
    schedule: &Schedule,
    misfire: Misfire,
    was_due: SystemTime,
    now: SystemTime,
) -> Option<SystemTime> {
    let next = schedule.next_after(was_due)?;
    if next + GRACE >= now {
        return Some(next);
    }
    match misfire {
        Misfire::RunOnce => Some(now),
        Misfire::Skip => schedule.next_after(now),
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
                let run = AssertUnwindSafe(runner(ctx, data)).catch_unwind();
                let outcome = wait::within(timeout, run).await;
                report(&jobs.scheduler.metrics, &id, timeout, outcome);
                jobs.scheduler.finished(&states, &id, due).await;
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

async fn read<T: DeserializeOwned>(
    states: &States,
    written: &Written,
    key: &str,
) -> Result<Option<T>, Error> {
    let Some(bytes) = states.get(key, written).await? else {
        return Ok(None);
    };
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok(Some(value)),
        Err(e) => {
            log::warn!("job record key={key} does not decode: {e}; ignored");
            Ok(None)
        }
    }
}

async fn put_json<T: Serialize>(
    states: &States,
    written: &Written,
    key: &str,
    value: &T,
) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Config(e.to_string()))?;
    states.put(key, Some(&bytes), None, written).await
}

fn millis(t: SystemTime) -> Option<u64> {
    let since = t.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
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
        let next = next_run(&every, Misfire::Skip, due, t("2026-12-01T09:03:00Z"));
        assert_eq!(next, Some(t("2026-12-01T09:10:00Z")));
    }

    #[test]
    fn a_run_that_outlasts_its_interval_catches_up_once_or_skips() {
        let every = Schedule::parse("every 10m").unwrap();
        let due = t("2026-12-01T09:00:00Z");
        let late = t("2026-12-01T09:25:00Z");
        assert_eq!(next_run(&every, Misfire::RunOnce, due, late), Some(late));
        assert_eq!(
            next_run(&every, Misfire::Skip, due, late),
            Some(t("2026-12-01T09:35:00Z"))
        );
        let once = Schedule::Once(due);
        assert_eq!(next_run(&once, Misfire::RunOnce, due, late), None);
    }

    #[test]
    fn ids_are_short_and_stamps_are_utc() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(36 * 36 + 35), "10z");
        assert_eq!(
            Stamp(t("2026-12-01T09:00:00+01:00")).to_string(),
            "2026-12-01T08:00:00Z"
        );
    }
}
