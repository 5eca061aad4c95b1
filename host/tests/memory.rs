//! The assistant plugin's memory end to end: `/remember`, `/recall`, `/forget`
//! through the real component, the embedded vector engine and a fake embeddings
//! server speaking the OpenAI wire format; then the real `wasmbot chat`
//! binary across a restart, configured only with EMBEDDINGS_URL.

mod common;

use std::sync::Arc;

use common::anthropic::FakeAnthropic;
use common::embeddings::FakeEmbeddings;
use common::qdrant::FakeQdrant;
use common::{chat_binary, plugins_dir, registry};
use wasmbot::chat::{Dispatcher, IncomingMessage};
use wasmbot::infra::services::HostServices;
use wasmbot::infra::vectors::{EmbeddingsClient, VectorSettings, VectorStore};

async fn memory_bot(
    embeddings_url: Option<&str>,
    vectors_dir: &std::path::Path,
) -> (
    Dispatcher,
    tempfile::TempDir,
    (
        wasmbot::infra::alert::Alerter,
        tokio::sync::mpsc::UnboundedReceiver<String>,
    ),
) {
    let settings = VectorSettings::from_lookup(|name| match name {
        "EMBEDDINGS_URL" => embeddings_url.map(str::to_string),
        "EMBEDDINGS_MODEL" => Some("fake-embed-1".into()),
        "EMBEDDINGS_API_KEY" => Some("sk-embed-test".into()),
        _ => None,
    })
    .unwrap();
    let (alerter, alerts) = common::alerts::alerter_with_inbox();
    let services = HostServices {
        vectors: Some(VectorStore::embedded(vectors_dir.to_path_buf())),
        embeddings: settings
            .embeddings
            .as_ref()
            .map(|s| Arc::new(EmbeddingsClient::new(s).unwrap())),
        alerter: alerter.clone(),
        ..HostServices::default()
    };
    let dir = plugins_dir(&["assistant"]);
    let registry = registry(dir.path()).await;
    assert!(
        registry.snapshot().errors().is_empty(),
        "{:?}",
        registry.snapshot().errors()
    );
    (
        Dispatcher::new(registry, None).with_services(services),
        dir,
        (alerter, alerts),
    )
}

async fn say(bot: &Dispatcher, chat_id: i64, text: &str) -> String {
    let message = IncomingMessage::private(chat_id, 7, Some("ada"), text);
    bot.handle(message)
        .await
        .unwrap_or_else(|| panic!("no reply to {text:?}"))
        .text()
}

#[tokio::test(flavor = "multi_thread")]
async fn remember_recall_and_forget_per_chat() {
    let (fake, url) = FakeEmbeddings::start().await;
    let vectors = tempfile::tempdir().unwrap();
    let (bot, _plugins, _alerts) = memory_bot(Some(&url), vectors.path()).await;

    for note in [
        "the spare key is under the blue flower pot",
        "dentist appointment on friday at nine",
        "wifi password is written on the fridge",
    ] {
        let reply = say(&bot, 42, &format!("/remember {note}")).await;
        assert!(reply.starts_with("Remembered"), "{reply}");
    }
    say(
        &bot,
        99,
        "/remember the key to chat 99's bike lock is in the drawer",
    )
    .await;

    let reply = say(&bot, 42, "/recall where is the spare key").await;
    let first = reply.lines().next().unwrap();
    assert!(
        first.starts_with("1. the spare key is under the blue flower pot ("),
        "{reply}"
    );
    assert_eq!(reply.lines().count(), 3, "this chat's three notes: {reply}");
    assert!(
        !reply.contains("bike lock"),
        "another chat's note leaked: {reply}"
    );
    let reply = say(&bot, 42, "/recall dentist appointment").await;
    assert!(reply.starts_with("1. dentist appointment"), "{reply}");
    let reply = say(&bot, 99, "/recall key").await;
    assert_eq!(reply.lines().count(), 1, "{reply}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 7, "one embedding per /remember and /recall");
    let (auth, body) = &requests[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-embed-test"));
    assert_eq!(body["model"], "fake-embed-1");
    assert_eq!(
        body["input"][0],
        "the spare key is under the blue flower pot"
    );

    let reply = say(&bot, 42, "/forget").await;
    assert!(reply.starts_with("Forgotten"), "{reply}");
    let reply = say(&bot, 42, "/recall spare key").await;
    assert!(
        reply.starts_with("Nothing remembered in this chat"),
        "{reply}"
    );
    let reply = say(&bot, 99, "/recall key").await;
    assert!(reply.contains("bike lock"), "/forget is per chat: {reply}");

    assert_eq!(say(&bot, 42, "/remember").await, "Usage: /remember <text>");
    assert!(say(&bot, 42, "/recall").await.starts_with("Usage: /recall"));
    let reply = say(&bot, 5, "/forget").await;
    assert!(
        reply.starts_with("Forgotten"),
        "nothing to forget is fine: {reply}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn switching_embeddings_models_loses_no_note() {
    let (fake, url) = FakeEmbeddings::start().await;
    let vectors = tempfile::tempdir().unwrap();
    let (bot, _plugins, _alerts) = memory_bot(Some(&url), vectors.path()).await;
    for note in [
        "the spare key is under the blue flower pot",
        "dentist on friday",
    ] {
        say(&bot, 42, &format!("/remember {note}")).await;
    }
    say(&bot, 99, "/remember chat 99 parks on level three").await;
    let collections = |names: &[&str]| {
        let mut found: Vec<String> = std::fs::read_dir(vectors.path().join("assistant"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(found, names);
    };
    collections(&["notes-128"]);

    // The operator switches to a model with smaller vectors.
    fake.switch_model(64);
    let reply = say(&bot, 42, "/recall where is the spare key").await;
    assert!(
        reply.starts_with("1. the spare key is under the blue flower pot ("),
        "{reply}"
    );
    assert_eq!(reply.lines().count(), 2, "both notes moved: {reply}");
    collections(&["notes-128", "notes-64"]);
    let reply = say(&bot, 42, "/remember the boat is at pier seven").await;
    assert!(reply.starts_with("Remembered"), "{reply}");

    // The last chat to move out takes the old collection with it.
    let reply = say(&bot, 99, "/recall parking").await;
    assert!(reply.contains("level three"), "{reply}");
    collections(&["notes-64"]);
    assert_eq!(
        say(&bot, 42, "/recall spare key").await.lines().count(),
        3,
        "chat 42's three notes, chat 99's kept apart"
    );

    // Back to the first model, then /forget reaches every collection.
    fake.switch_model(128);
    say(&bot, 99, "/remember chat 99 likes tea").await;
    let reply = say(&bot, 42, "/forget").await;
    assert!(reply.starts_with("Forgotten"), "{reply}");
    let reply = say(&bot, 42, "/recall spare key").await;
    assert!(reply.starts_with("Nothing remembered"), "{reply}");
    let reply = say(&bot, 99, "/recall parking").await;
    assert_eq!(reply.lines().count(), 2, "chat 99 keeps both: {reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_embeddings_the_user_is_told_what_to_configure() {
    let vectors = tempfile::tempdir().unwrap();
    let (bot, _plugins, _alerts) = memory_bot(None, vectors.path()).await;
    for command in ["/remember buy milk", "/recall milk"] {
        let reply = say(&bot, 42, command).await;
        assert!(
            reply.contains("no embeddings provider is configured"),
            "{reply}"
        );
        assert!(reply.contains("EMBEDDINGS_URL"), "{reply}");
    }
    assert!(
        std::fs::read_dir(vectors.path()).unwrap().next().is_none(),
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_provider_gets_a_friendly_reply_and_one_alert() {
    let (fake, url) = FakeEmbeddings::start().await;
    let vectors = tempfile::tempdir().unwrap();
    let (bot, _plugins, (alerter, mut alerts)) = memory_bot(Some(&url), vectors.path()).await;
    fake.fail_with(503);
    for _ in 0..2 {
        let reply = say(&bot, 42, "/remember buy milk").await;
        assert!(reply.contains("temporarily unavailable"), "{reply}");
    }
    let sent = common::alerts::alerts_so_far(&alerter, &mut alerts).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("HTTP 503"), "{sent:?}");
    assert!(!sent[0].contains("sk-embed-test"), "no key in alerts");
}

/// `wasmbot chat` with only `env` (and temp folders) set, as user `user_id`.
fn chat(
    plugins: &std::path::Path,
    data: &std::path::Path,
    env: &[(&str, &str)],
    user_id: i64,
    input: &str,
) -> String {
    let plugins = plugins.to_string_lossy();
    let mut env = env.to_vec();
    env.push(("PLUGINS_DIR", &plugins));
    let output = chat_binary(data, &env, &["--user-id", &user_id.to_string()], input);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn wasmbot_chat_remembers_across_a_restart_with_only_embeddings_url_set() {
    let (_fake, url) = FakeEmbeddings::start().await;
    let plugins = plugins_dir(&["assistant"]);
    let data = tempfile::tempdir().unwrap();
    let (p, d) = (plugins.path().to_path_buf(), data.path().to_path_buf());
    let first = {
        let (p, d, url) = (p.clone(), d.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            let env = [("EMBEDDINGS_URL", url.as_str())];
            chat(
                &p,
                &d,
                &env,
                1,
                "/remember the boat is moored at pier seven\n",
            )
        })
        .await
        .unwrap()
    };
    assert!(first.contains("Remembered"), "{first}");
    let second = tokio::task::spawn_blocking(move || {
        let env = [("EMBEDDINGS_URL", url.as_str())];
        chat(&p, &d, &env, 1, "/recall where is the boat\n")
    })
    .await
    .unwrap();
    assert!(
        second.contains("1. the boat is moored at pier seven"),
        "{second}"
    );
    assert!(
        data.path()
            .join("data/vectors/assistant/notes-128")
            .is_dir(),
        "the embedded default lives under data/"
    );
}

/// The done-when of the servers: the same binary and plugins, with
/// QDRANT_URL (the fake Qdrant over gRPC) and REDIS_URL (the machine's Redis)
/// set, keep nothing under data/vectors and use the servers instead.
#[tokio::test(flavor = "multi_thread")]
async fn wasmbot_chat_uses_qdrant_and_redis_when_their_urls_are_set() {
    let (_embeddings, embeddings_url) = FakeEmbeddings::start().await;
    let (qdrant, qdrant_url) = FakeQdrant::start(None).await;
    let (_claude, claude_url) = FakeAnthropic::start().await;
    let redis_url =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // A user of its own, so the question counter is this run's alone.
    let user_id = i64::from(std::process::id()) * 1000 + 7;
    let plugins = plugins_dir(&["assistant"]);
    let data = tempfile::tempdir().unwrap();
    let (p, d) = (plugins.path().to_path_buf(), data.path().to_path_buf());
    let (redis, qdrant_for_chat) = (redis_url.clone(), qdrant_url.clone());
    let output = tokio::task::spawn_blocking(move || {
        let env = [
            ("EMBEDDINGS_URL", embeddings_url.as_str()),
            ("QDRANT_URL", qdrant_for_chat.as_str()),
            ("REDIS_URL", redis.as_str()),
            ("ANTHROPIC_BASE_URL", claude_url.as_str()),
            ("ANTHROPIC_API_KEY", "sk-ant-test"),
        ];
        let input =
            "/remember the boat is moored at pier seven\n/recall where is the boat\n/ask hello\n";
        chat(&p, &d, &env, user_id, input)
    })
    .await
    .unwrap();
    assert!(output.contains("Remembered"), "{output}");
    assert!(
        output.contains("1. the boat is moored at pier seven"),
        "{output}"
    );
    assert!(output.contains("Claude says: hello"), "{output}");

    assert_eq!(qdrant.collections(), ["wasmbot.assistant.notes-128"]);
    assert_eq!(qdrant.points("wasmbot.assistant.notes-128"), Some(1));
    assert!(
        !data.path().join("data/vectors").exists(),
        "nothing in the embedded engine"
    );

    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("wasmbot:plugin:assistant:questions:{user_id}");
    let (count, ttl_ms): (Option<i64>, i64) = redis::pipe()
        .get(&key)
        .pttl(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(count, Some(1), "/ask counted the question in Redis");
    assert!(
        ttl_ms > 0 && ttl_ms <= 60_000,
        "a one-minute window: {ttl_ms}"
    );
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_memory_says_so_and_forgetting_makes_room() {
    let (_fake, url) = FakeEmbeddings::start().await;
    let vectors = tempfile::tempdir().unwrap();
    let settings = VectorSettings::from_lookup(|name| match name {
        "EMBEDDINGS_URL" => Some(url.clone()),
        "EMBEDDINGS_MODEL" => Some("fake-embed-1".into()),
        _ => None,
    })
    .unwrap();
    let services = HostServices {
        vectors: Some(VectorStore::embedded(vectors.path().to_path_buf())),
        embeddings: settings
            .embeddings
            .as_ref()
            .map(|s| Arc::new(EmbeddingsClient::new(s).unwrap())),
        ..HostServices::default()
    };
    let dir = plugins_dir(&["assistant"]);
    common::set_limits(dir.path(), "assistant", "vector_points = 2");
    let bot = Dispatcher::new(registry(dir.path()).await, None).with_services(services);
    for note in ["the key is under the pot", "the bike is in the shed"] {
        let reply = say(&bot, 42, &format!("/remember {note}")).await;
        assert!(!reply.contains("full"), "{reply}");
    }
    assert_eq!(
        say(&bot, 42, "/remember the car is blue").await,
        "My memory is full: nothing more can be kept until something is forgotten."
    );
    say(&bot, 42, "/forget").await;
    let reply = say(&bot, 42, "/remember the car is blue").await;
    assert!(!reply.contains("full"), "{reply}");
}
