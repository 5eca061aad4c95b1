//! Built against `wasmbot:plugin/handler@0.1.0` as it stood when 0.2.0 was
//! released (it was edited in place until then: `state` gained
//! `quota-exceeded`). `/compat_handler ARGS` writes ARGS to `state` and
//! reads it back: `compat 0.1.0: state kept "ARGS"`.

#[allow(clippy::all)]
mod bindings {
    wit_bindgen::generate!({ world: "wasmbot:plugin/handler@0.1.0", path: "../../../wit" });
}

use bindings::wasmbot::plugin::state;
use bindings::wasmbot::plugin::types::{Message, Reply, ReplyFormat};

struct Handler;

impl bindings::Guest for Handler {
    fn handle(msg: Message) -> Result<Reply, String> {
        // State holds JSON text: ARGS as a JSON string (plain words in the test).
        let kept = state::set("compat", &format!("\"{}\"", msg.args))
            .and_then(|()| state::get("compat"))
            .map_err(|error| format!("state refused: {error:?}"))?;
        Ok(Reply {
            text: format!("compat 0.1.0: state kept {}", kept.unwrap_or_default()),
            format: ReplyFormat::Plain,
        })
    }
}

bindings::export!(Handler with_types_in bindings);
