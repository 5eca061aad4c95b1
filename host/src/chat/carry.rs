//! A plugin's actions as the adapter carries them out: buttons get tokens
//! (kept under the plugin that made them), a question becomes the chat's
//! pending one. Used for a call's own actions and for those of the tools
//! an agent turn ran.

use super::conversation;
use super::event::{Answer, ChatAction, OutgoingFile, OutgoingMessage, PromptChange};
use crate::infra::store::Store;
use crate::runtime::Action;

/// The plugin's actions as the adapter carries them out: buttons get
/// tokens, a question becomes the chat's pending one.
pub async fn carry_out(
    store: Option<&Store>,
    answer: &mut Answer,
    plugin: &str,
    (chat_id, user_id): (i64, i64),
    actions: Vec<Action>,
) {
    {
        for action in actions {
            let chat_action = match action {
                Action::Send(message) => {
                    ChatAction::Send(outgoing(store, plugin, chat_id, message).await)
                }
                Action::Ask(question) => {
                    match store {
                        Some(_) => {
                            answer.prompt =
                                PromptChange::Set(conversation::pending(plugin, user_id, &question))
                        }
                        None => tracing::warn!(
                            plugin,
                            "no store: the plugin's question cannot be kept, its answer will not reach it"
                        ),
                    }
                    ChatAction::Send(outgoing(store, plugin, chat_id, question.message).await)
                }
                Action::Edit(edit) => ChatAction::Edit {
                    message: edit.message,
                    text: edit.text,
                    format: edit.format,
                    keyboard: keyboard(store, plugin, chat_id, edit.keyboard).await,
                },
                Action::SendFile(file) => ChatAction::SendFile(OutgoingFile {
                    kind: file.kind,
                    name: file.name,
                    data: file.data.into(),
                    caption: file.caption,
                    format: file.format,
                    reply_to: file.reply_to,
                }),
                Action::Delete(message) => ChatAction::Delete(message),
                Action::React(reaction) => ChatAction::React {
                    message: reaction.message,
                    emoji: reaction.emoji,
                },
                Action::Typing => ChatAction::Typing,
                Action::Answer(notice) if answer.is_press => ChatAction::Notice {
                    text: notice.text,
                    alert: notice.alert,
                },
                Action::Answer(_) => {
                    tracing::debug!(plugin, "an `answer` outside a button press is ignored");
                    continue;
                }
            };
            answer.actions.push(chat_action);
        }
    }
}

/// A plugin's message as the adapter sends it: buttons with tokens.
async fn outgoing(
    store: Option<&Store>,
    plugin: &str,
    chat_id: i64,
    message: crate::runtime::Outgoing,
) -> OutgoingMessage {
    OutgoingMessage {
        keyboard: keyboard(store, plugin, chat_id, message.keyboard).await,
        text: message.text,
        format: message.format,
        reply_to: message.reply_to,
        name: message.name,
    }
}

/// Tokens for the plugin's buttons; without a store (or when it fails) the
/// message goes out without them.
async fn keyboard(
    store: Option<&Store>,
    plugin: &str,
    chat_id: i64,
    rows: Vec<Vec<crate::runtime::Button>>,
) -> super::event::Keyboard {
    if rows.is_empty() {
        return Vec::new();
    }
    let Some(store) = store else {
        tracing::warn!(
            plugin,
            "no store: buttons cannot be kept, the message is sent without them"
        );
        return Vec::new();
    };
    match Box::pin(conversation::keep_buttons(store, plugin, chat_id, rows)).await {
        Ok(keyboard) => keyboard,
        Err(error) => {
            tracing::error!(plugin, %error, "could not keep the buttons; the message is sent without them");
            Vec::new()
        }
    }
}
