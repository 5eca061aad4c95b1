//! A press on the agent's Allow or Deny: the paused turn is taken out
//! once, the tool runs (or Claude is told the user refused), and Claude
//! goes on, its answer streamed into the chat.

use std::sync::Mutex;

use tokio::sync::watch;

use super::context::TurnContext;
use super::log::{self, summary};
use super::pause::{ALLOW, DENY};
use super::shown::{Shown, grow_while};
use super::step::{Ended, Turn};
use crate::chat::carry::carry_out;
use crate::chat::event::{Answer, ChatAction, OutgoingMessage, PromptChange};
use crate::runtime::{Format, MessageRef};

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
    // Calls recorded for the same message are reused here too (a message
    // handled again may have asked the same question twice).
    let cx = &TurnContext {
        turn_key: turn.turn_key.clone(),
        ..cx
    };
    let going_on = async {
        let outcome = if allow {
            log::run_logged(cx, &waiting.tool, &waiting.input).await
        } else {
            log::denied(cx, &waiting.plugin, &waiting.tool, &waiting.input).await
        };
        // What is shown now starts afresh, in a message of its own.
        turn.restart_shown();
        turn.finish_use(
            cx,
            &waiting.id,
            &waiting.tool,
            &waiting.input,
            outcome,
            &text,
            &shown,
        );
        let ended = turn.run(cx, &text, &shown).await;
        drop(text);
        ended
    };
    let (ended, text_shown) = grow_while(&cx.link, receiver, going_on).await;
    if let Shown::NoChat(text) = text_shown
        && !text.trim().is_empty()
    {
        // No chat to grow it in: the answer is sent whole.
        answer
            .actions
            .push(ChatAction::Send(OutgoingMessage::plain(text.trim())));
    }
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
