//! Built against `wasmbot:plugin/conversation@0.3.0`: a command and one
//! tool. `/compat_toolbox` answers `compat 0.3.0`; the tool `compat_shout`
//! answers its input's `text` in capitals, with a message for the chat.

#[allow(clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        world: "wasmbot:plugin/conversation@0.3.0",
        path: ["../../../wit", "../../../wit/v0.2", "../../../wit/v0.3"],
        generate_all,
    });
}

use bindings::exports::wasmbot::plugin0_3_0::tools::{Guest as Tools, ToolCall, ToolOutput};
use bindings::wasmbot::plugin0_2_0::events::{Action, Event, Format, Outgoing};

struct Toolbox;

fn send(text: String) -> Action {
    Action::Send(Outgoing {
        text,
        format: Format::Plain,
        keyboard: Vec::new(),
        reply_to: None,
        name: None,
    })
}

impl bindings::Guest for Toolbox {
    fn handle(_event: Event) -> Result<Vec<Action>, String> {
        Ok(vec![send("compat 0.3.0".into())])
    }
}

impl Tools for Toolbox {
    fn call(call: ToolCall) -> Result<ToolOutput, String> {
        // The input is JSON valid against the schema: {"text": "..."}.
        let text = call
            .input
            .split("\"text\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| format!("no text in {}", call.input))?;
        Ok(ToolOutput {
            text: text.to_uppercase(),
            actions: vec![send(format!("shouted for chat {}", call.chat_id))],
        })
    }
}

bindings::export!(Toolbox with_types_in bindings);
