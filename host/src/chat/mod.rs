//! From a chat message to a reply: adapters (console here, Telegram later)
//! turn their input into an [`IncomingMessage`] and hand it to the one
//! [`Dispatcher`], which routes it to a plugin.

pub mod command;
pub mod console;
mod dispatcher;
mod help;

pub use dispatcher::{Dispatcher, IncomingMessage, OutgoingReply};
