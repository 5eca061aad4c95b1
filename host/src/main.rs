//! The `wasmbot` command line.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use wasmbot::chat::Dispatcher;
use wasmbot::chat::console::{self, ConsoleUser};
use wasmbot::config::Config;
use wasmbot::runtime::{PluginEngine, PluginRegistry};

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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("wasmbot: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    // The console is for a person: only warnings interrupt the conversation
    // unless LOG_LEVEL asks for more.
    let default_level = match cli.command {
        Command::Chat { .. } => "warn",
    };
    let level = config.log_level.as_deref().unwrap_or(default_level);
    if let Err(error) = wasmbot::logging::init(level, config.log_format) {
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
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wasmbot: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Chat {
            user_id,
            chat_id,
            username,
        } => {
            let registry = load_plugins(&config).await?;
            let dispatcher = Dispatcher::new(registry, None);
            let user = ConsoleUser {
                user_id,
                chat_id,
                username: Some(username).filter(|name| !name.is_empty()),
            };
            let interactive = std::io::stdin().is_terminal();
            if interactive {
                println!("wasmbot console: type /help, or Ctrl-D to leave.");
            }
            let input = tokio::io::BufReader::new(tokio::io::stdin());
            console::run(&dispatcher, &user, input, tokio::io::stdout(), interactive)
                .await
                .context("console input/output failed")
        }
    }
}

async fn load_plugins(config: &Config) -> anyhow::Result<Arc<PluginRegistry>> {
    let engine = Arc::new(PluginEngine::new()?);
    let registry =
        PluginRegistry::load(engine, config.plugins_dir.clone(), config.plugin_limits).await?;
    let plugins = registry.snapshot();
    for error in plugins.errors() {
        eprintln!("wasmbot: {error}");
    }
    if plugins.plugins().is_empty() {
        eprintln!(
            "wasmbot: no plugins loaded from {} (run `just build-plugins`)",
            config.plugins_dir.display()
        );
    }
    Ok(Arc::new(registry))
}
