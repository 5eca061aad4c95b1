//! Test plugin: raw access to its state, to prove scoping and limits.
//! `/put KEY JSON`, `/fetch KEY`, `/keys PREFIX`, `/drop KEY`.
use wasmbot_sdk::prelude::*;

fn handle(msg: Message) -> HandlerResult {
    let mut words = msg.args.splitn(2, ' ');
    let key = words.next().unwrap_or("");
    let rest = words.next().unwrap_or("");
    let reply = match msg.command.as_str() {
        "put" | "put2" => {
            let value: serde_json::Value = serde_json::from_str(rest).map_err(|e| e.to_string())?;
            match state::set(key, &value) {
                Ok(()) => "stored".to_string(),
                Err(error) => format!("error: {}", error.message()),
            }
        }
        "fetch" | "fetch2" => match state::get::<serde_json::Value>(key) {
            Ok(Some(value)) => value.to_string(),
            Ok(None) => "none".to_string(),
            Err(error) => format!("error: {}", error.message()),
        },
        "keys" | "keys2" => state::list(key)?.join(","),
        _ => state::delete(key)?.to_string(),
    };
    Ok(Reply::text(reply))
}

wasmbot_sdk::handler!(handle);
