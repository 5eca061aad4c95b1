//! Credentials in request header values, put there by the host on the way
//! out so the plugin never holds them (unlike `secrets::get`, whose value a
//! plugin could log, send elsewhere or keep):
//!
//! - `{{secret:NAME}}` becomes the stored secret NAME (`secrets = [...]`);
//! - `{{oauth:NAME}}` becomes `Bearer <access token>` of the OAuth
//!   credential NAME (`oauth = [...]`), refreshed by the host when due.
//!
//! Only header values are searched: a credential never goes into a URL
//! (logged by proxies) or a body.

use http::HeaderValue;
use http::header::HeaderMap;
use zeroize::Zeroizing;

use crate::infra::oauth::{OAuthTokens, TokenError};
use crate::infra::services::HostServices;
use crate::runtime::RevealedSecrets;

const SECRET: &str = "{{secret:";
const OAUTH: &str = "{{oauth:";
const CLOSE: &str = "}}";

/// Marks an error the SDK reports as "needs authorization" (a typed error
/// a plugin can tell its user about): `[oauth:NAME] sentence`; kept in
/// step with the SDK's `http/error.rs`, like `DENIED_MARK`.
pub const REAUTHORIZE_MARK: &str = "[oauth:";

/// A credential a header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    Secret(String),
    OAuth(String),
}

impl Placeholder {
    /// As the audit names it: `github`, `oauth:google`.
    pub fn label(&self) -> String {
        match self {
            Placeholder::Secret(name) => name.clone(),
            Placeholder::OAuth(name) => format!("oauth:{name}"),
        }
    }
}

/// The earliest placeholder in `text`: where it starts, which, and where
/// the text after it starts.
fn next_placeholder(text: &str) -> Option<Result<(usize, Placeholder, usize), String>> {
    let secret = text.find(SECRET).map(|at| (at, SECRET));
    let oauth = text.find(OAUTH).map(|at| (at, OAUTH));
    let (start, open) = match (secret, oauth) {
        (Some(s), Some(o)) => {
            if s.0 < o.0 {
                s
            } else {
                o
            }
        }
        (Some(found), None) | (None, Some(found)) => found,
        (None, None) => return None,
    };
    let after = start + open.len();
    let Some(length) = text[after..].find(CLOSE) else {
        return Some(Err(format!("an unclosed `{open}`")));
    };
    let name = text[after..after + length].trim().to_string();
    if name.is_empty() {
        return Some(Err(format!("an empty `{open}}}}}`")));
    }
    let placeholder = if open == SECRET {
        Placeholder::Secret(name)
    } else {
        Placeholder::OAuth(name)
    };
    Some(Ok((start, placeholder, after + length + CLOSE.len())))
}

/// The credentials the headers ask for, in order, each once.
pub fn named(headers: &HeaderMap) -> Result<Vec<Placeholder>, String> {
    let mut found = Vec::new();
    for (header, value) in headers {
        let Ok(mut rest) = value.to_str() else {
            continue;
        };
        while let Some(next) = next_placeholder(rest) {
            let (_, placeholder, end) =
                next.map_err(|problem| format!("header `{header}` has {problem}"))?;
            if !found.contains(&placeholder) {
                found.push(placeholder);
            }
            rest = &rest[end..];
        }
    }
    Ok(found)
}

/// The access tokens one request was sent with, for a retry after 401.
#[derive(Default)]
pub struct UsedTokens(pub Vec<(String, Zeroizing<String>)>);

/// Why a credential could not be put in.
pub struct InjectError {
    pub text: String,
}

impl From<String> for InjectError {
    fn from(text: String) -> Self {
        Self { text }
    }
}

impl From<TokenError> for InjectError {
    fn from(error: TokenError) -> Self {
        let text = match &error {
            TokenError::Reauthorize(name) => format!("{REAUTHORIZE_MARK}{name}] {error}"),
            _ => error.to_string(),
        };
        Self { text }
    }
}

/// Replaces every placeholder with its credential; the header is marked
/// sensitive (never logged by the HTTP stack). The names were checked
/// against the manifest before. `fresh` overrides the token of an OAuth
/// credential (after a 401, the refreshed one).
pub async fn inject(
    headers: &mut HeaderMap,
    services: &HostServices,
    revealed: &RevealedSecrets,
    fresh: &UsedTokens,
) -> Result<UsedTokens, InjectError> {
    let mut used = UsedTokens::default();
    for value in headers.values_mut() {
        let Ok(text) = value.to_str() else {
            continue;
        };
        if !text.contains(SECRET) && !text.contains(OAUTH) {
            continue;
        }
        let mut filled = Zeroizing::new(String::with_capacity(text.len() + 64));
        let mut rest = text;
        while let Some(next) = next_placeholder(rest) {
            let (start, placeholder, end) = next?;
            filled.push_str(&rest[..start]);
            match &placeholder {
                Placeholder::Secret(name) => {
                    let secret = stored_secret(services, name).await?;
                    revealed.remember(&secret);
                    filled.push_str(&secret);
                }
                Placeholder::OAuth(name) => {
                    let token = match fresh.0.iter().find(|(known, _)| known == name) {
                        Some((_, token)) => token.clone(),
                        None => access_token(services, name).await?,
                    };
                    revealed.remember(&token);
                    filled.push_str("Bearer ");
                    filled.push_str(&token);
                    used.0.push((name.clone(), token));
                }
            }
            rest = &rest[end..];
        }
        filled.push_str(rest);
        let mut header = HeaderValue::from_str(&filled)
            .map_err(|_| "a credential holds characters a header cannot carry".to_string())?;
        header.set_sensitive(true);
        *value = header;
    }
    Ok(used)
}

/// New tokens for those a server refused (401), or the ones another
/// caller already replaced them with; `None` when none of them has a newer
/// token (each was obtained moments ago: the refusal is not about its age).
pub async fn renew(
    services: &HostServices,
    refused: &UsedTokens,
) -> Result<Option<UsedTokens>, InjectError> {
    let oauth = oauth_service(services)?;
    let mut fresh = UsedTokens::default();
    for (name, token) in &refused.0 {
        if let Some(renewed) = oauth.after_unauthorized(name, token).await? {
            fresh.0.push((name.clone(), renewed.token));
        }
    }
    Ok((!fresh.0.is_empty()).then_some(fresh))
}

fn oauth_service(services: &HostServices) -> Result<&OAuthTokens, InjectError> {
    services.oauth.as_deref().ok_or_else(|| {
        "no ENCRYPTION_KEY is configured, so no OAuth credential can be used"
            .to_string()
            .into()
    })
}

async fn access_token(
    services: &HostServices,
    name: &str,
) -> Result<Zeroizing<String>, InjectError> {
    Ok(oauth_service(services)?.access_token(name).await?.token)
}

async fn stored_secret(
    services: &HostServices,
    name: &str,
) -> Result<Zeroizing<String>, InjectError> {
    let (Some(store), Some(vault)) = (&services.store, &services.vault) else {
        return Err(
            "no ENCRYPTION_KEY is configured, so no secret can be injected"
                .to_string()
                .into(),
        );
    };
    let stored = match store.get_credential(name).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            return Err(
                format!("secret `{name}` is not stored (wasmbot secrets set {name})").into(),
            );
        }
        Err(error) => {
            tracing::warn!(%error, secret = %name, "secret read failed");
            return Err("the database is not available".to_string().into());
        }
    };
    let plaintext = vault
        .decrypt(&stored)
        .map_err(|_| format!("secret `{name}` cannot be decrypted"))?;
    let secret = std::str::from_utf8(&plaintext)
        .map_err(|_| format!("secret `{name}` is not UTF-8 text"))?;
    Ok(Zeroizing::new(secret.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_in_header_values_only() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer {{secret:github}}".parse().unwrap());
        headers.insert("x-both", "{{secret:a}}:{{ secret:b }}".parse().unwrap());
        headers.insert("x-again", "{{secret:github}}".parse().unwrap());
        headers.insert("x-oauth", "{{oauth:google}} {{secret:a}}".parse().unwrap());
        headers.insert("accept", "application/json".parse().unwrap());
        let mut labels: Vec<String> = named(&headers)
            .unwrap()
            .iter()
            .map(Placeholder::label)
            .collect();
        labels.sort();
        assert_eq!(labels, ["a", "github", "oauth:google"]);
        headers.insert("x-bad", "{{secret:oops".parse().unwrap());
        assert_eq!(
            named(&headers).unwrap_err(),
            "header `x-bad` has an unclosed `{{secret:`"
        );
        headers.remove("x-bad");
        headers.insert("x-empty", "{{oauth: }}".parse().unwrap());
        assert_eq!(
            named(&headers).unwrap_err(),
            "header `x-empty` has an empty `{{oauth:}}`"
        );
    }

    #[test]
    fn a_revoked_grant_is_marked_for_the_sdk() {
        let error = InjectError::from(TokenError::Reauthorize("google".into()));
        assert!(
            error
                .text
                .starts_with("[oauth:google] the `google` authorization was revoked")
        );
        let other = InjectError::from(TokenError::Unknown("x".into()));
        assert!(!other.text.starts_with(REAUTHORIZE_MARK));
    }
}
