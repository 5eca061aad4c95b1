//! `/remember <text>` keeps a note as a vector, `/recall <question>` finds
//! the notes of this chat closest in meaning, `/forget` clears this chat's.

use serde::{Deserialize, Serialize};
use wasmbot_sdk::prelude::*;
use wasmbot_sdk::vectors::{Distance, FieldMatch, VectorError};

const COLLECTION: &str = "notes";
const RECALL_LIMIT: u32 = 5;

#[derive(Serialize, Deserialize)]
struct Note {
    chat: i64,
    /// Unix seconds.
    time: u64,
    text: String,
}

fn handle(msg: Message) -> HandlerResult {
    match (msg.command.as_str(), msg.args.as_str()) {
        ("remember", "") => Ok(Reply::text("Usage: /remember <text>")),
        ("remember", text) => remember(&msg, text),
        ("recall", "") => Ok(Reply::text("Usage: /recall <what you are looking for>")),
        ("recall", query) => recall(msg.chat_id, query),
        _ => forget(msg.chat_id),
    }
}

fn remember(msg: &Message, text: &str) -> HandlerResult {
    let vector = vectors::embed_one(text)?;
    vectors::ensure_collection(COLLECTION, vector.len() as u32, Distance::Cosine)?;
    let note = Note {
        chat: msg.chat_id,
        time: msg.unix_time(),
        text: text.to_string(),
    };
    vectors::upsert(COLLECTION, msg.unique_id(), vector, &note)?;
    Ok(Reply::text("Remembered. Ask me with /recall <question>."))
}

fn recall(chat: i64, query: &str) -> HandlerResult {
    let vector = vectors::embed_one(query)?;
    let this_chat = [FieldMatch::integer("chat", chat)];
    let hits = match vectors::search(COLLECTION, &vector, RECALL_LIMIT, &this_chat) {
        Err(VectorError::NoSuchCollection(_)) => Vec::new(),
        other => other?,
    };
    if hits.is_empty() {
        return Ok(Reply::text(
            "Nothing remembered in this chat yet. Use /remember <text>.",
        ));
    }
    let lines: Vec<String> = hits
        .iter()
        .enumerate()
        .map(|(i, hit)| {
            let text = hit
                .payload_as::<Note>()
                .map_or_else(|_| "?".into(), |n| n.text);
            format!("{}. {text} ({:.2})", i + 1, hit.score)
        })
        .collect();
    Ok(Reply::text(lines.join("\n")))
}

fn forget(chat: i64) -> HandlerResult {
    match vectors::delete_matching(COLLECTION, &[FieldMatch::integer("chat", chat)]) {
        Ok(()) | Err(VectorError::NoSuchCollection(_)) => Ok(Reply::text(
            "Forgotten: nothing is remembered in this chat now.",
        )),
        Err(error) => Err(error.into()),
    }
}

wasmbot_sdk::handler!(handle);
