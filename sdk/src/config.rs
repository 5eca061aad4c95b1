//! The plugin's settings (needs `capabilities = ["config"]`): the values
//! declared under `[settings]` in its manifest, as the operator may have
//! overridden them (`PLUGIN_<PLUGIN>_<KEY>`). Read-only; a plugin sees its
//! own settings only, and a key the manifest does not declare has no value.
//!
//! ```ignore
//! let base = config::require("api_url")?;
//! ```

use crate::bindings::wasmbot::plugin0_2_0::config as wit;

/// The value of setting `key`; `None` when the manifest does not declare it.
pub fn get(key: &str) -> Option<String> {
    wit::get(key)
}

/// Every declared setting with its value, sorted by key.
pub fn all() -> Vec<(String, String)> {
    wit::all()
}

/// The value of setting `key`, or an error naming it (a text for the user,
/// so `?` works in a handler): a plugin that needs a setting says which one
/// its manifest lacks instead of failing further on.
pub fn require(key: &str) -> Result<String, String> {
    get(key).ok_or_else(|| not_declared(key))
}

fn not_declared(key: &str) -> String {
    format!("setting `{key}` is not declared in the manifest")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_setting_is_named() {
        assert_eq!(
            not_declared("api_url"),
            "setting `api_url` is not declared in the manifest"
        );
    }
}
