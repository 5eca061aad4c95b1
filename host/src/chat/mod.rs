//! From a chat event to actions: adapters (console, Telegram) turn their
//! input into an [`Incoming`] event and hand it to the one [`Dispatcher`],
//! which routes it to a plugin; [`perform`] carries the plugin's actions
//! out through the adapter's [`ChatOutput`].

pub mod access;
pub mod agent;
mod carry;
pub mod command;
pub mod console;
mod console_files;
mod conversation;
mod dispatcher;
mod event;
mod help;
pub mod jobs;
pub mod lanes;
mod native;
mod perform;
mod record;
mod route;
pub mod telegram;

pub use conversation::{BUTTON_LIFETIME, MESSAGE_MEMORY};
pub use dispatcher::Dispatcher;
pub use event::{
    Answer, ChatAction, Incoming, IncomingMessage, IncomingPress, InlineButton, Keyboard,
    OutgoingFile, OutgoingMessage, PromptChange,
};
pub use native::NativeHandler;
pub use perform::{ChatOutput, perform};
