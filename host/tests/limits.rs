//! What one call may take from the host is bounded: reply and error sizes,
//! the memories and instances of a component, the pool's slots. Each case
//! is followed by a normal /start.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{GREETING, ask, dispatcher, plugins_dir};
use wasmbot::chat::Dispatcher;
use wasmbot::infra::audit::AuditWriter;
use wasmbot::infra::services::HostServices;
use wasmbot::runtime::{LoadedPlugin, Manifest, PluginEngine, PluginLimits, PluginRegistry};

#[tokio::test(flavor = "multi_thread")]
async fn a_60_mb_reply_is_cut_to_the_cap_with_a_notice() {
    let dir = plugins_dir(&["start", "flood"]);
    let dispatcher = dispatcher(dir.path()).await;
    let cuts = cut_count("reply");
    let reply = ask(&dispatcher, "/flood reply 60000000").await;
    // At least this one: other tests here cut flood's replies too.
    assert!(cut_count("reply") > cuts);
    let (kept, notice) = reply.split_once('\n').expect("a notice after the text");
    // The cap holds the ellipsis too: 16 KiB exactly.
    assert_eq!(kept.len(), 16 * 1024, "{notice}");
    assert!(kept.starts_with("xxxx") && kept.ends_with('…'));
    assert_eq!(
        notice,
        "(cut: the reply was 58594 KiB; this plugin may send 16 KiB)"
    );
    // A reply within the cap is untouched.
    assert_eq!(ask(&dispatcher, "/flood reply 5").await, "xxxxx");
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_may_raise_the_reply_cap_up_to_its_ceiling() {
    let dir = plugins_dir(&["flood"]);
    common::set_limits(dir.path(), "flood", "reply_kb = 64");
    let dispatcher = dispatcher(dir.path()).await;
    let reply = ask(&dispatcher, "/flood reply 100000").await;
    assert!(
        reply.ends_with("(cut: the reply was 98 KiB; this plugin may send 64 KiB)"),
        "{}",
        &reply[reply.len() - 80..]
    );

    common::set_limits(dir.path(), "flood", "reply_kb = 100000");
    let engine = PluginEngine::new(None, wasmbot::capabilities::ALL).unwrap();
    let error = LoadedPlugin::load(
        &engine,
        &dir.path().join("flood.wasm"),
        PluginLimits::default(),
    )
    .err()
    .expect("refused");
    assert!(
        error
            .to_string()
            .contains("`limits.reply_kb` must be between 1 and 256, got 100000"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_error_text_is_cut_before_it_reaches_the_user_or_the_log() {
    let dir = plugins_dir(&["start", "flood"]);
    let dispatcher = dispatcher(dir.path()).await;
    let cuts = cut_count("error");
    let reply = ask(&dispatcher, "/flood error 1000000").await;
    assert_eq!(cut_count("error"), cuts + 1);
    // 1 KiB with the ellipsis.
    assert_eq!(reply, format!("{}…", "e".repeat(1024 - '…'.len_utf8())));
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_with_more_memories_than_a_call_may_have_is_refused_at_load() {
    // One core module with a memory, instantiated five times: five memories.
    let wat = r#"(component
        (core module $m (memory 1))
        (core instance (instantiate $m))
        (core instance (instantiate $m))
        (core instance (instantiate $m))
        (core instance (instantiate $m))
        (core instance (instantiate $m)))"#;
    let bytes = wat::parse_str(wat).expect("valid component text");
    let manifest = Manifest::parse(
        "name = \"many\"\nversion = \"1\"\ncommands = [{ name = \"many\", description = \"x\" }]\n",
        PluginLimits::default(),
        wasmbot::capabilities::ALL,
    )
    .unwrap();
    let engine = PluginEngine::new(None, wasmbot::capabilities::ALL).unwrap();
    let error = LoadedPlugin::from_parts(&engine, manifest, &bytes)
        .err()
        .expect("refused");
    let text = error.to_string();
    assert!(text.starts_with("plugin `many`: "), "{text}");
    assert!(text.contains("5 Wasm linear memories"), "{text}");
    assert!(text.contains("maximum of 4"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_pool_answers_busy_not_a_crash() {
    let dir = plugins_dir(&["start", "slow"]);
    let engine =
        Arc::new(PluginEngine::with_pool_size(None, wasmbot::capabilities::ALL, 2).unwrap());
    let registry = PluginRegistry::load(
        engine.clone(),
        dir.path().to_path_buf(),
        PluginLimits::default(),
    )
    .await
    .unwrap();
    let dispatcher = Arc::new(Dispatcher::new(Arc::new(registry), None));
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let dispatcher = dispatcher.clone();
            tokio::spawn(async move { ask(&dispatcher, &format!("/slow 4000 {i}")).await })
        })
        .collect();
    // Both slots taken by the calls (not by an instance made ahead): wait
    // until the pool says so, however slow the machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    let calls_in_flight =
        || engine.instances_in_use() - engine.warm_budget().held().0.min(2) as u64;
    while calls_in_flight() < 2 {
        assert!(Instant::now() < deadline, "the slow calls never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let busy_before = busy_count();
    assert_eq!(
        ask(&dispatcher, "/start").await,
        "The bot is busy right now; please send /start again in a moment."
    );
    assert_eq!(busy_count(), busy_before + 1);
    for (i, call) in slow.into_iter().enumerate() {
        assert_eq!(call.await.unwrap(), format!("slow: {i}"));
    }
    // Instances made ahead, or used ones not dropped yet, may hold the slots
    // now: they give way to a message, which is never "busy" for them.
    for _ in 0..5 {
        assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
    }
}

/// `wasmbot_plugin_cuts_total{plugin="flood", what}`.
fn cut_count(what: &str) -> u64 {
    common::counter(
        "wasmbot_plugin_cuts_total",
        &[("plugin", "flood"), ("what", what)],
    )
}

/// `wasmbot_messages_total{plugin="start",status="busy"}`.
fn busy_count() -> u64 {
    common::counter(
        "wasmbot_messages_total",
        &[("plugin", "start"), ("status", "busy")],
    )
}

/// `wasmbot_plugin_budget_refusals_total{plugin, budget}`.
fn refusals(plugin: &str, budget: &str) -> u64 {
    common::counter(
        "wasmbot_plugin_budget_refusals_total",
        &[("plugin", plugin), ("budget", budget)],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_past_the_budget_are_dropped_counted_and_the_call_goes_on() {
    let dir = plugins_dir(&["start", "flood"]);
    let dispatcher = dispatcher(dir.path()).await;
    let before = refusals("flood", "log_lines");
    assert_eq!(ask(&dispatcher, "/flood log 1000").await, "logged 1000");
    assert_eq!(refusals("flood", "log_lines"), before + 900);
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_may_raise_a_budget_and_a_bad_one_is_refused_at_load() {
    let dir = plugins_dir(&["flood"]);
    common::set_limits(dir.path(), "flood", "log_lines = 2000");
    let dispatcher = dispatcher(dir.path()).await;
    let before = refusals("flood", "log_lines");
    assert_eq!(ask(&dispatcher, "/flood log 1500").await, "logged 1500");
    assert_eq!(refusals("flood", "log_lines"), before);

    for (line, expected) in [
        (
            "log_lines = 20000",
            "`limits.log_lines` must be between 1 and 10000, got 20000",
        ),
        (
            "log_lienz = 5",
            "unknown limit `log_lienz` (known: timeout_ms, memory_mb, reply_kb, host_calls, log_lines,",
        ),
    ] {
        common::set_limits(dir.path(), "flood", line);
        let engine = PluginEngine::new(None, wasmbot::capabilities::ALL).unwrap();
        let error = LoadedPlugin::load(
            &engine,
            &dir.path().join("flood.wasm"),
            PluginLimits::default(),
        )
        .err()
        .expect("refused");
        assert!(error.to_string().contains(expected), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_entries_past_the_budget_are_refused_and_the_hosts_entry_is_written() {
    let t = common::stores::sqlite().await;
    let dir = plugins_dir(&["flood"]);
    let audit = Arc::new(AuditWriter::start(t.store.clone(), 10_000));
    let services = HostServices {
        store: Some(t.store.clone()),
        audit: Some(audit.clone()),
        ..HostServices::default()
    };
    let dispatcher =
        Dispatcher::new(common::registry(dir.path()).await, None).with_services(services);
    assert_eq!(
        ask(&dispatcher, "/flood audit 1000").await,
        "audited 50 refused 950: over budget: at most 50 audit entries per call (raise `limits.audit_entries` in the manifest)"
    );
    audit.shutdown(Duration::from_secs(30)).await;
    // 50 from the plugin, and the host's own entry for the message.
    assert_eq!(t.store.count_audit().await.unwrap(), 51);
}

#[tokio::test(flavor = "multi_thread")]
async fn state_writes_past_the_budget_get_the_typed_error() {
    let t = common::stores::sqlite().await;
    let dir = plugins_dir(&["flood"]);
    let services = HostServices {
        store: Some(t.store.clone()),
        ..HostServices::default()
    };
    let dispatcher =
        Dispatcher::new(common::registry(dir.path()).await, None).with_services(services);
    assert_eq!(
        ask(&dispatcher, "/flood state 150").await,
        "wrote 100 refused 50: over budget: at most 100 state writes per call (raise `limits.state_writes` in the manifest)"
    );
    // The next call has a budget of its own.
    assert!(
        ask(&dispatcher, "/flood state 3")
            .await
            .starts_with("wrote 3 refused 0")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_budget_is_refused_with_its_typed_error_and_other_plugins_go_on() {
    let t = common::stores::sqlite().await;
    let vectors = tempfile::tempdir().unwrap();
    let dir = plugins_dir(&["start", "flood"]);
    let services = HostServices {
        store: Some(t.store.clone()),
        vectors: Some(wasmbot::infra::vectors::VectorStore::embedded(
            vectors.path().to_path_buf(),
        )),
        ..HostServices::default()
    };
    let dispatcher =
        Dispatcher::new(common::registry(dir.path()).await, None).with_services(services);
    let over = |limit: u32, unit: &str, key: &str| {
        format!(
            "over budget: at most {limit} {unit} per call (raise `limits.{key}` in the manifest)"
        )
    };
    let cases = [
        (
            "/flood cache 150",
            format!("ok 100, then {}", over(100, "cache writes", "cache_writes")),
        ),
        (
            "/flood reads 1200",
            format!("ok 1000, then {}", over(1000, "host calls", "host_calls")),
        ),
        (
            // No model is configured: five calls say so, the sixth is over budget.
            "/flood llm 8",
            format!(
                "ok 0, then LlmError::OverBudget({:?})",
                over(5, "LLM requests", "llm_requests")
            ),
        ),
        (
            "/flood embed 12",
            format!(
                "ok 0, then VectorError::OverBudget({:?})",
                over(10, "embedding requests", "embedding_requests")
            ),
        ),
        (
            // ensure-collection is the first of the 100 writes.
            "/flood vectors 105",
            format!(
                "ok 99, then VectorError::OverBudget({:?})",
                over(100, "vector writes", "vector_writes")
            ),
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(ask(&dispatcher, message).await, expected, "{message}");
        assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
    }
}
