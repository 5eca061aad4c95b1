//! The manifest's `http = [...]`: where a plugin may send requests. Each
//! entry is an origin — scheme, host (or `*.` and a domain) and optional
//! port — or `{{setting}}`, a setting's URL whose origin is allowed (its
//! path is ignored), so an operator can move a plugin to a proxy or a
//! self-hosted service without rebuilding it.

use crate::runtime::Settings;

/// Where the plugin may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    origins: Vec<Origin>,
    /// `"*"`: any host on the public internet (said loudly at load).
    anywhere: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: Host,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (not the bare domain).
    SubdomainOf(String),
}

impl AllowList {
    /// Parses the entries with the plugin's settings substituted; an error
    /// names the entry (and the variable that set it).
    pub fn parse(entries: &[String], settings: &Settings) -> Result<Self, String> {
        if entries.is_empty() {
            return Err(
                "the manifest grants `http` but lists no destination (`http = [\"https://api.example.com\"]`)"
                    .into(),
            );
        }
        let mut list = Self {
            origins: Vec::new(),
            anywhere: false,
        };
        for entry in entries {
            if entry.trim() == "*" {
                list.anywhere = true;
                continue;
            }
            let (text, origin_of) = substitute(entry, settings)?;
            let origin = parse_origin(&text).map_err(|problem| match &origin_of {
                Some(origin) => format!("`http` entry {entry:?} from {origin}: {problem}"),
                None => format!("`http` entry {entry:?}: {problem}"),
            })?;
            list.origins.push(origin);
        }
        Ok(list)
    }

    /// No destination at all (a plugin not granted `http`).
    pub fn nowhere() -> Self {
        Self {
            origins: Vec::new(),
            anywhere: false,
        }
    }

    pub fn allows_anywhere(&self) -> bool {
        self.anywhere
    }

    /// The exactly named origins alone (no `*`, no `*.domain`): where a
    /// credential listed by name alone may go.
    pub fn exact_only(&self) -> Self {
        Self {
            origins: self
                .origins
                .iter()
                .filter(|origin| matches!(origin.host, Host::Exact(_)))
                .cloned()
                .collect(),
            anywhere: false,
        }
    }

    /// Allows nothing.
    pub fn is_empty(&self) -> bool {
        !self.anywhere && self.origins.is_empty()
    }

    pub fn allows(&self, https: bool, host: &str, port: u16) -> bool {
        if self.anywhere {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.origins.iter().any(|origin| {
            origin.https == https
                && origin.port == port
                && match &origin.host {
                    Host::Exact(exact) => *exact == host,
                    Host::SubdomainOf(domain) => host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
                }
        })
    }

    /// As written back in messages: `https://api.open-meteo.com, https://*.example.com:8443`.
    pub fn describe(&self) -> String {
        if self.anywhere {
            return "anywhere public (\"*\")".into();
        }
        self.origins
            .iter()
            .map(|origin| {
                let scheme = if origin.https { "https" } else { "http" };
                let host = match &origin.host {
                    Host::Exact(host) => host.clone(),
                    Host::SubdomainOf(domain) => format!("*.{domain}"),
                };
                let default = if origin.https { 443 } else { 80 };
                if origin.port == default {
                    format!("{scheme}://{host}")
                } else {
                    format!("{scheme}://{host}:{}", origin.port)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `{{key}}` replaced by the setting's value; returns where that came from.
fn substitute(entry: &str, settings: &Settings) -> Result<(String, Option<String>), String> {
    let Some(start) = entry.find("{{") else {
        return Ok((entry.trim().to_string(), None));
    };
    let end = entry[start..]
        .find("}}")
        .map(|end| start + end)
        .ok_or_else(|| format!("`http` entry {entry:?} has an unclosed `{{{{`"))?;
    let key = entry[start + 2..end].trim();
    let value = settings.get(key).ok_or_else(|| {
        let known: Vec<&str> = settings.iter().map(|(key, _)| key).collect();
        format!(
            "`http` entry {entry:?} names no setting `{key}` (settings: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )
    })?;
    let text = format!("{}{value}{}", &entry[..start], &entry[end + 2..]);
    Ok((text.trim().to_string(), Some(settings.origin(key))))
}

fn parse_origin(text: &str) -> Result<Origin, String> {
    let (scheme, rest) = text
        .split_once("://")
        .ok_or("not a URL: write scheme://host[:port], e.g. https://api.example.com")?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        other => return Err(format!("scheme `{other}` is not http or https")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("user names and passwords do not belong in the allow-list".into());
    }
    let (host, port) = split_port(authority)?;
    let port = port.unwrap_or(if https { 443 } else { 80 });
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Err("no host".into());
    }
    let host = match host.strip_prefix("*.") {
        Some(domain) if domain.contains('.') && !domain.contains('*') => {
            Host::SubdomainOf(domain.to_string())
        }
        Some(_) => {
            return Err(
                "a wildcard must be `*.` followed by a domain with a dot (`*.example.com`)".into(),
            );
        }
        None if host.contains('*') => {
            return Err("`*` may only start a host, as `*.example.com`".into());
        }
        None => Host::Exact(host),
    };
    Ok(Origin { https, host, port })
}

/// `host:port`, `[v6]:port`, or either without the port.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed `[` in the host")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = port
        .map(|port| {
            port.parse::<u16>()
                .map_err(|_| format!("`{port}` is not a port"))
        })
        .transpose()?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::runtime::SettingOverrides;

    fn list(entries: &[&str]) -> Result<AllowList, String> {
        let declared = BTreeMap::from([(
            "api_url".to_string(),
            "http://127.0.0.1:8080/v1/".to_string(),
        )]);
        let settings = Settings::resolve("p", &declared, &SettingOverrides::new(), &[]).unwrap();
        let entries: Vec<String> = entries.iter().map(|entry| entry.to_string()).collect();
        AllowList::parse(&entries, &settings)
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let list = list(&["https://api.open-meteo.com", "https://*.example.com:8443"]).unwrap();
        assert!(list.allows(true, "api.open-meteo.com", 443));
        assert!(list.allows(true, "API.Open-Meteo.com.", 443));
        assert!(!list.allows(false, "api.open-meteo.com", 80), "scheme");
        assert!(!list.allows(true, "api.open-meteo.com", 8443), "port");
        assert!(!list.allows(true, "open-meteo.com", 443));
        assert!(!list.allows(true, "api.open-meteo.com.evil.net", 443));
        assert!(list.allows(true, "a.example.com", 8443));
        assert!(list.allows(true, "a.b.example.com", 8443));
        assert!(!list.allows(true, "example.com", 8443), "the bare domain");
        assert!(!list.allows(true, "badexample.com", 8443));
        assert_eq!(
            list.describe(),
            "https://api.open-meteo.com, https://*.example.com:8443"
        );
    }

    #[test]
    fn a_setting_gives_its_origin_and_its_path_is_ignored() {
        let list = list(&["{{api_url}}"]).unwrap();
        assert!(list.allows(false, "127.0.0.1", 8080));
        assert!(!list.allows(false, "127.0.0.1", 80));
        let error = self::list(&["{{api_ulr}}"]).unwrap_err();
        assert_eq!(
            error,
            "`http` entry \"{{api_ulr}}\" names no setting `api_ulr` (settings: api_url)"
        );
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        for (entry, reason) in [
            ("api.example.com", "not a URL"),
            ("ftp://x.org", "scheme `ftp`"),
            ("https://*", "`*` may only start a host"),
            ("https://*.com", "a wildcard must be"),
            ("https://a.*.com", "`*` may only start a host"),
            ("https://x.org:99999", "is not a port"),
            ("https://user:pw@x.org", "user names and passwords"),
        ] {
            let error = list(&[entry]).unwrap_err();
            assert!(error.contains(reason), "{entry}: {error}");
        }
        assert!(list(&[]).unwrap_err().contains("lists no destination"));
        let anywhere = list(&["*"]).unwrap();
        assert!(anywhere.allows_anywhere() && anywhere.allows(true, "any.where", 1));
    }
}
