//! A `confirm` tool waits for the user: the turn is kept in `agent_pauses`
//! (it survives a restart), the chat gets a question naming the tool and
//! its input with Allow / Deny buttons (kept under [`AGENT_BUTTONS`], which
//! no plugin can be called), and a press takes the turn out once and
//! finishes it: the tool runs (or Claude is told the user refused) and
//! Claude goes on, its answer streamed into the chat.

use std::sync::Mutex;

use super::context::TurnContext;
use super::log::summary;
use crate::runtime::{Action, Button, Format, Outgoing};

/// The owner of the agent's buttons: not a plugin name (those start with a
/// letter), so a press is the agent's, never a plugin's.
pub const AGENT_BUTTONS: &str = "@agent";

pub const ALLOW: &str = "allow";
pub const DENY: &str = "deny";

/// Keeps `turn` (its first waiting tool is asked about) and adds the
/// question to the chat's actions; the reason when it cannot be kept.
pub async fn ask(
    cx: &TurnContext,
    waiting: &[WaitingUse],
    kept: Result<String, String>,
    actions: &Mutex<Vec<(String, Vec<Action>)>>,
) -> Result<(), String> {
    let Some(store) = &cx.services.store else {
        return Err(
            "This tool needs your approval, but the bot has no database to keep the question in."
                .into(),
        );
    };
    let Some(first) = waiting.first() else {
        return Err("nothing to ask".into());
    };
    if cx.link.is_none() {
        return Err("This tool needs your approval, and there is no chat to ask you in.".into());
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let kept = kept?;
    let expires_ms =
        chrono::Utc::now().timestamp_millis() + cx.settings.confirm_wait.as_millis() as i64;
    store
        .agent_pause_keep(&id, cx.chat_id, cx.user_id, &kept, expires_ms)
        .await
        .map_err(|error| {
            tracing::error!(%error, "could not keep a turn that waits for the user");
            "The question could not be kept; please ask again.".to_string()
        })?;
    let question = Outgoing {
        text: format!(
            "🔐 Allow `{}` ({})?\n{}",
            first.tool,
            first.plugin,
            summary(&first.input)
        ),
        format: Format::Plain,
        keyboard: vec![vec![
            Button {
                label: "✅ Allow".into(),
                data: format!("{ALLOW}:{id}"),
            },
            Button {
                label: "🚫 Deny".into(),
                data: format!("{DENY}:{id}"),
            },
        ]],
        reply_to: None,
        name: None,
    };
    crate::infra::sync::lock(actions)
        .push((AGENT_BUTTONS.to_string(), vec![Action::Send(question)]));
    Ok(())
}

/// A `confirm` tool Claude asked for, not yet allowed.
#[derive(serde::Serialize, serde::Deserialize, Clone)]
pub struct WaitingUse {
    pub id: String,
    pub plugin: String,
    pub tool: String,
    pub input: serde_json::Value,
}
