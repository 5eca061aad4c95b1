//! The llm capability and the `assistant` plugin (`/ask`) against a fake Anthropic server:
//! what is sent, what is logged and audited, and the error policy (friendly
//! replies, admin alerts at most once per 5 minutes, one recovery notice).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::anthropic::{Answer, FakeAnthropic, StreamEnd};
use common::{ask, plugins_dir};
use wasmbot::chat::Dispatcher;
use wasmbot::infra::audit::AuditWriter;
use wasmbot::infra::llm::{LlmClient, LlmSettings};
use wasmbot::infra::services::HostServices;
use wasmbot::infra::store::{AuditEntry, Store};

const API_KEY: &str = "sk-ant-api03-TESTKEY-abcdef0123456789";
const MODEL: &str = "claude-test-model";

struct LlmHost {
    dispatcher: Dispatcher,
    fake: Arc<FakeAnthropic>,
    store: Store,
    audit: Arc<AuditWriter>,
    alerter: wasmbot::infra::alert::Alerter,
    alerts: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<String>>,
    _dirs: (tempfile::TempDir, common::stores::TestStore),
}

async fn llm_host(vars: &[(&str, &str)], plugins: &[&str]) -> LlmHost {
    let (fake, url) = FakeAnthropic::start().await;
    let mut all: Vec<(&str, &str)> = vec![("ANTHROPIC_BASE_URL", &url), ("LLM_MODEL", MODEL)];
    all.extend_from_slice(vars);
    let settings = LlmSettings::from_lookup(|name| {
        all.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let test_store = common::stores::sqlite().await;
    let store = test_store.store.clone();
    let audit = Arc::new(AuditWriter::start(store.clone(), 10_000));
    let (alerter, alerts) = common::alerts::alerter_with_inbox();
    let services = HostServices {
        store: Some(store.clone()),
        vault: None,
        audit: Some(audit.clone()),
        llm: LlmClient::from_settings(&settings).unwrap().map(Arc::new),
        alerter: alerter.clone(),
        health: None,
        ..HostServices::default()
    };
    let dir = plugins_dir(plugins);
    let registry = common::registry(dir.path()).await;
    assert!(
        registry.snapshot().errors().is_empty(),
        "{:?}",
        registry.snapshot().errors()
    );
    LlmHost {
        dispatcher: Dispatcher::new(registry, None).with_services(services),
        fake,
        store,
        audit,
        alerter,
        alerts: tokio::sync::Mutex::new(alerts),
        _dirs: (dir, test_store),
    }
}

impl LlmHost {
    async fn audit_of(&self, correlation_id: &str) -> Vec<AuditEntry> {
        self.audit.shutdown(Duration::from_secs(5)).await;
        self.store
            .audit_for_correlation(correlation_id)
            .await
            .unwrap()
    }

    /// Alerts delivered so far (see `common::alerts::alerts_so_far`).
    async fn alerts(&self) -> Vec<String> {
        let mut inbox = self.alerts.lock().await;
        common::alerts::alerts_so_far(&self.alerter, &mut inbox).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_question_is_sent_with_the_key_in_the_header_answered_remembered_and_audited() {
    let host = llm_host(&[("ANTHROPIC_API_KEY", API_KEY)], &["assistant"]).await;
    let d = &host.dispatcher;
    assert_eq!(
        ask(d, "/ask What is Rust?").await,
        "Claude says: What is Rust?"
    );
    let first = &host.fake.requests()[0];
    assert_eq!(first.headers["x-api-key"], API_KEY);
    assert_eq!(first.headers["anthropic-version"], "2023-06-01");
    assert!(!first.headers.contains_key("authorization"));
    assert_eq!(first.body["model"], MODEL);
    assert_eq!(first.body["max_tokens"], 4096);
    assert!(first.body["system"].as_str().unwrap().contains("assistant"));
    assert_eq!(
        first.body["messages"],
        serde_json::json!([{"role": "user", "content": "What is Rust?"}])
    );
    assert!(
        !first.body.to_string().contains(API_KEY),
        "the key is only in the header"
    );

    // A follow-up carries the previous turn; reset forgets it.
    let reply = d.handle(common::message("/ask And why?")).await.unwrap();
    assert_eq!(reply.text(), "Claude says: And why?");
    let requests = host.fake.requests();
    let roles: Vec<&str> = requests[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(
        ask(d, "/ask reset").await,
        "Done: I've forgotten our conversation."
    );
    ask(d, "/ask Fresh start").await;
    assert_eq!(
        host.fake.requests()[2].body["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let entries = host.audit_of(&reply.correlation_id).await;
    let llm = entries
        .iter()
        .find(|e| e.action == "llm_request")
        .expect("an llm_request entry");
    assert_eq!(
        (
            llm.status.as_str(),
            llm.model.as_deref(),
            llm.plugin.as_deref()
        ),
        ("ok", Some(MODEL), Some("assistant"))
    );
    assert_eq!(llm.metadata.0["input_tokens"], 30);
    assert_eq!(llm.metadata.0["output_tokens"], 7);
    assert!(
        entries
            .iter()
            .any(|e| e.action == "command" && e.status == "ok")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oauth_token_is_sent_as_a_bearer_with_the_beta_header() {
    let host = llm_host(
        &[("ANTHROPIC_AUTH_TOKEN", "sk-ant-oat01-TOKEN")],
        &["assistant"],
    )
    .await;
    ask(&host.dispatcher, "/ask hi").await;
    let headers = &host.fake.requests()[0].headers;
    assert_eq!(headers["authorization"], "Bearer sk-ant-oat01-TOKEN");
    assert_eq!(headers["anthropic-beta"], "oauth-2025-04-20");
    assert!(!headers.contains_key("x-api-key"));
}

#[tokio::test(flavor = "multi_thread")]
async fn overloaded_and_down_are_unavailable_with_one_alert_and_one_recovery_notice() {
    let host = llm_host(&[("ANTHROPIC_API_KEY", API_KEY)], &["assistant"]).await;
    host.fake.script([
        Answer::Error(529, "overloaded_error", None),
        Answer::Error(503, "api_error", None),
    ]);
    let d = &host.dispatcher;
    let reply = ask(d, "/ask one").await;
    assert!(
        reply.starts_with("Claude is temporarily unavailable."),
        "{reply}"
    );
    assert!(
        ask(d, "/ask two")
            .await
            .starts_with("Claude is temporarily unavailable.")
    );
    let alerts = host.alerts().await;
    assert_eq!(
        alerts.len(),
        1,
        "a second outage within 5 minutes sends no alert: {alerts:?}"
    );
    assert!(
        alerts[0].contains("Claude is temporarily unavailable (HTTP 529"),
        "{alerts:?}"
    );

    assert_eq!(ask(d, "/ask three").await, "Claude says: three");
    ask(d, "/ask four").await;
    assert_eq!(
        host.alerts().await,
        ["✅ Claude is available again."],
        "exactly one recovery notice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limited_is_a_warning_without_alert_and_a_refused_key_alerts() {
    let host = llm_host(&[("ANTHROPIC_API_KEY", API_KEY)], &["assistant"]).await;
    host.fake.script([
        Answer::Error(429, "rate_limit_error", Some(7)),
        Answer::Error(401, "authentication_error", None),
        Answer::Error(400, "invalid_request_error", None),
    ]);
    let d = &host.dispatcher;
    assert_eq!(
        ask(d, "/ask a").await,
        "I'm getting too many requests right now. Please try again in 7 seconds."
    );
    assert!(host.alerts().await.is_empty(), "a 429 alerts nobody");
    assert!(
        ask(d, "/ask b")
            .await
            .starts_with("I can't reach Claude because of an API key problem.")
    );
    let alerts = host.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].starts_with("🔑 API key issue detected"),
        "{alerts:?}"
    );
    assert!(!alerts[0].contains(API_KEY));
    assert_eq!(
        ask(d, "/ask c").await,
        "Claude couldn't process that request: fake invalid_request_error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_server_is_a_timeout_and_no_key_is_not_configured() {
    let host = llm_host(
        &[("ANTHROPIC_API_KEY", API_KEY), ("LLM_TIMEOUT_SECS", "1")],
        &["assistant"],
    )
    .await;
    host.fake.script([Answer::Slow(Duration::from_secs(3))]);
    let reply = host
        .dispatcher
        .handle(common::message("/ask slow"))
        .await
        .unwrap();
    assert!(
        reply.text().starts_with("Claude took too long to answer."),
        "{}",
        reply.text()
    );
    let entries = host.audit_of(&reply.correlation_id).await;
    assert!(
        entries
            .iter()
            .any(|e| e.action == "llm_request" && e.status == "timeout"),
        "{entries:?}"
    );

    let unconfigured = llm_host(&[], &["assistant"]).await;
    let reply = ask(&unconfigured.dispatcher, "/ask anyone there?").await;
    assert!(
        reply.starts_with("I can't answer that: no language model is configured"),
        "{reply}"
    );
    assert!(unconfigured.fake.requests().is_empty());
    assert!(
        ask(&unconfigured.dispatcher, "/ask")
            .await
            .starts_with("Ask me anything: /ask <question>")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_without_the_llm_grant_cannot_import_it() {
    let dir = plugins_dir(&["assistant"]);
    let manifest = std::fs::read_to_string(dir.path().join("assistant.toml")).unwrap();
    std::fs::write(
        dir.path().join("assistant.toml"),
        manifest.replace(
            "capabilities = [\"llm\", \"agent\", \"state\", \"cache\", \"vectors\", \"media\"]",
            "capabilities = [\"state\", \"cache\", \"vectors\", \"media\"]",
        ),
    )
    .unwrap();
    let registry = common::registry(dir.path()).await;
    let errors = registry.snapshot().errors().to_vec();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].reason,
        "imports wasmbot:plugin/llm but the manifest does not grant `llm` (add it to `capabilities`)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_logs_llm_response_with_the_correlation_id_and_never_the_key() {
    let (fake, url) = FakeAnthropic::start().await;
    let plugins = plugins_dir(&["assistant"]);
    let data = tempfile::tempdir().unwrap();
    let output = tokio::task::spawn_blocking({
        let (plugins, data) = (plugins.path().to_path_buf(), data.path().to_path_buf());
        move || {
            let plugins = plugins.to_string_lossy();
            let env = [
                ("PLUGINS_DIR", &*plugins),
                ("ANTHROPIC_API_KEY", API_KEY),
                ("ANTHROPIC_BASE_URL", &url),
                ("LOG_LEVEL", "info"),
                ("LOG_FORMAT", "json"),
            ];
            common::chat_binary(&data, &env, &[], "/ask Is the key safe?\n")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "Claude says: Is the key safe?");
    assert_eq!(fake.requests().len(), 1);
    // The console streams the answer (the fake counts its six words as tokens).
    assert_eq!(fake.requests()[0].body["stream"], true);
    let event: serde_json::Value = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "llm_response")
        .unwrap_or_else(|| panic!("no llm_response event in {stderr}"));
    assert_eq!(
        (
            event["input_tokens"].as_u64(),
            event["output_tokens"].as_u64()
        ),
        (Some(10), Some(6)),
        "{event}"
    );
    assert_eq!(
        (event["stop_reason"].as_str(), event["model"].as_str()),
        (Some("end_turn"), Some("claude-sonnet-4-5"))
    );
    assert_eq!(
        event["span"]["correlation_id"].as_str().map(str::len),
        Some(32),
        "{event}"
    );
    assert!(
        !stderr.contains(API_KEY) && !stdout.contains(API_KEY),
        "the key reached the output"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_eleventh_question_in_a_minute_waits_without_spending_tokens() {
    let host = llm_host(&[("ANTHROPIC_API_KEY", API_KEY)], &["assistant"]).await;
    for i in 1..=10 {
        let reply = ask(&host.dispatcher, &format!("/ask question {i}")).await;
        assert_eq!(reply, format!("Claude says: question {i}"));
    }
    let reply = ask(&host.dispatcher, "/ask one more").await;
    assert!(reply.contains("10 questions this minute"), "{reply}");
    assert_eq!(
        host.fake.requests().len(),
        10,
        "the refused question reached no model"
    );
    // The counter is per user: someone else in the same chat may still ask.
    let other = wasmbot::chat::IncomingMessage {
        user_id: 8,
        ..common::message("/ask my turn")
    };
    let reply = host.dispatcher.handle(other).await.unwrap().text();
    assert_eq!(reply, "Claude says: my turn");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_answer_arrives_as_it_is_written_and_a_broken_one_keeps_what_came() {
    use wasmbot::infra::llm::{CompletionRequest, LlmFailure, Role, Turn};
    let (fake, url) = FakeAnthropic::start().await;
    let settings = LlmSettings::from_lookup(|name| match name {
        "ANTHROPIC_BASE_URL" => Some(url.clone()),
        "ANTHROPIC_API_KEY" => Some(API_KEY.to_string()),
        "LLM_MODEL" => Some(MODEL.to_string()),
        _ => None,
    })
    .unwrap();
    let client = LlmClient::from_settings(&settings).unwrap().unwrap();
    let request = CompletionRequest {
        system: None,
        messages: vec![Turn::text(Role::User, "Hi")],
        max_tokens: None,
        tools: Vec::new(),
    };
    let gate = Arc::new(tokio::sync::Notify::new());
    fake.script([
        Answer::Stream {
            words: vec!["Hello", " there", "!"],
            gate: Some(gate.clone()),
            end: StreamEnd::Stop,
        },
        Answer::Stream {
            words: vec!["Half", " an"],
            gate: None,
            end: StreamEnd::Error,
        },
        Answer::Stream {
            words: vec!["Cut"],
            gate: None,
            end: StreamEnd::Cut,
        },
    ]);
    // The server sends the second word only once the client has handed the
    // first on: a client that waited for the whole body would never finish.
    let mut pieces = Vec::new();
    let completion = tokio::time::timeout(
        Duration::from_secs(30),
        client.complete_streaming(&request, &mut |text| {
            pieces.push(text.to_string());
            gate.notify_one();
        }),
    )
    .await
    .expect("the first word reached the caller before the rest was sent")
    .unwrap();
    assert_eq!(pieces, ["Hello", " there", "!"]);
    assert_eq!(completion.text, "Hello there!");
    assert_eq!(
        (completion.stop_reason.as_str(), completion.model.as_str()),
        ("end_turn", MODEL)
    );
    assert_eq!((completion.input_tokens, completion.output_tokens), (10, 3));
    let sent = fake.requests();
    assert_eq!(sent[0].body["stream"], true);
    assert_eq!(sent[0].headers["x-api-key"], API_KEY);

    let broken = client
        .complete_streaming(&request, &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(broken.partial.text, "Half an");
    assert!(
        matches!(&broken.failure, LlmFailure::Unavailable(why) if why.contains("Overloaded")),
        "{broken:?}"
    );
    let cut = client
        .complete_streaming(&request, &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(cut.partial.text, "Cut");
    assert!(matches!(cut.failure, LlmFailure::Unavailable(_)), "{cut:?}");
}
