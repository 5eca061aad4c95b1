//! Plugins acting on their own, through the real binaries: a reminder
//! reaches the console seconds after it is set; one due while nothing ran
//! fires once on the next start, marked late; a cron job with seconds fires
//! until cancelled; a handler that keeps failing is set aside after three
//! attempts; quotas; `schedule` refused to a plugin without `on-event`; in
//! Telegram (emulator) a reminder with a snooze button; webhooks signed the
//! GitHub way reach the plugin and the chat, bad or missing signatures never
//! do; two `wasmbot run` replicas and a worker on one PostgreSQL fire each
//! job exactly once, the leader killed on the way.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::bot_api::{BotApi, Sent};
use common::processes::{ALLOWED, Bot, Db, PATIENCE, TOKEN, post_update, registered_secret};
use common::running_bot::RunningBot;
use common::webhooks::{KEY, hooks_cli, post, printed_secret, signature};

/// `wasmbot chat` on the SQLite database in `data`, fed `input`.
fn chat(data: &Path, plugins: &Path, input: &str) -> (String, String, Duration) {
    let database = format!("sqlite://{}/bot.db", data.display());
    let started = Instant::now();
    let output = common::chat_binary(
        data,
        &[
            ("DATABASE_URL", database.as_str()),
            ("PLUGINS_DIR", plugins.to_str().unwrap()),
            ("PLUGIN_CACHE_DIR", data.join("cache").to_str().unwrap()),
        ],
        &[],
        input,
    );
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "stderr: {stderr}");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
        elapsed,
    )
}

/// [`chat`] off the async threads.
async fn chat_async(
    data: &Path,
    plugins: &Path,
    input: &'static str,
) -> (String, String, Duration) {
    let (data, plugins) = (data.to_owned(), plugins.to_owned());
    tokio::task::spawn_blocking(move || chat(&data, &plugins, input))
        .await
        .unwrap()
}

/// (kind, status, attempts, last_error) of every job, by id.
async fn jobs(data: &Path) -> Vec<(String, String, i32, Option<String>)> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}/bot.db", data.display()))
        .await
        .unwrap();
    let rows =
        sqlx::query_as("SELECT kind, status, attempts, last_error FROM scheduled_jobs ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reminder_reaches_the_console_seconds_after_it_is_set() {
    let plugins = common::plugins_dir(&["remind"]);
    let data = tempfile::tempdir().unwrap();
    let (stdout, _, elapsed) =
        chat_async(data.path(), plugins.path(), "/remind 2s stretch\n").await;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("👍 I'll remind you today ") && lines[0].ends_with(": stretch (#1)"),
        "{stdout}"
    );
    assert_eq!(lines[1], "⏰ stretch");
    assert_eq!(lines[2], "[1 💤 Snooze 10 min]");
    // stdin closed at once; the console stayed for the reminder.
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(jobs(data.path()).await.is_empty(), "the job is done");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reminder_due_while_nothing_ran_fires_once_on_the_next_start_marked_late() {
    let plugins = common::plugins_dir(&["remind"]);
    let data = tempfile::tempdir().unwrap();
    let run = |input: &'static str| chat_async(data.path(), plugins.path(), input);
    // An hour away: the console does not wait for it.
    let (stdout, _, _) = run("/remind 1h call back\n").await;
    assert!(stdout.contains("call back (#1)"), "{stdout}");
    // The hour passes while nothing runs.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}/bot.db", data.path().display()))
        .await
        .unwrap();
    let past = chrono::Utc::now().timestamp_millis() - 90_000;
    sqlx::query("UPDATE scheduled_jobs SET due_ms = ?1")
        .bind(past)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (stdout, _, _) = run("").await;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "⏰ call back", "{stdout}");
    assert!(
        lines[1].starts_with("(late: this was due today "),
        "{stdout}"
    );
    assert!(jobs(data.path()).await.is_empty());
    // Delivered once: the next start has nothing to say.
    let (stdout, _, _) = run("").await;
    assert_eq!(stdout, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cron_job_with_seconds_fires_until_cancelled() {
    let plugins = common::plugins_dir(&["ticker"]);
    let data = tempfile::tempdir().unwrap();
    let run = |input: &'static str| chat_async(data.path(), plugins.path(), input);
    let (stdout, _, _) = run("/tick */2 * * * * *\n").await;
    let ticks = stdout.lines().filter(|line| *line == "⏰ tick").count();
    assert!(stdout.starts_with("ticking #1\n"), "{stdout}");
    // The console stays 10 s after stdin closes: about five ticks.
    assert!(ticks >= 3, "{ticks} ticks: {stdout}");
    let state = jobs(data.path()).await;
    assert_eq!(state.len(), 1, "{state:?}");
    assert_eq!(
        (state[0].0.as_str(), state[0].1.as_str()),
        ("cron", "active")
    );
    let (stdout, _, _) = run("/jobs\n/unschedule 1\n/jobs\n").await;
    let answers: Vec<&str> = stdout.lines().filter(|line| *line != "⏰ tick").collect();
    assert_eq!(
        answers,
        ["jobs: 1", "cancelled: true", "jobs: 0"],
        "{stdout}"
    );
    assert!(jobs(data.path()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_handler_keeps_failing_is_set_aside_after_three_attempts() {
    let plugins = common::plugins_dir(&["ticker"]);
    let data = tempfile::tempdir().unwrap();
    let (stdout, stderr, _) = chat_async(
        data.path(),
        plugins.path(),
        "/fail 100\n/later 300 still here\n",
    )
    .await;
    // The failing job does not hold up the next one; nothing of it reaches the chat.
    assert_eq!(stdout, "failing #1\nlater #2\n⏰ still here\n", "{stderr}");
    let state = jobs(data.path()).await;
    assert_eq!(state.len(), 1, "{state:?}");
    let (kind, status, attempts, error) = &state[0];
    assert_eq!(
        (kind.as_str(), status.as_str(), *attempts),
        ("at", "dead", 3)
    );
    assert!(
        error
            .as_deref()
            .unwrap_or_default()
            .starts_with("the plugin crashed"),
        "{error:?}"
    );
    // The plugin's panic (in its log) and the alert, for the operator.
    assert!(
        stderr.contains("failing on purpose (attempt 3)"),
        "{stderr}"
    );
    assert!(stderr.contains("job set aside"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_past_the_plugins_quota_are_refused_with_a_reason() {
    let plugins = common::plugins_dir(&["ticker"]);
    let data = tempfile::tempdir().unwrap();
    let (stdout, _, _) = chat_async(data.path(), plugins.path(), "/later 600000 a\n/later 600000 b\n/tick 0 0 * * *\n/later 600000 d\n/jobs\n/unschedule 2\n/later 600000 e\n").await;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "later #1",
            "later #2",
            "ticking #3",
            "there are 3 scheduled jobs already, the most allowed",
            "jobs: 3",
            "cancelled: true",
            "later #4",
        ],
        "{stdout}"
    );
    let listed = Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .args(["plugins", "list"])
        .current_dir(data.path())
        .env_clear()
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/bot.db", data.path().display()),
        )
        .env("PLUGINS_DIR", plugins.path())
        .env("PLUGIN_CACHE_DIR", data.path().join("cache"))
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("proactive@0.2.0"), "{listed}");
    assert!(listed.contains("jobs: 3 of 3"), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_is_refused_to_a_plugin_without_on_event_and_times_are_checked() {
    let plugins = common::plugins_dir(&["echo", "ticker"]);
    let manifest = plugins.path().join("echo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            "capabilities = [\"log\"]",
            "capabilities = [\"log\", \"schedule\"]",
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let (stdout, stderr, _) = chat_async(
        data.path(),
        plugins.path(),
        "/echo hi\n/tick every day\n/tick 0 9 * * * *\n",
    )
    .await;
    assert!(
        stderr.contains("plugin `echo`: `schedule`: the component does not export `on-event`"),
        "{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("Sorry, I don't know /echo."),
        "{stdout}"
    );
    assert!(
        stdout.contains("cron expression \"every day\" has 2 fields"),
        "{stdout}"
    );
    assert!(stdout.contains("ticking #1"), "{stdout}");
}

fn sent_to(api: &BotApi, chat: i64) -> Vec<Sent> {
    api.sent()
        .into_iter()
        .filter(|s| s.chat_id == chat)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_telegram_reminder_comes_with_a_snooze_button_that_sets_it_again() {
    let emulator = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["remind"]);
    let bot = RunningBot::start_with(emulator, plugins, tempfile::tempdir().unwrap(), &[]).await;
    bot.api.push(ALLOWED, ALLOWED, "/remind 1s pizza");
    let sent = bot.api.wait_for_sent_within(ALLOWED, 2, PATIENCE).await;
    assert!(sent[0].text.ends_with(": pizza (#1)"), "{sent:?}");
    let reminder = &sent[1];
    assert_eq!(reminder.text, "⏰ pizza");
    let buttons = reminder.buttons();
    assert_eq!(buttons.len(), 1, "{buttons:?}");
    assert_eq!(buttons[0].0, "💤 Snooze 10 min");
    let query = bot
        .api
        .press(ALLOWED, ALLOWED, reminder.message_id, &buttons[0].1);
    let answers = bot.api.wait_for_action("answercallbackquery", 1).await;
    let answer = answers
        .iter()
        .find(|a| a["callback_query_id"] == query.as_str())
        .expect("the press was answered");
    assert_eq!(answer["text"], "Snoozed for 10 min");
    let held = bot.api.held(reminder.message_id).unwrap();
    assert!(
        held.text.starts_with("⏰ pizza\n💤 Snoozed until "),
        "{}",
        held.text
    );
    assert!(held.buttons().is_empty(), "the button is gone");
    // The snooze is a new job, ten minutes out.
    let (_api, db, _data) = bot.stop().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let due: Vec<i64> = sqlx::query_scalar("SELECT due_ms FROM scheduled_jobs")
        .fetch_all(&pool)
        .await
        .unwrap();
    let ahead = due[0] - chrono::Utc::now().timestamp_millis();
    assert!((9 * 60_000..=10 * 60_000).contains(&ahead), "{due:?}");
    pool.close().await;
    assert_eq!(sent_to(&_api, ALLOWED).len(), 2, "nothing else was sent");
}

/// `wasmbot hooks …` on the database in `data`.
fn hooks(data: &Path, plugins: &Path, args: &[&str]) -> (bool, String) {
    let database = format!("sqlite://{}/bot.db", data.display());
    hooks_cli(data, plugins, &database, &[], args)
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_webhooks_reach_the_plugin_and_the_chat_and_nothing_else_does() {
    let (api, url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["ticker", "echo"]);
    let data = tempfile::tempdir().unwrap();
    // Refused: no such plugin, and a plugin without `on-event`.
    let (ok, text) = hooks(data.path(), plugins.path(), &["add", "nope", "gh"]);
    assert!(!ok && text.contains("no plugin `nope`"), "{text}");
    let (ok, text) = hooks(data.path(), plugins.path(), &["add", "echo", "gh"]);
    assert!(!ok && text.contains("does not export `on-event`"), "{text}");
    let (ok, text) = hooks(
        data.path(),
        plugins.path(),
        &["add", "ticker", "gh", "--chat", &ALLOWED.to_string()],
    );
    assert!(ok, "{text}");
    let secret = printed_secret(&text);
    assert!(text.contains("/hooks/ticker/gh"), "{text}");
    let (_, list) = hooks(data.path(), plugins.path(), &["list"]);
    assert!(
        list.contains("ticker/gh") && !list.contains(&secret),
        "{list}"
    );

    let db = Db::sqlite(data.path());
    let bot = serving_with_vault(&url, plugins.path(), data.path(), &db).await;
    let hook = format!("http://127.0.0.1:{}/hooks/ticker/gh", bot.port);
    let body = br#"{"ref":"main"}"#.to_vec();
    let good = signature(&secret, &body);
    let wrong = signature("not the secret", &body);
    assert_eq!(post(&hook, None, body.clone()).await, 401, "unsigned");
    assert_eq!(
        post(&hook, Some(&wrong), body.clone()).await,
        401,
        "badly signed"
    );
    assert_eq!(
        post(&hook, Some("sha256=zz"), body.clone()).await,
        401,
        "malformed"
    );
    let unknown = format!("http://127.0.0.1:{}/hooks/ticker/other", bot.port);
    assert_eq!(post(&unknown, Some(&good), body.clone()).await, 404);
    let too_big = vec![b'x'; 300 * 1024];
    let big_signature = signature(&secret, &too_big);
    assert_eq!(post(&hook, Some(&big_signature), too_big).await, 413);
    assert_eq!(post(&hook, Some(&good), body.clone()).await, 202);
    let sent = api.wait_for_sent_within(ALLOWED, 1, PATIENCE).await;
    assert_eq!(sent[0].text, r#"🪝 gh: {"ref":"main"} (application/json)"#);
    // Only the signed delivery got through; the refused ones left nothing behind.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.sent().len(), 1, "{:?}", api.sent());
    assert!(jobs(data.path()).await.is_empty());
    // An address that keeps posting unsigned is cut off: at most 30
    // refusals per clock minute, so 125 in a row (spanning two minutes at
    // most) meet 429s (tests/webhooks.rs: and a signed delivery still passes).
    let mut statuses = Vec::new();
    for _ in 0..125 {
        statuses.push(post(&hook, None, body.clone()).await);
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    let passed = statuses.iter().filter(|s| **s == 401).count();
    assert!((1..=120).contains(&passed), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(api.sent().len(), 1);
    bot.stop().await;

    let (ok, text) = hooks(data.path(), plugins.path(), &["remove", "ticker", "gh"]);
    assert!(ok, "{text}");
    let bot = serving_with_vault(&url, plugins.path(), data.path(), &db).await;
    let hook = format!("http://127.0.0.1:{}/hooks/ticker/gh", bot.port);
    assert_eq!(post(&hook, Some(&good), body).await, 404, "removed");
    bot.stop().await;
}

/// `wasmbot run` with the vault key, once it serves.
async fn serving_with_vault(url: &str, plugins: &Path, data: &Path, db: &Db) -> Bot {
    let mut bot = Bot::spawn(url, plugins, data, db, &[("ENCRYPTION_KEY", KEY)]);
    bot.wait_serving().await;
    bot
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_and_a_worker_on_one_postgres_fire_each_job_exactly_once() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let (api, url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["ticker"]);
    let manifest = plugins.path().join("ticker.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("schedule_jobs = 3", "schedule_jobs = 100"),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let webhook = [("WEBHOOK_URL", "http://127.0.0.1:{port}/telegram/hook")];
    let mut first = Bot::spawn(&url, plugins.path(), data.path(), &db, &webhook);
    first.wait_serving().await;
    let mut second = Bot::spawn(&url, plugins.path(), data.path(), &db, &webhook);
    second.wait_serving().await;
    let mut worker = Bot::spawn_command("worker", &url, plugins.path(), data.path(), &db, &[]);
    worker.wait_serving().await;
    let secret = registered_secret(&api);
    let leader_says = "this process runs the scheduled jobs";
    wait_for_log(&worker, leader_says).await;
    let fired = |process: &Bot| process.logs().matches("\"event handled\"").count();

    // While the worker lives it runs the jobs, added through both replicas.
    let add = LaterJobs {
        api: &api,
        secret: &secret,
        ports: [first.port, second.port],
    };
    add.round("a").await;
    add.wait_fired("a").await;
    assert_eq!(fired(&worker), JOBS_PER_ROUND, "{}", worker.logs());
    assert_eq!(fired(&first) + fired(&second), 0);
    // Marked done before the worker dies: nothing of its is in flight.
    wait_for_no_jobs(&db).await;
    worker.kill();

    // Without a worker, one replica takes the jobs over.
    add.round("b").await;
    add.wait_fired("b").await;
    assert_eq!(fired(&first) + fired(&second), JOBS_PER_ROUND);
    // Nothing fires twice, even a moment later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for chat in CHATS {
        assert_eq!(sent_to(&api, chat).len(), 4 * PER_CHAT, "chat {chat}");
    }
    first.stop().await;
    second.stop().await;
}

const CHATS: [i64; 4] = [301, 302, 303, 304];
const PER_CHAT: usize = 3;
const JOBS_PER_ROUND: usize = CHATS.len() * PER_CHAT;

/// `/later` jobs sent as webhook updates, alternating between the replicas.
struct LaterJobs<'a> {
    api: &'a BotApi,
    secret: &'a str,
    ports: [u16; 2],
}

impl LaterJobs<'_> {
    /// Adds `PER_CHAT` jobs per chat, due in 2 s, and waits for the confirmations.
    async fn round(&self, round: &str) {
        let before: Vec<usize> = CHATS
            .iter()
            .map(|chat| sent_to(self.api, *chat).len())
            .collect();
        for i in 0..PER_CHAT {
            for (c, chat) in CHATS.iter().enumerate() {
                let port = self.ports[(i + c) % 2];
                let text = format!("/later 2000 job {round} {chat}-{i}");
                let update = self.api.update(*chat, ALLOWED, &text);
                let hook = format!("http://127.0.0.1:{port}/telegram/hook");
                assert_eq!(post_update(&hook, self.secret, &update).await, 200);
            }
        }
        for (chat, before) in CHATS.iter().zip(before) {
            self.api
                .wait_for_sent_within(*chat, before + PER_CHAT, PATIENCE)
                .await;
        }
    }

    /// Waits until each chat got each of the round's reminders, once.
    async fn wait_fired(&self, round: &str) {
        for chat in CHATS {
            let started = Instant::now();
            loop {
                let mut fired: Vec<String> = sent_to(self.api, chat)
                    .into_iter()
                    .map(|s| s.text)
                    .filter(|text| text.starts_with(&format!("⏰ job {round} ")))
                    .collect();
                fired.sort();
                let expected: Vec<String> = (0..PER_CHAT)
                    .map(|i| format!("⏰ job {round} {chat}-{i}"))
                    .collect();
                if fired.len() >= PER_CHAT {
                    assert_eq!(fired, expected, "chat {chat}");
                    break;
                }
                assert!(started.elapsed() < PATIENCE, "chat {chat}: {fired:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Waits until every job was marked done (the table is empty).
async fn wait_for_no_jobs(db: &Db) {
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let started = Instant::now();
    loop {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scheduled_jobs")
            .fetch_one(&pool)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{left} jobs never marked done"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pool.close().await;
}

async fn wait_for_log(process: &Bot, text: &str) {
    let started = Instant::now();
    while !process.logs().contains(text) {
        assert!(
            started.elapsed() < PATIENCE,
            "{text:?} never logged: {}",
            process.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
