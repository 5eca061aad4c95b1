//! The key rule shared by the key-value capabilities (`state`, `cache`).

/// The longest key (or key prefix) a plugin may use, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// Why `key` is not a usable key, in the plugin's terms; each capability
/// wraps it in its own `invalid-key` error.
pub fn key_problem(key: &str) -> Option<String> {
    (key.is_empty() || key.len() > MAX_KEY_BYTES)
        .then(|| format!("keys must be 1-{MAX_KEY_BYTES} bytes, got {}", key.len()))
}
