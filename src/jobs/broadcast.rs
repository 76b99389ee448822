//! Broadcasts: one message, or one built per chat, to a list of chats,
//! within Telegram's limits, with progress kept in the store (to come, #16).
//!
//! Must not: send to a chat twice, except the one whose send a SIGKILL cut.

use std::collections::HashMap;
use std::rc::Rc;

use futures_lite::future::BoxedLocal;

use super::{JobContext, Jobs};
use crate::api::generated::methods::SendMessage;
use crate::api::types::ChatId;
use crate::api::Client;
use crate::metrics::Metrics;
use crate::state::States;
use crate::{HandlerError, Shutdown};

/// A broadcast to make: what to send, and to whom.
#[derive(Debug)]
pub struct Broadcast {}

/// A broadcast's id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BroadcastId(String);

/// How far a broadcast got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Chats Telegram took the message for.
    pub sent: u64,
    /// Chats given up for good: the bot is blocked, the chat does not exist.
    pub failed: u64,
    /// Chats still to go.
    pub remaining: u64,
}

/// A per-chat message builder, registered on the bot by name.
pub(crate) type Builder =
    Rc<dyn Fn(JobContext, ChatId) -> BoxedLocal<Result<Option<SendMessage>, HandlerError>>>;

/// The run's broadcasts.
#[allow(dead_code, reason = "to come in #16")]
pub(crate) struct Broadcasts {
    builders: HashMap<String, Builder>,
    metrics: Rc<Metrics>,
}

impl Broadcasts {
    pub(crate) fn new(builders: HashMap<String, Builder>, metrics: Rc<Metrics>) -> Broadcasts {
        Broadcasts { builders, metrics }
    }
}

/// Sends the broadcasts, resuming stored ones, until `shutdown`.
pub(crate) async fn run(jobs: Rc<Jobs>, client: Client, states: Rc<States>, shutdown: Shutdown) {
    let _ = (jobs, client, states, &shutdown);
}
