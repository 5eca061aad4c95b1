//! A message this plugin keeps under a name across calls: `/status new
//! <text>` sends it, `/status set <text>` edits it, `/status delete` deletes
//! it, `/status theirs` tries to edit the user's own message (refused).

use wasmbot_sdk::prelude::*;

fn handle(event: Event) -> EventResult {
    let args = event.args();
    let (verb, text) = args.split_once(' ').unwrap_or((args, ""));
    Ok(match verb {
        "new" => Reply::text(text).named("status").into(),
        "set" => edit(named("status"), Reply::text(text)).into(),
        "delete" => delete(named("status")).into(),
        "theirs" => edit(event.message_ref(), Reply::text("mine now")).into(),
        _ => Reply::text("usage: /status new|set|delete <text>").into(),
    })
}

wasmbot_sdk::handler!(handle);
