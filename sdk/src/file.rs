//! A file to send: bytes the plugin made or fetched, with a name and a caption.

use crate::{Action, FileKind, Format, MessageRef, OutgoingFile};

/// A file action: `File::document("notes.txt", bytes).caption("Your notes")`.
/// The host uploads it (at most the operator's `MEDIA_MAX_MB`; a photo at
/// most 10 MB) and refuses a name with `/` in it.
#[derive(Debug, Clone, PartialEq)]
pub struct File(OutgoingFile);

impl File {
    fn new(kind: FileKind, name: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self(OutgoingFile {
            kind,
            name: name.into(),
            data: data.into(),
            caption: String::new(),
            format: Format::Plain,
            reply_to: None,
        })
    }

    /// A file to save (any type).
    pub fn document(name: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self::new(FileKind::Document, name, data)
    }

    /// A picture shown in the chat (JPEG, PNG or WebP).
    pub fn photo(name: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self::new(FileKind::Photo, name, data)
    }

    /// Text under the file (at most 1024 characters), plain.
    pub fn caption(mut self, text: impl Into<String>) -> Self {
        self.0.caption = text.into();
        self
    }

    /// The caption's format (Markdown, HTML).
    pub fn format(mut self, format: Format) -> Self {
        self.0.format = format;
        self
    }

    pub fn reply_to(mut self, message: impl Into<MessageRef>) -> Self {
        self.0.reply_to = Some(message.into());
        self
    }
}

impl From<File> for Action {
    fn from(file: File) -> Self {
        Action::SendFile(file.0)
    }
}
