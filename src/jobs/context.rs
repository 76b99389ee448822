//! [`JobContext`]: what a job's handler gets, the counterpart of a
//! handler's [`Context`](crate::Context) for work no update asked for.
//!
//! Must not: run or store jobs itself (it asks `scheduler`).

use std::fmt;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use super::{Job, JobId, Jobs, Schedule};
use crate::api::generated::methods::SendMessage;
use crate::api::generated::Method;
use crate::api::types::{ChatId, Message, UserId};
use crate::api::Client;
use crate::state::{State, States, Written};
use crate::Error;

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

    /// The time now, by the run's clock ([`Clock`](super::Clock)).
    pub fn now(&self) -> SystemTime {
        self.jobs.scheduler.now()
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

    /// Changes the state of type `S` of `chat` and/or `user` in place; see
    /// [`Context::update_state`](crate::Context::update_state).
    ///
    /// # Errors
    /// As [`get_state`](JobContext::get_state).
    pub async fn update_state<S: State, R>(
        &self,
        chat: Option<ChatId>,
        user: Option<UserId>,
        change: impl FnOnce(&mut S) -> R,
    ) -> Result<R, Error> {
        self.states
            .slot_of::<S>(chat, user, &self.written)?
            .update(change)
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
