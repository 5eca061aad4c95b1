//! The `streaming` section: a fake Messages API writes 40 words 100 ms
//! apart (the fake of the tests, over a socket); how soon the user sees the
//! first of them and the whole answer, in the console and in Telegram (the
//! Bot API emulator of the tests), and how many Telegram requests one
//! answer costs. Before streaming the first text came with the last: after
//! the whole answer, ≥ 4 s here.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use teloxide::prelude::Bot;
use wasmbot::chat::IncomingMessage;
use wasmbot::chat::console::{self, ConsoleUser};
use wasmbot::chat::telegram::{ReplySender, TelegramLink};
use wasmbot::infra::llm::{LlmClient, LlmSettings};
use wasmbot::infra::services::HostServices;
use wasmbot::runtime::{Allocation, ChatType};

use super::anthropic::{Answer, FakeAnthropic, paced_text};
use super::bot_api::BotApi;
use super::{Report, dispatcher, install, sqlite_store};

const WORDS: usize = 40;
const EVERY: Duration = Duration::from_millis(100);
const TOKEN: &str = "123456:BENCH-token";

pub async fn bench_streaming(r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    install(dir.path(), "assistant")?;
    let (fake, url) = FakeAnthropic::start().await;
    let settings = LlmSettings::from_lookup(|name| match name {
        "ANTHROPIC_BASE_URL" => Some(url.clone()),
        "ANTHROPIC_API_KEY" => Some("sk-ant-bench".into()),
        _ => None,
    })?;
    let services = HostServices {
        store: Some(sqlite_store(dir.path()).await?),
        llm: LlmClient::from_settings(&settings)?.map(Arc::new),
        ..HostServices::default()
    };
    let d = dispatcher(dir.path(), Allocation::Pooling, services).await?;
    let full = paced_text(WORDS);
    let last_word = full.rsplit(' ').next().unwrap_or_default().to_string();

    // The console: what `just chat` prints, with when each write came.
    fake.script([Answer::Paced {
        words: WORDS,
        every: EVERY,
    }]);
    let screen = TimedScreen::default();
    let user = ConsoleUser {
        user_id: 1,
        chat_id: 1,
        username: Some("bench".into()),
        received_dir: dir.path().join("received"),
    };
    let asked = Instant::now();
    let input = tokio::io::BufReader::new(&b"/ask count to forty\n"[..]);
    console::run(&d, &user, input, screen.clone(), false, None).await?;
    let first_token = first_sent(&fake)?;
    let first = screen.when(|text| text.contains("word1"))?;
    let last = screen.when(|text| text.contains(&last_word))?;
    report(
        r,
        "console",
        "console",
        (asked, first_token, first, last),
        None,
    );

    // Telegram, a private chat (drafts) and a group (one edited message).
    for (chat_id, chat_type, label) in [
        (7, ChatType::Private, "telegram_private"),
        (-100, ChatType::Group, "telegram_group"),
    ] {
        let (api, api_url) = BotApi::start(TOKEN).await;
        let bot = Bot::new(TOKEN).set_api_url(reqwest::Url::parse(&api_url)?);
        let replies = ReplySender::new(bot);
        fake.script([Answer::Paced {
            words: WORDS,
            every: EVERY,
        }]);
        fake.sent_at
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .clear();
        let message = IncomingMessage {
            chat_type,
            ..IncomingMessage::private(chat_id, 1, Some("bench"), "/ask count to forty")
        };
        let link = TelegramLink::for_chat(&replies, chat_id, chat_type == ChatType::Private);
        let asked = Instant::now();
        let answered = d.handle_in(message, Some(link)).await;
        anyhow::ensure!(answered.is_some(), "no answer in {label}");
        let first_token = first_sent(&fake)?;
        let (first, last, requests) = telegram_times(&api, &full)?;
        report(
            r,
            label,
            label,
            (asked, first_token, first, last),
            Some(requests),
        );
    }
    r.note(format!(
        "streaming: a fake Messages API sends {WORDS} words {} ms apart; \"first text\" is counted from the API's first token, \"whole answer\" from the request (before streaming the first text came with the whole answer, ≥ {:.1} s here); Telegram allows about one edit per second per chat",
        EVERY.as_millis(),
        (WORDS - 1) as f64 * EVERY.as_secs_f64()
    ));
    Ok(())
}

fn report(
    r: &mut Report,
    label: &str,
    key: &str,
    (asked, first_token, first, last): (Instant, Instant, Instant, Instant),
    requests: Option<usize>,
) {
    let ms = |later: Instant, earlier: Instant| {
        later.saturating_duration_since(earlier).as_secs_f64() * 1000.0
    };
    r.add_target(
        "streaming",
        &format!("{label}: API's first token → first text visible"),
        &format!("streaming.{key}.first_text_ms"),
        ms(first, first_token),
        "ms",
        Some(("<=", 500.0)),
    );
    r.add(
        "streaming",
        &format!("{label}: request → whole answer visible"),
        &format!("streaming.{key}.final_ms"),
        ms(last, asked),
        "ms",
    );
    if let Some(requests) = requests {
        let seconds = ms(last, asked) / 1000.0;
        r.add_target(
            "streaming",
            &format!("{label}: Telegram requests for the answer"),
            &format!("streaming.{key}.requests"),
            requests as f64,
            "requests",
            Some((
                "<=",
                seconds.ceil() * if key.ends_with("private") { 3.0 } else { 1.0 } + 2.0,
            )),
        );
    }
}

fn first_sent(fake: &FakeAnthropic) -> anyhow::Result<Instant> {
    let sent = fake
        .sent_at
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    sent.first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("the fake API sent no text"))
}

/// When the first text and the whole answer were visible, and the requests made.
fn telegram_times(api: &BotApi, full: &str) -> anyhow::Result<(Instant, Instant, usize)> {
    let drafts = api
        .drafts
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let sent = api.sent();
    let edits: Vec<Instant> = api
        .action_times
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .iter()
        .filter(|(method, _)| method == "editmessagetext")
        .map(|(_, at)| *at)
        .collect();
    let first = drafts
        .first()
        .map(|(_, _, _, at)| *at)
        .into_iter()
        .chain(sent.first().map(|s| s.at))
        .min()
        .ok_or_else(|| anyhow::anyhow!("nothing was shown"))?;
    let whole = sent
        .iter()
        .map(|s| (s.at, api.held(s.message_id).map(|m| m.text)))
        .collect::<Vec<_>>();
    anyhow::ensure!(
        whole
            .iter()
            .filter_map(|(_, text)| text.clone())
            .collect::<String>()
            == full,
        "the whole answer is not shown: {whole:?}"
    );
    let last = sent
        .iter()
        .map(|s| s.at)
        .chain(edits.iter().copied())
        .max()
        .unwrap_or(first);
    Ok((first, last, drafts.len() + sent.len() + edits.len()))
}

/// The console's output, with when each write arrived.
#[derive(Clone, Default)]
struct TimedScreen(Arc<Mutex<Vec<(Instant, String)>>>);

impl TimedScreen {
    /// When what was written so far first matched `shown`.
    fn when(&self, shown: impl Fn(&str) -> bool) -> anyhow::Result<Instant> {
        let writes = self.0.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let mut so_far = String::new();
        for (at, text) in writes.iter() {
            so_far.push_str(text);
            if shown(&so_far) {
                return Ok(*at);
            }
        }
        anyhow::bail!("never shown: {so_far:?}")
    }
}

impl tokio::io::AsyncWrite for TimedScreen {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Ok(mut writes) = self.0.lock() {
            writes.push((Instant::now(), String::from_utf8_lossy(buf).into_owned()));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
