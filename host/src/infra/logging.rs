//! Log output: JSON lines for machines, a readable format in a terminal.
//! Logs go to stderr so that stdout stays free for the console's replies.
//! Values of fields named like a credential (token, password, key, …) are
//! replaced before anything is written, whoever logged them.

use std::io::{IsTerminal, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

pub const REDACTED: &str = "[redacted]";

/// Field names whose values never reach the log (matched as substrings, any case).
const SENSITIVE: &[&str] = &[
    "token",
    "api_key",
    "apikey",
    "password",
    "secret",
    "key",
    "ciphertext",
    "authorization",
];

pub fn is_sensitive(field: &str) -> bool {
    let field = field.to_ascii_lowercase();
    // LLM usage counts (`input_tokens`, `output_tokens`) are numbers, not credentials.
    if field == "tokens" || field.ends_with("_tokens") {
        return false;
    }
    SENSITIVE.iter().any(|word| field.contains(word))
}

/// Installs the global subscriber. `level` is a level or a filter directive;
/// `format` defaults to pretty on a terminal and JSON elsewhere.
pub fn init(level: &str, format: Option<LogFormat>) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(level)?;
    let format = format.unwrap_or(if std::io::stderr().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(RedactingJson)
            .try_init(),
        LogFormat::Pretty => builder
            .with_target(false)
            .with_writer(std::io::stderr)
            .fmt_fields(
                tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
                    if is_sensitive(field.name()) {
                        write!(writer, "{field}={REDACTED}")
                    } else if field.name() == "message" {
                        write!(writer, "{value:?}")
                    } else {
                        write!(writer, "{field}={value:?}")
                    }
                })
                .delimited(" "),
            )
            .try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("installing the log subscriber: {error}"))
}

/// Writes JSON log lines to stderr with sensitive fields replaced.
struct RedactingJson;

impl<'a> MakeWriter<'a> for RedactingJson {
    type Writer = RedactingLine;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine(Vec::with_capacity(256))
    }
}

/// Collects one formatted event and writes it, redacted, when dropped.
pub struct RedactingLine(Vec<u8>);

impl Write for RedactingLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingLine {
    fn drop(&mut self) {
        let line = redact_json_line(&self.0);
        let _ = std::io::stderr().lock().write_all(&line);
    }
}

/// The line with the values of sensitive keys replaced, at any depth. A line
/// that is not JSON is written as it is.
pub fn redact_json_line(line: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(line) else {
        return line.to_vec();
    };
    if !redact_value(&mut value) {
        return line.to_vec();
    }
    let mut out = serde_json::to_vec(&value).unwrap_or_else(|_| line.to_vec());
    out.push(b'\n');
    out
}

fn redact_value(value: &mut serde_json::Value) -> bool {
    let mut changed = false;
    match value {
        serde_json::Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if is_sensitive(key) {
                    *field = serde_json::Value::String(REDACTED.into());
                    changed = true;
                } else {
                    changed |= redact_value(field);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                changed |= redact_value(item);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_fields_are_replaced_at_any_depth() {
        let line = br#"{"message":"calling","api_key":"sk-1","span":{"Authorization":"Bearer x","user":7},"n":1}"#;
        let out: serde_json::Value = serde_json::from_slice(&redact_json_line(line)).unwrap();
        assert_eq!(out["api_key"], REDACTED);
        assert_eq!(out["span"]["Authorization"], REDACTED);
        assert_eq!(out["span"]["user"], 7);
        assert_eq!(out["message"], "calling");
    }

    #[test]
    fn clean_lines_and_non_json_pass_unchanged() {
        let clean = b"{\"message\":\"hello\",\"plugin\":\"start\"}\n";
        assert_eq!(redact_json_line(clean), clean.to_vec());
        assert_eq!(redact_json_line(b"not json\n"), b"not json\n".to_vec());
    }

    #[test]
    fn names_like_credentials_are_sensitive() {
        for name in [
            "token",
            "bot_token",
            "API_KEY",
            "password",
            "secret_value",
            "ciphertext",
            "encryption_key",
        ] {
            assert!(is_sensitive(name), "{name}");
        }
        for name in [
            "plugin",
            "correlation_id",
            "message",
            "status",
            "input_tokens",
            "output_tokens",
        ] {
            assert!(!is_sensitive(name), "{name}");
        }
    }
}
