//! Shared set-up for the integration tests: real plugins built by
//! `just build-plugins` / `just build-test-plugins`, copied into a fresh
//! plugins directory per test.
#![allow(dead_code)]

pub mod alerts;
pub mod anthropic;
pub mod bot_api;
pub mod console;
pub mod embeddings;
pub mod oauth;
pub mod processes;
pub mod proxy;
pub mod qdrant;
pub mod running_bot;
pub mod stores;
pub mod webhooks;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use wasmbot::chat::{Dispatcher, IncomingMessage};
use wasmbot::runtime::{PluginEngine, PluginLimits, PluginRegistry};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Where a built plugin lives: bundled ones in plugins/dist, test-only ones in target/test-plugins.
pub fn built_plugin(name: &str) -> PathBuf {
    let root = workspace_root();
    for dir in [root.join("plugins/dist"), root.join("target/test-plugins")] {
        let wasm = dir.join(format!("{name}.wasm"));
        if wasm.is_file() {
            return wasm;
        }
    }
    panic!(
        "plugin `{name}` is not built: run `just build-plugins build-test-plugins` (or `just test`)"
    );
}

/// A fresh plugins directory holding copies of the named built plugins.
pub fn plugins_dir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in names {
        install(dir.path(), name);
    }
    dir
}

/// Rewrites `NAME.toml` in `dir` as built, with `limits` (TOML lines such
/// as `log_lines = 2000`, keys the manifest does not set yet) added to its
/// `[limits]` table, which is created when missing.
pub fn set_limits(dir: &Path, name: &str, limits: &str) {
    let built = std::fs::read_to_string(built_plugin(name).with_extension("toml"))
        .expect("read the built manifest");
    let manifest = match built.split_once("\n[limits]\n") {
        Some((before, after)) => format!("{before}\n[limits]\n{limits}\n{after}"),
        None => format!("{built}[limits]\n{limits}\n"),
    };
    std::fs::write(dir.join(format!("{name}.toml")), manifest).expect("write the manifest");
}

/// Copies a built plugin (component and manifest) into `dir`.
pub fn install(dir: &Path, name: &str) {
    let wasm = built_plugin(name);
    std::fs::copy(&wasm, dir.join(format!("{name}.wasm"))).expect("copy wasm");
    std::fs::copy(
        wasm.with_extension("toml"),
        dir.join(format!("{name}.toml")),
    )
    .expect("copy manifest");
}

pub async fn registry(dir: &Path) -> Arc<PluginRegistry> {
    let engine = Arc::new(PluginEngine::new(None, wasmbot::capabilities::ALL).expect("engine"));
    Arc::new(
        PluginRegistry::load(engine, dir.to_path_buf(), PluginLimits::default())
            .await
            .expect("registry"),
    )
}

pub async fn dispatcher(dir: &Path) -> Dispatcher {
    Dispatcher::new(registry(dir).await, Some("wasmbot_test_bot".into()))
}

pub fn message(text: &str) -> IncomingMessage {
    IncomingMessage::private(42, 7, Some("ada"), text)
}

/// Sends `text` and returns the reply text; panics when there is no reply.
pub async fn ask(dispatcher: &Dispatcher, text: &str) -> String {
    dispatcher
        .handle(message(text))
        .await
        .unwrap_or_else(|| panic!("no reply to {text:?}"))
        .text()
}

pub const GREETING: &str = "Hello, ada! I'm your wasmbot assistant.";

/// The real `wasmbot chat` in `dir` with only `env` (and PATH) set, fed
/// `input`; blocking, so call it from `spawn_blocking` in async tests.
pub fn chat_binary(dir: &Path, env: &[(&str, &str)], args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .arg("chat")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wasmbot");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("write to wasmbot");
    child.wait_with_output().expect("wait for wasmbot")
}

/// A counter of this process's metrics, e.g. `counter("wasmbot_messages_total",
/// &[("plugin", "start"), ("status", "busy")])`; 0 before its first count.
pub fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    let text = wasmbot::infra::metrics::metrics().render();
    text.lines()
        .find(|line| {
            line.starts_with(&format!("{name}{{"))
                && labels
                    .iter()
                    .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0, |value| value.parse().unwrap_or(0))
}
