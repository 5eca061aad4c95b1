//! Talking with Claude: plain text or `/ask <question>`. Claude sees the
//! last few turns of this chat (kept in `state`) and the chat's remembered
//! notes closest to the question; `/ask reset` starts over.

use std::time::Duration;

use wasmbot_sdk::llm::{ChatMessage, LlmError};
use wasmbot_sdk::media;
use wasmbot_sdk::prelude::*;

use crate::memory;

pub const USAGE: &str = "Ask me anything: /ask <question>, or just write to me.\n\
    Follow-ups remember our last few turns; /ask reset starts over.";

const SYSTEM: &str = "You are a helpful personal assistant answering in a Telegram chat. \
    Be concise and plain: no Markdown tables.\n\
    Your tools act in this chat: `remind` sets reminders, `weather` gives a city's weather \
    for today and the next two days, `agenda` reads the user's calendar (today or tomorrow), \
    `note_add`, `notes_list` and `note_done` keep the chat's notes (list them first to know a \
    note's number), `convert` converts units and `roll` rolls dice. Use them instead of saying \
    you cannot; answer in the user's language.";
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

/// Claude's answer to `question` (and the photo or PDF sent with it), in
/// the conversation of `event`'s chat, streamed into the chat as Claude
/// writes it.
pub fn converse(event: &Event, question: &str) -> Result<Actions, String> {
    let file = event.attachments.first();
    if question.is_empty() && file.is_none() {
        return Ok(Reply::text(USAGE).into());
    }
    // Fetched first: a file Claude cannot take costs no question.
    let shown = match file.map(readable) {
        Some(Err(refusal)) => return Ok(Reply::text(refusal).into()),
        Some(Ok(media_type)) => file
            .map(|file| media::fetch(file).map(|bytes| (media_type, bytes)))
            .transpose()?,
        None => None,
    };
    let counter = format!("questions:{}", event.user_id);
    // Only a clear "too many" refuses: a cache outage must not stop questions.
    if let Ok(false) = cache::allow(&counter, QUESTIONS_PER_MINUTE, Duration::from_secs(60)) {
        return Ok(Reply::text(format!(
            "That's {QUESTIONS_PER_MINUTE} questions this minute already: please wait a moment before the next."
        ))
        .into());
    }
    let key = history_key(event.chat_id);
    let mut history: Vec<ChatMessage> = state::get(&key)?.unwrap_or_default();
    let question = match (question, &shown) {
        ("", Some(_)) => "What is this?",
        (question, _) => question,
    };
    history.push(ChatMessage::user(question));
    let system = system_prompt(&memory::relevant(event.chat_id, question));
    let mut conversation = llm::Conversation::new(&history).system(system);
    let kind = shown.as_ref().map(|(media_type, _)| *media_type);
    if let Some((media_type, bytes)) = shown {
        conversation = conversation.attach(media_type, bytes);
    }
    let streamed = match conversation.stream_with_tools() {
        Ok(streamed) => streamed,
        Err(LlmError::NotConfigured) => {
            return Ok(Reply::text(format!(
                "{} See \"Asking Claude\" in the README.",
                LlmError::NotConfigured.user_message()
            ))
            .into());
        }
        Err(error) => return Err(error.into()),
    };
    let waiting = streamed.completion.stop_reason == llm::AWAITING_CONFIRMATION;
    if streamed.completion.text.trim().is_empty() && !waiting {
        return Ok(Reply::text("Claude gave no answer to that; please try again.").into());
    }
    // The history keeps the words: a photo is sent once, with its question.
    if let (Some(kind), Some(last)) = (kind, history.last_mut()) {
        *last = ChatMessage::user(format!("[{kind} attached] {question}"));
    }
    history.push(ChatMessage::assistant(streamed.completion.text.as_str()));
    let excess = history.len().saturating_sub(KEPT_MESSAGES);
    history.drain(..excess);
    state::set(&key, &history)?;
    Ok(streamed.into_actions())
}

/// The media type Claude reads `file` as, or what to tell the user.
fn readable(file: &Attachment) -> Result<&'static str, String> {
    let mime = file.mime_type.as_deref().unwrap_or_default();
    match (file.kind, mime) {
        (_, "image/png") => Ok("image/png"),
        (_, "image/gif") => Ok("image/gif"),
        (_, "image/webp") => Ok("image/webp"),
        (_, "application/pdf") => Ok("application/pdf"),
        // Telegram keeps every photo as JPEG.
        (AttachmentKind::Photo, _) | (_, "image/jpeg") => Ok("image/jpeg"),
        (AttachmentKind::Voice | AttachmentKind::Audio, _) => {
            Err("I can't listen to audio yet: please type your question.".into())
        }
        _ => Err("I can read photos, images and PDF documents, not this kind of file.".into()),
    }
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
