//! Talking with Claude: plain text or `/ask <question>`. Claude sees the
//! last few turns of this chat (kept in `state`) and the chat's remembered
//! notes closest to the question; `/ask reset` starts over.

use std::time::Duration;

use wasmbot_sdk::llm::{ChatMessage, LlmError};
use wasmbot_sdk::prelude::*;

use crate::memory;

pub const USAGE: &str = "Ask me anything: /ask <question>, or just write to me.\n\
    Follow-ups remember our last few turns; /ask reset starts over.";

const SYSTEM: &str = "You are a helpful personal assistant answering in a Telegram chat. \
    Be concise and plain: no Markdown tables.";
/// Messages kept per chat: the last six questions and answers.
const KEPT_MESSAGES: usize = 12;
/// Each question costs tokens: at most this many per user per minute.
const QUESTIONS_PER_MINUTE: u32 = 10;

fn history_key(chat: i64) -> String {
    format!("chat:{chat}:conversation")
}

pub fn reset(chat: i64) -> Result<Reply, String> {
    state::delete(&history_key(chat))?;
    Ok(Reply::text("Done: I've forgotten our conversation."))
}

/// Claude's answer to `question`, in the conversation of `event`'s chat.
pub fn converse(event: &Event, question: &str) -> Result<Reply, String> {
    if question.is_empty() {
        return Ok(Reply::text(USAGE));
    }
    let counter = format!("questions:{}", event.user_id);
    // Only a clear "too many" refuses: a cache outage must not stop questions.
    if let Ok(false) = cache::allow(&counter, QUESTIONS_PER_MINUTE, Duration::from_secs(60)) {
        return Ok(Reply::text(format!(
            "That's {QUESTIONS_PER_MINUTE} questions this minute already: please wait a moment before the next."
        )));
    }
    let key = history_key(event.chat_id);
    let mut history: Vec<ChatMessage> = state::get(&key)?.unwrap_or_default();
    history.push(ChatMessage::user(question));
    let system = system_prompt(&memory::relevant(event.chat_id, question));
    let answer = match llm::complete(Some(&system), &history, None) {
        Ok(answer) => answer,
        Err(LlmError::NotConfigured) => {
            return Ok(Reply::text(format!(
                "{} See \"Asking Claude\" in the README.",
                LlmError::NotConfigured.user_message()
            )));
        }
        Err(error) => return Err(error.into()),
    };
    history.push(ChatMessage::assistant(answer.text.as_str()));
    let excess = history.len().saturating_sub(KEPT_MESSAGES);
    history.drain(..excess);
    state::set(&key, &history)?;
    Ok(Reply::text(answer.text))
}

/// The system prompt, with the notes that may help.
fn system_prompt(notes: &[String]) -> String {
    if notes.is_empty() {
        return SYSTEM.to_string();
    }
    let mut system = format!(
        "{SYSTEM}\n\nThe user asked you to remember these notes in this chat; \
         use them when they help answer:"
    );
    for note in notes {
        system.push_str("\n- ");
        system.push_str(note);
    }
    system
}
