//! Durable state for this plugin (needs `capabilities = ["state"]`). Values
//! are any serde type, stored as JSON; keys are private to the plugin.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::wasmbot::plugin0_1_0::state as wit;
pub use crate::bindings::wasmbot::plugin0_1_0::state::StateError;

impl StateError {
    /// A sentence for a user or a log line.
    pub fn message(&self) -> String {
        match self {
            StateError::InvalidKey(why) => format!("invalid key: {why}"),
            StateError::InvalidJson(why) => format!("invalid JSON: {why}"),
            StateError::TooLarge(limit) => format!("value larger than {limit} bytes"),
            StateError::Unavailable(why) => format!("storage unavailable: {why}"),
            StateError::OverBudget(why) => why.clone(),
            StateError::QuotaExceeded(why) => why.clone(),
        }
    }
}

impl From<StateError> for String {
    fn from(error: StateError) -> Self {
        error.message()
    }
}

/// The value under `key`, if any.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, StateError> {
    match wit::get(key)? {
        Some(json) => serde_json::from_str(&json)
            .map(Some)
            .map_err(|error| StateError::InvalidJson(error.to_string())),
        None => Ok(None),
    }
}

/// Stores `value` under `key`.
pub fn set<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), StateError> {
    let json =
        serde_json::to_string(value).map_err(|error| StateError::InvalidJson(error.to_string()))?;
    wit::set(key, &json)
}

/// Removes `key`; true when it existed.
pub fn delete(key: &str) -> Result<bool, StateError> {
    wit::delete(key)
}

/// Keys starting with `prefix`, sorted.
pub fn list(prefix: &str) -> Result<Vec<String>, StateError> {
    wit::list(prefix)
}
