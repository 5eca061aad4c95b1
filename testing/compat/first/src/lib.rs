//! Built against `wasmbot:plugin/handler@0.1.0` as first released (a81ec77:
//! `types` and `log`, nothing else). `/compat_first ARGS` logs a line and
//! answers `compat 0.1.0 (first release): ARGS`.

#[allow(clippy::all)]
mod bindings {
    wit_bindgen::generate!({ world: "wasmbot:plugin/handler@0.1.0", path: "wit" });
}

use bindings::wasmbot::plugin::log::{Level, log};
use bindings::wasmbot::plugin::types::{Message, Reply, ReplyFormat};

struct First;

impl bindings::Guest for First {
    fn handle(msg: Message) -> Result<Reply, String> {
        log(Level::Info, "compat first release", &[]);
        Ok(Reply {
            text: format!("compat 0.1.0 (first release): {}", msg.args),
            format: ReplyFormat::Plain,
        })
    }
}

bindings::export!(First with_types_in bindings);
