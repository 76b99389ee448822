//! The Bot API client.
pub mod types;
