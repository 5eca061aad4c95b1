//! Benchmark plugin: `/calls N` makes N state calls (alternating set and
//! get) and N log calls; `/calls cache N` makes N `cache.get` calls of one
//! key held in memory, a host call that does no I/O, to measure what the
//! crossing itself costs.
use wasmbot_sdk::prelude::*;

fn handle(msg: Message) -> HandlerResult {
    if let Some(count) = msg.args.strip_prefix("cache ") {
        let calls: u32 = count.trim().parse().unwrap_or(100);
        let mut found = 0;
        for _ in 0..calls {
            if cache::get("hot")?.is_some() {
                found += 1;
            }
        }
        if found != calls {
            return Err(format!("found {found} of {calls}"));
        }
        return Ok(Reply::text("done"));
    }
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
