//! A response, read whole into memory (the host caps its size).

use serde::de::DeserializeOwned;

use super::error::HttpError;
use super::url::host_of;

/// The status, headers and body of an answer; a 3xx that was not followed
/// is an answer too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// In the order received; names as the host hands them over (lower case).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The URL that answered: the last one when redirects were followed.
    pub url: String,
}

impl Response {
    /// The first value of header `name`, whatever its case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// A 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The response itself when its status is 2xx; otherwise an error
    /// ([`ErrorKind::Status`](super::ErrorKind::Status)) naming the status
    /// and quoting the start of the body.
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(self.status_error())
        }
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<String, HttpError> {
        let text = std::str::from_utf8(&self.body).map_err(|_| {
            HttpError::other(format!(
                "the response from `{}` is not UTF-8 text",
                self.host()
            ))
        })?;
        Ok(text.to_string())
    }

    /// The body parsed as JSON into `T`. A non-2xx status is an error
    /// first (as [`Response::error_for_status`]), so the user reads "answered
    /// 404 Not Found" rather than a complaint about the shape of an error
    /// document; parse [`Response::body`] yourself to read an API's errors.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        if !self.is_success() {
            return Err(self.status_error());
        }
        serde_json::from_slice(&self.body).map_err(|error| {
            HttpError::other(format!(
                "the response from `{}` is not the JSON expected: {error}",
                self.host()
            ))
        })
    }

    fn status_error(&self) -> HttpError {
        HttpError::status(self.status, &self.host(), &self.body)
    }

    fn host(&self) -> String {
        host_of(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::http::ErrorKind;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-multi".into(), "1".into()),
                ("X-Multi".into(), "2".into()),
            ],
            body: body.as_bytes().to_vec(),
            url: "https://api.example.org/v1/thing".into(),
        }
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Thing {
        id: u32,
    }

    #[test]
    fn finds_headers_whatever_their_case() {
        let r = response(200, "");
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.header("x-MULTI"), Some("1"));
        assert_eq!(r.header("location"), None);
    }

    #[test]
    fn reads_json_from_a_success_only() {
        assert_eq!(
            response(200, r#"{"id": 7}"#).json::<Thing>(),
            Ok(Thing { id: 7 })
        );
        let not_found = response(404, r#"{"message":"Not Found"}"#).json::<Thing>();
        let error = not_found.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Status(404));
        assert_eq!(
            error.to_string(),
            "`api.example.org` answered 404 Not Found: {\"message\":\"Not Found\"}"
        );
        let shape = response(200, r#"{"id": "x"}"#).json::<Thing>().unwrap_err();
        assert_eq!(shape.kind(), ErrorKind::Other);
        assert!(
            shape
                .message()
                .starts_with("the response from `api.example.org` is not the JSON expected")
        );
    }

    #[test]
    fn sorts_statuses() {
        assert!(response(204, "").is_success());
        assert!(!response(302, "").is_success());
        assert!(response(200, "ok").error_for_status().is_ok());
        let error = response(503, "down for maintenance")
            .error_for_status()
            .unwrap_err();
        assert_eq!(
            error.message(),
            "`api.example.org` answered 503 Service Unavailable: down for maintenance"
        );
    }

    #[test]
    fn reads_text() {
        assert_eq!(response(200, "héllo").text().as_deref(), Ok("héllo"));
        let mut bad = response(200, "");
        bad.body = vec![0xff, 0xfe];
        assert!(bad.text().is_err());
    }
}
