//! A local Telegram Bot API emulator: a real HTTP server on 127.0.0.1
//! speaking the Bot API's JSON (getMe, getUpdates with long polling,
//! sendMessage with inline keyboards and replies, editMessageText,
//! editMessageReplyMarkup, deleteMessage, setMessageReaction,
//! sendChatAction, answerCallbackQuery, setMyCommands,
//! setWebhook/deleteWebhook/getWebhookInfo, sendMessageDraft (or refusing
//! it like an older server), getFile with its download route, sendPhoto and
//! sendDocument as multipart uploads), delivering callback queries,
//! recording what the bot did and able to answer 429 or reject markup like
//! the real server does.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;

pub const BOT_USERNAME: &str = "wasmbot_test_bot";

#[derive(Debug, Clone)]
pub struct Sent {
    pub chat_id: i64,
    pub text: String,
    pub parse_mode: Option<String>,
    pub at: Instant,
    pub message_id: i64,
    /// `reply_markup` as sent (an inline keyboard), if any.
    pub reply_markup: Option<Value>,
    /// `reply_parameters.message_id`, if any.
    pub reply_to: Option<i64>,
}

impl Sent {
    /// The inline keyboard's buttons as (label, callback_data), row by row.
    pub fn buttons(&self) -> Vec<(String, String)> {
        buttons_of(self.reply_markup.as_ref())
    }
}

/// A message as the emulator holds it now (after edits).
#[derive(Debug, Clone)]
pub struct Held {
    pub chat_id: i64,
    pub text: String,
    pub reply_markup: Option<Value>,
}

impl Held {
    pub fn buttons(&self) -> Vec<(String, String)> {
        buttons_of(self.reply_markup.as_ref())
    }
}

fn buttons_of(markup: Option<&Value>) -> Vec<(String, String)> {
    markup
        .and_then(|m| m["inline_keyboard"].as_array())
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .map(|b| {
            (
                b["text"].as_str().unwrap_or_default().to_string(),
                b["callback_data"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[derive(Default)]
pub struct BotApi {
    token: String,
    updates: Mutex<VecDeque<Value>>,
    update_ids: AtomicU32,
    new_update: Notify,
    sent: Mutex<Vec<Sent>>,
    new_sent: Notify,
    /// Every method called, in order, lower-case.
    pub calls: Mutex<Vec<String>>,
    pub commands: Mutex<Option<Vec<(String, String)>>>,
    /// (url, secret_token) while a webhook is set.
    pub webhook: Mutex<Option<(String, String)>>,
    /// The next N sendMessage calls answer 429 with this retry_after.
    pub throttle_sends: AtomicU32,
    pub retry_after_secs: AtomicU32,
    pub throttled_at: Mutex<Option<Instant>>,
    /// Offsets the bot asked getUpdates for.
    pub offsets: Mutex<Vec<i64>>,
    /// Ids for the messages the bot sends.
    message_ids: AtomicU32,
    /// Every message the bot sent and did not delete, as it is now.
    pub messages: Mutex<std::collections::HashMap<i64, Held>>,
    /// Requests other than sendMessage that act in a chat, in order, refused
    /// or not: (method, body) for editmessagetext, editmessagereplymarkup,
    /// deletemessage, setmessagereaction, sendchataction, answercallbackquery.
    pub actions: Mutex<Vec<(String, Value)>>,
    /// When each of `actions` arrived.
    pub action_times: Mutex<Vec<(String, Instant)>>,
    new_action: Notify,
    /// When set, sendMessageDraft is answered 404 like a server before Bot API 9.5.
    pub refuse_drafts: std::sync::atomic::AtomicBool,
    /// The next N sendMessageDraft calls answer 429 (retry after 1 s).
    pub throttle_drafts: AtomicU32,
    /// Every draft the bot showed: (chat_id, draft_id, text, when).
    pub drafts: Mutex<Vec<(i64, i64, String, Instant)>>,
    /// Files the bot may download: file_id -> bytes.
    files: Mutex<std::collections::HashMap<String, Vec<u8>>>,
    /// Files the bot uploaded: (method, chat_id, file name, bytes, caption).
    pub uploads: Mutex<Vec<Upload>>,
}

/// A file the bot sent (sendPhoto, sendDocument).
#[derive(Debug, Clone)]
pub struct Upload {
    pub method: String,
    pub chat_id: i64,
    pub name: String,
    pub bytes: Vec<u8>,
    pub caption: Option<String>,
}

impl BotApi {
    /// Starts the emulator; returns it and its base URL (for TELEGRAM_API_URL).
    pub async fn start(token: &str) -> (Arc<Self>, String) {
        let api = Arc::new(Self {
            token: token.to_string(),
            update_ids: AtomicU32::new(1000),
            message_ids: AtomicU32::new(5000),
            ..Default::default()
        });
        let app = axum::Router::new()
            .route("/{bot}/{method}", axum::routing::post(handle))
            .route("/file/{bot}/{*path}", axum::routing::get(download))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (api, url)
    }

    /// An update as Telegram would deliver it: a text message from `user_id` in `chat`.
    pub fn update(&self, chat_id: i64, user_id: i64, text: &str) -> Value {
        let id = self.update_ids.fetch_add(1, Ordering::SeqCst);
        let chat = if chat_id < 0 {
            json!({"id": chat_id, "type": "supergroup", "title": "Test group"})
        } else {
            json!({"id": chat_id, "type": "private", "first_name": "Ada", "username": "ada"})
        };
        json!({"update_id": id, "message": {
            "message_id": id, "date": 1_764_000_000, "chat": chat,
            "from": {"id": user_id, "is_bot": false, "first_name": "Ada", "username": "ada", "language_code": "en"},
            "text": text,
            "entities": if text.starts_with('/') {
                json!([{"type": "bot_command", "offset": 0, "length": text.split_whitespace().next().unwrap_or("").chars().count()}])
            } else { json!([]) }
        }})
    }

    /// A press on an inline button of message `message_id` (which the bot
    /// sent to `chat_id`), as a callback query with `data`.
    pub fn press_update(&self, chat_id: i64, user_id: i64, message_id: i64, data: &str) -> Value {
        let id = self.update_ids.fetch_add(1, Ordering::SeqCst);
        let chat = if chat_id < 0 {
            json!({"id": chat_id, "type": "supergroup", "title": "Test group"})
        } else {
            json!({"id": chat_id, "type": "private", "first_name": "Ada", "username": "ada"})
        };
        let text = self
            .messages
            .lock()
            .unwrap()
            .get(&message_id)
            .map(|m| m.text.clone())
            .unwrap_or_default();
        json!({"update_id": id, "callback_query": {
            "id": format!("cq{id}"),
            "from": {"id": user_id, "is_bot": false, "first_name": "Ada", "username": "ada"},
            "message": {"message_id": message_id, "date": 1_764_000_000, "chat": chat,
                "from": {"id": 4242, "is_bot": true, "first_name": "Test", "username": BOT_USERNAME},
                "text": text},
            "chat_instance": "42",
            "data": data,
        }})
    }

    /// Queues a press (see [`Self::press_update`]); returns its callback query id.
    pub fn press(&self, chat_id: i64, user_id: i64, message_id: i64, data: &str) -> String {
        let update = self.press_update(chat_id, user_id, message_id, data);
        let id = update["callback_query"]["id"].as_str().unwrap().to_string();
        self.push_update(update);
        id
    }

    /// A text message replying to `reply_to` (one of the bot's messages).
    pub fn reply_update(&self, chat_id: i64, user_id: i64, text: &str, reply_to: i64) -> Value {
        let mut update = self.update(chat_id, user_id, text);
        let quoted = self
            .messages
            .lock()
            .unwrap()
            .get(&reply_to)
            .map(|m| m.text.clone())
            .unwrap_or_default();
        update["message"]["reply_to_message"] = json!({"message_id": reply_to, "date": 1_764_000_000,
            "chat": update["message"]["chat"].clone(),
            "from": {"id": 4242, "is_bot": true, "first_name": "Test", "username": BOT_USERNAME},
            "text": quoted});
        update
    }

    /// A message from `user_id` in `chat_id` carrying a photo (its largest
    /// size holds `bytes`, which getFile then serves) with `caption`.
    pub fn photo_update(&self, chat_id: i64, user_id: i64, caption: &str, bytes: &[u8]) -> Value {
        let mut update = self.update(chat_id, user_id, caption);
        let id = update["update_id"].as_i64().unwrap();
        let (small, large) = (format!("photo-{id}-s"), format!("photo-{id}-l"));
        self.files
            .lock()
            .unwrap()
            .insert(small.clone(), vec![1, 2, 3]);
        self.files
            .lock()
            .unwrap()
            .insert(large.clone(), bytes.to_vec());
        let message = &mut update["message"];
        message["photo"] = json!([
            {"file_id": small, "file_unique_id": format!("u{small}"), "width": 90, "height": 60, "file_size": 3},
            {"file_id": large, "file_unique_id": format!("u{large}"), "width": 1280, "height": 960, "file_size": bytes.len()}]);
        message["caption"] = json!(caption);
        message["caption_entities"] = message["entities"].take();
        message.as_object_mut().unwrap().remove("text");
        message.as_object_mut().unwrap().remove("entities");
        update
    }

    /// A message with a document of `size` bytes (Telegram's file_size);
    /// getFile serves `bytes` for it.
    pub fn document_update(
        &self,
        chat_id: i64,
        user_id: i64,
        caption: &str,
        (name, mime, size): (&str, &str, u64),
        bytes: &[u8],
    ) -> Value {
        let mut update = self.photo_update(chat_id, user_id, caption, bytes);
        let message = &mut update["message"];
        let file_id = message["photo"][1]["file_id"].clone();
        message.as_object_mut().unwrap().remove("photo");
        message["document"] = json!({"file_id": file_id, "file_unique_id": "udoc",
            "file_name": name, "mime_type": mime, "file_size": size});
        update
    }

    pub fn held(&self, message_id: i64) -> Option<Held> {
        self.messages.lock().unwrap().get(&message_id).cloned()
    }

    /// Waits until `count` requests of `method` (lower case) were made; returns their bodies.
    pub async fn wait_for_action(&self, method: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let notified = self.new_action.notified();
            let done: Vec<Value> = self
                .actions
                .lock()
                .unwrap()
                .iter()
                .filter(|(m, _)| m == method)
                .map(|(_, body)| body.clone())
                .collect();
            if done.len() >= count {
                return done;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {count} {method} requests arrived: {done:?}",
                done.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    fn record_action(&self, method: &str, body: &Value) {
        self.actions
            .lock()
            .unwrap()
            .push((method.to_string(), body.clone()));
        self.action_times
            .lock()
            .unwrap()
            .push((method.to_string(), Instant::now()));
        self.new_action.notify_waiters();
    }

    /// editMessageText / editMessageReplyMarkup: the message must be the
    /// bot's, in that chat, and actually change (as Telegram insists).
    fn edit(&self, method: &str, body: &Value) -> Response {
        let response = self.apply_edit(method, body);
        // Every attempt is recorded, refused or not, and only once the
        // message holds its outcome: a test that waited for the edit may
        // read the message at once.
        self.record_action(method, body);
        response
    }

    fn apply_edit(&self, method: &str, body: &Value) -> Response {
        let chat_id = body["chat_id"].as_i64().expect("chat_id");
        let message_id = body["message_id"].as_i64().expect("message_id");
        let mut messages = self.messages.lock().unwrap();
        let Some(held) = messages
            .get_mut(&message_id)
            .filter(|m| m.chat_id == chat_id)
        else {
            return error(
                StatusCode::BAD_REQUEST,
                400,
                "Bad Request: message to edit not found",
                None,
            );
        };
        let markup = body.get("reply_markup").cloned().filter(|m| !m.is_null());
        let text = match method {
            "editmessagetext" => body["text"].as_str().expect("text").to_string(),
            _ => held.text.clone(),
        };
        if text == held.text && markup == held.reply_markup {
            return error(
                StatusCode::BAD_REQUEST,
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
                None,
            );
        }
        held.text = text.clone();
        held.reply_markup = markup;
        drop(messages);
        ok(json!({"message_id": message_id, "date": 1_764_000_001,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": 4242, "is_bot": true, "first_name": "Test", "username": BOT_USERNAME},
            "text": text}))
    }

    /// Queues a text message for getUpdates; returns the update.
    pub fn push(&self, chat_id: i64, user_id: i64, text: &str) -> Value {
        let update = self.update(chat_id, user_id, text);
        self.push_update(update.clone());
        update
    }

    pub fn push_update(&self, update: Value) {
        self.updates.lock().unwrap().push_back(update);
        self.new_update.notify_waiters();
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    /// Waits until `count` messages were sent to `chat_id`; returns them.
    pub async fn wait_for_sent(&self, chat_id: i64, count: usize) -> Vec<Sent> {
        self.wait_for_sent_within(chat_id, count, Duration::from_secs(15))
            .await
    }

    /// [`Self::wait_for_sent`] with a deadline of its own (a restart, a lease to run out).
    pub async fn wait_for_sent_within(
        &self,
        chat_id: i64,
        count: usize,
        within: Duration,
    ) -> Vec<Sent> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.new_sent.notified();
            let sent: Vec<Sent> = self
                .sent()
                .into_iter()
                .filter(|s| s.chat_id == chat_id)
                .collect();
            if sent.len() >= count {
                return sent;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "chat {chat_id}: {} of {count} messages arrived: {sent:?}",
                sent.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    pub fn called(&self, method: &str) -> bool {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .any(|m| m == &method.to_lowercase())
    }

    async fn get_updates(&self, body: &Value) -> Value {
        let offset = body["offset"].as_i64().unwrap_or(0);
        self.offsets.lock().unwrap().push(offset);
        let limit = body["limit"].as_u64().unwrap_or(100) as usize;
        let wait = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0).min(5));
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.new_update.notified();
            let ready: Vec<Value> = {
                let mut updates = self.updates.lock().unwrap();
                // Like Telegram: an offset confirms every update before it.
                updates.retain(|u| u["update_id"].as_i64().unwrap() >= offset);
                updates.iter().take(limit).cloned().collect()
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if !ready.is_empty() || left.is_zero() {
                return json!(ready);
            }
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    fn send_message(&self, body: &Value) -> Response {
        if self.throttle_sends.load(Ordering::SeqCst) > 0 {
            self.throttle_sends.fetch_sub(1, Ordering::SeqCst);
            *self.throttled_at.lock().unwrap() = Some(Instant::now());
            let secs = self.retry_after_secs.load(Ordering::SeqCst);
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                429,
                &format!("Too Many Requests: retry after {secs}"),
                Some(json!({"retry_after": secs})),
            );
        }
        let chat_id = body["chat_id"].as_i64().expect("chat_id is a number");
        let text = body["text"].as_str().expect("text").to_string();
        let parse_mode = body["parse_mode"].as_str().map(str::to_string);
        if text.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                400,
                "Bad Request: message text is empty",
                None,
            );
        }
        if text.chars().count() > 4096 {
            return error(
                StatusCode::BAD_REQUEST,
                400,
                "Bad Request: message is too long",
                None,
            );
        }
        if parse_mode.as_deref() == Some("MarkdownV2")
            && let Some(reserved) = unescaped_reserved(&text)
        {
            return error(
                StatusCode::BAD_REQUEST,
                400,
                &format!(
                    "Bad Request: can't parse entities: Character '{reserved}' is reserved and must be escaped with the preceding '\\'"
                ),
                None,
            );
        }
        let message_id = i64::from(self.message_ids.fetch_add(1, Ordering::SeqCst));
        let reply_markup = body.get("reply_markup").cloned().filter(|m| !m.is_null());
        self.messages.lock().unwrap().insert(
            message_id,
            Held {
                chat_id,
                text: text.clone(),
                reply_markup: reply_markup.clone(),
            },
        );
        self.sent.lock().unwrap().push(Sent {
            chat_id,
            text: text.clone(),
            parse_mode,
            at: Instant::now(),
            message_id,
            reply_markup,
            reply_to: body["reply_parameters"]["message_id"].as_i64(),
        });
        self.new_sent.notify_waiters();
        let chat = if chat_id < 0 {
            json!({"id": chat_id, "type": "supergroup", "title": "Test group"})
        } else {
            json!({"id": chat_id, "type": "private"})
        };
        ok(
            json!({"message_id": message_id, "date": 1_764_000_001, "chat": chat,
            "from": {"id": 4242, "is_bot": true, "first_name": "Test", "username": BOT_USERNAME},
            "text": text}),
        )
    }
}

impl BotApi {
    /// sendPhoto / sendDocument: the multipart upload is kept and answered
    /// with a message, like Telegram does.
    fn upload(&self, method: &str, body: &Value) -> Response {
        let field = if method == "sendphoto" {
            "photo"
        } else {
            "document"
        };
        let chat_id = body["chat_id"]
            .as_str()
            .and_then(|id| id.parse::<i64>().ok())
            .or_else(|| body["chat_id"].as_i64())
            .expect("chat_id");
        // The field names the part holding the file ("attach://<part>"), as
        // teloxide sends it, or is that part itself.
        let file = match body[field]
            .as_str()
            .and_then(|v| v.strip_prefix("attach://"))
        {
            Some(part) => &body[part],
            None => &body[field],
        };
        let bytes: Vec<u8> = file["bytes"]
            .as_array()
            .expect("the file is uploaded as a multipart part")
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        self.uploads.lock().unwrap().push(Upload {
            method: method.to_string(),
            chat_id,
            name: file["filename"].as_str().unwrap_or_default().to_string(),
            bytes,
            caption: body["caption"].as_str().map(str::to_string),
        });
        self.record_action(method, body);
        let message_id = i64::from(self.message_ids.fetch_add(1, Ordering::SeqCst));
        ok(json!({"message_id": message_id, "date": 1_764_000_001,
            "chat": {"id": chat_id, "type": if chat_id < 0 { "supergroup" } else { "private" }, "title": "Test group"},
            "from": {"id": 4242, "is_bot": true, "first_name": "Test", "username": BOT_USERNAME},
            "document": {"file_id": "sent", "file_unique_id": "usent"}}))
    }

    /// Waits until `count` files were uploaded; returns them.
    pub async fn wait_for_uploads(&self, count: usize) -> Vec<Upload> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let notified = self.new_action.notified();
            let uploads = self.uploads.lock().unwrap().clone();
            if uploads.len() >= count {
                return uploads;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} uploads arrived",
                uploads.len()
            );
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }
}

/// `GET /file/bot<token>/<path>`: the bytes of a file getFile described.
async fn download(
    State(api): State<Arc<BotApi>>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    if bot != format!("bot{}", api.token) {
        return error(StatusCode::UNAUTHORIZED, 401, "Unauthorized", None);
    }
    api.calls.lock().unwrap().push("download".into());
    let file_id = path
        .trim_start_matches("documents/")
        .trim_end_matches(".bin")
        .to_string();
    match api.files.lock().unwrap().get(&file_id) {
        Some(bytes) => (StatusCode::OK, bytes.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// MarkdownV2 reserves these; unescaped, Telegram refuses the message.
fn unescaped_reserved(text: &str) -> Option<char> {
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if ".!()-=+#|{}>".contains(c) {
            return Some(c);
        }
    }
    None
}

fn error(status: StatusCode, code: u16, description: &str, parameters: Option<Value>) -> Response {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    json_response(status, body)
}

fn ok(result: Value) -> Response {
    json_response(StatusCode::OK, json!({"ok": true, "result": result}))
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(api): State<Arc<BotApi>>,
    Path((bot, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if bot != format!("bot{}", api.token) {
        return error(StatusCode::UNAUTHORIZED, 401, "Unauthorized", None);
    }
    let method = method.to_lowercase();
    api.calls.lock().unwrap().push(method.clone());
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body: Value = if content_type.starts_with("multipart/form-data") {
        multipart_fields(&content_type, &body)
    } else if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).expect("a JSON body")
    };
    match method.as_str() {
        "getme" => ok(
            json!({"id": 4242, "is_bot": true, "first_name": "Test", "username": BOT_USERNAME,
            "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
            "can_connect_to_business": false, "has_main_web_app": false}),
        ),
        "getupdates" => {
            if api.webhook.lock().unwrap().is_some() {
                return error(
                    StatusCode::CONFLICT,
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                    None,
                );
            }
            ok(api.get_updates(&body).await)
        }
        "sendmessage" => api.send_message(&body),
        "editmessagetext" | "editmessagereplymarkup" => api.edit(&method, &body),
        "deletemessage" => {
            let message_id = body["message_id"].as_i64().expect("message_id");
            if api.messages.lock().unwrap().remove(&message_id).is_none() {
                return error(
                    StatusCode::BAD_REQUEST,
                    400,
                    "Bad Request: message to delete not found",
                    None,
                );
            }
            api.record_action(&method, &body);
            ok(json!(true))
        }
        "sendmessagedraft" => {
            api.record_action(&method, &body);
            if api.refuse_drafts.load(Ordering::SeqCst) {
                return error(
                    StatusCode::NOT_FOUND,
                    404,
                    "Not Found: method not found",
                    None,
                );
            }
            if api
                .throttle_drafts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return error(
                    StatusCode::TOO_MANY_REQUESTS,
                    429,
                    "Too Many Requests: retry after 1",
                    Some(json!({"retry_after": 1})),
                );
            }
            let chat_id = body["chat_id"].as_i64().expect("chat_id");
            let draft_id = body["draft_id"].as_i64().expect("draft_id");
            let text = body["text"].as_str().expect("text").to_string();
            assert!(draft_id != 0, "draft_id must be non-zero");
            if chat_id < 0 || text.is_empty() || text.chars().count() > 4096 {
                return error(
                    StatusCode::BAD_REQUEST,
                    400,
                    "Bad Request: TEXTDRAFT_PEER_INVALID",
                    None,
                );
            }
            api.drafts
                .lock()
                .unwrap()
                .push((chat_id, draft_id, text, Instant::now()));
            ok(json!(true))
        }
        "getfile" => {
            let file_id = body["file_id"].as_str().expect("file_id").to_string();
            api.record_action(&method, &body);
            match api.files.lock().unwrap().get(&file_id) {
                Some(bytes) => ok(
                    json!({"file_id": file_id, "file_unique_id": format!("u{file_id}"),
                    "file_size": bytes.len(), "file_path": format!("documents/{file_id}.bin")}),
                ),
                None => error(
                    StatusCode::BAD_REQUEST,
                    400,
                    "Bad Request: invalid file_id",
                    None,
                ),
            }
        }
        "sendphoto" | "senddocument" => api.upload(&method, &body),
        "setmessagereaction" | "sendchataction" | "answercallbackquery" => {
            api.record_action(&method, &body);
            ok(json!(true))
        }
        "setmycommands" => {
            let commands = body["commands"]
                .as_array()
                .expect("commands")
                .iter()
                .map(|c| {
                    (
                        c["command"].as_str().unwrap().to_string(),
                        c["description"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            *api.commands.lock().unwrap() = Some(commands);
            ok(json!(true))
        }
        "setwebhook" => {
            let url = body["url"].as_str().unwrap_or_default().to_string();
            let secret = body["secret_token"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            *api.webhook.lock().unwrap() = Some((url, secret));
            ok(json!(true))
        }
        "deletewebhook" => {
            *api.webhook.lock().unwrap() = None;
            ok(json!(true))
        }
        "getwebhookinfo" => {
            let url = api
                .webhook
                .lock()
                .unwrap()
                .as_ref()
                .map(|(u, _)| u.clone())
                .unwrap_or_default();
            ok(json!({"url": url, "has_custom_certificate": false, "pending_update_count": 0}))
        }
        _ => error(
            StatusCode::NOT_FOUND,
            404,
            "Not Found: method not found",
            None,
        ),
    }
}

/// The fields of a multipart/form-data body (setWebhook, sendPhoto,
/// sendDocument): text fields as strings, a file part as
/// `{"filename": ..., "bytes": [...]}`.
fn multipart_fields(content_type: &str, body: &[u8]) -> Value {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("multipart boundary")
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut fields = serde_json::Map::new();
    for part in split_bytes(body, delimiter.as_bytes()) {
        let Some(split) = find_bytes(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..split]);
        let mut value = &part[split + 4..];
        if value.ends_with(b"\r\n") {
            value = &value[..value.len() - 2];
        }
        let attribute = |name: &str| {
            head.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|n| n.split('"').next())
                .map(str::to_string)
        };
        let Some(name) = attribute("name") else {
            continue;
        };
        let field = match attribute("filename") {
            Some(filename) => json!({"filename": filename, "bytes": value}),
            None => json!(String::from_utf8_lossy(value)),
        };
        fields.insert(name, field);
    }
    Value::Object(fields)
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut bytes: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(at) = find_bytes(bytes, delimiter) {
        parts.push(&bytes[..at]);
        bytes = &bytes[at + delimiter.len()..];
    }
    parts.push(bytes);
    parts
}
