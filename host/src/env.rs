//! The bottom layer: reading settings from the environment. Every settings
//! type (beside what it configures) reads its variables with these helpers
//! and reports a bad value as a [`ConfigError`] naming the variable. This
//! module imports nothing from the rest of the host.

use std::net::SocketAddr;

use zeroize::Zeroizing;

/// A configured secret: never printed, wiped from memory when dropped.
#[derive(Clone)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(variable: &str, problem: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            problem: problem.into(),
        }
    }
}

/// An http(s) URL with a host, or an error naming the variable.
pub fn http_url(variable: &str, value: &str) -> Result<url::Url, ConfigError> {
    match url::Url::parse(value.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(ConfigError::new(
            variable,
            format!("expected an http(s) URL such as https://host/path, got {value:?}"),
        )),
    }
}

pub fn parse_number(
    variable: &str,
    value: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().parse::<u64>() {
        Ok(number) if range.contains(&number) => Ok(number),
        _ => Err(ConfigError::new(
            variable,
            format!(
                "expected a whole number of {unit} from {} to {}, got {value:?}",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// An address to listen on (`IP:PORT`), or an error naming the variable and
/// giving `example`.
pub fn socket_addr(variable: &str, value: &str, example: &str) -> Result<SocketAddr, ConfigError> {
    value.trim().parse().map_err(|_| {
        ConfigError::new(
            variable,
            format!("expected IP:PORT such as {example}, got {value:?}"),
        )
    })
}

/// Settings tests read variables from a list instead of the environment.
#[cfg(test)]
pub fn lookup_in<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    }
}
