//! Test plugin: raw access to its cache, to prove scoping, limits and errors.
//! `/cset KEY VALUE [TTL_MS]`, `/cget KEY`, `/cincr KEY DELTA [TTL_MS]`, `/cdel KEY`
//! (and the same with a `2` suffix, for a second copy under another name).
use std::time::Duration;

use wasmbot_sdk::cache::CacheError;
use wasmbot_sdk::prelude::*;

fn handle(msg: Message) -> HandlerResult {
    let words: Vec<&str> = msg.arg_words().collect();
    let word = |i: usize| words.get(i).copied().unwrap_or("");
    let ttl = |i: usize| {
        words
            .get(i)
            .and_then(|w| w.parse().ok())
            .map(Duration::from_millis)
    };
    let command = msg.command.trim_end_matches('2');
    let reply = match command {
        "cset" => cache::set(word(0), word(1), ttl(2)).map(|()| "stored".to_string()),
        "cget" => cache::get(word(0)).map(|v| v.unwrap_or_else(|| "none".into())),
        "cincr" => {
            let delta = word(1).parse().map_err(|_| "DELTA must be a number")?;
            cache::incr(word(0), delta, ttl(2)).map(|n| n.to_string())
        }
        _ => cache::delete(word(0)).map(|existed| existed.to_string()),
    };
    Ok(Reply::text(reply.unwrap_or_else(|error| kind(&error))))
}

/// The error's variant, for tests to match on.
fn kind(error: &CacheError) -> String {
    let kind = match error {
        CacheError::InvalidKey(_) => "invalid-key",
        CacheError::TooLarge(_) => "too-large",
        CacheError::InvalidTtl(_) => "invalid-ttl",
        CacheError::NotANumber => "not-a-number",
        CacheError::Unavailable(_) => "unavailable",
        CacheError::OverBudget(_) => "over-budget",
        CacheError::QuotaExceeded(_) => "quota-exceeded",
    };
    format!("error {kind}: {}", error.message())
}

wasmbot_sdk::handler!(handle);
