//! At-least-once Telegram handling with the real `wasmbot run` binary against
//! the Bot API emulator: updates are kept in the inbox before Telegram is told
//! they were received, so a process killed with SIGKILL while messages are
//! being handled answers them after a restart (polling and webhook); a poison
//! update is set aside after three attempts; a restart takes back its own
//! leases at once rather than when they run out; two replicas on one PostgreSQL
//! handle each update once and in order per chat; the bot is closed by
//! default; the webhook checks its secret before reading a body and caps it.

mod common;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::bot_api::BotApi;
use serde_json::Value;
use wasmbot::infra::store::Claimant;

use common::processes::{
    ADMIN_CHAT, ALLOWED, Bot, Db, PATIENCE, TOKEN, free_port, post_update, registered_secret,
};

/// Six chats each wait on a slow command; the process dies mid-way.
const CHATS: [i64; 6] = [101, 102, 103, 104, 105, 106];

/// A claimant that is an instance of its own, run once.
fn alone(name: &str) -> Claimant {
    Claimant {
        instance: name.into(),
        run: name.into(),
    }
}

/// Each chat got exactly its one answer.
async fn assert_every_chat_answered_once(api: &BotApi) {
    for chat in CHATS {
        let sent = api.wait_for_sent_within(chat, 1, PATIENCE).await;
        assert_eq!(sent[0].text, format!("slow: chat {chat}"), "{sent:?}");
    }
    for chat in CHATS {
        let count = api.sent().iter().filter(|s| s.chat_id == chat).count();
        assert_eq!(count, 1, "chat {chat} answered {count} times");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_updates_in_flight_when_the_process_is_killed_are_answered_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    six_chats_survive_a_kill(Db::sqlite(data.path()), data, Delivery::Polling).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_updates_answered_200_survive_a_kill_and_a_restart() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    six_chats_survive_a_kill(db, tempfile::tempdir().unwrap(), Delivery::Webhook).await;
}

#[derive(Clone, Copy, PartialEq)]
enum Delivery {
    Polling,
    Webhook,
}

/// Six chats each wait on a 5-second command when the process is killed
/// with SIGKILL; after a restart each is answered exactly once.
async fn six_chats_survive_a_kill(db: Db, data: tempfile::TempDir, delivery: Delivery) {
    let (api, url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["slow"]);
    let extra: &[(&str, &str)] = match delivery {
        Delivery::Polling => &[],
        Delivery::Webhook => &[("WEBHOOK_URL", "http://127.0.0.1:{port}/telegram/hook")],
    };
    let mut bot = Bot::spawn(&url, plugins.path(), data.path(), &db, extra);
    bot.wait_serving().await;
    for chat in CHATS {
        // Chats are private chats with the allowed user in them.
        let text = format!("/slow 5000 chat {chat}");
        match delivery {
            Delivery::Polling => {
                api.push(chat, ALLOWED, &text);
            }
            Delivery::Webhook => {
                let hook = format!("http://127.0.0.1:{}/telegram/hook", bot.port);
                let update = api.update(chat, ALLOWED, &text);
                let status = post_update(&hook, &registered_secret(&api), &update).await;
                assert_eq!(status, 200);
            }
        }
    }
    // Every update is being handled: kept, claimed, and not finished.
    db.wait_rows("six claimed updates", |rows| {
        rows.len() == 6 && rows.iter().all(|r| r.2 == "pending" && r.3 == 1 && r.4)
    })
    .await;
    if delivery == Delivery::Polling {
        // Telegram is told they were received (the next getUpdates offset
        // moves past them): it will never deliver them again.
        let highest = db.rows().await.iter().map(|r| r.0).max().unwrap();
        let started = Instant::now();
        let offset = || api.offsets.lock().unwrap().iter().copied().max();
        while offset().unwrap_or(0) <= highest {
            assert!(
                started.elapsed() < PATIENCE,
                "the offset never moved past {highest}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(api.sent().is_empty(), "nothing was answered yet");
    bot.kill();

    let mut bot = Bot::spawn(&url, plugins.path(), data.path(), &db, extra);
    bot.wait_serving().await;
    assert_every_chat_answered_once(&api).await;
    db.wait_rows("every update done", |rows| {
        rows.len() == 6 && rows.iter().all(|r| r.2 == "done")
    })
    .await;
    bot.stop().await;
}

/// With the default lease (30 s), a restarted process answers the six
/// updates it was handling when it was killed within seconds: it takes back
/// the leases its own instance (the host name) holds instead of waiting for
/// them to run out.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_answers_updates_in_flight_without_waiting_for_their_leases() {
    let (api, url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["slow"]);
    let data = tempfile::tempdir().unwrap();
    let db = Db::sqlite(data.path());
    let default_lease = wasmbot::chat::telegram::DEFAULT_INBOX_LEASE_SECS.to_string();
    // The tests give each process a port of its own, so the default
    // (host:port) would differ between the two runs: name the instance,
    // as a restarted process with its own HTTP_ADDR would be.
    let lease = [
        ("INBOX_LEASE_SECS", default_lease.as_str()),
        ("INSTANCE_ID", "bot-1"),
    ];
    let mut bot = Bot::spawn(&url, plugins.path(), data.path(), &db, &lease);
    bot.wait_serving().await;
    // Every lease taken from here on ends no sooner than this plus the lease.
    let pushed = Instant::now();
    for chat in CHATS {
        api.push(chat, ALLOWED, &format!("/slow 5000 chat {chat}"));
    }
    db.wait_rows("six claimed updates", |rows| {
        rows.len() == 6 && rows.iter().all(|r| r.2 == "pending" && r.3 == 1 && r.4)
    })
    .await;
    assert!(api.sent().is_empty(), "nothing was answered yet");
    bot.kill();

    let restarted = Instant::now();
    let mut bot = Bot::spawn(&url, plugins.path(), data.path(), &db, &lease);
    bot.wait_serving().await;
    assert_every_chat_answered_once(&api).await;
    let leases_end =
        pushed + Duration::from_secs(wasmbot::chat::telegram::DEFAULT_INBOX_LEASE_SECS);
    eprintln!(
        "six updates in flight answered {:.1} s after the restart",
        restarted.elapsed().as_secs_f64()
    );
    assert!(
        Instant::now() < leases_end,
        "answered only after the killed process's leases ran out ({:.1} s after the restart)",
        restarted.elapsed().as_secs_f64()
    );
    let rows = db
        .wait_rows("every update done", |rows| {
            rows.len() == 6 && rows.iter().all(|r| r.2 == "done")
        })
        .await;
    assert!(rows.iter().all(|r| r.3 == 2), "one claim per run: {rows:?}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_update_is_set_aside_after_three_attempts_and_its_chat_goes_on() {
    let (api, url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["slow", "start"]);
    let data = tempfile::tempdir().unwrap();
    let db = Db::sqlite(data.path());
    // The process dies every time this update is being handled.
    api.push(ALLOWED, ALLOWED, "/slow 600000 never");
    for attempt in 1..=3 {
        let mut bot = Bot::spawn(&url, plugins.path(), data.path(), &db, &[]);
        bot.wait_serving().await;
        db.wait_rows(&format!("attempt {attempt}"), |rows| {
            rows.len() == 1 && rows[0].3 == attempt && rows[0].4
        })
        .await;
        bot.kill();
    }
    let mut bot = Bot::spawn(&url, plugins.path(), data.path(), &db, &[]);
    bot.wait_serving().await;
    let rows = db
        .wait_rows("the update set aside", |rows| {
            rows.len() == 1 && rows[0].2 == "dead"
        })
        .await;
    assert_eq!(
        rows[0].3, 4,
        "three attempts, then the claim that set it aside"
    );
    let alert = api.wait_for_sent_within(ADMIN_CHAT, 1, PATIENCE).await;
    assert!(
        alert[0].text.contains("set aside after 3 attempts"),
        "{alert:?}"
    );
    api.push(ALLOWED, ALLOWED, "/start");
    let sent = api.wait_for_sent_within(ALLOWED, 1, PATIENCE).await;
    assert!(sent[0].text.starts_with("Hello, ada!"), "{sent:?}");
    assert_eq!(sent.len(), 1, "the poison update was never answered");
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", bot.port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"wasmbot_inbox_updates_total{status="dead"} 1"#),
        "{metrics}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_postgres_handle_each_update_once_in_order_per_chat() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let (api, url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["slow"]);
    let data = tempfile::tempdir().unwrap();
    let webhook = ("WEBHOOK_URL", "http://127.0.0.1:{port}/telegram/hook");
    // One host: each replica needs a name of its own, or they would take
    // each other's leases as a restart takes its own.
    let mut first = Bot::spawn(
        &url,
        plugins.path(),
        data.path(),
        &db,
        &[webhook, ("INSTANCE_ID", "replica-1")],
    );
    first.wait_serving().await;
    let mut second = Bot::spawn(
        &url,
        plugins.path(),
        data.path(),
        &db,
        &[webhook, ("INSTANCE_ID", "replica-2")],
    );
    second.wait_serving().await;
    let secret = registered_secret(&api);
    let hooks = [first.port, second.port].map(|p| format!("http://127.0.0.1:{p}/telegram/hook"));
    const PER_CHAT: usize = 8;
    let chats = [201, 202, 203, 204];
    // A load balancer spreads one chat's messages over both replicas.
    for i in 0..PER_CHAT {
        for (c, chat) in chats.iter().enumerate() {
            let update = api.update(*chat, ALLOWED, &format!("/slow 20 {chat}-{i}"));
            let hook = &hooks[(i + c) % 2];
            assert_eq!(post_update(hook, &secret, &update).await, 200);
        }
    }
    for chat in chats {
        let sent = api.wait_for_sent_within(chat, PER_CHAT, PATIENCE).await;
        let texts: Vec<String> = sent.iter().map(|s| s.text.clone()).collect();
        let expected: Vec<String> = (0..PER_CHAT).map(|i| format!("slow: {chat}-{i}")).collect();
        assert_eq!(texts, expected, "chat {chat}: out of order or repeated");
    }
    let rows = db
        .wait_rows("every update done", |rows| {
            rows.len() == PER_CHAT * chats.len() && rows.iter().all(|r| r.2 == "done")
        })
        .await;
    assert!(
        rows.iter().all(|r| r.3 == 1),
        "an update was claimed twice: {rows:?}"
    );
    // Which replica claims what is up to the race between them; the claim
    // rules themselves are checked deterministically with two concurrent
    // claimers in `concurrent_claimers_never_hold_one_chat_at_once`.
    let handled_by = |bot: &Bot| bot.logs().matches("\"message handled\"").count();
    eprintln!(
        "replicas handled {} and {} messages",
        handled_by(&first),
        handled_by(&second)
    );
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn run_without_an_allow_list_exits_2_and_allow_everyone_opens_it() {
    let (api, url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["start"]);
    let data = tempfile::tempdir().unwrap();
    let stderr = run_refused(plugins.path(), &[("TELEGRAM_API_URL", &url)]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("wasmbot: configuration error: TELEGRAM_ALLOWED_USERS: not set")
            && stderr.contains("TELEGRAM_ALLOW_EVERYONE=true"),
        "{stderr}"
    );
    assert!(
        !api.called("getMe"),
        "it contacted Telegram before refusing"
    );

    let db = Db::sqlite(data.path());
    let mut open = Bot::spawn(
        &url,
        plugins.path(),
        data.path(),
        &db,
        &[
            ("TELEGRAM_ALLOWED_USERS", ""),
            ("TELEGRAM_ALLOW_EVERYONE", "true"),
        ],
    );
    open.wait_serving().await;
    api.push(4321, 4321, "/start");
    let sent = api.wait_for_sent_within(4321, 1, PATIENCE).await;
    assert!(sent[0].text.starts_with("Hello, ada!"), "{sent:?}");
    open.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_checks_its_secret_before_the_body_and_caps_the_body() {
    let (api, url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["start"]);
    let data = tempfile::tempdir().unwrap();
    let db = Db::sqlite(data.path());
    // The webhook on a listener of its own: the only port to publish.
    let port = free_port();
    let webhook_addr = format!("127.0.0.1:{port}");
    let webhook_url = format!("http://127.0.0.1:{port}/telegram/hook");
    let mut bot = Bot::spawn(
        &url,
        plugins.path(),
        data.path(),
        &db,
        &[
            ("WEBHOOK_URL", &webhook_url),
            ("WEBHOOK_ADDR", &webhook_addr),
        ],
    );
    bot.wait_serving().await;
    let ops = |port: u16, path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    assert_eq!(ops(bot.port, "/metrics").await, 200);
    assert_eq!(
        ops(port, "/metrics").await,
        404,
        "metrics on the public listener"
    );
    assert_eq!(
        ops(port, "/readyz").await,
        404,
        "readiness on the public listener"
    );

    // Headers announcing 50 MB, then one byte: refused on the headers alone.
    assert_eq!(
        raw_post(port, None, 50_000_000, b"{".to_vec()).await,
        "401",
        "an unsigned body was read first"
    );
    let secret = registered_secret(&api);
    let mut huge = api.update(ALLOWED, ALLOWED, "/start");
    huge["message"]["text"] = Value::String("x".repeat(2 * 1024 * 1024));
    let huge = huge.to_string().into_bytes();
    assert_eq!(raw_post(port, Some(&secret), huge.len(), huge).await, "413");
    // A signed request whose body never comes is cut off, not kept open.
    let started = Instant::now();
    assert_eq!(
        raw_post(port, Some(&secret), 1000, b"{".to_vec()).await,
        "408"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(14),
        "{:?}",
        started.elapsed()
    );
    let fine = api.update(ALLOWED, ALLOWED, "/start");
    assert_eq!(post_update(&webhook_url, &secret, &fine).await, 200);
    api.wait_for_sent_within(ALLOWED, 1, PATIENCE).await;
    assert_eq!(db.rows().await.len(), 1, "the oversized update was kept");
    bot.stop().await;
}

/// POSTs to the webhook over a bare socket, declaring `declared` bytes and
/// writing `body` (from another thread, ignoring a server that stops reading);
/// returns the response's status code.
async fn raw_post(port: u16, secret: Option<&str>, declared: usize, body: Vec<u8>) -> String {
    let secret = secret.map(|s| format!("x-telegram-bot-api-secret-token: {s}\r\n"));
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let head = format!(
            "POST /telegram/hook HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n{}content-length: {declared}\r\n\r\n",
            secret.unwrap_or_default()
        );
        let mut writer = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = writer.write_all(head.as_bytes());
            let _ = writer.write_all(&body);
        });
        let mut response = [0u8; 12];
        stream.read_exact(&mut response).unwrap();
        String::from_utf8_lossy(&response[9..12]).to_string()
    })
    .await
    .unwrap()
}

#[test]
fn a_webhook_path_on_an_operator_route_is_a_configuration_error() {
    let stderr = run_refused(
        &std::env::temp_dir(),
        &[
            ("TELEGRAM_ALLOWED_USERS", "7"),
            ("WEBHOOK_URL", "https://bot.example.com/metrics"),
        ],
    );
    assert!(
        stderr.starts_with("wasmbot: configuration error: WEBHOOK_URL: its path /metrics is one of the operator routes"),
        "{stderr}"
    );
}

/// `wasmbot run` with the token and `env`, expected to refuse to start as a
/// configuration error (exit 2); returns what it printed.
fn run_refused(plugins: &Path, env: &[(&str, &str)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .arg("run")
        .current_dir(plugins)
        .env_clear()
        .env("PLUGINS_DIR", plugins)
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    stderr
}

/// The inbox's own rules on both databases: a repeat is kept once, a chat
/// yields one update at a time oldest first, a lease that ran out is claimed
/// again (counted), a released update waits, and cleanup keeps pending rows.
#[tokio::test]
async fn the_inbox_claims_per_chat_in_order_on_sqlite_and_postgres() {
    use wasmbot::infra::store::{InboxOutcome, InboxUpdate};
    for test in common::stores::all().await {
        let store = &test.store;
        let update = |update_id: i64, chat_id: i64| InboxUpdate {
            update_id,
            chat_id,
            payload: format!("{{\"update_id\":{update_id}}}"),
        };
        let kept = store
            .inbox_add(
                1,
                &[update(10, 7), update(11, 7), update(12, 8), update(10, 7)],
            )
            .await
            .unwrap();
        assert_eq!(kept, 3, "{}: the repeat was kept twice", test.label);
        assert_eq!(
            store.inbox_add(2, &[update(10, 7)]).await.unwrap(),
            1,
            "bots are apart"
        );

        let lease = Duration::from_secs(60);
        let first = store.inbox_claim(1, &alone("a"), lease, 10).await.unwrap();
        let ids: Vec<(i64, i32)> = first.iter().map(|u| (u.update_id, u.attempts)).collect();
        assert_eq!(
            ids,
            [(10, 1), (12, 1)],
            "{}: one per chat, oldest first",
            test.label
        );
        assert!(
            store
                .inbox_claim(1, &alone("b"), lease, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .inbox_finish(1, 10, "a", InboxOutcome::Done, None)
                .await
                .unwrap()
        );
        assert!(
            !store
                .inbox_finish(1, 12, "b", InboxOutcome::Done, None)
                .await
                .unwrap(),
            "{}: finished by a process that does not hold it",
            test.label
        );
        let next = store.inbox_claim(1, &alone("b"), lease, 10).await.unwrap();
        assert_eq!(next.iter().map(|u| u.update_id).collect::<Vec<_>>(), [11]);

        // A lease that ran out (its process died) is claimed again.
        store.inbox_add(1, &[update(20, 9)]).await.unwrap();
        let short = store
            .inbox_claim(1, &alone("dead"), Duration::from_millis(1), 1)
            .await
            .unwrap();
        assert_eq!(short[0].update_id, 20);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let again = store.inbox_claim(1, &alone("c"), lease, 10).await.unwrap();
        assert_eq!(
            again
                .iter()
                .map(|u| (u.update_id, u.attempts))
                .collect::<Vec<_>>(),
            [(20, 2)],
            "{}",
            test.label
        );
        assert!(!store.inbox_renew(1, 20, "dead", lease).await.unwrap());
        assert!(store.inbox_renew(1, 20, "c", lease).await.unwrap());

        // Given back: not before its retry time.
        store
            .inbox_release(1, 20, "c", Duration::from_secs(60), "send failed")
            .await
            .unwrap();
        assert!(
            store
                .inbox_claim(1, &alone("c"), lease, 10)
                .await
                .unwrap()
                .is_empty()
        );

        let counts = store.inbox_counts(1).await.unwrap();
        assert_eq!(
            (counts.pending, counts.done, counts.dead),
            (3, 1, 0),
            "{}",
            test.label
        );
        let future = chrono::Utc::now() + chrono::Duration::seconds(5);
        assert_eq!(store.inbox_cleanup(future, future).await.unwrap(), 1);
        assert_eq!(store.inbox_counts(1).await.unwrap().pending, 3);
    }
}

/// A restarted instance (a new run under the same `INSTANCE_ID`) takes back
/// its own leases at once, on both databases; another instance waits for
/// them to run out, a run never claims what it holds, the old run has lost
/// them, and an update given back waits its retry time all the same.
#[tokio::test]
async fn a_restarted_instance_takes_back_its_own_leases_at_once() {
    use wasmbot::infra::store::{InboxOutcome, InboxUpdate};
    for test in common::stores::all().await {
        let (store, label) = (&test.store, &test.label);
        let claimant = |instance: &str, run: &str| Claimant {
            instance: instance.into(),
            run: run.into(),
        };
        let updates: Vec<InboxUpdate> = [(30, 1), (31, 2)]
            .map(|(update_id, chat_id)| InboxUpdate {
                update_id,
                chat_id,
                payload: "{}".into(),
            })
            .into();
        store.inbox_add(1, &updates).await.unwrap();
        let lease = Duration::from_secs(60);
        let ids = |claimed: Vec<wasmbot::infra::store::ClaimedUpdate>| {
            claimed
                .iter()
                .map(|u| (u.update_id, u.attempts))
                .collect::<Vec<_>>()
        };
        let first = claimant("host-a", "run-1");
        let claimed = store.inbox_claim(1, &first, lease, 10).await.unwrap();
        assert_eq!(ids(claimed), [(30, 1), (31, 1)], "{label}");
        for (other, what) in [
            (claimant("host-b", "run-9"), "another instance"),
            (first.clone(), "the run holding them"),
        ] {
            let claimed = store.inbox_claim(1, &other, lease, 10).await.unwrap();
            assert!(claimed.is_empty(), "{label}: {what} claimed {claimed:?}");
        }

        let restarted = claimant("host-a", "run-2");
        let claimed = store.inbox_claim(1, &restarted, lease, 10).await.unwrap();
        assert_eq!(ids(claimed), [(30, 2), (31, 2)], "{label}: not taken back");
        assert!(!store.inbox_renew(1, 30, "run-1", lease).await.unwrap());
        assert!(
            !store
                .inbox_finish(1, 31, "run-1", InboxOutcome::Done, None)
                .await
                .unwrap(),
            "{label}: the crashed run still held it"
        );
        assert!(store.inbox_renew(1, 30, "run-2", lease).await.unwrap());
        assert!(
            store
                .inbox_finish(1, 31, "run-2", InboxOutcome::Done, None)
                .await
                .unwrap()
        );

        store
            .inbox_release(1, 30, "run-2", lease, "send failed")
            .await
            .unwrap();
        let again = claimant("host-a", "run-3");
        let claimed = store.inbox_claim(1, &again, lease, 10).await.unwrap();
        assert!(claimed.is_empty(), "{label}: retried before its time");
    }
}

/// Two replicas' claimers racing on one database (separate pools, as two
/// processes would be): every update is claimed exactly once, each chat's
/// updates in order, and never two of one chat at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_hold_one_chat_at_once() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use wasmbot::infra::store::{InboxOutcome, InboxUpdate, Store};

    const CHATS: i64 = 8;
    const PER_CHAT: i64 = 25;
    let mut replicas: Vec<(&str, Vec<Store>)> = Vec::new();
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}/inbox.db", sqlite_dir.path().display());
    let first = Store::connect(&sqlite_url).await.unwrap();
    first.migrate().await.unwrap();
    replicas.push((
        "sqlite",
        vec![first, Store::connect(&sqlite_url).await.unwrap()],
    ));
    if let Some(Db::Postgres { url, schema }) = Db::postgres().await {
        let a = common::stores::postgres_in_schema(&url, &schema).await;
        let b = common::stores::postgres_in_schema(&url, &schema).await;
        replicas.push(("postgres", vec![a, b]));
    }
    for (label, stores) in replicas {
        let updates: Vec<InboxUpdate> = (0..PER_CHAT)
            .flat_map(|i| {
                (0..CHATS).map(move |chat| InboxUpdate {
                    update_id: i * CHATS + chat,
                    chat_id: chat,
                    payload: "{}".into(),
                })
            })
            .collect();
        stores[0].inbox_add(1, &updates).await.unwrap();
        // chat -> who holds it now; every claim in the order it happened.
        let holding: Arc<Mutex<HashMap<i64, String>>> = Arc::default();
        let claims: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
        let tasks: Vec<_> = stores
            .into_iter()
            .enumerate()
            .map(|(n, store)| {
                let (holding, claims) = (holding.clone(), claims.clone());
                let owner = format!("replica-{n}");
                tokio::spawn(async move {
                    let started = Instant::now();
                    loop {
                        let claimed = store
                            .inbox_claim(1, &alone(&owner), Duration::from_secs(60), 4)
                            .await
                            .unwrap();
                        if claimed.is_empty() {
                            if store.inbox_counts(1).await.unwrap().pending == 0 {
                                return;
                            }
                            assert!(started.elapsed() < PATIENCE, "claims stalled");
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            continue;
                        }
                        for update in &claimed {
                            let previous = holding
                                .lock()
                                .unwrap()
                                .insert(update.chat_id, owner.clone());
                            assert_eq!(previous, None, "chat {} held twice", update.chat_id);
                            claims
                                .lock()
                                .unwrap()
                                .push((update.chat_id, update.update_id));
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        for update in claimed {
                            // Let go before the row is done, as the holder.
                            holding.lock().unwrap().remove(&update.chat_id);
                            assert!(
                                store
                                    .inbox_finish(
                                        1,
                                        update.update_id,
                                        &owner,
                                        InboxOutcome::Done,
                                        None
                                    )
                                    .await
                                    .unwrap()
                            );
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let claims = claims.lock().unwrap().clone();
        assert_eq!(
            claims.len() as i64,
            CHATS * PER_CHAT,
            "{label}: claimed more or less than once"
        );
        for chat in 0..CHATS {
            let order: Vec<i64> = claims.iter().filter(|c| c.0 == chat).map(|c| c.1).collect();
            let expected: Vec<i64> = (0..PER_CHAT).map(|i| i * CHATS + chat).collect();
            assert_eq!(order, expected, "{label}: chat {chat} out of order");
        }
    }
}

/// `wasmbot worker --once inbox-cleanup`: handled updates older than a day
/// go, a dead one stays until the audit retention, pending ones always stay.
#[tokio::test]
async fn the_worker_deletes_handled_updates_after_a_day() {
    use wasmbot::infra::store::{InboxOutcome, InboxUpdate, Store};
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bot.db", data.path().display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let updates: Vec<InboxUpdate> = (1..=5)
        .map(|update_id| InboxUpdate {
            update_id,
            chat_id: update_id,
            payload: "{}".into(),
        })
        .collect();
    store.inbox_add(1, &updates).await.unwrap();
    store
        .inbox_claim(1, &alone("w"), Duration::from_secs(60), 10)
        .await
        .unwrap();
    for (update_id, outcome) in [
        (1, InboxOutcome::Done),
        (2, InboxOutcome::Done),
        (3, InboxOutcome::Dead),
        (4, InboxOutcome::Dead),
    ] {
        assert!(
            store
                .inbox_finish(1, update_id, "w", outcome, None)
                .await
                .unwrap()
        );
    }
    store.close().await;
    // 1: done two days ago; 3: dead two days ago; 4: dead 40 days ago.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    for (update_id, days) in [(1, 2), (3, 2), (4, 40)] {
        let finished = chrono::Utc::now() - chrono::Duration::days(days);
        sqlx::query("UPDATE inbox SET finished_at = ?1 WHERE update_id = ?2")
            .bind(finished)
            .bind(update_id)
            .execute(&pool)
            .await
            .unwrap();
    }
    let output = Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .args(["worker", "--once", "inbox-cleanup"])
        .current_dir(data.path())
        .env_clear()
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("inbox-cleanup: deleted 2 handled updates"),
        "{stdout}"
    );
    let left: Vec<i64> = sqlx::query_scalar("SELECT update_id FROM inbox ORDER BY update_id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, [2, 3, 5], "done recently, dead recently, pending");
    pool.close().await;
}
