//! Carrying out an [`Answer`] through an adapter, the same way for every
//! adapter: `sent(n)` references resolved to the ids the adapter returned,
//! edits and deletes only on the plugin's own messages, every press
//! answered, the chat's question settled once the answer was delivered.

use anyhow::Context as _;

use super::conversation;
use super::event::{Answer, ChatAction, Keyboard, OutgoingFile, OutgoingMessage, PromptChange};
use crate::infra::store::{Store, unix_now};
use crate::runtime::{Format, MessageRef};

/// What an adapter can do in one chat. Errors from `send` make the whole
/// event be handled again (nothing is lost); the others are logged.
pub trait ChatOutput {
    /// Sends the message (split as the adapter must); returns the id of the
    /// message carrying the keyboard (the last part), `None` when the text
    /// was empty and nothing was sent.
    fn send(
        &self,
        message: &OutgoingMessage,
        reply_to: Option<i64>,
    ) -> impl Future<Output = anyhow::Result<Option<i64>>> + Send;
    fn edit(
        &self,
        message_id: i64,
        text: Option<&str>,
        format: Format,
        keyboard: &Keyboard,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Uploads the file with its caption; returns the message's id, `None`
    /// when the chat refused it (the refusal is told or logged).
    fn send_file(
        &self,
        file: &OutgoingFile,
        reply_to: Option<i64>,
    ) -> impl Future<Output = anyhow::Result<Option<i64>>> + Send;
    fn delete(&self, message_id: i64) -> impl Future<Output = anyhow::Result<()>> + Send;
    fn react(
        &self,
        message_id: i64,
        emoji: &str,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
    fn typing(&self) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Answers the press this event was; `text` may be empty.
    fn notice(&self, text: &str, alert: bool) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Carries out `answer` in `chat_id`.
pub async fn perform(
    answer: &Answer,
    chat_id: i64,
    output: &impl ChatOutput,
    store: Option<&Store>,
) -> anyhow::Result<()> {
    let plugin = answer.plugin.as_deref();
    let mut sent: Vec<Option<i64>> = Vec::new();
    let mut noticed = false;
    for action in &answer.actions {
        let step = async {
            match action {
                ChatAction::Send(message) => {
                    let reply_to =
                        reply_target(&message.reply_to, &sent, chat_id, plugin, store).await;
                    let id = output.send(message, reply_to).await.with_context(|| {
                        format!(
                            "sending the reply (correlation id {}) to chat {chat_id}",
                            answer.correlation_id
                        )
                    })?;
                    note_sent(store, plugin, chat_id, id, message.name.as_deref()).await;
                    Ok::<_, anyhow::Error>(Some(id))
                }
                ChatAction::SendFile(file) => {
                    let reply_to =
                        reply_target(&file.reply_to, &sent, chat_id, plugin, store).await;
                    let id = output.send_file(file, reply_to).await.with_context(|| {
                        format!(
                            "sending the file {:?} (correlation id {}) to chat {chat_id}",
                            file.name, answer.correlation_id
                        )
                    })?;
                    note_sent(store, plugin, chat_id, id, None).await;
                    Ok(Some(id))
                }
                ChatAction::Edit {
                    message,
                    text,
                    format,
                    keyboard,
                } => {
                    if let Some(id) = own_message(answer, message, &sent, chat_id, store).await {
                        log_failure(
                            "edit",
                            output.edit(id, text.as_deref(), *format, keyboard).await,
                        );
                    }
                    Ok(None)
                }
                ChatAction::Delete(message) => {
                    if let Some(id) = own_message(answer, message, &sent, chat_id, store).await {
                        log_failure("delete", output.delete(id).await);
                    }
                    Ok(None)
                }
                ChatAction::React { message, emoji } => {
                    // Reactions go on any message of the chat (usually the user's).
                    if let Some(id) = resolve(message, &sent, chat_id, plugin, store).await {
                        log_failure("react", output.react(id, emoji).await);
                    }
                    Ok(None)
                }
                ChatAction::Typing => {
                    log_failure("typing", output.typing().await);
                    Ok(None)
                }
                ChatAction::Notice { text, alert } => {
                    log_failure("answer the press", output.notice(text, *alert).await);
                    Ok(None)
                }
            }
        };
        match step.await {
            // `None` (nothing sent) keeps the numbering of later references.
            Ok(Some(id)) => sent.push(id),
            Ok(None) => {}
            Err(error) => {
                if answer.is_press && !noticed {
                    log_failure("answer the press", output.notice("", false).await);
                }
                return Err(error);
            }
        }
        noticed |= matches!(action, ChatAction::Notice { .. });
    }
    if answer.is_press && !noticed {
        // The user's client shows a spinner until the press is answered.
        log_failure("answer the press", output.notice("", false).await);
    }
    settle_prompt(&answer.prompt, chat_id, store).await;
    Ok(())
}

/// Remembers that `plugin` sent message `id`, so it may change it later.
async fn note_sent(
    store: Option<&Store>,
    plugin: Option<&str>,
    chat_id: i64,
    id: Option<i64>,
    name: Option<&str>,
) {
    if let (Some(store), Some(plugin), Some(id)) = (store, plugin, id)
        && let Err(error) = conversation::note_sent(store, chat_id, id, plugin, name).await
    {
        tracing::warn!(%error, message_id = id, "could not note which plugin sent a message; it cannot change it later");
    }
}

/// The message a new message replies to, when it names one.
async fn reply_target(
    target: &Option<MessageRef>,
    sent: &[Option<i64>],
    chat_id: i64,
    plugin: Option<&str>,
    store: Option<&Store>,
) -> Option<i64> {
    match target {
        Some(target) => resolve(target, sent, chat_id, plugin, store).await,
        None => None,
    }
}

/// The message a reference names: the n-th sent in this answer, an id, or
/// the latest the plugin sent under a name.
async fn resolve(
    target: &MessageRef,
    sent: &[Option<i64>],
    chat_id: i64,
    plugin: Option<&str>,
    store: Option<&Store>,
) -> Option<i64> {
    match target {
        MessageRef::Sent(n) => sent.get(*n as usize).copied().flatten(),
        MessageRef::Id(id) => Some(*id),
        MessageRef::Named(name) => {
            let found = match (store, plugin) {
                (Some(store), Some(plugin)) => store
                    .message_named(chat_id, plugin, name)
                    .await
                    .unwrap_or_else(|error| {
                        tracing::warn!(%error, "could not look up a named message");
                        None
                    }),
                _ => None,
            };
            if found.is_none() {
                tracing::warn!(plugin, name = %name, "no message of this plugin has this name here; the action is skipped");
            }
            found
        }
    }
}

/// The id of a message the answering plugin may change: one it sent in
/// this answer, the message its pressed button is on, or one the store
/// says it sent.
async fn own_message(
    answer: &Answer,
    target: &MessageRef,
    sent: &[Option<i64>],
    chat_id: i64,
    store: Option<&Store>,
) -> Option<i64> {
    let plugin = answer.plugin.as_deref()?;
    let id = resolve(target, sent, chat_id, Some(plugin), store).await?;
    // Its own by construction: sent in this answer, or found under its name.
    let own = matches!(target, MessageRef::Sent(_) | MessageRef::Named(_));
    if own || answer.pressed_message == Some(id) {
        return Some(id);
    }
    let owned = match store {
        Some(store) => conversation::sent_by(store, chat_id, id, plugin)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "could not check who sent a message");
                false
            }),
        None => false,
    };
    if !owned {
        tracing::warn!(
            plugin,
            message_id = id,
            "a plugin may change only its own messages; the action is skipped"
        );
    }
    owned.then_some(id)
}

fn log_failure(what: &str, result: anyhow::Result<()>) {
    if let Err(error) = result {
        tracing::warn!(error = %format!("{error:#}"), "could not {what}");
    }
}

/// Keeps or clears the chat's question, retrying briefly: a question lost
/// here would send its answer to the default plugin instead.
async fn settle_prompt(change: &PromptChange, chat_id: i64, store: Option<&Store>) {
    let Some(store) = store else {
        return;
    };
    let mut wait = std::time::Duration::from_millis(100);
    for attempt in 1..=4 {
        let result = match change {
            PromptChange::Keep => return,
            PromptChange::Clear => store.prompt_clear(chat_id).await.map(drop),
            PromptChange::Set(prompt) => store.prompt_set(chat_id, prompt, unix_now()).await,
            PromptChange::Offer(prompt) => {
                store
                    .prompt_offer(chat_id, prompt, unix_now())
                    .await
                    .map(|kept| {
                        if !kept {
                            tracing::warn!(
                                plugin = %prompt.plugin,
                                "a question asked from a job or webhook was not kept: another plugin's question is waiting in the chat"
                            );
                        }
                    })
            }
        };
        match result {
            Ok(()) => return,
            Err(error) if attempt < 4 => {
                tracing::warn!(%error, "could not keep the chat's question; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(error) => tracing::error!(%error, "could not keep the chat's question"),
        }
    }
}
