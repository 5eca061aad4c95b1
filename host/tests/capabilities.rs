//! State, secrets and audit through the real runtime: plugins built with the
//! SDK, calling the host over WIT, against real databases.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{GREETING, ask, plugins_dir};
use wasmbot::chat::Dispatcher;
use wasmbot::infra::audit::AuditWriter;
use wasmbot::infra::services::HostServices;
use wasmbot::infra::store::Store;
use wasmbot::infra::vault::Vault;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct TestHost {
    dispatcher: Dispatcher,
    audit: Arc<AuditWriter>,
    _plugins: tempfile::TempDir,
}

async fn host(store: Store, plugins: tempfile::TempDir) -> TestHost {
    let audit = Arc::new(AuditWriter::start(store.clone(), 10_000));
    let services = HostServices {
        store: Some(store),
        vault: Some(Arc::new(Vault::from_hex("ENCRYPTION_KEY", KEY).unwrap())),
        audit: Some(audit.clone()),
        llm: None,
        alerter: Default::default(),
        health: None,
        ..HostServices::default()
    };
    let registry = common::registry(plugins.path()).await;
    assert!(
        registry.snapshot().errors().is_empty(),
        "{:?}",
        registry.snapshot().errors()
    );
    TestHost {
        dispatcher: Dispatcher::new(registry, None).with_services(services),
        audit,
        _plugins: plugins,
    }
}

/// The keeper plugin a second time, as another plugin with other commands.
fn install_second_keeper(dir: &std::path::Path) {
    std::fs::copy(dir.join("keeper.wasm"), dir.join("keeper2.wasm")).unwrap();
    let manifest = std::fs::read_to_string(dir.join("keeper.toml")).unwrap();
    let manifest = manifest
        .replacen("name = \"keeper\"", "name = \"keeper2\"", 1)
        .replace("name = \"put\"", "name = \"put2\"")
        .replace("name = \"fetch\"", "name = \"fetch2\"")
        .replace("name = \"keys\"", "name = \"keys2\"")
        .replace("name = \"drop\"", "name = \"drop2\"");
    std::fs::write(dir.join("keeper2.toml"), manifest).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_plugin_never_sees_another_plugins_state() {
    for t in common::stores::all().await {
        let dir = plugins_dir(&["keeper"]);
        install_second_keeper(dir.path());
        let host = host(t.store.clone(), dir).await;
        let d = &host.dispatcher;
        assert_eq!(ask(d, r#"/put greeting {"text":"from A"}"#).await, "stored");
        assert_eq!(ask(d, "/fetch2 greeting").await, "none", "{}", t.label);
        assert_eq!(ask(d, "/put2 greeting 2").await, "stored");
        assert_eq!(
            ask(d, "/fetch greeting").await,
            r#"{"text":"from A"}"#,
            "{}",
            t.label
        );
        assert_eq!(ask(d, "/fetch2 greeting").await, "2");
        assert_eq!(ask(d, "/put greetings [1]").await, "stored");
        assert_eq!(ask(d, "/keys greet").await, "greeting,greetings");
        assert_eq!(ask(d, "/keys2 greet").await, "greeting");
        assert_eq!(ask(d, "/drop greeting").await, "true");
        assert_eq!(ask(d, "/fetch greeting").await, "none");
        assert_eq!(ask(d, "/fetch2 greeting").await, "2", "{}", t.label);
        // Limits come back as typed errors, not traps.
        let long_key = "k".repeat(300);
        assert!(
            ask(d, &format!("/put {long_key} 1"))
                .await
                .starts_with("error: invalid key")
        );
        let big = format!("\"{}\"", "x".repeat(70_000));
        assert_eq!(
            ask(d, &format!("/put big {big}")).await,
            "error: value larger than 65536 bytes"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_only_as_granted_masked_in_replies_and_denials_audited() {
    for t in common::stores::all().await {
        let vault = Vault::from_hex("ENCRYPTION_KEY", KEY).unwrap();
        for (name, value) in [("github_token", "ghp_live_value_123"), ("bank_pin", "9876")] {
            t.store
                .put_credential(&vault.encrypt(name, value.as_bytes(), 1).unwrap())
                .await
                .unwrap();
        }
        let host = host(t.store.clone(), plugins_dir(&["vault", "start"])).await;
        let d = &host.dispatcher;
        let reply = d
            .handle(common::message("/reveal github_token"))
            .await
            .unwrap();
        assert_eq!(reply.text(), "secret: [redacted]", "{}", t.label);
        let denied = d.handle(common::message("/reveal bank_pin")).await.unwrap();
        assert_eq!(denied.text(), "error: this plugin may not read that secret");
        host.audit.shutdown(Duration::from_secs(5)).await;

        let read = t
            .store
            .audit_for_correlation(&reply.correlation_id)
            .await
            .unwrap();
        let actions: Vec<(&str, &str, &str)> = read
            .iter()
            .map(|e| (e.action.as_str(), e.source.as_str(), e.status.as_str()))
            .collect();
        assert_eq!(
            actions,
            vec![
                ("secret_read", "host", "ok"),
                ("secret_used", "plugin", "ok"),
                ("command", "host", "ok")
            ],
            "{}",
            t.label
        );
        let denial = t
            .store
            .audit_for_correlation(&denied.correlation_id)
            .await
            .unwrap();
        assert_eq!(denial[0].action, "secret_denied");
        assert_eq!(denial[0].status, "denied");
        assert_eq!(denial[0].plugin.as_deref(), Some("vault"));
        assert_eq!(denial[0].metadata.0["secret"], "bank_pin");
        assert_eq!(denial[0].user_id, Some(7));
        assert_eq!(denial[0].chat_id, Some(42));
        // The plugin put the value in its audit metadata: masked there too.
        let used = read.iter().find(|e| e.action == "secret_used").unwrap();
        assert_eq!(used.metadata.0["value"], "[redacted]", "{}", t.label);
        assert_eq!(used.metadata.0["name"], "github_token", "{}", t.label);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_handled_message_leaves_an_audit_entry_with_its_correlation_id() {
    for t in common::stores::all().await {
        let dir = plugins_dir(&["start", "crash", "spin"]);
        let host = host(t.store.clone(), dir).await;
        let mut ids = Vec::new();
        for text in ["/start", "/crash", "/spin"] {
            ids.push(
                host.dispatcher
                    .handle(common::message(text))
                    .await
                    .unwrap()
                    .correlation_id,
            );
        }
        host.audit.shutdown(Duration::from_secs(5)).await;
        let mut statuses = Vec::new();
        for id in &ids {
            let entries = t.store.audit_for_correlation(id).await.unwrap();
            assert_eq!(entries.len(), 1, "{}: {entries:?}", t.label);
            let entry = &entries[0];
            assert_eq!(entry.action, "command");
            assert!(entry.duration_ms.unwrap() >= 0.0);
            statuses.push((
                entry.plugin.clone().unwrap(),
                entry.status.clone(),
                entry.error.is_some(),
            ));
        }
        assert_eq!(
            statuses,
            vec![
                ("start".to_string(), "ok".to_string(), false),
                ("crash".to_string(), "error".to_string(), true),
                ("spin".to_string(), "timeout".to_string(), true),
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_flow_while_postgres_is_down_and_the_audit_lands_when_it_is_back() {
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
    let proxy = common::proxy::TcpProxy::start(target).await;
    let mut proxied_url = url::Url::parse(&url).unwrap();
    proxied_url.set_host(Some("127.0.0.1")).unwrap();
    proxied_url.set_port(Some(proxy.addr.port())).unwrap();
    let through_proxy =
        common::stores::postgres_in_schema(proxied_url.as_str(), direct.schema.as_deref().unwrap())
            .await;
    let host = host(through_proxy, plugins_dir(&["start"])).await;

    proxy.go_down();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let reply = host
            .dispatcher
            .handle(common::message("/start"))
            .await
            .unwrap();
        assert!(reply.text().starts_with(GREETING));
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "a reply waited on the database"
        );
        ids.push(reply.correlation_id);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        direct.store.count_audit().await.unwrap(),
        0,
        "nothing can have landed while down"
    );
    assert_eq!(host.audit.overflow(), 0);

    proxy.come_back();
    let deadline = Instant::now() + Duration::from_secs(20);
    while direct.store.count_audit().await.unwrap() < 20 {
        assert!(
            Instant::now() < deadline,
            "queued audit entries never landed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &ids {
        assert_eq!(
            direct.store.audit_for_correlation(id).await.unwrap().len(),
            1
        );
    }
    host.audit.shutdown(Duration::from_secs(5)).await;
}

// One thread: the writer task cannot drain the queue between the records.
#[tokio::test(flavor = "current_thread")]
async fn a_full_audit_queue_counts_the_overflow_instead_of_blocking() {
    let t = common::stores::sqlite().await;
    let writer = AuditWriter::start(t.store.clone(), 10);
    for i in 0..50 {
        writer.record(wasmbot::infra::store::AuditEntry {
            created_at: chrono::Utc::now(),
            correlation_id: Some(format!("c{i}")),
            user_id: None,
            chat_id: None,
            plugin: None,
            action: "flood".into(),
            source: "host".into(),
            model: None,
            status: "ok".into(),
            error: None,
            duration_ms: None,
            metadata: sqlx::types::Json(serde_json::json!({})),
        });
    }
    assert_eq!(writer.overflow(), 40);
    assert_eq!(writer.queued(), 10);
    writer.shutdown(Duration::from_secs(5)).await;
    let written = t.store.count_audit().await.unwrap() as u64;
    assert_eq!(
        written + writer.overflow(),
        50,
        "every entry is either written or counted"
    );
}
