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

#[cfg(test)]
mod tests {
    /// A new plugin's manifest (`just new-plugin`) names every capability it may ask for.
    #[test]
    fn the_plugin_template_lists_every_capability() {
        let template = include_str!("../../../templates/plugin/plugin.toml.tmpl");
        for capability in super::ALL {
            assert!(
                template.contains(&format!("\"{}\"", capability.name)),
                "templates/plugin/plugin.toml.tmpl does not mention \"{}\"",
                capability.name
            );
        }
    }

    /// Every interface the world imports has a row in the table, and every
    /// row an interface: a capability cannot be half added.
    #[test]
    fn the_table_and_the_world_agree() {
        let world = include_str!("../../../wit/world.wit");
        let mut imported: Vec<&str> = world
            .lines()
            .filter_map(|line| line.trim().strip_prefix("import "))
            .map(|rest| rest.trim_end_matches(';').trim())
            .collect();
        let mut listed: Vec<&str> = super::ALL.iter().map(|c| c.name).collect();
        imported.sort_unstable();
        listed.sort_unstable();
        assert_eq!(
            imported, listed,
            "wit/world.wit imports vs capabilities::ALL"
        );
    }
}
