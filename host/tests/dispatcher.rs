//! The dispatcher with the real `start` plugin: routing, mentions, help, and
//! many chats at once.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{GREETING, ask, dispatcher, message, plugins_dir};
use wasmbot::runtime::{Format, ReplyFormat};

const HELP: &str =
    "Here is what I can do:\n/help - show this list\n/start - Say hello and show how to begin";

#[tokio::test(flavor = "multi_thread")]
async fn start_is_answered_by_the_component_with_the_users_name() {
    let dir = plugins_dir(&["start"]);
    let dispatcher = dispatcher(dir.path()).await;
    let reply = dispatcher.handle(message("/start")).await.unwrap();
    assert_eq!(
        reply.text(),
        "Hello, ada! I'm your wasmbot assistant. Send /help to see what I can do."
    );
    assert_eq!(reply.format(), Format::Plain);
    assert_eq!(reply.correlation_id.len(), 32);

    let mut anonymous = message("/start");
    anonymous.username = None;
    let reply = dispatcher.handle(anonymous).await.unwrap();
    assert!(
        reply.text().starts_with("Hello, there!"),
        "{}",
        reply.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mentions_of_this_bot_are_answered_and_of_others_ignored() {
    let dir = plugins_dir(&["start"]);
    let dispatcher = dispatcher(dir.path()).await;
    assert!(
        ask(&dispatcher, "/start@wasmbot_test_bot")
            .await
            .starts_with(GREETING)
    );
    assert!(
        ask(&dispatcher, "/START@WasmBot_Test_Bot")
            .await
            .starts_with(GREETING)
    );
    assert!(
        dispatcher
            .handle(message("/start@someone_else_bot"))
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn help_and_unknown_commands_list_the_commands_and_plain_text_points_to_help() {
    let dir = plugins_dir(&["start"]);
    let dispatcher = dispatcher(dir.path()).await;
    assert_eq!(ask(&dispatcher, "/help").await, HELP);
    assert_eq!(
        ask(&dispatcher, "/nope").await,
        format!("Sorry, I don't know /nope.\n\n{HELP}")
    );
    // Plain text goes to DEFAULT_PLUGIN; with none, a pointer to /help (not the list).
    assert_eq!(
        ask(&dispatcher, "good morning").await,
        "I answer commands that start with a slash: send /help to see them."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn arguments_and_ids_reach_the_plugin_and_its_reply_format_comes_back() {
    let dir = plugins_dir(&["echo"]);
    let dispatcher = dispatcher(dir.path()).await;
    let reply = dispatcher
        .handle(message("/say   hello  world "))
        .await
        .unwrap();
    assert_eq!(reply.text(), "echo: hello  world (user 7 in chat 42)");
    assert_eq!(reply.format(), Format::Markdown);
}

#[tokio::test(flavor = "multi_thread")]
async fn many_chats_at_once_each_get_their_answer() {
    let dir = plugins_dir(&["echo"]);
    let dispatcher = Arc::new(dispatcher(dir.path()).await);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let dispatcher = dispatcher.clone();
            tokio::spawn(async move {
                let mut msg = message(&format!("/echo {i}"));
                msg.chat_id = i;
                let reply = dispatcher.handle(msg).await.unwrap();
                assert_eq!(reply.text(), format!("echo: {i} (user 7 in chat {i})"));
                reply.correlation_id
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 200, "correlation ids must be unique");
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_plugin_files_are_reported_and_the_good_ones_serve() {
    let dir = plugins_dir(&["start", "echo"]);
    let path = dir.path();
    // Not a component at all.
    std::fs::write(path.join("junk.wasm"), b"\0asm but not really").unwrap();
    std::fs::write(
        path.join("junk.toml"),
        "name = \"junk\"\nversion = \"1\"\ncommands = [{ name = \"junk\", description = \"x\" }]\n",
    )
    .unwrap();
    // A component without its manifest, and a manifest without its component.
    std::fs::copy(path.join("start.wasm"), path.join("lonely.wasm")).unwrap();
    std::fs::write(path.join("ghost.toml"), "name = \"ghost\"").unwrap();
    // A second plugin claiming /start.
    std::fs::copy(path.join("start.wasm"), path.join("zstart.wasm")).unwrap();
    let manifest = std::fs::read_to_string(path.join("start.toml")).unwrap();
    std::fs::write(
        path.join("zstart.toml"),
        manifest.replacen("name = \"start\"", "name = \"zstart\"", 1),
    )
    .unwrap();
    // A manifest whose name does not match its files.
    std::fs::copy(path.join("echo.wasm"), path.join("mismatch.wasm")).unwrap();
    std::fs::copy(path.join("echo.toml"), path.join("mismatch.toml")).unwrap();

    let registry = common::registry(path).await;
    let plugins = registry.snapshot();
    let mut errors: Vec<String> = plugins.errors().iter().map(|e| e.to_string()).collect();
    errors.sort();
    let expect = [
        "plugin `ghost`: ",
        "plugin `junk`: not a valid WebAssembly component for this host",
        "plugin `lonely`: ",
        "plugin `mismatch`: the manifest says name = \"echo\"",
        "plugin `zstart`: command `/start` is already provided by plugin `start`",
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    for (error, prefix) in errors.iter().zip(expect) {
        assert!(
            error.starts_with(prefix),
            "{error:?} should start with {prefix:?}"
        );
    }
    assert!(
        errors[0].contains("has no component ghost.wasm"),
        "{}",
        errors[0]
    );
    assert!(
        errors[2].contains("has no manifest lonely.toml"),
        "{}",
        errors[2]
    );

    let dispatcher = wasmbot::chat::Dispatcher::new(registry, None);
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
    assert!(ask(&dispatcher, "/echo ok").await.starts_with("echo: ok"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_native_command_takes_the_same_path_and_wins_over_a_plugin() {
    let dir = plugins_dir(&["start", "echo"]);
    let dispatcher = dispatcher(dir.path()).await.with_native_command(
        "echo",
        Arc::new(
            |message: &wasmbot::runtime::Message| wasmbot::runtime::Reply {
                text: format!("native echo: {} from {}", message.args, message.user_id),
                format: ReplyFormat::Plain,
            },
        ),
    );
    assert_eq!(ask(&dispatcher, "/echo hi").await, "native echo: hi from 7");
    assert!(ask(&dispatcher, "/start").await.starts_with(GREETING));
    let reply = dispatcher.handle(message("/say hi")).await.unwrap();
    assert!(
        reply.text().starts_with("echo: hi"),
        "the plugin keeps its other command: {}",
        reply.text()
    );
}
