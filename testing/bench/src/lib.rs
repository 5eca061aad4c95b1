//! Benchmark plugin: `/calls N` makes N state calls (alternating set and
//! get) and N log calls, to measure what one host call costs.
use wasmbot_sdk::prelude::*;

fn handle(msg: Message) -> HandlerResult {
    let calls: u32 = msg.args.parse().unwrap_or(100);
    for i in 0..calls / 2 {
        state::set("counter", &i)?;
        let _: Option<u32> = state::get("counter")?;
    }
    for _ in 0..calls {
        log::info("tick", &[]);
    }
    Ok(Reply::text("done"))
}

wasmbot_sdk::handler!(handle);
