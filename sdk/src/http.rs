//! Outbound HTTP (needs `capabilities = ["http"]` and the destinations
//! under `http = [...]` in the manifest): a small blocking client over
//! `wasi:http`. The host checks every request against the allow-list,
//! refuses private addresses, caps the response size and the time taken,
//! and fills in secrets: a header value with `{{secret:NAME}}` (NAME
//! listed under `secrets`) reaches the server with the credential in its
//! place, which the plugin never sees. `{{oauth:NAME}}` (NAME listed under
//! `oauth`) becomes `Bearer <access token>` of an OAuth credential the
//! operator authorized (`wasmbot oauth add NAME`); the host refreshes the
//! token when due, and when the provider revoked it the request fails with
//! [`ErrorKind::Authorization`].
//!
//! ```ignore
//! #[derive(serde::Deserialize)]
//! struct Repo { stargazers_count: u64 }
//!
//! let repo: Repo = http::Request::get("https://api.github.com/repos/rust-lang/rust")
//!     .bearer_secret("github")
//!     .header("Accept", "application/vnd.github+json")
//!     .send()?
//!     .json()?;
//! ```
//!
//! A status is not an error by itself: check [`Response::is_success`] or
//! use [`Response::error_for_status`] ([`Response::json`] does). Errors are
//! [`HttpError`]s, a sentence for the user naming the host (`?` in a
//! handler replies with it) and an [`ErrorKind`].

mod error;
mod redirect;
mod response;
mod transport;
mod url;

use serde::Serialize;

pub use error::{ErrorKind, HttpError};
pub use response::Response;
pub use url::percent_encode;

use url::Url;

/// How many redirects a GET or HEAD follows unless told otherwise.
pub const DEFAULT_REDIRECTS: u32 = 5;

/// Sent unless the request sets its own: many APIs refuse a request
/// without one.
const USER_AGENT: &str = "wasmbot";

/// `GET url`, following redirects.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::get(url).send()
}

/// `POST url` with `body` as JSON.
pub fn post_json(url: &str, body: &impl Serialize) -> Result<Response, HttpError> {
    Request::post(url).json(body).send()
}

/// A request to build and [`send`](Request::send).
///
/// ```ignore
/// let response = Request::get(format!("{base}/v1/search"))
///     .query("name", city) // percent-encoded
///     .header("Accept", "application/json")
///     .send()?;
/// ```
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until it is sent"]
pub struct Request {
    method: String,
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    redirects: Option<u32>,
    /// A builder step that failed (a body that is not JSON); `send` reports it.
    error: Option<HttpError>,
}

impl Request {
    /// A request with any method ("GET", "PUT", "DELETE"...; upper-cased).
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Self {
            method: method.trim().to_ascii_uppercase(),
            url: url.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            redirects: None,
            error: None,
        }
    }

    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    /// Sets header `name` to `value`, replacing an earlier value of the
    /// same name (whatever its case).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.headers
            .retain(|(existing, _)| !existing.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
        self
    }

    /// Sets header `name` to the secret `secret` (listed under `secrets`
    /// in the manifest): the host puts the value in, the plugin never sees it.
    pub fn secret_header(self, name: impl Into<String>, secret: &str) -> Self {
        self.header(name, secret_placeholder(secret))
    }

    /// `Authorization: Bearer <the secret>` (see [`Request::secret_header`]).
    pub fn bearer_secret(self, secret: &str) -> Self {
        self.header(
            "Authorization",
            format!("Bearer {}", secret_placeholder(secret)),
        )
    }

    /// `Authorization: Bearer <access token>` of the OAuth credential
    /// `name` (listed under `oauth` in the manifest): the host puts a fresh
    /// token in, the plugin never sees it.
    pub fn bearer_oauth(self, name: &str) -> Self {
        self.header("Authorization", format!("{{{{oauth:{name}}}}}"))
    }

    /// Appends `key=value` to the URL's query, both percent-encoded.
    pub fn query(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.query.push((key.into(), value.to_string()));
        self
    }

    /// `body` as JSON, with `Content-Type: application/json`.
    pub fn json(mut self, body: &(impl Serialize + ?Sized)) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.body = Some(bytes);
                self.header("Content-Type", "application/json")
            }
            Err(error) => {
                self.error = Some(HttpError::invalid(format!(
                    "the request body could not be written as JSON: {error}"
                )));
                self
            }
        }
    }

    /// The body as it is (set `Content-Type` with [`Request::header`]).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = Some(bytes.into());
        self
    }

    /// Follows at most `n` redirects; 0 returns a 3xx as the answer. By
    /// default a GET or HEAD follows [`DEFAULT_REDIRECTS`] and other
    /// methods none. Each hop is a new request the host checks against the
    /// allow-list (a redirect to an unlisted host fails with
    /// [`ErrorKind::Denied`]); credentials do not follow a redirect to
    /// another origin, and a 303 (or a 301/302 after a POST) becomes a GET.
    pub fn follow_redirects(mut self, n: u32) -> Self {
        self.redirects = Some(n);
        self
    }

    /// Sends the request and reads the whole response. More redirects than
    /// allowed (when any are) is an error; so is anything the host refuses.
    pub fn send(self) -> Result<Response, HttpError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let max = self.redirects.unwrap_or(match self.method.as_str() {
            "GET" | "HEAD" => DEFAULT_REDIRECTS,
            _ => 0,
        });
        let url =
            Url::parse(&url::with_query(&self.url, &self.query)).map_err(HttpError::invalid)?;
        let mut request = Prepared {
            method: self.method,
            url,
            headers: self.headers,
            body: self.body,
        };
        request.complete_headers();
        let mut followed = 0;
        loop {
            let response = transport::exchange(&request)?;
            if max == 0 {
                return Ok(response);
            }
            let Some(location) = redirect::location(&response) else {
                return Ok(response);
            };
            if followed == max {
                return Err(HttpError::other(format!(
                    "`{}` redirected more than {max} times",
                    request.url.host()
                )));
            }
            let to = request.url.join(location).map_err(|why| {
                HttpError::other(format!(
                    "`{}` redirected to an address that cannot be fetched: {why}",
                    request.url.host()
                ))
            })?;
            request = redirect::next(&request, response.status, to);
            request.complete_headers();
            followed += 1;
        }
    }
}

/// The header value the host replaces with secret `name`.
fn secret_placeholder(name: &str) -> String {
    format!("{{{{secret:{name}}}}}")
}

/// A request ready for the wire (one hop of a [`Request`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prepared {
    pub method: String,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Prepared {
    /// Adds the headers a request goes out with unless it set them: a
    /// `User-Agent`, and the body's length (so servers that refuse a
    /// chunked upload take it).
    fn complete_headers(&mut self) {
        let has = |headers: &[(String, String)], name: &str| {
            headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        if !has(&self.headers, "user-agent") {
            self.headers
                .push(("User-Agent".to_string(), USER_AGENT.to_string()));
        }
        if let Some(body) = &self.body
            && !has(&self.headers, "content-length")
        {
            self.headers
                .push(("Content-Length".to_string(), body.len().to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn asks_the_host_for_secrets() {
        let request = Request::get("https://api.github.com/notifications")
            .bearer_secret("github")
            .secret_header("X-Api-Key", "weather");
        assert_eq!(
            header(&request, "authorization"),
            Some("Bearer {{secret:github}}")
        );
        assert_eq!(header(&request, "x-api-key"), Some("{{secret:weather}}"));
    }

    #[test]
    fn a_header_replaces_its_namesake() {
        let request = Request::get("https://x/")
            .header("Accept", "text/plain")
            .header("accept", "application/json");
        assert_eq!(
            request.headers,
            [("accept".to_string(), "application/json".to_string())]
        );
    }

    #[test]
    fn writes_json_bodies() {
        let request = Request::post("https://x/").json(&serde_json::json!({"text": "hi"}));
        assert_eq!(request.body.as_deref(), Some(&br#"{"text":"hi"}"#[..]));
        assert_eq!(header(&request, "content-type"), Some("application/json"));

        // A map with non-text keys is no JSON object: `send` says so.
        let keys = std::collections::BTreeMap::from([((1, 2), "x")]);
        let error = Request::post("https://x/").json(&keys).send().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn refuses_a_bad_url_before_sending() {
        let error = get("localhost:8080/x").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Invalid);
        assert!(error.message().contains("`localhost:8080/x`"), "{error}");
    }

    #[test]
    fn completes_headers() {
        let mut request = Prepared {
            method: "POST".into(),
            url: Url::parse("https://x/").expect("url"),
            headers: vec![("user-agent".into(), "mine".into())],
            body: Some(b"12345".to_vec()),
        };
        request.complete_headers();
        assert_eq!(
            request.headers,
            [
                ("user-agent".to_string(), "mine".to_string()),
                ("Content-Length".to_string(), "5".to_string()),
            ]
        );
        let mut get = Prepared {
            method: "GET".into(),
            url: Url::parse("https://x/").expect("url"),
            headers: Vec::new(),
            body: None,
        };
        get.complete_headers();
        assert_eq!(
            get.headers,
            [("User-Agent".to_string(), "wasmbot".to_string())]
        );
    }
}
