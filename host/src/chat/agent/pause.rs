//! A `confirm` tool waits for the user: the turn is kept in `agent_pauses`
//! (it survives a restart), the chat gets a question naming the tool and
//! its input with Allow / Deny buttons (kept under [`AGENT_BUTTONS`], which
//! no plugin can be called), and a press takes the turn out once and
//! finishes it: the tool runs (or Claude is told the user refused) and
//! Claude goes on, its answer streamed into the chat.

use std::sync::Mutex;

use tokio::sync::watch;

use super::TurnContext;
use super::log::{self, summary};
use super::step::{Ended, Turn};
use crate::chat::dispatcher::carry_out;
use crate::chat::event::{Answer, ChatAction, PromptChange};
use crate::runtime::{Action, Button, Format, MessageRef, Outgoing};

/// The owner of the agent's buttons: not a plugin name (those start with a
/// letter), so a press is the agent's, never a plugin's.
pub const AGENT_BUTTONS: &str = "@agent";

const ALLOW: &str = "allow";
const DENY: &str = "deny";

/// Keeps `turn` (its first waiting tool is asked about) and adds the
/// question to the chat's actions; the reason when it cannot be kept.
pub async fn ask(
    cx: &TurnContext,
    turn: &Turn,
    actions: &Mutex<Vec<(String, Vec<Action>)>>,
) -> Result<(), String> {
    let Some(store) = &cx.services.store else {
        return Err(
            "This tool needs your approval, but the bot has no database to keep the question in."
                .into(),
        );
    };
    let Some(first) = turn.waiting.first() else {
        return Err("nothing to ask".into());
    };
    if cx.link.is_none() {
        return Err("This tool needs your approval, and there is no chat to ask you in.".into());
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let kept = serde_json::to_string(turn)
        .map_err(|error| format!("the turn could not be kept: {error}"))?;
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

/// A press on an Allow or Deny button (`data` is the button's): finishes
/// the turn it belongs to, and answers the press.
pub async fn resume(cx: TurnContext, data: &str, pressed_message: i64) -> Answer {
    let mut answer = Answer {
        correlation_id: cx.correlation_id.to_string(),
        plugin: None,
        pressed_message: Some(pressed_message),
        is_press: true,
        actions: Vec::new(),
        prompt: PromptChange::Keep,
    };
    let notice = |answer: &mut Answer, text: &str| {
        answer.actions.push(ChatAction::Notice {
            text: text.to_string(),
            alert: false,
        })
    };
    let (allow, id) = match data.split_once(':') {
        Some((ALLOW, id)) => (true, id),
        Some((DENY, id)) => (false, id),
        _ => {
            notice(&mut answer, "This button no longer works.");
            return answer;
        }
    };
    let Some(store) = cx.services.store.clone() else {
        notice(&mut answer, "This button no longer works.");
        return answer;
    };
    let kept = match store.agent_pause_take(id).await {
        Ok(Some(kept)) => kept,
        Ok(None) => {
            notice(&mut answer, "This was already answered, or it has expired.");
            return answer;
        }
        Err(error) => {
            tracing::error!(%error, "could not read a waiting turn");
            notice(&mut answer, "Sorry, that did not work. Please try again.");
            return answer;
        }
    };
    let (chat_id, user_id, turn, expires_ms) = kept;
    if chat_id != cx.chat_id || user_id != cx.user_id {
        // Not this user's question: put it back for the one who was asked.
        if let Err(error) = store
            .agent_pause_keep(id, chat_id, user_id, &turn, expires_ms)
            .await
        {
            tracing::error!(%error, "could not put a waiting turn back");
        }
        notice(&mut answer, "Only the person who asked can answer this.");
        return answer;
    }
    let Ok(mut turn) = serde_json::from_str::<Turn>(&turn) else {
        notice(&mut answer, "This question can no longer be answered.");
        return answer;
    };
    answer.plugin = Some(turn.caller.clone());
    let expired = expires_ms <= chrono::Utc::now().timestamp_millis();
    let waiting = turn.waiting.remove(0);
    let verdict = match (expired, allow) {
        (true, _) => "⌛ Expired",
        (false, true) => "✅ Allowed",
        (false, false) => "🚫 Denied",
    };
    answer.actions.push(ChatAction::Edit {
        message: MessageRef::Id(pressed_message),
        text: Some(format!(
            "{verdict}: `{}` ({})",
            waiting.tool,
            summary(&waiting.input)
        )),
        format: Format::Plain,
        keyboard: Vec::new(),
    });
    notice(&mut answer, verdict);
    if expired {
        return answer;
    }
    let shown = Mutex::new(Vec::new());
    let (text, receiver) = watch::channel(String::new());
    let cx = &cx;
    let going_on = async {
        let outcome = if allow {
            log::run_logged(cx, &waiting.tool, &waiting.input).await
        } else {
            log::denied(cx, &waiting.plugin, &waiting.tool, &waiting.input).await
        };
        turn.finish_use(
            cx,
            &waiting.id,
            &waiting.tool,
            &waiting.input,
            outcome,
            &text,
            &shown,
        );
        turn.restart_shown();
        let ended = turn.run(cx, &text, &shown).await;
        drop(text);
        ended
    };
    let ended = match &cx.link {
        Some(link) => {
            let (ended, shown) = tokio::join!(going_on, link.show_growing(receiver));
            if let Err(error) = shown {
                tracing::warn!(error = %format!("{error:#}"), "the agent's answer could not be shown in full");
            }
            ended
        }
        None => going_on.await,
    };
    if let Ended::Failed(failure) = ended {
        tracing::warn!(%failure, "an agent turn broke off after a confirmation");
    }
    for (plugin, actions) in shown.into_inner().unwrap_or_default() {
        carry_out(
            cx.services.store.as_ref(),
            &mut answer,
            &plugin,
            (cx.chat_id, cx.user_id),
            actions,
        )
        .await;
    }
    answer
}
