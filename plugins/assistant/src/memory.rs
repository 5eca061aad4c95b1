//! `/remember <text>` keeps a note as a vector, `/recall <question>` finds
//! the notes of this chat closest in meaning, `/forget` clears this chat's;
//! [`relevant`] finds the notes that may help Claude answer a question.
//!
//! Notes live in one collection per embedding size (`notes-1536`…), so the
//! operator may switch embeddings models: a chat's notes made with the old
//! model are embedded again from their text the next time that chat uses
//! its memory, and nothing is lost.

use serde::{Deserialize, Serialize};
use wasmbot_sdk::prelude::*;
use wasmbot_sdk::vectors::{Distance, FieldMatch, Point, VectorError};

const PREFIX: &str = "notes-";
const RECALL_LIMIT: u32 = 5;
/// Notes added to a question for Claude: at most this many...
const CONTEXT_LIMIT: u32 = 3;
/// ...at least this similar to the question (cosine).
const CONTEXT_MIN_SCORE: f32 = 0.3;
/// Notes moved per step: one embeddings request's worth.
const MOVE_BATCH: u32 = 64;

#[derive(Serialize, Deserialize)]
struct Note {
    chat: i64,
    /// Unix seconds.
    time: u64,
    text: String,
}

pub fn remember(event: &Event, text: &str) -> Result<Reply, String> {
    let vector = vectors::embed_one(text)?;
    let collection = current_collection(event.chat_id, vector.len())?;
    let note = Note {
        chat: event.chat_id,
        time: event.unix_time(),
        text: text.to_string(),
    };
    vectors::upsert(&collection, event.unique_id(), vector, &note)?;
    Ok(Reply::text("Remembered. Ask me with /recall <question>."))
}

pub fn recall(chat: i64, query: &str) -> Result<Reply, String> {
    let vector = vectors::embed_one(query)?;
    let collection = current_collection(chat, vector.len())?;
    let hits = vectors::search(&collection, &vector, RECALL_LIMIT, &[this_chat(chat)])?;
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

pub fn forget(chat: i64) -> Result<Reply, String> {
    for collection in note_collections()? {
        vectors::delete_matching(&collection.name, &[this_chat(chat)])?;
    }
    Ok(Reply::text(
        "Forgotten: nothing is remembered in this chat now.",
    ))
}

/// The texts of `chat`'s notes closest to `question` (best first), for
/// Claude's context. Empty when nothing is remembered, when no embeddings
/// provider is configured, or on any error: the question is answered anyway.
pub fn relevant(chat: i64, question: &str) -> Vec<String> {
    let search = || -> Result<Vec<String>, VectorError> {
        // No collection, no note: spare the embeddings request.
        if note_collections()?.is_empty() {
            return Ok(Vec::new());
        }
        let vector = vectors::embed_one(question)?;
        let collection = current_collection(chat, vector.len())?;
        let hits = vectors::search(&collection, &vector, CONTEXT_LIMIT, &[this_chat(chat)])?;
        Ok(hits
            .iter()
            .filter(|hit| hit.score >= CONTEXT_MIN_SCORE)
            .filter_map(|hit| hit.payload_as::<Note>().ok())
            .map(|note| note.text)
            .collect())
    };
    search().unwrap_or_default()
}

/// The collection for the embeddings model in use, holding every note of
/// `chat`: those made with an earlier model are moved in first.
fn current_collection(chat: i64, dimension: usize) -> Result<String, VectorError> {
    let current = format!("{PREFIX}{dimension}");
    let (same, older): (Vec<_>, Vec<_>) = note_collections()?
        .into_iter()
        .partition(|collection| collection.name == current);
    if same.is_empty() {
        vectors::ensure_collection(&current, dimension as u32, Distance::Cosine)?;
    }
    for collection in older {
        move_notes(chat, &collection.name, collection.dimension, &current)?;
    }
    Ok(current)
}

/// Embeds `chat`'s notes in `from` again with the current model, into `to`.
fn move_notes(chat: i64, from: &str, dimension: u32, to: &str) -> Result<(), VectorError> {
    // Any vector lists the chat's points; only the filter matters here.
    let anywhere = vec![1.0; dimension as usize];
    loop {
        let batch = vectors::search(from, &anywhere, MOVE_BATCH, &[this_chat(chat)])?;
        if batch.is_empty() {
            break;
        }
        let texts: Vec<String> = batch
            .iter()
            .map(|hit| hit.payload_as::<Note>().map(|note| note.text))
            .collect::<Result<_, _>>()?;
        let points: Vec<Point> = vectors::embed(&texts)?
            .into_iter()
            .zip(&batch)
            .map(|(vector, hit)| Point {
                id: hit.id,
                vector,
                payload: hit.payload.clone(),
            })
            .collect();
        vectors::upsert_many(to, &points)?;
        let ids: Vec<u64> = batch.iter().map(|hit| hit.id).collect();
        vectors::delete(from, &ids)?;
    }
    // The last chat to move out removes the old collection.
    if vectors::search(from, &anywhere, 1, &[])?.is_empty() {
        vectors::drop_collection(from)?;
    }
    Ok(())
}

fn note_collections() -> Result<Vec<vectors::CollectionInfo>, VectorError> {
    let mut all = vectors::list_collections()?;
    all.retain(|collection| collection.name.starts_with(PREFIX));
    Ok(all)
}

fn this_chat(chat: i64) -> FieldMatch {
    FieldMatch::integer("chat", chat)
}
