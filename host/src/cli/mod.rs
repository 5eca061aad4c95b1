//! The `wasmbot` commands (clap). Configuration is read and validated once,
//! before anything starts; a bad value is one line on stderr and exit code 2.

mod health;
mod hooks;
mod oauth;
mod plugins;
mod secrets;
mod tools;

pub use secrets::rotate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::config::Config;

#[derive(Parser)]
#[command(
    name = "wasmbot",
    version,
    about = "A chat assistant whose commands are sandboxed WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Chat with the bot in this terminal (no external services needed).
    Chat {
        /// The user id plugins see.
        #[arg(long, default_value_t = 1)]
        user_id: i64,
        /// The chat id plugins see.
        #[arg(long, default_value_t = 1)]
        chat_id: i64,
        /// The username plugins see.
        #[arg(long, default_value = "you")]
        username: String,
        /// Where files the bot sends are saved.
        #[arg(long, default_value = "data/received")]
        received_dir: std::path::PathBuf,
        /// Do not apply database migrations at start-up.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Run the Telegram bot (long polling, or a webhook when WEBHOOK_URL is set).
    Run {
        /// Do not apply database migrations at start-up.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Run the scheduled jobs (audit retention, heartbeat, health checks); one worker is active at a time.
    Worker {
        /// Run this job once now and exit.
        #[arg(long, value_enum)]
        once: Option<crate::app::worker::Job>,
        /// Do not apply database migrations at start-up.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Check the database, Redis, Qdrant and the LLM once (exit 1 if any is unhealthy).
    Health {
        /// Ask the running process on HTTP_ADDR (`/readyz`) instead: the container health check.
        #[arg(long)]
        http: bool,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Inspect and check plugins.
    Plugins {
        #[command(subcommand)]
        command: plugins::PluginsCommand,
    },
    /// Manage encrypted credentials.
    Secrets {
        #[command(subcommand)]
        command: secrets::SecretsCommand,
    },
    /// Manage inbound webhooks (`POST /hooks/PLUGIN/NAME` on HOOKS_ADDR, else HTTP_ADDR).
    Hooks {
        #[command(subcommand)]
        command: hooks::HooksCommand,
    },
    /// OAuth 2 credentials the host refreshes for plugins (`{{oauth:NAME}}` in a request header).
    Oauth {
        #[command(subcommand)]
        command: oauth::OAuthCommand,
    },
    /// Serve the plugins' tools to an MCP client over stdio (Claude Desktop, Claude Code...).
    Mcp {
        /// Do not apply database migrations at start-up.
        #[arg(long)]
        no_migrate: bool,
    },
    /// The assistant's tool calls (`tools log`).
    Tools {
        #[command(subcommand)]
        command: tools::ToolsCommand,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("wasmbot: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    // The console is for a person: only warnings interrupt the conversation
    // unless LOG_LEVEL asks for more. Other commands print their own results.
    let default_level = match cli.command {
        Command::Chat { .. }
        | Command::Secrets { .. }
        | Command::Hooks { .. }
        | Command::Oauth { .. }
        | Command::Tools { .. }
        | Command::Mcp { .. }
        | Command::Migrate
        | Command::Plugins { .. }
        | Command::Health { .. } => "warn",
        Command::Run { .. } | Command::Worker { .. } => "info",
    };
    if matches!(cli.command, Command::Run { .. }) && config.telegram.bot_token.is_none() {
        eprintln!(
            "wasmbot: configuration error: TELEGRAM_BOT_TOKEN: not set; `wasmbot run` needs the token @BotFather gave you (or talk to the bot with `wasmbot chat`)"
        );
        return ExitCode::from(2);
    }
    if matches!(cli.command, Command::Run { .. })
        && let Err(error) = config.telegram.check_access_configured()
    {
        eprintln!("wasmbot: configuration error: {error}");
        return ExitCode::from(2);
    }
    let needs_plugins_dir = matches!(
        cli.command,
        Command::Chat { .. }
            | Command::Mcp { .. }
            | Command::Run { .. }
            | Command::Plugins {
                command: plugins::PluginsCommand::List
            }
    );
    if needs_plugins_dir && let Err(error) = config.check_plugins_dir() {
        eprintln!("wasmbot: configuration error: {error}");
        return ExitCode::from(2);
    }
    let level = config.log_level.as_deref().unwrap_or(default_level);
    if let Err(error) = crate::infra::logging::init(level, config.log_format) {
        eprintln!("wasmbot: {error:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wasmbot: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("wasmbot: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Chat {
            user_id,
            chat_id,
            username,
            received_dir,
            no_migrate,
        } => {
            let user = crate::chat::console::ConsoleUser {
                user_id,
                chat_id,
                username: Some(username).filter(|name| !name.is_empty()),
                received_dir,
            };
            crate::app::console::run(&config, user, !no_migrate).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { no_migrate } => {
            crate::app::bot::run(&config, !no_migrate).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { once, no_migrate } => {
            crate::app::worker::serve(&config, once, !no_migrate).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Health { http } => health::run(&config, http).await,
        Command::Migrate => {
            let store = crate::app::root::open_store(&config, true).await?;
            println!("{} database is up to date", store.backend());
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Secrets { command } => secrets::run(&config, command).await,
        Command::Hooks { command } => hooks::run(&config, command).await,
        Command::Oauth { command } => oauth::run(&config, command).await,
        Command::Tools { command } => tools::run(&config, command).await,
        Command::Mcp { no_migrate } => {
            crate::app::mcp::serve(&config, !no_migrate).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins { command } => plugins::run(&config, command).await,
    }
}
