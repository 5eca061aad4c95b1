//! What a granted capability keeps per plugin (read from the manifest at
//! load) and adds to each call (a preopened folder, per-call state): the
//! types of `Capability::configure` and `Capability::prepare`.

use std::any::Any;
use std::sync::Arc;

use wasmtime_wasi::WasiCtxBuilder;

use super::budget::Budget;
use super::call::{CallContext, Extension, RevealedSecrets};
use super::settings::Settings;

/// See `Capability::configure`.
pub type Configure = fn(&GrantInput<'_>) -> Result<Grant, String>;

/// What a capability may read of a plugin's manifest at load.
pub struct GrantInput<'a> {
    pub plugin: &'a str,
    /// `http = [...]`, as written.
    pub http: &'a [String],
    /// `secrets = [...]`.
    pub secrets: &'a [String],
    /// `oauth = [...]`.
    pub oauth: &'a [String],
    /// The hosts the manifest binds credentials to, by label.
    pub credential_hosts: &'a std::collections::BTreeMap<String, Vec<String>>,
    /// `[settings]` with the operator's overrides.
    pub settings: &'a Settings,
    /// The component exports `on-event` (due jobs, webhooks reach it).
    pub events: bool,
}

/// What `Capability::configure` keeps for one plugin.
pub type Grant = Arc<dyn Any + Send + Sync>;

/// See `Capability::prepare`.
pub type Prepare = fn(&CallSetup<'_>, &mut WasiCtxBuilder) -> anyhow::Result<Option<Extension>>;

/// What a capability knows of a call while preparing it.
pub struct CallSetup<'a> {
    pub plugin: &'a str,
    pub context: &'a CallContext,
    /// What `Capability::configure` returned for this plugin.
    pub grant: Option<&'a Grant>,
    /// The plugin's resolved settings (`[settings]`, overridden by the operator).
    pub settings: &'a Settings,
    /// The call's deadline.
    pub timeout: std::time::Duration,
    /// Values to mask in whatever the plugin logs or replies in this call.
    pub revealed: &'a RevealedSecrets,
    pub(crate) allowances: &'a [(&'static Budget, u32)],
    pub(crate) quotas: &'a [(&'static Budget, u32)],
}

impl CallSetup<'_> {
    /// The plugin's allowance for a per-call budget or a quota of this capability.
    pub fn limit(&self, budget: &'static Budget) -> u32 {
        self.allowances
            .iter()
            .chain(self.quotas)
            .find(|(known, _)| std::ptr::eq(*known, budget))
            .map_or(budget.default, |&(_, limit)| limit)
    }
}
