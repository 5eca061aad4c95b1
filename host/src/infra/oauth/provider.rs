//! Where an OAuth 2 provider's endpoints are, and the presets an operator
//! starts from (`wasmbot oauth add google`); every field can be overridden.

use crate::infra::vault::{CREDENTIAL_NAME_RULE, is_credential_name};

/// One provider's endpoints and the scopes asked for by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// `google`, `github` or `custom`.
    pub kind: String,
    pub auth_url: String,
    pub token_url: String,
    /// RFC 8628 device authorization, where the provider offers it for
    /// these scopes; otherwise the code flow with PKCE is used.
    pub device_url: Option<String>,
    pub scopes: Vec<String>,
    /// Extra query parameters of the authorization URL (Google hands out a
    /// refresh token only with `access_type=offline`).
    pub auth_params: Vec<(String, String)>,
}

impl Provider {
    /// The preset called `kind`, if there is one.
    pub fn preset(kind: &str) -> Option<Self> {
        let owned = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        match kind {
            // Google's device flow does not allow Calendar scopes, so the
            // code flow (a "Desktop app" client, loopback redirect) it is.
            "google" => Some(Self {
                kind: kind.into(),
                auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
                token_url: "https://oauth2.googleapis.com/token".into(),
                device_url: None,
                scopes: vec!["https://www.googleapis.com/auth/calendar.readonly".into()],
                auth_params: owned(&[("access_type", "offline"), ("prompt", "consent")]),
            }),
            "github" => Some(Self {
                kind: kind.into(),
                auth_url: "https://github.com/login/oauth/authorize".into(),
                token_url: "https://github.com/login/oauth/access_token".into(),
                device_url: Some("https://github.com/login/device/code".into()),
                scopes: vec!["notifications".into()],
                auth_params: Vec::new(),
            }),
            _ => None,
        }
    }

    /// No preset: every endpoint must be given.
    pub fn custom(auth_url: String, token_url: String) -> Self {
        Self {
            kind: "custom".into(),
            auth_url,
            token_url,
            device_url: None,
            scopes: Vec::new(),
            auth_params: Vec::new(),
        }
    }
}

/// OAuth credential names follow the vault's rule, so `oauth:NAME` is
/// unambiguous and a manifest can list NAME.
pub fn validate_name(name: &str) -> Result<(), String> {
    if is_credential_name(name) {
        Ok(())
    } else {
        Err(format!(
            "OAuth credential names are {CREDENTIAL_NAME_RULE}, not {name:?}"
        ))
    }
}

/// The vault credential that holds `name`'s tokens and client secret.
pub fn tokens_credential(name: &str) -> String {
    format!("oauth:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_names() {
        let google = Provider::preset("google").unwrap();
        assert!(google.device_url.is_none());
        assert!(
            google
                .auth_params
                .iter()
                .any(|(k, v)| k == "access_type" && v == "offline")
        );
        assert!(Provider::preset("github").unwrap().device_url.is_some());
        assert!(Provider::preset("myspace").is_none());
        assert!(validate_name("google").is_ok());
        assert!(validate_name("work.google-2").is_ok());
        assert!(validate_name("a:b").is_err());
        assert!(validate_name("").is_err());
        assert_eq!(tokens_credential("google"), "oauth:google");
    }
}
