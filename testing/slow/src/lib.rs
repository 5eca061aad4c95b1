//! Test plugin: `/slow MS TEXT` answers `TEXT` after MS milliseconds, so a
//! test can kill the host while a message is being handled.
use std::time::Duration;

use wasmbot_sdk::prelude::*;

fn handle(msg: Message) -> HandlerResult {
    let (millis, text) = msg.args.split_once(' ').unwrap_or((&msg.args, ""));
    let millis: u64 = millis
        .parse()
        .map_err(|_| "usage: /slow MILLISECONDS TEXT".to_string())?;
    std::thread::sleep(Duration::from_millis(millis));
    Ok(Reply::text(format!("slow: {text}")))
}

wasmbot_sdk::handler!(handle);
