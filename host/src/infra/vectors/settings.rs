//! `QDRANT_*`, `VECTORS_DIR` and `EMBEDDINGS_*`: where vectors live and who
//! turns text into them.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::env::{ConfigError, SecretString, http_url, parse_number};

pub const DEFAULT_VECTORS_DIR: &str = "data/vectors";
pub const DEFAULT_EMBEDDINGS_MODEL: &str = "text-embedding-3-small";

#[derive(Debug, Clone)]
pub struct QdrantSettings {
    /// `QDRANT_URL`: the server's gRPC endpoint, e.g. http://qdrant:6334.
    pub url: Url,
    /// `QDRANT_API_KEY`, when the server wants one.
    pub api_key: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct EmbeddingsSettings {
    /// The full `/embeddings` endpoint derived from `EMBEDDINGS_URL`.
    pub endpoint: Url,
    /// `EMBEDDINGS_MODEL`.
    pub model: String,
    /// `EMBEDDINGS_API_KEY`, sent as a bearer token when set.
    pub api_key: Option<SecretString>,
    /// `EMBEDDINGS_TIMEOUT_SECS`: one request, end to end.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct VectorSettings {
    /// None: the embedded engine under `dir`.
    pub qdrant: Option<QdrantSettings>,
    /// `VECTORS_DIR`: the embedded engine's files.
    pub dir: PathBuf,
    /// None: `embed` answers not-configured.
    pub embeddings: Option<EmbeddingsSettings>,
}

impl Default for VectorSettings {
    fn default() -> Self {
        Self {
            qdrant: None,
            dir: PathBuf::from(DEFAULT_VECTORS_DIR),
            embeddings: None,
        }
    }
}

impl VectorSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let qdrant = get("QDRANT_URL")
            .map(|url| -> Result<_, ConfigError> {
                Ok(QdrantSettings {
                    url: http_url("QDRANT_URL", &url)?,
                    api_key: get("QDRANT_API_KEY").map(|key| SecretString::new(key.trim().into())),
                })
            })
            .transpose()?;
        let dir = PathBuf::from(get("VECTORS_DIR").unwrap_or_else(|| DEFAULT_VECTORS_DIR.into()));
        let embeddings = get("EMBEDDINGS_URL")
            .map(|url| -> Result<_, ConfigError> {
                let timeout = parse_number(
                    "EMBEDDINGS_TIMEOUT_SECS",
                    get("EMBEDDINGS_TIMEOUT_SECS"),
                    30,
                    1..=600,
                    "seconds",
                )?;
                Ok(EmbeddingsSettings {
                    endpoint: embeddings_endpoint(http_url("EMBEDDINGS_URL", &url)?),
                    model: get("EMBEDDINGS_MODEL")
                        .map_or_else(|| DEFAULT_EMBEDDINGS_MODEL.into(), |m| m.trim().into()),
                    api_key: get("EMBEDDINGS_API_KEY")
                        .map(|key| SecretString::new(key.trim().into())),
                    timeout: Duration::from_secs(timeout),
                })
            })
            .transpose()?;
        Ok(Self {
            qdrant,
            dir,
            embeddings,
        })
    }
}

/// Operators paste a base URL in any of three shapes; all mean the same endpoint:
/// `https://api.openai.com` -> `/v1/embeddings`, `http://host/v1` -> `/v1/embeddings`,
/// `http://host/custom/embeddings` as is.
fn embeddings_endpoint(mut url: Url) -> Url {
    let path = url.path().trim_end_matches('/').to_string();
    let path = if path.ends_with("/embeddings") {
        path
    } else if path.ends_with("/v1") {
        format!("{path}/embeddings")
    } else {
        format!("{path}/v1/embeddings")
    };
    url.set_path(&path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<VectorSettings, ConfigError> {
        VectorSettings::from_lookup(crate::env::lookup_in(vars))
    }

    #[test]
    fn the_embedded_engine_and_no_embeddings_by_default() {
        let settings = settings(&[]).unwrap();
        assert!(settings.qdrant.is_none());
        assert!(settings.embeddings.is_none());
        assert_eq!(settings.dir, PathBuf::from(DEFAULT_VECTORS_DIR));
    }

    #[test]
    fn every_shape_of_embeddings_url_reaches_the_embeddings_endpoint() {
        for (given, endpoint) in [
            (
                "https://api.openai.com",
                "https://api.openai.com/v1/embeddings",
            ),
            (
                "http://127.0.0.1:11434/v1/",
                "http://127.0.0.1:11434/v1/embeddings",
            ),
            ("http://h/x/embeddings", "http://h/x/embeddings"),
        ] {
            let settings = settings(&[("EMBEDDINGS_URL", given)]).unwrap();
            let embeddings = settings.embeddings.unwrap();
            assert_eq!(embeddings.endpoint.as_str(), endpoint);
            assert_eq!(embeddings.model, DEFAULT_EMBEDDINGS_MODEL);
        }
    }

    #[test]
    fn bad_urls_name_their_variable() {
        let error = settings(&[("QDRANT_URL", "qdrant:6334")]).unwrap_err();
        assert_eq!(error.variable, "QDRANT_URL");
        let error = settings(&[("EMBEDDINGS_URL", "ftp://x")]).unwrap_err();
        assert_eq!(error.variable, "EMBEDDINGS_URL");
        let error = settings(&[
            ("EMBEDDINGS_URL", "http://x"),
            ("EMBEDDINGS_TIMEOUT_SECS", "0"),
        ])
        .unwrap_err();
        assert_eq!(error.variable, "EMBEDDINGS_TIMEOUT_SECS");
    }
}
