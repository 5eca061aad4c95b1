//! A fake Anthropic Messages API on 127.0.0.1: real request/response JSON,
//! recording every request and answering from a script (a reply, an error
//! status with an Anthropic error body, or a slow answer).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this text.
    Text(&'static str),
    /// This status with an Anthropic error body, and a retry-after header if given.
    Error(u16, &'static str, Option<u32>),
    /// 200, after this long.
    Slow(Duration),
    /// 200 as server-sent events (for `"stream": true`): one text delta per
    /// word; the second waits until `gate` is notified (so a test knows the
    /// client had the first before the rest was sent); then `end`.
    Stream {
        words: Vec<&'static str>,
        gate: Option<Arc<tokio::sync::Notify>>,
        end: StreamEnd,
    },
    /// 200 as server-sent events: `words` words ("word1 word2 …", see [`paced_text`]), one
    /// every `every`; when each was sent is kept in `FakeAnthropic::sent_at`.
    Paced { words: usize, every: Duration },
    /// 200 as server-sent events: `text`, then one `tool_use` block per
    /// call (id, tool name, input), each input sent as two
    /// `input_json_delta` pieces; `stop_reason` "tool_use".
    ToolUse {
        text: &'static str,
        calls: Vec<(&'static str, &'static str, Value)>,
    },
}

/// The whole text of `Answer::Paced { words, .. }`.
pub fn paced_text(words: usize) -> String {
    (1..=words)
        .map(|n| format!("word{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a streamed answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// `message_delta` and `message_stop`, as a complete answer does.
    Stop,
    /// An `error` event (overloaded) mid-stream.
    Error,
    /// The body just ends.
    Cut,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub headers: HashMap<String, String>,
    pub body: Value,
}

#[derive(Default)]
pub struct FakeAnthropic {
    script: Mutex<VecDeque<Answer>>,
    pub requests: Mutex<Vec<Recorded>>,
    /// When each text delta of a streamed answer was sent, in order.
    pub sent_at: Mutex<Vec<std::time::Instant>>,
}

impl FakeAnthropic {
    /// Starts the server; returns it and its base URL (for ANTHROPIC_BASE_URL).
    pub async fn start() -> (Arc<Self>, String) {
        let fake = Arc::new(Self::default());
        let app = axum::Router::new()
            .route("/v1/messages", axum::routing::post(messages))
            .route("/v1/models", axum::routing::get(models))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, url)
    }

    /// The next requests get these answers, in order; then the default
    /// answer: "Claude says: <the last user message>".
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn messages(
    State(fake): State<Arc<FakeAnthropic>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).expect("a JSON request body");
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    fake.requests.lock().unwrap().push(Recorded {
        headers,
        body: body.clone(),
    });
    let answer = fake.script.lock().unwrap().pop_front();
    // The content is a string, or blocks (images first, then the text).
    let last_user = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .map(|m| match m["content"].as_array() {
            Some(blocks) => blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<String>(),
            None => m["content"].as_str().unwrap_or("").to_string(),
        })
        .unwrap_or_default();
    let streamed = body["stream"] == json!(true);
    let text = match answer {
        Some(Answer::ToolUse { text, calls }) => return tool_use(&body, text, calls),
        Some(Answer::Stream { words, gate, end }) => {
            let words = words.into_iter().map(str::to_string).collect();
            return stream(&fake, &body, words, (gate, None), end);
        }
        Some(Answer::Paced { words, every }) => {
            let words = (1..=words)
                .map(|n| {
                    if n == 1 {
                        "word1".into()
                    } else {
                        format!(" word{n}")
                    }
                })
                .collect();
            return stream(&fake, &body, words, (None, Some(every)), StreamEnd::Stop);
        }
        Some(Answer::Error(status, kind, retry_after)) => return error(status, kind, retry_after),
        Some(Answer::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            format!("Claude says (slowly): {last_user}")
        }
        Some(Answer::Text(text)) => text.to_string(),
        None => format!("Claude says: {last_user}"),
    };
    if streamed {
        // Word by word, spaces kept: the pieces join into the text.
        let words = text.split_inclusive(' ').map(str::to_string).collect();
        return stream(&fake, &body, words, (None, None), StreamEnd::Stop);
    }
    let input_tokens = body["messages"].as_array().map_or(0, |m| m.len() * 10) as u64;
    let reply = json!({
        "id": "msg_01FakeFakeFake", "type": "message", "role": "assistant",
        "model": body["model"], "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": 7}
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        reply.to_string(),
    )
        .into_response()
}

/// A streamed answer, event by event, as the Messages API sends it.
fn stream(
    fake: &Arc<FakeAnthropic>,
    request: &Value,
    words: Vec<String>,
    (gate, every): (Option<Arc<tokio::sync::Notify>>, Option<Duration>),
    end: StreamEnd,
) -> Response {
    let fake = fake.clone();
    let event = |kind: &str, data: Value| Bytes::from(format!("event: {kind}\ndata: {data}\n\n"));
    let mut events = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_01FakeStream", "type": "message",
            "role": "assistant", "model": request["model"], "content": [], "stop_reason": null,
            "usage": {"input_tokens": 10, "output_tokens": 1}}}),
    )];
    events.push(event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ));
    let deltas: Vec<Bytes> = words
        .iter()
        .map(|word| {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}}),
            )
        })
        .collect();
    let tail = match end {
        StreamEnd::Stop => vec![
            event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            event(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                    "usage": {"output_tokens": words.len()}}),
            ),
            event("message_stop", json!({"type": "message_stop"})),
        ],
        StreamEnd::Error => vec![event(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        )],
        StreamEnd::Cut => Vec::new(),
    };
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::convert::Infallible>>(4);
    tokio::spawn(async move {
        for chunk in events {
            let _ = sender.send(Ok(chunk)).await;
        }
        for (index, delta) in deltas.into_iter().enumerate() {
            if index == 1
                && let Some(gate) = &gate
            {
                gate.notified().await;
            }
            if index > 0
                && let Some(every) = every
            {
                tokio::time::sleep(every).await;
            }
            let _ = sender.send(Ok(delta)).await;
            fake.sent_at.lock().unwrap().push(std::time::Instant::now());
        }
        for chunk in tail {
            let _ = sender.send(Ok(chunk)).await;
        }
    });
    let body = axum::body::Body::from_stream(tokio_stream_of(receiver));
    (
        StatusCode::OK,
        [("content-type", "text/event-stream")],
        body,
    )
        .into_response()
}

/// A streamed answer asking for tools, as the Messages API sends one.
fn tool_use(
    request: &Value,
    text: &str,
    calls: Vec<(&'static str, &'static str, Value)>,
) -> Response {
    let event = |kind: &str, data: Value| format!("event: {kind}\ndata: {data}\n\n");
    let mut body = event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_01FakeTools", "type": "message",
            "role": "assistant", "model": request["model"], "content": [], "stop_reason": null,
            "usage": {"input_tokens": 100, "output_tokens": 1}}}),
    );
    body.push_str(&event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ));
    body.push_str(&event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
    ));
    body.push_str(&event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    for (at, (id, name, input)) in calls.iter().enumerate() {
        let index = at + 1;
        body.push_str(&event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        ));
        let json = input.to_string();
        let (first, second) = json.split_at(json.len() / 2);
        for piece in [first, second] {
            body.push_str(&event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece}}),
            ));
        }
        body.push_str(&event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    body.push_str(&event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"output_tokens": 50}}),
    ));
    body.push_str(&event("message_stop", json!({"type": "message_stop"})));
    (
        StatusCode::OK,
        [("content-type", "text/event-stream")],
        body,
    )
        .into_response()
}

/// The `tool_result` blocks of a request's last message, by tool_use id:
/// (content, is_error).
pub fn tool_results(request: &Value) -> HashMap<String, (String, bool)> {
    request["messages"]
        .as_array()
        .and_then(|messages| messages.last())
        .and_then(|last| last["content"].as_array())
        .map(|blocks| {
            blocks
                .iter()
                .filter(|block| block["type"] == "tool_result")
                .map(|block| {
                    (
                        block["tool_use_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        (
                            block["content"].as_str().unwrap_or_default().to_string(),
                            block["is_error"] == json!(true),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An mpsc receiver as a stream of body chunks.
fn tokio_stream_of<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// `GET /v1/models`: what the health check asks; 401 without a credential.
async fn models(headers: HeaderMap) -> Response {
    if !headers.contains_key("x-api-key") && !headers.contains_key("authorization") {
        return error(401, "authentication_error", None);
    }
    let body = json!({"data": [{"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5",
        "created_at": "2025-09-29T00:00:00Z"}], "has_more": true, "first_id": "claude-sonnet-4-5", "last_id": "claude-sonnet-4-5"});
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error(status: u16, kind: &str, retry_after: Option<u32>) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": format!("fake {kind}")}});
    let mut response = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    response
}
