//! Operating the bot: health checks against the machine's real Postgres and
//! Redis (and unreachable ones), alerts and recovery notices, `/health`
//! through the real plugin, `/healthz` `/readyz` `/metrics` over HTTP, and
//! the worker: retention cleanup and one active worker at a time.

mod common;

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::anthropic::FakeAnthropic;
use common::proxy::TcpProxy;
use common::{ask, plugins_dir};
use wasmbot::app::config::Config;
use wasmbot::app::ops::{OpsState, ops_router};
use wasmbot::app::root::health_checker;
use wasmbot::chat::Dispatcher;
use wasmbot::infra::alert::Alerter;
use wasmbot::infra::health::{HealthMonitor, Status};
use wasmbot::infra::llm::{LlmClient, LlmSettings};
use wasmbot::infra::services::HostServices;
use wasmbot::infra::store::{AuditEntry, Store};

const REDIS: &str = "127.0.0.1:6379";

fn settings(vars: &[(&str, String)]) -> Config {
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_machines_postgres_and_redis_every_configured_service_is_healthy() {
    let (fake, url) = FakeAnthropic::start().await;
    let llm = LlmSettings::from_lookup(|name| match name {
        "ANTHROPIC_API_KEY" => Some("sk-ant-health".into()),
        "ANTHROPIC_BASE_URL" => Some(url.clone()),
        _ => None,
    })
    .unwrap();
    let llm = LlmClient::from_settings(&llm).unwrap().map(Arc::new);
    for t in common::stores::all().await {
        let checker = health_checker(
            &settings(&[("REDIS_URL", format!("redis://{REDIS}"))]),
            Some(t.store.clone()),
            llm.clone(),
        );
        let results = checker.check_all().await;
        let by_name = |name: &str| results.iter().find(|s| s.name == name).unwrap().clone();
        for name in ["database", "redis", "llm"] {
            assert_eq!(
                by_name(name).status,
                Status::Healthy,
                "{} {name}: {:?}",
                t.label,
                by_name(name)
            );
            assert!(by_name(name).latency_ms.is_some());
        }
        assert_eq!(by_name("qdrant").status, Status::NotConfigured);
        assert_eq!(by_name("plugins").status, Status::NotConfigured);
    }
    assert!(
        fake.requests().is_empty(),
        "the LLM check spends no tokens (no /v1/messages call)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_going_down_alerts_once_and_coming_back_sends_one_notice() {
    let proxy = TcpProxy::start(REDIS.parse().unwrap()).await;
    let (alerter, mut inbox) = common::alerts::alerter_with_inbox();
    let checker = health_checker(
        &settings(&[
            ("REDIS_URL", format!("redis://{}", proxy.addr)),
            ("QDRANT_URL", "http://127.0.0.1:1".into()),
        ]),
        None,
        None,
    );
    let monitor = HealthMonitor::new(checker, alerter.clone());
    let first = monitor.check_now().await;
    let redis = first.iter().find(|s| s.name == "redis").unwrap();
    assert_eq!(redis.status, Status::Healthy);
    let qdrant = first.iter().find(|s| s.name == "qdrant").unwrap();
    assert_eq!(qdrant.status, Status::Unhealthy);
    assert!(
        qdrant
            .detail
            .as_deref()
            .unwrap()
            .contains("cannot connect to the Qdrant server (refused)"),
        "{qdrant:?}"
    );
    assert_eq!(
        common::alerts::alerts_so_far(&alerter, &mut inbox)
            .await
            .len(),
        1,
        "qdrant down: one alert"
    );

    proxy.go_down();
    let started = Instant::now();
    let down = monitor.check_now().await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "checks are bounded"
    );
    let redis = down.iter().find(|s| s.name == "redis").unwrap();
    assert_eq!(redis.status, Status::Unhealthy, "{redis:?}");
    let alerts = common::alerts::alerts_so_far(&alerter, &mut inbox).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].starts_with("❌ redis is unhealthy: "),
        "{alerts:?}"
    );
    monitor.check_now().await;
    assert!(
        common::alerts::alerts_so_far(&alerter, &mut inbox)
            .await
            .is_empty(),
        "still down: no repeated alert"
    );

    proxy.come_back();
    monitor.check_now().await;
    assert_eq!(
        common::alerts::alerts_so_far(&alerter, &mut inbox).await,
        ["✅ redis is healthy again."]
    );
    monitor.check_now().await;
    assert!(
        common::alerts::alerts_so_far(&alerter, &mut inbox)
            .await
            .is_empty(),
        "one recovery notice only"
    );
}

/// A dispatcher with the health monitor and the bundled plugins.
async fn operated_host(store: Store) -> (Dispatcher, HostServices, tempfile::TempDir) {
    let dir = plugins_dir(&["health", "start"]);
    let registry = common::registry(dir.path()).await;
    let checker = health_checker(
        &settings(&[("REDIS_URL", format!("redis://{REDIS}"))]),
        Some(store.clone()),
        None,
    )
    .with_plugins(Some(
        registry.clone() as Arc<dyn wasmbot::infra::health::PluginReport>
    ));
    let alerter = Alerter::log_only();
    let services = HostServices {
        store: Some(store.clone()),
        vault: None,
        audit: Some(Arc::new(wasmbot::infra::audit::AuditWriter::start(
            store, 1000,
        ))),
        llm: None,
        health: Some(Arc::new(HealthMonitor::new(checker, alerter.clone()))),
        alerter,
        ..HostServices::default()
    };
    let dispatcher = Dispatcher::new(registry, None).with_services(services.clone());
    (dispatcher, services, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn slash_health_through_the_real_plugin_shows_every_service() {
    let t = common::stores::sqlite().await;
    let (dispatcher, _, _dir) = operated_host(t.store.clone()).await;
    let reply = ask(&dispatcher, "/health").await;
    let lines: Vec<&str> = reply.lines().collect();
    assert_eq!(lines.len(), 5, "{reply}");
    assert!(
        lines[0].starts_with("✅ database ") && lines[0].ends_with(" ms"),
        "{reply}"
    );
    assert!(lines[1].starts_with("✅ redis "), "{reply}");
    assert_eq!(lines[2], "➖ qdrant: not configured");
    assert_eq!(lines[3], "➖ llm: not configured");
    assert_eq!(lines[4], "✅ plugins (2 loaded)");
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0.0, |value| value.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_readyz_and_metrics_answer_over_http_and_counters_move() {
    let t = common::stores::sqlite().await;
    let (dispatcher, services, _dir) = operated_host(t.store.clone()).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let router = ops_router(OpsState {
        services: Arc::new(services.clone()),
        registry: Some(dispatcher.registry().clone()),
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(wasmbot::infra::http::serve(
        "HTTP_ADDR",
        addr,
        router,
        async {
            let _ = stopped.await;
        },
    ));
    let base = format!("http://{addr}");
    let started = Instant::now();
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(&format!("{base}/healthz")).await, (200, "ok\n".into()));
    assert_eq!(
        get(&format!("{base}/readyz")).await,
        (200, "ready\n".into())
    );

    let series = r#"wasmbot_messages_total{plugin="start",status="ok"}"#;
    let (status, before) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    for _ in 0..3 {
        ask(&dispatcher, "/start").await;
    }
    ask(&dispatcher, "/health").await;
    let (_, after) = get(&format!("{base}/metrics")).await;
    assert!(
        counter(&after, series) >= counter(&before, series) + 3.0,
        "{after}"
    );
    for name in [
        "wasmbot_handler_seconds_bucket",
        "wasmbot_audit_queue_depth",
        "wasmbot_audit_overflow",
        // Process-wide: another test in this binary may have taken Redis down.
        r#"wasmbot_service_up{service="database"} 1"#,
        r#"wasmbot_service_up{service="redis"} "#,
    ] {
        assert!(after.contains(name), "{name} missing from\n{after}");
    }

    // The database gone: not ready.
    t.store.close().await;
    let (status, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("not ready: database"), "{body}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

fn audit_at(age_days: i64, action: &str) -> AuditEntry {
    AuditEntry {
        created_at: chrono::Utc::now() - chrono::Duration::days(age_days),
        ..AuditEntry::new(action, "ok")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_once_audit_cleanup_deletes_only_rows_past_the_retention() {
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("w.db");
    let url = format!("sqlite://{}", db.display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store
        .insert_audit(&[
            audit_at(45, "old"),
            audit_at(31, "old"),
            audit_at(29, "new"),
            audit_at(0, "new"),
        ])
        .await
        .unwrap();
    store.close().await;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_wasmbot"))
            .args(["worker", "--once", "audit-cleanup"])
            .env_clear()
            .env("DATABASE_URL", &url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "audit-cleanup: deleted 2 entries older than 30 days"
    );
    let store = Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    assert_eq!(store.count_audit().await.unwrap(), 2);
}

/// A `wasmbot worker` process whose log lines are collected as they come.
struct WorkerProcess {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl WorkerProcess {
    fn start(database_url: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbot"))
            .arg("worker")
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("WORKER_STANDBY_SECS", "1")
            .env("LOG_FORMAT", "json")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    fn said(&self, text: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(text))
    }

    async fn wait_for(&self, text: &str) {
        let started = Instant::now();
        while !self.said(text) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "never said {text:?}: {:?}",
                self.lines.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_on_one_postgres_one_is_active_and_the_other_takes_over() {
    let Some(url) = common::stores::postgres_url() else {
        return;
    };
    let t = common::stores::postgres_at(&url).await;
    let schema = t.schema.clone().unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let database_url = format!("{url}{separator}options=-csearch_path%3D{schema}");
    let mut first = WorkerProcess::start(&database_url);
    first.wait_for("this worker is active").await;
    let mut second = WorkerProcess::start(&database_url);
    second
        .wait_for("another worker is active; standing by")
        .await;
    // What the active one does is waited for; what the standby one must not
    // do gets a moment to go wrong (a fixed wait cannot fail this falsely).
    first.wait_for("worker heartbeat").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!second.said("this worker is active"), "two active workers");
    assert!(
        !second.said("worker heartbeat"),
        "only the active one runs jobs"
    );

    assert!(
        first.terminate().success(),
        "{:?}",
        first.lines.lock().unwrap()
    );
    second.wait_for("this worker is active").await;
    second.wait_for("worker heartbeat").await;
    assert!(second.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn wasmbot_health_prints_one_line_per_service_and_fails_when_one_is_down() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/h.db", data.path().display());
    let run = move |args: &'static [&'static str], qdrant: &'static str| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_wasmbot"))
                .args(args)
                .env_clear()
                .env("DATABASE_URL", url)
                .env("REDIS_URL", format!("redis://{REDIS}"))
                .env("QDRANT_URL", qdrant)
                .env("HTTP_ADDR", "127.0.0.1:1")
                .output()
                .unwrap()
        })
    };
    let output = run(&["health"], "http://127.0.0.1:1").await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].starts_with("database\thealthy\t"), "{stdout}");
    assert!(lines[1].starts_with("redis\thealthy\t"), "{stdout}");
    assert!(lines[2].starts_with("qdrant\tUNHEALTHY\t"), "{stdout}");
    assert_eq!(lines[3], "llm\tnot configured");

    let probe = run(&["health", "--http"], "http://127.0.0.1:1")
        .await
        .unwrap();
    assert_eq!(probe.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&probe.stdout).starts_with("not ready: http://127.0.0.1:1/readyz")
    );
}
