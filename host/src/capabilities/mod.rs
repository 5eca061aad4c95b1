//! Host capabilities lent to plugins. One module per WIT interface; a
//! plugin's linker receives only the interfaces its manifest grants.

pub mod audit;
pub mod cache;
pub mod health;
pub mod llm;
pub mod log;
pub mod secrets;
pub mod state;
pub mod vectors;

use wasmtime::component::Linker;

use crate::runtime::CallState;

/// Everything a manifest may list under `capabilities`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    Log,
    State,
    Secrets,
    Audit,
    Llm,
    Health,
    Cache,
    Vectors,
}

impl Capability {
    pub const ALL: &'static [Capability] = &[
        Capability::Log,
        Capability::State,
        Capability::Secrets,
        Capability::Audit,
        Capability::Llm,
        Capability::Health,
        Capability::Cache,
        Capability::Vectors,
    ];

    /// The name used in manifests and in the WIT interface (`wasmbot:plugin/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::State => "state",
            Capability::Secrets => "secrets",
            Capability::Audit => "audit",
            Capability::Llm => "llm",
            Capability::Health => "health",
            Capability::Cache => "cache",
            Capability::Vectors => "vectors",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// Adds this capability's host functions to a plugin's linker.
    pub fn link(self, linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
        match self {
            Capability::Log => log::link(linker),
            Capability::State => state::link(linker),
            Capability::Secrets => secrets::link(linker),
            Capability::Audit => audit::link(linker),
            Capability::Llm => llm::link(linker),
            Capability::Health => health::link(linker),
            Capability::Cache => cache::link(linker),
            Capability::Vectors => vectors::link(linker),
        }
    }
}
