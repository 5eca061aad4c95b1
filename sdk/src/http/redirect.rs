//! Following a redirect: which answers are one, and the request that goes
//! to the new URL. The host does not follow redirects itself, so each hop
//! is a new request it checks against the allow-list again.

use super::Prepared;
use super::response::Response;
use super::url::Url;

/// Headers that carry credentials: they go to one origin only, so a
/// redirect elsewhere drops them (as browsers do).
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// Headers describing a body, dropped with the body.
const BODY_HEADERS: [&str; 3] = ["content-type", "content-length", "content-encoding"];

/// The `Location` of a redirect, or `None` when `response` is not one (a
/// 3xx without a `Location`, e.g. 304, is an answer).
pub(crate) fn location(response: &Response) -> Option<&str> {
    match response.status {
        301 | 302 | 303 | 307 | 308 => response.header("location"),
        _ => None,
    }
}

/// The request to send to `to` after `status` answered `from`: 303 (and
/// 301/302 to a POST) turns into a GET without body, 307/308 repeat the
/// request; leaving the origin drops the credentials, including any header
/// that would have the host inject a secret.
pub(crate) fn next(request: &Prepared, status: u16, to: Url) -> Prepared {
    let mut next = Prepared {
        method: request.method.clone(),
        url: to,
        headers: request.headers.clone(),
        body: request.body.clone(),
    };
    let becomes_get = match status {
        303 => next.method != "HEAD",
        301 | 302 => next.method == "POST",
        _ => false,
    };
    if becomes_get {
        next.method = "GET".to_string();
        next.body = None;
        next.headers
            .retain(|(name, _)| !BODY_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)));
    }
    if !request.url.same_origin(&next.url) {
        next.headers.retain(|(name, value)| {
            !CREDENTIAL_HEADERS
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
                && !value.contains("{{secret:")
        });
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect(text)
    }

    fn post() -> Prepared {
        Prepared {
            method: "POST".into(),
            url: url("https://api.a.com/v1/items"),
            headers: vec![
                ("Authorization".into(), "Bearer {{secret:gh}}".into()),
                ("X-Key".into(), "{{secret:other}}".into()),
                ("Content-Type".into(), "application/json".into()),
                ("Accept".into(), "application/json".into()),
            ],
            body: Some(b"{}".to_vec()),
        }
    }

    fn names(request: &Prepared) -> Vec<&str> {
        request.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn answer(status: u16, location: Option<&str>) -> Response {
        Response {
            status,
            headers: location
                .map(|l| vec![("location".to_string(), l.to_string())])
                .unwrap_or_default(),
            body: Vec::new(),
            url: "https://api.a.com/".into(),
        }
    }

    #[test]
    fn knows_a_redirect() {
        assert_eq!(location(&answer(302, Some("/x"))), Some("/x"));
        assert_eq!(
            location(&answer(308, Some("https://b/"))),
            Some("https://b/")
        );
        assert_eq!(location(&answer(302, None)), None);
        assert_eq!(location(&answer(304, Some("/x"))), None);
        assert_eq!(location(&answer(200, Some("/x"))), None);
    }

    #[test]
    fn see_other_becomes_a_get_without_body() {
        let next = next(&post(), 303, url("https://api.a.com/v1/items/1"));
        assert_eq!(next.method, "GET");
        assert_eq!(next.body, None);
        assert_eq!(names(&next), ["Authorization", "X-Key", "Accept"]);
    }

    #[test]
    fn temporary_redirect_repeats_the_request() {
        let next = next(&post(), 307, url("https://api.a.com:443/v2/items"));
        assert_eq!(next.method, "POST");
        assert_eq!(next.body.as_deref(), Some(&b"{}"[..]));
        assert_eq!(next.headers, post().headers);
    }

    #[test]
    fn credentials_stay_with_their_origin() {
        let next = next(&post(), 308, url("https://mirror.b.com/v1/items"));
        assert_eq!(names(&next), ["Content-Type", "Accept"]);
        let get = Prepared {
            method: "GET".into(),
            ..post()
        };
        let downgraded = super::next(&get, 302, url("http://api.a.com/v1/items"));
        assert_eq!(downgraded.method, "GET");
        assert!(!names(&downgraded).contains(&"Authorization"));
    }
}
