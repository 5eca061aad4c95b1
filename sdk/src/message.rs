use crate::{Message, Reply, ReplyFormat};

impl Message {
    /// A name to address the user by: their @username, or "there" ("Hello, there!").
    pub fn display_name(&self) -> &str {
        self.username
            .as_deref()
            .filter(|name| !name.is_empty())
            .unwrap_or("there")
    }

    /// The arguments split on whitespace.
    pub fn arg_words(&self) -> impl Iterator<Item = &str> {
        self.args.split_whitespace()
    }

    /// A number unique to this message (a hash of its correlation id), e.g.
    /// an id for a vector point created from it.
    pub fn unique_id(&self) -> u64 {
        // FNV-1a: stable across builds and hosts, unlike std's hasher.
        self.correlation_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
            })
    }

    /// Seconds since the Unix epoch, by the host's clock.
    pub fn unix_time(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    }
}

impl Reply {
    /// A plain-text reply.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            format: ReplyFormat::Plain,
        }
    }

    /// A reply rendered as Telegram MarkdownV2. Put user text through
    /// [`escape_markdown`] first; markup Telegram refuses is sent as plain text.
    pub fn markdown(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            format: ReplyFormat::Markdown,
        }
    }

    /// A reply rendered as Telegram HTML.
    pub fn html(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            format: ReplyFormat::Html,
        }
    }
}

/// Escapes every character MarkdownV2 reserves, so `text` shows as written
/// inside a `Reply::markdown`.
pub fn escape_markdown(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "_*[]()~`>#+-=|{}.!\\".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Escapes `<`, `>` and `&` for a `Reply::html`.
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
