//! What a job is, to the code that registers and makes jobs: its data
//! type ([`Job`]), its id, its misfire policy and options, and the erased
//! handler the bot keeps.
//!
//! Must not: know when jobs run or how they are stored (`scheduler`).

use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future::BoxedLocal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{JobContext, Schedule};
use crate::HandlerResult;

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
pub struct JobId(pub(super) String);

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
