//! Sustained audit throughput through the real `AuditWriter` (batched):
//! `cargo run --release --example audit_throughput -- sqlite://target/audit-bench.db 100000`
//! or with a `postgres://…` URL. The full benchmark comes with `just bench`.

use std::time::{Duration, Instant};

use wasmbot::audit::AuditWriter;
use wasmbot::store::{AuditEntry, Store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "sqlite://target/audit-bench.db".into());
    let count: usize = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let before = store.count_audit().await?;
    let writer = AuditWriter::start(store.clone(), count);
    let started = Instant::now();
    for i in 0..count {
        writer.record(AuditEntry {
            created_at: chrono::Utc::now(),
            correlation_id: Some(format!("bench-{i}")),
            user_id: Some(1),
            chat_id: Some(1),
            plugin: Some("bench".into()),
            action: "command".into(),
            source: "host".into(),
            model: None,
            status: "ok".into(),
            error: None,
            duration_ms: Some(0.03),
            metadata: sqlx::types::Json(serde_json::json!({ "command": "start" })),
        });
    }
    let queued = started.elapsed();
    writer.shutdown(Duration::from_secs(600)).await;
    let total = started.elapsed();
    let written = store.count_audit().await? - before;
    println!(
        "{}: {written} entries in {:.2}s = {:.0} entries/s (queueing took {:.1} ms, overflow {})",
        store.backend(),
        total.as_secs_f64(),
        written as f64 / total.as_secs_f64(),
        queued.as_secs_f64() * 1000.0,
        writer.overflow()
    );
    Ok(())
}
