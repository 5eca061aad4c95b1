//! A fake OpenAI-compatible embeddings API on 127.0.0.1: `POST
//! /v1/embeddings` with the real request and response JSON. A text's vector
//! counts its words in hashed buckets (normalised), so texts sharing words
//! are close: enough to check that recall finds the right note. The vector
//! size can change mid-test, as when an operator switches models.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const DIMENSION: usize = 128;

pub struct FakeEmbeddings {
    /// Every request body, with its Authorization header.
    pub requests: Mutex<Vec<(Option<String>, Value)>>,
    /// Non-zero: answer every request with this status and an OpenAI error body.
    pub failing_with: AtomicU16,
    /// The size of every vector from now on.
    pub dimension: AtomicUsize,
}

impl Default for FakeEmbeddings {
    fn default() -> Self {
        Self {
            requests: Mutex::default(),
            failing_with: AtomicU16::new(0),
            dimension: AtomicUsize::new(DIMENSION),
        }
    }
}

impl FakeEmbeddings {
    /// Starts the server; returns it and its base URL (for EMBEDDINGS_URL).
    pub async fn start() -> (Arc<Self>, String) {
        let fake = Arc::new(Self::default());
        let app = axum::Router::new()
            .route("/v1/embeddings", axum::routing::post(embeddings))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, url)
    }

    pub fn fail_with(&self, status: u16) {
        self.failing_with.store(status, Ordering::SeqCst);
    }

    /// Answers as another model would: vectors of `dimension` values.
    pub fn switch_model(&self, dimension: usize) {
        self.dimension.store(dimension, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<(Option<String>, Value)> {
        self.requests.lock().unwrap().clone()
    }
}

/// The fake model's vector for `text`, of `dimension` values.
pub fn embedding(text: &str, dimension: usize) -> Vec<f32> {
    let mut vector = vec![0.0_f32; dimension];
    for word in text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
    {
        let bucket = word
            .bytes()
            .fold(5381_usize, |h, b| h.wrapping_mul(33) ^ usize::from(b))
            % dimension;
        vector[bucket] += 1.0;
    }
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
    vector.iter().map(|v| v / norm).collect()
}

async fn embeddings(
    State(fake): State<Arc<FakeEmbeddings>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    fake.requests.lock().unwrap().push((auth, body.clone()));
    let failing = fake.failing_with.load(Ordering::SeqCst);
    if failing != 0 {
        let status = StatusCode::from_u16(failing).unwrap();
        let error =
            json!({"error": {"message": "the fake provider is failing", "type": "server_error"}});
        return json_response(status, error);
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    if inputs.is_empty() {
        let error = json!({"error": {"message": "input must be a string or a list of strings", "type": "invalid_request_error"}});
        return json_response(StatusCode::BAD_REQUEST, error);
    }
    let dimension = fake.dimension.load(Ordering::SeqCst);
    // Real providers may answer out of order; the index says which is which.
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": embedding(text, dimension)}))
        .collect();
    let answer = json!({
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": inputs.len(), "total_tokens": inputs.len()}
    });
    json_response(StatusCode::OK, answer)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
