//! Text to vectors through an OpenAI-compatible `POST /v1/embeddings`
//! (OpenAI, Ollama, vLLM, LM Studio, …). The key stays in the host.

use serde::Deserialize;

use super::model::VectorFailure;
use super::settings::EmbeddingsSettings;

pub const MAX_TEXTS: usize = 64;
pub const MAX_TEXT_BYTES: usize = 32 * 1024;

pub struct EmbeddingsClient {
    http: reqwest::Client,
    settings: EmbeddingsSettings,
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<Embedding>,
}

#[derive(Deserialize)]
struct Embedding {
    embedding: Vec<f32>,
    index: usize,
}

impl EmbeddingsClient {
    pub fn new(settings: &EmbeddingsSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|error| anyhow::anyhow!("cannot build the embeddings HTTP client: {error}"))?;
        Ok(Self {
            http,
            settings: settings.clone(),
        })
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// One vector per text, in the order given.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, VectorFailure> {
        check_texts(texts)?;
        let body = serde_json::json!({ "model": self.settings.model, "input": texts });
        let mut request = self.http.post(self.settings.endpoint.clone()).json(&body);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = request.send().await.map_err(|error| {
            let why = if error.is_timeout() {
                "did not answer in time"
            } else {
                "could not be reached"
            };
            tracing::warn!(error = %error.without_url(), "embeddings request failed");
            VectorFailure::Unavailable(format!("the embeddings provider {why}"))
        })?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            let detail = provider_message(&detail);
            tracing::warn!(status = status.as_u16(), %detail, "the embeddings provider refused");
            return Err(match status.as_u16() {
                400 | 413 | 422 => VectorFailure::InvalidInput(format!(
                    "the embeddings provider refused the texts: {detail}"
                )),
                401 | 403 => VectorFailure::Unavailable(
                    "the embeddings provider refused the host's EMBEDDINGS_API_KEY".into(),
                ),
                429 => VectorFailure::Unavailable(
                    "the embeddings provider is rate limiting this host".into(),
                ),
                code => VectorFailure::Unavailable(format!(
                    "the embeddings provider answered HTTP {code}"
                )),
            });
        }
        let parsed: EmbeddingsResponse = response.json().await.map_err(|error| {
            VectorFailure::Unavailable(format!(
                "the embeddings provider's answer is not an embeddings list: {}",
                error.without_url()
            ))
        })?;
        order(parsed.data, texts.len())
    }
}

fn check_texts(texts: &[String]) -> Result<(), VectorFailure> {
    if texts.is_empty() || texts.len() > MAX_TEXTS {
        return Err(VectorFailure::InvalidInput(format!(
            "embed takes 1-{MAX_TEXTS} texts, got {}",
            texts.len()
        )));
    }
    if let Some(long) = texts.iter().position(|t| t.len() > MAX_TEXT_BYTES) {
        return Err(VectorFailure::InvalidInput(format!(
            "text {long} is longer than {MAX_TEXT_BYTES} bytes"
        )));
    }
    if texts.iter().any(|t| t.trim().is_empty()) {
        return Err(VectorFailure::InvalidInput(
            "texts to embed must not be empty".into(),
        ));
    }
    Ok(())
}

/// The provider's vectors by the index it gave, checked for one per text and one dimension.
fn order(mut data: Vec<Embedding>, expected: usize) -> Result<Vec<Vec<f32>>, VectorFailure> {
    data.sort_by_key(|embedding| embedding.index);
    let complete = data.len() == expected && data.iter().enumerate().all(|(i, e)| e.index == i);
    let dimension = data.first().map_or(0, |e| e.embedding.len());
    let consistent = dimension > 0 && data.iter().all(|e| e.embedding.len() == dimension);
    if !complete || !consistent {
        return Err(VectorFailure::Unavailable(format!(
            "the embeddings provider answered {} vectors for {expected} texts (or of mixed sizes)",
            data.len()
        )));
    }
    Ok(data.into_iter().map(|e| e.embedding).collect())
}

/// The `error.message` of an OpenAI-style error body, or the body's start.
fn provider_message(body: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string));
    let text = message.unwrap_or_else(|| body.trim().to_string());
    text.chars().take(300).collect()
}
