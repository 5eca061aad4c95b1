//! Built against `wasmbot:plugin/conversation@0.2.0`. `/compat_conversation
//! ARGS` answers `compat 0.2.0 conversation: ARGS (config says VALUE)` with
//! one button; pressing it answers `pressed DATA`.

#[allow(clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        world: "wasmbot:plugin/conversation@0.2.0",
        path: ["../../../wit", "../../../wit/v0.2"],
        generate_all,
    });
}

use bindings::wasmbot::plugin0_2_0::config;
use bindings::wasmbot::plugin0_2_0::events::{Action, Button, Event, EventKind, Format, Outgoing};

struct Conversation;

fn send(text: String, keyboard: Vec<Vec<Button>>) -> Action {
    Action::Send(Outgoing {
        text,
        format: Format::Plain,
        keyboard,
        reply_to: None,
        name: None,
    })
}

impl bindings::Guest for Conversation {
    fn handle(event: Event) -> Result<Vec<Action>, String> {
        Ok(vec![match event.kind {
            EventKind::Command(command) => send(
                format!(
                    "compat 0.2.0 conversation: {} (config says {})",
                    command.args,
                    config::get("greeting").unwrap_or_default()
                ),
                vec![vec![Button {
                    label: "Press".into(),
                    data: "compat".into(),
                }]],
            ),
            EventKind::Button(press) => send(format!("pressed {}", press.data), Vec::new()),
            EventKind::Text(text) => send(format!("text {text}"), Vec::new()),
        }])
    }
}

bindings::export!(Conversation with_types_in bindings);
