//! The audit trail that no input can stop, on SQLite and PostgreSQL: NUL and
//! control bytes from a real plugin are sanitised, rows the database refuses
//! anyway are set aside while the rest is written, a locked or slow database
//! is retried without writing anything twice, a stall or an overflow is
//! alerted and shown in `/readyz` and `/health`, the retention is enforced by
//! the database itself, and users never see control characters.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use sqlx::types::Json;
use tokio::sync::mpsc::UnboundedReceiver;
use wasmbot::app::config::Config;
use wasmbot::app::ops::{OpsState, ops_router};
use wasmbot::app::root::health_checker;
use wasmbot::chat::Dispatcher;
use wasmbot::infra::alert::Alerter;
use wasmbot::infra::audit::{AuditHealth, AuditOptions, AuditWriter};
use wasmbot::infra::health::{HealthChecker, Status};
use wasmbot::infra::metrics::metrics;
use wasmbot::infra::services::HostServices;
use wasmbot::infra::store::{AuditEntry, KeyedAuditEntry, Store};

/// Generous: the machine may be slow and busy; every wait ends as soon as
/// its condition holds.
const DEADLINE: Duration = Duration::from_secs(90);

/// Polls `check` until it holds; panics with `what` after [`DEADLINE`].
async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < DEADLINE,
            "waited {DEADLINE:?} for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next alert whose text contains `needle` (earlier ones are skipped).
async fn alert_containing(inbox: &mut UnboundedReceiver<String>, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let left = DEADLINE.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, inbox.recv()).await {
            Ok(Some(text)) if text.contains(needle) => return text,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the alert inbox closed before an alert with {needle:?}"),
            Err(_) => panic!("no alert containing {needle:?} within {DEADLINE:?}"),
        }
    }
}

/// Control characters a user or an operator must never receive.
fn unwanted(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect()
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        unwanted(text).is_empty(),
        "{what} holds control characters {:?}: {text:?}",
        unwanted(text)
    );
}

fn assert_clean_json(what: &str, value: &Value) {
    match value {
        Value::String(text) => assert_clean(what, text),
        Value::Array(items) => items.iter().for_each(|item| assert_clean_json(what, item)),
        Value::Object(map) => {
            for (key, item) in map {
                assert_clean(what, key);
                assert_clean_json(what, item);
            }
        }
        _ => {}
    }
}

fn assert_entry_clean(entry: &AuditEntry) {
    for (field, text) in [
        ("correlation_id", entry.correlation_id.as_deref()),
        ("plugin", entry.plugin.as_deref()),
        ("action", Some(entry.action.as_str())),
        ("source", Some(entry.source.as_str())),
        ("model", entry.model.as_deref()),
        ("status", Some(entry.status.as_str())),
        ("error", entry.error.as_deref()),
    ] {
        if let Some(text) = text {
            assert!(!text.contains('\0'), "{field}: {text:?}");
            assert_clean(field, text);
        }
    }
    assert_clean_json("metadata", &entry.metadata.0);
}

struct TestHost {
    dispatcher: Dispatcher,
    audit: Arc<AuditWriter>,
    services: HostServices,
    _plugins: tempfile::TempDir,
}

fn writer(store: &Store, alerter: &Alerter, capacity: usize, stall_after: Duration) -> AuditWriter {
    AuditWriter::start_with(
        store.clone(),
        AuditOptions {
            capacity,
            stall_after,
            alerter: Some(alerter.clone()),
        },
    )
}

async fn host(store: &Store, alerter: &Alerter) -> TestHost {
    let plugins = common::plugins_dir(&["poison", "echo"]);
    let audit = Arc::new(writer(store, alerter, 10_000, Duration::from_secs(60)));
    let services = HostServices {
        store: Some(store.clone()),
        audit: Some(audit.clone()),
        alerter: alerter.clone(),
        ..HostServices::default()
    };
    let registry = common::registry(plugins.path()).await;
    assert!(
        registry.snapshot().errors().is_empty(),
        "{:?}",
        registry.snapshot().errors()
    );
    TestHost {
        dispatcher: Dispatcher::new(registry, None).with_services(services.clone()),
        audit,
        services,
        _plugins: plugins,
    }
}

async fn entries_of(store: &Store, correlation_id: &str) -> Vec<AuditEntry> {
    store.audit_for_correlation(correlation_id).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugins_nul_and_control_bytes_are_sanitised_and_every_later_entry_lands() {
    for t in common::stores::all().await {
        let label = t.label;
        let store = &t.store;
        let (alerter, _inbox) = common::alerts::alerter_with_inbox();
        let host = host(store, &alerter).await;

        // A plugin with no grant that matters fails with NUL and escapes
        // in its error, its audit metadata (keys and values), its action
        // and a denied secret's name.
        let poison = host
            .dispatcher
            .handle(common::message("/poison"))
            .await
            .expect("a reply to /poison");
        assert_clean("the /poison reply", &poison.text());
        assert!(
            poison
                .text()
                .starts_with("poison: bad\u{FFFD}byte \u{FFFD}[2J"),
            "{label}: {:?}",
            poison.text()
        );
        assert!(
            poison.text().ends_with("\nnext line\tafter tab"),
            "{label}: newline and tab are kept: {:?}",
            poison.text()
        );

        // Then normal messages, one with a NUL as Telegram could deliver it.
        let mut later = Vec::new();
        for i in 0..5 {
            let reply = host
                .dispatcher
                .handle(common::message(&format!("/echo hi{i}\0there")))
                .await
                .expect("a reply to /echo");
            assert_clean("the /echo reply", &reply.text());
            assert!(
                reply.text().contains(&format!("hi{i}\u{FFFD}there")),
                "{}",
                reply.text()
            );
            later.push(reply.correlation_id);
        }

        // Every later entry lands: nothing waits behind the poison.
        for id in &later {
            wait_for(&format!("{label}: the audit entry of {id}"), || async {
                entries_of(store, id).await.len() == 1
            })
            .await;
        }
        // The plugin's own entry, the denied secret and the command itself.
        wait_for(
            &format!("{label}: the three entries of /poison"),
            || async { entries_of(store, &poison.correlation_id).await.len() == 3 },
        )
        .await;
        let entries = entries_of(store, &poison.correlation_id).await;
        entries.iter().for_each(assert_entry_clean);
        let find = |action: &str| {
            entries
                .iter()
                .find(|e| e.action.starts_with(action))
                .unwrap_or_else(|| panic!("{label}: no {action} entry in {entries:#?}"))
        };
        let recorded = find("poison");
        assert_eq!(recorded.action, "poison\u{FFFD}action\u{FFFD}[0m");
        assert_eq!(recorded.source, "plugin");
        let metadata = &recorded.metadata.0;
        assert!(
            metadata["va\u{FFFD}lue\u{FFFD}"]
                .as_str()
                .is_some_and(|v| v.starts_with("bad\u{FFFD}byte")),
            "{label}: {metadata}"
        );
        assert_eq!(
            metadata["nested"]["k\u{FFFD}ey"],
            json!(["\u{FFFD}", "x\u{FFFD}y", 1, true, null])
        );
        assert_eq!(metadata["plain"], "kept as is");
        let denied = find("secret_denied");
        assert_eq!(denied.metadata.0["secret"], "tok\u{FFFD}en\u{FFFD}[1m");
        let command = find("command");
        assert_eq!(command.status, "declined");
        assert!(
            command
                .error
                .as_deref()
                .is_some_and(|e| e.contains("bad\u{FFFD}byte")),
            "{label}: {command:?}"
        );

        // Nothing was refused, nothing is retried forever.
        wait_for(&format!("{label}: nothing pending"), || async {
            host.audit.pending() == 0
        })
        .await;
        assert_eq!(host.audit.rejected(), 0, "{label}");
        assert!(store.rejected_audit().await.unwrap().is_empty(), "{label}");
        assert_eq!(host.audit.health(), AuditHealth::Ok, "{label}");

        // Shutdown right after a burst (more poison among it) loses nothing.
        let before = store.count_audit().await.unwrap();
        for i in 0..300 {
            host.audit.record(AuditEntry {
                correlation_id: Some(format!("burst-{i}")),
                error: Some(format!("burst\0{i}\u{1b}")),
                metadata: Json(json!({ format!("k\0{i}"): "v\0" })),
                ..AuditEntry::new("burst", "ok")
            });
        }
        host.audit.shutdown(Duration::from_secs(60)).await;
        assert_eq!(
            store.count_audit().await.unwrap(),
            before + 300,
            "{label}: every queued entry is written at shutdown"
        );
        assert_eq!(host.audit.overflow(), 0);
        assert_eq!(host.audit.pending(), 0);
        let burst = entries_of(store, "burst-299").await;
        assert_eq!(burst.len(), 1);
        assert_eq!(burst[0].error.as_deref(), Some("burst\u{FFFD}299\u{FFFD}"));
        drop(host.services);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_never_carry_control_characters_but_newline_and_tab() {
    let t = common::stores::sqlite().await;
    let host = host(&t.store, &Alerter::log_only()).await;
    let reply = common::ask(&host.dispatcher, "/poison reply").await;
    assert_clean("the reply", &reply);
    assert_eq!(
        reply,
        "reply: bad\u{FFFD}byte \u{FFFD}[2J\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}31m\nnext line\tafter tab"
    );
    host.audit.shutdown(Duration::from_secs(30)).await;
}

/// One batch of 40, entries 7 and 30 refused by the database even after
/// sanitising (a negative duration breaks a constraint of the schema).
fn batch_with_bad_rows() -> Vec<AuditEntry> {
    (0..40)
        .map(|i| {
            let bad = i == 7 || i == 30;
            AuditEntry {
                correlation_id: Some(if bad {
                    format!("bad-{i}")
                } else {
                    format!("good-{i}")
                }),
                duration_ms: Some(if bad { -1.0 } else { 1.0 }),
                error: Some(format!("entry\0{i}")),
                ..AuditEntry::new("bisect", "ok")
            }
        })
        .collect()
}

// One thread: the 40 entries are queued before the writer task first runs,
// so they reach the database as one batch that must be split.
#[tokio::test(flavor = "current_thread")]
async fn rows_the_database_refuses_are_set_aside_counted_and_alerted_while_the_rest_is_written() {
    for t in common::stores::all().await {
        let label = t.label;
        let store = &t.store;
        let (alerter, mut inbox) = common::alerts::alerter_with_inbox();
        let writer = writer(store, &alerter, 1_000, Duration::from_secs(60));
        let metric_before = metrics().audit_rejected.get();
        let mut entries = batch_with_bad_rows();
        let mut bad = vec!["bad-7", "bad-30"];
        if let Store::Postgres(_) = store {
            // Out of PostgreSQL's timestamp range: SQLSTATE 22008, a data
            // exception no sanitising fixes. SQLite stores it as text.
            entries.insert(
                20,
                AuditEntry {
                    created_at: chrono::DateTime::<Utc>::MIN_UTC,
                    correlation_id: Some("bad-ancient".into()),
                    ..AuditEntry::new("bisect", "ok")
                },
            );
            bad.push("bad-ancient");
        }
        let total = entries.len() as u64;
        for entry in entries {
            writer.record(entry);
        }
        wait_for(
            &format!("{label}: every entry written or set aside"),
            || async { writer.written() + writer.rejected() == total },
        )
        .await;
        assert_eq!(writer.rejected(), bad.len() as u64, "{label}");
        assert_eq!(writer.written(), total - bad.len() as u64, "{label}");
        assert_eq!(store.count_audit().await.unwrap() as u64, writer.written());
        for i in (0..40).filter(|i| *i != 7 && *i != 30) {
            assert_eq!(
                entries_of(store, &format!("good-{i}")).await.len(),
                1,
                "{label}: good-{i}"
            );
        }
        for id in ["bad-7", "bad-30"] {
            assert!(entries_of(store, id).await.is_empty());
        }

        // Each bad row is kept for an operator, whole and readable.
        let rejected = store.rejected_audit().await.unwrap();
        assert_eq!(rejected.len(), bad.len(), "{label}: {rejected:#?}");
        for id in &bad {
            let row = rejected
                .iter()
                .find(|r| r.entry.contains(&format!("\"{id}\"")))
                .unwrap_or_else(|| panic!("{label}: {id} not set aside: {rejected:#?}"));
            let entry: Value = serde_json::from_str(&row.entry).unwrap();
            assert_eq!(entry["entry_id"], row.entry_id.to_string());
            assert_eq!(entry["action"], "bisect");
            assert!(!row.error.is_empty());
            if id.starts_with("bad-") && *id != "bad-ancient" {
                assert!(row.error.contains("duration"), "{label}: {}", row.error);
                assert_eq!(entry["duration_ms"], -1.0);
                assert_eq!(entry["error"], format!("entry\u{FFFD}{}", &id[4..]));
            }
        }
        assert!(
            metrics().audit_rejected.get() >= metric_before + bad.len() as u64,
            "wasmbot_audit_rejected_total counts them"
        );
        let alert = alert_containing(&mut inbox, "refused an audit entry").await;
        assert!(alert.contains("audit_rejected"), "{alert}");
        assert_eq!(writer.health(), AuditHealth::Ok, "{label}");
        writer.shutdown(Duration::from_secs(30)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_inserted_twice_is_written_once() {
    for t in common::stores::all().await {
        let store = &t.store;
        let batch: Vec<KeyedAuditEntry> = (0..10)
            .map(|i| {
                KeyedAuditEntry::new(AuditEntry {
                    correlation_id: Some(format!("twice-{i}")),
                    ..AuditEntry::new("twice", "ok")
                })
            })
            .collect();
        assert_eq!(store.insert_audit_keyed(&batch).await.unwrap(), 10);
        // The answer was lost; the writer sends the same batch again.
        assert_eq!(
            store.insert_audit_keyed(&batch).await.unwrap(),
            0,
            "{}",
            t.label
        );
        // Half old, half new.
        let mut mixed = batch[5..].to_vec();
        mixed.extend((10..15).map(|i| {
            KeyedAuditEntry::new(AuditEntry {
                correlation_id: Some(format!("twice-{i}")),
                ..AuditEntry::new("twice", "ok")
            })
        }));
        assert_eq!(
            store.insert_audit_keyed(&mixed).await.unwrap(),
            5,
            "{}",
            t.label
        );
        assert_eq!(store.count_audit().await.unwrap(), 15, "{}", t.label);
        for i in 0..15 {
            assert_eq!(entries_of(store, &format!("twice-{i}")).await.len(), 1);
        }
        // A data error is told apart from an outage.
        let bad = KeyedAuditEntry::new(AuditEntry {
            duration_ms: Some(-5.0),
            ..AuditEntry::new("twice", "ok")
        });
        let error = store.insert_audit_keyed(&[bad]).await.unwrap_err();
        assert!(error.is_data_error(), "{}: {error}", t.label);
    }
}

/// Holds the audit table's write lock on a connection of its own until dropped.
enum TableLock {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl TableLock {
    async fn take(store: &Store) -> Self {
        match store {
            Store::Sqlite(pool) => {
                let mut connection = pool.acquire().await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut *connection)
                    .await
                    .unwrap();
                TableLock::Sqlite(connection)
            }
            Store::Postgres(pool) => {
                let mut connection = pool.acquire().await.unwrap();
                sqlx::query("BEGIN")
                    .execute(&mut *connection)
                    .await
                    .unwrap();
                sqlx::query("LOCK TABLE audit_trail IN EXCLUSIVE MODE")
                    .execute(&mut *connection)
                    .await
                    .unwrap();
                TableLock::Postgres(connection)
            }
        }
    }

    async fn release(self) {
        match self {
            TableLock::Sqlite(mut connection) => {
                sqlx::query("COMMIT")
                    .execute(&mut *connection)
                    .await
                    .unwrap();
            }
            TableLock::Postgres(mut connection) => {
                sqlx::query("COMMIT")
                    .execute(&mut *connection)
                    .await
                    .unwrap();
            }
        }
    }
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `/readyz` of an ops server over `services`, and a stop for it.
async fn ops_server(services: &HostServices) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = ops_router(OpsState {
        services: Arc::new(services.clone()),
        registry: None,
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    let base = format!("http://{addr}");
    wait_for("the ops server answers", || async {
        reqwest::get(format!("{base}/healthz")).await.is_ok()
    })
    .await;
    (base, stop)
}

/// The `audit` line of a health check.
async fn audit_line(checker: &HealthChecker) -> wasmbot::infra::health::ServiceHealth {
    checker
        .check_all()
        .await
        .into_iter()
        .find(|s| s.name == "audit")
        .expect("an audit line")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_database_is_retried_alerted_as_stalled_and_each_entry_written_once() {
    for t in common::stores::all().await {
        let label = t.label;
        let store = &t.store;
        let (alerter, mut inbox) = common::alerts::alerter_with_inbox();
        let audit = Arc::new(writer(store, &alerter, 1_000, Duration::from_secs(1)));
        let services = HostServices {
            store: Some(store.clone()),
            audit: Some(audit.clone()),
            alerter: alerter.clone(),
            ..HostServices::default()
        };
        let checker = health_checker(
            &Config::from_lookup(|_| None).unwrap(),
            Some(store.clone()),
            None,
        )
        .with_audit(Some(audit.clone()));
        let (base, stop) = ops_server(&services).await;
        assert_eq!(get(&format!("{base}/readyz")).await.0, 200, "{label}");
        let line = audit_line(&checker).await;
        assert_eq!(line.status, Status::Healthy, "{label}: {line:?}");

        // Inserts now wait on the lock until they time out: transient, so
        // the batch stays on the retry path.
        let lock = TableLock::take(store).await;
        for i in 0..10 {
            audit.record(AuditEntry {
                correlation_id: Some(format!("locked-{i}")),
                ..AuditEntry::new("locked", "ok")
            });
        }
        wait_for(&format!("{label}: the writer is stalled"), || async {
            matches!(audit.health(), AuditHealth::Stalled { .. })
        })
        .await;
        let alert = alert_containing(&mut inbox, "audit trail is stalled").await;
        assert!(alert.contains("10 entries waiting"), "{alert}");
        let (status, body) = get(&format!("{base}/readyz")).await;
        assert_eq!(status, 503, "{label}: {body}");
        assert!(body.contains("audit: stalled"), "{label}: {body}");
        let line = audit_line(&checker).await;
        assert_eq!(line.status, Status::Unhealthy, "{label}: {line:?}");
        assert!(
            line.detail
                .as_deref()
                .is_some_and(|d| d.starts_with("stalled")),
            "{label}: {line:?}"
        );
        // At least one attempt has timed out by now (the stall window is a
        // second, an attempt waits five); on PostgreSQL that attempt is
        // still queued behind the lock and commits when it is released.
        wait_for(&format!("{label}: an attempt failed"), || async {
            matches!(
                audit.health(),
                AuditHealth::Stalled {
                    last_error: Some(_),
                    ..
                }
            )
        })
        .await;
        assert_eq!(audit.rejected(), 0, "{label}: a lock is not a data error");

        lock.release().await;
        wait_for(&format!("{label}: the entries land"), || async {
            audit.pending() == 0
        })
        .await;
        assert_eq!(
            store.count_audit().await.unwrap(),
            10,
            "{label}: each entry written once, although an attempt timed out"
        );
        assert_eq!(audit.rejected(), 0, "{label}");
        assert!(store.rejected_audit().await.unwrap().is_empty());
        for i in 0..10 {
            assert_eq!(entries_of(store, &format!("locked-{i}")).await.len(), 1);
        }
        wait_for(&format!("{label}: healthy again"), || async {
            audit.health() == AuditHealth::Ok
        })
        .await;
        alert_containing(&mut inbox, "being written again").await;
        let (status, body) = get(&format!("{base}/readyz")).await;
        assert_eq!((status, body.as_str()), (200, "ready\n"), "{label}");
        let _ = stop.send(());
        audit.shutdown(Duration::from_secs(30)).await;
    }
}

/// A TCP proxy to PostgreSQL that can swallow the server's answers while
/// still forwarding what the client sends: a statement runs and commits,
/// and the client never hears of it (a timeout after a successful write).
struct MuteProxy {
    addr: std::net::SocketAddr,
    muted: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl MuteProxy {
    async fn start(target: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let muted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        {
            let muted = muted.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let muted = muted.clone();
                    let task = tokio::spawn(async move {
                        let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                            return;
                        };
                        let (mut client_read, mut client_write) = inbound.into_split();
                        let (mut server_read, mut server_write) = outbound.into_split();
                        let upstream = tokio::io::copy(&mut client_read, &mut server_write);
                        let downstream = async {
                            let mut buffer = vec![0u8; 16 * 1024];
                            loop {
                                let n = match server_read.read(&mut buffer).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => n,
                                };
                                if muted.load(Ordering::SeqCst) {
                                    continue;
                                }
                                if client_write.write_all(&buffer[..n]).await.is_err() {
                                    return;
                                }
                            }
                        };
                        tokio::select! {
                            _ = upstream => {}
                            _ = downstream => {}
                        }
                    });
                    connections.lock().unwrap().push(task);
                }
            });
        }
        Self {
            addr,
            muted,
            connections,
        }
    }

    fn mute(&self) {
        self.muted.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Answers flow again; connections that lost answers are cut, since
    /// their protocol state is gone.
    fn heal(&self) {
        self.muted.store(false, std::sync::atomic::Ordering::SeqCst);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

// One thread: the ten entries reach the database as one batch.
#[tokio::test(flavor = "current_thread")]
async fn a_batch_written_although_its_answer_was_lost_is_not_written_twice() {
    let Some(url) = common::stores::postgres_url() else {
        return;
    };
    let direct = common::stores::postgres_at(&url).await;
    let target = {
        let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        tokio::net::lookup_host((options.get_host(), options.get_port()))
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let proxy = MuteProxy::start(target).await;
    let mut proxied_url = url::Url::parse(&url).unwrap();
    proxied_url.set_host(Some("127.0.0.1")).unwrap();
    proxied_url.set_port(Some(proxy.addr.port())).unwrap();
    // One connection, never pinged before it is handed out, so that once
    // the batch's statement is prepared on it, a batch of the same shape is
    // sent without waiting for any answer first.
    let options: sqlx::postgres::PgConnectOptions = proxied_url
        .as_str()
        .parse::<sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .options([("search_path", direct.schema.as_deref().unwrap())]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(2))
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .unwrap();
    let through_proxy = Store::Postgres(pool);
    let audit = writer(
        &through_proxy,
        &Alerter::log_only(),
        1_000,
        Duration::from_secs(60),
    );

    let batch = |name: &str| {
        for i in 0..10 {
            audit.record(AuditEntry {
                correlation_id: Some(format!("{name}-{i}")),
                ..AuditEntry::new(name, "ok")
            });
        }
    };
    batch("warm");
    wait_for("the first batch is written", || async {
        audit.written() == 10
    })
    .await;

    proxy.mute();
    batch("lost");
    // The insert ran and committed; the writer only sees its time run out.
    wait_for("the batch is in the database", || async {
        direct.store.count_audit().await.unwrap() == 20
    })
    .await;
    wait_for("the writer's attempt timed out", || async {
        audit.last_error().is_some_and(|e| e.contains("timed out"))
    })
    .await;
    assert_eq!(audit.written(), 10, "no answer came");

    proxy.heal();
    wait_for("the retry is done", || async { audit.pending() == 0 }).await;
    assert_eq!(
        direct.store.count_audit().await.unwrap(),
        20,
        "the retried batch is not written twice"
    );
    assert_eq!(audit.rejected(), 0, "a retried entry is not a refused one");
    assert_eq!(audit.written(), 20);
    for i in 0..10 {
        assert_eq!(
            entries_of(&direct.store, &format!("lost-{i}")).await.len(),
            1
        );
    }
    audit.shutdown(Duration::from_secs(30)).await;
}

// One thread: the records fill the queue before the writer can drain it.
#[tokio::test(flavor = "current_thread")]
async fn an_overflowing_queue_is_alerted_and_shown_in_readyz_and_health() {
    let t = common::stores::sqlite().await;
    let (alerter, mut inbox) = common::alerts::alerter_with_inbox();
    let audit = Arc::new(writer(&t.store, &alerter, 10, Duration::from_secs(600)));
    for i in 0..30 {
        audit.record(AuditEntry {
            correlation_id: Some(format!("flood-{i}")),
            ..AuditEntry::new("flood", "ok")
        });
    }
    assert_eq!(audit.overflow(), 20);
    assert_eq!(audit.health(), AuditHealth::Overflowing { dropped: 20 });
    let services = HostServices {
        store: Some(t.store.clone()),
        audit: Some(audit.clone()),
        ..HostServices::default()
    };
    let (base, stop) = ops_server(&services).await;
    let (status, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("audit: overflowing: the queue is full, 20 entries dropped"),
        "{body}"
    );
    let checker = health_checker(
        &Config::from_lookup(|_| None).unwrap(),
        Some(t.store.clone()),
        None,
    )
    .with_audit(Some(audit.clone()));
    let line = audit_line(&checker).await;
    assert_eq!(line.status, Status::Unhealthy);
    assert!(
        line.detail
            .as_deref()
            .is_some_and(|d| d.starts_with("overflowing")),
        "{line:?}"
    );
    alert_containing(&mut inbox, "overflowing").await;
    let _ = stop.send(());
    audit.shutdown(Duration::from_secs(30)).await;
    assert_eq!(t.store.count_audit().await.unwrap(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_cannot_crowd_the_hosts_entries_out_of_the_queue() {
    let t = common::stores::sqlite().await;
    let (alerter, _inbox) = common::alerts::alerter_with_inbox();
    let audit = writer(&t.store, &alerter, 8, Duration::from_secs(600));
    // Nothing is written while the table is locked: every entry stays unwritten.
    let lock = TableLock::take(&t.store).await;
    let accepted = (0..8)
        .filter(|i| {
            audit.record_from_plugin(AuditEntry {
                correlation_id: Some(format!("plugin-{i}")),
                source: "plugin".into(),
                ..AuditEntry::new("flood", "ok")
            })
        })
        .count();
    assert_eq!(accepted, 6, "the plugins' share is 75% of 8");
    for i in 0..2 {
        audit.record(AuditEntry {
            correlation_id: Some(format!("host-{i}")),
            ..AuditEntry::new("command", "ok")
        });
    }
    assert_eq!(audit.overflow(), 0, "the host's entries found room");
    lock.release().await;
    audit.shutdown(Duration::from_secs(30)).await;
    assert_eq!(t.store.count_audit().await.unwrap(), 8);
    for i in 0..2 {
        assert_eq!(entries_of(&t.store, &format!("host-{i}")).await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_entries_hold_at_most_32_mib_of_metadata_in_the_queue() {
    let t = common::stores::sqlite().await;
    let (alerter, _inbox) = common::alerts::alerter_with_inbox();
    let audit = writer(&t.store, &alerter, 10_000, Duration::from_secs(600));
    let lock = TableLock::take(&t.store).await;
    // About 16 KiB of JSON text, in strings short enough to be kept whole.
    let text = "x".repeat(4000);
    let metadata = serde_json::json!({ "a": text, "b": text, "c": text, "d": text });
    let size = metadata.to_string().len();
    let limit = wasmbot::infra::audit::PLUGIN_QUEUE_BYTES;
    let flood = || {
        audit.record_from_plugin(AuditEntry {
            source: "plugin".into(),
            metadata: sqlx::types::Json(metadata.clone()),
            ..AuditEntry::new("flood", "ok")
        })
    };
    let mut accepted = (0..4_000).filter(|_| flood()).count();
    assert!(accepted < 4_000, "refusals happened: {accepted} accepted");
    // The queue is full to within one entry, never past its bytes. The
    // writer (stuck on the lock) may have taken up to a batch out of it
    // after the flood, at any moment: fill it up again until refused and
    // look at once; the writer takes entries seconds apart, so one of a few
    // tries sees the queue exactly as the refusal left it.
    let mut seen = Vec::new();
    let full = (0..5).any(|_| {
        while flood() {
            accepted += 1;
        }
        let queued = audit.plugin_queue_bytes();
        seen.push(queued);
        queued > limit - size
    });
    assert!(full, "queued bytes after each refusal: {seen:?} of {limit}");
    assert!(
        seen.iter().all(|queued| *queued <= limit),
        "{seen:?} of {limit}"
    );
    audit.record(AuditEntry::new("command", "ok"));
    assert_eq!(audit.overflow(), 0);
    lock.release().await;
    audit.shutdown(Duration::from_secs(60)).await;
    assert_eq!(t.store.count_audit().await.unwrap(), accepted as i64 + 1);
    assert_eq!(audit.plugin_queue_bytes(), 0);
}

fn aged(action: &str, age_days: i64) -> AuditEntry {
    AuditEntry {
        created_at: Utc::now() - chrono::Duration::days(age_days),
        correlation_id: Some(format!("aged-{action}")),
        ..AuditEntry::new(action, "ok")
    }
}

async fn raw(store: &Store, sql: &str) -> Result<u64, sqlx::Error> {
    match store {
        Store::Sqlite(pool) => sqlx::query(sql)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
        Store::Postgres(pool) => sqlx::query(sql)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
    }
}

/// Runs `statements` in one transaction on one connection; the first error.
async fn raw_transaction(store: &Store, statements: &[&str]) -> Result<(), sqlx::Error> {
    match store {
        Store::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            for sql in statements {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            tx.commit().await
        }
        Store::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            for sql in statements {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            tx.commit().await
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_refuses_a_cleanup_newer_than_the_retention_whoever_asks() {
    for t in common::stores::all().await {
        let label = t.label;
        let store = &t.store;
        store
            .insert_audit(&[
                aged("d40", 40),
                aged("d31", 31),
                aged("d20", 20),
                aged("d0", 0),
            ])
            .await
            .unwrap();
        assert_eq!(store.audit_retention_days().await.unwrap(), 30);

        // Through the store: a cutoff of one day is refused, nothing goes.
        let error = store
            .cleanup_audit(Utc::now() - chrono::Duration::days(1))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("refused"), "{label}: {error}");
        assert_eq!(store.count_audit().await.unwrap(), 4, "{label}");

        match store {
            Store::Postgres(_) => {
                // Calling the function directly, one second past the limit.
                let error = raw(
                    store,
                    "SELECT audit_trail_cleanup(now() - interval '30 days' + interval '1 second')",
                )
                .await
                .unwrap_err()
                .to_string();
                assert!(error.contains("refused"), "{error}");
                // Opening the trigger's gate by hand, for the transaction or
                // the session, reaches no row younger than the retention.
                for scope in ["true", "false"] {
                    let set = format!(
                        "SELECT set_config('wasmbot.audit_cutoff', '2999-01-01 00:00:00+00', {scope})"
                    );
                    let error = raw_transaction(store, &[&set, "DELETE FROM audit_trail"])
                        .await
                        .unwrap_err()
                        .to_string();
                    assert!(error.contains("append-only"), "{scope}: {error}");
                }
                // A temporary table cannot stand in for the retention.
                let error = raw_transaction(
                    store,
                    &[
                        "CREATE TEMP TABLE audit_retention (id BOOLEAN, days INTEGER)",
                        "INSERT INTO audit_retention VALUES (TRUE, 1)",
                        "SELECT set_config('wasmbot.audit_cutoff', '2999-01-01 00:00:00+00', true)",
                        "DELETE FROM audit_trail WHERE action = 'd20'",
                    ],
                )
                .await
                .unwrap_err()
                .to_string();
                assert!(error.contains("append-only"), "{error}");
            }
            Store::Sqlite(_) => {
                let error = raw(
                    store,
                    "UPDATE audit_retention_gate SET cutoff = '2999-01-01T00:00:00+00:00'",
                )
                .await
                .unwrap_err()
                .to_string();
                assert!(error.contains("refused"), "{error}");
                // A gate opened within the retention still protects newer rows.
                let open = format!(
                    "UPDATE audit_retention_gate SET cutoff = '{}'",
                    (Utc::now() - chrono::Duration::days(35)).to_rfc3339()
                );
                let error = raw_transaction(store, &[&open, "DELETE FROM audit_trail"])
                    .await
                    .unwrap_err()
                    .to_string();
                assert!(error.contains("append-only"), "{error}");
            }
        }
        assert_eq!(store.count_audit().await.unwrap(), 4, "{label}");

        // Within the retention it works, and the database's retention moves
        // only when set.
        assert_eq!(
            store
                .cleanup_audit(Utc::now() - chrono::Duration::days(30))
                .await
                .unwrap(),
            2,
            "{label}"
        );
        assert_eq!(store.set_audit_retention_days(10).await.unwrap(), Some(30));
        assert_eq!(store.set_audit_retention_days(10).await.unwrap(), None);
        assert_eq!(
            store
                .cleanup_audit(Utc::now() - chrono::Duration::days(10))
                .await
                .unwrap(),
            1,
            "{label}"
        );
        let kept = entries_of(store, "aged-d0").await;
        assert_eq!(kept.len(), 1, "{label}");
        assert_eq!(store.count_audit().await.unwrap(), 1, "{label}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_gives_the_database_its_retention() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("w.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store
        .insert_audit(&[aged("d12", 12), aged("d8", 8), aged("d0", 0)])
        .await
        .unwrap();
    store.close().await;
    let run = |days: &'static str| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_wasmbot"))
                .args(["worker", "--once", "audit-cleanup"])
                .env_clear()
                .env("DATABASE_URL", &url)
                .env("AUDIT_RETENTION_DAYS", days)
                .output()
                .unwrap()
        })
    };
    let output = run("10").await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "audit-cleanup: deleted 1 entries older than 10 days"
    );
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.audit_retention_days().await.unwrap(), 10);
    assert_eq!(store.count_audit().await.unwrap(), 2);
}

/// The application role of docs/operations.md, in one schema of the test
/// database: it may write the trail and run the cleanup, never delete a row
/// itself or shorten the retention.
#[tokio::test(flavor = "multi_thread")]
async fn the_application_role_may_append_and_run_the_cleanup_but_not_delete_or_shorten_the_retention()
 {
    let Some(url) = common::stores::postgres_url() else {
        return;
    };
    let t = common::stores::postgres_at(&url).await;
    let store = &t.store;
    let schema = t.schema.clone().unwrap();
    store
        .insert_audit(&[aged("d40", 40), aged("d0", 0)])
        .await
        .unwrap();
    // Roles belong to the cluster: a name of its own, dropped at the end.
    let role = format!("wasmbot_app_{}", uuid::Uuid::new_v4().simple());
    raw(store, &format!("CREATE ROLE {role} NOLOGIN"))
        .await
        .unwrap();
    // As the role, in a transaction of its own (an error ends it).
    let as_role = |sql: String| {
        let role = role.clone();
        async move { raw_transaction(store, &[&format!("SET LOCAL ROLE {role}"), &sql]).await }
    };
    let denied = |result: Result<(), sqlx::Error>, what: &str| {
        let error = result.expect_err(what).to_string();
        assert!(error.contains("permission denied"), "{what}: {error}");
    };

    for grant in [
        format!("GRANT USAGE ON SCHEMA {schema} TO {role}"),
        format!("GRANT SELECT, INSERT ON audit_trail, audit_rejected TO {role}"),
        format!("GRANT USAGE ON SEQUENCE audit_trail_id_seq, audit_rejected_id_seq TO {role}"),
        format!("GRANT SELECT ON audit_retention TO {role}"),
    ] {
        raw(store, &grant).await.unwrap();
    }
    // EXECUTE is not PUBLIC's: only a role it is granted to may clean up.
    denied(
        as_role("SELECT audit_trail_cleanup(now() - interval '31 days')".into()).await,
        "cleanup without EXECUTE",
    );
    raw(
        store,
        &format!("GRANT EXECUTE ON FUNCTION audit_trail_cleanup(timestamptz) TO {role}"),
    )
    .await
    .unwrap();

    as_role(
        "INSERT INTO audit_trail (entry_id, created_at, action, source, status) \
         VALUES ('00000000-0000-4000-8000-000000000001', now(), 'by-role', 'host', 'ok') \
         ON CONFLICT (entry_id) DO NOTHING"
            .into(),
    )
    .await
    .expect("the role appends");
    denied(
        as_role("DELETE FROM audit_trail WHERE action = 'd40'".into()).await,
        "delete",
    );
    denied(
        as_role("UPDATE audit_retention SET days = 1".into()).await,
        "shorten the retention",
    );
    denied(as_role("TRUNCATE audit_trail".into()).await, "truncate");
    let error = as_role("SELECT audit_trail_cleanup(now() - interval '1 day')".into())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("refused"), "{error}");
    as_role("SELECT audit_trail_cleanup(now() - interval '31 days')".into())
        .await
        .expect("the role runs the cleanup within the retention");
    assert!(entries_of(store, "aged-d40").await.is_empty());
    assert_eq!(entries_of(store, "aged-d0").await.len(), 1);
    assert_eq!(store.count_audit().await.unwrap(), 2);

    raw(store, &format!("DROP OWNED BY {role}")).await.unwrap();
    raw(store, &format!("DROP ROLE {role}")).await.unwrap();
}
