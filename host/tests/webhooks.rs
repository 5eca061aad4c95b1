//! Inbound webhooks under abuse, through the real `wasmbot run`: a flood of
//! unsigned posts and of slow bodies from other addresses neither uses up a
//! hook's rate nor holds the listener `/healthz` shares, so the signed
//! delivery that follows is kept; a replayed delivery (same id, or same
//! body with any id) is refused, after a restart and by another replica on
//! the same PostgreSQL too, until a day has passed; `HOOKS_ADDR` serves the
//! hooks on a listener of their own.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use common::bot_api::BotApi;
use common::processes::{ALLOWED, Bot, Db, PATIENCE, TOKEN, free_port};
use common::webhooks::{
    Delivery, KEY, LOCAL, hooks_cli, post_from, printed_secret, signature, slow_post,
};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

/// Other senders on this machine (127.0.0.1 is the honest one): an abuser
/// posting unsigned, one posting slowly; more flood from 127.0.2.x and 127.0.3.x.
const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const SLOWPOKE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// Adds the hook `ticker/gh` (to the allowed user's chat); its secret.
fn add_hook(data: &Path, plugins: &Path, db: &Db, extra: &[(&str, &str)]) -> (String, String) {
    let chat = ALLOWED.to_string();
    let (ok, text) = hooks_cli(
        data,
        plugins,
        &db.url(),
        extra,
        &["add", "ticker", "gh", "--chat", &chat],
    );
    assert!(ok, "{text}");
    (printed_secret(&text), text)
}

async fn serving(url: &str, plugins: &Path, data: &Path, db: &Db, extra: &[(&str, &str)]) -> Bot {
    let mut settings = vec![("ENCRYPTION_KEY", KEY)];
    settings.extend_from_slice(extra);
    let mut bot = Bot::spawn(url, plugins, data, db, &settings);
    bot.wait_serving().await;
    bot
}

/// Posts a signed delivery from 127.0.0.1; its status and text.
async fn deliver(url: &str, secret: &str, id: &str, body: &[u8]) -> (u16, String) {
    let signature = signature(secret, body);
    let delivery = Delivery {
        signature: Some(&signature),
        id: Some(id),
        body: body.to_vec(),
    };
    post_from(LOCAL, url, delivery).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_unsigned_and_slow_posts_leaves_the_signed_delivery_through_and_replays_out() {
    let (api, url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["ticker"]);
    let data = tempfile::tempdir().unwrap();
    let db = Db::sqlite(data.path());
    let (secret, _) = add_hook(data.path(), plugins.path(), &db, &[]);
    let bot = serving(&url, plugins.path(), data.path(), &db, &[]).await;
    let server = SocketAddr::from(([127, 0, 0, 1], bot.port));
    let hook = format!("http://{server}/hooks/ticker/gh");

    // 63 unsigned posts from three addresses, each within its allowance:
    // all refused, none counted against the hook.
    for n in 0..63u8 {
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 2, n % 3 + 1));
        let (status, text) = post_from(from, &hook, unsigned()).await;
        assert_eq!(status, 401, "post {n}: {text}");
    }
    // 61 from one address: refused, then cut off.
    let mut statuses = Vec::new();
    for _ in 0..61 {
        statuses.push(post_from(FLOODER, &hook, unsigned()).await.0);
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(statuses[0], 401, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");

    // Bodies that never finish, 8 from one address: 4 are being read, 4
    // are turned away at once, and the hooks still take a signed delivery.
    let (answered, mut answers) = mpsc::unbounded_channel();
    let open_slow = |from: IpAddr| {
        let answered = answered.clone();
        tokio::spawn(async move {
            let answer = slow_post(from, server, "/hooks/ticker/gh").await;
            let _ = answered.send(answer);
        });
    };
    for _ in 0..8 {
        open_slow(SLOWPOKE);
    }
    let mut slow = Vec::new();
    while slow.len() < 4 {
        slow.push(next_answer(&mut answers).await);
    }
    let first = br#"{"ref":"main"}"#;
    let (status, text) = deliver(&hook, &secret, "delivery-1", first).await;
    assert_eq!(status, 202, "the signed delivery after the flood: {text}");
    let (status, text) = deliver(&hook, &secret, "delivery-1", first).await;
    assert_eq!(status, 409, "a replay: {text}");
    let (status, text) = deliver(&hook, &secret, "delivery-forged", first).await;
    assert_eq!(status, 409, "a replay under another id: {text}");
    let (status, text) = deliver(&hook, &secret, "delivery-1", br#"{"ref":"dev"}"#).await;
    assert_eq!(status, 409, "another body under a received id: {text}");

    // 60 more from 15 other addresses: only as many are read as the hooks
    // have turns left (16 in all); the rest are turned away at once, and
    // the listener the hooks share answers its own endpoints meanwhile.
    for n in 0..60u8 {
        open_slow(IpAddr::V4(Ipv4Addr::new(127, 0, 3, n % 15 + 1)));
    }
    while slow.len() < 52 {
        slow.push(next_answer(&mut answers).await);
    }
    let count =
        |slow: &[(u16, String)], status: u16| slow.iter().filter(|(s, _)| *s == status).count();
    assert_eq!(
        (count(&slow, 429), count(&slow, 503)),
        (4, 48),
        "turned away: {slow:?}"
    );
    let asked = std::time::Instant::now();
    let health = reqwest::get(format!("http://{server}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    eprintln!("/healthz with 16 slow bodies open: {:?}", asked.elapsed());
    assert!(
        answers.try_recv().is_err(),
        "the slow bodies being read were still open while all that was answered"
    );
    // Those being read are given up after a short while, by the hooks, and
    // their turns are free again.
    while slow.len() < 68 {
        slow.push(next_answer(&mut answers).await);
    }
    let given_up: Vec<_> = slow.iter().filter(|(status, _)| *status == 408).collect();
    assert_eq!(given_up.len(), 16, "{slow:?}");
    assert!(
        given_up
            .iter()
            .all(|(_, text)| text.contains("did not arrive within 10 s")),
        "{given_up:?}"
    );
    let second = br#"{"ref":"next"}"#;
    let (status, text) = deliver(&hook, &secret, "delivery-2", second).await;
    assert_eq!(status, 202, "{text}");

    // Exactly the two signed deliveries reached the plugin and the chat.
    let sent = api.wait_for_sent_within(ALLOWED, 2, PATIENCE).await;
    let texts: Vec<&str> = sent.iter().map(|sent| sent.text.as_str()).collect();
    assert!(
        texts.iter().any(|text| text.contains(r#"{"ref":"main"}"#)),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|text| text.contains(r#"{"ref":"next"}"#)),
        "{texts:?}"
    );
    wait_no_jobs(&db).await;
    assert_eq!(api.sent().len(), 2, "{:?}", api.sent());
    bot.stop().await;

    // Remembered across a restart.
    let bot = serving(&url, plugins.path(), data.path(), &db, &[]).await;
    let hook = format!("http://127.0.0.1:{}/hooks/ticker/gh", bot.port);
    let (status, text) = deliver(&hook, &secret, "delivery-2", second).await;
    assert_eq!(status, 409, "a replay after a restart: {text}");
    // Forgotten after a day.
    let old = br#"{"ref":"yesterday"}"#;
    remember_received(&db, "delivery-old", old, 25).await;
    let (status, text) = deliver(&hook, &secret, "delivery-old", old).await;
    assert_eq!(status, 202, "received 25 hours ago: {text}");
    let (status, _) = deliver(&hook, &secret, "delivery-old", old).await;
    assert_eq!(status, 409);
    bot.stop().await;
}

fn unsigned() -> Delivery<'static> {
    Delivery {
        signature: None,
        id: None,
        body: br#"{"ref":"evil"}"#.to_vec(),
    }
}

/// The next slow post answered.
async fn next_answer(answers: &mut mpsc::UnboundedReceiver<(u16, String)>) -> (u16, String) {
    tokio::time::timeout(PATIENCE, answers.recv())
        .await
        .expect("a slow post is answered in time")
        .expect("an answer")
}

/// Records `id` and `body` as received by `ticker/gh` `hours_ago`.
async fn remember_received(db: &Db, id: &str, body: &[u8], hours_ago: i64) {
    let seen = chrono::Utc::now().timestamp_millis() - hours_ago * 3_600_000;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(body)));
    let Db::Sqlite(path) = db else {
        unreachable!("the restart test runs on SQLite")
    };
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    for key in [format!("id:{id}"), digest] {
        sqlx::query(
            "INSERT INTO webhook_deliveries (plugin, name, delivery_key, seen_ms) VALUES ('ticker', 'gh', ?1, ?2)",
        )
        .bind(key)
        .bind(seen)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
}

/// Waits until every kept delivery was handed to the plugin and delivered.
async fn wait_no_jobs(db: &Db) {
    let Db::Sqlite(path) = db else {
        unreachable!("on SQLite")
    };
    let started = std::time::Instant::now();
    loop {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scheduled_jobs")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        if left == 0 {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "{left} deliveries still kept");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_kept_by_one_replica_is_a_replay_to_the_other() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let (api, url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["ticker"]);
    let data = tempfile::tempdir().unwrap();
    let (secret, _) = add_hook(data.path(), plugins.path(), &db, &[]);
    let first = serving(&url, plugins.path(), data.path(), &db, &[]).await;
    let second = serving(&url, plugins.path(), data.path(), &db, &[]).await;
    let body = br#"{"ref":"main"}"#;
    let to = |bot: &Bot| format!("http://127.0.0.1:{}/hooks/ticker/gh", bot.port);
    let (status, text) = deliver(&to(&first), &secret, "delivery-1", body).await;
    assert_eq!(status, 202, "{text}");
    let (status, text) = deliver(&to(&second), &secret, "delivery-1", body).await;
    assert_eq!(status, 409, "{text}");
    // The same delivery to both at once: one keeps it.
    let body = br#"{"ref":"both"}"#;
    let (to_first, to_second) = (to(&first), to(&second));
    let (a, b) = tokio::join!(
        deliver(&to_first, &secret, "delivery-2", body),
        deliver(&to_second, &secret, "delivery-2", body),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [202, 409], "{a:?} {b:?}");
    api.wait_for_sent_within(ALLOWED, 2, PATIENCE).await;
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hooks_addr_serves_the_hooks_alone() {
    let (api, url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["ticker"]);
    let data = tempfile::tempdir().unwrap();
    let db = Db::sqlite(data.path());
    let hooks_addr = format!("127.0.0.1:{}", free_port());
    let setting = [("HOOKS_ADDR", hooks_addr.as_str())];
    let (secret, printed) = add_hook(data.path(), plugins.path(), &db, &setting);
    let hook = format!("http://{hooks_addr}/hooks/ticker/gh");
    assert!(printed.contains(&hook), "{printed}");
    let bot = serving(&url, plugins.path(), data.path(), &db, &setting).await;
    let body = br#"{"ref":"main"}"#;
    let (status, text) = deliver(&hook, &secret, "delivery-1", body).await;
    assert_eq!(status, 202, "{text}");
    api.wait_for_sent_within(ALLOWED, 1, PATIENCE).await;
    let beside_ops = format!("http://127.0.0.1:{}/hooks/ticker/gh", bot.port);
    let (status, _) = deliver(&beside_ops, &secret, "delivery-2", b"{}").await;
    assert_eq!(status, 404, "no hooks on HTTP_ADDR");
    let health = reqwest::get(format!("http://{hooks_addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 404, "no ops endpoints on HOOKS_ADDR");
    bot.stop().await;
}
