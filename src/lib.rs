//! smolgram: a Telegram bot runtime for small machines.
//!
//! One thread runs one executor, owned by a [`Runtime`], that drives the
//! long-polling Bot API client, your handlers and a tiny HTTP health
//! listener. Blocking HTTPS requests run on a small, bounded pool of io
//! threads. The offset confirmed to Telegram only passes updates whose
//! handlers have finished, so a restart loses nothing.
//!
//! # Examples
//!
//! A bot, tested against the in-process fake Bot API ([`testkit`]), with
//! no network and no token:
//!
//! ```
//! use std::time::Duration;
//! use smolgram::{api::types::ChatId, testkit::{FakeApi, TestBot}, Bot};
//!
//! fn bot() -> Bot {
//!     Bot::new()
//!         .command("echo", |ctx| async move {
//!             let args = ctx.args().to_owned();
//!             ctx.reply(args).await?;
//!             Ok(())
//!         })
//!         .text(|ctx| async move {
//!             ctx.reply("say /echo something").await?;
//!             Ok(())
//!         })
//! }
//!
//! let api = FakeApi::start();
//! let running = TestBot::start(&api, bot);
//! api.push_text(ChatId(1), "/echo alpha beta 42");
//! api.push_text(ChatId(1), "hi");
//! api.wait_until("two replies", Duration::from_secs(5), |api| api.sent_to(ChatId(1)) == 2);
//! let replies: Vec<String> = api.sent().into_iter().map(|s| s.text).collect();
//! assert_eq!(replies, ["alpha beta 42", "say /echo something"]);
//! let summary = running.stop().unwrap(); // as SIGTERM would
//! assert_eq!(summary.handled, 2);
//! ```
//!
//! In a `main`, [`run`] does the whole lifecycle (signals included) with a
//! [`config::Config`] read by [`config::from_env`]; see `examples/echo.rs`.
//!
//! # Layout
//! - [`Runtime`]: the owned executor; `block_on` refuses re-entry.
//! - [`Bot`], [`Context`]: handlers and routing.
//! - [`Service`], [`run`]: one bot run, from `getMe` to the final
//!   confirmation; it creates the run's state (metrics, readiness) and hands
//!   it out, and returns a [`Summary`].
//! - [`api`]: the Bot API client, its wire format, its types and the token.
//! - [`config`]: the run's env and flags into a validated [`config::Config`].
//! - [`Shutdown`]: the stop every loop races its work against.
//! - [`testkit`]: the fake Bot API for tests (cargo feature `testkit`, on by default).
//!
//! Inside: `poll` (the long-poll loop and its backoff), `dispatch` (per-chat
//! lanes and the offset watermark), `limit` (outbound rate limits and which
//! methods they pace), `health` (the listener), `http` (request heads and
//! responses, for `health` and the testkit), `metrics` (counters and
//! their Prometheus text), `readiness` (what `/readyz` answers), `wait`
//! (a deadline, a condition), `logger` (the logger that keeps ureq's URLs
//! out of the log, and panics on one line).
//!
//! The `smolgram` binary (`src/bin/smolgram/`) is a user of this library
//! like any other: its command line, built-in bot and demo live there.
//!
//! # Log levels
//! [`init_logging`] takes a `RUST_LOG` filter (default `info`). What each
//! level prints, one line per event, values as `key=value`:
//! - `error`: the bot cannot go on (a rejected token), or a handler panicked.
//! - `warn`: it goes on degraded, once per change, not per retry: a busy
//!   health port, a 409, a 429, the API unreachable, a failed handler, a
//!   drain deadline passed.
//! - `info`: the lifecycle: listening, ready, recovered, stopping, stopped
//!   (with the [`Summary`]).
//! - `debug`: a line per Bot API request and per health request.
//! - `trace`: nothing of smolgram's own; other crates' wire detail.
//!
//! No level prints the token: it is not in any of smolgram's lines, and
//! `ureq`'s records above `info`, which hold request URLs, are dropped
//! whatever the filter says.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod api; // Bot API client and io pool; api/types.rs holds Update, Message, …
mod bot; // Bot, Context: handlers and routing
pub mod config; // env + flags → Config
mod dispatch; // per-chat lanes, offset watermark, panic isolation
mod error; // the one public Error
mod health; // /healthz listener: bind policy, deadlines, connection cap
mod http; // HTTP/1.1 request heads and responses, for health and the testkit
mod limit; // outbound rate limits: global, per chat, per group; 429 holds
mod logger; // env_logger that never lets ureq's URLs through; panics as one line
mod metrics; // counters and their Prometheus text
mod poll; // getUpdates loop, backoff
mod readiness; // what /readyz answers
mod runtime; // LocalExecutor, block_on, re-entry guard
mod service; // one bot run wired together; its state and Summary
mod shutdown; // signals → Shutdown; racing work against it
#[cfg(feature = "testkit")]
pub mod testkit; // in-process fake Bot API: our tests, `demo`, users' tests
mod wait; // within a deadline; until a condition

pub use async_executor::Task;
pub use bot::{Bot, Context, HandlerError, HandlerResult};
pub use error::{Error, NetworkKind};
pub use limit::RateLimits;
pub use logger::init_logging;
pub use runtime::Runtime;
pub use service::{run, run_with, Service, Summary};
pub use shutdown::Shutdown;
