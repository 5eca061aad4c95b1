//! A released world is a promise to the plugins built against it. The
//! components in `testing/compat/dist` were built once, from the WIT of
//! their day, and committed (`testing/compat/build.sh`, `dist/BUILT.toml`):
//! today's host must load and call each of them. And no released WIT
//! package changes in place: its files hash as they did when released.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{ask, workspace_root};
use sha2::{Digest, Sha256};
use wasmbot::chat::Dispatcher;
use wasmbot::infra::services::HostServices;
use wasmbot::runtime::{CallContext, Format, Outgoing};

fn compat_dist() -> PathBuf {
    workspace_root().join("testing/compat/dist")
}

/// Every committed component, copied into a fresh plugins directory.
fn compat_plugins() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut copied = 0;
    for entry in std::fs::read_dir(compat_dist()).expect("testing/compat/dist") {
        let path = entry.expect("dist entry").path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("wasm" | "toml")
        ) && path.file_stem().is_some_and(|stem| stem != "BUILT")
        {
            let name = path.file_name().expect("a file name");
            std::fs::copy(&path, dir.path().join(name)).expect("copy a compat component");
            copied += 1;
        }
    }
    assert_eq!(copied, 10, "five components and their manifests");
    dir
}

#[tokio::test]
async fn components_built_against_every_released_world_still_answer() {
    let plugins = compat_plugins();
    let store = common::stores::sqlite().await;
    let registry = common::registry(plugins.path()).await;
    let set = registry.snapshot();
    assert!(set.errors().is_empty(), "refused: {:?}", set.errors());
    let services = Arc::new(HostServices {
        store: Some(store.store.clone()),
        ..HostServices::default()
    });
    let dispatcher = Dispatcher::new(registry.clone(), None).with_services(services.clone());

    // wasmbot:plugin/handler@0.1.0 as first released (log only).
    assert_eq!(
        ask(&dispatcher, "/compat_first hi").await,
        "compat 0.1.0 (first release): hi"
    );
    // handler@0.1.0 as it stood at 0.2.0 (state grew an error case in place).
    assert_eq!(
        ask(&dispatcher, "/compat_handler kept").await,
        "compat 0.1.0: state kept \"kept\""
    );
    // conversation@0.2.0: a command answered with a button, then the press.
    let reply = dispatcher
        .handle(common::message("/compat_conversation hi"))
        .await
        .expect("a reply");
    assert_eq!(
        reply.text(),
        "compat 0.2.0 conversation: hi (config says hello)"
    );
    // proactive@0.2.0: `schedule` linked and answering.
    assert_eq!(
        ask(&dispatcher, "/compat_proactive").await,
        "compat 0.2.0 proactive: 0 jobs"
    );
    // conversation@0.3.0: a command, and a tool call with its actions.
    assert_eq!(ask(&dispatcher, "/compat_toolbox").await, "compat 0.3.0");
    let toolbox = set.plugin("compat_toolbox").expect("compat_toolbox loaded");
    assert_eq!(toolbox.world_label(), "conversation@0.3.0");
    let ctx = CallContext {
        correlation_id: "compat".into(),
        user_id: 7,
        chat_id: 42,
        channel: "test",
        services,
        link: None,
        agent: None,
        attachments: Vec::new(),
    };
    let answer = toolbox
        .call_tool("compat_shout", &serde_json::json!({"text": "quiet"}), &ctx)
        .await
        .expect("the tool answers");
    assert_eq!(answer.text, "QUIET");
    assert!(
        matches!(
            answer.actions.as_slice(),
            [wasmbot::runtime::Action::Send(Outgoing { text, format: Format::Plain, .. })]
                if text == "shouted for chat 42"
        ),
        "{:?}",
        answer.actions
    );
}

#[test]
fn the_compat_components_say_what_they_were_built_from() {
    let built = std::fs::read_to_string(compat_dist().join("BUILT.toml")).expect("BUILT.toml");
    let built: toml::Table = built.parse().expect("BUILT.toml is TOML");
    let commit = built["commit"].as_str().expect("a commit");
    assert_eq!(commit.len(), 40, "a full commit id: {commit}");
    assert!(built["wit-bindgen"].as_str().is_some_and(|v| !v.is_empty()));
}

/// Each released package: its files (relative to the workspace) and the
/// SHA-256 of their contents, concatenated in this order, as released.
/// A change here is a new version beside the old one, never an edit.
const RELEASED: &[(&str, &[&str], &str)] = &[
    (
        "wasmbot:plugin@0.1.0",
        &[
            "wit/types.wit",
            "wit/log.wit",
            "wit/state.wit",
            "wit/secrets.wit",
            "wit/audit.wit",
            "wit/llm.wit",
            "wit/health.wit",
            "wit/cache.wit",
            "wit/vectors.wit",
            "wit/world.wit",
        ],
        "2cfb128e91db62f66cc5a101378f1f381231a2f798b9af3067f5e3dfcb066a4b",
    ),
    (
        "wasmbot:plugin@0.2.0",
        &[
            "wit/v0.2/events.wit",
            "wit/v0.2/config.wit",
            "wit/v0.2/media.wit",
            "wit/v0.2/schedule.wit",
            "wit/v0.2/world.wit",
        ],
        "c676c7ae4f21fcf21821e443d45d4321811d6e9e797b8792ad67fd4ebea8b28a",
    ),
    (
        "wasmbot:plugin@0.3.0",
        &[
            "wit/v0.3/tools.wit",
            "wit/v0.3/agent.wit",
            "wit/v0.3/world.wit",
        ],
        "b614781d0afbd12900724d8fcca17a65a049966dfb2beb624588aa3dfce1b524",
    ),
];

fn package_hash(root: &Path, files: &[&str]) -> String {
    let mut hash = Sha256::new();
    for file in files {
        let text = std::fs::read(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        hash.update(&text);
    }
    hash.finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[test]
fn no_released_wit_package_is_edited_in_place() {
    let root = workspace_root();
    let mut changed = Vec::new();
    for (package, files, released) in RELEASED {
        let now = package_hash(&root, files);
        if now != *released {
            changed.push(format!("{package} ({}): now {now}", files.join(", ")));
        }
    }
    assert!(
        changed.is_empty(),
        "a released WIT package changed in place; add a new version beside it \
         (wit/vX.Y) instead, so components built against it keep linking:\n{}",
        changed.join("\n")
    );
    // Every .wit file belongs to a released package (a new one is added to RELEASED).
    let listed: Vec<&str> = RELEASED
        .iter()
        .flat_map(|(_, files, _)| files.iter().copied())
        .collect();
    let mut dirs = vec![root.join("wit")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("wit dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "wit") {
                let relative = path.strip_prefix(&root).expect("under the root");
                let relative = relative.to_str().expect("utf-8 path");
                assert!(
                    listed.contains(&relative),
                    "{relative} is in no released package (list it in RELEASED)"
                );
            }
        }
    }
}
