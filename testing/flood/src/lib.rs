//! Test plugin: `/flood KIND N` uses one host resource N times in one call,
//! to prove the host bounds it. KIND is `log` (lines), `audit` (entries),
//! `state` (writes of keys PREFIX0.., with `/flood state N PREFIX`),
//! `reply` (bytes of reply), `error` (bytes of error text) or `emoji`
//! (N emoji, to count the way Telegram does). It answers with what it got.
use wasmbot_sdk::prelude::*;

fn handle(msg: Message) -> HandlerResult {
    let mut words = msg.args.split_whitespace();
    let kind = words.next().unwrap_or("");
    let count = words.next().unwrap_or("");
    // `state` keys are PREFIX0, PREFIX1, ... (`k` unless a third word says).
    let prefix = words.next().unwrap_or("k");
    let count: usize = count.parse().map_err(|_| {
        "usage: /flood log|audit|state|cache|reads|llm|embed|vectors|reply|error|emoji N"
            .to_string()
    })?;
    match kind {
        "log" => {
            for i in 0..count {
                log::info("flood", &[("i", &i.to_string())]);
            }
            Ok(Reply::text(format!("logged {count}")))
        }
        "audit" => {
            let mut refused = 0;
            let mut first_error = String::new();
            for i in 0..count {
                if let Err(error) = audit::record("flood", audit::Status::Ok, &json!({ "i": i })) {
                    refused += 1;
                    if first_error.is_empty() {
                        first_error = error;
                    }
                }
            }
            Ok(Reply::text(format!(
                "audited {} refused {refused}: {first_error}",
                count - refused
            )))
        }
        "state" => {
            let mut refused = 0;
            let mut first_error = String::new();
            for i in 0..count {
                if let Err(error) = state::set(&format!("{prefix}{i}"), &1) {
                    refused += 1;
                    if first_error.is_empty() {
                        first_error = error.message();
                    }
                }
            }
            Ok(Reply::text(format!(
                "wrote {} refused {refused}: {first_error}",
                count - refused
            )))
        }
        // Each of these makes N host calls and reports the first error after
        // which every other call failed the same way: `cache` N sets, `reads`
        // N state reads, `llm` N completions, `embed` N embeddings, `vectors`
        // N upserts of one point (into a collection it ensures first).
        "cache" => Ok(Reply::text(tally(count, |i| {
            cache::set(&format!("{prefix}{i}"), "1", None).map_err(|e| e.message())
        }))),
        "reads" => Ok(Reply::text(tally(count, |i| {
            state::get::<u32>(&format!("{prefix}{i}"))
                .map(drop)
                .map_err(|e| e.message())
        }))),
        "llm" => Ok(Reply::text(tally(count, |_| {
            llm::ask("hi").map(drop).map_err(|e| format!("{e:?}"))
        }))),
        "embed" => Ok(Reply::text(tally(count, |_| {
            vectors::embed_one("hi")
                .map(drop)
                .map_err(|e| format!("{e:?}"))
        }))),
        "vectors" => {
            vectors::ensure_collection("flood", 3, vectors::Distance::Cosine)
                .map_err(|e| format!("{e:?}"))?;
            Ok(Reply::text(tally(count, |i| {
                vectors::upsert("flood", i as u64, vec![1.0, 0.0, 0.0], &json!({}))
                    .map_err(|e| format!("{e:?}"))
            })))
        }
        "reply" => Ok(Reply::text("x".repeat(count))),
        "error" => Err("e".repeat(count)),
        "emoji" => Ok(Reply::text("🙂".repeat(count))),
        _ => Err(
            "usage: /flood log|audit|state|cache|reads|llm|embed|vectors|reply|error|emoji N"
                .into(),
        ),
    }
}

/// Runs `call` N times: "ok K, then ERROR" with the last error seen (or
/// "ok N" when none failed).
fn tally(count: usize, mut call: impl FnMut(usize) -> Result<(), String>) -> String {
    let mut ok = 0;
    let mut last_error = None;
    for i in 0..count {
        match call(i) {
            Ok(()) => ok += 1,
            Err(error) => last_error = Some(error),
        }
    }
    match last_error {
        Some(error) => format!("ok {ok}, then {error}"),
        None => format!("ok {ok}"),
    }
}

wasmbot_sdk::handler!(handle);
