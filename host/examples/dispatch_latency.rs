//! Quick measure of `/start` through the real dispatcher (the full benchmark
//! comes with `just bench`): `cargo run --release --example dispatch_latency -- plugins/dist 20000`.

use std::sync::Arc;
use std::time::Instant;

use wasmbot::chat::{Dispatcher, IncomingMessage};
use wasmbot::runtime::{PluginEngine, PluginLimits, PluginRegistry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "plugins/dist".into());
    let count: usize = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20_000);
    let engine = Arc::new(PluginEngine::new(None)?);
    let registry = PluginRegistry::load(engine, dir.into(), PluginLimits::default()).await?;
    let dispatcher = Dispatcher::new(Arc::new(registry), None);
    let message = IncomingMessage {
        chat_id: 1,
        user_id: 1,
        username: Some("bench".into()),
        text: "/start".into(),
    };
    for _ in 0..1_000 {
        dispatcher.handle(message.clone()).await;
    }
    let mut samples = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        let reply = dispatcher.handle(message.clone()).await;
        samples.push(t.elapsed());
        anyhow::ensure!(reply.is_some(), "no reply");
    }
    let total = started.elapsed();
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "/start x{count}: p50 {:?}  p99 {:?}  mean {:?}  {:.0} msgs/s (one task)",
        pct(0.50),
        pct(0.99),
        total / count as u32,
        count as f64 / total.as_secs_f64()
    );
    Ok(())
}
