//! `wasmbot:plugin/state`: durable JSON values by key, scoped to the calling
//! plugin (the plugin name is part of every query; a plugin cannot name another).

use super::keys::{MAX_KEY_BYTES, check_key};
use crate::infra::store::Store;
use crate::runtime::CallState;
use crate::runtime::bindings::state::{self as wit, StateError};
use crate::runtime::{Budget, HOST_CALLS};

/// Counted per call; `limits.state_writes` in the manifest, `PLUGIN_STATE_WRITES` for the operator.
pub static STATE_WRITES: Budget = Budget {
    key: "state_writes",
    unit: "state writes",
    default: 100,
    ceiling: 10000,
};

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
        store
            .set_state(self.plugin(), &key, &json)
            .await
            .map_err(unavailable)
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
