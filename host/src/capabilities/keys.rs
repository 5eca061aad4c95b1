//! The key rule shared by the key-value capabilities (`state`, `cache`).

/// The longest key (or key prefix) a plugin may use, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// Refuses an empty or too long key with `invalid(why)`: each capability
/// passes its own `invalid-key` error case.
pub fn check_key<E>(key: &str, invalid: impl FnOnce(String) -> E) -> Result<(), E> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(invalid(format!(
            "keys must be 1-{MAX_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}
