//! Who an agent turn is for and what it may reach.

use std::sync::Arc;

use super::settings::AgentSettings;
use crate::infra::services::HostServices;
use crate::infra::store::CompletedToolCall;
use crate::runtime::{ChatLink, PluginSet};

/// Who the turn is for and what it may reach: one per user message (or
/// per press that resumes a turn).
#[derive(Clone)]
pub struct TurnContext {
    pub services: Arc<HostServices>,
    pub plugins: Arc<PluginSet>,
    pub channel: &'static str,
    pub link: Option<Arc<dyn ChatLink>>,
    pub chat_id: i64,
    pub user_id: i64,
    pub correlation_id: Arc<str>,
    /// Names the user's message where it may be handled again (a Telegram
    /// update): completed tool calls are reused instead of run again.
    pub turn_key: Option<String>,
    pub settings: AgentSettings,
    /// What a first handling of this message recorded, loaded at the first
    /// tool call; each entry is reused once.
    pub recorded: Arc<tokio::sync::Mutex<Option<Vec<CompletedToolCall>>>>,
}
