//! Test plugin: outbound HTTP and settings, reported verbatim so host tests
//! can check the allow-list, private-address refusals, size caps,
//! redirects, secret injection and config.
//!
//! `/fetch <url>`, `/fetch_once <url>` (no redirects), `/fetch_secret <url>
//! <secret>`, `/post <url> <text>` answer "<status> <length> bytes:
//! <first 100 characters of the body>" (a `location` header shown first as
//! "location=<value>") or "error: <the HttpError's text>". `/setting <key>`
//! answers the value or "unset"; `/settings` every "key=value".
use wasmbot_sdk::http::{self, HttpError, Request, Response};
use wasmbot_sdk::prelude::*;

/// How much of a body a reply quotes (characters).
const EXCERPT_CHARS: usize = 100;

fn handle(msg: Message) -> HandlerResult {
    let mut words = msg.arg_words();
    let first = words.next().unwrap_or_default();
    let reply = match msg.command.as_str() {
        "setting" => config::get(first).unwrap_or_else(|| "unset".to_string()),
        "settings" => settings(),
        _ if first.is_empty() => format!("usage: /{} <url> ...", msg.command),
        "fetch" => outcome(http::get(first)),
        "fetch_once" => outcome(Request::get(first).follow_redirects(0).send()),
        "fetch_secret" => match words.next() {
            Some(secret) => outcome(Request::get(first).bearer_secret(secret).send()),
            None => "usage: /fetch_secret <url> <secret>".to_string(),
        },
        "post" => {
            let text = msg
                .args
                .trim_start()
                .strip_prefix(first)
                .unwrap_or_default()
                .trim();
            outcome(http::post_json(first, &json!({ "text": text })))
        }
        other => format!("unknown command /{other}"),
    };
    Ok(Reply::text(reply))
}

fn settings() -> String {
    let lines: Vec<String> = config::all()
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    if lines.is_empty() {
        "no settings".to_string()
    } else {
        lines.join("\n")
    }
}

fn outcome(result: Result<Response, HttpError>) -> String {
    match result {
        Ok(response) => {
            let body = String::from_utf8_lossy(&response.body);
            let mut shown: Vec<String> = Vec::new();
            if let Some(location) = response.header("location") {
                shown.push(format!("location={location}"));
            }
            shown.push(body.chars().take(EXCERPT_CHARS).collect());
            format!(
                "{} {} bytes: {}",
                response.status,
                response.body.len(),
                shown.join(" ")
            )
            .trim_end()
            .to_string()
        }
        Err(error) => format!("error: {error}"),
    }
}

wasmbot_sdk::handler!(handle);
