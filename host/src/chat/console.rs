//! `wasmbot chat`: the console adapter. Each stdin line is a message from one
//! local user; every action is printed: messages as text, buttons as
//! numbered `[N label]` that `/press N` presses, edits as a marked re-print,
//! reactions, typing and notices as short lines, a streamed answer as it
//! grows. `/attach PATH [caption]` sends a local file; files the bot sends
//! are saved under `--received-dir`. Needs no external service.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::console_files::{self as attach, ConsoleLink};
use super::dispatcher::Dispatcher;
use super::event::{
    Answer, Incoming, IncomingMessage, IncomingPress, Keyboard, OutgoingFile, OutgoingMessage,
};
use super::jobs::JobOutput;
use super::perform::{ChatOutput, perform};
use crate::infra::schedule::now_ms;
use crate::runtime::{ChatType, Format};

/// After stdin closes, the console stays for the jobs of its chat due
/// within this long (a reminder set a few seconds earlier), then exits.
pub const LINGER: Duration = Duration::from_secs(10);

/// The longest the console waits for those jobs once they are due (a
/// plugin's timeout and a retry fit in it).
const LINGER_GRACE: Duration = Duration::from_secs(30);

/// The channel whose jobs the console fires: only those added in a console.
pub const CHANNEL: &str = "console";

/// A job's answer on its way to the screen, and word back once shown.
pub struct ProactiveAnswer {
    answer: Answer,
    chat_id: i64,
    shown: oneshot::Sender<anyhow::Result<()>>,
}

/// Where the job runner delivers in the console: onto the screen, between
/// the user's lines. The admin chat is the console's own chat.
pub struct ConsoleJobs {
    answers: mpsc::Sender<ProactiveAnswer>,
    chat_id: i64,
}

impl ConsoleJobs {
    /// The runner's side, and the receiver [`run`] takes.
    pub fn new(chat_id: i64) -> (Self, mpsc::Receiver<ProactiveAnswer>) {
        let (answers, receiver) = mpsc::channel(16);
        (Self { answers, chat_id }, receiver)
    }
}

impl JobOutput for ConsoleJobs {
    fn admin_chat(&self) -> Option<i64> {
        Some(self.chat_id)
    }

    fn deliver(
        &self,
        chat_id: i64,
        answer: Answer,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>> {
        Box::pin(async move {
            let (shown, seen) = oneshot::channel();
            self.answers
                .send(ProactiveAnswer {
                    answer,
                    chat_id,
                    shown,
                })
                .await
                .map_err(|_| anyhow::anyhow!("the console has closed"))?;
            seen.await
                .map_err(|_| anyhow::anyhow!("the console closed before showing it"))?
        })
    }
}

/// The console's own command: presses button N of an earlier answer.
pub const PRESS_COMMAND: &str = "/press";

/// Who the console user is, as the plugins see them.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub user_id: i64,
    pub chat_id: i64,
    pub username: Option<String>,
    /// Where files the bot sends are saved (`--received-dir`).
    pub received_dir: PathBuf,
}

/// Reads lines until end of input, printing the answers and, between them,
/// what jobs deliver (`proactive`); then stays while jobs of this chat are
/// due within [`LINGER`]. `prompt` is shown before each line (for a terminal).
pub async fn run<R, W>(
    dispatcher: &Dispatcher,
    user: &ConsoleUser,
    input: R,
    mut output: W,
    prompt: bool,
    mut proactive: Option<mpsc::Receiver<ProactiveAnswer>>,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let screen = Screen::new(user.received_dir.clone());
    let mut lines = input.lines();
    loop {
        if prompt {
            output.write_all(b"> ").await?;
            output.flush().await?;
        }
        // `next_line` is cancel-safe: a delivery in between loses no input.
        let line = tokio::select! {
            line = lines.next_line() => line?,
            Some(delivery) = next_delivery(&mut proactive) => {
                if prompt {
                    output.write_all(b"\r").await?;
                }
                show_delivery(dispatcher, &screen, delivery, &mut output).await?;
                continue;
            }
        };
        let Some(line) = line else {
            break;
        };
        if line.trim().is_empty() {
            continue;
        }
        let incoming: Option<Incoming> = match press_number(&line) {
            Some(Ok(number)) => match screen.button(number) {
                Some((token, message_id)) => Some(
                    IncomingPress {
                        chat_id: user.chat_id,
                        user_id: user.user_id,
                        username: user.username.clone(),
                        chat_type: ChatType::Private,
                        display_name: display_name(user),
                        message_id,
                        token,
                    }
                    .into(),
                ),
                None => {
                    screen.line(format!("(there is no button {number} on screen)"));
                    None
                }
            },
            Some(Err(())) => {
                screen.line(format!(
                    "(usage: {PRESS_COMMAND} N presses the button shown as [N ...])"
                ));
                None
            }
            None => {
                let (text, attachments) = match attach::parse(&line) {
                    None => (line.clone(), Vec::new()),
                    Some(Ok((attachment, caption))) => (caption, vec![attachment]),
                    Some(Err(problem)) => {
                        screen.line(problem);
                        print_lines(&screen, &mut output).await?;
                        continue;
                    }
                };
                Some(
                    IncomingMessage {
                        message_id: screen.next_id(),
                        display_name: display_name(user),
                        attachments,
                        ..IncomingMessage::private(
                            user.chat_id,
                            user.user_id,
                            user.username.as_deref(),
                            &text,
                        )
                    }
                    .into(),
                )
            }
        };
        let answer = match incoming {
            None => None,
            Some(incoming) => {
                // An answer streamed while the plugin (or the agent, after a
                // press on Allow) runs is printed as it grows.
                let (link, mut pieces) = ConsoleLink::open();
                let handling = dispatcher.handle_in(incoming, Some(link));
                tokio::pin!(handling);
                let answer = loop {
                    tokio::select! {
                        // Pieces first: the text is printed before the answer ends.
                        biased;
                        Some(piece) = pieces.recv() => {
                            output.write_all(piece.as_bytes()).await?;
                            output.flush().await?;
                        }
                        answer = &mut handling => break answer,
                    }
                };
                // Whatever arrived as the call ended.
                while let Ok(piece) = pieces.try_recv() {
                    output.write_all(piece.as_bytes()).await?;
                }
                answer
            }
        };
        if let Some(answer) = answer {
            let store = dispatcher.services().store.as_ref();
            if let Err(error) = perform(&answer, user.chat_id, &screen, store).await {
                screen.line(format!("(could not show the answer: {error:#})"));
            }
        }
        print_lines(&screen, &mut output).await?;
    }
    if prompt {
        output.write_all(b"\n").await?;
        output.flush().await?;
    }
    if proactive.is_some() {
        linger(dispatcher, user, &screen, &mut proactive, &mut output).await?;
    }
    Ok(())
}

/// Stays while this chat has jobs due within [`LINGER`] of stdin closing,
/// showing what they deliver; at most [`LINGER`] + [`LINGER_GRACE`].
async fn linger<W: AsyncWrite + Unpin>(
    dispatcher: &Dispatcher,
    user: &ConsoleUser,
    screen: &Screen,
    proactive: &mut Option<mpsc::Receiver<ProactiveAnswer>>,
    output: &mut W,
) -> std::io::Result<()> {
    let Some(store) = dispatcher.services().store.clone() else {
        return Ok(());
    };
    let horizon = now_ms() + LINGER.as_millis() as i64;
    let deadline = tokio::time::Instant::now() + LINGER + LINGER_GRACE;
    loop {
        let waiting = store
            .jobs_due_before(dispatcher.channel(), user.chat_id, horizon)
            .await
            .unwrap_or(0);
        if waiting == 0 || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::select! {
            Some(delivery) = next_delivery(proactive) => {
                show_delivery(dispatcher, screen, delivery, output).await?;
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(()),
        }
    }
}

async fn next_delivery(
    proactive: &mut Option<mpsc::Receiver<ProactiveAnswer>>,
) -> Option<ProactiveAnswer> {
    match proactive {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// Prints a job's answer and tells the runner it was shown.
async fn show_delivery<W: AsyncWrite + Unpin>(
    dispatcher: &Dispatcher,
    screen: &Screen,
    delivery: ProactiveAnswer,
    output: &mut W,
) -> std::io::Result<()> {
    let store = dispatcher.services().store.as_ref();
    let shown = perform(&delivery.answer, delivery.chat_id, screen, store).await;
    let printed = print_lines(screen, output).await;
    let _ = delivery.shown.send(match (&printed, shown) {
        (Err(error), _) => Err(anyhow::anyhow!("printing: {error}")),
        (Ok(()), shown) => shown,
    });
    printed
}

async fn print_lines<W: AsyncWrite + Unpin>(
    screen: &Screen,
    output: &mut W,
) -> std::io::Result<()> {
    for text in screen.take_lines() {
        output.write_all(text.as_bytes()).await?;
        output.write_all(b"\n").await?;
    }
    output.flush().await
}

fn display_name(user: &ConsoleUser) -> String {
    user.username.clone().unwrap_or_else(|| "you".to_string())
}

/// `Some(Ok(n))` for `/press n`, `Some(Err)` for a malformed `/press`.
fn press_number(line: &str) -> Option<Result<usize, ()>> {
    let rest = line.trim().strip_prefix(PRESS_COMMAND)?;
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(rest.trim().parse().map_err(drop))
}

/// What the console has printed: message ids it made up and the buttons
/// on screen by number.
struct Screen {
    state: Mutex<ScreenState>,
    /// Where files sent to the console are saved.
    received_dir: PathBuf,
}

struct ScreenState {
    lines: Vec<String>,
    next_id: i64,
    /// Button number -> (token, message it is on).
    buttons: HashMap<usize, (String, i64)>,
    /// Message id -> its text, for edits that change only the buttons.
    texts: HashMap<i64, String>,
    next_button: usize,
}

impl Screen {
    fn new(received_dir: PathBuf) -> Self {
        // Ids unique across runs: the host remembers which plugin sent which.
        let start = chrono::Utc::now().timestamp_millis();
        Self {
            received_dir,
            state: Mutex::new(ScreenState {
                lines: Vec::new(),
                next_id: start,
                buttons: HashMap::new(),
                texts: HashMap::new(),
                next_button: 1,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ScreenState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_id(&self) -> i64 {
        let mut state = self.lock();
        state.next_id += 1;
        state.next_id
    }

    fn line(&self, text: String) {
        self.lock().lines.push(text);
    }

    fn take_lines(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().lines)
    }

    fn button(&self, number: usize) -> Option<(String, i64)> {
        self.lock().buttons.get(&number).cloned()
    }

    /// Prints `text` (unless empty) and the keyboard under it.
    fn show(&self, message_id: i64, prefix: &str, text: &str, keyboard: &Keyboard) {
        let mut state = self.lock();
        if !text.is_empty() {
            state.lines.push(format!("{prefix}{text}"));
        }
        for row in keyboard {
            let mut shown = Vec::new();
            for button in row {
                let number = state.next_button;
                state.next_button += 1;
                state
                    .buttons
                    .insert(number, (button.token.clone(), message_id));
                shown.push(format!("[{number} {}]", button.label));
            }
            state.lines.push(shown.join(" "));
        }
    }
}

impl ChatOutput for Screen {
    async fn send(
        &self,
        message: &OutgoingMessage,
        _reply_to: Option<i64>,
    ) -> anyhow::Result<Option<i64>> {
        if message.text.trim().is_empty() {
            return Ok(None);
        }
        let id = self.next_id();
        self.lock().texts.insert(id, message.text.clone());
        self.show(id, "", &message.text, &message.keyboard);
        Ok(Some(id))
    }

    async fn send_file(
        &self,
        file: &OutgoingFile,
        _reply_to: Option<i64>,
    ) -> anyhow::Result<Option<i64>> {
        let line = match attach::save(&self.received_dir, file).await {
            Ok(line) => line,
            Err(error) => format!("(could not save the file {}: {error:#})", file.name),
        };
        self.line(line);
        if !file.caption.is_empty() {
            self.line(file.caption.clone());
        }
        Ok(Some(self.next_id()))
    }

    async fn edit(
        &self,
        message_id: i64,
        text: Option<&str>,
        _format: Format,
        keyboard: &Keyboard,
    ) -> anyhow::Result<()> {
        let text = {
            let mut state = self.lock();
            // The buttons the old version carried are gone.
            state.buttons.retain(|_, (_, on)| *on != message_id);
            match text {
                Some(text) => {
                    state.texts.insert(message_id, text.to_string());
                    text.to_string()
                }
                None => state.texts.get(&message_id).cloned().unwrap_or_default(),
            }
        };
        self.show(message_id, "(edited) ", &text, keyboard);
        Ok(())
    }

    async fn delete(&self, message_id: i64) -> anyhow::Result<()> {
        let mut state = self.lock();
        state.buttons.retain(|_, (_, on)| *on != message_id);
        let text = state.texts.remove(&message_id).unwrap_or_default();
        let preview: String = text.chars().take(40).collect();
        state.lines.push(format!("(deleted: {preview})"));
        Ok(())
    }

    async fn react(&self, _message_id: i64, emoji: &str) -> anyhow::Result<()> {
        self.line(format!("(reacted {emoji})"));
        Ok(())
    }

    async fn typing(&self) -> anyhow::Result<()> {
        self.line("(typing…)".into());
        Ok(())
    }

    async fn notice(&self, text: &str, alert: bool) -> anyhow::Result<()> {
        if !text.is_empty() {
            let kind = if alert { "alert" } else { "notice" };
            self.line(format!("({kind}) {text}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn press_lines() {
        assert_eq!(press_number("/press 3"), Some(Ok(3)));
        assert_eq!(press_number("  /press   12 "), Some(Ok(12)));
        assert_eq!(press_number("/press"), Some(Err(())));
        assert_eq!(press_number("/press x"), Some(Err(())));
        assert_eq!(press_number("/pressure"), None);
        assert_eq!(press_number("/note x"), None);
    }
}
