//! The store on both backends: plugin state, credentials with the vault,
//! and the append-only audit trail.

mod common;

use chrono::{Duration, Utc};
use serde_json::json;
use sqlx::types::Json;
use wasmbot::infra::store::{AuditEntry, Store};
use wasmbot::infra::vault::Vault;

const KEY_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const KEY_B: &str = "f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000";

fn entry(action: &str, age_days: i64) -> AuditEntry {
    AuditEntry {
        created_at: Utc::now() - Duration::days(age_days),
        correlation_id: Some(format!("corr-{action}")),
        user_id: Some(7),
        chat_id: Some(42),
        plugin: Some("test".into()),
        action: action.into(),
        source: "host".into(),
        model: None,
        status: "ok".into(),
        error: None,
        duration_ms: Some(1.5),
        metadata: Json(json!({ "age": age_days })),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn state_is_scoped_per_plugin_on_both_backends() {
    for t in common::stores::all().await {
        let store = &t.store;
        store
            .set_state("a", "user:1", &json!({"n": 1}))
            .await
            .unwrap();
        store
            .set_state("a", "user:2", &json!([1, 2]))
            .await
            .unwrap();
        store.set_state("a", "other", &json!("x")).await.unwrap();
        store.set_state("b", "user:1", &json!("b's")).await.unwrap();
        assert_eq!(
            store.get_state("a", "user:1").await.unwrap(),
            Some(json!({"n": 1})),
            "{}",
            t.label
        );
        assert_eq!(
            store.get_state("b", "user:1").await.unwrap(),
            Some(json!("b's")),
            "{}",
            t.label
        );
        assert_eq!(
            store.get_state("c", "user:1").await.unwrap(),
            None,
            "{}",
            t.label
        );
        assert_eq!(
            store.list_state("a", "user:", 100).await.unwrap(),
            vec!["user:1", "user:2"],
            "{}",
            t.label
        );
        assert_eq!(
            store.list_state("a", "", 2).await.unwrap(),
            vec!["other", "user:1"],
            "{}",
            t.label
        );
        // A prefix with LIKE wildcards is taken literally.
        assert!(
            store
                .list_state("a", "user%", 100)
                .await
                .unwrap()
                .is_empty(),
            "{}",
            t.label
        );
        store.set_state("a", "user:1", &json!(2)).await.unwrap();
        assert_eq!(
            store.get_state("a", "user:1").await.unwrap(),
            Some(json!(2)),
            "{}",
            t.label
        );
        assert!(store.delete_state("a", "user:1").await.unwrap());
        assert!(!store.delete_state("a", "user:1").await.unwrap());
        assert_eq!(
            store.get_state("b", "user:1").await.unwrap(),
            Some(json!("b's")),
            "{}",
            t.label
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_stored_encrypted_and_rotation_keeps_them_readable() {
    for t in common::stores::all().await {
        let store = &t.store;
        let old = Vault::from_hex("ENCRYPTION_KEY", KEY_A).unwrap();
        for (name, value) in [("github", "ghp_plaintext_one"), ("mail", "hunter2-two")] {
            store
                .put_credential(&old.encrypt(name, value.as_bytes(), 1).unwrap())
                .await
                .unwrap();
        }
        for stored in store.all_credentials().await.unwrap() {
            assert!(!String::from_utf8_lossy(&stored.ciphertext).contains("plaintext"));
            assert!(!String::from_utf8_lossy(&stored.ciphertext).contains("hunter2"));
        }
        // A ciphertext copied onto another row does not decrypt there.
        let mut github = store.get_credential("github").await.unwrap().unwrap();
        github.name = "mail".into();
        store.put_credential(&github).await.unwrap();
        let moved = store.get_credential("mail").await.unwrap().unwrap();
        assert!(old.decrypt(&moved).is_err(), "{}", t.label);
        store
            .put_credential(&old.encrypt("mail", b"hunter2-two", 1).unwrap())
            .await
            .unwrap();

        let new = Vault::from_hex("ENCRYPTION_KEY", KEY_B).unwrap();
        let count = wasmbot::cli::rotate(store, &old, &new).await.unwrap();
        assert_eq!(count, 2);
        let github = store.get_credential("github").await.unwrap().unwrap();
        assert_eq!(github.key_version, 2);
        assert_eq!(
            new.decrypt(&github).unwrap().as_slice(),
            b"ghp_plaintext_one"
        );
        assert!(
            old.decrypt(&github).is_err(),
            "{}: the old key still works",
            t.label
        );
        let mail = store.get_credential("mail").await.unwrap().unwrap();
        assert_eq!(new.decrypt(&mail).unwrap().as_slice(), b"hunter2-two");

        // Rotating with the wrong "old" key fails and changes nothing.
        assert!(wasmbot::cli::rotate(store, &old, &new).await.is_err());
        let after = store.get_credential("github").await.unwrap().unwrap();
        assert_eq!(after.ciphertext, github.ciphertext);

        let names: Vec<String> = store
            .list_credentials()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, vec!["github", "mail"]);
        assert!(store.delete_credential("mail").await.unwrap());
        assert!(store.get_credential("mail").await.unwrap().is_none());
    }
}

async fn raw_execute(store: &Store, sql: &str) -> Result<u64, sqlx::Error> {
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

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_trail_is_append_only_except_the_retention_cleanup() {
    for t in common::stores::all().await {
        let store = &t.store;
        let entries: Vec<AuditEntry> = [("old1", 40), ("old2", 31), ("new1", 29), ("new2", 0)]
            .iter()
            .map(|(action, age)| entry(action, *age))
            .collect();
        store.insert_audit(&entries).await.unwrap();
        assert_eq!(store.count_audit().await.unwrap(), 4);

        for sql in [
            "UPDATE audit_trail SET status = 'forged'",
            "DELETE FROM audit_trail",
            "DELETE FROM audit_trail WHERE action = 'old1'",
        ] {
            let error = raw_execute(store, sql).await.expect_err(sql).to_string();
            assert!(error.contains("append-only"), "{}: {sql}: {error}", t.label);
        }
        if let Store::Postgres(_) = store {
            let error = raw_execute(store, "TRUNCATE audit_trail")
                .await
                .unwrap_err()
                .to_string();
            assert!(error.contains("append-only"), "{error}");
        }
        assert_eq!(store.count_audit().await.unwrap(), 4);

        let deleted = store
            .cleanup_audit(Utc::now() - Duration::days(30))
            .await
            .unwrap();
        assert_eq!(deleted, 2, "{}", t.label);
        assert_eq!(store.count_audit().await.unwrap(), 2);
        let kept = store.audit_for_correlation("corr-new1").await.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].metadata.0, json!({ "age": 29 }));
        assert_eq!(kept[0].user_id, Some(7));
        // After the cleanup the gate is closed again.
        assert!(
            raw_execute(store, "DELETE FROM audit_trail").await.is_err(),
            "{}",
            t.label
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn buttons_questions_and_message_senders_are_kept_on_both_backends() {
    use wasmbot::infra::store::PendingPrompt;
    for t in common::stores::all().await {
        let store = &t.store;
        let label = t.label;
        let buttons = [
            ("bt1".to_string(), "done:1".to_string()),
            ("bt2".to_string(), "x".repeat(1024)),
        ];
        store
            .buttons_create("notes", 42, &buttons, 2_000_000_000, 0)
            .await
            .unwrap();
        let kept = store.button("bt2").await.unwrap().expect(label);
        assert_eq!(
            (
                kept.plugin.as_str(),
                kept.chat_id,
                kept.data.len(),
                kept.expires_at
            ),
            ("notes", 42, 1024, 2_000_000_000),
            "{label}"
        );
        assert!(store.button("nope").await.unwrap().is_none(), "{label}");
        // Buttons expired before `forget_before` go when new ones are kept.
        store
            .buttons_create(
                "notes",
                42,
                &[("bt3".into(), "d".into())],
                2_000_000_000,
                2_100_000_000,
            )
            .await
            .unwrap();
        assert!(store.button("bt1").await.unwrap().is_none(), "{label}");

        assert!(store.prompt(42).await.unwrap().is_none(), "{label}");
        let prompt = PendingPrompt {
            plugin: "notes".into(),
            user_id: 7,
            state: "{\"step\":1}".into(),
            expires_at: 1_900_000_000,
        };
        store.prompt_set(42, &prompt, 100).await.unwrap();
        let replaced = PendingPrompt {
            plugin: "quiz".into(),
            ..prompt
        };
        store.prompt_set(42, &replaced, 100).await.unwrap();
        assert_eq!(
            store.prompt(42).await.unwrap(),
            Some(replaced.clone()),
            "{label}"
        );
        // Another chat's question that expired goes when a question is kept.
        let lapsed = PendingPrompt {
            expires_at: 50,
            ..replaced.clone()
        };
        store.prompt_set(43, &lapsed, 100).await.unwrap();
        store.prompt_set(44, &replaced, 100).await.unwrap();
        assert!(store.prompt(43).await.unwrap().is_none(), "{label}");
        assert!(store.prompt_clear(42).await.unwrap(), "{label}");
        assert!(!store.prompt_clear(42).await.unwrap(), "{label}");

        store
            .message_sent(42, 5001, "notes", Some("list"), 100, 0)
            .await
            .unwrap();
        store
            .message_sent(42, 5002, "health", Some("list"), 200, 0)
            .await
            .unwrap();
        assert_eq!(
            store.message_sender(42, 5001).await.unwrap().as_deref(),
            Some("notes"),
            "{label}"
        );
        assert_eq!(
            store.message_sender(43, 5001).await.unwrap(),
            None,
            "{label}"
        );
        // A name belongs to one plugin in one chat; the latest message has it.
        assert_eq!(
            store.message_named(42, "notes", "list").await.unwrap(),
            Some(5001),
            "{label}"
        );
        assert_eq!(
            store.message_named(42, "health", "list").await.unwrap(),
            Some(5002),
            "{label}"
        );
        store
            .message_sent(42, 5004, "notes", Some("list"), 250, 0)
            .await
            .unwrap();
        assert_eq!(
            store.message_named(42, "notes", "list").await.unwrap(),
            Some(5004),
            "{label}"
        );
        assert_eq!(
            store.message_named(43, "notes", "list").await.unwrap(),
            None,
            "{label}"
        );
        // Older than `forget_before`: forgotten.
        store
            .message_sent(42, 5003, "notes", None, 300, 150)
            .await
            .unwrap();
        assert_eq!(
            store.message_sender(42, 5001).await.unwrap(),
            None,
            "{label}"
        );
        assert_eq!(
            store.message_sender(42, 5002).await.unwrap().as_deref(),
            Some("health"),
            "{label}"
        );
    }
}

/// Issue 32, point 3, on both backends: a claim takes each plugin's due
/// jobs up to what is left of its share, every plugin's first before
/// anyone's second, and a retried job after the jobs that came due
/// meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn due_jobs_are_claimed_fairly_by_plugin_on_both_backends() {
    use wasmbot::infra::store::{ClaimRoom, NewJob};
    for t in common::stores::all().await {
        let store = &t.store;
        let add = |plugin: &'static str, due_ms: i64| NewJob {
            plugin,
            channel: "telegram",
            chat_id: Some(1),
            user_id: Some(1),
            kind: "at",
            spec: None,
            payload: "p",
            due_ms,
        };
        // The flooder's jobs came due first.
        for due in 1..=6 {
            store
                .jobs_add(&add("flood", due), 100)
                .await
                .unwrap()
                .unwrap();
        }
        let quiet = store
            .jobs_add(&add("quiet", 50), 100)
            .await
            .unwrap()
            .unwrap();
        let other = store
            .jobs_add(&add("other", 60), 100)
            .await
            .unwrap()
            .unwrap();
        // `flood` runs one job already: one more is left of its share of 2.
        let room = ClaimRoom {
            total: 16,
            per_plugin: 2,
            left: [("flood".to_string(), 1)].into(),
        };
        let claimed = store
            .jobs_claim("telegram", "me", 100, 10_000, &room)
            .await
            .unwrap();
        let mut plugins: Vec<&str> = claimed.iter().map(|job| job.plugin.as_str()).collect();
        plugins.sort();
        assert_eq!(plugins, ["flood", "other", "quiet"], "{}", store.backend());
        assert!(claimed.iter().any(|job| job.id == quiet));
        assert!(claimed.iter().any(|job| job.id == other));

        // With room for one: each plugin's first comes before anyone's
        // second, the soonest first.
        let one = ClaimRoom {
            total: 1,
            per_plugin: 2,
            left: Default::default(),
        };
        let next = store
            .jobs_claim("telegram", "me", 20_000, 30_000, &one)
            .await
            .unwrap();
        assert_eq!(next.len(), 1, "{}", store.backend());
        assert_eq!(next[0].plugin, "flood");
    }
}
