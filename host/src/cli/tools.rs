//! `wasmbot tools log`: the assistant's tool calls, newest first, from the
//! two-row `tool_calls` log (a call with no completion row was still
//! running, or was killed mid-way).

use std::process::ExitCode;

use clap::Subcommand;

use crate::app::config::Config;
use crate::app::root::open_store;
use crate::infra::store::clean_capped;

#[derive(Subcommand)]
pub enum ToolsCommand {
    /// The newest tool calls: when, chat, tool, input, outcome.
    Log {
        /// Only this chat's.
        #[arg(long)]
        chat: Option<i64>,
        /// How many (1-1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
    },
}

pub async fn run(config: &Config, command: ToolsCommand) -> anyhow::Result<ExitCode> {
    let ToolsCommand::Log { chat, limit } = command;
    let store = open_store(config, true).await?;
    let rows = store.tool_calls_log(chat, limit).await?;
    store.close().await;
    if rows.is_empty() {
        println!("no tool calls yet");
        return Ok(ExitCode::SUCCESS);
    }
    for row in rows {
        let at = chrono::DateTime::from_timestamp_millis(row.started_ms)
            .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let outcome = match (&row.status, row.duration_ms) {
            (Some(status), Some(ms)) => format!("{status} in {ms:.0} ms"),
            (Some(status), None) => status.clone(),
            (None, _) => "no completion (running, or killed mid-way)".to_string(),
        };
        let output = row
            .output
            .as_deref()
            .and_then(|output| serde_json::from_str::<serde_json::Value>(output).ok())
            .and_then(|output| output["text"].as_str().map(str::to_string))
            .unwrap_or_default();
        println!(
            "{at}\tchat {}\tuser {}\t{}/{}\t{}\t{outcome}\t{}\t{}",
            row.chat_id,
            row.user_id,
            row.plugin,
            row.tool,
            clean_capped(&row.input, 200),
            clean_capped(&output, 200),
            row.correlation_id,
        );
    }
    Ok(ExitCode::SUCCESS)
}
