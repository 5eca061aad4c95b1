//! Hot reload through the real watcher: replace, refuse, unload and reload
//! plugins while messages keep flowing; and the compile cache.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{GREETING, ask, built_plugin, dispatcher, plugins_dir};
use wasmbot::chat::Dispatcher;
use wasmbot::runtime::{PluginEngine, PluginLimits, PluginRegistry};

/// Installs built plugin `component` under the name `hello` with command /hello.
fn install_as_hello(dir: &Path, component: &str, capabilities: &str) {
    let manifest = format!(
        "name = \"hello\"\nversion = \"{component}\"\ncommands = [{{ name = \"hello\", description = \"Say hello\" }}]\ncapabilities = {capabilities}\n"
    );
    // Manifest first, then the component by rename: what build-plugins does.
    std::fs::write(dir.join(".hello.toml.tmp"), manifest).unwrap();
    std::fs::rename(dir.join(".hello.toml.tmp"), dir.join("hello.toml")).unwrap();
    std::fs::copy(built_plugin(component), dir.join(".hello.wasm.tmp")).unwrap();
    std::fs::rename(dir.join(".hello.wasm.tmp"), dir.join("hello.wasm")).unwrap();
}

async fn wait_for(dispatcher: &Dispatcher, text: &str, expected_prefix: &str) -> Duration {
    let started = Instant::now();
    loop {
        if ask(dispatcher, text).await.starts_with(expected_prefix) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{text} never answered {expected_prefix:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `done` until it holds, at most 10 s.
async fn wait_until(done: impl Fn() -> bool, what: &str) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_plugin_switches_versions_under_load_without_a_failed_message() {
    let dir = plugins_dir(&["start"]);
    install_as_hello(dir.path(), "start", "[]");
    let dispatcher = Arc::new(dispatcher(dir.path()).await);
    let _watcher = wasmbot::runtime::watch(dispatcher.registry().clone(), |_, _| {}).unwrap();
    assert!(ask(&dispatcher, "/hello").await.starts_with(GREETING));

    // Several chats send continuously while the plugin is replaced.
    let stop = Arc::new(AtomicBool::new(false));
    let chats = 4;
    let switched = Arc::new(AtomicUsize::new(0));
    let started_chats = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..chats)
        .map(|chat| {
            let dispatcher = dispatcher.clone();
            let stop = stop.clone();
            let switched = switched.clone();
            let started_chats = started_chats.clone();
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut answers: Vec<String> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let mut message = common::message("/hello there");
                    message.chat_id = chat;
                    let reply = dispatcher
                        .handle(message)
                        .await
                        .expect("every message is answered");
                    let first_new = reply.text().starts_with("echo: there")
                        && !answers.iter().any(|a| a.starts_with("echo: there"));
                    if first_new {
                        switched.fetch_add(1, Ordering::Relaxed);
                    }
                    answers.push(reply.text());
                    if answers.len() == 1 {
                        started_chats.fetch_add(1, Ordering::Relaxed);
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                answers
            })
        })
        .collect();
    // Every chat has had an answer from the old version before the switch.
    wait_until(
        || started_chats.load(Ordering::Relaxed) == chats as usize,
        "every chat answered",
    )
    .await;
    install_as_hello(dir.path(), "echo", "[\"log\"]");
    let switched_after = wait_for(&dispatcher, "/hello there", "echo: there").await;
    // Every chat goes on until it has seen the new version a few times.
    wait_until(
        || switched.load(Ordering::Relaxed) == chats as usize,
        "every chat reached the new version",
    )
    .await;
    wait_until(
        || sent.load(Ordering::Relaxed) > 20,
        "more than 20 messages",
    )
    .await;
    stop.store(true, Ordering::Relaxed);

    let mut total = 0;
    for sender in senders {
        let answers = sender.await.unwrap();
        total += answers.len();
        let first_new = answers.iter().position(|a| a.starts_with("echo: there"));
        let first_new = first_new.expect("the new version answered this chat");
        assert!(first_new > 0, "the old version answered first");
        for (i, answer) in answers.iter().enumerate() {
            if i < first_new {
                assert!(answer.starts_with(GREETING), "old answer {i}: {answer}");
            } else {
                assert!(
                    answer.starts_with("echo: there"),
                    "after the switch, answer {i}: {answer}"
                );
            }
        }
    }
    assert!(total > 20, "only {total} messages were sent");
    eprintln!(
        "hot reload: new version serving {switched_after:?} after the rename; {total} messages, none failed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_replacements_keep_the_old_version_and_say_why() {
    let dir = plugins_dir(&["start"]);
    install_as_hello(dir.path(), "start", "[]");
    let dispatcher = dispatcher(dir.path()).await;
    let registry = dispatcher.registry().clone();
    let path = dir.path();
    let echo = std::fs::read(built_plugin("echo")).unwrap();
    let good_manifest = std::fs::read_to_string(path.join("hello.toml")).unwrap();

    type BreakIt<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, BreakIt, &str)> = vec![
        (
            "truncated component",
            Box::new(|| std::fs::write(path.join("hello.wasm"), &echo[..echo.len() / 2]).unwrap()),
            "not a valid WebAssembly component",
        ),
        (
            "not a component",
            Box::new(|| std::fs::write(path.join("hello.wasm"), b"#!/bin/sh\necho hi\n").unwrap()),
            "not a valid WebAssembly component",
        ),
        (
            "unknown capability",
            Box::new(|| {
                std::fs::write(
                    path.join("hello.toml"),
                    good_manifest.replace("capabilities = []", "capabilities = [\"telepathy\"]"),
                )
                .unwrap()
            }),
            "unknown capability `telepathy`",
        ),
        (
            "ungranted import",
            Box::new(|| {
                std::fs::copy(built_plugin("ungranted"), path.join("hello.wasm"))
                    .map(drop)
                    .unwrap()
            }),
            "imports wasmbot:plugin/log but the manifest does not grant `log`",
        ),
    ];
    for (what, break_it, reason) in cases {
        break_it();
        let outcomes = registry.reload(vec!["hello".into()]).await;
        let outcome = format!("{outcomes:?}");
        assert!(
            outcome.contains("Refused") && outcome.contains(reason),
            "{what}: {outcome}"
        );
        let errors = registry.snapshot().errors().to_vec();
        assert_eq!(errors.len(), 1, "{what}: {errors:?}");
        assert!(errors[0].reason.contains(reason), "{what}: {}", errors[0]);
        assert!(
            ask(&dispatcher, "/hello").await.starts_with(GREETING),
            "{what}: the old version stopped serving"
        );
        // Restore the good files before the next case.
        std::fs::copy(built_plugin("start"), path.join("hello.wasm")).unwrap();
        std::fs::write(path.join("hello.toml"), &good_manifest).unwrap();
        registry.reload(vec!["hello".into()]).await;
        assert!(
            registry.snapshot().errors().is_empty(),
            "{what}: the good files did not clear the error"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_the_files_unloads_and_adding_them_back_loads() {
    let dir = plugins_dir(&["start", "echo"]);
    let dispatcher = dispatcher(dir.path()).await;
    let _watcher = wasmbot::runtime::watch(dispatcher.registry().clone(), |_, _| {}).unwrap();
    std::fs::remove_file(dir.path().join("echo.wasm")).unwrap();
    std::fs::remove_file(dir.path().join("echo.toml")).unwrap();
    wait_for(&dispatcher, "/echo hi", "Sorry, I don't know /echo.").await;
    assert!(!ask(&dispatcher, "/help").await.contains("/echo"));
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
    common::install(dir.path(), "echo");
    wait_for(&dispatcher, "/echo hi", "echo: hi").await;
    assert!(
        ask(&dispatcher, "/help")
            .await
            .contains("/echo - Repeat the arguments")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_with_unchanged_plugins_loads_from_the_cache_and_a_corrupt_entry_is_rebuilt() {
    let dir = plugins_dir(&["start", "echo"]);
    let data = tempfile::tempdir().unwrap();
    let cache = data.path().join("plugin-cache");
    let load = || load_with_cache(dir.path(), &cache);

    let (cold, _) = load().await;
    assert_eq!((cold.stats().compiled(), cold.stats().cache_hits()), (2, 0));

    let (warm, dispatcher) = load().await;
    assert_eq!(
        (warm.stats().compiled(), warm.stats().cache_hits()),
        (0, 2),
        "a warm start compiled"
    );
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));

    // Corrupt one entry: flip a byte in the middle of the compiled code.
    let entries = cache_entries(&cache);
    assert_eq!(entries.len(), 2, "{entries:?}");
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entries[0], &bytes).unwrap();
    // And truncate the other.
    let other = std::fs::read(&entries[1]).unwrap();
    std::fs::write(&entries[1], &other[..other.len() / 3]).unwrap();

    let (repaired, dispatcher) = load().await;
    assert_eq!(repaired.stats().cache_rejected(), 2);
    assert_eq!(repaired.stats().compiled(), 2);
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
    assert!(ask(&dispatcher, "/echo ok").await.starts_with("echo: ok"));
    let (again, _) = load().await;
    assert_eq!(
        (again.stats().compiled(), again.stats().cache_hits()),
        (0, 2),
        "the rebuilt entries are used"
    );
}

/// A registry of the plugins in `plugins`, compiled through the cache in `cache`.
async fn load_with_cache(plugins: &Path, cache: &Path) -> (Arc<PluginEngine>, Dispatcher) {
    let engine =
        Arc::new(PluginEngine::new(Some(cache.to_path_buf()), wasmbot::capabilities::ALL).unwrap());
    let registry = PluginRegistry::load(
        engine.clone(),
        plugins.to_path_buf(),
        PluginLimits::default(),
    )
    .await
    .unwrap();
    (engine, Dispatcher::new(Arc::new(registry), None))
}

fn cache_entries(cache: &Path) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
}

/// The entry of the plugin whose component is `wasm`.
fn entry_of(cache: &Path, wasm: &Path) -> std::path::PathBuf {
    let hash = wasmbot::runtime::content_hash(&std::fs::read(wasm).unwrap());
    let entries = cache_entries(cache);
    let mut matching = entries
        .iter()
        .filter(|e| e.file_name().unwrap().to_string_lossy().starts_with(&hash));
    let entry = matching
        .next()
        .unwrap_or_else(|| panic!("no entry for {hash}: {entries:?}"));
    entry.clone()
}

/// Someone who can write the cache directory replaces /start's entry with
/// /echo's compiled code and a SHA-256 that matches it (what a self-checksum
/// would accept), and moves /echo's own authentic entry, MAC and all, under
/// /start's name: neither is run, both are rebuilt.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_entry_with_a_matching_checksum_is_refused_and_rebuilt() {
    use sha2::{Digest, Sha256};

    let dir = plugins_dir(&["start", "echo"]);
    let data = tempfile::tempdir().unwrap();
    let cache = data.path().join("plugin-cache");
    let (cold, _) = load_with_cache(dir.path(), &cache).await;
    assert_eq!((cold.stats().compiled(), cold.stats().cache_hits()), (2, 0));
    let start_entry = entry_of(&cache, &dir.path().join("start.wasm"));
    let echo_entry = entry_of(&cache, &dir.path().join("echo.wasm"));
    let echo_bytes = std::fs::read(&echo_entry).unwrap();
    let echo_code = &echo_bytes[32..];

    // 1. Foreign code, re-checksummed.
    let mut forged = Sha256::digest(echo_code).to_vec();
    forged.extend_from_slice(echo_code);
    std::fs::write(&start_entry, &forged).unwrap();
    let (after_forgery, dispatcher) = load_with_cache(dir.path(), &cache).await;
    assert_eq!(after_forgery.stats().cache_rejected(), 1);
    assert_eq!(
        (
            after_forgery.stats().compiled(),
            after_forgery.stats().cache_hits()
        ),
        (1, 1),
        "/start recompiled, /echo from the cache"
    );
    assert!(
        ask(&dispatcher, "/start").await.starts_with(GREETING),
        "/start ran the planted code"
    );

    // 2. An authentic entry, moved under another plugin's name.
    std::fs::write(&start_entry, &echo_bytes).unwrap();
    let (after_swap, dispatcher) = load_with_cache(dir.path(), &cache).await;
    assert_eq!(after_swap.stats().cache_rejected(), 1);
    assert_eq!(after_swap.stats().compiled(), 1);
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));

    // 3. An entry made under another key (another host's cache copied in).
    std::fs::write(data.path().join("plugin-cache.key"), [7u8; 32]).unwrap();
    let (other_key, _) = load_with_cache(dir.path(), &cache).await;
    assert_eq!(
        (
            other_key.stats().cache_rejected(),
            other_key.stats().compiled()
        ),
        (2, 2)
    );
    let (again, _) = load_with_cache(dir.path(), &cache).await;
    assert_eq!(
        (again.stats().compiled(), again.stats().cache_hits()),
        (0, 2),
        "the rebuilt entries are used"
    );
}

/// A cache directory others may write, or a key others may read, is not
/// used at all: every load compiles, nothing is read from or written there.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_cache_directory_or_key_others_can_touch_is_not_used() {
    use std::os::unix::fs::PermissionsExt;

    let dir = plugins_dir(&["start", "echo"]);
    let data = tempfile::tempdir().unwrap();
    let cache = data.path().join("plugin-cache");
    let key = data.path().join("plugin-cache.key");

    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    for _ in 0..2 {
        let (engine, dispatcher) = load_with_cache(dir.path(), &cache).await;
        assert_eq!(
            (engine.stats().compiled(), engine.stats().cache_hits()),
            (2, 0),
            "a world-writable cache was used"
        );
        assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
    }
    assert!(cache_entries(&cache).is_empty(), "entries were written");
    assert!(!key.exists(), "a key was made for an untrusted cache");

    // Made private, it is used: a key is created, readable by its owner only.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (cold, _) = load_with_cache(dir.path(), &cache).await;
    assert_eq!(cold.stats().compiled(), 2);
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (warm, _) = load_with_cache(dir.path(), &cache).await;
    assert_eq!(warm.stats().cache_hits(), 2);

    // A key others may read could be used to forge entries.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (exposed, _) = load_with_cache(dir.path(), &cache).await;
    assert_eq!(
        (exposed.stats().compiled(), exposed.stats().cache_hits()),
        (2, 0),
        "a readable key was trusted"
    );
}
