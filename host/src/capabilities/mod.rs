//! Host capabilities lent to plugins: one module per WIT interface
//! (`wasmbot:plugin/<name>`), each with its `link`, its host functions and
//! its error mapping. A plugin's linker receives only what its manifest
//! grants, from the table below; adding a capability is one module and one
//! row (docs/adding-a-capability.md).

mod audit;
mod cache;
mod health;
mod keys;
mod llm;
mod log;
mod secrets;
mod state;
mod vectors;

use crate::runtime::{Capability, CapabilityTable};

/// Every capability a manifest may grant.
pub const ALL: CapabilityTable = &[
    Capability {
        name: "log",
        link: log::link,
    },
    Capability {
        name: "state",
        link: state::link,
    },
    Capability {
        name: "secrets",
        link: secrets::link,
    },
    Capability {
        name: "audit",
        link: audit::link,
    },
    Capability {
        name: "llm",
        link: llm::link,
    },
    Capability {
        name: "health",
        link: health::link,
    },
    Capability {
        name: "cache",
        link: cache::link,
    },
    Capability {
        name: "vectors",
        link: vectors::link,
    },
];
