//! Test plugin: imports `log` although its manifest grants nothing.
use wasmbot_sdk::prelude::*;

fn handle(_msg: Message) -> HandlerResult {
    log::info("this import must never be linked", &[]);
    Ok(Reply::text("ungranted import was linked"))
}

wasmbot_sdk::handler!(handle);
