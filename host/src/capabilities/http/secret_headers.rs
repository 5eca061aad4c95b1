//! `{{secret:NAME}}` in a request header's value: the host puts the
//! credential there on the way out, so the plugin never holds it (unlike
//! `secrets::get`, whose value a plugin could log, send elsewhere or keep).
//! Only header values are searched: a secret never goes into a URL (logged
//! by proxies) or a body.

use http::HeaderValue;
use http::header::HeaderMap;
use zeroize::Zeroizing;

use crate::infra::services::HostServices;
use crate::runtime::RevealedSecrets;

const OPEN: &str = "{{secret:";
const CLOSE: &str = "}}";

/// The secret names the headers ask for, in order, each once.
pub fn named(headers: &HeaderMap) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for (header, value) in headers {
        let Ok(text) = value.to_str() else {
            continue;
        };
        let mut rest = text;
        while let Some(start) = rest.find(OPEN) {
            let after = &rest[start + OPEN.len()..];
            let end = after
                .find(CLOSE)
                .ok_or_else(|| format!("header `{header}` has an unclosed `{OPEN}`"))?;
            let name = after[..end].trim().to_string();
            if name.is_empty() {
                return Err(format!("header `{header}` names no secret in `{OPEN}}}}}`"));
            }
            if !names.contains(&name) {
                names.push(name);
            }
            rest = &after[end + CLOSE.len()..];
        }
    }
    Ok(names)
}

/// Replaces every placeholder with its decrypted credential; the header is
/// marked sensitive (never logged by the HTTP stack). The names were
/// checked against the manifest before.
pub async fn inject(
    headers: &mut HeaderMap,
    services: &HostServices,
    revealed: &RevealedSecrets,
) -> Result<(), String> {
    let (Some(store), Some(vault)) = (&services.store, &services.vault) else {
        return Err("no ENCRYPTION_KEY is configured, so no secret can be injected".into());
    };
    for value in headers.values_mut() {
        let Ok(text) = value.to_str() else {
            continue;
        };
        if !text.contains(OPEN) {
            continue;
        }
        let mut filled = Zeroizing::new(String::with_capacity(text.len() + 64));
        let mut rest = text.to_string();
        while let Some(start) = rest.find(OPEN) {
            filled.push_str(&rest[..start]);
            let after = &rest[start + OPEN.len()..];
            let end = after.find(CLOSE).unwrap_or(after.len());
            let name = after[..end].trim();
            let stored = match store.get_credential(name).await {
                Ok(Some(stored)) => stored,
                Ok(None) => {
                    return Err(format!(
                        "secret `{name}` is not stored (wasmbot secrets set {name})"
                    ));
                }
                Err(error) => {
                    tracing::warn!(%error, secret = %name, "secret read failed");
                    return Err("the database is not available".into());
                }
            };
            let plaintext = vault
                .decrypt(&stored)
                .map_err(|_| format!("secret `{name}` cannot be decrypted"))?;
            let secret = std::str::from_utf8(&plaintext)
                .map_err(|_| format!("secret `{name}` is not UTF-8 text"))?;
            revealed.remember(secret);
            filled.push_str(secret);
            rest = after[(end + CLOSE.len()).min(after.len())..].to_string();
        }
        filled.push_str(&rest);
        let mut header = HeaderValue::from_str(&filled)
            .map_err(|_| "a secret holds characters a header cannot carry".to_string())?;
        header.set_sensitive(true);
        *value = header;
    }
    Ok(())
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
        headers.insert("accept", "application/json".parse().unwrap());
        let mut names = named(&headers).unwrap();
        names.sort();
        assert_eq!(names, ["a", "github"]);
        headers.insert("x-bad", "{{secret:oops".parse().unwrap());
        assert_eq!(
            named(&headers).unwrap_err(),
            "header `x-bad` has an unclosed `{{secret:`"
        );
    }
}
