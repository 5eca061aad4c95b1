//! The real Telegram adapter against a local Bot API emulator on 127.0.0.1:
//! polling and webhook modes, groups, long replies, the allow-list, 429s,
//! repeated updates, the command menu, admin alerts and graceful shutdown.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::bot_api::{BOT_USERNAME, BotApi};
use common::running_bot::{RunningBot, TOKEN};

const ADMIN_CHAT: i64 = common::running_bot::ADMIN_CHAT;
const ALLOWED: i64 = common::running_bot::ALLOWED;
const STRANGER: i64 = 666;

/// (user_id, plugin, action, status) of every audit entry.
async fn audit_rows(db: &std::path::Path) -> Vec<(Option<i64>, Option<String>, String, String)> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let rows =
        sqlx::query_as("SELECT user_id, plugin, action, status FROM audit_trail ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows
}

/// The allowed user's /start left a `command` entry with status ok.
async fn assert_start_was_audited(db: &std::path::Path) {
    let rows = audit_rows(db).await;
    let expected = (
        Some(ALLOWED),
        Some("start".into()),
        "command".into(),
        "ok".into(),
    );
    assert!(rows.contains(&expected), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn start_is_answered_by_the_plugin_and_the_menu_matches_the_plugins() {
    let bot = RunningBot::start(&[]).await;
    assert!(
        bot.api.called("getMe") && bot.api.called("deleteWebhook"),
        "polling mode removes any webhook first"
    );
    bot.api.push(ALLOWED, ALLOWED, "/start");
    let sent = bot.api.wait_for_sent(ALLOWED, 1).await;
    assert_eq!(
        sent[0].text,
        "Hello, ada! I'm your wasmbot assistant. Send /help to see what I can do."
    );
    assert_eq!(sent[0].parse_mode, None);

    let menu = bot
        .api
        .commands
        .lock()
        .unwrap()
        .clone()
        .expect("setMyCommands was called");
    let names: Vec<&str> = menu.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, ["echo", "help", "say", "start"]);
    assert!(
        menu.contains(&("start".into(), "Say hello and show how to begin".into())),
        "{menu:?}"
    );

    let (api, db, _data) = bot.stop().await;
    // The offset of the handled update was confirmed on the way out.
    let offsets = api.offsets.lock().unwrap().clone();
    assert!(offsets.last().copied().unwrap_or(0) > 1000, "{offsets:?}");
    assert_start_was_audited(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_command_addressed_to_us_is_answered_and_one_for_another_bot_is_not() {
    let bot = RunningBot::start(&[]).await;
    let group = -1_001_234_567_890;
    bot.api.push(group, ALLOWED, "/start@other_bot");
    bot.api
        .push(group, ALLOWED, &format!("/start@{BOT_USERNAME}"));
    let sent = bot.api.wait_for_sent(group, 1).await;
    assert!(sent[0].text.starts_with("Hello, ada!"), "{sent:?}");
    // Same chat, in order: had the first been answered it would be here already.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        bot.api.sent().iter().filter(|s| s.chat_id == group).count(),
        1
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_5000_character_reply_arrives_as_two_messages_and_rejected_markup_is_resent_plain() {
    let bot = RunningBot::start(&[]).await;
    let lines: Vec<String> = (0..100)
        .map(|i| format!("line {i:03} {}", "x".repeat(40)))
        .collect();
    bot.api
        .push(ALLOWED, ALLOWED, &format!("/echo {}", lines.join("\n")));
    let sent = bot.api.wait_for_sent(ALLOWED, 2).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    let total: usize = sent.iter().map(|s| s.text.chars().count()).sum();
    assert!(total > 4096, "{total}");
    for part in &sent {
        assert!(part.text.chars().count() <= 4096);
    }
    // echo replies in MarkdownV2. The first part is valid markup; the second
    // ends in an unescaped '(' that Telegram refuses, so it is resent plain.
    assert_eq!(sent[0].parse_mode.as_deref(), Some("MarkdownV2"));
    assert_eq!(sent[1].parse_mode, None);
    let joined = format!("{}\n{}", sent[0].text, sent[1].text);
    for line in &lines {
        assert!(joined.contains(line.as_str()), "{line} lost");
    }
    assert!(sent[0].text.starts_with("echo: line 000"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stranger_is_refused_once_audited_and_no_plugin_runs() {
    let bot = RunningBot::start(&[]).await;
    bot.api.push(STRANGER, STRANGER, "/echo let me in");
    bot.api.push(STRANGER, STRANGER, "/echo please");
    let sent = bot.api.wait_for_sent(STRANGER, 1).await;
    assert_eq!(
        sent[0].text,
        "Sorry, this is a private assistant and you are not on its list of users."
    );
    bot.api.push(ALLOWED, ALLOWED, "/start");
    bot.api.wait_for_sent(ALLOWED, 1).await;
    assert_eq!(
        bot.api
            .sent()
            .iter()
            .filter(|s| s.chat_id == STRANGER)
            .count(),
        1,
        "one refusal, not one per message"
    );
    // Both refusals are audited once the second was handled too.
    bot.wait_handled(3).await;
    let (_, db, _data) = bot.stop().await;
    let rows = audit_rows(&db).await;
    let stranger: Vec<_> = rows.iter().filter(|r| r.0 == Some(STRANGER)).collect();
    assert_eq!(stranger.len(), 2, "{rows:?}");
    for row in stranger {
        assert_eq!(
            (row.1.as_deref(), row.2.as_str(), row.3.as_str()),
            (None, "access", "denied"),
            "a plugin ran: {row:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_is_waited_out_and_a_repeated_update_is_handled_once() {
    let bot = RunningBot::start(&[]).await;
    bot.api.retry_after_secs.store(1, Ordering::SeqCst);
    bot.api.throttle_sends.store(1, Ordering::SeqCst);
    let update = bot.api.update(ALLOWED, ALLOWED, "/start");
    bot.api.push_update(update.clone());
    let sent = bot.api.wait_for_sent(ALLOWED, 1).await;
    let throttled_at = bot
        .api
        .throttled_at
        .lock()
        .unwrap()
        .expect("the first send was throttled");
    let waited = sent[0].at - throttled_at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, before retry_after"
    );

    // Telegram delivering the same update again (e.g. after a timeout) is ignored.
    bot.api.push_update(update);
    bot.api.push(ALLOWED, ALLOWED, "/echo after");
    let sent = bot.api.wait_for_sent(ALLOWED, 2).await;
    assert!(
        sent[1].text.starts_with("echo: after"),
        "the repeat was answered: {sent:?}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_mode_accepts_a_signed_update_and_rejects_an_unsigned_one() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = format!("http://127.0.0.1:{port}/telegram/hook");
    let bot = RunningBot::start(&[
        ("WEBHOOK_URL", hook.clone()),
        ("HTTP_ADDR", format!("127.0.0.1:{port}")),
    ])
    .await;
    let (url, secret) = bot.api.webhook.lock().unwrap().clone().unwrap();
    assert_eq!(url, hook);
    assert!(
        secret.len() >= 32 && !secret.contains(TOKEN),
        "secret {secret:?}"
    );
    assert!(!bot.api.called("getUpdates"), "webhook mode does not poll");

    let client = reqwest::Client::new();
    let post = |update: serde_json::Value, token: Option<&str>| {
        let mut request = client
            .post(&hook)
            .header("content-type", "application/json")
            .body(update.to_string());
        if let Some(token) = token {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", token);
        }
        request.send()
    };
    let unsigned = post(bot.api.update(ALLOWED, ALLOWED, "/echo unsigned"), None)
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let forged = post(
        bot.api.update(ALLOWED, ALLOWED, "/echo forged"),
        Some("not-the-secret"),
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), 401);
    let signed = post(
        bot.api.update(ALLOWED, ALLOWED, "/echo signed"),
        Some(&secret),
    )
    .await
    .unwrap();
    assert_eq!(signed.status(), 200);
    let sent = bot.api.wait_for_sent(ALLOWED, 1).await;
    assert!(sent[0].text.starts_with("echo: signed"), "{sent:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(bot.api.sent().len(), 1, "an unsigned update was handled");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_reload_alerts_the_admin_and_a_removed_plugin_leaves_the_menu() {
    let bot = RunningBot::start(&[]).await;
    std::fs::write(bot.plugins.path().join("echo.wasm"), b"half a component").unwrap();
    let alerts = bot.api.wait_for_sent(ADMIN_CHAT, 1).await;
    assert!(
        alerts[0]
            .text
            .contains("Plugin `echo` was not reloaded: not a valid WebAssembly component"),
        "{alerts:?}"
    );
    bot.api.push(ALLOWED, ALLOWED, "/echo still here");
    assert!(
        bot.api.wait_for_sent(ALLOWED, 1).await[0]
            .text
            .starts_with("echo: still here")
    );

    std::fs::remove_file(bot.plugins.path().join("echo.wasm")).unwrap();
    std::fs::remove_file(bot.plugins.path().join("echo.toml")).unwrap();
    bot.wait_until(|api| {
        api.commands
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|menu| !menu.iter().any(|(c, _)| c == "echo"))
    })
    .await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_real_binary_answers_then_stops_cleanly_on_sigterm_with_the_audit_flushed() {
    let (api, url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["start"]);
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("bot.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .arg("run")
        .current_dir(data.path())
        .env_clear()
        .env("PLUGINS_DIR", plugins.path())
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("TELEGRAM_API_URL", &url)
        .env("TELEGRAM_ALLOWED_USERS", ALLOWED.to_string())
        .env("LOG_FORMAT", "json")
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    api.push(ALLOWED, ALLOWED, "/start");
    let sent = api.wait_for_sent(ALLOWED, 1).await;
    assert!(sent[0].text.starts_with("Hello, ada!"));
    // The bot serves its readiness and metrics beside the polling loop.
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"wasmbot_messages_total{plugin="start",status="ok"} 1"#),
        "{metrics}"
    );

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "exit {status:?}: {logs}");
    assert!(
        logs.contains("shutdown signal received") && logs.contains("\"stopped\""),
        "{logs}"
    );
    assert!(
        !logs.contains(TOKEN) && !logs.contains("TEST-token"),
        "the token reached the log: {logs}"
    );
    assert_start_was_audited(&db).await;
}

#[test]
fn run_without_a_token_is_a_configuration_error() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .arg("run")
        .env_clear()
        .env("PLUGINS_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim_end(),
        "wasmbot: configuration error: TELEGRAM_BOT_TOKEN: not set; `wasmbot run` needs the token @BotFather gave you (or talk to the bot with `wasmbot chat`)"
    );
}
