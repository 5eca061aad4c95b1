//! `/note <text>` keeps a note for this chat, `/notes` lists them with a
//! "✓" button each (a press marks that note done), `/notes export` sends
//! them as a text file, `/notes clear` forgets them. `/note` alone asks what to note. Notes survive restarts (state).
//!
//! State: `chat:{id}:notes` holds the chat's notes, oldest first, each
//! `{"id": n, "text": "..."}`. The first version kept plain strings; they
//! are given ids (and saved so) the first time the list is read.

use serde::{Deserialize, Serialize};
use wasmbot_sdk::prelude::*;

const MAX_NOTES: usize = 50;
/// Characters of a note shown on its button.
const LABEL_CHARS: usize = 24;
/// Button data: this prefix and the note's id.
const DONE: &str = "done:";
/// State of the question `/note` asks.
const ASKED: &str = "note";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    /// Stable and never reused: a press names the note by it.
    id: u64,
    text: String,
}

/// A stored note: the current shape, or the first version's plain text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Note(Note),
    Text(String),
}

fn handle(event: Event) -> EventResult {
    let key = format!("chat:{}:notes", event.chat_id);
    // A command is never an answer: the host ends the question first.
    if event.is_answer() && event.command().is_none() {
        return answer(&event, &key);
    }
    if let Some(press) = event.press() {
        return done(&key, press);
    }
    let Some(command) = event.command() else {
        return Ok(Reply::text("Usage: /note <text> keeps a note; /notes lists them.").into());
    };
    match (command.name.as_str(), command.args.as_str()) {
        ("note", "") => Ok(question("What should I note?").into()),
        ("note", text) => Ok(add(&key, event.unique_id(), text)?.into()),
        (_, "export") => {
            let notes = load(&key)?;
            if notes.is_empty() {
                return Ok(
                    Reply::text("No notes to export yet. Add one with /note <text>.").into(),
                );
            }
            Ok(export(&notes).into())
        }
        (_, "clear") => {
            state::delete(&key)?;
            audit::record("notes_cleared", audit::Status::Ok, &json!({}))?;
            Ok(Reply::text("All notes of this chat are forgotten.").into())
        }
        _ => {
            let notes = load(&key)?;
            if notes.is_empty() {
                return Ok(Reply::text("No notes yet. Add one with /note <text>.").into());
            }
            Ok(list(&notes).into())
        }
    }
}

/// The chat's next message after `/note` asked for one.
fn answer(event: &Event, key: &str) -> EventResult {
    match (event.text_input().map(str::trim), event.press()) {
        (Some(text), _) if !text.is_empty() => Ok(add(key, event.unique_id(), text)?.into()),
        // A ✓ pressed meanwhile still works; the question goes on.
        (_, Some(press)) if press.data.starts_with(DONE) => Ok(done(key, press)?.then(question(
            "Still waiting for your note: send it as text, or /cancel.",
        ))),
        _ => Ok(question("Please send the note as text, or /cancel to stop.").into()),
    }
}

fn question(text: &str) -> Ask {
    ask(text).state_text(ASKED)
}

fn add(key: &str, seed: u64, text: &str) -> Result<Reply, String> {
    let mut notes = load(key)?;
    if notes.len() >= MAX_NOTES {
        notes.remove(0);
    }
    notes.push(Note {
        id: fresh_id(seed, &notes),
        text: text.to_string(),
    });
    state::set(key, &notes)?;
    audit::record(
        "note_added",
        audit::Status::Ok,
        &json!({ "count": notes.len() }),
    )?;
    Ok(Reply::text(format!(
        "Noted ({} in this chat).",
        notes.len()
    )))
}

/// A ✓ press: the note leaves the list, and the pressed message shows what is left.
fn done(key: &str, press: &ButtonPress) -> Result<Actions, String> {
    let mut notes = load(key)?;
    let id: Option<u64> = press.data.strip_prefix(DONE).and_then(|id| id.parse().ok());
    let position = id.and_then(|id| notes.iter().position(|note| note.id == id));
    let notice_text = match position {
        Some(at) => {
            let note = notes.remove(at);
            state::set(key, &notes)?;
            audit::record(
                "note_done",
                audit::Status::Ok,
                &json!({ "count": notes.len() }),
            )?;
            format!("Done: {}", note.text)
        }
        None => "That note was already done.".to_string(),
    };
    let shown = if notes.is_empty() {
        Reply::text("No notes left.")
    } else {
        list(&notes)
    };
    Ok(actions![edit(press.message(), shown), notice(notice_text)])
}

/// The numbered list, with one "✓" button a row per note.
fn list(notes: &[Note]) -> Reply {
    let lines: Vec<String> = notes
        .iter()
        .enumerate()
        .map(|(i, note)| format!("{}. {}", i + 1, note.text))
        .collect();
    let mut reply = Reply::text(lines.join("\n"));
    for (i, note) in notes.iter().enumerate() {
        reply = reply
            .button(label(i + 1, &note.text), format!("{DONE}{}", note.id))
            .row();
    }
    reply
}

/// The notes as a text file to keep: one per line, numbered.
fn export(notes: &[Note]) -> File {
    let text: String = notes
        .iter()
        .enumerate()
        .map(|(i, note)| format!("{}. {}\n", i + 1, note.text))
        .collect();
    let count = notes.len();
    let noun = if count == 1 { "note" } else { "notes" };
    File::document("notes.txt", text).caption(format!("Your {count} {noun}."))
}

/// "✓ 2 buy milk", the note cut to fit a button.
fn label(number: usize, text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = text.chars().take(LABEL_CHARS).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("✓ {number} {short}")
}

/// The chat's notes, in the current shape: plain strings of the first
/// version get ids, and the list is saved so those ids stay.
fn load(key: &str) -> Result<Vec<Note>, String> {
    let stored: Vec<Stored> = state::get(key)?.unwrap_or_default();
    let legacy = stored.iter().any(|s| matches!(s, Stored::Text(_)));
    let mut notes: Vec<Note> = Vec::with_capacity(stored.len());
    for (i, entry) in stored.into_iter().enumerate() {
        let note = match entry {
            Stored::Note(note) => note,
            Stored::Text(text) => {
                let seed = fnv1a(&format!("{key}:{i}:{text}"));
                Note {
                    id: fresh_id(seed, &notes),
                    text,
                }
            }
        };
        notes.push(note);
    }
    if legacy {
        state::set(key, &notes)?;
    }
    Ok(notes)
}

/// An id from `seed` that no note in `notes` has, within JSON's safe integers.
fn fresh_id(seed: u64, notes: &[Note]) -> u64 {
    let mut id = seed & ((1 << 53) - 1);
    while notes.iter().any(|note| note.id == id) {
        id = (id + 1) & ((1 << 53) - 1);
    }
    id
}

/// FNV-1a: stable across builds.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The assistant's tools: `note_add`, `notes_list`, `note_done` (by its
/// number in the list; the host asks the user first).
fn tool(call: ToolCall) -> ToolResult {
    let key = format!("chat:{}:notes", call.chat_id);
    match call.name.as_str() {
        "note_add" => {
            let text = call.text("text").unwrap_or_default().trim();
            if text.is_empty() {
                return Err("The note's text is empty.".into());
            }
            let seed = fnv1a(&format!("{}:{text}", call.correlation_id));
            Ok(add(&key, seed, text)?.text.into())
        }
        "notes_list" => {
            let notes = load(&key)?;
            if notes.is_empty() {
                return Ok("There are no notes in this chat.".into());
            }
            let lines: Vec<String> = notes
                .iter()
                .enumerate()
                .map(|(at, note)| format!("{}. {}", at + 1, note.text))
                .collect();
            Ok(lines.join("\n").into())
        }
        "note_done" => {
            let number = call.input["number"].as_u64().unwrap_or(0) as usize;
            let mut notes = load(&key)?;
            if number == 0 || number > notes.len() {
                return Err(format!(
                    "There is no note {number}: this chat has {} (numbered from 1, as notes_list shows).",
                    notes.len()
                ));
            }
            let note = notes.remove(number - 1);
            state::set(&key, &notes)?;
            audit::record(
                "note_done",
                audit::Status::Ok,
                &json!({ "count": notes.len() }),
            )?;
            Ok(format!("Done: {} ({} left).", note.text, notes.len()).into())
        }
        other => Err(format!("notes has no tool {other:?}")),
    }
}

wasmbot_sdk::handler!(handle, tools = tool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_and_new_notes_read_alike() {
        let stored: Vec<Stored> =
            serde_json::from_str(r#"["buy milk", {"id": 7, "text": "call mom"}]"#).unwrap();
        assert!(matches!(&stored[0], Stored::Text(text) if text == "buy milk"));
        assert!(matches!(&stored[1], Stored::Note(note) if note.id == 7));
    }

    #[test]
    fn labels_are_short_and_ids_fresh() {
        assert_eq!(label(2, "buy  milk"), "✓ 2 buy milk");
        let long = label(10, &"x".repeat(100));
        assert!(long.ends_with('…') && long.chars().count() <= wasmbot_sdk::MAX_BUTTON_LABEL_CHARS);
        let notes = [Note {
            id: 5,
            text: String::new(),
        }];
        assert_eq!(fresh_id(5, &notes), 6);
        assert!(fresh_id(u64::MAX, &[]) < 1 << 53);
    }

    #[test]
    fn the_export_is_a_numbered_text_file() {
        let notes = vec![
            Note {
                id: 1,
                text: "buy milk".into(),
            },
            Note {
                id: 2,
                text: "call Ada".into(),
            },
        ];
        let Action::SendFile(file) = Action::from(export(&notes)) else {
            panic!("not a file")
        };
        assert_eq!(file.name, "notes.txt");
        assert_eq!(file.kind, FileKind::Document);
        assert_eq!(
            String::from_utf8(file.data).unwrap(),
            "1. buy milk\n2. call Ada\n"
        );
        assert_eq!(file.caption, "Your 2 notes.");
    }

    #[test]
    fn the_list_has_a_button_row_per_note() {
        let notes = vec![
            Note {
                id: 1,
                text: "a".into(),
            },
            Note {
                id: 2,
                text: "b".into(),
            },
        ];
        let sent = wasmbot_sdk::Outgoing::from(list(&notes));
        assert_eq!(sent.text, "1. a\n2. b");
        assert_eq!(sent.keyboard.len(), 2, "{:?}", sent.keyboard);
        assert_eq!(sent.keyboard[1][0].data, "done:2");
        assert!(Actions::from(list(&notes)).check().is_ok());
    }
}
