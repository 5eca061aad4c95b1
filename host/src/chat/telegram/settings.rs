//! The Telegram settings: `TELEGRAM_*` and `WEBHOOK_URL`, validated with the
//! rest of the configuration. The token is never echoed in an error.

use teloxide::types::UserId;
use url::Url;

use std::net::SocketAddr;
use std::time::Duration;

use super::instance::instance_id;
use crate::env::{ConfigError, SecretString, http_url, parse_number, socket_addr};

pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// `INBOX_LEASE_SECS` when unset.
pub const DEFAULT_INBOX_LEASE_SECS: u64 = 30;

/// The routes the ops server answers itself; a webhook cannot take them.
pub const OPS_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

#[derive(Debug, Clone)]
pub struct TelegramSettings {
    /// `TELEGRAM_BOT_TOKEN`: required by `wasmbot run` only.
    pub bot_token: Option<SecretString>,
    /// `TELEGRAM_API_URL`: another Bot API server (self-hosted, or an emulator).
    pub api_url: Url,
    /// `TELEGRAM_ADMIN_CHAT_ID`: where operational alerts go.
    pub admin_chat_id: Option<i64>,
    /// `TELEGRAM_ALLOWED_USERS`: who may talk to the bot; `None` lets no one
    /// unless `allow_everyone`.
    pub allowed_users: Option<Vec<UserId>>,
    /// `TELEGRAM_ALLOW_EVERYONE=true`: the operator opened the bot on purpose.
    pub allow_everyone: bool,
    /// `INBOX_LEASE_SECS`: how long an update being handled stays claimed
    /// without a renewal; after a crash, its update is handled again this
    /// much later.
    pub inbox_lease: Duration,
    /// `INSTANCE_ID` (default: the host name): names this process on the
    /// inbox leases across its restarts; unique per replica.
    pub instance_id: String,
    /// `WEBHOOK_URL`: webhook mode when set, long polling otherwise.
    pub webhook_url: Option<Url>,
    /// `WEBHOOK_ADDR`: a listener of its own for the webhook alone, so only
    /// it need be published; unset, the webhook shares `HTTP_ADDR`.
    pub webhook_addr: Option<SocketAddr>,
}

impl TelegramSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let bot_token = get("TELEGRAM_BOT_TOKEN")
            .map(|token| token.trim().to_string())
            .map(|token| {
                let (id, secret) = token.split_once(':').unwrap_or(("", ""));
                let well_formed = !id.is_empty()
                    && id.bytes().all(|b| b.is_ascii_digit())
                    && !secret.is_empty()
                    && secret
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if well_formed {
                    Ok(SecretString::new(token))
                } else {
                    Err(ConfigError::new(
                        "TELEGRAM_BOT_TOKEN",
                        "expected the token @BotFather gave you, shaped like 123456789:AAE…",
                    ))
                }
            })
            .transpose()?;
        let api_url = http_url(
            "TELEGRAM_API_URL",
            &get("TELEGRAM_API_URL").unwrap_or_else(|| DEFAULT_API_URL.into()),
        )?;
        let admin_chat_id = get("TELEGRAM_ADMIN_CHAT_ID")
            .map(|value| {
                value.trim().parse::<i64>().map_err(|_| {
                    ConfigError::new(
                        "TELEGRAM_ADMIN_CHAT_ID",
                        format!("expected a chat id (a whole number, negative for groups), got {value:?}"),
                    )
                })
            })
            .transpose()?;
        let allowed_users = get("TELEGRAM_ALLOWED_USERS")
            .map(|value| parse_user_ids(&value))
            .transpose()?;
        let allow_everyone = match get("TELEGRAM_ALLOW_EVERYONE").as_deref().map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    "TELEGRAM_ALLOW_EVERYONE",
                    format!("expected true or false, got {other:?}"),
                ));
            }
        };
        let webhook_url = get("WEBHOOK_URL")
            .map(|value| webhook_url(&value))
            .transpose()?;
        let webhook_addr = get("WEBHOOK_ADDR")
            .map(|value| socket_addr("WEBHOOK_ADDR", &value, "0.0.0.0:8443"))
            .transpose()?;
        let inbox_lease = Duration::from_secs(parse_number(
            "INBOX_LEASE_SECS",
            get("INBOX_LEASE_SECS"),
            DEFAULT_INBOX_LEASE_SECS,
            1..=3600,
            "seconds",
        )?);
        // Every serving process binds HTTP_ADDR (8080 unless set): its port
        // tells replicas on one host apart. A bad value is reported by the
        // app's own reading of HTTP_ADDR.
        let http_port = get("HTTP_ADDR")
            .and_then(|addr| addr.trim().parse::<std::net::SocketAddr>().ok())
            .map_or(crate::infra::http::DEFAULT_HTTP_PORT, |addr| addr.port());
        let instance_id = instance_id(get("INSTANCE_ID"), http_port)?;
        Ok(Self {
            bot_token,
            api_url,
            admin_chat_id,
            allowed_users,
            allow_everyone,
            webhook_url,
            webhook_addr,
            inbox_lease,
            instance_id,
        })
    }

    /// `wasmbot run` is closed by default: an empty allow-list is a mistake
    /// unless the operator said the bot is for everyone.
    pub fn check_access_configured(&self) -> Result<(), ConfigError> {
        match (&self.allowed_users, self.allow_everyone) {
            (Some(users), _) if !users.is_empty() => Ok(()),
            (_, true) => Ok(()),
            _ => Err(ConfigError::new(
                "TELEGRAM_ALLOWED_USERS",
                "not set; list the Telegram user ids who may use the bot (e.g. 12345,67890), or set TELEGRAM_ALLOW_EVERYONE=true to open it to anyone on purpose",
            )),
        }
    }
}

/// `WEBHOOK_URL`: an http(s) URL whose path the ops server does not own.
fn webhook_url(value: &str) -> Result<Url, ConfigError> {
    let url = http_url("WEBHOOK_URL", value)?;
    let path = url.path();
    if OPS_PATHS.contains(&path.trim_end_matches('/')) {
        return Err(ConfigError::new(
            "WEBHOOK_URL",
            format!(
                "its path {path} is one of the operator routes ({}); choose another, e.g. /telegram/webhook",
                OPS_PATHS.join(", ")
            ),
        ));
    }
    Ok(url)
}

fn parse_user_ids(value: &str) -> Result<Vec<UserId>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<u64>().map(UserId).map_err(|_| {
                ConfigError::new(
                    "TELEGRAM_ALLOWED_USERS",
                    format!(
                        "expected comma-separated numeric user ids (e.g. 12345,67890), got {part:?}"
                    ),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<TelegramSettings, ConfigError> {
        TelegramSettings::from_lookup(crate::env::lookup_in(vars))
    }

    #[test]
    fn defaults_need_nothing() {
        let s = settings(&[]).unwrap();
        assert!(s.bot_token.is_none() && s.allowed_users.is_none() && s.webhook_url.is_none());
        assert_eq!(s.api_url.as_str(), "https://api.telegram.org/");
    }

    #[test]
    fn values_are_parsed() {
        let s = settings(&[
            ("TELEGRAM_BOT_TOKEN", "123:abc-DEF_9"),
            ("TELEGRAM_ALLOWED_USERS", " 1, 22 ,333,"),
            ("TELEGRAM_ADMIN_CHAT_ID", "-100123"),
            ("WEBHOOK_URL", "https://bot.example.com/telegram"),
        ])
        .unwrap();
        assert_eq!(s.bot_token.unwrap().expose(), "123:abc-DEF_9");
        assert_eq!(
            s.allowed_users.unwrap(),
            vec![UserId(1), UserId(22), UserId(333)]
        );
        assert_eq!(s.admin_chat_id, Some(-100123));
        assert_eq!(s.webhook_url.unwrap().path(), "/telegram");
    }

    #[test]
    fn bad_values_name_the_variable_and_never_echo_the_token() {
        let token = settings(&[("TELEGRAM_BOT_TOKEN", "hunter2 secret")]).unwrap_err();
        assert_eq!(token.variable, "TELEGRAM_BOT_TOKEN");
        assert!(!token.to_string().contains("hunter2"));
        let users = settings(&[("TELEGRAM_ALLOWED_USERS", "12,bob")]).unwrap_err();
        assert_eq!(
            users.to_string(),
            "TELEGRAM_ALLOWED_USERS: expected comma-separated numeric user ids (e.g. 12345,67890), got \"bob\""
        );
        assert_eq!(
            settings(&[("TELEGRAM_ADMIN_CHAT_ID", "me")])
                .unwrap_err()
                .variable,
            "TELEGRAM_ADMIN_CHAT_ID"
        );
        assert_eq!(
            settings(&[("WEBHOOK_URL", "ftp://x")])
                .unwrap_err()
                .variable,
            "WEBHOOK_URL"
        );
        assert_eq!(
            settings(&[("TELEGRAM_API_URL", "localhost:8081")])
                .unwrap_err()
                .variable,
            "TELEGRAM_API_URL"
        );
        assert_eq!(
            settings(&[("TELEGRAM_ALLOW_EVERYONE", "yes")])
                .unwrap_err()
                .variable,
            "TELEGRAM_ALLOW_EVERYONE"
        );
        assert_eq!(
            settings(&[("INBOX_LEASE_SECS", "0")]).unwrap_err().variable,
            "INBOX_LEASE_SECS"
        );
    }

    #[test]
    fn a_webhook_path_on_an_operator_route_is_refused() {
        for path in ["/metrics", "/readyz/", "/healthz"] {
            let error = settings(&[("WEBHOOK_URL", &format!("https://bot.example.com{path}"))])
                .unwrap_err();
            assert_eq!(error.variable, "WEBHOOK_URL");
            assert!(error.to_string().contains("operator routes"), "{error}");
        }
        assert!(settings(&[("WEBHOOK_URL", "https://bot.example.com/metrics-hook")]).is_ok());
    }

    #[test]
    fn the_bot_is_closed_unless_users_are_listed_or_everyone_is_allowed() {
        let closed = settings(&[])
            .unwrap()
            .check_access_configured()
            .unwrap_err();
        assert_eq!(closed.variable, "TELEGRAM_ALLOWED_USERS");
        assert!(closed.to_string().contains("TELEGRAM_ALLOW_EVERYONE=true"));
        let empty = settings(&[("TELEGRAM_ALLOWED_USERS", " , ")]).unwrap();
        assert!(empty.check_access_configured().is_err());
        let listed = settings(&[("TELEGRAM_ALLOWED_USERS", "1")]).unwrap();
        assert!(listed.check_access_configured().is_ok());
        let open = settings(&[("TELEGRAM_ALLOW_EVERYONE", "true")]).unwrap();
        assert!(open.check_access_configured().is_ok());
    }
}
