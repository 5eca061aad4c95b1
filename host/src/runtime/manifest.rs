//! `NAME.toml`, the manifest beside every `NAME.wasm`: what the plugin is,
//! which commands it answers, what it is granted and its limits.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::tools::ToolSpec;

use super::capability::{Capability, CapabilityTable};
use super::engine::MAX_PLUGIN_MEMORY_MB;
use crate::infra::vault::{CREDENTIAL_NAME_RULE, is_credential_name};

/// The command the host answers itself with the list of commands.
pub const HELP_COMMAND: &str = "help";

/// Telegram's limit on a command's description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 256;

/// The command that leaves a plugin's pending question (`ask`).
pub const CANCEL_COMMAND: &str = "cancel";

/// Commands the host answers itself; a plugin may not claim them.
pub const RESERVED_COMMANDS: &[&str] = &[HELP_COMMAND, CANCEL_COMMAND];

/// The longest call a manifest (or `PLUGIN_TIMEOUT_MS`) may allow.
pub const MAX_TIMEOUT_MS: u64 = 600_000;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ManifestError {
    pub path: String,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: String,
    pub description: String,
}

/// The longest reply text a manifest (or `PLUGIN_REPLY_KB`) may allow, in KiB.
pub const MAX_REPLY_KB: u64 = 256;

/// The reply text a plugin may return unless told otherwise, in KiB: four
/// Telegram messages of plain ASCII.
pub const DEFAULT_REPLY_KB: u64 = 16;

/// Per-call limits after the host defaults are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    pub timeout: Duration,
    /// The sum over every linear memory of the call.
    pub memory_bytes: u64,
    /// Reply text past this is cut, with a notice.
    pub reply_bytes: usize,
}

impl PluginLimits {
    pub fn new(timeout_ms: u64, memory_mb: u64) -> Self {
        Self {
            timeout: Duration::from_millis(timeout_ms),
            memory_bytes: memory_mb << 20,
            reply_bytes: (DEFAULT_REPLY_KB << 10) as usize,
        }
    }

    pub fn with_reply_kb(self, reply_kb: u64) -> Self {
        Self {
            reply_bytes: (reply_kb << 10) as usize,
            ..self
        }
    }
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self::new(5_000, 64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub commands: Vec<CommandSpec>,
    pub capabilities: Vec<Capability>,
    pub secrets: Vec<String>,
    /// `oauth = [...]`: OAuth 2 credentials (`wasmbot oauth add`) whose
    /// access token the host may put into this plugin's requests.
    pub oauth: Vec<String>,
    /// The hosts a credential is put into requests for, where the manifest
    /// names them (`secrets = [{ name = "github", hosts = ["api.github.com"] }]`),
    /// by label (`github`, `oauth:google`); the others go to the exact
    /// entries of `http` only.
    pub credential_hosts: BTreeMap<String, Vec<String>>,
    pub limits: PluginLimits,
    /// Per-call budgets the manifest sets under `[limits]` (checked against
    /// the capability table); the operator's defaults fill the rest.
    pub budgets: BTreeMap<String, u64>,
    /// Takes plain text (not a command) when the operator makes it the
    /// `DEFAULT_PLUGIN`.
    pub free_text: bool,
    /// `http = [...]`: where a plugin granted `http` may send requests, as
    /// written (the capability parses them, settings substituted).
    pub http: Vec<String>,
    /// `[settings]`: each key's default, as text.
    pub settings: BTreeMap<String, String>,
    /// `[[tools]]`: what the assistant (Claude) and MCP clients may call;
    /// checked further (names, schemas) when the plugin loads.
    pub tools: Vec<ToolSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    #[serde(default)]
    commands: Vec<RawCommand>,
    #[serde(default)]
    free_text: bool,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    secrets: Vec<RawCredential>,
    #[serde(default)]
    oauth: Vec<RawCredential>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    http: Vec<String>,
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
    #[serde(default)]
    tools: Vec<ToolSpec>,
}

/// A credential's name, or its name and the hosts it is for.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawCredential {
    Name(String),
    Bound(BoundCredential),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BoundCredential {
    name: String,
    hosts: Vec<String>,
}

impl RawCredential {
    fn name(&self) -> &str {
        match self {
            RawCredential::Name(name) => name,
            RawCredential::Bound(bound) => &bound.name,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    name: String,
    description: String,
}

#[derive(Deserialize, Default)]
struct RawLimits {
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
    reply_kb: Option<u64>,
    /// Any other key must be a budget of the capability table.
    #[serde(flatten)]
    budgets: BTreeMap<String, u64>,
}

impl Manifest {
    /// Reads and validates a manifest; `defaults` fill the limits it leaves out.
    /// Granted capabilities must be in `known`.
    pub fn load(
        path: &Path,
        defaults: PluginLimits,
        known: CapabilityTable,
    ) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|error| ManifestError {
            path: path.display().to_string(),
            problem: format!("cannot read the manifest: {error}"),
        })?;
        Self::parse(&text, defaults, known).map_err(|problem| ManifestError {
            path: path.display().to_string(),
            problem,
        })
    }

    pub fn parse(
        text: &str,
        defaults: PluginLimits,
        known: CapabilityTable,
    ) -> Result<Self, String> {
        let raw: RawManifest = toml::from_str(text)
            .map_err(|error| format!("not a valid manifest: {}", error.message()))?;
        validate_identifier("name", &raw.name, "a plugin name")?;
        if raw.version.trim().is_empty() {
            return Err("`version` must not be empty".into());
        }
        if raw.commands.is_empty() && !raw.free_text && raw.tools.is_empty() {
            return Err(
                "`commands` must list at least one command (or set `free_text = true`, or declare `[[tools]]`)".into(),
            );
        }
        super::tools::compile_all(&raw.tools)?;
        let mut seen = HashSet::new();
        let mut commands = Vec::with_capacity(raw.commands.len());
        for command in raw.commands {
            validate_command(&command)?;
            if !seen.insert(command.name.clone()) {
                return Err(format!("command `{}` is listed twice", command.name));
            }
            commands.push(CommandSpec {
                name: command.name,
                description: command.description.trim().to_string(),
            });
        }
        let mut capabilities = Vec::with_capacity(raw.capabilities.len());
        for name in &raw.capabilities {
            let capability = *Capability::find(known, name).ok_or_else(|| {
                format!(
                    "unknown capability `{name}` (known: {})",
                    known.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
                )
            })?;
            if !capabilities.contains(&capability) {
                capabilities.push(capability);
            }
        }
        let timeout_ms = raw
            .limits
            .timeout_ms
            .unwrap_or(defaults.timeout.as_millis() as u64);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(format!(
                "`limits.timeout_ms` must be between 1 and {MAX_TIMEOUT_MS}, got {timeout_ms}"
            ));
        }
        let memory_mb = raw.limits.memory_mb.unwrap_or(defaults.memory_bytes >> 20);
        if !(1..=MAX_PLUGIN_MEMORY_MB).contains(&memory_mb) {
            return Err(format!(
                "`limits.memory_mb` must be between 1 and {MAX_PLUGIN_MEMORY_MB}, got {memory_mb}"
            ));
        }
        let reply_kb = raw
            .limits
            .reply_kb
            .unwrap_or((defaults.reply_bytes >> 10) as u64);
        if !(1..=MAX_REPLY_KB).contains(&reply_kb) {
            return Err(format!(
                "`limits.reply_kb` must be between 1 and {MAX_REPLY_KB}, got {reply_kb}"
            ));
        }
        for (key, &value) in &raw.limits.budgets {
            let budget = Capability::all_budgets(known)
                .find(|budget| budget.key == key)
                .ok_or_else(|| {
                    let known: Vec<&str> = ["timeout_ms", "memory_mb", "reply_kb"]
                        .into_iter()
                        .chain(Capability::all_budgets(known).map(|budget| budget.key))
                        .collect();
                    format!("unknown limit `{key}` (known: {})", known.join(", "))
                })?;
            if !(1..=u64::from(budget.ceiling)).contains(&value) {
                return Err(format!(
                    "`limits.{key}` must be between 1 and {}, got {value}",
                    budget.ceiling
                ));
            }
        }
        check_needs(&capabilities)?;
        // The operator's names (`secrets set`): the host keeps its own
        // credentials (webhook secrets, `hook:…`) under names no manifest can list.
        let mut credential_hosts = BTreeMap::new();
        for (field, entries) in [("secrets", &raw.secrets), ("oauth", &raw.oauth)] {
            for entry in entries.iter() {
                let name = entry.name();
                if !is_credential_name(name) {
                    return Err(format!(
                        "`{field}` lists {name:?}; credential names are {CREDENTIAL_NAME_RULE}"
                    ));
                }
                let RawCredential::Bound(bound) = entry else {
                    continue;
                };
                if bound.hosts.is_empty() {
                    return Err(format!(
                        "`{field}` entry {name:?} lists no `hosts`: name the hosts it is for, or write just the name"
                    ));
                }
                if bound.hosts.iter().any(|host| host.trim() == "*") {
                    return Err(format!(
                        "`{field}` entry {name:?} is bound to \"*\": a credential goes only to the hosts it is for; name them"
                    ));
                }
                let label = match field {
                    "oauth" => format!("oauth:{name}"),
                    _ => name.to_string(),
                };
                credential_hosts.insert(label, bound.hosts.clone());
            }
        }
        check_manifest_keys(text, &capabilities, known)?;
        let mut settings = BTreeMap::new();
        for (key, value) in raw.settings {
            validate_identifier("settings", &key, "a setting name")?;
            let text = match value {
                toml::Value::String(text) => text,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(n) => n.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "`settings.{key}` must be a string, a number or a boolean, got {}",
                        other.type_str()
                    ));
                }
            };
            settings.insert(key, text);
        }
        Ok(Self {
            name: raw.name,
            version: raw.version,
            commands,
            capabilities,
            secrets: raw.secrets.iter().map(|c| c.name().to_string()).collect(),
            oauth: raw.oauth.iter().map(|c| c.name().to_string()).collect(),
            credential_hosts,
            limits: PluginLimits::new(timeout_ms, memory_mb).with_reply_kb(reply_kb),
            budgets: raw.limits.budgets,
            free_text: raw.free_text,
            http: raw.http,
            settings,
            tools: raw.tools,
        })
    }

    pub fn grants(&self, name: &str) -> bool {
        self.capabilities
            .iter()
            .any(|capability| capability.name == name)
    }
}

/// A granted capability's `needs`: the others it must be granted with.
fn check_needs(granted: &[Capability]) -> Result<(), String> {
    for capability in granted {
        let missing = capability
            .needs
            .iter()
            .find(|(other, _)| !granted.iter().any(|c| c.name == *other));
        if let Some((other, why)) = missing {
            return Err(format!(
                "`{}` needs `{other}` granted too ({why})",
                capability.name
            ));
        }
    }
    Ok(())
}

/// A capability's `manifest_keys`, filled only with its grant.
fn check_manifest_keys(
    text: &str,
    granted: &[Capability],
    known: CapabilityTable,
) -> Result<(), String> {
    if known.iter().all(|c| c.manifest_keys.is_empty()) {
        return Ok(());
    }
    // Parsed once already into the manifest's own fields; read as a table
    // here so that the runtime need not know which keys are whose.
    let table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
    for capability in known.iter().filter(|c| !granted.contains(c)) {
        for (key, what) in capability.manifest_keys {
            let filled = table
                .get(*key)
                .and_then(toml::Value::as_array)
                .is_some_and(|entries| !entries.is_empty());
            if filled {
                return Err(format!(
                    "`{key}` lists {what}, but `capabilities` does not grant `{}`",
                    capability.name
                ));
            }
        }
    }
    Ok(())
}

fn validate_identifier(field: &str, value: &str, what: &str) -> Result<(), String> {
    let valid = (1..=32).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{field}` = {value:?} is not {what}: use 1-32 characters a-z, 0-9, '_' or '-', starting with a letter"
        ))
    }
}

/// Telegram's rules: 1-32 characters of a-z, 0-9 and '_'; description 1-256 characters.
fn validate_command(command: &RawCommand) -> Result<(), String> {
    let name = &command.name;
    let valid = (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(format!(
            "command {name:?} is not a valid command name: use 1-32 characters a-z, 0-9 or '_' (no slash)"
        ));
    }
    if RESERVED_COMMANDS.contains(&name.as_str()) {
        return Err(format!("command `{name}` is reserved by the host"));
    }
    let description = command.description.trim();
    if description.is_empty() || description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "command `{name}` needs a description of 1-{MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    Ok(())
}

/// The manifest path that belongs to a component path (`x/NAME.wasm` -> `x/NAME.toml`).
pub fn manifest_path_for(wasm: &Path) -> PathBuf {
    wasm.with_extension("toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime is handed its capabilities; these tests hand it one.
    const LOG: Capability = Capability {
        name: "log",
        link: |_| Ok(()),
        budgets: &[],
        quotas: &[],
        provides: &[],
        needs: &[],
        manifest_keys: &[],
        configure: None,
        prepare: None,
    };

    /// The rules are the rows': a capability that needs another, and one
    /// that owns a manifest key, under names the runtime has never heard of.
    #[test]
    fn what_a_grant_needs_and_owns_is_said_by_its_row() {
        const HELPER: Capability = Capability {
            name: "helper",
            ..LOG
        };
        const NEEDY: Capability = Capability {
            name: "needy",
            needs: &[("helper", "it calls the helper")],
            ..LOG
        };
        const WEB: Capability = Capability {
            name: "web",
            manifest_keys: &[("http", "destinations")],
            ..LOG
        };
        let table = &[LOG, HELPER, NEEDY, WEB];
        let manifest = |capabilities: &str, extra: &str| {
            let text = format!(
                "name = \"p\"\nversion = \"1\"\ncommands = [{{ name = \"p\", description = \"d\" }}]\ncapabilities = {capabilities}\n{extra}"
            );
            Manifest::parse(&text, PluginLimits::default(), table)
        };
        assert_eq!(
            manifest(r#"["needy"]"#, "").unwrap_err(),
            "`needy` needs `helper` granted too (it calls the helper)"
        );
        assert!(manifest(r#"["needy", "helper"]"#, "").is_ok());
        assert_eq!(
            manifest(r#"["log"]"#, r#"http = ["https://example.com"]"#).unwrap_err(),
            "`http` lists destinations, but `capabilities` does not grant `web`"
        );
        assert!(manifest(r#"["web"]"#, r#"http = ["https://example.com"]"#).is_ok());
        assert!(manifest(r#"["log"]"#, "http = []").is_ok());
    }

    /// A capability owning `http` and `oauth`, as the real `http` row does.
    const HTTP: Capability = Capability {
        name: "http",
        manifest_keys: &[("http", "destinations"), ("oauth", "credentials")],
        ..LOG
    };

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(text, PluginLimits::default(), &[LOG, HTTP])
    }

    const GOOD: &str = r#"
        name = "ask"
        version = "0.1.0"
        commands = [{ name = "ask", description = "Ask the assistant" }]
        capabilities = ["log"]
        [limits]
        timeout_ms = 30000
    "#;

    #[test]
    fn a_good_manifest_gets_defaults_for_missing_limits() {
        let manifest = parse(GOOD).unwrap();
        assert_eq!(manifest.name, "ask");
        assert_eq!(manifest.capabilities, vec![LOG]);
        assert_eq!(manifest.limits.timeout, Duration::from_secs(30));
        assert_eq!(manifest.limits.memory_bytes, 64 << 20);
    }

    #[test]
    fn unknown_capability_is_named_with_the_known_ones() {
        let error = parse(&GOOD.replace(r#"["log"]"#, r#"["log", "telepathy"]"#)).unwrap_err();
        assert!(error.contains("unknown capability `telepathy`"), "{error}");
        assert!(error.contains("known: log"), "{error}");
    }

    #[test]
    fn a_credential_may_name_its_hosts_but_never_every_host() {
        let with = |line: &str| GOOD.replace("[limits]", &format!("{line}\n[limits]"));
        let bound = parse(&with(
            r#"secrets = ["plain", { name = "github", hosts = ["api.github.com"] }]"#,
        ))
        .unwrap();
        assert_eq!(bound.secrets, ["plain", "github"]);
        assert_eq!(bound.credential_hosts["github"], ["api.github.com"]);
        assert!(!bound.credential_hosts.contains_key("plain"));
        let error = parse(&with(r#"secrets = [{ name = "github", hosts = ["*"] }]"#)).unwrap_err();
        assert!(error.contains("is bound to \"*\""), "{error}");
        let error = parse(&with(r#"secrets = [{ name = "github", hosts = [] }]"#)).unwrap_err();
        assert!(error.contains("lists no `hosts`"), "{error}");
    }

    #[test]
    fn credential_names_the_host_keeps_for_itself_cannot_be_listed() {
        let with = |line: &str| GOOD.replace("[limits]", &format!("{line}\n[limits]"));
        let error = parse(&with(r#"secrets = ["hook:x/y"]"#)).unwrap_err();
        assert!(
            error.contains("`secrets` lists \"hook:x/y\"; credential names are 1-128"),
            "{error}"
        );
        let error = parse(&with(r#"oauth = ["oauth:google"]"#)).unwrap_err();
        assert!(error.contains("`oauth` lists \"oauth:google\""), "{error}");
        // Well named, but OAuth tokens go only into HTTP requests.
        let error = parse(&with(r#"oauth = ["google"]"#)).unwrap_err();
        assert!(error.contains("does not grant `http`"), "{error}");
    }

    #[test]
    fn bad_command_names_are_refused() {
        for bad in ["/ask", "Ask", "", "a-b", &"x".repeat(33)] {
            let text = GOOD.replace(r#"name = "ask", "#, &format!("name = {bad:?}, "));
            let error = parse(&text).unwrap_err();
            assert!(error.contains("not a valid command name"), "{bad}: {error}");
        }
    }

    #[test]
    fn help_is_reserved_and_duplicates_are_refused() {
        let error = parse(&GOOD.replace(r#"name = "ask", "#, r#"name = "help", "#)).unwrap_err();
        assert!(error.contains("reserved"), "{error}");
        let twice = GOOD.replace(
            r#"commands = [{ name = "ask", description = "Ask the assistant" }]"#,
            r#"commands = [{ name = "ask", description = "a" }, { name = "ask", description = "b" }]"#,
        );
        assert!(parse(&twice).unwrap_err().contains("listed twice"));
    }

    #[test]
    fn limits_out_of_range_and_unknown_keys_are_refused() {
        let error = parse(&GOOD.replace("timeout_ms = 30000", "memory_mb = 999999")).unwrap_err();
        assert!(error.contains("limits.memory_mb"), "{error}");
        let error = parse(&GOOD.replace("timeout_ms = 30000", "timeout_ms = 0")).unwrap_err();
        assert!(error.contains("limits.timeout_ms"), "{error}");
        let error = parse(&format!("colour = 3\n{GOOD}")).unwrap_err();
        assert!(error.contains("not a valid manifest"), "{error}");
        // Under [limits], an unknown key is named with the known ones.
        let error = parse(&format!("{GOOD}\ncolour = 3")).unwrap_err();
        assert!(
            error.starts_with(
                "unknown limit `colour` (known: timeout_ms, memory_mb, reply_kb, host_calls"
            ),
            "{error}"
        );
        let error = parse(&format!("{GOOD}\nhost_calls = 0")).unwrap_err();
        assert!(
            error.contains("`limits.host_calls` must be between 1 and 100000"),
            "{error}"
        );
        assert!(parse("name = \"x\"").unwrap_err().contains("missing field"));
    }

    #[test]
    fn bad_plugin_names_are_refused() {
        let error = parse(&GOOD.replace(
            r#"name = "ask"
        version"#,
            r#"name = "Ask Me"
        version"#,
        ))
        .unwrap_err();
        assert!(error.contains("is not a plugin name"), "{error}");
    }
}
