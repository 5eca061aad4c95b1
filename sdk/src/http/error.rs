//! What can go wrong with a request, as one sentence a user can read: the
//! host's refusals (`wasi:http` error codes) name the host they concern,
//! and a kind lets a plugin tell them apart.

use std::fmt;
use std::net::IpAddr;

use wasip2::http::types::ErrorCode;

use super::url::Url;

/// How the host marks a refusal for a revoked OAuth grant (kept in step
/// with the host's `capabilities/http/secret_headers.rs`).
const REAUTHORIZE_MARK: &str = "[oauth:";
/// How the host marks a credential it refused to send to a host.
const DENIED_MARK: &str = "[denied] ";

/// How much of an error response's body [`HttpError`] quotes.
const BODY_EXCERPT_BYTES: usize = 200;

/// What kind of failure an [`HttpError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The URL is not in the plugin's `http` allow-list.
    Denied,
    /// The host resolves to a private, loopback, link-local or metadata
    /// address the operator did not allow.
    Prohibited,
    /// The response (or the request) is larger than the plugin's limit.
    TooLarge,
    /// The server did not answer in time.
    Timeout,
    /// The server could not be found or connected to (DNS, refused, TLS).
    Unreachable,
    /// The server answered with this status ([`super::Response::error_for_status`]).
    Status(u16),
    /// The request itself is malformed: the URL, a header, the body.
    Invalid,
    /// The OAuth credential it names was revoked or has expired: the bot's
    /// operator must authorize again (the message says how).
    Authorization,
    /// Anything else; the message says what.
    Other,
}

/// A failed request: a [`kind`](HttpError::kind) and a one-line sentence
/// for the user (its `Display`), e.g. "`evil.example` is not in this
/// plugin's `http` allow-list". It turns into a `String`, so `?` works in a
/// handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    kind: ErrorKind,
    message: String,
}

impl HttpError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A sentence for a user or a log line.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }

    /// A non-success status, quoting the start of the body: APIs put the
    /// reason there.
    pub(crate) fn status(status: u16, host: &str, body: &[u8]) -> Self {
        let mut message = format!("`{host}` answered {status}");
        if let Some(reason) = reason_phrase(status) {
            message.push(' ');
            message.push_str(reason);
        }
        let excerpt = excerpt(body);
        if !excerpt.is_empty() {
            message.push_str(": ");
            message.push_str(&excerpt);
        }
        Self::new(ErrorKind::Status(status), message)
    }

    /// The host's (or the network's) refusal of a request to `url`.
    pub(crate) fn from_code(code: ErrorCode, url: &Url) -> Self {
        use ErrorKind::*;
        let host = url.host();
        let (kind, message) = match code {
            ErrorCode::HttpRequestDenied => (
                Denied,
                format!(
                    "`{}` is not in this plugin's `http` allow-list",
                    url.authority
                ),
            ),
            ErrorCode::DestinationIpProhibited => (Prohibited, prohibited(host)),
            ErrorCode::HttpResponseBodySize(Some(limit)) => (
                TooLarge,
                format!(
                    "the response from `{host}` was larger than the plugin's limit of {limit} bytes"
                ),
            ),
            ErrorCode::HttpResponseBodySize(None) => (
                TooLarge,
                format!("the response from `{host}` was too large"),
            ),
            ErrorCode::HttpResponseHeaderSectionSize(_) | ErrorCode::HttpResponseHeaderSize(_) => (
                TooLarge,
                format!("the response headers from `{host}` were too large"),
            ),
            ErrorCode::HttpResponseTrailerSectionSize(_)
            | ErrorCode::HttpResponseTrailerSize(_) => (
                TooLarge,
                format!("the response trailers from `{host}` were too large"),
            ),
            ErrorCode::HttpRequestBodySize(Some(limit)) => (
                TooLarge,
                format!("the request to `{host}` was larger than the limit of {limit} bytes"),
            ),
            ErrorCode::HttpRequestBodySize(None) => (
                TooLarge,
                format!("the request body for `{host}` was too large"),
            ),
            ErrorCode::HttpResponseTimeout
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout => {
                (Timeout, format!("`{host}` did not answer in time"))
            }
            ErrorCode::DnsTimeout => (Timeout, format!("looking up `{host}` took too long")),
            ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => {
                (Unreachable, format!("`{host}` could not be found"))
            }
            ErrorCode::DestinationUnavailable | ErrorCode::DestinationIpUnroutable => {
                (Unreachable, format!("`{host}` cannot be reached"))
            }
            ErrorCode::ConnectionRefused => {
                (Unreachable, format!("`{host}` refused the connection"))
            }
            ErrorCode::ConnectionTerminated => (
                Unreachable,
                format!("the connection to `{host}` closed unexpectedly"),
            ),
            ErrorCode::ConnectionLimitReached => (
                Unreachable,
                format!("too many connections to `{host}` are open; try again later"),
            ),
            ErrorCode::TlsCertificateError => (
                Unreachable,
                format!("`{host}` presented a certificate that is not trusted"),
            ),
            ErrorCode::TlsProtocolError | ErrorCode::TlsAlertReceived(_) => (
                Unreachable,
                format!("the secure connection to `{host}` failed"),
            ),
            ErrorCode::HttpRequestUriInvalid => {
                (Invalid, format!("the URL for `{host}` is not valid"))
            }
            ErrorCode::HttpRequestUriTooLong => {
                (Invalid, format!("the URL for `{host}` is too long"))
            }
            ErrorCode::HttpRequestMethodInvalid => {
                (Invalid, "the request method is not valid".to_string())
            }
            ErrorCode::HttpRequestLengthRequired => (
                Invalid,
                format!("`{host}` wants the request's length up front"),
            ),
            ErrorCode::HttpRequestHeaderSectionSize(_)
            | ErrorCode::HttpRequestHeaderSize(_)
            | ErrorCode::HttpRequestTrailerSectionSize(_)
            | ErrorCode::HttpRequestTrailerSize(_) => (
                Invalid,
                format!("the request's headers are too large for `{host}`"),
            ),
            ErrorCode::HttpResponseIncomplete => {
                (Other, format!("the response from `{host}` was cut off"))
            }
            ErrorCode::HttpResponseTransferCoding(_) | ErrorCode::HttpResponseContentCoding(_) => (
                Other,
                format!("`{host}` sent a response in an encoding that cannot be read"),
            ),
            ErrorCode::HttpProtocolError | ErrorCode::HttpUpgradeFailed => {
                (Other, format!("`{host}` sent an invalid HTTP response"))
            }
            ErrorCode::LoopDetected => (Other, format!("the request to `{host}` looped")),
            ErrorCode::ConfigurationError => (
                Other,
                "this host's HTTP client is misconfigured".to_string(),
            ),
            // The host marks a revoked OAuth grant `[oauth:NAME] sentence`.
            ErrorCode::InternalError(Some(text)) if text.starts_with(REAUTHORIZE_MARK) => {
                let sentence = text.split_once("] ").map_or(text.as_str(), |(_, s)| s);
                (Authorization, sentence.to_string())
            }
            // A credential refused for this host: `[denied] sentence`.
            ErrorCode::InternalError(Some(text)) if text.starts_with(DENIED_MARK) => {
                (Denied, text[DENIED_MARK.len()..].to_string())
            }
            // The host's own refusals (an ungranted secret, the request
            // budget...) say what they are.
            ErrorCode::InternalError(Some(text)) if !text.trim().is_empty() => (Other, text),
            ErrorCode::InternalError(_) => (Other, format!("the request to `{host}` failed")),
        };
        Self::new(kind, message)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for String {
    fn from(error: HttpError) -> Self {
        error.message
    }
}

/// An address literal is the private address; a name resolved to one.
fn prohibited(host: &str) -> String {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if literal.parse::<IpAddr>().is_ok() {
        format!("`{literal}` is a private address this host does not allow")
    } else {
        format!("`{host}` resolves to a private address this host does not allow")
    }
}

/// The first [`BODY_EXCERPT_BYTES`] of `body` as one line of text.
fn excerpt(body: &[u8]) -> String {
    let head = &body[..body.len().min(BODY_EXCERPT_BYTES)];
    let text = String::from_utf8_lossy(head);
    // A cut through a multi-byte character shows as U+FFFD at the end.
    let text = text.trim_end_matches('\u{FFFD}');
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > BODY_EXCERPT_BYTES && !line.is_empty() {
        line.push('…');
    }
    line
}

fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: ErrorCode, url: &str) -> HttpError {
        HttpError::from_code(code, &Url::parse(url).expect(url))
    }

    #[test]
    fn names_the_host_in_the_hosts_refusals() {
        let denied = error(ErrorCode::HttpRequestDenied, "https://evil.example/x");
        assert_eq!(denied.kind(), ErrorKind::Denied);
        assert_eq!(
            denied.to_string(),
            "`evil.example` is not in this plugin's `http` allow-list"
        );
        // The port is part of what the allow-list checks.
        let port = error(ErrorCode::HttpRequestDenied, "https://api.example:8443/");
        assert!(port.message().starts_with("`api.example:8443` "));

        let private = error(ErrorCode::DestinationIpProhibited, "http://10.0.0.1:8080/");
        assert_eq!(private.kind(), ErrorKind::Prohibited);
        assert_eq!(
            private.message(),
            "`10.0.0.1` is a private address this host does not allow"
        );
        let v6 = error(ErrorCode::DestinationIpProhibited, "http://[::1]/");
        assert_eq!(
            v6.message(),
            "`::1` is a private address this host does not allow"
        );
        let named = error(ErrorCode::DestinationIpProhibited, "http://intranet.corp/");
        assert_eq!(
            named.message(),
            "`intranet.corp` resolves to a private address this host does not allow"
        );

        let large = error(
            ErrorCode::HttpResponseBodySize(Some(1024)),
            "https://x.org/",
        );
        assert_eq!(large.kind(), ErrorKind::TooLarge);
        assert_eq!(
            large.message(),
            "the response from `x.org` was larger than the plugin's limit of 1024 bytes"
        );

        for slow in [
            ErrorCode::HttpResponseTimeout,
            ErrorCode::ConnectionReadTimeout,
            ErrorCode::ConnectionTimeout,
        ] {
            let slow = error(slow, "https://x.org/");
            assert_eq!(slow.kind(), ErrorKind::Timeout);
            assert_eq!(slow.message(), "`x.org` did not answer in time");
        }

        let refused = error(ErrorCode::ConnectionRefused, "http://127.0.0.1:9/");
        assert_eq!(refused.kind(), ErrorKind::Unreachable);
        assert_eq!(refused.message(), "`127.0.0.1` refused the connection");
    }

    #[test]
    fn passes_the_hosts_own_text_through() {
        let text = "secret `token` is not granted to this plugin";
        let e = error(
            ErrorCode::InternalError(Some(text.into())),
            "https://x.org/",
        );
        assert_eq!(e.kind(), ErrorKind::Other);
        assert_eq!(e.message(), text);
        let revoked = error(
            ErrorCode::InternalError(Some(
                "[oauth:google] the `google` authorization was revoked".into(),
            )),
            "https://x.org/",
        );
        assert_eq!(revoked.kind(), ErrorKind::Authorization);
        assert_eq!(revoked.message(), "the `google` authorization was revoked");
        let unbound = error(
            ErrorCode::InternalError(Some(
                "[denied] secret `github` is not sent to evil.org: it is for https://api.github.com"
                    .into(),
            )),
            "https://evil.org/",
        );
        assert_eq!(unbound.kind(), ErrorKind::Denied);
        assert!(unbound.message().starts_with("secret `github` is not sent"));
        let bare = error(ErrorCode::InternalError(None), "https://x.org/");
        assert_eq!(bare.message(), "the request to `x.org` failed");
        assert_eq!(String::from(bare), "the request to `x.org` failed");
    }

    #[test]
    fn quotes_the_start_of_an_error_body_on_one_line() {
        let e = HttpError::status(404, "api.x.org", b"{\"message\":\n  \"Not Found\"}");
        assert_eq!(e.kind(), ErrorKind::Status(404));
        assert_eq!(
            e.message(),
            "`api.x.org` answered 404 Not Found: {\"message\": \"Not Found\"}"
        );
        assert_eq!(
            HttpError::status(599, "h", b"").message(),
            "`h` answered 599"
        );
        let long = "é".repeat(150); // 300 bytes; byte 200 is inside no character
        let e = HttpError::status(500, "h", long.as_bytes());
        assert!(e.message().ends_with("é…"), "{}", e.message());
        let odd = format!("a{}", "é".repeat(150)); // byte 200 splits an é
        let e = HttpError::status(500, "h", odd.as_bytes());
        assert!(e.message().ends_with("é…"), "{}", e.message());
        assert!(!e.message().contains('\u{FFFD}'));
    }
}
