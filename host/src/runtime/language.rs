//! Which toolchain made a component, for `plugins list` and the metrics:
//! read from the marks each toolchain leaves in the bytes.

use memchr::memmem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    Python,
    JavaScript,
    /// Another toolchain (C, Go, hand-written WAT...).
    Other,
}

impl Language {
    pub fn of(component: &[u8]) -> Self {
        let has = |mark: &[u8]| memmem::find(component, mark).is_some();
        // componentize-py names its own export interface after itself;
        // componentize-js embeds the StarlingMonkey engine.
        if has(b"componentize-py") {
            Language::Python
        } else if has(b"StarlingMonkey") {
            Language::JavaScript
        } else if has(b"rustc") {
            Language::Rust
        } else {
            Language::Other
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "js",
            Language::Other => "wasm",
        }
    }
}
