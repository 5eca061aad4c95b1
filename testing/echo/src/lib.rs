//! Test plugin: logs through the host and echoes its arguments.
use wasmbot_sdk::prelude::*;

fn handle(msg: Message) -> HandlerResult {
    log::info("echoing", &[("chars", &msg.args.len().to_string())]);
    Ok(Reply::markdown(format!(
        "echo: {} (user {} in chat {})",
        msg.args, msg.user_id, msg.chat_id
    )))
}

wasmbot_sdk::handler!(handle);
