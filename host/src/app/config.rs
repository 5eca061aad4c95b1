//! Every setting, read from the environment (and an optional `.env`) and
//! validated once at start-up. A bad value stops the process with one line
//! naming the variable and what is expected.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::capabilities;
use crate::chat::telegram::TelegramSettings;
use crate::env::{ConfigError, SecretString, parse_number, socket_addr};
use crate::infra::cache::CacheSettings;
use crate::infra::health::HealthSettings;
use crate::infra::llm::LlmSettings;
use crate::infra::logging::LogFormat;
use crate::infra::outbound::{OutboundClient, PrivateAllowance};
use crate::infra::services::{DEFAULT_MEDIA_MAX_MB, MAX_MEDIA_MAX_MB, MediaLimits};
use crate::infra::vault::Vault;
use crate::infra::vectors::VectorSettings;
use crate::runtime::{
    BudgetDefaults, Capability, DEFAULT_POOL_INSTANCES, DEFAULT_WARM_MEMORY_MB,
    DEFAULT_WARM_PER_PLUGIN, MAX_PLUGIN_MEMORY_MB, MAX_REPLY_KB, MAX_TIMEOUT_MS, PluginLimits,
    SettingOverrides,
};

#[derive(Debug, Clone)]
pub struct Config {
    /// `PLUGINS_DIR`: where `NAME.wasm` + `NAME.toml` pairs live.
    pub plugins_dir: PathBuf,
    /// `PLUGIN_CACHE_DIR`: compiled components kept between runs.
    pub plugin_cache_dir: PathBuf,
    /// `PLUGIN_TIMEOUT_MS` / `PLUGIN_MEMORY_MB` / `PLUGIN_REPLY_KB`: limits
    /// for manifests that set none.
    pub plugin_limits: PluginLimits,
    /// `PLUGIN_<BUDGET>` (`PLUGIN_LOG_LINES`, `PLUGIN_AUDIT_ENTRIES`, ...):
    /// per-call budgets for manifests that set none.
    pub budget_defaults: BudgetDefaults,
    /// `PLUGIN_POOL_INSTANCES`: plugin calls that may run at once; past it a
    /// message is answered "busy, try again".
    pub plugin_pool_instances: u32,
    /// `PLUGIN_WARM_INSTANCES`: never-used instances kept ready per busy plugin (0: none).
    pub plugin_warm_instances: usize,
    /// `PLUGIN_WARM_MEMORY_MB`: the memory all ready instances may hold together.
    pub plugin_warm_memory_mb: u64,
    /// `LOG_LEVEL`, when set: a level or a tracing filter such as `wasmbot=debug`.
    pub log_level: Option<String>,
    /// `LOG_FORMAT`, when set; otherwise pretty on a terminal, JSON elsewhere.
    pub log_format: Option<LogFormat>,
    /// `DATABASE_URL`: `sqlite://PATH` (default) or `postgres://…`.
    pub database_url: SecretString,
    /// `ENCRYPTION_KEY` (64 hex characters), parsed once; required only
    /// where secrets are used.
    pub vault: Option<Arc<Vault>>,
    /// `AUDIT_RETENTION_DAYS`: audit entries older than this are deleted by the cleanup job.
    pub audit_retention_days: u32,
    /// `HTTP_ADDR`: where `run` and `worker` serve health, metrics (and the
    /// webhook); `chat` serves them only when it is set.
    pub http_addr: Option<SocketAddr>,
    /// `HOOKS_ADDR`: a listener for the inbound webhooks alone (`/hooks/…`),
    /// so that they can be published while the ops endpoints stay internal;
    /// unset, they are served on `HTTP_ADDR`.
    pub hooks_addr: Option<SocketAddr>,
    /// `TELEGRAM_*` and `WEBHOOK_URL`.
    pub telegram: TelegramSettings,
    /// `ANTHROPIC_*` and `LLM_*`.
    pub llm: LlmSettings,
    /// `REDIS_URL`, `CACHE_MEMORY_MB`.
    pub cache: CacheSettings,
    /// `QDRANT_URL`, `QDRANT_API_KEY`, `VECTORS_DIR`, `EMBEDDINGS_*`.
    pub vectors: VectorSettings,
    /// `HEALTH_INTERVAL_SECS`.
    pub health: HealthSettings,
    /// `AUDIT_CLEANUP_AT`: the daily retention cleanup's time, UTC.
    pub audit_cleanup_at: chrono::NaiveTime,
    /// `WORKER_STANDBY_SECS`: how often a standby worker tries to become the active one.
    pub worker_standby: std::time::Duration,
    /// `DEFAULT_PLUGIN`: the plugin that receives plain text (default
    /// `assistant`; `none` turns free text off).
    pub default_plugin: Option<String>,
    /// `AGENT_MAX_STEPS`, `AGENT_TURN_TOKENS`: the limits on one agent turn.
    pub agent: crate::chat::agent::AgentSettings,
    /// `PLUGIN_<PLUGIN>_<KEY>`: the operator's values for plugins' `[settings]`.
    pub plugin_settings: SettingOverrides,
    /// `HTTP_ALLOW_PRIVATE` (private `host:port` pairs plugins granted
    /// `http` may reach anyway, comma-separated; `plugin=host:port` for one
    /// plugin only) and `HTTP_CA_FILE` (PEM
    /// certificates trusted besides the webpki roots).
    pub http: OutboundClient,
    /// `FILES_DIR`: where plugins granted `files` keep their folders.
    pub files_dir: PathBuf,
    /// `MEDIA_MAX_MB`: the largest file a plugin may fetch or send.
    pub media: MediaLimits,
}

pub const DEFAULT_PLUGINS_DIR: &str = "plugins/dist";
pub const DEFAULT_PLUGIN_CACHE_DIR: &str = "data/plugin-cache";
pub use crate::infra::http::DEFAULT_HTTP_PORT;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/wasmbot.db";
pub const DEFAULT_FREE_TEXT_PLUGIN: &str = "assistant";

impl Config {
    /// `HTTP_ADDR`, or the default for commands that always serve.
    pub fn http_addr_or_default(&self) -> SocketAddr {
        self.http_addr
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], DEFAULT_HTTP_PORT)))
    }

    /// Loads `.env` (when present; real environment variables win) and reads the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        if let Err(error) = dotenvy::dotenv()
            && !error.not_found()
        {
            return Err(ConfigError::new(".env", format!("cannot be read: {error}")));
        }
        let mut config = Self::from_lookup(|name| std::env::var(name).ok())?;
        config.plugin_settings = plugin_settings(std::env::vars());
        Ok(config)
    }

    /// Commands that load plugins call this: the folder must exist.
    pub fn check_plugins_dir(&self) -> Result<(), ConfigError> {
        if self.plugins_dir.is_dir() {
            return Ok(());
        }
        Err(ConfigError::new(
            "PLUGINS_DIR",
            format!(
                "directory {} does not exist (run `just build-plugins`, or point PLUGINS_DIR at a folder of NAME.wasm + NAME.toml files)",
                self.plugins_dir.display()
            ),
        ))
    }

    /// Reads settings through `lookup`; an empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        // The folder is checked by the commands that load plugins
        // (`check_plugins_dir`): `migrate` and `secrets` need none.
        let plugins_dir =
            PathBuf::from(get("PLUGINS_DIR").unwrap_or_else(|| DEFAULT_PLUGINS_DIR.into()));
        let plugin_cache_dir = PathBuf::from(
            get("PLUGIN_CACHE_DIR").unwrap_or_else(|| DEFAULT_PLUGIN_CACHE_DIR.into()),
        );

        let defaults = PluginLimits::default();
        let timeout_ms = parse_number(
            "PLUGIN_TIMEOUT_MS",
            get("PLUGIN_TIMEOUT_MS"),
            defaults.timeout.as_millis() as u64,
            1..=MAX_TIMEOUT_MS,
            "milliseconds",
        )?;
        let memory_mb = parse_number(
            "PLUGIN_MEMORY_MB",
            get("PLUGIN_MEMORY_MB"),
            defaults.memory_bytes >> 20,
            1..=MAX_PLUGIN_MEMORY_MB,
            "MiB",
        )?;

        let media_max_mb = parse_number(
            "MEDIA_MAX_MB",
            get("MEDIA_MAX_MB"),
            DEFAULT_MEDIA_MAX_MB,
            1..=MAX_MEDIA_MAX_MB,
            "MB",
        )?;
        let reply_kb = parse_number(
            "PLUGIN_REPLY_KB",
            get("PLUGIN_REPLY_KB"),
            (defaults.reply_bytes >> 10) as u64,
            1..=MAX_REPLY_KB,
            "KiB",
        )?;

        let mut budget_defaults = BudgetDefaults::new();
        for budget in Capability::all_budgets(capabilities::ALL) {
            let variable = format!("PLUGIN_{}", budget.key.to_ascii_uppercase());
            let value = parse_number(
                &variable,
                get(&variable),
                u64::from(budget.default),
                1..=u64::from(budget.ceiling),
                budget.unit,
            )?;
            budget_defaults.insert(budget.key, value as u32);
        }
        let plugin_pool_instances = parse_number(
            "PLUGIN_POOL_INSTANCES",
            get("PLUGIN_POOL_INSTANCES"),
            u64::from(DEFAULT_POOL_INSTANCES),
            1..=4096,
            "instances",
        )? as u32;
        let plugin_warm_instances = parse_number(
            "PLUGIN_WARM_INSTANCES",
            get("PLUGIN_WARM_INSTANCES"),
            DEFAULT_WARM_PER_PLUGIN as u64,
            0..=64,
            "instances",
        )? as usize;
        let plugin_warm_memory_mb = parse_number(
            "PLUGIN_WARM_MEMORY_MB",
            get("PLUGIN_WARM_MEMORY_MB"),
            DEFAULT_WARM_MEMORY_MB,
            0..=65536,
            "MiB",
        )?;

        let log_level = get("LOG_LEVEL");
        if let Some(level) = &log_level {
            tracing_subscriber::EnvFilter::try_new(level).map_err(|error| {
                ConfigError::new(
                    "LOG_LEVEL",
                    format!(
                        "expected trace, debug, info, warn, error or a filter such as `wasmbot=debug`, got {level:?} ({error})"
                    ),
                )
            })?;
        }
        let log_format = match get("LOG_FORMAT")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => None,
            Some("json") => Some(LogFormat::Json),
            Some("pretty") => Some(LogFormat::Pretty),
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("expected `json` or `pretty`, got {other:?}"),
                ));
            }
        };

        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        let known_scheme = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| database_url.starts_with(scheme));
        if !known_scheme {
            // The value may hold a password: say what is wrong, not what it is.
            return Err(ConfigError::new(
                "DATABASE_URL",
                "expected sqlite://PATH (the embedded default) or postgres://USER@HOST/DB",
            ));
        }

        let vault = get("ENCRYPTION_KEY")
            .map(|key| {
                let key = SecretString::new(key);
                Vault::from_hex("ENCRYPTION_KEY", key.expose()).map_err(|error| {
                    ConfigError::new(
                        "ENCRYPTION_KEY",
                        error
                            .to_string()
                            .trim_start_matches("ENCRYPTION_KEY: ")
                            .to_string()
                            + " (generate one with `wasmbot secrets generate-key`)",
                    )
                })
            })
            .transpose()?
            .map(Arc::new);

        let audit_retention_days = parse_number(
            "AUDIT_RETENTION_DAYS",
            get("AUDIT_RETENTION_DAYS"),
            30,
            1..=36_500,
            "days",
        )? as u32;

        let http_addr = get("HTTP_ADDR")
            .map(|value| socket_addr("HTTP_ADDR", &value, "0.0.0.0:8080 or 127.0.0.1:8080"))
            .transpose()?;
        let hooks_addr = get("HOOKS_ADDR")
            .map(|value| socket_addr("HOOKS_ADDR", &value, "0.0.0.0:8090"))
            .transpose()?;
        let health = HealthSettings::from_lookup(get)?;
        let cache = CacheSettings::from_lookup(get)?;
        let vectors = VectorSettings::from_lookup(get)?;
        let cleanup_at = get("AUDIT_CLEANUP_AT").unwrap_or_else(|| "03:00".into());
        let audit_cleanup_at = chrono::NaiveTime::parse_from_str(cleanup_at.trim(), "%H:%M")
            .map_err(|_| {
                ConfigError::new(
                    "AUDIT_CLEANUP_AT",
                    format!("expected HH:MM (UTC), e.g. 03:00, got {cleanup_at:?}"),
                )
            })?;
        let worker_standby = std::time::Duration::from_secs(parse_number(
            "WORKER_STANDBY_SECS",
            get("WORKER_STANDBY_SECS"),
            10,
            1..=3600,
            "seconds",
        )?);
        let telegram = TelegramSettings::from_lookup(get)?;
        let llm = LlmSettings::from_lookup(get)?;
        let default_plugin = match get("DEFAULT_PLUGIN") {
            None => Some(DEFAULT_FREE_TEXT_PLUGIN.to_string()),
            Some(name) if name.trim().eq_ignore_ascii_case("none") => None,
            Some(name) => {
                let name = name.trim().to_string();
                let valid = name.len() <= 32
                    && name.starts_with(|c: char| c.is_ascii_lowercase())
                    && name.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                    });
                if !valid {
                    return Err(ConfigError::new(
                        "DEFAULT_PLUGIN",
                        format!(
                            "expected a plugin name (a-z, 0-9, '_', '-') or `none`, got {name:?}"
                        ),
                    ));
                }
                Some(name)
            }
        };

        Ok(Self {
            plugins_dir,
            plugin_cache_dir,
            plugin_limits: PluginLimits::new(timeout_ms, memory_mb).with_reply_kb(reply_kb),
            plugin_pool_instances,
            plugin_warm_instances,
            plugin_warm_memory_mb,
            budget_defaults,
            log_level,
            log_format,
            database_url: SecretString::new(database_url),
            vault,
            audit_retention_days,
            http_addr,
            hooks_addr,
            telegram,
            llm,
            cache,
            vectors,
            health,
            audit_cleanup_at,
            worker_standby,
            default_plugin,
            agent: crate::chat::agent::AgentSettings::from_lookup(get)?,
            plugin_settings: SettingOverrides::new(),
            http: outbound_client(
                get("HTTP_ALLOW_PRIVATE").as_deref(),
                get("HTTP_CA_FILE").as_deref(),
            )?,
            files_dir: PathBuf::from(get("FILES_DIR").unwrap_or_else(|| DEFAULT_FILES_DIR.into())),
            media: MediaLimits {
                max_bytes: media_max_mb << 20,
            },
        })
    }
}

/// `FILES_DIR` when unset.
pub const DEFAULT_FILES_DIR: &str = "data/files";

fn outbound_client(
    allow_private: Option<&str>,
    ca_file: Option<&str>,
) -> Result<OutboundClient, ConfigError> {
    let allowance =
        PrivateAllowance::parse(allow_private.unwrap_or_default()).map_err(|problem| {
            ConfigError::new(
                "HTTP_ALLOW_PRIVATE",
                format!(
                    "expected host:port or plugin=host:port pairs separated by commas: {problem}"
                ),
            )
        })?;
    let pem = match ca_file {
        None => None,
        Some(path) => Some(std::fs::read(path).map_err(|error| {
            ConfigError::new("HTTP_CA_FILE", format!("cannot read {path}: {error}"))
        })?),
    };
    OutboundClient::new(allowance, pem.as_deref()).map_err(|problem| {
        ConfigError::new(
            "HTTP_CA_FILE",
            format!("{}: {problem}", ca_file.unwrap_or_default()),
        )
    })
}

/// The host's own `PLUGIN_*` variables; every other `PLUGIN_*` variable is
/// a plugin's setting (`PLUGIN_<PLUGIN>_<KEY>`), checked when it loads.
fn plugin_settings(variables: impl Iterator<Item = (String, String)>) -> SettingOverrides {
    let mut host_own: Vec<String> = [
        "PLUGIN_CACHE_DIR",
        "PLUGIN_TIMEOUT_MS",
        "PLUGIN_MEMORY_MB",
        "PLUGIN_REPLY_KB",
        "PLUGIN_POOL_INSTANCES",
        "PLUGIN_WARM_INSTANCES",
        "PLUGIN_WARM_MEMORY_MB",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    host_own.extend(
        Capability::all_budgets(capabilities::ALL)
            .map(|budget| format!("PLUGIN_{}", budget.key.to_ascii_uppercase())),
    );
    variables
        .filter(|(name, value)| {
            name.starts_with("PLUGIN_") && !host_own.contains(name) && !value.trim().is_empty()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(crate::env::lookup_in(vars))
    }

    fn config_with(vars: &[(&str, &str)]) -> Config {
        config(vars).unwrap()
    }

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn defaults_apply_when_only_the_plugins_dir_is_set() {
        let dir = dir();
        let path = dir.path().to_str().unwrap();
        let config = config(&[("PLUGINS_DIR", path), ("LOG_LEVEL", "")]).unwrap();
        assert_eq!(config.plugins_dir, dir.path());
        assert_eq!(config.plugin_limits, PluginLimits::default());
        assert_eq!(config.log_level, None);
        assert_eq!(config.log_format, None);
        assert_eq!(config.database_url.expose(), DEFAULT_DATABASE_URL);
        assert!(config.vault.is_none());
        assert_eq!(config.audit_retention_days, 30);
        assert_eq!(format!("{:?}", config.database_url), "[redacted]");
    }

    #[test]
    fn a_missing_plugins_dir_is_named() {
        let error = config(&[("PLUGINS_DIR", "/no/such/dir")])
            .unwrap()
            .check_plugins_dir()
            .unwrap_err();
        assert_eq!(error.variable, "PLUGINS_DIR");
        assert!(
            error.to_string().contains("/no/such/dir does not exist"),
            "{error}"
        );
        assert!(error.to_string().contains("just build-plugins"), "{error}");
    }

    #[test]
    fn bad_values_name_the_variable_and_what_is_expected() {
        let dir = dir();
        let path = dir.path().to_str().unwrap();
        let cases = [
            (
                "PLUGIN_TIMEOUT_MS",
                "soon",
                "expected a whole number of milliseconds",
            ),
            ("PLUGIN_TIMEOUT_MS", "0", "from 1 to 600000"),
            (
                "PLUGIN_MEMORY_MB",
                "99999",
                "expected a whole number of MiB",
            ),
            ("LOG_FORMAT", "xml", "expected `json` or `pretty`"),
            ("LOG_LEVEL", "wasmbot=loud", "expected trace, debug"),
            (
                "DATABASE_URL",
                "mysql://root:pw@db/x",
                "expected sqlite://PATH",
            ),
            (
                "ENCRYPTION_KEY",
                "abc123",
                "expected 64 hexadecimal characters",
            ),
            (
                "AUDIT_RETENTION_DAYS",
                "-1",
                "expected a whole number of days",
            ),
            (
                "PLUGIN_LOG_LINES",
                "0",
                "expected a whole number of log lines from 1 to 10000",
            ),
            ("PLUGIN_REPLY_KB", "1000", "from 1 to 256"),
            ("PLUGIN_POOL_INSTANCES", "0", "from 1 to 4096"),
            (
                "HTTP_ALLOW_PRIVATE",
                "nas.local",
                "`nas.local` is not host:port",
            ),
            (
                "HTTP_CA_FILE",
                "/nowhere/ca.pem",
                "cannot read /nowhere/ca.pem",
            ),
            ("HTTP_CA_FILE", "/dev/null", "holds no PEM certificate"),
        ];
        for (variable, value, expected) in cases {
            let error = config(&[("PLUGINS_DIR", path), (variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable);
            let text = error.to_string();
            assert!(text.starts_with(variable), "{text}");
            assert!(text.contains(expected), "{variable}={value}: {text}");
            if variable == "DATABASE_URL" || variable == "ENCRYPTION_KEY" {
                assert!(!text.contains(value), "a secret value was echoed: {text}");
            }
        }
    }

    #[test]
    fn good_values_are_used() {
        let dir = dir();
        let path = dir.path().to_str().unwrap();
        let config = config(&[
            ("PLUGINS_DIR", path),
            ("PLUGIN_TIMEOUT_MS", "250"),
            ("PLUGIN_MEMORY_MB", "16"),
            ("LOG_LEVEL", "debug"),
            ("LOG_FORMAT", "JSON"),
        ])
        .unwrap();
        assert_eq!(config.plugin_limits, PluginLimits::new(250, 16));
        let budgets = config_with(&[
            ("PLUGINS_DIR", path),
            ("PLUGIN_LOG_LINES", "7"),
            ("PLUGIN_REPLY_KB", "32"),
        ]);
        assert_eq!(budgets.budget_defaults["log_lines"], 7);
        assert_eq!(budgets.budget_defaults["audit_entries"], 50);
        assert_eq!(budgets.plugin_limits.reply_bytes, 32 << 10);
        assert_eq!(config.log_level.as_deref(), Some("debug"));
        assert_eq!(config.log_format, Some(LogFormat::Json));
    }
}
