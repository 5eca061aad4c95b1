//! Test plugin: feeds the host NUL and control bytes everywhere a plugin
//! can, to prove that none of them can stop the audit trail or reach a user.
//! `/poison` records an audit entry whose action, metadata keys and values
//! hold them, asks for a secret whose name holds them (denied, and audited
//! with that name), then fails with an error text holding them.
//! `/poison reply` answers normally with such a text.
use wasmbot_sdk::prelude::*;

/// NUL, escape sequences, a bell, a backspace, DEL, a C1 control (CSI) and
/// a carriage return, around text that must survive.
const POISON: &str = "bad\0byte \u{1b}[2J\u{7}\u{8}\u{7f}\u{9b}31m\r\nnext line\tafter tab";

fn handle(msg: Message) -> HandlerResult {
    if msg.args == "reply" {
        return Ok(Reply::text(format!("reply: {POISON}")));
    }
    audit::record(
        "poison\0action\u{1b}[0m",
        audit::Status::Ok,
        &json!({
            "va\0lue\u{1b}": POISON,
            "nested": { "k\0ey": ["\0", "x\u{9b}y", 1, true, null] },
            "plain": "kept as is",
        }),
    )?;
    // Denied (no secret is granted): the host audits the name it was asked for.
    let _ = secrets::get("tok\0en\u{1b}[1m");
    Err(format!("poison: {POISON}"))
}

wasmbot_sdk::handler!(handle);
