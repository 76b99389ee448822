//! Per-chat lanes and the offset watermark: which updates are held, which
//! are finished, and which offset confirms exactly the finished ones.
//!
//! Updates of one chat run one at a time in `update_id` order (a lane is a
//! task with a queue); different chats run concurrently on the same thread.
//! Telegram forgets every update below the offset we send, so the offset is
//! the lowest update still held; updates that finished above it are
//! remembered (`done`) because Telegram hands them out again until the
//! offset passes them, and they must not run twice. The window between the
//! offset and the newest update is at most one `getUpdates` batch (100), so
//! everything here is bounded by it: at most 100 updates are held in
//! memory, and a SIGKILL repeats at most 100 finished ones.
//!
//! At most `max_in_flight` handlers run at once (default 64), over all
//! chats; the others wait in their lane for a slot, and the poller fetches
//! nothing beyond the window meanwhile. A handler that returns `Err`, panics
//! or outlives its timeout (default 60 s; it is then dropped) is logged with
//! its `update_id`, counted, and its update counts as finished: retrying a
//! handler that failed would only fail again and hold up its chat.
//!
//! Must not: hold unbounded queues, or block the thread.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::{Duration, Instant};

use event_listener::Event;
use futures_lite::{future, FutureExt};

use async_executor::Task;
use async_io::Timer;

use crate::api::retry::Backoff;
use crate::api::types::{self, BadUpdate, ChatId, Received, UserId};
use crate::api::Client;
use crate::jobs::Jobs;
use crate::logger::panic_message;
use crate::metrics::{bump, Metrics};
use crate::state::{States, Store, Written};
use crate::{wait, Bot, Runtime};

/// Updates held, all waiting for their state to be durable, at which the
/// store is asked to write now rather than at its next batch (see [`sync`]).
const PRESSED: usize = 32;

/// How handlers run: how many at once, and for how long at most.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Handlers running at once, over all chats.
    pub(crate) max_in_flight: usize,
    /// A handler still running after this is abandoned.
    pub(crate) timeout: Duration,
}

/// Routes updates into lanes and tracks what is finished.
pub(crate) struct Dispatcher<'rt> {
    rt: &'rt Runtime,
    shared: Rc<Shared>,
    /// The task that finishes updates as their state becomes durable.
    _sync: Task<()>,
}

struct Shared {
    bot: Bot,
    /// What every `getUpdates` asks for: the kinds the bot's handlers take.
    allowed: Vec<&'static str>,
    client: Client,
    username: String,
    metrics: Rc<Metrics>,
    limits: Limits,
    state: RefCell<State>,
    /// Notified whenever an update finishes.
    changed: Event,
    /// Notified when the update of its id finishes, for a [`Tracker`]
    /// waiting on that one (a webhook request): one wake-up per finish, not
    /// one for every waiting request.
    waiting: RefCell<HashMap<i64, Event>>,
    /// The run's state store, for the handlers' contexts.
    states: Rc<States>,
    /// The run's jobs, for the handlers' contexts.
    jobs: Rc<Jobs>,
    /// Finished handlers whose state writes are not durable yet: (the
    /// write's sequence number, the update); their updates are still held.
    syncing: RefCell<Vec<(u64, i64)>>,
    /// Notified when `syncing` gets one.
    to_sync: Event,
    /// Whether the last update that touched state found the store unavailable.
    store_failing: Cell<bool>,
    /// Handler slots free now, out of `limits.max_in_flight`.
    free: Cell<usize>,
    /// Notified whenever a slot frees.
    freed: Event,
}

#[derive(Default)]
struct State {
    /// Taken from Telegram, handler not finished.
    held: BTreeSet<i64>,
    /// Finished while an older update is still held: Telegram delivers them again.
    done: BTreeSet<i64>,
    /// Each lane's queue, behind the update its task is running.
    lanes: HashMap<LaneKey, VecDeque<Received>>,
    /// One past the newest `update_id` seen.
    next: Option<i64>,
    /// The offset of the latest `getUpdates` sent: Telegram may hand out
    /// anything from it on again, finished or not.
    sent: Option<i64>,
}

/// Which lane an update runs in: its chat, else its user, else its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum LaneKey {
    Chat(ChatId),
    User(UserId),
    Alone(i64),
}

impl LaneKey {
    fn of(received: &Received) -> LaneKey {
        let update = received.update();
        let (chat, user) = match update.kind() {
            // A kind newer than our types: read its actors from the JSON.
            None => types::actors_of(received.raw()),
            Some(_) => (update.chat().map(|c| c.id), update.from().map(|u| u.id)),
        };
        match (chat, user) {
            (Some(chat), _) => LaneKey::Chat(chat),
            (None, Some(user)) => LaneKey::User(user),
            (None, None) => LaneKey::Alone(received.id()),
        }
    }
}

impl<'rt> Dispatcher<'rt> {
    /// A dispatcher that spawns its lanes on `rt` and counts into `metrics`.
    #[allow(
        clippy::too_many_arguments,
        reason = "each is one of the run's parts, named at the one call"
    )]
    pub(crate) fn new(
        rt: &'rt Runtime,
        bot: Bot,
        client: Client,
        username: String,
        limits: Limits,
        states: Rc<States>,
        jobs: Rc<Jobs>,
        metrics: Rc<Metrics>,
    ) -> Self {
        let shared = Rc::new(Shared {
            allowed: bot.allowed_updates(),
            bot,
            metrics,
            client,
            username,
            limits,
            state: RefCell::default(),
            changed: Event::new(),
            waiting: RefCell::default(),
            states,
            jobs,
            syncing: RefCell::default(),
            to_sync: Event::new(),
            store_failing: Cell::new(false),
            free: Cell::new(limits.max_in_flight.max(1)),
            freed: Event::new(),
        });
        Dispatcher {
            rt,
            _sync: rt.spawn(sync(Rc::clone(&shared))),
            shared,
        }
    }

    /// The `getUpdates` offset that confirms exactly the finished updates:
    /// the oldest one still held, else one past the newest seen.
    pub(crate) fn offset(&self) -> Option<i64> {
        self.shared.state.borrow().offset()
    }

    /// [`offset`](Self::offset), remembered as sent: finished updates from
    /// it on are kept (Telegram may hand them out again, even if they finish
    /// while this request is under way), those below it are forgotten.
    /// Also the ids that the answer may repeat and that are already in hand
    /// (held or finished), sorted: the answer need not decode them, as
    /// [`accept`](Self::accept) would drop them. They stay in hand until
    /// then, since an offset is only sent again after `accept`.
    pub(crate) fn send_offset(&self) -> (Option<i64>, Vec<i64>) {
        let mut state = self.shared.state.borrow_mut();
        let offset = state.offset();
        if let Some(offset) = offset {
            state.sent = Some(offset);
            state.done = state.done.split_off(&offset);
        }
        let mut in_hand: Vec<i64> = state.held.iter().chain(&state.done).copied().collect();
        in_hand.sort_unstable();
        (offset, in_hand)
    }

    /// The `allowed_updates` of every `getUpdates`: see [`Bot::allowed_updates`].
    pub(crate) fn allowed_updates(&self) -> &[&'static str] {
        &self.shared.allowed
    }

    /// Updates whose handler has not finished.
    pub(crate) fn held(&self) -> usize {
        self.shared.state.borrow().held.len()
    }

    /// Updates Telegram will hand out again from the current offset: held
    /// ones and those finished above the oldest held.
    pub(crate) fn window(&self) -> usize {
        let state = self.shared.state.borrow();
        let done = match state.offset() {
            Some(offset) => state.done.range(offset..).count(),
            None => 0,
        };
        state.held.len() + done
    }

    /// Waits until `ready()` holds, looking again whenever an update finishes.
    pub(crate) async fn until(&self, ready: impl FnMut() -> bool) {
        wait::until(&self.shared.changed, ready).await;
    }

    /// Takes a `getUpdates` batch: new updates go to their lanes, ones
    /// already held or finished are dropped, malformed ones are logged once,
    /// counted and treated as finished. Returns how many were new.
    pub(crate) fn accept(&self, batch: Vec<Result<Received, BadUpdate>>) -> usize {
        let shared = &self.shared;
        let mut new = 0;
        let mut state = shared.state.borrow_mut();
        let fresh_start = state.held.is_empty() && state.done.is_empty();
        let newest = batch
            .iter()
            .filter_map(|item| match item {
                Ok(update) => Some(update.id()),
                Err(bad) => bad.id,
            })
            .max();
        if let Some(newest) = newest {
            // After a week without updates Telegram may restart the ids at
            // random, lower than before: a fresh start takes them as they are.
            state.next = match state.next {
                Some(next) if !fresh_start => Some(next.max(newest + 1)),
                _ => Some(newest + 1),
            };
        }
        for item in batch {
            match item {
                Ok(update) => {
                    let id = update.id();
                    if state.held.contains(&id) || state.done.contains(&id) {
                        continue;
                    }
                    new += 1;
                    bump(&shared.metrics.received);
                    state.held.insert(id);
                    let key = LaneKey::of(&update);
                    if let Some(queue) = state.lanes.get_mut(&key) {
                        queue.push_back(update);
                    } else {
                        state.lanes.insert(key, VecDeque::new());
                        self.rt
                            .spawn(run_lane(Rc::clone(shared), key, update))
                            .detach();
                    }
                }
                Err(BadUpdate {
                    id: Some(id),
                    reason,
                }) => {
                    if state.done.contains(&id) {
                        continue;
                    }
                    log::warn!("skipping malformed update update_id={id} reason={reason:?}");
                    bump(&shared.metrics.skipped);
                    state.finish(id);
                }
                Err(BadUpdate { id: None, reason }) => {
                    log::warn!("skipping update without update_id reason={reason:?}");
                    bump(&shared.metrics.skipped);
                }
            }
        }
        shared.metrics.held.set(state.held.len() as u64);
        new
    }

    /// Waits until no update is held. Once only state writes are left to
    /// wait for, the store is asked to make them durable now rather than
    /// at its next batch: a stop need not wait out a batch interval.
    pub(crate) async fn idle(&self) {
        let shared = &self.shared;
        self.until(|| self.held() == shared.syncing.borrow().len())
            .await;
        if self.held() > 0 {
            flush(shared.states.store()).await;
        }
        self.until(|| self.held() == 0).await;
    }

    /// A handle that waits for one update to finish, for a task of its own
    /// (a webhook request waiting to answer).
    pub(crate) fn tracker(&self) -> Tracker {
        Tracker(Rc::clone(&self.shared))
    }

    /// Forgets all but the newest `keep` finished updates. Polling needs no
    /// such cap (each offset sent forgets those below it); a webhook sends
    /// no offset, so it keeps the newest for resends and forgets the rest.
    pub(crate) fn trim_done(&self, keep: usize) {
        let mut state = self.shared.state.borrow_mut();
        while state.done.len() > keep {
            state.done.pop_first();
        }
    }
}

/// Waits for updates of a [`Dispatcher`] to finish; see [`Dispatcher::tracker`].
#[derive(Clone)]
pub(crate) struct Tracker(Rc<Shared>);

impl Tracker {
    /// Waits until `id` is not held: its handler finished, timed out or
    /// failed, or it was never taken (a repeat of a finished one).
    pub(crate) async fn finished(&self, id: i64) {
        let shared = &self.0;
        wait::until(&shared.changed, || {
            !shared.state.borrow().held.contains(&id)
        })
        .await;
    }
}

impl fmt::Debug for Dispatcher<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("held", &self.held())
            .field("window", &self.window())
            .finish()
    }
}

impl State {
    fn offset(&self) -> Option<i64> {
        self.held.first().copied().or(self.next)
    }

    /// Marks `id` finished; remembers it while Telegram may hand it out again.
    fn finish(&mut self, id: i64) {
        self.held.remove(&id);
        // No offset sent yet confirms nothing: Telegram may hand out anything again.
        if self.sent.is_none_or(|sent| id >= sent) {
            self.done.insert(id);
        }
    }
}

/// A lane's task: runs its chat's updates one at a time, then ends.
async fn run_lane(shared: Rc<Shared>, key: LaneKey, first: Received) {
    let mut next = Some(first);
    while let Some(update) = next {
        let id = update.id();
        match run_saved(&shared, Rc::new(update)).await {
            // Its state is applied (the next update sees it) but not yet
            // durable: it finishes when the store says so; the lane goes on.
            Some(seq) => {
                shared.syncing.borrow_mut().push((seq, id));
                shared.to_sync.notify(1);
                shared.changed.notify(usize::MAX);
            }
            None => finish(&shared, id),
        }
        let mut state = shared.state.borrow_mut();
        next = state.lanes.get_mut(&key).and_then(VecDeque::pop_front);
        if next.is_none() {
            state.lanes.remove(&key);
        }
        shared.metrics.lanes.set(state.lanes.len() as u64);
    }
}

/// Runs `update`'s handler until its state reads and writes went through:
/// a store that was unavailable runs it again after a backoff (its lane
/// waits, nothing is confirmed meanwhile). Returns the write to wait on
/// before the update counts as finished, if any.
async fn run_saved(shared: &Shared, update: Rc<Received>) -> Option<u64> {
    let mut backoff = Backoff::transient();
    loop {
        let written = Rc::new(Written::for_update(&update));
        {
            let _slot = Slot::take(shared).await;
            handle(shared, Rc::clone(&update), &written).await;
        }
        if !written.failed() {
            if shared.store_failing.replace(false) {
                log::info!("state store works again update_id={}", update.id());
            }
            return written.pending();
        }
        bump(&shared.metrics.state_retries);
        let delay = backoff.next();
        if !shared.store_failing.replace(true) {
            log::warn!(
                "state store unavailable update_id={}; its chat waits, and it runs again after a backoff (up to 30 s) until the store is back",
                update.id()
            );
        }
        Timer::after(delay).await;
    }
}

/// Waits for the state writes of finished handlers to become durable and
/// then counts their updates as finished, oldest write first: a store's
/// writes become durable in order, so each wait ends as soon as the batch
/// holding that write is synced, not the newest one's. Sleeps while there
/// is nothing to wait for.
///
/// A burst is the exception to the store's batching: once [`PRESSED`]
/// updates or more are held and every one of them only waits for the disk,
/// the window cannot move (the offset is the oldest of them) and the
/// poller fetches nothing, so the store is asked to write them now.
async fn sync(shared: Rc<Shared>) {
    loop {
        wait::until(&shared.to_sync, || !shared.syncing.borrow().is_empty()).await;
        let oldest = shared.syncing.borrow().iter().map(|&(seq, _)| seq).min();
        let Some(oldest) = oldest else { continue };
        let store = shared.states.store();
        let pressed = async {
            wait::until(&shared.changed, || {
                let held = shared.state.borrow().held.len();
                held >= PRESSED && held == shared.syncing.borrow().len()
            })
            .await;
            flush(store).await;
            future::pending::<()>().await;
        };
        future::or(store.durable(oldest), pressed).await;
        let mut durable = Vec::new();
        shared.syncing.borrow_mut().retain(|&(seq, id)| {
            let keep = seq > oldest;
            if !keep {
                durable.push(id);
            }
            keep
        });
        for id in durable {
            finish(&shared, id);
        }
    }
}

/// Has `store` write what waits for its next batch now; a failure is
/// logged, and the waits on durability go on (the store retries).
async fn flush(store: &dyn Store) {
    if let Err(e) = store.flush().await {
        log::warn!("state store flush failed: {e}");
    }
}

/// Counts `id` as finished: the offset may pass it, and whoever waits on it
/// (a webhook request, the drain) hears of it.
fn finish(shared: &Shared, id: i64) {
    let mut state = shared.state.borrow_mut();
    state.finish(id);
    if let Some(waiting) = shared.waiting.borrow_mut().remove(&id) {
        waiting.notify(usize::MAX);
    }
    shared.metrics.held.set(state.held.len() as u64);
    drop(state);
    shared.changed.notify(usize::MAX);
}

/// One of the `max_in_flight` handler slots, given back on drop.
struct Slot<'a>(&'a Shared);

impl<'a> Slot<'a> {
    /// Waits for a free slot.
    async fn take(shared: &'a Shared) -> Slot<'a> {
        wait::until(&shared.freed, || shared.free.get() > 0).await;
        shared.free.set(shared.free.get() - 1);
        bump(&shared.metrics.in_flight);
        Slot(shared)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let shared = self.0;
        shared.free.set(shared.free.get() + 1);
        shared
            .metrics
            .in_flight
            .set(shared.metrics.in_flight.get() - 1);
        shared.freed.notify(1);
    }
}

/// Runs the handler for `update` within the handler timeout; its failure,
/// panic or timeout is logged and counted.
async fn handle(shared: &Shared, update: Rc<Received>, written: &Rc<Written>) {
    let id = update.id();
    let metrics = &shared.metrics;
    let routed = shared.bot.route(
        update,
        &shared.client,
        &shared.username,
        &shared.states,
        &shared.jobs,
        written,
    );
    let Some(handler) = routed else {
        bump(&metrics.handled);
        return;
    };
    let started = Instant::now();
    let timeout = shared.limits.timeout;
    // The handler's state is its own and dropped with it, so nothing
    // half-updated is seen again after a panic or a timeout.
    let outcome = wait::within(timeout, AssertUnwindSafe(handler).catch_unwind()).await;
    metrics.observe_handler(started.elapsed());
    match outcome {
        Some(Ok(Ok(()))) => bump(&metrics.handled),
        Some(Ok(Err(e))) => {
            log::warn!("handler failed update_id={id} error={e}");
            bump(&metrics.errors);
        }
        Some(Err(panic)) => {
            let message = panic_message(&*panic);
            log::error!("handler panicked update_id={id} panic={message:?}; the bot goes on");
            bump(&metrics.panics);
        }
        None => {
            log::warn!("handler timed out update_id={id} after={timeout:?}; abandoned, its update counts as done");
            bump(&metrics.timeouts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_any_offset_is_sent_every_finished_update_is_remembered() {
        let mut state = State::default();
        state.held.extend([1, 2]);
        state.finish(2);
        assert!(state.done.contains(&2));
    }

    #[test]
    fn finished_updates_are_remembered_until_an_offset_past_them_is_sent() {
        let mut state = State::default();
        state.held.extend([1, 2, 3]);
        state.next = Some(4);
        state.sent = Some(1);
        state.finish(2);
        state.finish(1);
        state.finish(3);
        // All finished while a poll with offset 1 was under way: its answer
        // may carry 1, 2 and 3 again, and none of them may run twice.
        assert_eq!(
            state.done.iter().copied().collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(state.offset(), Some(4));
    }
}
