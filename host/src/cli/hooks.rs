//! `wasmbot hooks add|list|remove`: inbound webhooks (`POST
//! /hooks/PLUGIN/NAME` on `HOOKS_ADDR`, else `HTTP_ADDR`). `add` creates the
//! signing secret in the vault and prints it once, with the URL; nothing
//! prints it again.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use super::secrets::put_secret;
use crate::app::config::Config;
use crate::app::root::{open_store, plugin_engine};
use crate::chat::jobs::{SIGNATURE_HEADER, hook_secret_name};
use crate::infra::vault::Vault;
use crate::runtime::{LoadedPlugin, World};

#[derive(Subcommand)]
pub enum HooksCommand {
    /// Add a webhook NAME for PLUGIN (its `on-event` receives the deliveries);
    /// prints the URL and the signing secret, once.
    Add {
        plugin: String,
        name: String,
        /// The chat the plugin's answers go to (default: TELEGRAM_ADMIN_CHAT_ID,
        /// or the console's own chat).
        #[arg(long)]
        chat: Option<i64>,
    },
    /// List the webhooks (never their secrets).
    List,
    /// Remove a webhook and its secret.
    Remove { plugin: String, name: String },
}

pub async fn run(config: &Config, command: HooksCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config, true).await?;
    let code = match command {
        HooksCommand::Add { plugin, name, chat } => {
            check_name("plugin", &plugin)?;
            check_name("hook", &name)?;
            let vault = config.vault.clone().context(
                "ENCRYPTION_KEY is not set: a webhook's secret is kept in the vault (generate a key with `wasmbot secrets generate-key`)",
            )?;
            check_plugin(config, &plugin)?;
            let secret = Vault::generate_key_hex();
            put_secret(
                &store,
                &vault,
                &hook_secret_name(&plugin, &name),
                secret.as_bytes(),
            )
            .await?;
            store.webhook_put(&plugin, &name, chat).await?;
            let to = match chat {
                Some(chat) => format!("chat {chat}"),
                None => "the admin chat".to_string(),
            };
            println!("hook `{plugin}/{name}` added; what {plugin} answers goes to {to}.");
            println!("URL:    {}/hooks/{plugin}/{name}", base_url(config));
            println!("Secret: {}", secret.as_str());
            println!(
                "Give the sender both (GitHub: Settings → Webhooks, content type application/json); \
                 each POST must carry `{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body with the secret>`. \
                 The secret is not shown again (`hooks add` again makes a new one)."
            );
            ExitCode::SUCCESS
        }
        HooksCommand::List => {
            let hooks = store.webhook_list().await?;
            if hooks.is_empty() {
                println!("no webhooks (add one with `wasmbot hooks add PLUGIN NAME`)");
            }
            for hook in hooks {
                let created = chrono::DateTime::from_timestamp_millis(hook.created_ms)
                    .map(|at| at.format("%Y-%m-%d %H:%M:%SZ").to_string())
                    .unwrap_or_default();
                let to = hook
                    .chat_id
                    .map_or_else(|| "admin chat".to_string(), |chat| format!("chat {chat}"));
                println!(
                    "{}/{}\t/hooks/{}/{}\t{to}\tadded {created}",
                    hook.plugin, hook.name, hook.plugin, hook.name
                );
            }
            ExitCode::SUCCESS
        }
        HooksCommand::Remove { plugin, name } => {
            let removed = store.webhook_delete(&plugin, &name).await?;
            store
                .delete_credential(&hook_secret_name(&plugin, &name))
                .await?;
            if removed {
                println!("hook `{plugin}/{name}` removed; its URL now answers 404");
                ExitCode::SUCCESS
            } else {
                eprintln!("wasmbot: no hook `{plugin}/{name}` (see `wasmbot hooks list`)");
                ExitCode::FAILURE
            }
        }
    };
    store.close().await;
    Ok(code)
}

/// Path segments of the URL: letters, digits, `_` and `-`.
fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    let valid = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    anyhow::ensure!(
        valid,
        "the {what} name {name:?} must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'"
    );
    Ok(())
}

/// The plugin must be installed and take events, or no delivery could reach it.
fn check_plugin(config: &Config, plugin: &str) -> anyhow::Result<()> {
    let wasm = config.plugins_dir.join(format!("{plugin}.wasm"));
    anyhow::ensure!(
        wasm.exists(),
        "no plugin `{plugin}` in {} (PLUGINS_DIR)",
        config.plugins_dir.display()
    );
    let engine = plugin_engine(config, Some(config.plugin_cache_dir.clone()))?;
    let loaded = LoadedPlugin::load(&engine, &wasm, config.plugin_limits)?;
    anyhow::ensure!(
        loaded.world() == World::Proactive,
        "plugin `{plugin}` does not export `on-event` (it is built for {}), so no delivery could reach it; \
         in Rust write `wasmbot_sdk::handler!(handle, on_event)`",
        loaded.world().label()
    );
    Ok(())
}

/// Where the hooks are reached: WEBHOOK_URL's origin when the bot is behind
/// one, else HOOKS_ADDR, else HTTP_ADDR.
fn base_url(config: &Config) -> String {
    match (&config.telegram.webhook_url, config.hooks_addr) {
        (Some(url), _) => url.origin().ascii_serialization(),
        (None, Some(hooks)) => format!("http://{hooks}"),
        (None, None) => format!("http://{}", config.http_addr_or_default()),
    }
}
