//! smolgram: a Telegram bot runtime for small machines.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod api;
mod error;
mod runtime;
mod shutdown;

pub use error::{Error, NetworkKind};
pub use runtime::Runtime;
pub use shutdown::Shutdown;
