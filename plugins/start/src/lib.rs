//! `/start`: greets the user and points them to /help.

use wasmbot_sdk::prelude::*;

fn handle(msg: Message) -> HandlerResult {
    Ok(Reply::text(format!(
        "Hello, {}! I'm your wasmbot assistant. Send /help to see what I can do.",
        msg.display_name()
    )))
}

wasmbot_sdk::handler!(handle);
