//! The checks every action list passes before the host carries it out: a
//! plugin's answer is bounded like its reply text was (count, sizes,
//! references), with secrets masked and control characters removed.

use std::time::Duration;

use crate::infra::store::{clean_capped, clean_text};

use super::bindings::conversation::events::{
    Action, Button, FileKind, MessageRef, Outgoing, OutgoingFile,
};

/// Actions one call may return.
pub const MAX_ACTIONS: usize = 20;
/// Bytes of data a plugin may attach to one button.
pub const MAX_BUTTON_DATA_BYTES: usize = 1024;
/// Characters of one button label.
pub const MAX_BUTTON_LABEL_CHARS: usize = 64;
/// Telegram's limits on an inline keyboard.
pub const MAX_BUTTONS: usize = 100;
pub const MAX_BUTTONS_PER_ROW: usize = 8;
/// Bytes of state an `ask` may keep until its answer.
pub const MAX_PROMPT_STATE_BYTES: usize = 16 << 10;
/// How long a question waits when the plugin says 0, and at most.
pub const DEFAULT_PROMPT_WAIT: Duration = Duration::from_secs(600);
pub const MAX_PROMPT_WAIT: Duration = Duration::from_secs(86_400);
/// Telegram shows at most 200 characters in a callback answer.
pub const MAX_NOTICE_CHARS: usize = 200;

#[derive(Debug, Clone, Copy)]
pub struct ActionLimits {
    /// All texts of one list together (the manifest's `reply_kb`).
    pub text_bytes: usize,
    /// One file sent (the operator's `MEDIA_MAX_MB`).
    pub file_bytes: usize,
}

/// Telegram's limits on a photo and on a caption.
pub const MAX_PHOTO_BYTES: usize = 10 << 20;
pub const MAX_CAPTION_CHARS: usize = 1024;
/// Bytes of a file's name.
pub const MAX_FILE_NAME_BYTES: usize = 255;

#[derive(Debug)]
pub struct Bounded {
    pub actions: Vec<Action>,
    /// Set when texts were cut: the bytes the plugin returned in all.
    pub cut_from: Option<usize>,
}

/// Checks `actions` and caps their texts; `mask` hides the call's secrets.
/// An error names the first action the host cannot carry out.
pub fn bound(
    mut actions: Vec<Action>,
    limits: ActionLimits,
    mask: impl Fn(&str) -> String,
) -> Result<Bounded, String> {
    if actions.len() > MAX_ACTIONS {
        return Err(format!(
            "{} actions returned; at most {MAX_ACTIONS} per call",
            actions.len()
        ));
    }
    let total: usize = actions.iter().map(text_bytes).sum();
    let mut left = limits.text_bytes;
    let mut sent = 0u32;
    let (mut asks, mut answers) = (0, 0);
    for (index, action) in actions.iter_mut().enumerate() {
        let at = |problem: String| format!("action {index}: {problem}");
        match action {
            Action::Send(message) => {
                check_outgoing(message, sent, &mask).map_err(at)?;
                message.text = capped(mask(&message.text), &mut left, total, limits.text_bytes);
                sent += 1;
            }
            Action::Ask(question) => {
                asks += 1;
                if asks > 1 {
                    return Err(at("only one question (`ask`) per call".into()));
                }
                if question.state.contains('\0') {
                    return Err(at("the question's state contains a NUL character".into()));
                }
                if question.state.len() > MAX_PROMPT_STATE_BYTES {
                    return Err(at(format!(
                        "the question's state is {} bytes; at most {MAX_PROMPT_STATE_BYTES}",
                        question.state.len()
                    )));
                }
                if u64::from(question.timeout_secs) > MAX_PROMPT_WAIT.as_secs() {
                    return Err(at(format!(
                        "a question may wait at most {} seconds, not {}",
                        MAX_PROMPT_WAIT.as_secs(),
                        question.timeout_secs
                    )));
                }
                let message = &mut question.message;
                check_outgoing(message, sent, &mask).map_err(at)?;
                message.text = capped(mask(&message.text), &mut left, total, limits.text_bytes);
                sent += 1;
            }
            Action::Edit(edit) => {
                check_ref(Some(&edit.message), sent).map_err(at)?;
                check_keyboard(&mut edit.keyboard, &mask).map_err(at)?;
                if let Some(text) = &mut edit.text {
                    *text = capped(mask(text), &mut left, total, limits.text_bytes);
                }
            }
            Action::Delete(message) => check_ref(Some(message), sent).map_err(at)?,
            Action::React(reaction) => {
                check_ref(Some(&reaction.message), sent).map_err(at)?;
                if reaction.emoji.len() > 32 || reaction.emoji.chars().any(char::is_control) {
                    let quoted = clean_capped(&mask(&reaction.emoji), 64).into_owned();
                    return Err(at(format!("{quoted:?} is not a reaction emoji")));
                }
            }
            Action::SendFile(file) => {
                check_file(file, sent, limits.file_bytes).map_err(at)?;
                file.name = mask(&file.name);
                let caption = mask(&file.caption);
                file.caption = clean_capped(&caption, caption_bytes(&caption)).into_owned();
                sent += 1;
            }
            Action::Typing => {}
            Action::Answer(notice) => {
                answers += 1;
                if answers > 1 {
                    return Err(at("a button press is answered once".into()));
                }
                let masked = mask(&notice.text);
                notice.text = clean_capped(&masked, notice_bytes(&masked)).into_owned();
            }
        }
    }
    Ok(Bounded {
        actions,
        cut_from: (total > limits.text_bytes).then_some(total),
    })
}

/// A message to send: its reply target, its name and its buttons.
fn check_outgoing(
    message: &mut Outgoing,
    sent_before: u32,
    mask: impl Fn(&str) -> String,
) -> Result<(), String> {
    check_ref(message.reply_to.as_ref(), sent_before)?;
    if let Some(name) = &message.name {
        check_name(name)?;
    }
    check_keyboard(&mut message.keyboard, mask)
}

/// A file to send: a name the user can save it under, and bytes within the caps.
fn check_file(file: &OutgoingFile, sent_before: u32, max_bytes: usize) -> Result<(), String> {
    check_ref(file.reply_to.as_ref(), sent_before)?;
    let name = &file.name;
    if name.trim().is_empty()
        || name.len() > MAX_FILE_NAME_BYTES
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        let quoted = clean_capped(name, 80);
        return Err(format!(
            "file name {quoted:?} must be 1-{MAX_FILE_NAME_BYTES} bytes without `/`, `\\` or control characters"
        ));
    }
    let cap = match file.kind {
        FileKind::Photo => max_bytes.min(MAX_PHOTO_BYTES),
        FileKind::Document => max_bytes,
    };
    if file.data.is_empty() {
        return Err(format!("file {name:?} is empty"));
    }
    if file.data.len() > cap {
        return Err(format!(
            "file {name:?} is {} bytes; at most {cap} may be sent{}",
            file.data.len(),
            match file.kind {
                FileKind::Photo => " as a photo (send a document for more)",
                FileKind::Document => " (the operator's MEDIA_MAX_MB)",
            }
        ));
    }
    Ok(())
}

/// Bytes of `text` within [`MAX_CAPTION_CHARS`] characters.
fn caption_bytes(text: &str) -> usize {
    text.char_indices()
        .nth(MAX_CAPTION_CHARS)
        .map_or(text.len(), |(at, _)| at)
}

/// A `sent(n)` must name a send that comes before it in the same list.
fn check_ref(message: Option<&MessageRef>, sent_before: u32) -> Result<(), String> {
    match message {
        Some(MessageRef::Sent(n)) if *n >= sent_before => Err(format!(
            "refers to sent message {n}, but only {sent_before} were sent before it in this list"
        )),
        Some(MessageRef::Named(name)) => check_name(name),
        _ => Ok(()),
    }
}

/// Bytes of a plugin's name for a message.
pub const MAX_MESSAGE_NAME_BYTES: usize = 64;

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_MESSAGE_NAME_BYTES || name.contains('\0') {
        return Err(format!(
            "a message name must be 1-{MAX_MESSAGE_NAME_BYTES} bytes without NUL"
        ));
    }
    Ok(())
}

fn check_keyboard(
    rows: &mut Vec<Vec<Button>>,
    mask: impl Fn(&str) -> String,
) -> Result<(), String> {
    // An empty row shows nothing (and Telegram may refuse it).
    rows.retain(|row| !row.is_empty());
    let buttons: usize = rows.iter().map(Vec::len).sum();
    if buttons > MAX_BUTTONS {
        return Err(format!(
            "{buttons} buttons on one message; Telegram allows {MAX_BUTTONS}"
        ));
    }
    for row in rows.iter_mut() {
        if row.len() > MAX_BUTTONS_PER_ROW {
            return Err(format!(
                "{} buttons in one row; Telegram allows {MAX_BUTTONS_PER_ROW}",
                row.len()
            ));
        }
        for button in row.iter_mut() {
            let label = mask(&button.label);
            let label = clean_text(&label);
            // Errors quote the label masked, and only its start.
            let quoted = clean_capped(&label, 80);
            let chars = label.trim().chars().count();
            if chars == 0 || chars > MAX_BUTTON_LABEL_CHARS {
                return Err(format!(
                    "button label {quoted:?} must be 1-{MAX_BUTTON_LABEL_CHARS} characters"
                ));
            }
            if button.data.len() > MAX_BUTTON_DATA_BYTES {
                return Err(format!(
                    "button {quoted:?} carries {} bytes of data; at most {MAX_BUTTON_DATA_BYTES}",
                    button.data.len()
                ));
            }
            if button.data.contains('\0') {
                return Err(format!(
                    "button {quoted:?} carries a NUL character in its data"
                ));
            }
            let label = label.into_owned();
            button.label = label;
        }
    }
    Ok(())
}

/// The text with the share of `left` it may take; the first text past the
/// limit says so.
fn capped(text: String, left: &mut usize, total: usize, limit: usize) -> String {
    if text.len() <= *left {
        *left -= text.len();
        return match clean_text(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(clean) => clean,
        };
    }
    if *left == 0 {
        return String::new();
    }
    let mut cut = clean_capped(&text, *left).into_owned();
    cut.push_str(&format!(
        "\n(cut: the reply was {} KiB; this plugin may send {} KiB)",
        total.div_ceil(1024),
        limit >> 10
    ));
    *left = 0;
    cut
}

/// Bytes of `text` within [`MAX_NOTICE_CHARS`] characters.
fn notice_bytes(text: &str) -> usize {
    text.char_indices()
        .nth(MAX_NOTICE_CHARS)
        .map_or(text.len(), |(at, _)| at)
}

fn text_bytes(action: &Action) -> usize {
    match action {
        Action::Send(message) => message.text.len(),
        Action::Ask(question) => question.message.text.len(),
        Action::Edit(edit) => edit.text.as_ref().map_or(0, String::len),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::super::bindings::conversation::events::Format;
    use super::*;

    fn send(text: &str, keyboard: Vec<Vec<Button>>) -> Action {
        Action::Send(Outgoing {
            text: text.into(),
            format: Format::Plain,
            keyboard,
            reply_to: None,
            name: None,
        })
    }

    fn limits(text_bytes: usize) -> ActionLimits {
        ActionLimits {
            text_bytes,
            file_bytes: 1 << 20,
        }
    }

    fn button(label: &str, data: &str) -> Button {
        Button {
            label: label.into(),
            data: data.into(),
        }
    }

    #[test]
    fn texts_share_the_limit_and_the_cut_says_so() {
        let bounded = bound(
            vec![
                send(&"a".repeat(1500), vec![]),
                send(&"b".repeat(1500), vec![]),
            ],
            limits(2048),
            str::to_string,
        )
        .unwrap();
        assert_eq!(bounded.cut_from, Some(3000));
        let Action::Send(second) = &bounded.actions[1] else {
            panic!()
        };
        assert!(second.text.starts_with("bbb"), "{}", second.text);
        assert!(
            second
                .text
                .contains("(cut: the reply was 3 KiB; this plugin may send 2 KiB)"),
            "{}",
            second.text
        );
    }

    #[test]
    fn bad_lists_are_refused_with_the_reason() {
        let many = vec![send("x", vec![]); MAX_ACTIONS + 1];
        assert!(
            bound(many, limits(1 << 14), str::to_string)
                .unwrap_err()
                .contains("at most 20")
        );
        let big = send("x", vec![vec![button("ok", &"d".repeat(1025))]]);
        assert!(
            bound(vec![big], limits(1 << 14), str::to_string)
                .unwrap_err()
                .contains("1025 bytes of data")
        );
        let empty_label = send("x", vec![vec![button("  ", "d")]]);
        assert!(bound(vec![empty_label], limits(1 << 14), str::to_string).is_err());
        let forward = Action::Delete(MessageRef::Sent(0));
        assert!(
            bound(vec![forward], limits(1 << 14), str::to_string)
                .unwrap_err()
                .contains("only 0 were sent before")
        );
        let backward = vec![send("x", vec![]), Action::Delete(MessageRef::Sent(0))];
        assert!(bound(backward, limits(1 << 14), str::to_string).is_ok());
    }

    fn file(kind: FileKind, name: &str, bytes: usize) -> Action {
        Action::SendFile(OutgoingFile {
            kind,
            name: name.into(),
            data: vec![7; bytes],
            caption: "é".repeat(2000),
            format: Format::Plain,
            reply_to: None,
        })
    }

    #[test]
    fn files_are_checked_and_their_captions_cut() {
        let bounded = bound(
            vec![
                file(FileKind::Document, "notes.txt", 1 << 20),
                Action::Delete(MessageRef::Sent(0)),
            ],
            limits(1 << 14),
            str::to_string,
        )
        .unwrap();
        let Action::SendFile(sent) = &bounded.actions[0] else {
            panic!()
        };
        assert!(sent.caption.chars().count() <= MAX_CAPTION_CHARS);
        assert!(sent.caption.ends_with("é…"), "{}", sent.caption);
        let refused = |action| bound(vec![action], limits(1 << 14), str::to_string).unwrap_err();
        assert!(
            refused(file(FileKind::Document, "big.bin", (1 << 20) + 1)).contains("at most 1048576")
        );
        assert!(refused(file(FileKind::Document, "../etc/passwd", 1)).contains("without `/`"));
        assert!(refused(file(FileKind::Photo, "a.png", 0)).contains("is empty"));
        assert!(refused(file(FileKind::Photo, "", 1)).contains("file name"));
    }

    #[test]
    fn secrets_are_masked_in_texts_and_labels() {
        let bounded = bound(
            vec![send("key s3cret", vec![vec![button("s3cret", "d")]])],
            limits(1 << 14),
            |text| text.replace("s3cret", "***"),
        )
        .unwrap();
        let Action::Send(message) = &bounded.actions[0] else {
            panic!()
        };
        assert_eq!(message.text, "key ***");
        assert_eq!(message.keyboard[0][0].label, "***");
    }
}
