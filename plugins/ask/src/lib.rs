//! `/ask <question>`: Claude answers, remembering the last few turns of this
//! chat so follow-ups have context. `/ask reset` starts over.

use std::time::Duration;

use wasmbot_sdk::llm::ChatMessage;
use wasmbot_sdk::prelude::*;

const SYSTEM: &str = "You are a helpful personal assistant answering in a Telegram chat. \
    Be concise and plain: no Markdown tables.";
/// Messages kept per chat: the last six questions and answers.
const KEPT_MESSAGES: usize = 12;
/// Each question costs tokens: at most this many per user per minute.
const QUESTIONS_PER_MINUTE: u32 = 10;

fn handle(msg: Message) -> HandlerResult {
    let key = format!("chat:{}:conversation", msg.chat_id);
    match msg.args.as_str() {
        "" => Ok(Reply::text(
            "Ask me anything: /ask <question>\nFollow-ups remember our last few turns; /ask reset starts over.",
        )),
        "reset" => {
            state::delete(&key)?;
            Ok(Reply::text("Done: I've forgotten our conversation."))
        }
        question => {
            let counter = format!("questions:{}", msg.user_id);
            // Only a clear "too many" refuses: a cache outage must not stop questions.
            if let Ok(false) = cache::allow(&counter, QUESTIONS_PER_MINUTE, Duration::from_secs(60))
            {
                return Ok(Reply::text(format!(
                    "That's {QUESTIONS_PER_MINUTE} questions this minute already: please wait a moment before the next."
                )));
            }
            let mut history: Vec<ChatMessage> = state::get(&key)?.unwrap_or_default();
            history.push(ChatMessage::user(question));
            let answer = llm::complete(Some(SYSTEM), &history, None)?;
            history.push(ChatMessage::assistant(answer.text.as_str()));
            let excess = history.len().saturating_sub(KEPT_MESSAGES);
            history.drain(..excess);
            state::set(&key, &history)?;
            Ok(Reply::text(answer.text))
        }
    }
}

wasmbot_sdk::handler!(handle);
