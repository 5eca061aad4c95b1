//! Test plugin: its `/data` folder through plain `std::fs`, paths used
//! verbatim so host tests can try `../x`, `/etc/passwd` or a write past the
//! quota and read the error.
//!
//! `/fwrite <path> <n>` and `/fappend <path> <n>` write n bytes of `x`
//! (creating parent folders), `/fread <path>` answers "PATH: N bytes",
//! `/fls` the sorted names in /data (one a line; "empty" for none), `/frm
//! <path>` removes a file or a folder; failures answer "error: <io error>".
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use wasmbot_sdk::prelude::*;

/// The plugin's folder.
const DATA: &str = "/data";

/// Written a piece at a time, so a large n needs no large buffer.
const CHUNK: usize = 8 * 1024;

fn handle(msg: Message) -> HandlerResult {
    let words: Vec<&str> = msg.arg_words().collect();
    let reply = match (msg.command.as_str(), words.as_slice()) {
        ("fwrite", [path, n]) => write(path, n, false),
        ("fappend", [path, n]) => write(path, n, true),
        ("fread", [path]) => fs::read(path)
            .map(|bytes| format!("{path}: {} bytes", bytes.len()))
            .map_err(error),
        ("fls", []) => list(),
        ("frm", [path]) => remove(path)
            .map(|()| format!("removed {path}"))
            .map_err(error),
        (command, _) => Ok(usage(command)),
    };
    Ok(Reply::text(reply.unwrap_or_else(|e| e)))
}

fn usage(command: &str) -> String {
    match command {
        "fwrite" | "fappend" => format!("usage: /{command} <path> <n>"),
        "fls" => "usage: /fls".to_string(),
        _ => format!("usage: /{command} <path>"),
    }
}

fn error(error: io::Error) -> String {
    format!("error: {error}")
}

fn write(path: &str, n: &str, append: bool) -> Result<String, String> {
    let n: usize = n
        .parse()
        .map_err(|_| format!("error: `{n}` is not a number of bytes"))?;
    fill(Path::new(path), n, append).map_err(error)?;
    Ok(if append {
        format!("appended {n} bytes to {path}")
    } else {
        format!("wrote {n} bytes to {path}")
    })
}

fn fill(path: &Path, n: usize, append: bool) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)?;
    let chunk = [b'x'; CHUNK];
    let mut left = n;
    while left > 0 {
        let piece = left.min(CHUNK);
        file.write_all(&chunk[..piece])?;
        left -= piece;
    }
    file.flush()
}

fn list() -> Result<String, String> {
    let mut names = Vec::new();
    for entry in fs::read_dir(DATA).map_err(error)? {
        let entry = entry.map_err(error)?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(if names.is_empty() {
        "empty".to_string()
    } else {
        names.join("\n")
    })
}

fn remove(path: &str) -> io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

wasmbot_sdk::handler!(handle);
