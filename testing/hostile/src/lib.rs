//! Test plugin that tries what a hostile plugin would: compute until its
//! deadline (in a chat or in many jobs at once), write into its folder from
//! many calls at once or at a huge offset, loop on refused requests, add
//! jobs and trap, ask a question from a job. Host tests check each is
//! bounded.
//!
//! Replies: `/hspin` never answers (its deadline does); `/hjobspin <n>`,
//! `/hjobwrite <n> <kib>`, `/hjobtrap <n>`, `/hjobask <ms>` answer
//! "scheduled <n>"; `/hwrite <kib>` "wrote <kib> KiB" or "error: ...";
//! `/hsparse` "wrote at 1 GiB" or "error: ..."; `/hsize` "<bytes> bytes in
//! <files> files"; `/hrefused <n>` "<n> refused, <ok> answered"; `/hjobs`
//! "jobs: <n>"; `/hecho` "kept <n> bytes" (or "refused (Kind): why"),
//! `/hshow` what it kept, `/hleak` like `/hecho` towards `other_url`.
//! Jobs answer "wrote <kib> KiB" or "error: ...".
use std::fs::{self, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::time::Duration;

use wasmbot_sdk::prelude::*;

const DATA: &str = "/data";

fn handle(msg: Message) -> HandlerResult {
    let words: Vec<&str> = msg.arg_words().collect();
    let number = |at: usize| -> Result<u64, String> {
        words
            .get(at)
            .and_then(|word| word.parse().ok())
            .ok_or_else(|| format!("usage: /{} <n>", msg.command))
    };
    let text = match msg.command.as_str() {
        "hspin" => spin(),
        "hjobspin" => schedule_many(number(0)?, "spin")?,
        "hwrite" => write_file(&format!("chat-{}", msg.correlation_id), number(0)?),
        "hjobwrite" => schedule_many(number(0)?, &format!("write {}", number(1)?))?,
        "hsparse" => match sparse() {
            Ok(()) => "wrote at 1 GiB".to_string(),
            Err(error) => format!("error: {error}"),
        },
        "hsize" => size(),
        "hrefused" => refused(number(0)?),
        "hjobtrap" => schedule_many(1, &format!("trap {}", number(0)?))?,
        "hjobask" => {
            schedule::after(Duration::from_millis(number(0)?), "ask").map_err(|e| e.message())?;
            "scheduled 1".to_string()
        }
        "hjobs" => format!("jobs: {}", schedule::list().map_err(|e| e.message())?.len()),
        "hecho" => echo("echo_url"),
        "hshow" => {
            fs::read_to_string(format!("{DATA}/echo.txt")).unwrap_or_else(|e| format!("error: {e}"))
        }
        "hjobkept" => {
            let kept = fs::read_to_string(format!("{DATA}/echo.txt")).unwrap_or_default();
            schedule::after(Duration::from_secs(3600), &kept).map_err(|e| e.message())?;
            "scheduled 1".to_string()
        }
        "hleak" => echo("other_url"),
        other => return Err(format!("unknown command {other}")),
    };
    Ok(Reply::text(text))
}

fn on_event(event: Happening) -> EventResult {
    let HappeningKind::Job(job) = event.kind else {
        return Err("only jobs".to_string());
    };
    let (what, rest) = job
        .payload
        .split_once(' ')
        .unwrap_or((job.payload.as_str(), ""));
    match what {
        "spin" => Ok(Reply::text(spin()).into()),
        "write" => {
            let kib = rest.parse().unwrap_or(1);
            Ok(Reply::text(write_file(&format!("job-{}", job.id), kib)).into())
        }
        "trap" => {
            let n: u64 = rest.parse().unwrap_or(1);
            let _ = schedule_many(n, "trap 1");
            panic!("trapping after adding {n} jobs");
        }
        "ask" => Ok(ask("Which colour, asked from a job?").into()),
        _ => Err(format!("unknown job {}", job.payload)),
    }
}

fn spin() -> String {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn schedule_many(n: u64, payload: &str) -> Result<String, String> {
    for _ in 0..n {
        schedule::after(Duration::ZERO, payload).map_err(|error| error.message())?;
    }
    Ok(format!("scheduled {n}"))
}

/// Writes `kib` KiB, a KiB at a time, into a file named `name`.
fn write_file(name: &str, kib: u64) -> String {
    let path = format!("{DATA}/{name}.bin");
    let written = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        let chunk = [b'x'; 1024];
        for _ in 0..kib {
            file.write_all(&chunk)?;
        }
        file.flush()
    })();
    match written {
        Ok(()) => format!("wrote {kib} KiB"),
        Err(error) => format!("error: {error}"),
    }
}

fn sparse() -> io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .open(format!("{DATA}/sparse.bin"))?;
    file.seek(SeekFrom::Start(1 << 30))?;
    file.write_all(b"x")?;
    file.flush()
}

fn size() -> String {
    let (mut bytes, mut files) = (0u64, 0u64);
    if let Ok(entries) = fs::read_dir(DATA) {
        for entry in entries.flatten() {
            if let Ok(meta) = entry.metadata() {
                bytes += meta.len();
                files += 1;
            }
        }
    }
    format!("{bytes} bytes in {files} files")
}

/// Sends the token to the setting's `/echo-auth-back` (whose server says
/// back the header it got) and keeps the answer in a file; replies how it went.
fn echo(setting: &str) -> String {
    let base = config::get(setting).unwrap_or_default();
    match http::Request::get(format!("{base}/echo-auth-back"))
        .bearer_secret("token")
        .send()
    {
        Ok(response) => {
            let body = String::from_utf8_lossy(&response.body).into_owned();
            match fs::write(format!("{DATA}/echo.txt"), &body) {
                Ok(()) => format!("kept {} bytes", body.len()),
                Err(error) => format!("error: {error}"),
            }
        }
        Err(error) => format!("refused ({:?}): {}", error.kind(), error.message()),
    }
}

/// Requests to an origin off the allow-list: each one is refused.
fn refused(n: u64) -> String {
    let (mut refused, mut answered) = (0, 0);
    for _ in 0..n {
        match http::get("https://not-on-the-list.example/") {
            Ok(_) => answered += 1,
            Err(_) => refused += 1,
        }
    }
    format!("{refused} refused, {answered} answered")
}

wasmbot_sdk::handler!(handle, on_event);
