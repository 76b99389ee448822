//! The job calls of [`Bot`] and [`Context`]: registering jobs in code,
//! job types and broadcast builders, and making and cancelling jobs and
//! starting broadcasts from a handler.
//!
//! Must not: run or store anything itself (that is `scheduler` and
//! `broadcast`).

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use super::Kind;
use super::{
    Broadcast, BroadcastId, Job, JobContext, JobDef, JobId, JobOptions, Progress, Schedule,
};
use crate::api::generated::methods::SendMessage;
use crate::api::types::ChatId;
use crate::{Bot, Context, Error, HandlerError, HandlerResult};

impl Bot {
    /// Runs `handler` on `schedule`, from the start until the stop: a job
    /// in code. `name` is its id (unique among the bot's jobs); its next
    /// due time is kept in the state store, so a run missed while the bot
    /// was down is caught up once at the next start ([`JobOptions`] to
    /// skip it instead).
    ///
    /// # Examples
    /// ```
    /// use smolgram::api::types::ChatId;
    /// use smolgram::jobs::Schedule;
    /// use smolgram::Bot;
    ///
    /// let daily = Schedule::parse("cron 0 8 * * * tz +01:00").unwrap();
    /// let bot = Bot::new().job("digest", daily, |ctx| async move {
    ///     ctx.send_message(ChatId(-100123), "good morning").await?;
    ///     Ok(())
    /// });
    /// # let _ = bot;
    /// ```
    pub fn job<F, Fut>(self, name: &str, schedule: Schedule, handler: F) -> Bot
    where
        F: Fn(JobContext) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.job_with(name, schedule, JobOptions::default(), handler)
    }

    /// [`job`](Bot::job) with its misfire policy and timeout.
    pub fn job_with<F, Fut>(
        mut self,
        name: &str,
        schedule: Schedule,
        options: JobOptions,
        handler: F,
    ) -> Bot
    where
        F: Fn(JobContext) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.jobs.defs.retain(|def| def.name != name);
        self.jobs.defs.push(JobDef {
            name: name.to_owned(),
            schedule,
            options,
            runner: Rc::new(move |ctx, _| Box::pin(handler(ctx))),
        });
        self
    }

    /// Runs the jobs of type `J` that handlers make at run time
    /// ([`Context::schedule`]): `handler` gets each one's data.
    pub fn on_job<J, F, Fut>(mut self, handler: F) -> Bot
    where
        J: Job,
        F: Fn(JobContext, J) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.jobs
            .kinds
            .insert(J::NAME.to_owned(), Kind::of::<J, F, Fut>(handler));
        self
    }

    /// Registers `build` as the broadcast builder `name`: a
    /// [`Broadcast::built`] with that name has it make each chat's message
    /// when the chat's turn comes (so it may read the chat's state then).
    /// `Ok(None)` skips the chat (counted as skipped); an error or a panic
    /// gives the chat up (counted as failed, with the error as its reason).
    ///
    /// # Examples
    /// ```
    /// use smolgram::api::generated::methods::SendMessage;
    /// use smolgram::api::types::ChatId;
    /// use smolgram::jobs::Broadcast;
    /// use smolgram::Bot;
    ///
    /// let bot = Bot::new()
    ///     .broadcaster("greeting", |_ctx, chat: ChatId| async move {
    ///         // Groups get nothing; each user a message of their own.
    ///         if chat.0 < 0 {
    ///             return Ok(None);
    ///         }
    ///         Ok(Some(SendMessage::new(chat, format!("hello, user {}", chat.0))))
    ///     })
    ///     .command("greet", |ctx| async move {
    ///         let id = ctx.broadcast(Broadcast::built((1..=100).map(ChatId), "greeting")).await?;
    ///         ctx.reply(format!("started {id}")).await?;
    ///         Ok(())
    ///     });
    /// # let _ = bot;
    /// ```
    pub fn broadcaster<F, Fut>(mut self, name: &str, build: F) -> Bot
    where
        F: Fn(JobContext, ChatId) -> Fut + 'static,
        Fut: Future<Output = Result<Option<SendMessage>, HandlerError>> + 'static,
    {
        self.jobs.builders.insert(
            name.to_owned(),
            Rc::new(move |ctx, chat| Box::pin(build(ctx, chat))),
        );
        self
    }
}

impl Context {
    /// Makes a job of `data`, run on `schedule` by the handler that
    /// [`Bot::on_job`] gave for `J`. It is kept in the state store (so it
    /// survives restarts) before this update counts as finished.
    ///
    /// # Errors
    /// [`Error::Config`] if `J` has no handler or `schedule` no run to come;
    /// [`Error::State`] if the store failed (the update then runs again).
    ///
    /// # Examples
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// use smolgram::api::types::ChatId;
    /// use smolgram::jobs::{Job, Schedule};
    /// use smolgram::Bot;
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ping(ChatId);
    /// impl Job for Ping {
    ///     const NAME: &'static str = "ping";
    /// }
    ///
    /// let bot = Bot::new()
    ///     .command("hourly", |ctx| async move {
    ///         let Some(chat) = ctx.chat_id() else { return Ok(()) };
    ///         let id = ctx.schedule(Schedule::parse("every 1h")?, &Ping(chat)).await?;
    ///         ctx.reply(format!("scheduled {id}")).await?;
    ///         Ok(())
    ///     })
    ///     .on_job(|ctx, Ping(chat)| async move {
    ///         ctx.send_message(chat, "ping").await?;
    ///         Ok(())
    ///     });
    /// # let _ = bot;
    /// ```
    pub async fn schedule<J: Job>(&self, schedule: Schedule, data: &J) -> Result<JobId, Error> {
        let (jobs, states, written) = self.job_parts();
        jobs.scheduler.add(states, written, schedule, data).await
    }

    /// Makes a job of `data` that runs once, `delay` from now by the run's
    /// clock: "remind me in 10 minutes".
    ///
    /// # Errors
    /// As [`schedule`](Context::schedule).
    pub async fn schedule_in<J: Job>(&self, delay: Duration, data: &J) -> Result<JobId, Error> {
        let (jobs, ..) = self.job_parts();
        let at = jobs.scheduler.now() + delay;
        self.schedule(Schedule::Once(at), data).await
    }

    /// Cancels the job `id` made at run time; `false` if there is none.
    ///
    /// # Errors
    /// [`Error::State`] if the store failed.
    pub async fn cancel_job(&self, id: &JobId) -> Result<bool, Error> {
        let (jobs, states, written) = self.job_parts();
        jobs.scheduler.cancel(states, written, id).await
    }

    /// Starts `broadcast`: it is kept in the state store (with its chats
    /// and its progress) before this update counts as finished, and sent
    /// beside the updates, one chat at a time within Telegram's limits,
    /// across restarts and SIGKILLs (see [`Broadcast`]). Broadcasts run one
    /// after another, in the order they were started.
    ///
    /// A handler run again (its store failed) starts it again: a second
    /// broadcast, with an id of its own.
    ///
    /// # Errors
    /// [`Error::Config`] for a builder the bot has not registered, or a
    /// message with an upload in it (broadcast a `file_id`);
    /// [`Error::State`] if the store failed (the update then runs again).
    ///
    /// # Examples
    /// ```
    /// use smolgram::api::generated::methods::SendMessage;
    /// use smolgram::api::types::ChatId;
    /// use smolgram::jobs::Broadcast;
    /// use smolgram::Bot;
    ///
    /// let bot = Bot::new().command("announce", |ctx| async move {
    ///     let subscribers = [ChatId(7), ChatId(8), ChatId(9)];
    ///     let text = ctx.args().to_owned();
    ///     let news = Broadcast::message(subscribers, &SendMessage::new(ChatId(0), text));
    ///     let id = ctx.broadcast(news).await?;
    ///     let progress = ctx.broadcast_progress(&id).await?.expect("just stored");
    ///     ctx.reply(format!("{id}: {} chats to go", progress.remaining)).await?;
    ///     Ok(())
    /// });
    /// # let _ = bot;
    /// ```
    pub async fn broadcast(&self, broadcast: Broadcast) -> Result<BroadcastId, Error> {
        let (jobs, states, written) = self.job_parts();
        jobs.broadcasts.start(states, written, broadcast).await
    }

    /// How far broadcast `id` got: sent, failed (with each chat and why),
    /// skipped, remaining, and whether it is done, as the store has it
    /// (this instance's or another's broadcast). `None` if there is no such
    /// broadcast, or it finished more than 7 days ago.
    ///
    /// # Errors
    /// [`Error::State`] if the store failed.
    pub async fn broadcast_progress(&self, id: &BroadcastId) -> Result<Option<Progress>, Error> {
        let (jobs, states, written) = self.job_parts();
        jobs.broadcasts.progress(states, written, id).await
    }
}
