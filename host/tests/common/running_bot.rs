//! The Telegram bot in this process (the code `wasmbot run` runs) against
//! a Bot API emulator, on a SQLite database in a temporary folder.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmbot::app::config::Config;
use wasmbot::app::root::Host;

use super::bot_api::BotApi;

pub const TOKEN: &str = "123456:TEST-token_abc";
pub const ADMIN_CHAT: i64 = 999;
pub const ALLOWED: i64 = 7;

pub struct RunningBot {
    pub api: Arc<BotApi>,
    pub plugins: tempfile::TempDir,
    pub data: tempfile::TempDir,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningBot {
    /// `start` and `echo` on a fresh emulator and database.
    pub async fn start(extra: &[(&str, String)]) -> Self {
        let emulator = BotApi::start(TOKEN).await;
        let plugins = super::plugins_dir(&["start", "echo"]);
        Self::start_with(emulator, plugins, tempfile::tempdir().unwrap(), extra).await
    }

    /// Starts on `emulator` (api, url) with these plugins and data folder:
    /// stopping and starting again with the same ones is a restart.
    pub async fn start_with(
        (api, url): (Arc<BotApi>, String),
        plugins: tempfile::TempDir,
        data: tempfile::TempDir,
        extra: &[(&str, String)],
    ) -> Self {
        let mut vars: Vec<(String, String)> = vec![
            ("PLUGINS_DIR".into(), plugins.path().display().to_string()),
            (
                "PLUGIN_CACHE_DIR".into(),
                data.path().join("cache").display().to_string(),
            ),
            (
                "DATABASE_URL".into(),
                format!("sqlite://{}/bot.db", data.path().display()),
            ),
            ("TELEGRAM_BOT_TOKEN".into(), TOKEN.into()),
            ("TELEGRAM_API_URL".into(), url.clone()),
            ("TELEGRAM_ALLOWED_USERS".into(), format!("{ALLOWED}, 8")),
            ("TELEGRAM_ADMIN_CHAT_ID".into(), ADMIN_CHAT.to_string()),
            // Health and metrics on a port of their own: tests run side by side.
            ("HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let config = Config::from_lookup(|name| {
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
        .unwrap();
        let host = Host::start(&config, true).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let result = wasmbot::app::bot::serve(&host, &config, async {
                let _ = stopped.await;
            })
            .await;
            host.shutdown().await;
            result
        });
        let bot = Self {
            api,
            url,
            plugins,
            data,
            stop: Some(stop),
            task,
        };
        bot.wait_until(|api| api.called("getUpdates") || api.webhook.lock().unwrap().is_some())
            .await;
        bot
    }

    pub async fn wait_until(&self, ready: impl Fn(&BotApi) -> bool) {
        let started = Instant::now();
        while !ready(&self.api) {
            assert!(
                !self.task.is_finished(),
                "the bot stopped: {:?}",
                self.api.calls.lock().unwrap()
            );
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "timed out; calls: {:?}",
                self.api.calls.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `count` updates were handled (done in the inbox): stopping
    /// leaves updates not yet claimed for the next start.
    pub async fn wait_handled(&self, count: i64) {
        let url = format!("sqlite://{}", self.data.path().join("bot.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let started = Instant::now();
        loop {
            let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE status = 'done'")
                .fetch_one(&pool)
                .await
                .unwrap();
            if done >= count {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{done} of {count} updates handled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pool.close().await;
    }

    /// The emulator, for the next start.
    pub fn emulator(&self) -> (Arc<BotApi>, String) {
        (self.api.clone(), self.url.clone())
    }

    /// Stops the bot and starts it again on the same database and
    /// emulator, with copies of its plugins and these variables.
    pub async fn restart(self, extra: &[(&str, String)]) -> RunningBot {
        let emulator = self.emulator();
        let plugins = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(self.plugins.path()).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, plugins.path().join(path.file_name().unwrap())).unwrap();
        }
        let (_api, _db, data) = self.stop().await;
        RunningBot::start_with(emulator, plugins, data, extra).await
    }

    /// Stops the bot like SIGTERM does and waits for a clean exit.
    pub async fn stop(mut self) -> (Arc<BotApi>, PathBuf, tempfile::TempDir) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the bot stops within the deadline")
            .unwrap()
            .expect("the bot stops without an error");
        (self.api, self.data.path().join("bot.db"), self.data)
    }
}
