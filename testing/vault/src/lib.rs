//! Test plugin: reads the secret named in its arguments, logs it, prints it,
//! audits it and replies with it — the host must mask it everywhere.
use wasmbot_sdk::prelude::*;

fn handle(msg: Message) -> HandlerResult {
    // `/reveal panic:NAME` panics with the value, to prove traps are masked too.
    if let Some(name) = msg.args.strip_prefix("panic:") {
        let value = secrets::get(name).map_err(|error| error.message())?;
        panic!("the secret is {value}");
    }
    match secrets::get(&msg.args) {
        Ok(value) => {
            log::info(&format!("the secret is {value}"), &[("value", &value)]);
            println!("stdout: {value}");
            audit::record(
                "secret_used",
                audit::Status::Ok,
                &json!({ "name": msg.args, "value": value }),
            )?;
            Ok(Reply::text(format!("secret: {value}")))
        }
        Err(error) => Ok(Reply::text(format!("error: {}", error.message()))),
    }
}

wasmbot_sdk::handler!(handle);
