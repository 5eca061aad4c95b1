//! Host capabilities lent to plugins. One module per WIT interface; a
//! plugin's linker receives only the interfaces its manifest grants.

pub mod log;

use wasmtime::component::Linker;

use crate::runtime::CallState;

/// Everything a manifest may list under `capabilities`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    Log,
}

impl Capability {
    pub const ALL: &'static [Capability] = &[Capability::Log];

    /// The name used in manifests and in the WIT interface (`wasmbot:plugin/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// Adds this capability's host functions to a plugin's linker.
    pub fn link(self, linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
        match self {
            Capability::Log => log::link(linker),
        }
    }
}
