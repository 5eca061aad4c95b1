//! Files in the console: `/attach PATH [caption]` sends a local file as
//! the user's attachment, files the bot sends are saved in a folder and
//! shown as one line, and a streamed answer is printed as it grows.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::io::AsyncReadExt as _;
use tokio::sync::{mpsc, watch};

use super::event::OutgoingFile;
use crate::runtime::{Attachment, AttachmentKind, ChatLink, FetchFailure, FileKind, LinkFuture};

/// The console's command that sends a local file.
pub const ATTACH_COMMAND: &str = "/attach";

/// `None` when the line is no `/attach`; else the attachment and its
/// caption, or what is wrong (as a line to print).
pub fn parse(line: &str) -> Option<Result<(Attachment, String), String>> {
    let rest = line.trim().strip_prefix(ATTACH_COMMAND)?;
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.trim();
    // A path with spaces is quoted: /attach "my photo.jpg" what is this?
    let (path, caption) = match rest.strip_prefix('"') {
        Some(quoted) => match quoted.split_once('"') {
            Some((path, caption)) => (path, caption),
            None => return Some(Err(usage("the quote around the path is not closed"))),
        },
        None => rest.split_once(char::is_whitespace).unwrap_or((rest, "")),
    };
    if path.is_empty() {
        return Some(Err(usage("no file named")));
    }
    let path = Path::new(path);
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => metadata,
        Ok(_) => {
            return Some(Err(format!(
                "(cannot attach {}: not a file)",
                path.display()
            )));
        }
        Err(error) => return Some(Err(format!("(cannot attach {}: {error})", path.display()))),
    };
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let (kind, mime) = kind_of(path);
    let attachment = Attachment {
        // The id is the path: only this event's files can be fetched with it.
        id: absolute.display().to_string(),
        kind,
        mime_type: Some(mime.to_string()),
        size: Some(metadata.len()),
        name: path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned()),
    };
    Some(Ok((attachment, caption.trim().to_string())))
}

fn usage(problem: &str) -> String {
    format!("({problem}; usage: {ATTACH_COMMAND} PATH [caption], quote a PATH with spaces)")
}

/// What a file is by its extension, as a Telegram client would send it.
fn kind_of(path: &Path) -> (AttachmentKind, &'static str) {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "jpg" | "jpeg" => (AttachmentKind::Photo, "image/jpeg"),
        "png" => (AttachmentKind::Photo, "image/png"),
        "webp" => (AttachmentKind::Photo, "image/webp"),
        "gif" => (AttachmentKind::Document, "image/gif"),
        "ogg" | "oga" | "opus" => (AttachmentKind::Voice, "audio/ogg"),
        "mp3" => (AttachmentKind::Audio, "audio/mpeg"),
        "m4a" => (AttachmentKind::Audio, "audio/mp4"),
        "wav" => (AttachmentKind::Audio, "audio/wav"),
        "mp4" => (AttachmentKind::Video, "video/mp4"),
        "pdf" => (AttachmentKind::Document, "application/pdf"),
        "txt" | "md" => (AttachmentKind::Document, "text/plain"),
        "csv" => (AttachmentKind::Document, "text/csv"),
        "json" => (AttachmentKind::Document, "application/json"),
        _ => (AttachmentKind::Document, "application/octet-stream"),
    }
}

/// Saves a file the bot sent under `dir` (a new name when one is taken);
/// the line that shows it: name, type, size, path.
pub async fn save(dir: &Path, file: &OutgoingFile) -> anyhow::Result<String> {
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    // The name was checked when the plugin returned it: no separators.
    let path = free_name(dir, &file.name);
    tokio::fs::write(&path, &file.data)
        .await
        .with_context(|| format!("writing {}", path.display()))?;
    let (_, mime) = kind_of(&path);
    let kind = match file.kind {
        FileKind::Photo => "photo",
        FileKind::Document => "file",
    };
    Ok(format!(
        "({kind}) {} · {mime} · {} · saved to {}",
        file.name,
        human_size(file.data.len() as u64),
        path.display()
    ))
}

/// `dir/name`, or `dir/stem (2).ext`… when that exists.
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => (stem, format!(".{extension}")),
        _ => (name, String::new()),
    };
    (2..)
        .map(|n| dir.join(format!("{stem} ({n}){extension}")))
        .find(|path| !path.exists())
        .unwrap_or(first)
}

fn human_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// The console as a call sees it: a growing answer goes to the screen
/// piece by piece (the receiver [`ConsoleLink::open`] returns), and an
/// attachment is read from its local path.
pub struct ConsoleLink {
    pieces: mpsc::UnboundedSender<String>,
}

impl ConsoleLink {
    pub fn open() -> (Arc<dyn ChatLink>, mpsc::UnboundedReceiver<String>) {
        let (pieces, receiver) = mpsc::unbounded_channel();
        (Arc::new(Self { pieces }), receiver)
    }

    async fn print_growing(&self, mut text: watch::Receiver<String>) -> anyhow::Result<()> {
        let mut printed = String::new();
        loop {
            let ended = text.changed().await.is_err();
            let current = text.borrow_and_update().clone();
            let piece = match current.strip_prefix(printed.as_str()) {
                Some(new) => new.to_string(),
                // Changed before what was printed (a secret masked once whole).
                None => format!("\n(corrected) {current}"),
            };
            if !piece.is_empty() {
                self.send(piece)?;
                printed = current;
            }
            if ended {
                if !printed.is_empty() {
                    self.send("\n".into())?;
                }
                return Ok(());
            }
        }
    }

    fn send(&self, piece: String) -> anyhow::Result<()> {
        self.pieces
            .send(piece)
            .map_err(|_| anyhow::anyhow!("the console has closed"))
    }
}

impl ChatLink for ConsoleLink {
    fn show_growing(&self, text: watch::Receiver<String>) -> LinkFuture<'_, anyhow::Result<()>> {
        Box::pin(self.print_growing(text))
    }

    fn shows_tool_calls(&self) -> bool {
        true
    }

    fn fetch<'a>(
        &'a self,
        attachment: &'a Attachment,
        max_bytes: u64,
    ) -> LinkFuture<'a, Result<Vec<u8>, FetchFailure>> {
        Box::pin(async move {
            let unavailable = |error: std::io::Error| {
                FetchFailure::Unavailable(format!("reading {}: {error}", attachment.id))
            };
            let file = tokio::fs::File::open(&attachment.id)
                .await
                .map_err(unavailable)?;
            let mut bytes = Vec::new();
            // One byte past the cap tells a file that grew since it was attached.
            file.take(max_bytes + 1)
                .read_to_end(&mut bytes)
                .await
                .map_err(unavailable)?;
            if bytes.len() as u64 > max_bytes {
                return Err(FetchFailure::TooLarge { cap: max_bytes });
            }
            Ok(bytes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_lines() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("cat photo.jpg");
        std::fs::write(&photo, b"JPEG").unwrap();
        let line = format!("/attach \"{}\" what is this?", photo.display());
        let (attachment, caption) = parse(&line).unwrap().unwrap();
        assert_eq!(caption, "what is this?");
        assert_eq!(attachment.kind, AttachmentKind::Photo);
        assert_eq!(attachment.mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(attachment.size, Some(4));
        assert_eq!(attachment.name.as_deref(), Some("cat photo.jpg"));
        assert!(parse("/attachment x").is_none());
        assert!(parse("hello").is_none());
        assert!(parse("/attach").unwrap().unwrap_err().contains("usage"));
        assert!(
            parse("/attach /no/such/file")
                .unwrap()
                .unwrap_err()
                .contains("cannot attach")
        );
    }

    #[test]
    fn a_taken_name_gets_a_number() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"1").unwrap();
        std::fs::write(dir.path().join("a (2).txt"), b"2").unwrap();
        assert_eq!(free_name(dir.path(), "a.txt"), dir.path().join("a (3).txt"));
        assert_eq!(free_name(dir.path(), "b"), dir.path().join("b"));
    }
}
