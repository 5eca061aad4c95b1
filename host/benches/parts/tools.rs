//! The `tools` section: what one tool call costs the host, Claude left out.
//! `notes_list` of the bundled `notes` plugin (one `state` read) is called
//! the three ways the host can: `LoadedPlugin::call_tool` (input checked
//! against the schema, a fresh instance under the plugin's limits, the
//! call), then the agent's `run_tool` (the same plus the tool log's two
//! rows in SQLite), against the same plugin's `/notes` command through the
//! dispatcher without pre-warmed instances (the same state read, the same
//! fresh instance): the difference is what the tool path adds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmbot::chat::agent::{AgentSettings, TurnContext, run_tool};
use wasmbot::infra::services::HostServices;
use wasmbot::runtime::{Allocation, CallContext};

use super::{Latency, Report, dispatcher_warmed, install, message, sqlite_store};

const CALLS: usize = 2_000;

pub async fn bench_tools(r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    install(dir.path(), "notes")?;
    let store = sqlite_store(dir.path()).await?;
    let services = HostServices {
        store: Some(store),
        ..HostServices::default()
    };
    let d = dispatcher_warmed(dir.path(), Allocation::Pooling, services, 0).await?;
    let services = Arc::new(d.services().clone());
    let plugins = d.registry().snapshot();
    let notes = plugins
        .plugin("notes")
        .ok_or_else(|| anyhow::anyhow!("notes is not loaded"))?
        .clone();
    let input = serde_json::json!({});
    let ctx = CallContext {
        correlation_id: Arc::from("bench"),
        user_id: 1,
        chat_id: 1,
        channel: "bench",
        services: services.clone(),
        link: None,
        agent: None,
        attachments: Vec::new(),
    };
    let (notes, input, ctx) = (&notes, &input, &ctx);
    let called = timed(CALLS, || async move {
        notes
            .call_tool("notes_list", input, ctx)
            .await
            .map(drop)
            .map_err(|failure| anyhow::anyhow!("{failure}"))
    })
    .await?;
    let cx = TurnContext {
        services,
        plugins,
        channel: "bench",
        link: None,
        chat_id: 1,
        user_id: 1,
        correlation_id: Arc::from("bench"),
        turn_key: None,
        settings: AgentSettings::default(),
        recorded: Arc::default(),
    };
    let cx = &cx;
    let logged = timed(CALLS, || async move {
        let outcome = run_tool(cx, "notes_list", input).await;
        anyhow::ensure!(outcome.status == "ok", "{}", outcome.text);
        Ok(())
    })
    .await?;
    let d = &d;
    let command = timed(CALLS, || async move {
        let answer = d.handle(message(1, "/notes")).await;
        anyhow::ensure!(answer.is_some(), "no answer to /notes");
        Ok(())
    })
    .await?;
    let section = "tools";
    r.add(
        section,
        "a tool call in its sandbox: schema check, fresh instance, call (notes_list, p50)",
        "tools.call.p50_us",
        called.p50_us,
        "µs",
    );
    r.add(
        section,
        "the same through the agent, with the tool log's two rows (p50)",
        "tools.logged.p50_us",
        logged.p50_us,
        "µs",
    );
    r.add(
        section,
        "the plugin's /notes command through the dispatcher, not pre-warmed (p50)",
        "tools.command.p50_us",
        command.p50_us,
        "µs",
    );
    r.add(
        section,
        "what a logged tool call costs the host beyond the command (p50 difference)",
        "tools.host_cost_us",
        logged.p50_us - command.p50_us,
        "µs",
    );
    Ok(())
}

/// `count` calls one after another, after a tenth as many to warm up.
async fn timed<F, Fut>(count: usize, call: F) -> anyhow::Result<Latency>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for _ in 0..count / 10 {
        call().await?;
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        call().await?;
        samples.push(t.elapsed());
    }
    Ok(Latency::of(samples, started.elapsed()))
}
