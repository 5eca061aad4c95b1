//! `wasmbot secrets set|list|delete|rotate-key|generate-key`. Values and keys
//! are read from stdin, never from argv, and never printed.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use crate::app::config::Config;
use crate::app::root::open_store;
use crate::infra::vault::{CREDENTIAL_NAME_RULE, Vault, is_credential_name};

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Store a secret; the value is read from stdin (e.g. `printf %s "$TOKEN" | wasmbot secrets set github`).
    Set { name: String },
    /// List secret names with their dates (never values).
    List,
    /// Delete a secret.
    Delete { name: String },
    /// Re-encrypt every secret with a new key read from stdin, in one transaction.
    RotateKey,
    /// Print a new random ENCRYPTION_KEY.
    GenerateKey,
}

pub async fn run(config: &Config, command: SecretsCommand) -> anyhow::Result<ExitCode> {
    let store = match command {
        SecretsCommand::GenerateKey => {
            println!("{}", Vault::generate_key_hex().as_str());
            return Ok(ExitCode::SUCCESS);
        }
        _ => open_store(config, true).await?,
    };
    let code = match command {
        SecretsCommand::Set { name } => {
            validate_name(&name)?;
            let vault = require_vault(config)?;
            let value = read_stdin("the secret value").await?;
            put_secret(&store, &vault, &name, value.as_bytes()).await?;
            println!("secret `{name}` stored");
            ExitCode::SUCCESS
        }
        SecretsCommand::List => {
            let credentials = store.list_credentials().await?;
            if credentials.is_empty() {
                println!("no secrets stored");
            }
            for c in credentials {
                println!(
                    "{}\tkey v{}\tcreated {}\tupdated {}",
                    c.name,
                    c.key_version,
                    c.created_at.format("%Y-%m-%d %H:%M:%SZ"),
                    c.updated_at.format("%Y-%m-%d %H:%M:%SZ")
                );
            }
            ExitCode::SUCCESS
        }
        SecretsCommand::Delete { name } => {
            if store.delete_credential(&name).await? {
                println!("secret `{name}` deleted");
                ExitCode::SUCCESS
            } else {
                eprintln!("wasmbot: no secret named `{name}`");
                ExitCode::FAILURE
            }
        }
        SecretsCommand::RotateKey => {
            let old = require_vault(config)?;
            let new_hex = read_stdin("the new 64-hex-character key").await?;
            let new = Vault::from_hex("the new key (stdin)", &new_hex)?;
            let count = rotate(&store, &old, &new).await?;
            println!("re-encrypted {count} secrets; now set ENCRYPTION_KEY to the new key");
            ExitCode::SUCCESS
        }
        SecretsCommand::GenerateKey => ExitCode::SUCCESS,
    };
    store.close().await;
    Ok(code)
}

/// Stores `value` encrypted under `name`, with the key version the others have.
pub async fn put_secret(
    store: &crate::infra::store::Store,
    vault: &Vault,
    name: &str,
    value: &[u8],
) -> anyhow::Result<()> {
    let stored = vault.encrypt(name, value, current_key_version(store).await?)?;
    store.put_credential(&stored).await?;
    Ok(())
}

/// The key version the stored credentials have (1 when there are none),
/// for a credential encrypted now.
pub async fn current_key_version(store: &crate::infra::store::Store) -> anyhow::Result<i32> {
    Ok(store
        .all_credentials()
        .await?
        .iter()
        .map(|c| c.key_version)
        .max()
        .unwrap_or(1))
}

/// Decrypts every credential with `old` and writes it encrypted with `new`
/// (key version + 1) in one transaction; any failure changes nothing.
pub async fn rotate(
    store: &crate::infra::store::Store,
    old: &Vault,
    new: &Vault,
) -> anyhow::Result<usize> {
    let credentials = store.all_credentials().await?;
    let mut rotated = Vec::with_capacity(credentials.len());
    for credential in &credentials {
        let plaintext = old.decrypt(credential)?;
        rotated.push(new.encrypt(&credential.name, &plaintext, credential.key_version + 1)?);
    }
    store.replace_credentials(&rotated).await?;
    Ok(rotated.len())
}

fn require_vault(config: &Config) -> anyhow::Result<std::sync::Arc<Vault>> {
    config.vault.clone().context(
        "ENCRYPTION_KEY is not set: secrets need a 64-hex-character key (generate one with `wasmbot secrets generate-key`)",
    )
}

fn validate_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        is_credential_name(name),
        "secret names are {CREDENTIAL_NAME_RULE}"
    );
    Ok(())
}

/// Reads stdin to the end, dropping one trailing newline.
async fn read_stdin(what: &str) -> anyhow::Result<Zeroizing<String>> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("Type {what}, then Enter and Ctrl-D:");
    }
    let mut value = Zeroizing::new(String::new());
    tokio::io::stdin()
        .read_to_string(&mut value)
        .await
        .with_context(|| format!("reading {what} from stdin"))?;
    let trimmed = value.trim_end_matches(['\n', '\r']).len();
    value.truncate(trimmed);
    anyhow::ensure!(!value.is_empty(), "{what} is empty: pipe it into stdin");
    Ok(value)
}
