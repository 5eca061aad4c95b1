//! A misbehaving plugin ends only its own call: deadline, memory cap, panic,
//! ungranted imports and ambient authority, each followed by a normal /start.

mod common;

use std::time::{Duration, Instant};

use common::{GREETING, ask, dispatcher, plugins_dir, registry};

#[tokio::test(flavor = "multi_thread")]
async fn an_infinite_loop_is_stopped_at_its_deadline() {
    let dir = plugins_dir(&["start", "spin"]);
    let dispatcher = dispatcher(dir.path()).await;
    let started = Instant::now();
    let reply = ask(&dispatcher, "/spin").await;
    let elapsed = started.elapsed();
    assert_eq!(
        reply,
        "Sorry, /spin took too long and was stopped. Please try again later."
    );
    // spin.toml sets timeout_ms = 300.
    assert!(
        elapsed >= Duration::from_millis(290),
        "stopped too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "stopped too late: {elapsed:?}"
    );
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
}

#[tokio::test(flavor = "multi_thread")]
async fn other_chats_are_served_while_a_plugin_spins() {
    let dir = plugins_dir(&["start", "spin"]);
    let dispatcher = std::sync::Arc::new(dispatcher(dir.path()).await);
    let spinning = {
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move { ask(&dispatcher, "/spin").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "/start waited for /spin"
    );
    assert!(spinning.await.unwrap().contains("took too long"));
}

#[tokio::test(flavor = "multi_thread")]
async fn allocating_a_gibibyte_traps_at_the_memory_cap() {
    let dir = plugins_dir(&["start", "hog"]);
    let dispatcher = dispatcher(dir.path()).await;
    assert_eq!(
        ask(&dispatcher, "/hog").await,
        "Sorry, /hog needed more memory than it is allowed and was stopped."
    );
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_cap_raised_in_the_manifest_is_honoured() {
    let dir = plugins_dir(&["hog"]);
    let manifest = dir.path().join("hog.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}\n[limits]\nmemory_mb = 1100\n")).unwrap();
    // 1100 MiB is above the host's ceiling: refused at load, naming the field.
    let registry = registry(dir.path()).await;
    let errors = registry.snapshot().errors().to_vec();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].to_string().contains("limits.memory_mb"),
        "{}",
        errors[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_is_contained_and_a_returned_error_is_shown() {
    let dir = plugins_dir(&["start", "crash"]);
    let dispatcher = dispatcher(dir.path()).await;
    assert_eq!(
        ask(&dispatcher, "/crash").await,
        "Sorry, something went wrong in /crash. The problem has been logged."
    );
    assert_eq!(
        ask(&dispatcher, "/crash error").await,
        "the crash plugin refused politely"
    );
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ungranted_import_is_refused_at_load_naming_the_interface() {
    let dir = plugins_dir(&["start", "ungranted"]);
    let registry = registry(dir.path()).await;
    let plugins = registry.snapshot();
    let errors: Vec<String> = plugins.errors().iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        vec![
            "plugin `ungranted`: imports wasmbot:plugin/log but the manifest does not grant `log` (add it to `capabilities`)"
        ]
    );
    assert!(plugins.plugin_for("ungranted").is_none());
    let dispatcher = wasmbot::chat::Dispatcher::new(registry, None);
    assert!(
        ask(&dispatcher, "/ungranted")
            .await
            .starts_with("Sorry, I don't know /ungranted.")
    );
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
}

#[tokio::test(flavor = "multi_thread")]
async fn granting_the_interface_lets_the_same_component_load() {
    let dir = plugins_dir(&["ungranted"]);
    let manifest = dir.path().join("ungranted.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("capabilities = []", "capabilities = [\"log\"]"),
    )
    .unwrap();
    let dispatcher = dispatcher(dir.path()).await;
    assert_eq!(
        ask(&dispatcher, "/ungranted").await,
        "ungranted import was linked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn files_environment_and_arguments_are_not_ambient() {
    // The test process has HOME and many variables; the plugin must see none.
    let dir = plugins_dir(&["start", "snoop"]);
    let dispatcher = dispatcher(dir.path()).await;
    assert_eq!(
        ask(&dispatcher, "/snoop").await,
        "file=denied dir=denied env_vars=0 home=unset args=0"
    );
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
}
