//! OAuth 2 as a host service, through the real binaries against a fake
//! provider and a fake Google Calendar (real HTTP servers): `wasmbot oauth
//! add` runs the code flow with PKCE (the browser's redirect, or a pasted
//! address) and the device flow; `/agenda` is answered with the injected
//! token; an expired token is refreshed before use and a 401 refreshes and
//! retries, without the plugin noticing; two concurrent requests (and two
//! processes sharing one database) refresh once; a refresh that outlives
//! its lease does not overwrite the newer token; a server refusing every
//! token costs one refresh, not one per request; a forged redirect does not
//! end the code flow; a revoked grant alerts the admin chat and gives a
//! clear reply; no token reaches a log, the audit trail, a reply or the
//! command's output.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use common::bot_api::BotApi;
use common::oauth::{CLIENT_ID, CLIENT_SECRET, FakeProvider, GrantChecked};
use common::processes::{ADMIN_CHAT, ALLOWED, Bot, Db, PATIENCE, TOKEN};

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OTHER_USER: i64 = 8;

/// `wasmbot oauth ARGS` on `db`, stdin and stdout piped.
fn oauth(data: &Path, db: &Db, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_wasmbot"))
        .arg("oauth")
        .args(args)
        .current_dir(data)
        .env_clear()
        .env("DATABASE_URL", db.url())
        .env("ENCRYPTION_KEY", KEY)
        .env("LOG_LEVEL", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `wasmbot oauth ARGS` to the end; (success, stdout + stderr).
fn oauth_done(data: &Path, db: &Db, args: &[&str]) -> (bool, String) {
    let output = oauth(data, db, args).wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A child's output lines as they come (stdout and stderr), on threads.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let again = sender.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = again.send(line);
        }
    });
    receiver
}

/// Reads lines until one contains `needle`; every line read, joined.
fn read_until(lines: &mpsc::Receiver<String>, needle: &str, seen: &mut String) -> String {
    loop {
        let line = lines
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no line with {needle:?}; so far:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(needle) {
            return line;
        }
    }
}

/// Waits for the child to exit and its output to end; whether it succeeded.
async fn finished(mut child: Child, lines: &mpsc::Receiver<String>, seen: &mut String) -> bool {
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    // The readers stop at the end of the pipes; then the channel is closed.
    while let Ok(line) = lines.recv_timeout(PATIENCE) {
        seen.push_str(&line);
        seen.push('\n');
    }
    status.success()
}

/// CPU time a process has used (user + system, in clock ticks: 1/100 s).
fn cpu_ticks(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses): state is
    // the first, utime the 12th, stime the 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<i64>().unwrap() + fields[12].parse::<i64>().unwrap()
}

/// How the code flow's redirect comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Redirect {
    /// The browser follows it to the loopback listener.
    Browser,
    /// Redirects of another authorization (a forged `?error=` too) reach
    /// the listener first, then the browser's.
    ForgedFirst,
    /// The operator pastes the address the browser ended on (after one
    /// that is not an address and one of another authorization).
    Pasted,
}

/// Authorizes `google` with the code flow; the test plays the browser
/// (or the operator pasting the address it ended on).
async fn add_google(data: &Path, db: &Db, fake: &FakeProvider, redirect_by: Redirect) -> String {
    let paste = redirect_by == Redirect::Pasted;
    let auth_url = format!("{}/authorize", fake.url);
    let token_url = format!("{}/token", fake.url);
    let mut child = oauth(
        data,
        db,
        &[
            "add",
            "google",
            "--client-id",
            CLIENT_ID,
            "--auth-url",
            &auth_url,
            "--token-url",
            &token_url,
        ],
    );
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{CLIENT_SECRET}").unwrap();
    // Playing the browser, the operator piped the secret in
    // (`printf … | wasmbot oauth add`): stdin is closed at once.
    let stdin = paste.then_some(stdin);
    let lines = lines_of(&mut child);
    let mut seen = String::new();
    let url = read_until(&lines, "/authorize?", &mut seen)
        .trim()
        .to_string();
    // Waiting for the browser costs no CPU, stdin closed or not.
    let before = cpu_ticks(child.id());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = cpu_ticks(child.id()) - before;
    assert!(
        spent < 30,
        "waiting for the redirect took {spent} ticks of CPU in a second"
    );
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(
        url.contains("access_type=offline"),
        "the Google preset asks for a refresh token: {url}"
    );
    assert!(url.contains("calendar.readonly"), "{url}");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = browser.get(&url).send().await.unwrap();
    assert_eq!(consent.status(), 302);
    let redirect = consent.headers()["location"].to_str().unwrap().to_string();
    let loopback = redirect.split_once('?').unwrap().0.to_string();
    let forged = [
        format!("{loopback}?code=code-forged&state=wrong"),
        format!("{loopback}?error=access_denied&state=wrong"),
        format!("{loopback}?error=access_denied"),
    ];
    if let Some(mut stdin) = stdin {
        writeln!(stdin, "not an address").unwrap();
        writeln!(stdin, "{}", forged[1]).unwrap();
        writeln!(stdin, "{redirect}").unwrap();
    } else {
        if redirect_by == Redirect::ForgedFirst {
            for forged in &forged {
                let answer = browser.get(forged).send().await.unwrap();
                let text = answer.text().await.unwrap();
                assert!(
                    text.contains("not the redirect of the authorization in progress"),
                    "{forged}: {text}"
                );
            }
        }
        let landed = browser.get(&redirect).send().await.unwrap();
        assert!(
            landed
                .text()
                .await
                .unwrap()
                .contains("You can close this tab")
        );
    }
    assert!(finished(child, &lines, &mut seen).await, "{seen}");
    assert!(seen.contains("oauth `google` authorized"), "{seen}");
    if paste {
        assert!(seen.contains("That is not the address"), "{seen}");
        assert!(
            seen.contains("That address belongs to another authorization"),
            "{seen}"
        );
    }
    if redirect_by == Redirect::ForgedFirst {
        assert!(seen.contains("Ignored a redirect"), "{seen}");
    }
    seen
}

/// Runs one statement on the bot's database (the test moving time on).
async fn execute(db: &Db, sql: &str) {
    match db {
        Db::Sqlite(path) => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Db::Postgres { .. } => {
            let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

/// As if the current access token had been obtained ten minutes ago: a
/// 401 on a token obtained moments ago does not refresh it again.
async fn age_last_refresh(db: &Db) {
    execute(
        db,
        "UPDATE oauth_credentials SET refreshed_ms = refreshed_ms - 600000",
    )
    .await;
}

/// As if the refresh lease had run out (30 s after it was taken).
async fn expire_lease(db: &Db) {
    execute(
        db,
        "UPDATE oauth_credentials SET refreshing_until_ms = 1 WHERE refreshing_until_ms IS NOT NULL",
    )
    .await;
}

fn bot_env(fake: &FakeProvider) -> Vec<(String, String)> {
    vec![
        ("ENCRYPTION_KEY".into(), KEY.into()),
        (
            "HTTP_ALLOW_PRIVATE".into(),
            format!("127.0.0.1:{}", fake.port()),
        ),
        ("PLUGIN_AGENDA_API_URL".into(), fake.url.clone()),
        (
            "TELEGRAM_ALLOWED_USERS".into(),
            format!("{ALLOWED},{OTHER_USER}"),
        ),
    ]
}

fn texts(api: &BotApi, chat: i64) -> Vec<String> {
    api.sent()
        .into_iter()
        .filter(|s| s.chat_id == chat)
        .map(|s| s.text)
        .collect()
}

async fn agenda(api: &BotApi, chat: i64) -> String {
    let before = texts(api, chat).len();
    api.push(chat, chat, "/agenda");
    let sent = api.wait_for_sent_within(chat, before + 1, PATIENCE).await;
    sent[before].text.clone()
}

/// Everything a token must never appear in.
async fn audit_text(db: &Db) -> String {
    let sql = "SELECT action || ' ' || status || ' ' || COALESCE(error, '') || ' ' || CAST(metadata AS TEXT) FROM audit_trail";
    let rows: Vec<String> = match db {
        Db::Sqlite(path) => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
        Db::Postgres { .. } => {
            let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
            let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    };
    rows.join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn agenda_keeps_working_through_expiry_401_and_concurrency_and_a_revoked_grant_is_clear() {
    let fake = FakeProvider::start().await;
    let data = tempfile::tempdir().unwrap();
    let db = Db::sqlite(data.path());
    let mut outputs = add_google(data.path(), &db, &fake, Redirect::Browser).await;
    let (ok, list) = oauth_done(data.path(), &db, &["list"]);
    assert!(ok, "{list}");
    assert!(
        list.starts_with(
            "google\tgoogle\tscopes https://www.googleapis.com/auth/calendar.readonly"
        ),
        "{list}"
    );
    outputs.push_str(&list);

    let (api, api_url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["agenda"]);
    let env = bot_env(&fake);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut bot = Bot::spawn(&api_url, plugins.path(), data.path(), &db, &env);
    bot.wait_serving().await;

    let reply = agenda(&api, ALLOWED).await;
    assert!(reply.starts_with("📅 Today, "), "{reply}");
    assert!(reply.contains("All day  Company offsite"), "{reply}");
    assert!(
        reply.contains("15:00–15:30  Dentist — Main St 4"),
        "{reply}"
    );
    assert_eq!(fake.refreshes.load(Ordering::SeqCst), 0);

    // A token that lives 2 s (refreshed by hand, the bot running), then
    // expires: refreshed before use; the calendar never sees a stale token.
    fake.expires_in.store(2, Ordering::SeqCst);
    let (ok, text) = oauth_done(data.path(), &db, &["test", "google"]);
    assert!(ok && text.contains("oauth `google`: refreshed;"), "{text}");
    outputs.push_str(&text);
    fake.expires_in.store(3600, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reply = agenda(&api, ALLOWED).await;
    assert!(reply.contains("Dentist"), "{reply}");
    assert_eq!(fake.refreshes.load(Ordering::SeqCst), 2);
    assert_eq!(fake.unauthorized.load(Ordering::SeqCst), 0);

    // The provider forgot the token (obtained a while ago): 401, one
    // refresh, the request again.
    age_last_refresh(&db).await;
    fake.forget_access_tokens();
    let reply = agenda(&api, ALLOWED).await;
    assert!(reply.contains("Dentist"), "{reply}");
    assert_eq!(fake.unauthorized.load(Ordering::SeqCst), 1);
    assert_eq!(fake.refreshes.load(Ordering::SeqCst), 3);

    // Two chats at once on a token that is refused: one refresh between them.
    age_last_refresh(&db).await;
    fake.forget_access_tokens();
    let gate = fake.hold_refreshes();
    let before = (texts(&api, ALLOWED).len(), texts(&api, OTHER_USER).len());
    api.push(ALLOWED, ALLOWED, "/agenda");
    api.push(OTHER_USER, OTHER_USER, "/agenda");
    fake.refresh_arrived().await;
    // Both calls have sent their request (two 401s) before the refresh ends.
    let waited = std::time::Instant::now();
    while fake.unauthorized.load(Ordering::SeqCst) < 3 && waited.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        fake.unauthorized.load(Ordering::SeqCst),
        3,
        "both chats sent their request while the refresh was held"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.release_refreshes();
    gate.notify_waiters();
    let mine = api
        .wait_for_sent_within(ALLOWED, before.0 + 1, PATIENCE)
        .await;
    let theirs = api
        .wait_for_sent_within(OTHER_USER, before.1 + 1, PATIENCE)
        .await;
    assert!(
        mine[before.0].text.contains("Dentist"),
        "{:?}",
        mine[before.0]
    );
    assert!(
        theirs[before.1].text.contains("Dentist"),
        "{:?}",
        theirs[before.1]
    );
    assert_eq!(
        fake.refreshes.load(Ordering::SeqCst),
        4,
        "one refresh for both"
    );

    // Consent revoked: a clear reply, an alert with the command, the status.
    age_last_refresh(&db).await;
    fake.revoke();
    let reply = agenda(&api, ALLOWED).await;
    assert!(
        reply.starts_with(
            "I cannot read your calendar: the `google` authorization was revoked or has expired"
        ) && reply.contains("`wasmbot oauth add google`"),
        "{reply}"
    );
    let alerts = api.wait_for_sent_within(ADMIN_CHAT, 1, PATIENCE).await;
    assert!(
        alerts
            .iter()
            .any(|a| a.text.contains("wasmbot oauth add google")),
        "{alerts:?}"
    );
    // Further requests do not hammer the provider.
    let refreshes = fake.refreshes.load(Ordering::SeqCst);
    let reply = agenda(&api, ALLOWED).await;
    assert!(reply.contains("wasmbot oauth add google"), "{reply}");
    assert_eq!(fake.refreshes.load(Ordering::SeqCst), refreshes);
    let (_, list) = oauth_done(data.path(), &db, &["list"]);
    assert!(
        list.contains("NEEDS `wasmbot oauth add google` (invalid_grant"),
        "{list}"
    );
    outputs.push_str(&list);

    // Authorizing again (the operator pasting the address) mends it.
    outputs.push_str(&add_google(data.path(), &db, &fake, Redirect::Pasted).await);
    let reply = agenda(&api, ALLOWED).await;
    assert!(reply.contains("Dentist"), "{reply}");

    let logs = bot.logs();
    bot.stop().await;
    let replies: Vec<String> = api.sent().into_iter().map(|s| s.text).collect();
    let audit = audit_text(&db).await;
    assert!(audit.contains("oauth_refresh ok"), "{audit}");
    assert!(audit.contains("oauth_refresh reauthorize"), "{audit}");
    assert!(
        audit.contains("oauth:google"),
        "http_request names the credential: {audit}"
    );
    let haystacks = [
        ("the bot's log", logs),
        ("replies", replies.join("\n")),
        ("audit", audit),
        ("CLI output", outputs),
    ];
    for secret in fake.issued() {
        for (what, text) in &haystacks {
            assert!(!text.contains(&secret), "{what} holds {secret}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_device_flow_polls_until_approved() {
    let fake = FakeProvider::start().await;
    let data = tempfile::tempdir().unwrap();
    let db = Db::sqlite(data.path());
    let auth = format!("{}/authorize", fake.url);
    let token = format!("{}/token", fake.url);
    let device = format!("{}/device/code", fake.url);
    let mut child = oauth(
        data.path(),
        &db,
        &[
            "add",
            "gh",
            "--provider",
            "custom",
            "--client-id",
            CLIENT_ID,
            "--auth-url",
            &auth,
            "--token-url",
            &token,
            "--device-url",
            &device,
            "--scopes",
            "notifications,read:user",
        ],
    );
    // A public client: no secret.
    writeln!(child.stdin.take().unwrap()).unwrap();
    let lines = lines_of(&mut child);
    let mut seen = String::new();
    read_until(&lines, "enter the code WDJB-MJHT", &mut seen);
    // The user approves after the CLI has polled at least once.
    let waited = std::time::Instant::now();
    while fake.device_polls_pending.load(Ordering::SeqCst) == 0 && waited.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fake.approve_devices();
    assert!(finished(child, &lines, &mut seen).await, "{seen}");
    assert!(seen.contains("oauth `gh` authorized"), "{seen}");
    assert!(
        fake.device_polls_pending.load(Ordering::SeqCst) >= 1,
        "the CLI was told `authorization_pending` and kept polling"
    );
    let (ok, list) = oauth_done(data.path(), &db, &["list"]);
    assert!(ok && list.starts_with("gh\tcustom\t"), "{list}");
    let (ok, text) = oauth_done(data.path(), &db, &["test", "gh"]);
    assert!(
        ok && text.contains("oauth `gh`: refreshed; the access token is valid for"),
        "{text}"
    );
    let (ok, text) = oauth_done(data.path(), &db, &["remove", "gh"]);
    assert!(ok, "{text}");
    let (ok, text) = oauth_done(data.path(), &db, &["test", "gh"]);
    assert!(
        !ok && text.contains("no OAuth credential named `gh`"),
        "{text}"
    );
    let (ok, text) = oauth_done(data.path(), &db, &["add", "x:y", "--client-id", "c"]);
    assert!(!ok && text.contains("OAuth credential names are"), "{text}");
    for secret in fake.issued() {
        assert!(!seen.contains(&secret), "the output holds {secret}");
    }
}

/// Two `oauth test` processes on one database: the second finds the first
/// mid-refresh, waits, and reports its result; the provider sees one
/// refresh, and the rotated refresh token works afterwards.
async fn two_processes_refresh_once(db: Db) {
    let fake = FakeProvider::start().await;
    let data = tempfile::tempdir().unwrap();
    add_google(data.path(), &db, &fake, Redirect::Browser).await;
    let gate = fake.hold_refreshes();
    let mut first = oauth(data.path(), &db, &["test", "google"]);
    fake.refresh_arrived().await;
    let mut second = oauth(data.path(), &db, &["test", "google"]);
    let second_lines = lines_of(&mut second);
    let mut seen = String::new();
    read_until(
        &second_lines,
        "another process is refreshing `google`",
        &mut seen,
    );
    gate.notify_waiters();
    let first_lines = lines_of(&mut first);
    let mut first_seen = String::new();
    read_until(&first_lines, "oauth `google`: refreshed;", &mut first_seen);
    read_until(
        &second_lines,
        "oauth `google`: refreshed by another process;",
        &mut seen,
    );
    assert!(first.wait().unwrap().success());
    assert!(second.wait().unwrap().success());
    assert_eq!(fake.refreshes.load(Ordering::SeqCst), 1);
    fake.release_refreshes();
    let (ok, text) = oauth_done(data.path(), &db, &["test", "google"]);
    assert!(
        ok && text.contains("refreshed;"),
        "the rotated token was kept: {text}"
    );
    assert_eq!(fake.refreshes.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_on_sqlite_refresh_once() {
    let data = tempfile::tempdir().unwrap();
    two_processes_refresh_once(Db::sqlite(data.path())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_on_postgres_refresh_once() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    two_processes_refresh_once(db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_redirect_does_not_end_the_code_flow() {
    let fake = FakeProvider::start().await;
    let data = tempfile::tempdir().unwrap();
    let db = Db::sqlite(data.path());
    let seen = add_google(data.path(), &db, &fake, Redirect::ForgedFirst).await;
    let (ok, list) = oauth_done(data.path(), &db, &["list"]);
    assert!(ok && list.starts_with("google\tgoogle\t"), "{list}");
    for secret in fake.issued() {
        assert!(!seen.contains(&secret), "the output holds {secret}");
    }
}

/// A refresh the provider answers only after its lease ran out, while the
/// refresh that took the lease over has rotated the tokens: the late
/// answer is not saved — new tokens (`OnArrival`) or `invalid_grant`
/// (`OnAnswer`, which must not mark the credential `reauthorize`) — and
/// the rotated refresh token is the one used next.
async fn a_refresh_outliving_its_lease_keeps_the_newer_token(db: Db, checked: GrantChecked) {
    let fake = FakeProvider::start().await;
    let data = tempfile::tempdir().unwrap();
    add_google(data.path(), &db, &fake, Redirect::Browser).await;
    let slow = fake.slow_next_refresh(checked);
    let late = oauth(data.path(), &db, &["test", "google"]);
    fake.refresh_arrived().await;
    expire_lease(&db).await;
    let (ok, text) = oauth_done(data.path(), &db, &["test", "google"]);
    assert!(ok && text.contains("oauth `google`: refreshed;"), "{text}");
    let newer = fake.latest_refresh_token().unwrap();

    slow.notify_one();
    let late = late.wait_with_output().unwrap();
    assert_eq!(fake.refreshes.load(Ordering::SeqCst), 2);
    let answered = fake.latest_refresh_token().unwrap() != newer;
    assert_eq!(
        answered,
        checked == GrantChecked::OnArrival,
        "a late answer brings tokens of its own only if its grant was checked on arrival"
    );

    let (ok, text) = oauth_done(data.path(), &db, &["test", "google"]);
    assert!(ok && text.contains("refreshed;"), "{text}");
    assert_eq!(
        fake.presented_refresh_tokens().last(),
        Some(&newer),
        "the next refresh uses the token of the refresh that took the lease over"
    );
    let late_text = String::from_utf8_lossy(&late.stdout);
    assert!(
        late.status.success()
            && late_text.contains("oauth `google`: refreshed by another process;"),
        "the late refresh reports the newer token: {late_text}"
    );
    let (ok, list) = oauth_done(data.path(), &db, &["list"]);
    let google = list.lines().find(|line| line.starts_with("google\t"));
    assert!(
        ok && google.is_some_and(|line| line.ends_with("\tok")),
        "{list}"
    );
    let audit = audit_text(&db).await;
    assert_eq!(
        audit.contains("oauth_refresh superseded"),
        answered,
        "{audit}"
    );
    assert!(!audit.contains("oauth_refresh reauthorize"), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_outliving_its_lease_keeps_the_newer_token_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let db = Db::sqlite(data.path());
    a_refresh_outliving_its_lease_keeps_the_newer_token(db, GrantChecked::OnArrival).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_outliving_its_lease_keeps_the_newer_token_on_postgres() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    a_refresh_outliving_its_lease_keeps_the_newer_token(db, GrantChecked::OnArrival).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_refresh_outliving_its_lease_does_not_ask_for_reauthorization() {
    let data = tempfile::tempdir().unwrap();
    let db = Db::sqlite(data.path());
    a_refresh_outliving_its_lease_keeps_the_newer_token(db, GrantChecked::OnAnswer).await;
}

/// A server refusing every token, however fresh: twenty requests cost one
/// refresh (the plugin gets the 401), not one each.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_refusing_every_token_costs_one_refresh() {
    const REQUESTS: usize = 20;
    /// As in the host: no second refresh after a 401 within this.
    const GAP: Duration = Duration::from_secs(30);
    let fake = FakeProvider::start().await;
    let data = tempfile::tempdir().unwrap();
    let db = Db::sqlite(data.path());
    add_google(data.path(), &db, &fake, Redirect::Browser).await;
    let (api, api_url) = BotApi::start(TOKEN).await;
    let plugins = common::plugins_dir(&["agenda"]);
    let env = bot_env(&fake);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut bot = Bot::spawn(&api_url, plugins.path(), data.path(), &db, &env);
    bot.wait_serving().await;

    age_last_refresh(&db).await;
    fake.refuse_every_token(true);
    let started = std::time::Instant::now();
    for _ in 0..REQUESTS {
        let reply = agenda(&api, ALLOWED).await;
        assert!(!reply.contains("Dentist"), "{reply}");
    }
    let refreshes = fake.refreshes.load(Ordering::SeqCst);
    // Only a machine so slow that the requests outlast the gap may refresh
    // again.
    let windows = 1 + (started.elapsed().as_secs() / GAP.as_secs()) as usize;
    assert!(
        (1..=windows).contains(&refreshes),
        "{REQUESTS} requests refused with 401 caused {refreshes} refreshes"
    );
    assert_eq!(
        fake.unauthorized.load(Ordering::SeqCst),
        REQUESTS + refreshes,
        "a request is sent again only with a new token"
    );

    // The token the refresh brought is used once the server takes it.
    fake.refuse_every_token(false);
    let reply = agenda(&api, ALLOWED).await;
    assert!(reply.contains("Dentist"), "{reply}");
    assert_eq!(fake.refreshes.load(Ordering::SeqCst), refreshes);
    bot.stop().await;
}
