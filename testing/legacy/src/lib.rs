//! Test plugin: built against the first world, `wasmbot:plugin/handler@0.1.0`
//! (one command in, one reply out), with raw `wit-bindgen` and no SDK, to
//! prove that a component made before 0.2.0 still loads and answers.
//! `/legacy ARGS` answers `legacy 0.1.0 plugin: ARGS`.

#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({
        world: "wasmbot:plugin/handler@0.1.0",
        path: "../../wit",
    });
}

use bindings::wasmbot::plugin::types::{Message, Reply, ReplyFormat};

struct Legacy;

impl bindings::Guest for Legacy {
    fn handle(msg: Message) -> Result<Reply, String> {
        let args = if msg.args.is_empty() {
            "(no args)"
        } else {
            msg.args.as_str()
        };
        Ok(Reply {
            text: format!("legacy 0.1.0 plugin: {args}"),
            format: ReplyFormat::Plain,
        })
    }
}

bindings::export!(Legacy with_types_in bindings);
