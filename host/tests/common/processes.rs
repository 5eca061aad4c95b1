//! `wasmbot run` (and `worker`) as real processes against the Bot API
//! emulator, on SQLite or a fresh PostgreSQL schema, for the tests that
//! kill, restart and replicate them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "123456:TEST-token_abc";
pub const ADMIN_CHAT: i64 = 999;
pub const ALLOWED: i64 = 7;
/// A restart, a lease running out and a slow handler, on a busy machine.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// Where the bot keeps its inbox, as the test reads it.
pub enum Db {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl Db {
    pub fn sqlite(dir: &Path) -> Self {
        Db::Sqlite(dir.join("bot.db"))
    }

    /// A fresh schema on `TEST_POSTGRES_URL`; None when Postgres is not configured.
    pub async fn postgres() -> Option<Self> {
        let url = super::stores::postgres_url()?;
        let schema = super::stores::postgres_at(&url)
            .await
            .schema
            .expect("a schema");
        Some(Db::Postgres { url, schema })
    }

    /// DATABASE_URL for the bot.
    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite://{}", path.display()),
            Db::Postgres { url, schema } => {
                let join = if url.contains('?') { '&' } else { '?' };
                format!("{url}{join}options[search_path]={schema}")
            }
        }
    }

    /// (update_id, chat_id, status, attempts, leased) of every inbox row, oldest first.
    pub async fn rows(&self) -> Vec<(i64, i64, String, i32, bool)> {
        let sql = "SELECT update_id, chat_id, status, attempts, lease_owner IS NOT NULL FROM inbox ORDER BY update_id";
        match self {
            Db::Sqlite(path) => {
                if !path.exists() {
                    return Vec::new();
                }
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                let rows = sqlx::query_as(sql)
                    .fetch_all(&pool)
                    .await
                    .unwrap_or_default();
                pool.close().await;
                rows
            }
            Db::Postgres { .. } => {
                let pool = sqlx::PgPool::connect(&self.url()).await.unwrap();
                let rows = sqlx::query_as(sql)
                    .fetch_all(&pool)
                    .await
                    .unwrap_or_default();
                pool.close().await;
                rows
            }
        }
    }

    /// Waits until `ready` holds for the inbox rows; returns them.
    pub async fn wait_rows(
        &self,
        what: &str,
        ready: impl Fn(&[(i64, i64, String, i32, bool)]) -> bool,
    ) -> Vec<(i64, i64, String, i32, bool)> {
        let started = Instant::now();
        loop {
            let rows = self.rows().await;
            if ready(&rows) {
                return rows;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "timed out waiting for {what}; inbox: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One `wasmbot run` process; its logs go to a file (a full pipe would stall it).
pub struct Bot {
    child: Child,
    log: PathBuf,
    pub port: u16,
}

impl Bot {
    pub fn spawn(
        api_url: &str,
        plugins: &Path,
        data: &Path,
        db: &Db,
        extra: &[(&str, &str)],
    ) -> Self {
        Self::spawn_command("run", api_url, plugins, data, db, extra)
    }

    /// `wasmbot COMMAND` (`run`, `worker`) with the bot's settings.
    pub fn spawn_command(
        subcommand: &str,
        api_url: &str,
        plugins: &Path,
        data: &Path,
        db: &Db,
        extra: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let log = data.join(format!("{subcommand}-{port}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasmbot"));
        command
            .arg(subcommand)
            .current_dir(data)
            .env_clear()
            .env("PLUGINS_DIR", plugins)
            .env("PLUGIN_CACHE_DIR", data.join("cache"))
            .env("DATABASE_URL", db.url())
            .env("TELEGRAM_BOT_TOKEN", TOKEN)
            .env("TELEGRAM_API_URL", api_url)
            .env("TELEGRAM_ALLOWED_USERS", format!("{ALLOWED}"))
            .env("TELEGRAM_ADMIN_CHAT_ID", ADMIN_CHAT.to_string())
            .env("INBOX_LEASE_SECS", "2")
            .env("LOG_FORMAT", "json")
            .env("HTTP_ADDR", format!("127.0.0.1:{port}"));
        for (name, value) in extra {
            command.env(name, value.replace("{port}", &port.to_string()));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self { child, log, port }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the process serves `/healthz`.
    pub async fn wait_serving(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the bot exited with {status:?}: {}", self.logs());
            }
            if reqwest::get(format!("http://127.0.0.1:{}/healthz", self.port))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            assert!(started.elapsed() < PATIENCE, "not serving: {}", self.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no drain, no flush, no goodbye.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and a clean exit.
    pub async fn stop(mut self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit {status:?}: {}", self.logs());
                return;
            }
            assert!(started.elapsed() < PATIENCE, "no exit after SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Posts `update` to a webhook with the secret the bot registered; returns the status.
pub async fn post_update(hook: &str, secret: &str, update: &serde_json::Value) -> u16 {
    reqwest::Client::new()
        .post(hook)
        .header("content-type", "application/json")
        .header("X-Telegram-Bot-Api-Secret-Token", secret)
        .body(update.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub fn registered_secret(api: &super::bot_api::BotApi) -> String {
    api.webhook
        .lock()
        .unwrap()
        .clone()
        .expect("setWebhook was called")
        .1
}
