//! Text that came from outside (a plugin's error or metadata, a Telegram
//! message, a secret's name) made safe to store and to show.
//!
//! PostgreSQL refuses NUL in `TEXT` and `\u0000` in `JSONB`, and control
//! characters in a reply or an audit row can rewrite an operator's terminal
//! or forge log lines. One rule serves both: newline and tab are kept, a
//! carriage return becomes a newline, and every other control character (C0,
//! DEL, C1, NUL included) becomes U+FFFD, the replacement character. It is
//! replaced rather than dropped so that a reader sees something was there,
//! and so that removing it cannot join the two halves of a masked secret
//! back together. Rust strings are valid UTF-8 by construction; bytes from
//! elsewhere go through `String::from_utf8_lossy`, which replaces invalid
//! sequences with the same character.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// What replaces a control character.
pub const REPLACEMENT: char = '\u{FFFD}';
/// Appended to a text cut at its cap.
const ELLIPSIS: char = '…';

/// Longest string value (bytes) inside audit metadata.
pub const MAX_METADATA_STRING: usize = 4 * 1024;
/// Longest key (bytes) inside audit metadata.
pub const MAX_METADATA_KEY: usize = 256;
/// Deepest nesting kept in audit metadata; deeper values become a note.
pub const MAX_METADATA_DEPTH: usize = 32;
/// Metadata larger than this (approximate serialized bytes) is replaced by a
/// preview: the plugin capability allows 16 KiB, so only host bugs reach it.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// How much of oversized metadata is kept as a preview.
const METADATA_PREVIEW: usize = 4 * 1024;

fn is_unwanted(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// The text with newline and tab kept, `\r\n` and `\r` turned into `\n`,
/// and every other control character replaced by U+FFFD. Borrowed when
/// nothing needed to change.
pub fn clean_text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unwanted) {
        return Cow::Borrowed(text);
    }
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                clean.push('\n');
            }
            c if is_unwanted(c) => clean.push(REPLACEMENT),
            c => clean.push(c),
        }
    }
    Cow::Owned(clean)
}

/// [`clean_text`], then cut to at most `max_bytes` (on a character
/// boundary, ending in `…` when cut).
pub fn clean_capped(text: &str, max_bytes: usize) -> Cow<'_, str> {
    let clean = clean_text(text);
    if clean.len() <= max_bytes {
        return clean;
    }
    let room = max_bytes.saturating_sub(ELLIPSIS.len_utf8());
    let mut end = room.min(clean.len());
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = String::with_capacity(end + ELLIPSIS.len_utf8());
    cut.push_str(&clean[..end]);
    cut.push(ELLIPSIS);
    Cow::Owned(cut)
}

/// Whether [`clean_capped`] would change `text`.
pub fn needs_cleaning(text: &str, max_bytes: usize) -> bool {
    text.len() > max_bytes || text.chars().any(is_unwanted)
}

/// Cleans `value` in place: every string and every key, capped; nesting
/// past [`MAX_METADATA_DEPTH`] replaced by a note; the whole replaced by a
/// preview when it is larger than [`MAX_METADATA_BYTES`].
pub fn clean_json(value: &mut Value) {
    let size = clean_value(value, 0);
    if size > MAX_METADATA_BYTES {
        let text = value.to_string();
        *value = serde_json::json!({
            "truncated": true,
            "bytes": text.len(),
            "preview": clean_capped(&text, METADATA_PREVIEW),
        });
    }
}

/// Whether [`clean_json`] would change `value`.
pub fn json_needs_cleaning(value: &Value) -> bool {
    fn walk(value: &Value, depth: usize, size: &mut usize) -> bool {
        *size += 8;
        match value {
            Value::String(text) => {
                *size += text.len();
                needs_cleaning(text, MAX_METADATA_STRING)
            }
            Value::Array(items) => {
                (depth >= MAX_METADATA_DEPTH && !items.is_empty())
                    || items.iter().any(|item| walk(item, depth + 1, size))
            }
            Value::Object(map) => {
                (depth >= MAX_METADATA_DEPTH && !map.is_empty())
                    || map.iter().any(|(key, item)| {
                        *size += key.len();
                        needs_cleaning(key, MAX_METADATA_KEY) || walk(item, depth + 1, size)
                    })
            }
            _ => false,
        }
    }
    let mut size = 0;
    walk(value, 0, &mut size) || size > MAX_METADATA_BYTES
}

/// Cleans one value; returns its approximate serialized size.
fn clean_value(value: &mut Value, depth: usize) -> usize {
    match value {
        Value::String(text) => {
            if needs_cleaning(text, MAX_METADATA_STRING) {
                *text = clean_capped(text, MAX_METADATA_STRING).into_owned();
            }
            text.len() + 8
        }
        Value::Array(items) if depth >= MAX_METADATA_DEPTH && !items.is_empty() => {
            *value = Value::String("[nested too deep]".into());
            24
        }
        Value::Object(map) if depth >= MAX_METADATA_DEPTH && !map.is_empty() => {
            *value = Value::String("{nested too deep}".into());
            24
        }
        Value::Array(items) => {
            8 + items
                .iter_mut()
                .map(|item| clean_value(item, depth + 1))
                .sum::<usize>()
        }
        Value::Object(map) => {
            let mut size = 8;
            if map.keys().any(|key| needs_cleaning(key, MAX_METADATA_KEY)) {
                *map = clean_keys(std::mem::take(map));
            }
            for (key, item) in map.iter_mut() {
                size += key.len() + clean_value(item, depth + 1);
            }
            size
        }
        _ => 8,
    }
}

/// The same entries under clean keys. Two keys that clean to the same text
/// are both kept: the later one gets a `#2`, `#3`… suffix.
fn clean_keys(map: Map<String, Value>) -> Map<String, Value> {
    let mut clean = Map::new();
    for (key, item) in map {
        let base = clean_capped(&key, MAX_METADATA_KEY).into_owned();
        let mut key = base.clone();
        let mut n = 2;
        while clean.contains_key(&key) {
            key = format!("{base}#{n}");
            n += 1;
        }
        clean.insert(key, item);
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn newline_and_tab_stay_every_other_control_is_replaced() {
        assert_eq!(clean_text("plain text ✅"), "plain text ✅");
        assert!(matches!(clean_text("a\nb\tc"), Cow::Borrowed(_)));
        assert_eq!(
            clean_text("bad\0byte\u{1b}[2J\u{7}\u{7f}\u{9b}x\r\ny\rz"),
            "bad\u{FFFD}byte\u{FFFD}[2J\u{FFFD}\u{FFFD}\u{FFFD}x\ny\nz"
        );
    }

    #[test]
    fn caps_cut_on_a_character_boundary_and_say_so() {
        assert_eq!(clean_capped("abcdef", 6), "abcdef");
        let cut = clean_capped("ééééé", 7);
        assert!(cut.len() <= 7, "{cut}");
        assert_eq!(cut, "éé…");
        assert_eq!(clean_capped("x\0yz", 100), "x\u{FFFD}yz");
    }

    #[test]
    fn json_keys_values_nesting_and_size_are_bounded() {
        let mut value = json!({
            "k\0": "v\0",
            "k\u{1}": "other",
            "list": ["\0", 1, null, {"deep\u{1b}": "x"}],
            "long": "y".repeat(MAX_METADATA_STRING * 2),
        });
        assert!(json_needs_cleaning(&value));
        clean_json(&mut value);
        assert!(!json_needs_cleaning(&value));
        let text = value.to_string();
        assert!(
            !text.contains("\\u0000") && !text.contains("\\u001b"),
            "{text}"
        );
        assert_eq!(value["k\u{FFFD}"], "v\u{FFFD}");
        assert_eq!(value["k\u{FFFD}#2"], "other");
        assert_eq!(value["list"][3]["deep\u{FFFD}"], "x");
        assert!(value["long"].as_str().unwrap().len() <= MAX_METADATA_STRING);

        let mut deep = json!("bottom");
        for _ in 0..(MAX_METADATA_DEPTH + 5) {
            deep = json!([deep]);
        }
        clean_json(&mut deep);
        assert!(deep.to_string().contains("nested too deep"));

        let mut huge = json!({});
        for i in 0..100 {
            huge[format!("k{i}")] = json!("z".repeat(MAX_METADATA_STRING));
        }
        clean_json(&mut huge);
        assert_eq!(huge["truncated"], true);
        assert!(huge.to_string().len() < MAX_METADATA_BYTES);

        let mut clean = json!({"command": "start", "n": [1, 2]});
        assert!(!json_needs_cleaning(&clean));
        clean_json(&mut clean);
        assert_eq!(clean, json!({"command": "start", "n": [1, 2]}));
    }
}
