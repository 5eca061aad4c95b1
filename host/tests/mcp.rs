//! `wasmbot mcp` driven by an MCP client (rmcp's, over the child's stdio):
//! the plugins' tools are listed with their schemas (a `confirm` tool
//! marked destructive) and called in their own sandboxes, Rust, Python and
//! JavaScript alike; refused input and unknown tools are error results; each
//! call leaves its two rows in `tool_calls`.

mod common;

use common::plugins_dir;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use serde_json::json;

fn arguments(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("arguments are an object"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_client_lists_and_calls_the_sandboxed_tools() {
    let plugins = plugins_dir(&["notes", "convert", "dice"]);
    let data = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/bot.db", data.path().display());
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmbot")).configure(|cmd| {
        cmd.arg("mcp")
            .env("PLUGINS_DIR", plugins.path())
            .env("PLUGIN_CACHE_DIR", data.path().join("cache"))
            .env("DATABASE_URL", &database)
            .env("FILES_DIR", data.path().join("files"))
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("REDIS_URL")
            .env_remove("QDRANT_URL");
    });
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    for name in ["note_add", "notes_list", "note_done", "convert", "roll"] {
        assert!(names.contains(&name), "{name} not listed: {names:?}");
    }
    let done = tools.iter().find(|tool| tool.name == "note_done").unwrap();
    assert_eq!(
        done.annotations.as_ref().and_then(|a| a.destructive_hint),
        Some(true)
    );
    assert_eq!(done.input_schema["required"], json!(["number"]));
    let add = tools.iter().find(|tool| tool.name == "note_add").unwrap();
    assert_eq!(
        add.annotations.as_ref().and_then(|a| a.destructive_hint),
        Some(false)
    );

    let call = |name: &'static str, input: serde_json::Value| {
        CallToolRequestParams::new(name).with_arguments(arguments(input))
    };
    let text = |result: &rmcp::model::CallToolResult| {
        serde_json::to_value(&result.content).unwrap().to_string()
    };
    let added = client
        .call_tool(call("note_add", json!({"text": "from mcp"})))
        .await
        .unwrap();
    assert_ne!(added.is_error, Some(true), "{}", text(&added));
    assert!(text(&added).contains("Noted"), "{}", text(&added));
    let listed = client
        .call_tool(call("notes_list", json!({})))
        .await
        .unwrap();
    assert!(text(&listed).contains("1. from mcp"), "{}", text(&listed));
    // Python and JavaScript tools, each in its own sandbox.
    let converted = client
        .call_tool(call(
            "convert",
            json!({"value": 5, "from": "km", "to": "mi"}),
        ))
        .await
        .unwrap();
    assert!(
        text(&converted).contains("3.107 mi"),
        "{}",
        text(&converted)
    );
    let rolled = client
        .call_tool(call("roll", json!({"dice": "2d6"})))
        .await
        .unwrap();
    assert_ne!(rolled.is_error, Some(true), "{}", text(&rolled));
    assert!(text(&rolled).contains("2d6"), "{}", text(&rolled));
    // Refused input never reaches the plugin; an unknown tool is an error.
    let refused = client
        .call_tool(call("note_done", json!({"number": "first"})))
        .await
        .unwrap();
    assert_eq!(refused.is_error, Some(true));
    assert!(text(&refused).contains("schema"), "{}", text(&refused));
    let unknown = client
        .call_tool(call("launch_rockets", json!({})))
        .await
        .unwrap();
    assert_eq!(unknown.is_error, Some(true));
    client.cancel().await.unwrap();

    // Every call the host took is logged, two rows each (the refused one as
    // an error); the unknown tool named no plugin and left none.
    let pool = sqlx::SqlitePool::connect(&database).await.unwrap();
    let rows: Vec<(Option<String>, String, Option<String>)> =
        sqlx::query_as("SELECT parent_id, tool, status FROM tool_calls ORDER BY at_ms, id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let started: Vec<&str> = rows
        .iter()
        .filter(|(parent, _, _)| parent.is_none())
        .map(|(_, tool, _)| tool.as_str())
        .collect();
    assert_eq!(
        started,
        ["note_add", "notes_list", "convert", "roll", "note_done"],
        "{rows:?}"
    );
    assert_eq!(rows.len(), 10, "{rows:?}");
}
