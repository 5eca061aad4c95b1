//! Test plugin: counts the messages its instance has served, in its own
//! memory. Every instance serves one message, pre-warmed or not, so the
//! answer must always be 1.
use std::sync::atomic::{AtomicU32, Ordering};

use wasmbot_sdk::prelude::*;

static CALLS: AtomicU32 = AtomicU32::new(0);

fn handle(_msg: Message) -> HandlerResult {
    let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    println!("fresh served message {calls}");
    Ok(Reply::text(format!("calls in this instance: {calls}")))
}

wasmbot_sdk::handler!(handle);
