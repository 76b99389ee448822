//! smolgram: a Telegram bot runtime for small machines.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod api;
mod bot;
pub mod config;
mod dispatch;
mod error;
mod health;
mod logger;
mod metrics;
mod poll;
mod runtime;
mod service;
mod shutdown;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use bot::{Bot, Context, HandlerError, HandlerResult};
pub use error::{Error, NetworkKind};
pub use logger::init_logging;
pub use metrics::Summary;
pub use runtime::Runtime;
pub use service::{run, Service};
pub use shutdown::Shutdown;
