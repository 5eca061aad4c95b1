//! Storage quotas per plugin: `state` keys and bytes, held in the database
//! on both backends, across a restart and between replicas.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{ask, plugins_dir};
use serde_json::json;
use wasmbot::chat::Dispatcher;
use wasmbot::infra::services::HostServices;
use wasmbot::infra::store::{StateQuota, StateUsage, Store};

#[tokio::test(flavor = "multi_thread")]
async fn the_store_holds_a_plugin_to_its_keys_and_bytes() {
    for t in common::stores::all().await {
        let (store, label) = (&t.store, t.label);
        let quota = StateQuota {
            keys: 3,
            bytes: 100,
        };
        for key in ["a1", "a2", "a3"] {
            // Each counts its key and its JSON text: 2 + 1 bytes.
            let stored = store.set_state_within("p", key, &json!(1), quota).await;
            assert!(stored.unwrap().is_ok(), "{label}: {key}");
        }
        let over = store
            .set_state_within("p", "a4", &json!(1), quota)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(over.would_be, StateUsage { keys: 4, bytes: 12 }, "{label}");
        // Replacing a value counts only the difference; too big is refused.
        let big = json!("x".repeat(95));
        assert!(
            store
                .set_state_within("p", "a1", &big, quota)
                .await
                .unwrap()
                .is_err(),
            "{label}"
        );
        assert_eq!(store.get_state("p", "a1").await.unwrap(), Some(json!(1)));
        // Deleting makes room; another plugin has a quota of its own.
        assert!(store.delete_state("p", "a2").await.unwrap());
        let stored = store.set_state_within("p", "a4", &json!(1), quota).await;
        assert!(stored.unwrap().is_ok(), "{label}");
        let stored = store.set_state_within("q", "a1", &json!(1), quota).await;
        assert!(stored.unwrap().is_ok(), "{label}");
        assert_eq!(
            store.state_usage("p").await.unwrap(),
            StateUsage { keys: 3, bytes: 9 },
            "{label}"
        );
        assert_eq!(store.list_state("p", "", 100).await.unwrap().len(), 3);
    }
}

/// The flood plugin with a quota of 10 state keys.
fn flood_with_ten_keys() -> tempfile::TempDir {
    let dir = plugins_dir(&["flood"]);
    common::set_limits(dir.path(), "flood", "state_keys = 10");
    dir
}

async fn flood_host(dir: &Path, store: &Store) -> Dispatcher {
    let services = HostServices {
        store: Some(store.clone()),
        ..HostServices::default()
    };
    Dispatcher::new(common::registry(dir).await, None).with_services(services)
}

/// `wasmbot_plugin_quota_refusals_total{plugin, quota}`.
fn over_quota(plugin: &str, quota: &str) -> u64 {
    common::counter(
        "wasmbot_plugin_quota_refusals_total",
        &[("plugin", plugin), ("quota", quota)],
    )
}

/// The number after "wrote" in the flood plugin's answer.
fn written(reply: &str) -> usize {
    reply
        .strip_prefix("wrote ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected reply {reply:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_over_its_state_quota_gets_the_typed_error_also_after_a_restart() {
    for t in common::stores::all().await {
        let label = t.label;
        let dir = flood_with_ten_keys();
        let dispatcher = flood_host(dir.path(), &t.store).await;
        let refused_before = over_quota("flood", "state");
        assert_eq!(
            ask(&dispatcher, "/flood state 15").await,
            "wrote 10 refused 5: quota exceeded: this plugin may keep 10 keys and 10240 KiB of state; the write would make 11 keys and 1 KiB (delete some, or the operator raises the quota)",
            "{label}"
        );
        // At least these five: the replicas test below shares the counter.
        assert!(
            over_quota("flood", "state") >= refused_before + 5,
            "{label}"
        );
        // A new host on the same database: the usage is the database's.
        drop(dispatcher);
        let restarted = flood_host(dir.path(), &t.store).await;
        let reply = ask(&restarted, "/flood state 11").await;
        assert!(
            reply.starts_with("wrote 10 refused 1: quota exceeded"),
            "{label}: {reply}"
        );
        assert_eq!(
            t.store.state_usage("flood").await.unwrap().keys,
            10,
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_sharing_postgres_keep_one_quota_between_them() {
    let Some(url) = common::stores::postgres_url() else {
        return;
    };
    let first = common::stores::postgres_at(&url).await;
    let schema = first.schema.clone().expect("a schema");
    let second = common::stores::postgres_in_schema(&url, &schema).await;
    let dir = flood_with_ten_keys();
    let a = Arc::new(flood_host(dir.path(), &first.store).await);
    let b = Arc::new(flood_host(dir.path(), &second).await);
    // Both write at once, each 8 keys of its own: 16 wanted, room for 10.
    let (from_a, from_b) = tokio::join!(
        tokio::spawn({
            let a = a.clone();
            async move { ask(&a, "/flood state 8 a").await }
        }),
        tokio::spawn({
            let b = b.clone();
            async move { ask(&b, "/flood state 8 b").await }
        }),
    );
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    assert_eq!(
        written(&from_a) + written(&from_b),
        10,
        "{from_a} / {from_b}"
    );
    assert_eq!(
        first
            .store
            .list_state("flood", "", 100)
            .await
            .unwrap()
            .len(),
        10
    );
    assert_eq!(first.store.state_usage("flood").await.unwrap().keys, 10);
}
