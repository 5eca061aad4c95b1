//! `wasmbot oauth add|list|remove|test`: OAuth 2 credentials the host keeps
//! fresh for plugins. The client secret is read from stdin (never argv);
//! no token is ever printed.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use super::secrets::current_key_version;
use crate::app::config::Config;
use crate::app::root::open_store;
use crate::infra::alert::Alerter;
use crate::infra::audit::{AuditWriter, DEFAULT_QUEUE_CAPACITY};
use crate::infra::oauth::OAuthTokens;
use crate::infra::oauth::authorize::{Authorization, Granted};
use crate::infra::oauth::provider::{Provider, tokens_credential, validate_name};
use crate::infra::schedule::now_ms;
use crate::infra::store::{AuditEntry, OAuthRow, Store};
use crate::infra::vault::Vault;

#[derive(Subcommand)]
pub enum OAuthCommand {
    /// Register provider NAME and authorize it once. The first line of stdin
    /// is the client secret (an empty line: a public client); the
    /// authorization URL is printed. Presets: google, github.
    Add {
        name: String,
        /// Where the endpoints come from (default: NAME when it is a preset).
        #[arg(long)]
        provider: Option<String>,
        /// The OAuth client's id (from the provider's developer console).
        #[arg(long)]
        client_id: String,
        /// Scopes, space- or comma-separated (default: the preset's).
        #[arg(long)]
        scopes: Option<String>,
        #[arg(long)]
        auth_url: Option<String>,
        #[arg(long)]
        token_url: Option<String>,
        /// RFC 8628 device authorization endpoint.
        #[arg(long)]
        device_url: Option<String>,
        /// How to authorize (default: device when there is a device URL).
        #[arg(long, value_enum)]
        flow: Option<Flow>,
        /// The loopback port the code flow's redirect comes to (default: any free one).
        #[arg(long, default_value_t = 0)]
        redirect_port: u16,
    },
    /// List the credentials: provider, scopes, expiry, last refresh, status (never tokens).
    List,
    /// Remove a credential and its tokens.
    Remove { name: String },
    /// Refresh the access token now and report.
    Test { name: String },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Flow {
    /// A URL and a code to enter on any device (RFC 8628).
    Device,
    /// Authorization code with PKCE and a loopback redirect.
    Code,
}

pub async fn run(config: &Config, command: OAuthCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config, true).await?;
    let code = match command {
        OAuthCommand::Add {
            name,
            provider,
            client_id,
            scopes,
            auth_url,
            token_url,
            device_url,
            flow,
            redirect_port,
        } => {
            validate_name(&name).map_err(anyhow::Error::msg)?;
            let vault = require_vault(config)?;
            let kind = provider.as_deref().unwrap_or(&name);
            let mut provider = match (Provider::preset(kind), provider.as_deref()) {
                (Some(preset), _) => preset,
                (None, Some(other)) if other != "custom" => anyhow::bail!(
                    "unknown provider `{other}` (presets: google, github; or --provider custom with --auth-url and --token-url)"
                ),
                (None, _) => {
                    let (Some(auth), Some(token)) = (auth_url.clone(), token_url.clone()) else {
                        anyhow::bail!(
                            "`{kind}` is not a preset (google, github): give --auth-url and --token-url"
                        );
                    };
                    Provider::custom(auth, token)
                }
            };
            if let Some(url) = auth_url {
                provider.auth_url = url;
            }
            if let Some(url) = token_url {
                provider.token_url = url;
            }
            if let Some(url) = device_url {
                provider.device_url = Some(url);
            }
            if let Some(scopes) = scopes {
                provider.scopes = scopes
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            let flow = match flow {
                Some(Flow::Device) if provider.device_url.is_none() => {
                    anyhow::bail!("the device flow needs --device-url (this provider has none)")
                }
                Some(flow) => flow,
                None if provider.device_url.is_some() => Flow::Device,
                None => Flow::Code,
            };
            let mut lines = stdin_lines();
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!("Client secret (Enter for none):");
            }
            let client_secret = lines
                .recv()
                .await
                .map(Zeroizing::new)
                .filter(|secret| !secret.trim().is_empty());
            let authorization = Authorization {
                provider,
                client_id,
                client_secret,
                redirect_port,
            };
            let say = |text: String| println!("{text}");
            let granted = match flow {
                Flow::Device => authorization.device(&say).await?,
                Flow::Code => authorization.code(&say, lines).await?,
            };
            save(&store, &vault, &name, &authorization, &granted).await?;
            let audit = AuditWriter::start(store.clone(), DEFAULT_QUEUE_CAPACITY);
            let mut entry = AuditEntry::new("oauth_authorize", "ok");
            entry.metadata = sqlx::types::Json(serde_json::json!({
                "credential": name,
                "provider": authorization.provider.kind,
                "scopes": granted.scopes,
                "refresh_token": granted.tokens.refresh_token.is_some(),
            }));
            audit.record(entry);
            audit.shutdown(Duration::from_secs(5)).await;
            println!(
                "oauth `{name}` authorized: scopes {}; access token {}; {}",
                shown_scopes(&granted.scopes),
                match granted.expires_in {
                    Some(life) => format!("valid for {}", human(life.as_millis() as i64)),
                    None => "without an expiry".into(),
                },
                if granted.tokens.refresh_token.is_some() {
                    "the host refreshes it"
                } else {
                    "no refresh token was given, so it cannot be renewed"
                }
            );
            println!("Grant it to a plugin with `oauth = [\"{name}\"]` in its plugin.toml.");
            ExitCode::SUCCESS
        }
        OAuthCommand::List => {
            let rows = store.oauth_list().await?;
            if rows.is_empty() {
                println!(
                    "no OAuth credentials (add one with `wasmbot oauth add google --client-id …`)"
                );
            }
            let now = now_ms();
            for row in rows {
                let expiry = match row.expires_ms {
                    Some(at) if at > now => format!("expires in {}", human(at - now)),
                    Some(at) => format!("expired {} ago", human(now - at)),
                    None => "no expiry".into(),
                };
                let status = match (&row.status[..], &row.detail) {
                    ("reauthorize", detail) => format!(
                        "NEEDS `wasmbot oauth add {}` ({})",
                        row.name,
                        detail.as_deref().unwrap_or("refused")
                    ),
                    (_, Some(detail)) => format!("ok (last refresh failed: {detail})"),
                    (status, None) => status.to_string(),
                };
                println!(
                    "{}\t{}\tscopes {}\t{expiry}\trefreshed {} ago\t{status}",
                    row.name,
                    row.provider,
                    shown_scopes(
                        &row.scopes
                            .split(' ')
                            .map(str::to_string)
                            .collect::<Vec<_>>()
                    ),
                    human(now - row.refreshed_ms),
                );
            }
            ExitCode::SUCCESS
        }
        OAuthCommand::Remove { name } => {
            if store.oauth_remove(&name, &tokens_credential(&name)).await? {
                println!("oauth `{name}` removed (revoke the app's access at the provider too)");
                ExitCode::SUCCESS
            } else {
                eprintln!("wasmbot: no OAuth credential named `{name}`");
                ExitCode::FAILURE
            }
        }
        OAuthCommand::Test { name } => {
            let vault = require_vault(config)?;
            let audit = Arc::new(AuditWriter::start(store.clone(), DEFAULT_QUEUE_CAPACITY));
            let tokens = OAuthTokens::new(
                store.clone(),
                vault,
                Alerter::log_only(),
                Some(audit.clone()),
            )?;
            let waiting = || eprintln!("another process is refreshing `{name}`; waiting for it…");
            let outcome = tokens.refresh_now(&name, &waiting).await;
            audit.shutdown(Duration::from_secs(5)).await;
            match outcome {
                Ok(token) => {
                    let how = if token.refreshed_here {
                        "refreshed"
                    } else {
                        "refreshed by another process"
                    };
                    let life = match token.expires_ms {
                        Some(at) => format!("valid for {}", human(at - now_ms())),
                        None => "without an expiry".into(),
                    };
                    println!("oauth `{name}`: {how}; the access token is {life}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("wasmbot: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    };
    store.close().await;
    Ok(code)
}

async fn save(
    store: &Store,
    vault: &Vault,
    name: &str,
    authorization: &Authorization,
    granted: &Granted,
) -> anyhow::Result<()> {
    let sealed = granted
        .tokens
        .seal(vault, name, current_key_version(store).await?)?;
    let now = now_ms();
    let row = OAuthRow {
        name: name.to_string(),
        provider: authorization.provider.kind.clone(),
        auth_url: authorization.provider.auth_url.clone(),
        token_url: authorization.provider.token_url.clone(),
        client_id: authorization.client_id.clone(),
        scopes: granted.scopes.join(" "),
        expires_ms: granted.expires_in.map(|life| now + life.as_millis() as i64),
        refreshed_ms: now,
        status: "ok".into(),
        detail: None,
        refreshing_until_ms: None,
        created_ms: now,
    };
    store
        .oauth_put(&row, &sealed)
        .await
        .with_context(|| format!("saving oauth `{name}`"))
}

/// Stdin, one line at a time, on a task of its own (the code flow also
/// waits for the browser meanwhile).
fn stdin_lines() -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if sender.send(line).await.is_err() {
                break;
            }
        }
    });
    receiver
}

fn require_vault(config: &Config) -> anyhow::Result<Arc<Vault>> {
    config.vault.clone().context(
        "ENCRYPTION_KEY is not set: OAuth tokens are kept in the vault (generate a key with `wasmbot secrets generate-key`)",
    )
}

fn shown_scopes(scopes: &[String]) -> String {
    let shown: Vec<&str> = scopes
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    if shown.is_empty() {
        "(none)".into()
    } else {
        shown.join(" ")
    }
}

/// `3 min`, `2 h`, `5 d`.
fn human(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172800 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86400),
    }
}
