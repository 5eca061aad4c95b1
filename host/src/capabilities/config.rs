//! `wasmbot:plugin/config`: the plugin's own settings, declared with
//! defaults under `[settings]` and overridden by the operator with
//! `PLUGIN_<PLUGIN>_<KEY>`; resolved at load, read-only here.

use crate::runtime::CallState;
use crate::runtime::bindings::config as wit;

impl wit::Host for CallState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.settings().get(&key).map(str::to_string)
    }

    async fn all(&mut self) -> Vec<(String, String)> {
        self.settings()
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }
}
