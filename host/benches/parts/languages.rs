//! The `languages` section: the bundled Python (`convert`, componentize-py)
//! and JavaScript (`dice`, componentize-js) plugins through the whole
//! dispatcher, with pre-warmed single-use instances and without; their cold
//! compile and warm start-up (the compile cache); and the host's memory
//! with ten Python plugins loaded.
//!
//! Latency is measured at a pace the warm task keeps up with (one message
//! every 20 ms per plugin: a busy chat bot, not a flood); throughput is a
//! flood on both cores, where every instance is still made once per message,
//! by whichever thread gets to it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use wasmbot::chat::Dispatcher;
use wasmbot::runtime::{LoadedPlugin, PluginEngine, PluginLimits, PluginRegistry};

use super::{Latency, Report, built, install, message, rss_kib};

/// (language label, plugin, a message for it)
const GUESTS: [(&str, &str, &str); 2] = [
    ("python", "convert", "/convert 5 km to mi"),
    ("js", "dice", "/roll 2d6"),
];
const PACE: Duration = Duration::from_millis(20);
const PACED_MESSAGES: usize = 300;

async fn guest_dispatcher(dir: &Path, cache: &Path, warm: usize) -> anyhow::Result<Dispatcher> {
    let engine = PluginEngine::new(Some(cache.to_path_buf()), wasmbot::capabilities::ALL)?
        .with_warm_limits(warm, 4096);
    let registry =
        PluginRegistry::load(Arc::new(engine), dir.to_path_buf(), PluginLimits::default()).await?;
    anyhow::ensure!(
        registry.snapshot().errors().is_empty(),
        "{:?}",
        registry.snapshot().errors()
    );
    Ok(Dispatcher::new(Arc::new(registry), None))
}

/// `count` messages, one every `pace` (none: back to back), one at a time.
async fn paced(
    d: &Dispatcher,
    text: &str,
    count: usize,
    pace: Option<Duration>,
) -> anyhow::Result<Latency> {
    let mut samples = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        let reply = d.handle(message(1, text)).await.context("no reply")?;
        samples.push(t.elapsed());
        anyhow::ensure!(!reply.text().is_empty(), "an empty reply to {text}");
        if let Some(pace) = pace {
            tokio::time::sleep(pace.saturating_sub(t.elapsed())).await;
        }
    }
    Ok(Latency::of(samples, started.elapsed()))
}

/// `count` messages from 16 chats at once.
async fn flood(d: Arc<Dispatcher>, text: &'static str, count: usize) -> anyhow::Result<f64> {
    let tasks = 16;
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for chat in 0..tasks {
        let d = d.clone();
        running.spawn(async move {
            let mut ok = 0;
            for _ in 0..count / tasks {
                if d.handle(message(chat as i64, text)).await.is_some() {
                    ok += 1;
                }
            }
            ok
        });
    }
    let ok: usize = running.join_all().await.into_iter().sum();
    anyhow::ensure!(
        ok == count / tasks * tasks,
        "{} messages failed",
        count / tasks * tasks - ok
    );
    Ok(ok as f64 / started.elapsed().as_secs_f64())
}

pub async fn bench_languages(r: &mut Report) -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let cache_dir = cache.path().join("compiled");
    for (label, plugin, text) in GUESTS {
        // Cold: compiled from the component; warm: the compile cache's entry.
        let wasm = built(plugin)?;
        for (what, dir) in [
            ("cold_compile", None),
            ("warm_load", Some(cache_dir.clone())),
        ] {
            if dir.is_some() {
                // Fill the cache first: the warm start-up is the second load.
                let engine = PluginEngine::new(dir.clone(), wasmbot::capabilities::ALL)?;
                let load = wasm.clone();
                tokio::task::spawn_blocking(move || {
                    LoadedPlugin::load(&engine, &load, PluginLimits::default())
                })
                .await??;
            }
            let engine = PluginEngine::new(dir, wasmbot::capabilities::ALL)?;
            let load = wasm.clone();
            let started = Instant::now();
            tokio::task::spawn_blocking(move || {
                LoadedPlugin::load(&engine, &load, PluginLimits::default())
            })
            .await??;
            r.add(
                "languages",
                &format!(
                    "{label} ({plugin}, {:.1} MB) {}",
                    std::fs::metadata(&wasm)?.len() as f64 / 1e6,
                    what.replace('_', " ")
                ),
                &format!("startup.{label}.{what}_ms"),
                started.elapsed().as_secs_f64() * 1e3,
                "ms",
            );
        }

        let dir = tempfile::tempdir()?;
        install(dir.path(), plugin)?;
        for (warm, suffix) in [(4, ""), (0, "_unwarmed")] {
            let d = Arc::new(guest_dispatcher(dir.path(), &cache_dir, warm).await?);
            // The first messages start the warm task and its traffic estimate.
            paced(&d, text, 20, Some(PACE)).await?;
            let one = paced(&d, text, PACED_MESSAGES, Some(PACE)).await?;
            r.add_target(
                "languages",
                &format!(
                    "{text} ({label}{suffix}) p50, one message every {} ms",
                    PACE.as_millis()
                ),
                &format!("dispatch.{label}{suffix}.p50_us"),
                one.p50_us,
                "µs",
                (suffix.is_empty()).then_some(("<=", 1000.0)),
            );
            r.add(
                "languages",
                &format!("{text} ({label}{suffix}) p99"),
                &format!("dispatch.{label}{suffix}.p99_us"),
                one.p99_us,
                "µs",
            );
            if suffix.is_empty() {
                let text: &'static str = text;
                let all = flood(d.clone(), text, 2000).await?;
                r.add(
                    "languages",
                    &format!("{text} ({label}) all cores, 16 chats"),
                    &format!("dispatch.{label}.all_cores_msgs_per_s"),
                    all,
                    "msg/s",
                );
            }
        }
    }

    // Ten Python plugins (copies of convert under other names), each
    // having served a message and holding its ready instances.
    let dir = tempfile::tempdir()?;
    let wasm = built("convert")?;
    for i in 0..10 {
        let name = format!("convert{i}");
        std::fs::copy(&wasm, dir.path().join(format!("{name}.wasm")))?;
        std::fs::write(
            dir.path().join(format!("{name}.toml")),
            format!(
                "name = \"{name}\"\nversion = \"0.1.0\"\ncommands = [{{ name = \"{name}\", description = \"convert\" }}]\ncapabilities = [\"log\"]\n"
            ),
        )?;
    }
    let before = rss_kib("VmRSS:");
    let d = guest_dispatcher(dir.path(), &cache_dir, 4).await?;
    for i in 0..10 {
        d.handle(message(1, &format!("/convert{i} 5 km to mi")))
            .await
            .context("no reply")?;
    }
    // Let the warm tasks fill up, then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ready: usize = d
        .registry()
        .snapshot()
        .plugins()
        .iter()
        .map(|p| p.ready_instances())
        .sum();
    let after = rss_kib("VmRSS:");
    r.add(
        "languages",
        &format!("host RSS added by ten Python plugins ({ready} instances ready)"),
        "memory.ten_python_plugins_added_rss_mib",
        (after - before) / 1024.0,
        "MiB",
    );
    Ok(())
}
