//! `/note <text>` keeps a note for this chat, `/notes` lists them,
//! `/notes clear` forgets them. Notes survive restarts (state capability).

use wasmbot_sdk::prelude::*;

const MAX_NOTES: usize = 50;

fn handle(msg: Message) -> HandlerResult {
    let key = format!("chat:{}:notes", msg.chat_id);
    let mut notes: Vec<String> = state::get(&key)?.unwrap_or_default();
    match (msg.command.as_str(), msg.args.as_str()) {
        ("note", "") => Ok(Reply::text(
            "Usage: /note <text> keeps a note; /notes lists them.",
        )),
        ("note", text) => {
            if notes.len() >= MAX_NOTES {
                notes.remove(0);
            }
            notes.push(text.to_string());
            state::set(&key, &notes)?;
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
        (_, "clear") => {
            state::delete(&key)?;
            audit::record("notes_cleared", audit::Status::Ok, &json!({}))?;
            Ok(Reply::text("All notes of this chat are forgotten."))
        }
        _ if notes.is_empty() => Ok(Reply::text("No notes yet. Add one with /note <text>.")),
        _ => {
            let list: Vec<String> = notes
                .iter()
                .enumerate()
                .map(|(i, note)| format!("{}. {note}", i + 1))
                .collect();
            Ok(Reply::text(list.join("\n")))
        }
    }
}

wasmbot_sdk::handler!(handle);
