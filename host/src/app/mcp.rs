//! `wasmbot mcp`: the plugins' tools over MCP's stdio transport (the
//! official Rust SDK, `rmcp`), for Claude Desktop, Claude Code or any MCP
//! client. Every call goes through the same path as the assistant's: the
//! input checked against the tool's schema, the tool run in its own
//! plugin's sandbox with that plugin's grants and budgets (credentials stay
//! in the host), two rows in `tool_calls`, an audit entry. A `confirm` tool
//! is marked destructive, so the client asks its user first. A call has no
//! chat (chat and user 0): the actions a tool returns are dropped.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};

use crate::app::config::Config;
use crate::app::root::Host;
use crate::chat::agent::{AgentSettings, TurnContext, run_tool};
use crate::runtime::PluginRegistry;

/// The channel MCP calls are logged and audited under.
pub const CHANNEL: &str = "mcp";

/// Serves until the client closes stdin.
pub async fn serve(config: &Config, migrate: bool) -> anyhow::Result<()> {
    let host = Host::start(config, migrate).await?;
    for error in host.registry.snapshot().errors() {
        tracing::warn!(%error, "plugin not loaded");
    }
    let server = ToolServer {
        registry: host.registry.clone(),
        host: TurnContext {
            services: host.services.clone(),
            plugins: host.registry.snapshot(),
            channel: CHANNEL,
            link: None,
            chat_id: 0,
            user_id: 0,
            correlation_id: Arc::from(""),
            turn_key: None,
            settings: AgentSettings::default(),
            recorded: Arc::default(),
        },
    };
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|error| anyhow::anyhow!("starting the MCP session on stdio: {error}"))?;
    let ended = running.waiting().await;
    host.shutdown().await;
    ended.map_err(|error| anyhow::anyhow!("the MCP session failed: {error}"))?;
    Ok(())
}

struct ToolServer {
    registry: Arc<PluginRegistry>,
    /// What every call may reach (its plugins are taken afresh per call).
    host: TurnContext,
}

impl ServerHandler for ToolServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "wasmbot's plugin tools: each runs in its own WebAssembly sandbox with the grants its operator gave it.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let plugins = self.registry.snapshot();
        let tools = plugins
            .plugins()
            .iter()
            .flat_map(|plugin| plugin.tools().iter().map(move |tool| (plugin, tool)))
            .map(|(plugin, tool)| {
                let schema = match &tool.spec.input_schema {
                    serde_json::Value::Object(schema) => schema.clone(),
                    _ => serde_json::Map::new(),
                };
                Tool::new(
                    tool.spec.name.clone(),
                    format!("{} (plugin `{}`)", tool.spec.description, plugin.name()),
                    Arc::new(schema),
                )
                .with_annotations(ToolAnnotations::new().destructive(tool.spec.confirm))
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let input = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let cx = TurnContext {
            plugins: self.registry.snapshot(),
            correlation_id: Arc::from(uuid::Uuid::new_v4().simple().to_string()),
            ..self.host.clone()
        };
        let outcome = run_tool(&cx, &request.name, &input).await;
        let content = vec![ContentBlock::text(outcome.text)];
        Ok(if outcome.status == "ok" {
            CallToolResult::success(content)
        } else {
            CallToolResult::error(content)
        }
        .into())
    }
}
