//! `ANTHROPIC_*` and `LLM_*`: who we are to Anthropic and how we call it.

use std::time::Duration;

use url::Url;

use crate::env::{ConfigError, SecretString, http_url, parse_number};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// How the host authenticates; plugins never see either value.
#[derive(Debug, Clone)]
pub enum LlmAuth {
    /// `ANTHROPIC_API_KEY`, sent as `x-api-key`.
    ApiKey(SecretString),
    /// `ANTHROPIC_AUTH_TOKEN` (subscription/OAuth), sent as a bearer token.
    OAuthToken(SecretString),
}

#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// None: the LLM is not configured and calls answer `not-configured`.
    pub auth: Option<LlmAuth>,
    pub base_url: Url,
    pub model: String,
    /// `LLM_TIMEOUT_SECS`: one request, end to end.
    pub timeout: Duration,
    /// `LLM_MAX_CONCURRENT`: requests in flight at once; more wait their turn.
    pub max_concurrent: u32,
}

impl LlmSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let auth = match (get("ANTHROPIC_API_KEY"), get("ANTHROPIC_AUTH_TOKEN")) {
            (Some(key), _) => Some(LlmAuth::ApiKey(SecretString::new(key.trim().to_string()))),
            (None, Some(token)) => Some(LlmAuth::OAuthToken(SecretString::new(
                token.trim().to_string(),
            ))),
            (None, None) => None,
        };
        let base = get("ANTHROPIC_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.into());
        let base_url = http_url("ANTHROPIC_BASE_URL", &base)?;
        let model =
            get("LLM_MODEL").map_or_else(|| DEFAULT_MODEL.to_string(), |m| m.trim().to_string());
        let timeout = parse_number(
            "LLM_TIMEOUT_SECS",
            get("LLM_TIMEOUT_SECS"),
            60,
            1..=600,
            "seconds",
        )?;
        let max_concurrent = parse_number(
            "LLM_MAX_CONCURRENT",
            get("LLM_MAX_CONCURRENT"),
            4,
            1..=64,
            "requests",
        )?;
        Ok(Self {
            auth,
            base_url,
            model,
            timeout: Duration::from_secs(timeout),
            max_concurrent: max_concurrent as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<LlmSettings, ConfigError> {
        LlmSettings::from_lookup(crate::env::lookup_in(vars))
    }

    #[test]
    fn unconfigured_by_default_and_the_key_wins_over_the_token() {
        let s = settings(&[]).unwrap();
        assert!(s.auth.is_none());
        assert_eq!(
            (s.model.as_str(), s.timeout.as_secs(), s.max_concurrent),
            (DEFAULT_MODEL, 60, 4)
        );
        let both = settings(&[
            ("ANTHROPIC_API_KEY", "sk-1"),
            ("ANTHROPIC_AUTH_TOKEN", "oat-1"),
        ])
        .unwrap();
        assert!(matches!(both.auth, Some(LlmAuth::ApiKey(key)) if key.expose() == "sk-1"));
        let token = settings(&[("ANTHROPIC_AUTH_TOKEN", "oat-1")]).unwrap();
        assert!(matches!(token.auth, Some(LlmAuth::OAuthToken(_))));
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert_eq!(
            settings(&[("ANTHROPIC_BASE_URL", "api.anthropic.com")])
                .unwrap_err()
                .variable,
            "ANTHROPIC_BASE_URL"
        );
        assert_eq!(
            settings(&[("LLM_TIMEOUT_SECS", "0")]).unwrap_err().variable,
            "LLM_TIMEOUT_SECS"
        );
        assert_eq!(
            settings(&[("LLM_MAX_CONCURRENT", "many")])
                .unwrap_err()
                .variable,
            "LLM_MAX_CONCURRENT"
        );
    }
}
