//! Test plugin: never returns, to prove the host's deadline stops it.
use wasmbot_sdk::prelude::*;

fn handle(_msg: Message) -> HandlerResult {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

wasmbot_sdk::handler!(handle);
