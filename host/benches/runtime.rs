//! `just bench`: the runtime measured in one run on this machine, written to
//! `docs/benchmarks.md` and `target/bench.json`. Everything goes through the
//! real dispatcher with real components; the "native" rows run the same
//! dispatcher with the handler written in Rust (`with_native_command`), so
//! the difference is what the sandbox costs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http_body_util::BodyExt;
use wasmbot::chat::jobs::{JobOutput, JobRunner, RunnerRole};
use wasmbot::chat::{ChatAction, Dispatcher, IncomingMessage, IncomingPress};
use wasmbot::infra::audit::AuditWriter;
use wasmbot::infra::cache::{CacheStore, plugin_key};
use wasmbot::infra::outbound::{self, Destination, OutboundClient, PrivateAllowance, Timeouts};
use wasmbot::infra::services::HostServices;
use wasmbot::infra::store::{AuditEntry, Claimant, InboxOutcome, InboxUpdate, NewJob, Store};
use wasmbot::infra::vectors::{
    CollectionName, CollectionSpec, Distance, FieldMatch, FieldValue, Point, VectorStore,
};
use wasmbot::runtime::{
    Allocation, PluginEngine, PluginLimits, PluginRegistry, Reply, ReplyFormat,
};

// The fakes of the tests (a Messages API, a Bot API), for `streaming`.
#[allow(dead_code)]
#[path = "../tests/common/anthropic.rs"]
mod anthropic;
#[allow(dead_code)]
#[path = "../tests/common/bot_api.rs"]
mod bot_api;
#[path = "parts/languages.rs"]
mod languages;
#[path = "parts/streaming.rs"]
mod streaming;
#[path = "parts/tools.rs"]
mod tools;

const GREETING_PREFIX: &str = "Hello, bench!";

struct Row {
    section: &'static str,
    metric: String,
    key: String,
    value: f64,
    unit: &'static str,
    /// (comparison, bound): "<=" or ">=".
    target: Option<(&'static str, f64)>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    fn add(
        &mut self,
        section: &'static str,
        metric: &str,
        key: &str,
        value: f64,
        unit: &'static str,
    ) {
        self.add_target(section, metric, key, value, unit, None);
    }

    fn add_target(
        &mut self,
        section: &'static str,
        metric: &str,
        key: &str,
        value: f64,
        unit: &'static str,
        target: Option<(&'static str, f64)>,
    ) {
        println!("{key:<42} {value:>14.2} {unit}");
        self.rows.push(Row {
            section,
            metric: metric.to_string(),
            key: key.to_string(),
            value,
            unit,
            target,
        });
    }

    fn note(&mut self, text: String) {
        println!("note: {text}");
        self.notes.push(text);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn built(name: &str) -> anyhow::Result<PathBuf> {
    for dir in ["plugins/dist", "target/test-plugins"] {
        let wasm = root().join(dir).join(format!("{name}.wasm"));
        if wasm.is_file() {
            return Ok(wasm);
        }
    }
    anyhow::bail!(
        "plugin `{name}` is not built: run `just build-plugins build-test-plugins` (`just bench` does)"
    )
}

fn install(dir: &Path, name: &str) -> anyhow::Result<()> {
    let wasm = built(name)?;
    std::fs::copy(&wasm, dir.join(format!("{name}.wasm")))?;
    std::fs::copy(
        wasm.with_extension("toml"),
        dir.join(format!("{name}.toml")),
    )?;
    Ok(())
}

fn message(chat_id: i64, text: &str) -> IncomingMessage {
    IncomingMessage::private(chat_id, 1, Some("bench"), text)
}

/// The same work as the `start` plugin, in Rust.
fn native_start(message: &wasmbot::runtime::Message) -> Reply {
    Reply {
        text: format!(
            "Hello, {}! I'm your wasmbot assistant. Send /help to see what I can do.",
            message.username.as_deref().unwrap_or("there")
        ),
        format: ReplyFormat::Plain,
    }
}

async fn dispatcher(
    dir: &Path,
    allocation: Allocation,
    services: HostServices,
) -> anyhow::Result<Dispatcher> {
    dispatcher_warmed(
        dir,
        allocation,
        services,
        wasmbot::runtime::DEFAULT_WARM_PER_PLUGIN,
    )
    .await
}

/// With `warm` pre-warmed instances per plugin at most (0: none).
async fn dispatcher_warmed(
    dir: &Path,
    allocation: Allocation,
    services: HostServices,
    warm: usize,
) -> anyhow::Result<Dispatcher> {
    let engine = Arc::new(
        PluginEngine::with_allocation(None, wasmbot::capabilities::ALL, allocation)?
            .with_warm_limits(warm, wasmbot::runtime::DEFAULT_WARM_MEMORY_MB),
    );
    let registry = PluginRegistry::load(engine, dir.to_path_buf(), PluginLimits::default()).await?;
    anyhow::ensure!(
        registry.snapshot().errors().is_empty(),
        "{:?}",
        registry.snapshot().errors()
    );
    Ok(Dispatcher::new(Arc::new(registry), None)
        .with_services(services)
        .with_native_command("native_start", Arc::new(native_start)))
}

struct Latency {
    p50_us: f64,
    p99_us: f64,
    msgs_per_s: f64,
}

impl Latency {
    /// From one duration per call and the time all of them took.
    fn of(mut samples: Vec<Duration>, total: Duration) -> Self {
        samples.sort();
        let pct = |p: f64| {
            samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64()
                * 1e6
        };
        Latency {
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            msgs_per_s: samples.len() as f64 / total.as_secs_f64(),
        }
    }
}

/// `count` messages one after another on one task.
async fn one_task(d: &Dispatcher, text: &str, count: usize) -> anyhow::Result<Latency> {
    for _ in 0..count / 10 {
        d.handle(message(1, text)).await;
    }
    let mut samples = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        let reply = d.handle(message(1, text)).await.context("no reply")?;
        samples.push(t.elapsed());
        anyhow::ensure!(
            reply.text().starts_with(GREETING_PREFIX) || reply.text() == "done",
            "unexpected reply {:?}",
            reply.text()
        );
    }
    Ok(Latency::of(samples, started.elapsed()))
}

/// `count` messages over many chats on every core at once.
async fn all_cores(d: Arc<Dispatcher>, text: &'static str, count: usize) -> anyhow::Result<f64> {
    let tasks = 64;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|chat| {
            let d = d.clone();
            tokio::spawn(async move {
                let mut ok = 0;
                for _ in 0..count / tasks {
                    if d.handle(message(chat as i64, text))
                        .await
                        .is_some_and(|r| r.text().starts_with(GREETING_PREFIX))
                    {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for handle in handles {
        ok += handle.await?;
    }
    anyhow::ensure!(
        ok == count / tasks * tasks,
        "{} messages failed",
        count / tasks * tasks - ok
    );
    Ok(ok as f64 / started.elapsed().as_secs_f64())
}

async fn bench_dispatch(r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    install(dir.path(), "start")?;
    let n = 50_000;
    for (allocation, label, warm) in [
        (
            Allocation::Pooling,
            "wasm",
            wasmbot::runtime::DEFAULT_WARM_PER_PLUGIN,
        ),
        (Allocation::Pooling, "wasm_unwarmed", 0),
        (Allocation::OnDemand, "wasm_on_demand", 0),
    ] {
        let d = Arc::new(
            dispatcher_warmed(dir.path(), allocation, HostServices::default(), warm).await?,
        );
        let one = one_task(&d, "/start", n).await?;
        let all = all_cores(d.clone(), "/start", n).await?;
        // Issue 21's targets: the cost of Extism's *reused* plugin, per fresh instance.
        let (t50, tput) = if label == "wasm" {
            (Some(("<=", 6.0)), Some((">=", 100_000.0)))
        } else {
            (None, None)
        };
        r.add_target(
            "dispatch",
            &format!("/start {label} p50"),
            &format!("dispatch.{label}.p50_us"),
            one.p50_us,
            "µs",
            t50,
        );
        r.add(
            "dispatch",
            &format!("/start {label} p99"),
            &format!("dispatch.{label}.p99_us"),
            one.p99_us,
            "µs",
        );
        r.add(
            "dispatch",
            &format!("/start {label} one task"),
            &format!("dispatch.{label}.msgs_per_s"),
            one.msgs_per_s,
            "msg/s",
        );
        r.add_target(
            "dispatch",
            &format!("/start {label} all cores, 64 chats"),
            &format!("dispatch.{label}.all_cores_msgs_per_s"),
            all,
            "msg/s",
            tput,
        );
        if label == "wasm" {
            let native = one_task(&d, "/native_start", n).await?;
            let native_all = all_cores(d.clone(), "/native_start", n).await?;
            r.add(
                "dispatch",
                "/start native p50",
                "dispatch.native.p50_us",
                native.p50_us,
                "µs",
            );
            r.add(
                "dispatch",
                "/start native p99",
                "dispatch.native.p99_us",
                native.p99_us,
                "µs",
            );
            r.add(
                "dispatch",
                "/start native one task",
                "dispatch.native.msgs_per_s",
                native.msgs_per_s,
                "msg/s",
            );
            r.add(
                "dispatch",
                "/start native all cores",
                "dispatch.native.all_cores_msgs_per_s",
                native_all,
                "msg/s",
            );
            r.add_target(
                "dispatch",
                "Wasm overhead per message (p50)",
                "dispatch.overhead_us",
                one.p50_us - native.p50_us,
                "µs",
                Some(("<=", 20.0)),
            );
            r.add(
                "dispatch",
                "Wasm / native (p50)",
                "dispatch.overhead_ratio",
                one.p50_us / native.p50_us,
                "×",
            );
        }
    }
    Ok(())
}

/// What conversations add on the embedded store: a command clears the
/// chat's question only after its reply (not measured here: the reply is
/// ready before); buttons are kept; a press is looked up.
async fn bench_conversation(r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    install(dir.path(), "start")?;
    install(dir.path(), "notes")?;
    let services = HostServices {
        store: Some(sqlite_store(dir.path()).await?),
        ..HostServices::default()
    };
    let d = dispatcher(dir.path(), Allocation::Pooling, services).await?;
    let n = 5_000;
    let start = one_task(&d, "/start", n).await?;
    r.add(
        "conversation",
        "/start with a SQLite store, until the reply is ready p50",
        "conversation.start_sqlite.p50_us",
        start.p50_us,
        "µs",
    );
    for i in 0..3 {
        d.handle(message(1, &format!("/note item {i}"))).await;
    }
    let mut samples = Vec::with_capacity(1_000);
    let started = Instant::now();
    for _ in 0..1_000 {
        let t = Instant::now();
        let answer = d.handle(message(1, "/notes")).await.context("no list")?;
        samples.push(t.elapsed());
        anyhow::ensure!(
            answer.text().starts_with("1. item 0"),
            "{:?}",
            answer.text()
        );
    }
    let list = Latency::of(samples, started.elapsed());
    r.add(
        "conversation",
        "/notes: 3 notes, 3 buttons kept (SQLite) p50",
        "conversation.notes_buttons.p50_us",
        list.p50_us,
        "µs",
    );
    // A press on a note's button: token looked up, the plugin edits the list.
    let answer = d.handle(message(1, "/notes")).await.context("no list")?;
    let token = answer
        .actions
        .iter()
        .find_map(|action| match action {
            ChatAction::Send(message) => message.keyboard.first()?.first().map(|b| b.token.clone()),
            _ => None,
        })
        .context("no button")?;
    let press = IncomingPress {
        chat_id: 1,
        user_id: 1,
        username: Some("bench".into()),
        chat_type: wasmbot::runtime::ChatType::Private,
        display_name: "bench".into(),
        message_id: 1,
        token,
    };
    let mut samples = Vec::with_capacity(1_000);
    let started = Instant::now();
    for _ in 0..1_000 {
        let t = Instant::now();
        let answer = d
            .handle(press.clone())
            .await
            .context("no answer to the press")?;
        samples.push(t.elapsed());
        anyhow::ensure!(!answer.actions.is_empty(), "the press did nothing");
    }
    let pressed = Latency::of(samples, started.elapsed());
    r.add(
        "conversation",
        "button press (token lookup + plugin call, SQLite) p50",
        "conversation.press.p50_us",
        pressed.p50_us,
        "µs",
    );
    Ok(())
}

async fn sqlite_store(dir: &Path) -> anyhow::Result<Store> {
    let store = Store::connect(&format!("sqlite://{}/bench.db", dir.display())).await?;
    store.migrate().await?;
    Ok(store)
}

async fn bench_capability_calls(r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    install(dir.path(), "bench")?;
    install(dir.path(), "start")?;
    let store = sqlite_store(dir.path()).await?;
    let services = HostServices {
        store: Some(store.clone()),
        ..HostServices::default()
    };
    let cache = services.cache.clone();
    let d = dispatcher(dir.path(), Allocation::Pooling, services).await?;
    let n = 2_000;
    bench_cache_hits(r, &d, &cache, n).await?;
    let calls = one_task(&d, "/calls 100", n).await?;
    let empty = one_task(&d, "/calls 0", n).await?;
    // The same 50 sets, 50 gets and 100 log calls through the host API directly.
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        for i in 0..50u32 {
            store
                .set_state("bench", "counter", &serde_json::json!(i))
                .await?;
            store.get_state("bench", "counter").await?;
        }
        for _ in 0..100 {
            tracing::info!(plugin = "bench", "tick");
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    let native_us = samples[samples.len() / 2].as_secs_f64() * 1e6;
    let wasm_calls_us = calls.p50_us - empty.p50_us;
    r.add(
        "capability calls",
        "100 state + 100 log calls from Wasm (p50, minus an empty call)",
        "calls.wasm.p50_us",
        wasm_calls_us,
        "µs",
    );
    r.add(
        "capability calls",
        "the same through the host API (p50)",
        "calls.native.p50_us",
        native_us,
        "µs",
    );
    Ok(())
}

/// A host call that does no I/O (an in-memory cache hit), 500 per message
/// from Wasm against the same 500 made natively: what crossing into the host
/// costs, without a database in the measurement.
/// One allowed GET to a local server: made by a plugin (the `fetch` test
/// plugin through `wasi:http`, the host checking and sending it) and made
/// by the host directly with the same client, no plugin.
async fn bench_outbound(r: &mut Report) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello world" }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    install(dir.path(), "fetch")?;
    let manifest = std::fs::read_to_string(dir.path().join("fetch.toml"))?;
    let manifest = manifest.replace(
        "base_url = \"http://127.0.0.1:9\"",
        &format!("base_url = \"http://{address}\""),
    );
    std::fs::write(dir.path().join("fetch.toml"), manifest)?;
    let allowance = PrivateAllowance::parse(&address.to_string()).map_err(anyhow::Error::msg)?;
    let client = OutboundClient::new(allowance, None).map_err(anyhow::Error::msg)?;
    let services = HostServices {
        http: client.clone(),
        ..HostServices::default()
    };
    let d = dispatcher(dir.path(), Allocation::Pooling, services).await?;
    let text = format!("/fetch http://{address}/hello");
    let n = 1_000;
    let plugin = call_latency(n, |_| async {
        let reply = d.handle(message(1, &text)).await.context("no reply")?;
        anyhow::ensure!(
            reply.text() == "200 11 bytes: hello world",
            "{}",
            reply.text()
        );
        Ok(())
    })
    .await?;
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        first_byte: Duration::from_secs(5),
        between_bytes: Duration::from_secs(5),
    };
    let direct = call_latency(n, |_| async {
        let request = http::Request::get(format!("http://{address}/hello"))
            .header(http::header::HOST, address.to_string())
            .body(
                http_body_util::Empty::<bytes::Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )?;
        let destination = Destination {
            plugin: "fetch",
            https: false,
            host: "127.0.0.1",
            port: address.port(),
        };
        let sent = outbound::send(request, destination, &client, timeouts, 1 << 20)
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        let body = sent
            .response
            .into_body()
            .collect()
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?
            .to_bytes();
        anyhow::ensure!(body.as_ref() == b"hello world");
        Ok(())
    })
    .await?;
    r.add(
        "outbound http",
        "one allowed GET to a local server from a plugin, whole message (p50)",
        "http.plugin.p50_us",
        plugin.p50_us,
        "µs",
    );
    r.add(
        "outbound http",
        "the same GET made by the host directly, same client (p50)",
        "http.direct.p50_us",
        direct.p50_us,
        "µs",
    );
    r.add(
        "outbound http",
        "what the plugin adds: instance, wasi:http, checks, audit (p50 difference)",
        "http.overhead.p50_us",
        plugin.p50_us - direct.p50_us,
        "µs",
    );
    Ok(())
}

async fn bench_cache_hits(
    r: &mut Report,
    d: &Dispatcher,
    cache: &CacheStore,
    n: usize,
) -> anyhow::Result<()> {
    const CALLS: usize = 500;
    let key = plugin_key("bench", "hot");
    cache.set(&key, "1", None).await?;
    let hits = one_task(d, &format!("/calls cache {CALLS}"), n).await?;
    let none = one_task(d, "/calls cache 0", n).await?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        for _ in 0..CALLS {
            anyhow::ensure!(cache.get(&key).await?.is_some(), "the hot key is gone");
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    let native_us = samples[samples.len() / 2].as_secs_f64() * 1e6 / CALLS as f64;
    let wasm_us = (hits.p50_us - none.p50_us) / CALLS as f64;
    r.add(
        "capability calls",
        "in-memory cache hit from Wasm, per call (p50 of 500 per message, minus an empty message)",
        "calls.cache_hit.wasm_us",
        wasm_us,
        "µs",
    );
    r.add(
        "capability calls",
        "the same cache hit made natively, per call (p50)",
        "calls.cache_hit.native_us",
        native_us,
        "µs",
    );
    r.add(
        "capability calls",
        "overhead of one host call (Wasm minus native)",
        "calls.cache_hit.overhead_us",
        wasm_us - native_us,
        "µs",
    );
    Ok(())
}

/// p50 and p99 of `count` awaited calls of `call(i)`, one after another.
async fn call_latency<F, Fut>(count: usize, mut call: F) -> anyhow::Result<Latency>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut samples = Vec::with_capacity(count);
    let started = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        call(i).await?;
        samples.push(t.elapsed());
    }
    Ok(Latency::of(samples, started.elapsed()))
}

async fn bench_cache(r: &mut Report) -> anyhow::Result<()> {
    let local = CacheStore::local(64);
    let in_process = call_latency(100_000, |i| {
        let local = &local;
        async move {
            local.incr(&format!("bench:{}", i % 1000), 1, None).await?;
            Ok(())
        }
    })
    .await?;
    r.add(
        "cache",
        "incr, in-process (p50)",
        "cache.local.incr_p50_us",
        in_process.p50_us,
        "µs",
    );
    let url = std::env::var("BENCH_REDIS_URL")
        .or_else(|_| std::env::var("TEST_REDIS_URL"))
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = CacheStore::redis(&url, 16)?;
    let key = format!("wasmbot:bench:{}", uuid::Uuid::new_v4().simple());
    if redis
        .set(&key, "0", Some(Duration::from_secs(60)))
        .await
        .is_err()
    {
        r.note(format!(
            "cache.redis skipped: no Redis answers at BENCH_REDIS_URL / TEST_REDIS_URL / {url}"
        ));
        return Ok(());
    }
    let one = call_latency(20_000, |_| {
        let (redis, key) = (&redis, &key);
        async move {
            redis.incr(key, 1, Some(Duration::from_secs(60))).await?;
            Ok(())
        }
    })
    .await?;
    r.add(
        "cache",
        "incr on Redis, one task (p50)",
        "cache.redis.incr_p50_us",
        one.p50_us,
        "µs",
    );
    r.add(
        "cache",
        "incr on Redis, one task (p99)",
        "cache.redis.incr_p99_us",
        one.p99_us,
        "µs",
    );
    // Many plugin calls at once share one multiplexed connection.
    let tasks = 64;
    let per_task = 2_000;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (redis, key) = (redis.clone(), key.clone());
            tokio::spawn(async move {
                for _ in 0..per_task {
                    redis.incr(&key, 1, Some(Duration::from_secs(60))).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle.await??;
    }
    let rate = (tasks * per_task) as f64 / started.elapsed().as_secs_f64();
    let total: i64 = redis.get(&key).await?.unwrap_or_default().parse()?;
    anyhow::ensure!(
        total == (20_000 + tasks * per_task) as i64,
        "lost increments: {total}"
    );
    r.add(
        "cache",
        "incr on Redis, 64 tasks at once",
        "cache.redis.incr_per_s",
        rate,
        "calls/s",
    );
    redis.delete(&key).await?;
    Ok(())
}

/// Deterministic pseudo-random unit vectors (xorshift), so runs compare.
fn bench_vectors_of(count: usize, dimension: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    (0..count)
        .map(|_| {
            let v: Vec<f32> = (0..dimension).map(|_| next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect()
}

async fn bench_vectors(r: &mut Report) -> anyhow::Result<()> {
    const POINTS: usize = 10_000;
    const DIMENSION: u32 = 384;
    let dir = tempfile::tempdir()?;
    let store = VectorStore::embedded(dir.path().to_path_buf());
    let notes = CollectionName {
        plugin: "bench".into(),
        name: "notes".into(),
    };
    let spec = CollectionSpec {
        dimension: DIMENSION,
        distance: Distance::Cosine,
    };
    store.ensure(&notes, spec).await?;
    let vectors = bench_vectors_of(POINTS, DIMENSION as usize, 7);
    let started = Instant::now();
    for (batch, chunk) in vectors.chunks(256).enumerate() {
        let points = chunk
            .iter()
            .enumerate()
            .map(|(i, vector)| {
                let id = (batch * 256 + i) as u64;
                let mut payload = serde_json::Map::new();
                payload.insert("chat".into(), (id % 10).into());
                payload.insert("text".into(), "a note".into());
                Point {
                    id,
                    vector: vector.clone(),
                    payload,
                }
            })
            .collect();
        store.upsert(&notes, points).await?;
    }
    let upsert_rate = POINTS as f64 / started.elapsed().as_secs_f64();
    r.add(
        "vectors",
        "embedded upsert, 384-d, batches of 256, flushed",
        "vectors.embedded.upsert_points_per_s",
        upsert_rate,
        "points/s",
    );
    let queries = bench_vectors_of(2_000, DIMENSION as usize, 11);
    // Every query must find a full top 5, with or without the filter.
    let searches = |filter: Vec<FieldMatch>| {
        let (store, notes, queries) = (&store, &notes, &queries);
        call_latency(queries.len(), move |i| {
            let (query, filter) = (queries[i].clone(), filter.clone());
            async move {
                anyhow::ensure!(store.search(notes, query, 5, filter).await?.len() == 5);
                Ok(())
            }
        })
    };
    let plain = searches(vec![]).await?;
    r.add(
        "vectors",
        "embedded search, top 5 of 10k (p50)",
        "vectors.embedded.search_p50_us",
        plain.p50_us,
        "µs",
    );
    let chat = vec![FieldMatch {
        key: "chat".into(),
        value: FieldValue::Integer(3),
    }];
    let started = Instant::now();
    store
        .search(&notes, queries[0].clone(), 5, chat.clone())
        .await?;
    r.add(
        "vectors",
        "first search filtered on a field (indexes it)",
        "vectors.embedded.first_filtered_ms",
        started.elapsed().as_secs_f64() * 1e3,
        "ms",
    );
    let filtered = searches(chat).await?;
    r.add(
        "vectors",
        "embedded search, top 5 of one chat's 1k (p50)",
        "vectors.embedded.search_filtered_p50_us",
        filtered.p50_us,
        "µs",
    );
    drop(store);
    let started = Instant::now();
    let reopened = VectorStore::embedded(dir.path().to_path_buf());
    reopened
        .search(&notes, queries[0].clone(), 1, vec![])
        .await?;
    r.add(
        "vectors",
        "reopen 10k points from disk, first search",
        "vectors.embedded.reopen_ms",
        started.elapsed().as_secs_f64() * 1e3,
        "ms",
    );
    Ok(())
}

/// Installs built `component` as plugin `hello` (command /hello), as build-plugins does.
fn install_as_hello(dir: &Path, component: &str, capabilities: &str) -> anyhow::Result<()> {
    let manifest = format!(
        "name = \"hello\"\nversion = \"{component}\"\ncommands = [{{ name = \"hello\", description = \"Say hello\" }}]\ncapabilities = {capabilities}\n"
    );
    std::fs::write(dir.join(".hello.toml.tmp"), manifest)?;
    std::fs::rename(dir.join(".hello.toml.tmp"), dir.join("hello.toml"))?;
    std::fs::copy(built(component)?, dir.join(".hello.wasm.tmp"))?;
    std::fs::rename(dir.join(".hello.wasm.tmp"), dir.join("hello.wasm"))?;
    Ok(())
}

async fn bench_reload(r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    install_as_hello(dir.path(), "start", "[]")?;
    let d = Arc::new(dispatcher(dir.path(), Allocation::Pooling, HostServices::default()).await?);
    let _watcher = wasmbot::runtime::watch(d.registry().clone(), |_, _| {})?;
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let switched_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let senders: Vec<_> = (0..4)
        .map(|chat| {
            let (d, stop, failed, sent, switched_at) = (
                d.clone(),
                stop.clone(),
                failed.clone(),
                sent.clone(),
                switched_at.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    sent.fetch_add(1, Ordering::Relaxed);
                    match d.handle(message(chat, "/hello there")).await {
                        Some(reply) if reply.text().starts_with("echo: there") => {
                            switched_at.lock().unwrap().get_or_insert_with(Instant::now);
                        }
                        Some(reply) if reply.text().starts_with(GREETING_PREFIX) => {}
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written = Instant::now();
    install_as_hello(dir.path(), "echo", "[\"log\"]")?;
    while switched_at.lock().unwrap().is_none() {
        anyhow::ensure!(
            written.elapsed() < Duration::from_secs(30),
            "the new version never served"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await?;
    }
    let reload_ms = switched_at
        .lock()
        .unwrap()
        .map(|at| (at - written).as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN);
    r.add_target(
        "hot reload",
        "file written → new version serving (4 chats sending)",
        "reload.ms",
        reload_ms,
        "ms",
        Some(("<=", 300.0)),
    );
    r.add_target(
        "hot reload",
        "failed messages during the reload",
        "reload.failed_messages",
        failed.load(Ordering::Relaxed) as f64,
        "",
        Some(("<=", 0.0)),
    );
    r.add(
        "hot reload",
        "messages sent during the measurement",
        "reload.messages_sent",
        sent.load(Ordering::Relaxed) as f64,
        "",
    );
    Ok(())
}

/// `start` twenty times, each a distinct component (a custom section makes
/// the bytes differ) so a cold start really compiles twenty.
fn twenty_plugins(dir: &Path) -> anyhow::Result<()> {
    let start = std::fs::read(built("start")?)?;
    for i in 1..=20 {
        let name = format!("p{i:02}");
        let mut bytes = start.clone();
        let section_name = b"wasmbot-bench";
        let payload = [section_name.len() as u8]
            .iter()
            .chain(section_name)
            .chain(&[i as u8])
            .copied()
            .collect::<Vec<u8>>();
        bytes.push(0); // custom section id
        bytes.push(payload.len() as u8);
        bytes.extend_from_slice(&payload);
        std::fs::write(dir.join(format!("{name}.wasm")), bytes)?;
        std::fs::write(
            dir.join(format!("{name}.toml")),
            format!(
                "name = \"{name}\"\nversion = \"0.1.0\"\ncommands = [{{ name = \"{name}\", description = \"Plugin {i}\" }}]\ncapabilities = []\n"
            ),
        )?;
    }
    Ok(())
}

async fn bench_startup(r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    twenty_plugins(dir.path())?;
    let cache = tempfile::tempdir()?;
    let load = || async {
        let started = Instant::now();
        let engine = Arc::new(PluginEngine::new(
            Some(cache.path().join("plugin-cache")),
            wasmbot::capabilities::ALL,
        )?);
        let registry = PluginRegistry::load(
            engine.clone(),
            dir.path().to_path_buf(),
            PluginLimits::default(),
        )
        .await?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(
            registry.snapshot().plugins().len() == 20,
            "{:?}",
            registry.snapshot().errors()
        );
        Ok::<_, anyhow::Error>((
            elapsed,
            engine.stats().compiled(),
            engine.stats().cache_hits(),
        ))
    };
    let (cold, compiled, _) = load().await?;
    let (warm, recompiled, hits) = load().await?;
    anyhow::ensure!(
        compiled == 20 && recompiled == 0 && hits == 20,
        "cache: compiled {compiled}, then {recompiled} with {hits} hits"
    );
    r.add(
        "start-up",
        "20 plugins, compile cache cold",
        "startup.cold_ms",
        cold,
        "ms",
    );
    r.add_target(
        "start-up",
        "20 plugins, compile cache warm",
        "startup.warm_ms",
        warm,
        "ms",
        Some(("<=", 500.0)),
    );
    Ok(())
}

/// A migrated store on a schema of its own in `BENCH_POSTGRES_URL` (or
/// `TEST_POSTGRES_URL`), dropped afterwards; None when neither is set.
struct BenchPostgres {
    store: Store,
    admin: Store,
    schema: String,
}

impl BenchPostgres {
    async fn open() -> anyhow::Result<Option<Self>> {
        let Some(url) = std::env::var("BENCH_POSTGRES_URL")
            .or_else(|_| std::env::var("TEST_POSTGRES_URL"))
            .ok()
            .filter(|u| !u.is_empty())
        else {
            return Ok(None);
        };
        let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
        let admin = Store::connect(&url).await?;
        if let Store::Postgres(pool) = &admin {
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(pool)
                .await?;
        }
        let separator = if url.contains('?') { '&' } else { '?' };
        let store =
            Store::connect(&format!("{url}{separator}options=-csearch_path%3D{schema}")).await?;
        store.migrate().await?;
        Ok(Some(Self {
            store,
            admin,
            schema,
        }))
    }

    async fn drop_schema(self) -> anyhow::Result<()> {
        self.store.close().await;
        if let Store::Postgres(pool) = &self.admin {
            sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.schema))
                .execute(pool)
                .await?;
        }
        self.admin.close().await;
        Ok(())
    }
}

async fn audit_rate(store: Store) -> anyhow::Result<f64> {
    let count = 100_000;
    let writer = AuditWriter::start(store.clone(), 200_000);
    // Shaped like the dispatcher's entry for one message.
    let entry = AuditEntry {
        correlation_id: Some("0123456789abcdef0123456789abcdef".into()),
        user_id: Some(1),
        chat_id: Some(1),
        plugin: Some("bench".into()),
        duration_ms: Some(0.1),
        metadata: sqlx::types::Json(serde_json::json!({"command": "start"})),
        ..AuditEntry::new("command", "ok")
    };
    let started = Instant::now();
    for _ in 0..count {
        writer.record(entry.clone());
    }
    writer.shutdown(Duration::from_secs(120)).await;
    let rate = writer.written() as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(
        writer.written() == count as u64,
        "only {} of {count} written",
        writer.written()
    );
    Ok(rate)
}

async fn bench_audit(r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    r.add(
        "audit",
        "SQLite, batched",
        "audit.sqlite.entries_per_s",
        audit_rate(sqlite_store(dir.path()).await?).await?,
        "entries/s",
    );
    match BenchPostgres::open().await? {
        Some(postgres) => {
            let rate = audit_rate(postgres.store.clone()).await?;
            postgres.drop_schema().await?;
            r.add_target("audit", "PostgreSQL, batched", "audit.postgres.entries_per_s", rate, "entries/s", Some((">=", 20_000.0)));
        }
        None => r.note("audit.postgres skipped: set BENCH_POSTGRES_URL or TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test)".into()),
    }

    // Reply latency with the audit writer idle, then flooded by another task.
    install(dir.path(), "start")?;
    let store = sqlite_store(dir.path()).await?;
    let writer = Arc::new(AuditWriter::start(store.clone(), 10_000));
    let services = HostServices {
        store: Some(store),
        audit: Some(writer.clone()),
        ..HostServices::default()
    };
    let d = dispatcher(dir.path(), Allocation::Pooling, services).await?;
    let idle = one_task(&d, "/start", 20_000).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (writer, stop) = (writer.clone(), stop.clone());
        tokio::spawn(async move {
            let entry = AuditEntry::new("flood", "ok");
            // Offered ~1M entries/s, ten times what the writer sustains:
            // the queue stays full without this task spinning on a core.
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..1000 {
                    writer.record(entry.clone());
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let saturated = one_task(&d, "/start", 20_000).await?;
    stop.store(true, Ordering::Relaxed);
    flood.await?;
    r.add(
        "audit",
        "/start p99, audit writer idle",
        "audit.reply_p99_idle_us",
        idle.p99_us,
        "µs",
    );
    r.add(
        "audit",
        "/start p99, audit writer saturated",
        "audit.reply_p99_saturated_us",
        saturated.p99_us,
        "µs",
    );
    r.add(
        "audit",
        "entries refused by the full queue meanwhile",
        "audit.overflow",
        writer.overflow() as f64,
        "",
    );
    writer.shutdown(Duration::from_secs(30)).await;
    Ok(())
}

/// The bench's name on its leases, as its owner "bench".
fn bench_claimant() -> Claimant {
    Claimant {
        instance: "bench".into(),
        run: "bench".into(),
    }
}

/// What the inbox adds to one message: keep the update, claim it, mark it
/// done (the three statements `wasmbot run` makes around the handler), one
/// message at a time.
async fn inbox_latency(store: &Store, count: usize) -> anyhow::Result<Latency> {
    let lease = Duration::from_secs(30);
    let mut samples = Vec::with_capacity(count);
    let started = Instant::now();
    for i in 0..count {
        let update = InboxUpdate {
            update_id: i as i64,
            chat_id: (i % 16) as i64,
            payload: format!(r#"{{"update_id":{i},"message":{{"text":"/start"}}}}"#),
        };
        let t = Instant::now();
        store.inbox_add(1, std::slice::from_ref(&update)).await?;
        let claimed = store.inbox_claim(1, &bench_claimant(), lease, 256).await?;
        anyhow::ensure!(claimed.len() == 1, "claimed {}", claimed.len());
        store
            .inbox_finish(1, update.update_id, "bench", InboxOutcome::Done, None)
            .await?;
        samples.push(t.elapsed());
    }
    Ok(Latency::of(samples, started.elapsed()))
}

/// Messages per second through the inbox and the real `start` plugin: a
/// receiver keeps updates of 64 chats in batches of 100 (one getUpdates'
/// worth) while a claimer leases what there is room for (256 in flight, as in
/// `wasmbot run`) and each handled update is marked done.
async fn inbox_throughput(store: Store, d: Arc<Dispatcher>, count: usize) -> anyhow::Result<f64> {
    let lease = Duration::from_secs(30);
    let wake = Arc::new(tokio::sync::Notify::new());
    let slots = Arc::new(tokio::sync::Semaphore::new(256));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let receiver = {
        let (store, wake) = (store.clone(), wake.clone());
        tokio::spawn(async move {
            for batch in (0..count).collect::<Vec<_>>().chunks(100) {
                let updates: Vec<InboxUpdate> = batch
                    .iter()
                    .map(|&i| InboxUpdate {
                        update_id: i as i64,
                        chat_id: (i % 64) as i64,
                        payload: format!(r#"{{"update_id":{i}}}"#),
                    })
                    .collect();
                store.inbox_add(2, &updates).await?;
                wake.notify_one();
            }
            anyhow::Ok(())
        })
    };
    while (done.load(Ordering::Relaxed) as usize) < count {
        let room = slots.available_permits();
        let claimed = if room > 0 {
            store.inbox_claim(2, &bench_claimant(), lease, room).await?
        } else {
            Vec::new()
        };
        if claimed.is_empty() {
            let _ = tokio::time::timeout(Duration::from_millis(5), wake.notified()).await;
            continue;
        }
        for update in claimed {
            let permit = slots.clone().acquire_owned().await?;
            let (store, d, wake, done) = (store.clone(), d.clone(), wake.clone(), done.clone());
            tokio::spawn(async move {
                let reply = d.handle(message(update.chat_id, "/start")).await;
                if reply.is_some_and(|r| r.text().starts_with(GREETING_PREFIX))
                    && store
                        .inbox_finish(2, update.update_id, "bench", InboxOutcome::Done, None)
                        .await
                        .is_ok_and(|finished| finished)
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                drop(permit);
                wake.notify_one();
            });
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "only {} of {count} handled",
            done.load(Ordering::Relaxed)
        );
    }
    receiver.await??;
    let counts = store.inbox_counts(2).await?;
    anyhow::ensure!(
        counts.done == count as i64 && counts.pending == 0,
        "{counts:?}"
    );
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

async fn bench_inbox(r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    install(dir.path(), "start")?;
    let d = Arc::new(dispatcher(dir.path(), Allocation::Pooling, HostServices::default()).await?);
    let mut stores = vec![("sqlite", sqlite_store(dir.path()).await?)];
    let postgres = BenchPostgres::open().await?;
    match &postgres {
        Some(postgres) => stores.push(("postgres", postgres.store.clone())),
        None => {
            r.note("inbox.postgres skipped: set BENCH_POSTGRES_URL or TEST_POSTGRES_URL".into())
        }
    }
    for (backend, store) in stores {
        let latency = inbox_latency(&store, 2_000).await?;
        r.add_target(
            "inbox",
            &format!("{backend}: keep + claim + done, p50"),
            &format!("inbox.{backend}.added_p50_us"),
            latency.p50_us,
            "µs",
            Some(("<=", 1000.0)),
        );
        r.add(
            "inbox",
            &format!("{backend}: keep + claim + done, p99"),
            &format!("inbox.{backend}.added_p99_us"),
            latency.p99_us,
            "µs",
        );
        let rate = inbox_throughput(store.clone(), d.clone(), 20_000).await?;
        r.add(
            "inbox",
            &format!("{backend}: /start through the inbox, 64 chats, both cores"),
            &format!("inbox.{backend}.msgs_per_s"),
            rate,
            "msg/s",
        );
    }
    if let Some(postgres) = postgres {
        postgres.drop_schema().await?;
    }
    Ok(())
}

/// Where the bench's jobs are delivered: notes how long after its due time
/// each answer arrived (the payload is the due time, in µs).
#[derive(Default)]
struct ClockedOutput {
    delays_us: std::sync::Mutex<Vec<i64>>,
    delivered: AtomicU64,
}

impl JobOutput for ClockedOutput {
    fn admin_chat(&self) -> Option<i64> {
        Some(1)
    }

    fn deliver(
        &self,
        _chat_id: i64,
        answer: wasmbot::chat::Answer,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send + '_>> {
        Box::pin(async move {
            let now = chrono::Utc::now().timestamp_micros();
            let text = answer.text();
            // "⏰ <due>", with " (late)" for a job due before the runner started.
            let due: i64 = text
                .trim_start_matches("⏰ ")
                .trim_end_matches(" (late)")
                .parse()
                .with_context(|| format!("unexpected answer {text:?}"))?;
            self.delays_us.lock().unwrap().push(now - due);
            self.delivered.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }
}

/// Adds `count` jobs of the `ticker` plugin due at `due_us(i)` (µs).
async fn add_jobs(
    store: &Store,
    count: usize,
    due_us: impl Fn(usize) -> i64,
) -> anyhow::Result<()> {
    for i in 0..count {
        let due = due_us(i);
        let payload = due.to_string();
        let job = NewJob {
            plugin: "ticker",
            channel: "bench",
            chat_id: Some(1),
            user_id: Some(1),
            kind: "at",
            spec: None,
            payload: &payload,
            due_ms: due.div_euclid(1000),
        };
        store
            .jobs_add(&job, u64::MAX)
            .await?
            .map_err(|full| anyhow::anyhow!("quota {full:?}"))?;
    }
    Ok(())
}

/// Runs a job runner until `count` jobs were delivered; returns the delays
/// (µs) and the time it took.
async fn run_jobs(
    d: Arc<Dispatcher>,
    store: Store,
    count: usize,
    before: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<(Vec<i64>, Duration)> {
    let output = Arc::new(ClockedOutput::default());
    let runner = JobRunner::new(RunnerRole::Bot, d, store, output.clone());
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(runner.run(stopping));
    let started = Instant::now();
    before.await?;
    while (output.delivered.load(Ordering::Relaxed) as usize) < count {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "only {} of {count} jobs fired",
            output.delivered.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    let _ = stop.send(true);
    task.await?;
    let delays = std::mem::take(&mut *output.delays_us.lock().unwrap());
    Ok((delays, took))
}

async fn bench_jobs(r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    install(dir.path(), "ticker")?;
    let mut stores = vec![("sqlite", sqlite_store(dir.path()).await?)];
    let postgres = BenchPostgres::open().await?;
    match &postgres {
        Some(postgres) => stores.push(("postgres", postgres.store.clone())),
        None => r.note("jobs.postgres skipped: set BENCH_POSTGRES_URL or TEST_POSTGRES_URL".into()),
    }
    for (backend, store) in stores {
        let services = HostServices {
            store: Some(store.clone()),
            ..HostServices::default()
        };
        let d = Arc::new(
            dispatcher(dir.path(), Allocation::Pooling, services)
                .await?
                .with_channel("bench"),
        );
        // Firing delay: 200 jobs due one every 20 ms from a second out,
        // added while the runner runs (it sees them at its next look).
        const SPREAD: usize = 200;
        let start = chrono::Utc::now().timestamp_micros() + 1_000_000;
        let adding = add_jobs(&store, SPREAD, |i| start + i as i64 * 20_000);
        let (mut delays, _) = run_jobs(d.clone(), store.clone(), SPREAD, adding).await?;
        delays.sort_unstable();
        let pct = |p: f64| {
            delays[((delays.len() as f64 * p) as usize).min(delays.len() - 1)] as f64 / 1000.0
        };
        r.add_target(
            "jobs",
            &format!("{backend}: due time → answer delivered, p50"),
            &format!("jobs.{backend}.delay_p50_ms"),
            pct(0.50),
            "ms",
            Some(("<=", 1000.0)),
        );
        r.add_target(
            "jobs",
            &format!("{backend}: due time → answer delivered, p99"),
            &format!("jobs.{backend}.delay_p99_ms"),
            pct(0.99),
            "ms",
            Some(("<=", 1000.0)),
        );
        // Cost: 2,000 jobs already due, fired 16 at a time on both cores
        // (claim, a fresh instance of the plugin, delivery, delete).
        const BURST: usize = 2_000;
        let due = chrono::Utc::now().timestamp_micros() - 1_000;
        add_jobs(&store, BURST, |_| due).await?;
        let (_, took) = run_jobs(d.clone(), store.clone(), BURST, async { Ok(()) }).await?;
        anyhow::ensure!(
            store.jobs_all().await?.is_empty(),
            "jobs were set aside: {:?}",
            store.jobs_all().await?.first()
        );
        let rate = BURST as f64 / took.as_secs_f64();
        r.add(
            "jobs",
            &format!("{backend}: due jobs fired"),
            &format!("jobs.{backend}.per_s"),
            rate,
            "jobs/s",
        );
        r.add(
            "jobs",
            &format!("{backend}: cost per due job (both cores)"),
            &format!("jobs.{backend}.cost_us"),
            1e6 / rate,
            "µs",
        );
    }
    if let Some(postgres) = postgres {
        postgres.drop_schema().await?;
    }
    Ok(())
}

fn rss_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

async fn bench_memory(r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    install(dir.path(), "start")?;
    let d = Arc::new(dispatcher(dir.path(), Allocation::Pooling, HostServices::default()).await?);
    d.handle(message(1, "/start")).await;
    let idle = rss_kib("VmRSS:");
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib("VmRSS:") as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let tasks: Vec<_> = (0..1000)
        .map(|chat| {
            let d = d.clone();
            tokio::spawn(async move {
                d.handle(message(chat, "/start"))
                    .await
                    .is_some_and(|r| r.text().starts_with(GREETING_PREFIX))
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        ok += u32::from(task.await?);
    }
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    anyhow::ensure!(ok == 1000, "{} of 1000 messages failed", 1000 - ok);
    r.add(
        "memory",
        "host RSS idle (plugins loaded)",
        "memory.idle_rss_mib",
        idle / 1024.0,
        "MiB",
    );
    r.add(
        "memory",
        "host RSS peak, 1000 messages in flight",
        "memory.inflight_1000_rss_mib",
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
        "MiB",
    );
    Ok(())
}

fn machine() -> (String, String, String) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    (
        cpu,
        commit,
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

fn write(report: &Report) -> anyhow::Result<()> {
    let (cpu, commit, date) = machine();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mut json = serde_json::Map::new();
    json.insert("machine.cores".into(), cores.into());
    json.insert("machine.cpu".into(), cpu.clone().into());
    json.insert("commit".into(), commit.clone().into());
    json.insert("date".into(), date.clone().into());
    let mut md = format!(
        "# Benchmarks\n\nWritten by `just bench` ({}, release build). Machine: {cores} cores, {cpu}. \
         Date: {date}. Commit: `{commit}`.\n\nEvery row goes through the real dispatcher with real components; \
         \"native\" runs the same dispatcher with the handler written in Rust. Raw values: `target/bench.json`.\n",
        "host/benches/runtime.rs"
    );
    let mut section = "";
    for row in &report.rows {
        json.insert(
            row.key.clone(),
            serde_json::json!((row.value * 100.0).round() / 100.0),
        );
        if row.section != section {
            section = row.section;
            md.push_str(&format!(
                "\n## {section}\n\n| metric | key | value | target |\n|---|---|---|---|\n"
            ));
        }
        let target = match row.target {
            Some((cmp, bound)) => {
                let met = if cmp == "<=" {
                    row.value <= bound
                } else {
                    row.value >= bound
                };
                format!(
                    "{cmp} {bound} {} {}",
                    row.unit,
                    if met { "✅" } else { "❌ missed" }
                )
            }
            None => String::new(),
        };
        md.push_str(&format!(
            "| {} | `{}` | {:.2} {} | {target} |\n",
            row.metric, row.key, row.value, row.unit
        ));
    }
    if !report.notes.is_empty() {
        md.push_str("\n## Notes\n\n");
        for note in &report.notes {
            md.push_str(&format!("- {note}\n"));
        }
    }
    std::fs::create_dir_all(root().join("target"))?;
    std::fs::write(
        root().join("target/bench.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    let analysis_path = root().join("docs/benchmarks-analysis.md");
    if analysis_path.is_file() {
        md.push_str("\n## Analysis\n\nSee [benchmarks-analysis.md](benchmarks-analysis.md): what holds each missed target back, with profiles.\n");
    }
    std::fs::write(root().join("docs/benchmarks.md"), md)?;
    println!("wrote docs/benchmarks.md and target/bench.json");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut report = Report::default();
        // BENCH_ONLY=dispatch (for profiling one part) skips the others and writes nothing.
        let only = std::env::var("BENCH_ONLY").ok();
        let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
        // Memory first, so "idle" is the host before the other runs grew it.
        if run("memory") {
            bench_memory(&mut report).await?;
        }
        if run("dispatch") {
            bench_dispatch(&mut report).await?;
        }
        if run("conversation") {
            bench_conversation(&mut report).await?;
        }
        if run("calls") {
            bench_capability_calls(&mut report).await?;
        }
        if run("cache") {
            bench_cache(&mut report).await?;
        }
        if run("outbound") {
            bench_outbound(&mut report).await?;
        }
        if run("vectors") {
            bench_vectors(&mut report).await?;
        }
        if run("reload") {
            bench_reload(&mut report).await?;
        }
        if run("startup") {
            bench_startup(&mut report).await?;
        }
        if run("audit") {
            bench_audit(&mut report).await?;
        }
        if run("inbox") {
            bench_inbox(&mut report).await?;
        }
        if run("jobs") {
            bench_jobs(&mut report).await?;
        }
        if run("streaming") {
            streaming::bench_streaming(&mut report).await?;
        }
        if run("tools") {
            tools::bench_tools(&mut report).await?;
        }
        if run("languages") {
            languages::bench_languages(&mut report).await?;
        }
        if only.is_some() {
            return Ok(());
        }
        write(&report)
    })
}
