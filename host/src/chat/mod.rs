//! From a chat message to a reply: adapters (console, Telegram)
//! turn their input into an [`IncomingMessage`] and hand it to the one
//! [`Dispatcher`], which routes it to a plugin.

pub mod access;
pub mod command;
pub mod console;
mod dispatcher;
mod help;
pub mod lanes;
pub mod telegram;

pub use dispatcher::{Dispatcher, IncomingMessage, NativeHandler, OutgoingReply};
