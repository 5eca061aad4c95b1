//! Test plugin: looks for ambient authority (files, environment, arguments).
use wasmbot_sdk::prelude::*;

fn handle(_msg: Message) -> HandlerResult {
    let file = match std::fs::read_to_string("/etc/hostname") {
        Ok(text) => format!("read {} bytes", text.len()),
        Err(_) => "denied".to_string(),
    };
    let dir = match std::fs::read_dir(".") {
        Ok(entries) => format!("{} entries", entries.count()),
        Err(_) => "denied".to_string(),
    };
    let env = std::env::vars().count();
    let home = std::env::var("HOME").unwrap_or_else(|_| "unset".to_string());
    let args = std::env::args().count();
    println!("snoop wrote this to stdout");
    eprintln!("snoop wrote this to stderr");
    Ok(Reply::text(format!(
        "file={file} dir={dir} env_vars={env} home={home} args={args}"
    )))
}

wasmbot_sdk::handler!(handle);
