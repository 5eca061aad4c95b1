//! Test plugin: allocates 1 GiB, to prove the host's memory cap stops it.
use wasmbot_sdk::prelude::*;

fn handle(_msg: Message) -> HandlerResult {
    let block = vec![1u8; 1 << 30];
    Ok(Reply::text(format!(
        "allocated {} bytes",
        std::hint::black_box(block).len()
    )))
}

wasmbot_sdk::handler!(handle);
