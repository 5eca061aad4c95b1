//! Bounds that hold when calls run at once and a plugin is hostile, through
//! the real `wasmbot run` against the Bot API emulator, with the `hostile`
//! test plugin: guests that compute never stall the host's own work; the
//! files quota holds for many writers at once and at huge offsets; a loop
//! of refused requests leaves one audit row and one log line, not one per
//! request; one plugin's flood of jobs leaves the others' slots free; jobs
//! that trap after adding more cannot grow the table past the quota.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::bot_api::BotApi;
use common::processes::{ALLOWED, Bot, Db, PATIENCE, TOKEN};

/// A bot with `hostile` (its `[limits]` replaced by `limits`), `start` and
/// `ticker`, on SQLite in a fresh folder.
struct Hostile {
    api: std::sync::Arc<BotApi>,
    bot: Bot,
    data: tempfile::TempDir,
    _plugins: tempfile::TempDir,
}

impl Hostile {
    async fn start(limits: &str) -> Self {
        let (api, url) = BotApi::start(TOKEN).await;
        let plugins = common::plugins_dir(&["hostile", "start", "ticker", "notes"]);
        let manifest = std::fs::read_to_string(plugins.path().join("hostile.toml")).unwrap();
        let (head, _) = manifest
            .split_once("\n[limits]\n")
            .expect("hostile has limits");
        std::fs::write(
            plugins.path().join("hostile.toml"),
            format!("{head}\n[limits]\n{limits}\n"),
        )
        .unwrap();
        let data = tempfile::tempdir().unwrap();
        let db = Db::sqlite(data.path());
        let mut bot = Bot::spawn(&url, plugins.path(), data.path(), &db, &[]);
        bot.wait_serving().await;
        Self {
            api,
            bot,
            data,
            _plugins: plugins,
        }
    }

    /// Sends `text` from chat `chat`.
    fn say(&self, chat: i64, text: &str) {
        self.api.push(chat, ALLOWED, text);
    }

    /// The messages chat `chat` got, once it got `count`.
    async fn answers(&self, chat: i64, count: usize) -> Vec<String> {
        self.api
            .wait_for_sent_within(chat, count, PATIENCE)
            .await
            .into_iter()
            .map(|sent| sent.text)
            .collect()
    }

    async fn database(&self) -> sqlx::SqlitePool {
        let url = format!("sqlite://{}", self.data.path().join("bot.db").display());
        sqlx::SqlitePool::connect(&url).await.unwrap()
    }

    async fn count(&self, sql: &str) -> i64 {
        let pool = self.database().await;
        let count = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        count
    }

    /// Waits until `sql` counts at least `at_least`.
    async fn wait_count(&self, sql: &str, at_least: i64) {
        let started = Instant::now();
        loop {
            let count = self.count(sql).await;
            if count >= at_least {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{sql}: {count} of {at_least}; logs: {}",
                self.bot.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn folder(&self) -> std::path::PathBuf {
        self.data.path().join("data/files/hostile")
    }
}

/// Bytes under `dir` as the files quota counts them (4 KiB an entry).
fn usage(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += 4096;
        if meta.is_dir() {
            total += usage(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

/// Point 0: calls that compute until their deadline, twice as many as
/// cores, while `/healthz` keeps answering at once and another chat's
/// `/start` within a second.
#[tokio::test(flavor = "multi_thread")]
async fn guests_that_compute_never_stall_health_or_other_chats() {
    let bot = Hostile::start("timeout_ms = 6000").await;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let spinners = (2 * cores).max(4) as i64;
    for chat in 0..spinners {
        bot.say(100 + chat, "/hspin");
    }
    // Every spinning call has been claimed (its handling begun).
    bot.wait_count(
        "SELECT COUNT(*) FROM inbox WHERE status = 'pending' AND lease_owner IS NOT NULL",
        spinners,
    )
    .await;
    let spinning_since = Instant::now();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let healthz = format!("http://127.0.0.1:{}/healthz", bot.bot.port);
    let mut latencies = Vec::new();
    let asked = Instant::now();
    bot.say(300, "/start");
    while spinning_since.elapsed() < Duration::from_secs(2) {
        let probe = Instant::now();
        let status = client.get(&healthz).send().await.map(|r| r.status());
        latencies.push(probe.elapsed());
        assert!(matches!(status, Ok(s) if s == 200), "{status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let start = bot.api.wait_for_sent_within(300, 1, PATIENCE).await;
    let start_took = start[0].at.duration_since(asked);
    // All of that happened while the spinners were still computing.
    let first_spinner = bot
        .api
        .sent()
        .iter()
        .find(|s| s.chat_id >= 100 && s.chat_id < 300)
        .map(|s| s.at);
    assert!(
        first_spinner.is_none_or(|at| at > spinning_since + Duration::from_secs(2)),
        "a spinner ended before the probes did: the test proves nothing"
    );
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let worst = *latencies.last().unwrap();
    eprintln!(
        "{spinners} spinning calls: /healthz median {median:?}, worst {worst:?} ({} probes); /start answered in {start_took:?}",
        latencies.len()
    );
    assert!(median < Duration::from_millis(100), "{latencies:?}");
    assert!(worst < Duration::from_secs(1), "{latencies:?}");
    assert!(
        start_took < Duration::from_secs(1),
        "/start took {start_took:?}"
    );
    assert!(start[0].text.starts_with("Hello"), "{:?}", start[0].text);

    // Each spinner ends at its deadline with the friendly reply; the host goes on.
    for chat in 0..spinners {
        let answer = bot.answers(100 + chat, 1).await;
        assert!(answer[0].contains("too long"), "{answer:?}");
    }
}

/// Point 1: six jobs and two chats write into one 1 MiB folder at once;
/// together they stay within it, and a byte at a 1 GiB offset is refused
/// instead of locking the plugin out.
#[tokio::test(flavor = "multi_thread")]
async fn the_files_quota_holds_for_writers_at_once_and_for_sparse_files() {
    let bot = Hostile::start("files_kb = 1024\nschedule_jobs = 100").await;
    // A write at a 1 GiB offset is charged what the folder will count...
    bot.say(203, "/hsparse");
    let sparse = bot.answers(203, 1).await.remove(0);
    assert!(sparse.starts_with("error"), "{sparse}");
    assert!(usage(&bot.folder()) <= 1024 * 1024);
    // ...so the plugin can still write what fits.
    bot.say(204, "/hwrite 10");
    assert_eq!(bot.answers(204, 1).await, ["wrote 10 KiB"]);

    bot.say(200, "/hjobwrite 6 700");
    bot.say(201, "/hwrite 700");
    bot.say(202, "/hwrite 700");
    let mut answers = bot.answers(200, 7).await;
    answers.extend(bot.answers(201, 1).await);
    answers.extend(bot.answers(202, 1).await);
    let wrote = answers
        .iter()
        .filter(|a| a.starts_with("wrote 700"))
        .count();
    let refused = answers.iter().filter(|a| a.starts_with("error")).count();
    let used = usage(&bot.folder());
    eprintln!(
        "8 writers of 700 KiB into 1024 KiB: {used} bytes on disk, {wrote} whole, {refused} refused"
    );
    assert!(
        used <= 1024 * 1024,
        "{used} bytes in a 1 MiB quota: {answers:?}"
    );
    // At most one fits whole; writers interleaved may all fall short.
    assert!(wrote <= 1, "{answers:?}");
    assert_eq!(wrote + refused, 8, "{answers:?}");
}

/// Point 2: one call loops on refused requests; the audit trail gets the
/// first refusal and one summary, the log one line each.
#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_are_counted_not_recorded_one_by_one() {
    // A debug build on a busy machine takes a few ms a request.
    let bot = Hostile::start("timeout_ms = 60000").await;
    bot.say(210, "/hrefused 1000");
    assert_eq!(bot.answers(210, 1).await, ["1000 refused, 0 answered"]);
    // The call's own entry is queued after its requests': once it is
    // written, so are they.
    bot.wait_count(
        "SELECT COUNT(*) FROM audit_trail WHERE chat_id = 210 AND action <> 'http_request'",
        1,
    )
    .await;
    let rows = bot
        .count("SELECT COUNT(*) FROM audit_trail WHERE chat_id = 210 AND action = 'http_request'")
        .await;
    let lines = bot
        .bot
        .logs()
        .lines()
        .filter(|line| line.contains("http") && line.contains("refused"))
        .count();
    eprintln!("1000 refused requests in one call: {rows} audit rows, {lines} log lines");
    assert_eq!(rows, 2, "the first refusal and one summary");
    assert!(lines <= 2, "{lines} log lines");
}

/// Point 3: a plugin's 32 jobs compute until their deadline; another
/// plugin's reminder due three seconds later fires within a second of it.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_flood_leaves_other_plugins_reminders_on_time() {
    let bot = Hostile::start("timeout_ms = 8000\nschedule_jobs = 100\nschedule_writes = 40").await;
    bot.say(220, "/hjobspin 32");
    assert_eq!(bot.answers(220, 1).await, ["scheduled 32"]);
    let asked = Instant::now();
    bot.say(221, "/later 3000 tea");
    let confirmed = bot.api.wait_for_sent_within(221, 1, PATIENCE).await[0].at;
    let fired = bot.api.wait_for_sent_within(221, 2, PATIENCE).await[1].clone();
    assert_eq!(fired.text, "⏰ tea");
    let due_at_latest = confirmed + Duration::from_secs(3);
    let late = fired.at.saturating_duration_since(due_at_latest);
    eprintln!(
        "reminder beside 32 spinning jobs: fired {:?} after it was asked, {late:?} past its due time",
        fired.at.duration_since(asked)
    );
    assert!(fired.at >= asked + Duration::from_secs(3), "fired early");
    assert!(late < Duration::from_secs(1), "{late:?} late");
}

/// Point 4: a job adds more jobs and traps, and so do they: jobs set aside
/// count against the quota, so the table stops growing at it.
#[tokio::test(flavor = "multi_thread")]
async fn jobs_that_trap_after_adding_more_stop_at_the_quota() {
    let bot = Hostile::start("schedule_jobs = 4").await;
    bot.say(230, "/hjobtrap 3");
    assert_eq!(bot.answers(230, 1).await, ["scheduled 1"]);
    // Each job fails three times (2 s and 4 s apart) before it is set
    // aside; wait until none is left active.
    let started = Instant::now();
    loop {
        let active = bot
            .count("SELECT COUNT(*) FROM scheduled_jobs WHERE plugin = 'hostile' AND status = 'active'")
            .await;
        let all = bot
            .count("SELECT COUNT(*) FROM scheduled_jobs WHERE plugin = 'hostile'")
            .await;
        assert!(all <= 4, "{all} jobs kept with a quota of 4");
        if active == 0 {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "{active} jobs still active");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dead = bot
        .count("SELECT COUNT(*) FROM scheduled_jobs WHERE plugin = 'hostile' AND status = 'dead'")
        .await;
    assert_eq!(dead, 4);
    // It adds no more until they expire or it cancels them.
    bot.say(231, "/hjobspin 1");
    let refused = bot.answers(231, 1).await.remove(0);
    assert!(
        refused.contains("there are 4 scheduled jobs already"),
        "{refused}"
    );
}

/// Point 7: a question asked from a job does not take over another
/// plugin's question (whose answer still reaches it), and a plugin's
/// message to the admin chat says whose it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_jobs_question_never_takes_over_another_plugins() {
    let bot = Hostile::start("schedule_jobs = 100").await;
    // Due well after `/note` is answered, even on a slow machine.
    bot.say(240, "/hjobask 3000");
    assert_eq!(bot.answers(240, 1).await, ["scheduled 1"]);
    bot.say(240, "/note");
    assert_eq!(bot.answers(240, 2).await[1], "What should I note?");
    // The job asks while notes waits for its answer.
    assert_eq!(
        bot.answers(240, 3).await[2],
        "Which colour, asked from a job?"
    );
    bot.say(240, "buy milk");
    assert_eq!(bot.answers(240, 4).await[3], "Noted (1 in this chat).");

    bot.say(241, "/tell_admin 0 hello from a job");
    bot.answers(241, 1).await;
    let admin = bot
        .api
        .wait_for_sent_within(common::processes::ADMIN_CHAT, 1, PATIENCE)
        .await;
    assert_eq!(admin[0].text, "🧩 ticker:\n⏰ hello from a job");
}
