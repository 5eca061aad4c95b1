//! The plugin contract is written once: the capability table
//! (`capabilities::ALL`, with each capability's budgets and quotas) is the
//! source, and every other place that lists it — the SDKs in three
//! languages, the guest world builder, the plugin template, the README and
//! docs/plugins.md — is checked against it here, so a capability cannot be
//! half added and a document cannot drift.

mod common;

use std::collections::BTreeSet;

use common::workspace_root;
use wasmbot::capabilities::ALL;
use wasmbot::runtime::{Budget, Capability, HOST_CALLS};

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn granted_names() -> BTreeSet<String> {
    ALL.iter().map(|c| c.name.to_string()).collect()
}

/// Capabilities lent through a WASI interface rather than one of ours.
fn wasi_names() -> BTreeSet<String> {
    ["http", "files"].map(String::from).into()
}

/// The capabilities with a `wasmbot:plugin` interface of their own.
fn interface_names() -> BTreeSet<String> {
    &granted_names() - &wasi_names()
}

/// The `name`s quoted in the first Markdown table after `heading` (its
/// first column, in backquotes).
fn table_rows(text: &str, header: &str) -> Vec<Vec<String>> {
    let start = text
        .find(header)
        .unwrap_or_else(|| panic!("no table headed {header:?}"));
    text[start..]
        .lines()
        .skip(2) // the header and its |---| line
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            line.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect()
}

fn first_column(rows: &[Vec<String>]) -> BTreeSet<String> {
    rows.iter()
        .map(|row| row[0].trim_matches('`').to_string())
        .collect()
}

/// The strings inside `start ... end` of a source file (a Python tuple, a
/// dict's keys).
fn quoted_between(text: &str, start: &str, end: &str) -> Vec<String> {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}"));
    let body = &text[from + start.len()..];
    let body = &body[..body
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?}"))];
    body.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| {
            line.split('"')
                .skip(1)
                .step_by(2)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_readme_grant_table_has_one_row_per_capability() {
    let rows = table_rows(&read("README.md"), "| grant | SDK | what the host does |");
    assert_eq!(
        first_column(&rows),
        granted_names(),
        "README.md's grant table vs capabilities::ALL"
    );
    // The template line in the README lists every name too.
    let readme = read("README.md");
    let deny = readme
        .lines()
        .find(|line| line.starts_with("capabilities = []") && line.contains("deny by default"))
        .expect("the README's manifest example says what may be granted");
    for name in granted_names() {
        assert!(
            deny.contains(&format!("\"{name}\"")),
            "README's manifest example omits \"{name}\""
        );
    }
}

#[test]
fn the_plugin_guide_documents_every_capability() {
    let guide = read("docs/plugins.md");
    let rows = table_rows(&guide, "| grant | WIT interface | SDK | notes |");
    assert_eq!(
        first_column(&rows),
        granted_names(),
        "docs/plugins.md's capability table vs capabilities::ALL"
    );
}

fn budget_rows(header: &str) -> Vec<(String, u32, u32)> {
    table_rows(&read("docs/plugins.md"), header)
        .into_iter()
        .map(|row| {
            let number = |cell: &str| {
                cell.parse::<u32>().unwrap_or_else(|_| {
                    panic!("docs/plugins.md: {cell:?} in {row:?} is not a number")
                })
            };
            let n = row.len();
            (
                row[0].trim_matches('`').to_string(),
                number(&row[n - 2]),
                number(&row[n - 1]),
            )
        })
        .collect()
}

fn documented(budgets: impl Iterator<Item = &'static Budget>) -> Vec<(String, u32, u32)> {
    let mut rows: Vec<_> = budgets
        .map(|b| (b.key.to_string(), b.default, b.ceiling))
        .collect();
    rows.sort();
    rows
}

#[test]
fn the_documented_budgets_and_quotas_are_the_tables() {
    let mut budgets = budget_rows("| key | counts | default | ceiling |");
    budgets.sort();
    let declared = documented(
        std::iter::once(&HOST_CALLS).chain(ALL.iter().flat_map(|c| c.budgets.iter().copied())),
    );
    assert_eq!(
        budgets, declared,
        "docs/plugins.md's budget table (key, default, ceiling) vs the capability rows"
    );
    let mut quotas = budget_rows("| key | holds | default | ceiling |");
    quotas.sort();
    let declared = documented(ALL.iter().flat_map(|c| c.quotas.iter().copied()));
    assert_eq!(
        quotas, declared,
        "docs/plugins.md's quota table vs the capability rows"
    );
    // And nothing a manifest may set is missing from both.
    let all: BTreeSet<&str> = Capability::all_budgets(ALL).map(|b| b.key).collect();
    assert_eq!(all.len(), budgets.len() + quotas.len());
}

#[test]
fn the_python_sdk_knows_every_interface() {
    let sdk = read("sdk/python/wasmbot/_capabilities.py");
    let listed: BTreeSet<String> = quoted_between(&sdk, "CAPABILITIES = (", ")")
        .into_iter()
        .collect();
    assert_eq!(
        listed,
        interface_names(),
        "sdk/python/wasmbot/_capabilities.py CAPABILITIES"
    );
}

#[test]
fn the_javascript_sdk_exports_every_interface() {
    let sdk = read("sdk/js/index.js");
    let exported: BTreeSet<String> = sdk
        .split("capability('")
        .skip(1)
        .filter_map(|rest| rest.split('\'').next())
        .filter(|name| *name != "${name}")
        .map(String::from)
        .collect();
    assert_eq!(
        exported,
        interface_names(),
        "sdk/js/index.js capability(...) exports"
    );
}

#[test]
fn the_guest_world_builder_knows_every_capability_and_its_package() {
    let script = read("scripts/guest_world.py");
    let interfaces = quoted_between(&script, "INTERFACES = {", "}");
    // "name": "version" pairs.
    let pairs: Vec<(String, String)> = interfaces
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    let names: BTreeSet<String> = pairs.iter().map(|(name, _)| name.clone()).collect();
    assert_eq!(
        names,
        interface_names(),
        "scripts/guest_world.py INTERFACES"
    );
    let wasi: BTreeSet<String> = quoted_between(&script, "WASI_CAPABILITIES = {", "}")
        .into_iter()
        .collect();
    assert_eq!(
        wasi,
        wasi_names(),
        "scripts/guest_world.py WASI_CAPABILITIES"
    );
    // Each interface is declared in the package the script says.
    for (name, version) in pairs {
        let dir = match version.as_str() {
            "0.1.0" => "wit".to_string(),
            other => format!("wit/v{}", &other[..other.rfind('.').expect("x.y.z")]),
        };
        let declared = std::fs::read_dir(workspace_root().join(&dir))
            .expect("wit dir")
            .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
            .any(|text| {
                text.contains(&format!("package wasmbot:plugin@{version};"))
                    && text.contains(&format!("interface {name} {{"))
            });
        assert!(
            declared,
            "scripts/guest_world.py: `{name}` is not an interface of wasmbot:plugin@{version} ({dir})"
        );
    }
}

#[test]
fn the_adding_a_capability_guide_names_every_place_that_lists_capabilities() {
    let guide = read("docs/adding-a-capability.md");
    for place in [
        "host/src/capabilities/mod.rs",
        "wit/world.wit",
        "sdk/src/lib.rs",
        "sdk/python/wasmbot/_capabilities.py",
        "sdk/js/index.js",
        "scripts/guest_world.py",
        "templates/plugin/plugin.toml.tmpl",
        "README.md",
        "docs/plugins.md",
        "host/src/runtime/bindings.rs",
    ] {
        assert!(
            guide.contains(place),
            "docs/adding-a-capability.md does not name {place}"
        );
    }
}

/// `pub const NAME: TYPE = EXPR;` in a Rust source, EXPR of integers
/// joined by `*` or `<<` (what the SDK writes).
fn rust_constant(source: &str, name: &str) -> u64 {
    let line = source
        .lines()
        .find(|line| line.starts_with(&format!("pub const {name}:")))
        .unwrap_or_else(|| panic!("no `pub const {name}`"));
    let expr = line
        .split('=')
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("{line}: no value"));
    let number = |text: &str| {
        text.trim()
            .replace('_', "")
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{line}: {text:?} is not an integer"))
    };
    match expr.split_once("<<") {
        Some((value, shift)) => number(value) << number(shift),
        None => expr.split('*').map(number).product(),
    }
}

#[test]
fn the_rust_sdk_checks_actions_against_the_hosts_limits() {
    use wasmbot::runtime as host;
    let sdk = read("sdk/src/lib.rs");
    for (name, limit) in [
        ("MAX_ACTIONS", host::MAX_ACTIONS as u64),
        ("MAX_BUTTON_DATA_BYTES", host::MAX_BUTTON_DATA_BYTES as u64),
        (
            "MAX_BUTTON_LABEL_CHARS",
            host::MAX_BUTTON_LABEL_CHARS as u64,
        ),
        ("MAX_BUTTONS", host::MAX_BUTTONS as u64),
        ("MAX_BUTTONS_PER_ROW", host::MAX_BUTTONS_PER_ROW as u64),
        (
            "MAX_PROMPT_STATE_BYTES",
            host::MAX_PROMPT_STATE_BYTES as u64,
        ),
        ("MAX_ASK_TIMEOUT_SECS", host::MAX_PROMPT_WAIT.as_secs()),
    ] {
        assert_eq!(
            rust_constant(&sdk, name),
            limit,
            "sdk/src/lib.rs {name} vs the host's limit"
        );
    }
}
