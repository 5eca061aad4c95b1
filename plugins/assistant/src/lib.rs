//! The assistant: a conversation with Claude, and a memory of notes.
//!
//! Plain text (this plugin takes it as the operator's `DEFAULT_PLUGIN`) and
//! `/ask <question>` talk with Claude, who sees the last few turns of this
//! chat and, when embeddings are configured, the chat's remembered notes
//! closest to the question; `/ask reset` starts over. The answer grows in
//! the chat as Claude writes it; a photo or a PDF sent with the question
//! (as its caption) is shown to Claude. `/remember <text>`
//! keeps a note, `/recall <question>` finds the closest ones, `/forget`
//! clears this chat's.

mod chat;
mod memory;

use wasmbot_sdk::prelude::*;

fn handle(event: Event) -> EventResult {
    if let Some(text) = event.text_input() {
        return chat::converse(&event, text.trim());
    }
    let Some(command) = event.command() else {
        // No buttons, no questions: nothing else should reach this plugin.
        return Ok(Actions::new());
    };
    let reply = match (command.name.as_str(), command.args.as_str()) {
        ("ask", "reset") => chat::reset(event.chat_id)?,
        ("ask", question) => return chat::converse(&event, question),
        ("remember", "") => Reply::text("Usage: /remember <text>"),
        ("remember", text) => memory::remember(&event, text)?,
        ("recall", "") => Reply::text("Usage: /recall <what you are looking for>"),
        ("recall", query) => memory::recall(event.chat_id, query)?,
        _ => memory::forget(event.chat_id)?,
    };
    Ok(reply.into())
}

wasmbot_sdk::handler!(handle);
