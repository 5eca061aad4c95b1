//! Host capabilities lent to plugins: one module per WIT interface
//! (`wasmbot:plugin/<name>`), each with its host functions and its error
//! mapping, and one row per interface in the table below, which says how it
//! is linked. A plugin's linker receives only what its manifest grants;
//! adding a capability is one module and one row
//! (docs/adding-a-capability.md).

/// `?` on a budget refusal gives the interface's `over-budget` error case.
macro_rules! over_budget_is {
    ($error:ty) => {
        impl From<crate::runtime::OverBudget> for $error {
            fn from(over: crate::runtime::OverBudget) -> Self {
                Self::OverBudget(over.to_string())
            }
        }
    };
}

mod agent;
mod audit;
mod cache;
mod config;
mod files;
mod health;
mod http;
mod keys;
mod llm;
mod log;
mod media;
mod schedule;
mod secrets;
mod state;
mod vectors;

use wasmtime::component::HasSelf;

use crate::runtime::bindings;
use crate::runtime::{CallState, Capability, CapabilityTable};

/// A row of the table: the interface's name (in manifests and WIT) and its
/// generated bindings module, and the per-call budgets its host functions
/// count. Linking is the same for every interface: the
/// generated `add_to_linker`, with the call state as the host; the module
/// above implements the interface's `Host` trait for `CallState`. An
/// interface linked any other way (e.g. a WASI proposal) writes its row as
/// `Capability { name, link: its_module::link }`.
macro_rules! capability {
    ($name:literal, $bindings:ident $(, [$($budget:expr),*] $(, quotas [$($quota:expr),*])?)?) => {
        Capability {
            name: $name,
            link: |linker| {
                bindings::$bindings::add_to_linker::<CallState, HasSelf<CallState>>(
                    linker,
                    |state| state,
                )
            },
            budgets: &[$($($budget),*)?],
            quotas: &[$($($($quota),*)?)?],
            provides: &[],
            needs: &[],
            manifest_keys: &[],
            configure: None,
            prepare: None,
        }
    };
}

pub use files::usage_of as files_usage;
pub use llm::{
    account as account_llm_request, apply_error_policy as apply_llm_error_policy,
    cut_notice as llm_cut_notice,
};

/// Every capability a manifest may grant.
pub const ALL: CapabilityTable = &[
    capability!("log", log, [&log::LOG_LINES]),
    capability!(
        "state",
        state,
        [&state::STATE_WRITES],
        quotas [&state::STATE_KEYS, &state::STATE_KB]
    ),
    capability!("secrets", secrets),
    capability!("audit", audit, [&audit::AUDIT_ENTRIES]),
    capability!("llm", llm, [&llm::LLM_REQUESTS]),
    // Needs `llm` too (its types are llm's).
    Capability {
        needs: &[("llm", "Claude is reached through it")],
        ..capability!("agent", agent)
    },
    capability!("health", health),
    capability!(
        "cache",
        cache,
        [&cache::CACHE_WRITES],
        quotas [&cache::CACHE_KEYS, &cache::CACHE_KB]
    ),
    capability!(
        "vectors",
        vectors,
        [&vectors::VECTOR_WRITES, &vectors::EMBEDDING_REQUESTS],
        quotas[&vectors::VECTOR_POINTS]
    ),
    capability!("config", config),
    capability!("media", media, [&media::MEDIA_FETCHES]),
    Capability {
        name: "http",
        link: http::link,
        budgets: &[&http::HTTP_REQUESTS],
        quotas: &[&http::HTTP_RESPONSE_KB],
        provides: http::PROVIDES,
        needs: &[],
        manifest_keys: &[("http", "destinations"), ("oauth", "credentials")],
        configure: Some(http::configure),
        prepare: Some(http::prepare),
    },
    Capability {
        name: "schedule",
        link: |linker| {
            bindings::schedule::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| {
                state
            })
        },
        budgets: &[&schedule::SCHEDULE_WRITES],
        quotas: &[&schedule::SCHEDULE_JOBS],
        provides: &[],
        needs: &[],
        manifest_keys: &[],
        configure: Some(schedule::configure),
        prepare: None,
    },
    Capability {
        name: "files",
        link: files::link,
        budgets: &[],
        quotas: &[&files::FILES_KB],
        provides: &[],
        needs: &[],
        manifest_keys: &[],
        configure: Some(files::configure),
        prepare: Some(files::prepare),
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

    /// Every interface the worlds import has a row in the table, and every
    /// row an interface (ours, or a WASI one it links itself): a
    /// capability cannot be half added.
    #[test]
    fn the_table_and_the_world_agree() {
        let worlds = [
            include_str!("../../../wit/world.wit"),
            include_str!("../../../wit/v0.2/world.wit"),
            include_str!("../../../wit/v0.3/world.wit"),
        ];
        let mut imported: Vec<&str> = worlds
            .iter()
            .flat_map(|world| world.lines())
            .filter_map(|line| line.trim().strip_prefix("import "))
            // `import agent;` inside 0.3.0 names its own interface.
            .map(|rest| rest.trim_end_matches(';').trim())
            .map(|name| {
                let name = name.strip_prefix("wasmbot:plugin/").unwrap_or(name);
                name.split('@').next().unwrap_or(name)
            })
            .collect();
        imported.sort_unstable();
        imported.dedup();
        // Linked from WASI (wasi:http, wasi:filesystem), not from our WIT.
        imported.extend(["http", "files"]);
        let mut listed: Vec<&str> = super::ALL.iter().map(|c| c.name).collect();
        imported.sort_unstable();
        listed.sort_unstable();
        assert_eq!(
            imported, listed,
            "wit/world.wit imports vs capabilities::ALL"
        );
    }
}
