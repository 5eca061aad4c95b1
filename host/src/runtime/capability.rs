//! What the runtime knows of a capability: its name and how to link it. The
//! runtime names none of them; it is handed a table (`capabilities::ALL`) and
//! checks manifests and imports against whatever that table lists.

use wasmtime::component::Linker;

use super::budget::{Budget, HOST_CALLS};
use super::call::CallState;
use super::grant::{Configure, Prepare};

/// One plugin-facing interface, `wasmbot:plugin/<name>`.
#[derive(Clone, Copy)]
pub struct Capability {
    /// The name in manifests (`capabilities = [...]`) and in the WIT interface.
    pub name: &'static str,
    /// Adds the interface's host functions to a plugin's linker.
    pub link: fn(&mut Linker<CallState>) -> wasmtime::Result<()>,
    /// What its host functions count per call (log lines, writes, ...).
    pub budgets: &'static [&'static Budget],
    /// What a plugin may keep through it over time (state keys and KiB, ...),
    /// set like budgets: `[limits]` in the manifest, `PLUGIN_<KEY>` otherwise.
    pub quotas: &'static [&'static Budget],
    /// Interfaces outside `wasmbot:plugin` the grant covers, by prefix
    /// (`wasi:http/`): a component importing one needs this grant.
    pub provides: &'static [&'static str],
    /// Other capabilities a manifest granting this one must grant too, each
    /// with the reason given when it does not (`agent` needs `llm`).
    pub needs: &'static [(&'static str, &'static str)],
    /// Top-level manifest keys that mean something only with this grant,
    /// each with what it lists (`http`: "destinations"): a manifest filling
    /// one without the grant is refused.
    pub manifest_keys: &'static [(&'static str, &'static str)],
    /// At load: what the capability keeps per plugin, read from its
    /// manifest and settings (its destinations, say); a bad manifest is
    /// refused with the one-line reason returned.
    pub configure: Option<Configure>,
    /// Before each call: adds what the call needs to its WASI context (a
    /// preopened folder) and returns per-call state the capability's host
    /// functions find again through `CallState` (`table_and_extension_or`,
    /// `filesystem_and_extension`).
    pub prepare: Option<Prepare>,
}

/// Every capability this host can grant, handed to the [`super::PluginEngine`].
pub type CapabilityTable = &'static [Capability];

impl Capability {
    pub fn find(table: CapabilityTable, name: &str) -> Option<&'static Capability> {
        table.iter().find(|capability| capability.name == name)
    }

    /// The capability whose grant covers a non-`wasmbot` import (`wasi:http/types@0.2.6`).
    pub fn providing(table: CapabilityTable, import: &str) -> Option<&'static Capability> {
        table.iter().find(|capability| {
            capability
                .provides
                .iter()
                .any(|prefix| import.starts_with(prefix))
        })
    }

    /// Every budget and quota a manifest may set under `[limits]` with this table.
    pub fn all_budgets(table: CapabilityTable) -> impl Iterator<Item = &'static Budget> {
        std::iter::once(&HOST_CALLS).chain(table.iter().flat_map(|capability| {
            capability
                .budgets
                .iter()
                .chain(capability.quotas.iter())
                .copied()
        }))
    }
}

// Two entries are the same capability when they have the same name; the
// link function is not compared (function addresses are not stable).
impl PartialEq for Capability {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Capability {}

impl std::fmt::Debug for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}
