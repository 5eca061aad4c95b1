//! URLs, as far as an HTTP client needs them: split into the scheme,
//! authority and path-with-query `wasi:http` asks for, joined with a
//! redirect's `Location`, and percent-encoded query strings. Deliberately
//! small (no IDNA, no user info); the host parses the URL again before it
//! checks it against the allow-list.

use std::fmt;

/// An absolute `http` or `https` URL without fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// `http` or `https`, lower case.
    pub scheme: String,
    /// `host[:port]`, the host in lower case.
    pub authority: String,
    /// Starts with `/`; the query, when there is one, included.
    pub path_and_query: String,
}

impl Url {
    /// Parses an absolute URL; the error is a sentence naming it.
    pub fn parse(text: &str) -> Result<Url, String> {
        let text = text.trim();
        let invalid = |why: &str| format!("`{text}` is not a valid URL: {why}");
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(invalid("it needs to start with http:// or https://"));
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "`{text}` is not an http or https URL; only those can be fetched"
            ));
        }
        let rest = strip_fragment(rest);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(end);
        if authority.contains('@') {
            return Err(invalid(
                "user names and passwords in URLs are not supported (send a header instead)",
            ));
        }
        let authority = authority.to_ascii_lowercase();
        if !valid_authority(&authority) {
            return Err(invalid("its host is missing or malformed"));
        }
        let path_and_query = match path_and_query {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{}", encode_loose(p)),
            p => encode_loose(p),
        };
        Ok(Url {
            scheme,
            authority,
            path_and_query,
        })
    }

    /// The host without the port (an IPv6 address keeps its brackets).
    pub fn host(&self) -> &str {
        split_port(&self.authority).0
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        match split_port(&self.authority).1.and_then(|p| p.parse().ok()) {
            Some(port) => port,
            None if self.scheme == "https" => 443,
            None => 80,
        }
    }

    /// Whether `other` has the same scheme, host and port: credentials may
    /// follow a redirect only within one origin.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme && self.host() == other.host() && self.port() == other.port()
    }

    /// `reference` (a redirect's `Location`) resolved against this URL, as
    /// RFC 3986 section 5 does: absolute, scheme-relative (`//host/p`),
    /// absolute-path (`/p`), query-only (`?q`) or relative (`p`, `../p`).
    pub fn join(&self, reference: &str) -> Result<Url, String> {
        let reference = strip_fragment(reference.trim());
        if has_scheme(reference) {
            return Url::parse(reference);
        }
        if reference.starts_with("//") {
            return Url::parse(&format!("{}:{reference}", self.scheme));
        }
        let (base_path, _) = split_query(&self.path_and_query);
        let path_and_query = if reference.is_empty() {
            self.path_and_query.clone()
        } else if reference.starts_with('?') {
            format!("{base_path}{reference}")
        } else {
            let (path, query) = split_query(reference);
            let path = if path.starts_with('/') {
                path.to_string()
            } else {
                // Relative: beside the base's last segment.
                let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
                format!("{dir}{path}")
            };
            format!("{}{query}", remove_dot_segments(&path))
        };
        Ok(Url {
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
            path_and_query: encode_loose(&path_and_query),
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme, self.authority, self.path_and_query
        )
    }
}

/// The host named in `url` (for an error message), or `url` itself when it
/// does not parse.
pub(crate) fn host_of(url: &str) -> String {
    Url::parse(url).map_or_else(|_| url.to_string(), |url| url.host().to_string())
}

/// Percent-encodes `text` for a query value or a path segment: everything
/// but the unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`.
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            push_escaped(&mut encoded, byte);
        }
    }
    encoded
}

/// `url` with `pairs` appended to its query (before any fragment), each
/// key and value percent-encoded.
pub(crate) fn with_query(url: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return url.to_string();
    }
    let (base, fragment) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let mut out = base.to_string();
    if !base.contains('?') {
        out.push('?');
    } else if !base.ends_with(['?', '&']) {
        out.push('&');
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
        .collect();
    out.push_str(&query.join("&"));
    out.push_str(fragment);
    out
}

fn push_escaped(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

/// Escapes what may not appear in a URI at all (spaces, controls,
/// non-ASCII, `"<>\^`{|}`), leaving escapes and delimiters already there:
/// a URL typed by a user ("/search?q=new york") still goes out.
fn encode_loose(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            push_escaped(&mut encoded, byte);
        }
    }
    encoded
}

fn strip_fragment(text: &str) -> &str {
    text.split_once('#').map_or(text, |(before, _)| before)
}

fn split_query(path_and_query: &str) -> (&str, &str) {
    match path_and_query.find('?') {
        Some(i) => path_and_query.split_at(i),
        None => (path_and_query, ""),
    }
}

/// Whether `reference` starts with `scheme:` (RFC 3986: a letter, then
/// letters, digits, `+`, `-`, `.`).
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `(host, port)`; the port is what follows the last `:` outside brackets.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.rfind(':').unwrap_or(authority.len())
    };
    let (host, rest) = authority.split_at(host_end);
    (host, rest.strip_prefix(':'))
}

fn valid_authority(authority: &str) -> bool {
    let (host, port) = split_port(authority);
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|ip| {
            !ip.is_empty()
                && ip
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        })
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    host_ok && port_ok
}

/// RFC 3986 section 5.2.4 on an absolute path: `.` and `..` segments go.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            other => {
                out.push(other);
                continue;
            }
        }
        // A trailing `.` or `..` still names a directory.
        if last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect(text)
    }

    #[test]
    fn splits_what_wasi_http_asks_for() {
        let u = url("HTTPS://API.Example.com:8443/v1/x?a=1#top");
        assert_eq!(u.scheme, "https");
        assert_eq!(u.authority, "api.example.com:8443");
        assert_eq!(u.path_and_query, "/v1/x?a=1");
        assert_eq!(u.host(), "api.example.com");
        assert_eq!(u.port(), 8443);
        assert_eq!(u.to_string(), "https://api.example.com:8443/v1/x?a=1");

        let bare = url("http://example.com");
        assert_eq!(bare.path_and_query, "/");
        assert_eq!(bare.port(), 80);
        assert_eq!(url("http://example.com?q=1").path_and_query, "/?q=1");
        assert_eq!(url("https://[::1]:9/").host(), "[::1]");
        assert_eq!(url("https://[::1]/").port(), 443);
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        for bad in [
            "example.com/x",
            "ftp://example.com/",
            "http:///x",
            "http://user:pw@example.com/",
            "http://exa mple.com/",
            "http://example.com:99999/",
            "http://[zz]/",
        ] {
            let error = Url::parse(bad).unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }

    #[test]
    fn escapes_what_a_uri_may_not_hold() {
        assert_eq!(
            url("http://e.com/a b?q=new york&c=é").path_and_query,
            "/a%20b?q=new%20york&c=%C3%A9"
        );
        assert_eq!(url("http://e.com/%41").path_and_query, "/%41");
    }

    #[test]
    fn joins_redirect_locations() {
        let base = url("http://a.com/b/c/d?q=1");
        let join = |r: &str| base.join(r).expect(r).to_string();
        assert_eq!(join("https://other.org/x"), "https://other.org/x");
        assert_eq!(join("//cdn.a.com/y"), "http://cdn.a.com/y");
        assert_eq!(join("/root?z=2"), "http://a.com/root?z=2");
        assert_eq!(join("?p=3"), "http://a.com/b/c/d?p=3");
        assert_eq!(join("e"), "http://a.com/b/c/e");
        assert_eq!(join("./e/"), "http://a.com/b/c/e/");
        assert_eq!(join("../e"), "http://a.com/b/e");
        assert_eq!(join("../../../../e"), "http://a.com/e");
        assert_eq!(join(".."), "http://a.com/b/");
        assert_eq!(join(""), "http://a.com/b/c/d?q=1");
        assert_eq!(join("#frag"), "http://a.com/b/c/d?q=1");
        assert_eq!(join("/a/./b/../c#x"), "http://a.com/a/c");
        assert!(base.join("ftp://x/").is_err());
        assert!(base.join("mailto:x@y").is_err());
    }

    #[test]
    fn compares_origins_with_default_ports() {
        let a = url("https://a.com/x");
        assert!(a.same_origin(&url("https://A.com:443/y")));
        assert!(!a.same_origin(&url("http://a.com/x")));
        assert!(!a.same_origin(&url("https://a.com:8443/x")));
        assert!(!a.same_origin(&url("https://b.a.com/x")));
    }

    #[test]
    fn percent_encodes_query_parts() {
        assert_eq!(percent_encode("Aa0-._~"), "Aa0-._~");
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn appends_query_pairs() {
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let two = pairs(&[("name", "São Paulo"), ("count", "1")]);
        assert_eq!(
            with_query("https://x/v1/search", &two),
            "https://x/v1/search?name=S%C3%A3o%20Paulo&count=1"
        );
        assert_eq!(
            with_query("https://x/?a=1", &two[1..]),
            "https://x/?a=1&count=1"
        );
        assert_eq!(with_query("https://x/?", &two[1..]), "https://x/?count=1");
        assert_eq!(
            with_query("https://x/p#f", &two[1..]),
            "https://x/p?count=1#f"
        );
        assert_eq!(with_query("https://x/p", &[]), "https://x/p");
    }

    #[test]
    fn names_the_host() {
        assert_eq!(host_of("https://evil.example:8443/x"), "evil.example");
        assert_eq!(host_of("not a url"), "not a url");
    }
}
