//! Test plugin: panics, to prove a guest panic ends only that call.
use wasmbot_sdk::prelude::*;

fn handle(msg: Message) -> HandlerResult {
    if msg.args == "error" {
        return Err("the crash plugin refused politely".to_string());
    }
    panic!("crash plugin panicked on purpose");
}

fn tool(_call: ToolCall) -> ToolResult {
    panic!("crash plugin's tool panicked on purpose");
}

wasmbot_sdk::handler!(handle, tools = tool);
