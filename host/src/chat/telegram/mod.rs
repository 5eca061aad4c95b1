//! `wasmbot run`: the Telegram adapter. One update travels
//! polling/webhook -> `Inbox::keep` (a durable row, before Telegram is told
//! it was received) -> `inbox::run` claims it (the oldest pending update of
//! its chat, leased to this process) -> the chat's lane ->
//! `TelegramAdapter::handle` -> `Dispatcher::handle` (access check, plugin)
//! -> `ReplySender` -> Telegram -> the row is marked done.

mod adapter;
mod inbox;
mod instance;
mod jobs;
mod live;
mod menu;
mod polling;
mod replies;
mod runner;
mod serve;
mod settings;
mod updates;
mod webhook;

pub use inbox::{Inbox, MAX_ATTEMPTS, MAX_IN_FLIGHT};
pub use live::{DRAFT_INTERVAL, EDIT_INTERVAL, GROUP_EDIT_INTERVAL, TelegramLink};
pub use replies::ReplySender;
pub use serve::{
    DRAIN_DEADLINE, TelegramBot, TelegramReceiver, access_policy, admin_alert_sink, connect,
    job_output,
};
pub use settings::{DEFAULT_INBOX_LEASE_SECS, OPS_PATHS, TelegramSettings};
