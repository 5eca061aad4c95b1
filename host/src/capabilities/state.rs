//! `wasmbot:plugin/state`: durable JSON values by key, scoped to the calling
//! plugin (the plugin name is part of every query; a plugin cannot name another).

use super::keys::{MAX_KEY_BYTES, check_key};
use crate::infra::store::{StateQuota, Store};
use crate::runtime::CallState;
use crate::runtime::bindings::state::{self as wit, StateError};
use crate::runtime::{Budget, HOST_CALLS};

/// Counted per call; `limits.state_writes` in the manifest, `PLUGIN_STATE_WRITES` for the operator.
pub static STATE_WRITES: Budget = Budget::new("state_writes", "state writes", 100, 10000);

/// Kept per plugin; `limits.state_keys` in the manifest, `PLUGIN_STATE_KEYS` for the operator.
pub static STATE_KEYS: Budget = Budget::new("state_keys", "state keys", 10_000, 1_000_000);

/// Kept per plugin (keys and JSON text); `limits.state_kb`, `PLUGIN_STATE_KB`.
pub static STATE_KB: Budget = Budget::new("state_kb", "KiB of state", 10 * 1024, 1024 * 1024);

pub const MAX_VALUE_BYTES: usize = 64 * 1024;
const MAX_LIST: u32 = 1_000;

fn unavailable(error: impl std::fmt::Display) -> StateError {
    tracing::warn!(%error, "state capability: database error");
    StateError::Unavailable("the database is not available".into())
}

/// The database every call of this interface needs.
fn database(state: &CallState) -> Result<Store, StateError> {
    state
        .services()
        .store
        .clone()
        .ok_or_else(|| unavailable("no database"))
}

impl wit::Host for CallState {
    async fn get(&mut self, key: String) -> Result<Option<String>, StateError> {
        self.spend(&HOST_CALLS)?;
        check_key(&key, StateError::InvalidKey)?;
        let store = database(self)?;
        let value = store
            .get_state(self.plugin(), &key)
            .await
            .map_err(unavailable)?;
        Ok(value.map(|v| v.to_string()))
    }

    async fn set(&mut self, key: String, value: String) -> Result<(), StateError> {
        self.spend(&STATE_WRITES)?;
        check_key(&key, StateError::InvalidKey)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(StateError::TooLarge(MAX_VALUE_BYTES as u32));
        }
        let json: serde_json::Value = serde_json::from_str(&value)
            .map_err(|error| StateError::InvalidJson(error.to_string()))?;
        let store = database(self)?;
        let quota = StateQuota {
            keys: u64::from(self.quota(&STATE_KEYS)),
            bytes: u64::from(self.quota(&STATE_KB)) << 10,
        };
        match store
            .set_state_within(self.plugin(), &key, &json, quota)
            .await
            .map_err(unavailable)?
        {
            Ok(()) => Ok(()),
            Err(over) => {
                self.over_quota("state");
                Err(StateError::QuotaExceeded(over.to_string()))
            }
        }
    }

    async fn delete(&mut self, key: String) -> Result<bool, StateError> {
        self.spend(&STATE_WRITES)?;
        check_key(&key, StateError::InvalidKey)?;
        let store = database(self)?;
        store
            .delete_state(self.plugin(), &key)
            .await
            .map_err(unavailable)
    }

    async fn list(&mut self, prefix: String) -> Result<Vec<String>, StateError> {
        self.spend(&HOST_CALLS)?;
        if prefix.len() > MAX_KEY_BYTES {
            return Err(StateError::InvalidKey(format!(
                "prefixes must be at most {MAX_KEY_BYTES} bytes"
            )));
        }
        let store = database(self)?;
        store
            .list_state(self.plugin(), &prefix, MAX_LIST)
            .await
            .map_err(unavailable)
    }
}

over_budget_is!(StateError);
