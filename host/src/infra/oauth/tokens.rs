//! The host's OAuth 2 tokens: handed out for injection into plugin
//! requests, refreshed shortly before they expire and when a provider
//! answers 401. A refresh is single-flight: in a process one caller per
//! credential refreshes while the others wait (a mutex), and across
//! processes sharing the database the one holding the row's lease does
//! (the others poll for its result). A provider that rotates refresh tokens
//! has the new one saved in the same transaction as the access token. Only
//! the lease's holder may save: a refresh that outlived its lease leaves the
//! newer token of the one that took over. A 401 on a token obtained moments
//! ago does not refresh again (a server refusing every token would
//! otherwise cost a refresh per request).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, ClientId, ClientSecret, RefreshToken, RequestTokenError, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::provider::tokens_credential;
use crate::infra::alert::Alerter;
use crate::infra::audit::AuditWriter;
use crate::infra::schedule::now_ms;
use crate::infra::store::{AuditEntry, OAuthRow, Store, StoredCredential};
use crate::infra::sync::lock;
use crate::infra::vault::Vault;

/// How long a refresh may hold the lease before another process may try.
const LEASE: Duration = Duration::from_secs(30);
/// The token endpoint must answer within this (well inside the lease).
const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a caller waiting for another process's refresh looks again.
const POLL: Duration = Duration::from_millis(100);
/// After a 401, a token younger than this is not refreshed again: the
/// refusal is then not about its age, and another refresh would not help.
const UNAUTHORIZED_GAP: Duration = Duration::from_secs(30);
/// At most this long before expiry a token is refreshed (less for tokens
/// that live only minutes: a quarter of their life).
const EARLY: Duration = Duration::from_secs(60);

/// What the vault keeps for one credential (`oauth:NAME`), as JSON.
#[derive(Serialize, Deserialize)]
pub struct TokenSet {
    pub client_secret: Option<String>,
    pub access_token: String,
    pub refresh_token: Option<String>,
}

impl Drop for TokenSet {
    fn drop(&mut self) {
        self.access_token.zeroize();
        if let Some(secret) = &mut self.client_secret {
            secret.zeroize();
        }
        if let Some(token) = &mut self.refresh_token {
            token.zeroize();
        }
    }
}

impl TokenSet {
    pub fn seal(
        &self,
        vault: &Vault,
        name: &str,
        key_version: i32,
    ) -> anyhow::Result<StoredCredential> {
        let json = Zeroizing::new(serde_json::to_vec(self)?);
        Ok(vault.encrypt(&tokens_credential(name), &json, key_version)?)
    }

    fn open(vault: &Vault, stored: &StoredCredential) -> Result<Self, String> {
        let plaintext = vault
            .decrypt(stored)
            .map_err(|_| "its tokens do not decrypt with ENCRYPTION_KEY".to_string())?;
        serde_json::from_slice(&plaintext).map_err(|_| "its stored tokens are damaged".to_string())
    }
}

/// Why no access token can be had; each says what to do.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("no OAuth credential named `{0}` (the operator adds it with `wasmbot oauth add {0}`)")]
    Unknown(String),
    #[error(
        "the `{0}` authorization was revoked or has expired; the bot's operator must run `wasmbot oauth add {0}` again"
    )]
    Reauthorize(String),
    #[error("the `{name}` access token cannot be had right now: {reason}")]
    Unavailable { name: String, reason: String },
}

/// A usable access token.
pub struct AccessToken {
    pub token: Zeroizing<String>,
    pub expires_ms: Option<i64>,
    /// Whether this caller refreshed it (rather than finding it fresh, or
    /// waiting for another caller's refresh).
    pub refreshed_here: bool,
}

pub struct OAuthTokens {
    store: Store,
    vault: Arc<Vault>,
    alerter: Alerter,
    audit: Option<Arc<AuditWriter>>,
    http: reqwest::Client,
    /// One refresh at a time per credential in this process.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuthTokens")
    }
}

/// A refresh lease this caller took: only its holder may save or release.
struct Lease<'a> {
    name: &'a str,
    holder: String,
}

#[derive(Debug, PartialEq, Eq)]
enum LeaseEnd {
    Released,
    /// The lease ran out and another refresh took it.
    TakenOver,
    /// The database did not answer; the lease runs out by itself.
    Unknown,
}

/// Whether the current token was obtained too recently for a 401 to be
/// worth another refresh.
fn recently_refreshed(row: &OAuthRow, now: i64) -> bool {
    now - row.refreshed_ms < UNAUTHORIZED_GAP.as_millis() as i64
}

/// Whether the token should be refreshed before use.
fn expiring(row: &OAuthRow, now: i64) -> bool {
    let Some(expires) = row.expires_ms else {
        return false; // the provider gave no expiry: only a 401 says so
    };
    let life = (expires - row.refreshed_ms).max(0);
    let early = (EARLY.as_millis() as i64).min(life / 4);
    now >= expires - early
}

impl OAuthTokens {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        alerter: Alerter,
        audit: Option<Arc<AuditWriter>>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            store,
            vault,
            alerter,
            audit,
            http: token_client()?,
            gates: Mutex::new(HashMap::new()),
        })
    }

    /// A token to put in a request now: the stored one while it is fresh,
    /// a refreshed one when it is about to expire.
    pub async fn access_token(&self, name: &str) -> Result<AccessToken, TokenError> {
        let row = self.row(name).await?;
        if row.status == "reauthorize" {
            return Err(TokenError::Reauthorize(name.into()));
        }
        if !expiring(&row, now_ms()) {
            let (tokens, _) = self.tokens(name).await?;
            return Ok(AccessToken {
                token: Zeroizing::new(tokens.access_token.clone()),
                expires_ms: row.expires_ms,
                refreshed_here: false,
            });
        }
        self.refresh(name, &|row, _| expiring(row, now_ms()), &|| {})
            .await
    }

    /// The provider refused `used` (401): a new token, or the one another
    /// caller already replaced it with; `None` when `used` is still the
    /// current token and was obtained less than `UNAUTHORIZED_GAP` ago.
    pub async fn after_unauthorized(
        &self,
        name: &str,
        used: &str,
    ) -> Result<Option<AccessToken>, TokenError> {
        let stale = |row: &OAuthRow, tokens: &TokenSet| {
            tokens.access_token == used && !recently_refreshed(row, now_ms())
        };
        let token = self.refresh(name, &stale, &|| {}).await?;
        if token.token.as_str() == used {
            tracing::info!(
                oauth = %name,
                "a server refused an access token obtained less than {} s ago; not refreshing it again yet",
                UNAUTHORIZED_GAP.as_secs()
            );
            return Ok(None);
        }
        Ok(Some(token))
    }

    /// `oauth test`: refreshes now, or reports the refresh another process
    /// finished meanwhile. `on_wait` runs once if that process is found
    /// mid-refresh.
    pub async fn refresh_now(
        &self,
        name: &str,
        on_wait: &(dyn Fn() + Sync),
    ) -> Result<AccessToken, TokenError> {
        let started = now_ms();
        self.refresh(name, &|row, _| row.refreshed_ms <= started, on_wait)
            .await
    }

    async fn refresh(
        &self,
        name: &str,
        stale: &(dyn Fn(&OAuthRow, &TokenSet) -> bool + Sync),
        on_wait: &(dyn Fn() + Sync),
    ) -> Result<AccessToken, TokenError> {
        let gate = lock(&self.gates)
            .entry(name.to_string())
            .or_default()
            .clone();
        let _one_here = gate.lock().await;
        let give_up = Instant::now() + LEASE + TOKEN_TIMEOUT;
        let mut waited = false;
        loop {
            let row = self.row(name).await?;
            if row.status == "reauthorize" {
                return Err(TokenError::Reauthorize(name.into()));
            }
            let (tokens, key_version) = self.tokens(name).await?;
            if !stale(&row, &tokens) {
                return Ok(AccessToken {
                    token: Zeroizing::new(tokens.access_token.clone()),
                    expires_ms: row.expires_ms,
                    refreshed_here: false,
                });
            }
            let now = now_ms();
            let holder = uuid::Uuid::new_v4().to_string();
            let leased = self
                .store
                .oauth_lease(name, &holder, now, now + LEASE.as_millis() as i64)
                .await
                .map_err(|error| self.unavailable(name, error))?;
            if leased {
                let lease = Lease { name, holder };
                match self
                    .refresh_leased(&lease, &row, tokens, key_version)
                    .await?
                {
                    Some(token) => return Ok(token),
                    // Another refresh took the lease over: its result is
                    // read on the next turn.
                    None => continue,
                }
            }
            if !waited {
                waited = true;
                tracing::info!(oauth = %name, "another process is refreshing this token; waiting for it");
                on_wait();
            }
            if Instant::now() > give_up {
                return Err(TokenError::Unavailable {
                    name: name.into(),
                    reason: "another process's refresh did not finish".into(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Asks the provider for a new access token, holding the lease; `None`
    /// when the lease was taken over meanwhile (nothing was saved).
    async fn refresh_leased(
        &self,
        lease: &Lease<'_>,
        row: &OAuthRow,
        tokens: TokenSet,
        key_version: i32,
    ) -> Result<Option<AccessToken>, TokenError> {
        let name = lease.name;
        let started = Instant::now();
        let Some(refresh_token) = tokens.refresh_token.clone().map(Zeroizing::new) else {
            let detail =
                "the provider gave no refresh token, so the access token cannot be renewed";
            return self.refused(lease, detail, started).await;
        };
        let Ok(token_url) = TokenUrl::new(row.token_url.clone()) else {
            let reason = format!("the token URL `{}` is not valid", row.token_url);
            self.release(lease, "ok", Some(&reason)).await;
            return Err(TokenError::Unavailable {
                name: name.into(),
                reason,
            });
        };
        let mut client = BasicClient::new(ClientId::new(row.client_id.clone()))
            .set_token_uri(token_url)
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = &tokens.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        let answer = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
            .request_async(&self.http)
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(RequestTokenError::ServerResponse(refusal))
                if matches!(
                    refusal.error(),
                    BasicErrorResponseType::InvalidGrant
                        | BasicErrorResponseType::InvalidClient
                        | BasicErrorResponseType::UnauthorizedClient
                ) =>
            {
                let detail = match refusal.error_description() {
                    Some(description) => format!("{}: {}", refusal.error(), clip(description)),
                    None => refusal.error().to_string(),
                };
                return self.refused(lease, &detail, started).await;
            }
            Err(error) => {
                let reason = describe(&error);
                self.release(lease, "ok", Some(&reason)).await;
                self.audit(
                    name,
                    "failed",
                    Some(reason.clone()),
                    started,
                    serde_json::json!({}),
                );
                tracing::warn!(oauth = %name, error = %reason, "OAuth refresh failed");
                return Err(TokenError::Unavailable {
                    name: name.into(),
                    reason,
                });
            }
        };
        let refreshed_ms = now_ms();
        let expires_ms = response
            .expires_in()
            .map(|life| refreshed_ms + life.as_millis() as i64);
        let rotated = response.refresh_token().is_some();
        let renewed = TokenSet {
            client_secret: tokens.client_secret.clone(),
            access_token: response.access_token().secret().clone(),
            refresh_token: response
                .refresh_token()
                .map(|token| token.secret().clone())
                .or_else(|| tokens.refresh_token.clone()),
        };
        let saved = match renewed.seal(&self.vault, name, key_version) {
            Ok(sealed) => self
                .store
                .oauth_refreshed(name, &lease.holder, &sealed, expires_ms, refreshed_ms)
                .await
                .map_err(anyhow::Error::from),
            Err(error) => Err(error),
        };
        match saved {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    oauth = %name,
                    rotated,
                    "an OAuth refresh outlived its lease; the newer token of the refresh that took over is kept"
                );
                self.audit(
                    name,
                    "superseded",
                    Some("the refresh outlived its lease; its tokens were not saved".into()),
                    started,
                    serde_json::json!({ "rotated_refresh_token": rotated }),
                );
                return Ok(None);
            }
            Err(error) => {
                // The provider may have rotated the refresh token we could
                // not save: say so loudly, the next refresh may need `oauth add`.
                tracing::error!(oauth = %name, %error, rotated, "OAuth refresh could not be saved");
                self.release(lease, "ok", Some("a refreshed token could not be saved"))
                    .await;
                return Err(self.unavailable(name, error));
            }
        }
        self.audit(
            name,
            "ok",
            None,
            started,
            serde_json::json!({
                "rotated_refresh_token": rotated,
                "expires_in_s": expires_ms.map(|at| (at - refreshed_ms) / 1000),
            }),
        );
        tracing::info!(oauth = %name, rotated, "OAuth access token refreshed");
        Ok(Some(AccessToken {
            token: Zeroizing::new(renewed.access_token.clone()),
            expires_ms,
            refreshed_here: true,
        }))
    }

    /// The provider refused the grant: the credential needs `oauth add`
    /// again; the admin chat hears how. Unless the lease was taken over
    /// meanwhile (`None`): then the refusal is most likely of a refresh
    /// token the refresh that took over has already rotated.
    async fn refused(
        &self,
        lease: &Lease<'_>,
        detail: &str,
        started: Instant,
    ) -> Result<Option<AccessToken>, TokenError> {
        let name = lease.name;
        if self.release(lease, "reauthorize", Some(detail)).await == LeaseEnd::TakenOver {
            tracing::warn!(
                oauth = %name,
                "an OAuth refresh that outlived its lease was refused; the refresh that took over decides"
            );
            return Ok(None);
        }
        self.audit(
            name,
            "reauthorize",
            Some(detail.to_string()),
            started,
            serde_json::json!({}),
        );
        self.alerter.alert(
            &format!("oauth:{name}"),
            format!(
                "OAuth `{name}`: the provider refused to renew access ({detail}). \
                 Plugins using it fail until you authorize again: wasmbot oauth add {name}"
            ),
        );
        Err(TokenError::Reauthorize(name.into()))
    }

    /// Releases the lease with the refresh's outcome, unless it was taken
    /// over (then the outcome of the refresh that took over stands).
    async fn release(&self, lease: &Lease<'_>, status: &str, detail: Option<&str>) -> LeaseEnd {
        let name = lease.name;
        match self
            .store
            .oauth_release(name, &lease.holder, status, detail)
            .await
        {
            Ok(true) => LeaseEnd::Released,
            Ok(false) => LeaseEnd::TakenOver,
            Err(error) => {
                // The lease runs out by itself.
                tracing::warn!(oauth = %name, %error, "cannot release the OAuth refresh lease");
                LeaseEnd::Unknown
            }
        }
    }

    async fn row(&self, name: &str) -> Result<OAuthRow, TokenError> {
        match self.store.oauth_get(name).await {
            Ok(Some(row)) => Ok(row),
            Ok(None) => Err(TokenError::Unknown(name.into())),
            Err(error) => Err(self.unavailable(name, error)),
        }
    }

    /// The credential's tokens, and the key version they are encrypted
    /// with (a refresh writes them back with the same).
    async fn tokens(&self, name: &str) -> Result<(TokenSet, i32), TokenError> {
        let stored = match self.store.get_credential(&tokens_credential(name)).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return Err(TokenError::Reauthorize(name.into())),
            Err(error) => return Err(self.unavailable(name, error)),
        };
        let tokens =
            TokenSet::open(&self.vault, &stored).map_err(|reason| TokenError::Unavailable {
                name: name.into(),
                reason,
            })?;
        Ok((tokens, stored.key_version))
    }

    fn unavailable(&self, name: &str, error: impl std::fmt::Display) -> TokenError {
        tracing::warn!(oauth = %name, %error, "OAuth token store unavailable");
        TokenError::Unavailable {
            name: name.into(),
            reason: "the database is not available".into(),
        }
    }

    fn audit(
        &self,
        name: &str,
        status: &str,
        error: Option<String>,
        started: Instant,
        metadata: serde_json::Value,
    ) {
        if let Some(writer) = &self.audit {
            let mut entry = AuditEntry::new("oauth_refresh", status);
            entry.error = error;
            entry.duration_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            let mut metadata = metadata;
            metadata["credential"] = serde_json::json!(name);
            entry.metadata = sqlx::types::Json(metadata);
            writer.record(entry);
        }
    }
}

/// The client that speaks to token endpoints: no redirects (a token
/// request is never sent on elsewhere), bounded in time.
pub fn token_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TOKEN_TIMEOUT)
        .build()?)
}

/// A failed token request in one line, without the response body (which
/// could hold a token).
pub fn describe<E, T>(error: &RequestTokenError<E, oauth2::StandardErrorResponse<T>>) -> String
where
    E: std::error::Error,
    T: oauth2::ErrorResponseType + std::fmt::Display,
{
    match error {
        RequestTokenError::ServerResponse(refusal) => match refusal.error_description() {
            Some(description) => format!(
                "the provider answered {}: {}",
                refusal.error(),
                clip(description)
            ),
            None => format!("the provider answered {}", refusal.error()),
        },
        RequestTokenError::Request(error) => {
            // The reason (a timeout, a refused connection) is in the sources.
            let mut text = format!("the token endpoint cannot be reached: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
        RequestTokenError::Parse(_, _) => {
            "the token endpoint's answer is not a token response".into()
        }
        RequestTokenError::Other(text) => clip(text),
    }
}

fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}
