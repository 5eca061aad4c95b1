//! One request and its response over `wasi:http/outgoing-handler`,
//! blocking: the component model gives a plugin no event loop, and a
//! handler answers one event at a time anyway.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, HeaderError, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, Scheme, http_error_code,
};
use wasip2::io::error::Error as IoError;
use wasip2::io::streams::StreamError;

use super::Prepared;
use super::error::HttpError;
use super::response::Response;

/// `wasi:http` lets a guest write at most 4096 bytes per
/// `blocking-write-and-flush`.
const WRITE_CHUNK: usize = 4096;

/// How much one `blocking-read` asks for.
const READ_CHUNK: u64 = 64 * 1024;

/// Sends `request` and reads the whole response.
pub(crate) fn exchange(request: &Prepared) -> Result<Response, HttpError> {
    let fields = Fields::new();
    for (name, value) in &request.headers {
        fields
            .append(name, value.as_bytes())
            .map_err(|error| header_error(name, error))?;
    }
    let outgoing = OutgoingRequest::new(fields);
    outgoing
        .set_method(&method(&request.method))
        .map_err(|()| {
            HttpError::invalid(format!("`{}` is not a valid HTTP method", request.method))
        })?;
    let scheme = if request.url.scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let url_error = |()| HttpError::invalid(format!("`{}` is not a valid URL", request.url));
    outgoing.set_scheme(Some(&scheme)).map_err(url_error)?;
    outgoing
        .set_authority(Some(&request.url.authority))
        .map_err(url_error)?;
    outgoing
        .set_path_with_query(Some(&request.url.path_and_query))
        .map_err(url_error)?;

    // Take the body before `handle` consumes the request; write it after,
    // so a body larger than the host's buffer is read while it is written.
    let body = match &request.body {
        Some(bytes) => Some((
            outgoing.body().map_err(|()| {
                HttpError::invalid(
                    "the request body could not be opened (is its Content-Length right?)",
                )
            })?,
            bytes,
        )),
        None => None,
    };
    let refused = |code: ErrorCode| HttpError::from_code(code, &request.url);
    let future = outgoing_handler::handle(outgoing, None).map_err(refused)?;
    let written = match body {
        Some((body, bytes)) => write_body(body, bytes).map_err(|e| e.into_http(&request.url)),
        None => Ok(()),
    };
    // When the upload failed, the response usually says why (a refused
    // connection, a timeout); the upload's own error is the fallback.
    let response = match (wait(&future), written) {
        (Ok(response), Ok(())) => response,
        (Ok(_), Err(error)) => return Err(error),
        (Err(code), _) => return Err(refused(code)),
    };
    drop(future);
    let status = response.status();
    let headers = headers(&response);
    let body = read_body(&response).map_err(|e| e.into_http(&request.url))?;
    Ok(Response {
        status,
        headers,
        body,
        url: request.url.to_string(),
    })
}

fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

fn header_error(name: &str, error: HeaderError) -> HttpError {
    match error {
        HeaderError::Forbidden => HttpError::invalid(format!(
            "the header `{name}` is set by the host, not by a plugin"
        )),
        HeaderError::InvalidSyntax | HeaderError::Immutable => {
            HttpError::invalid(format!("the header `{name}` is not valid"))
        }
    }
}

/// Why a body stream failed: an HTTP error code when the host gave one.
enum StreamFailure {
    Code(ErrorCode),
    Text(String),
}

impl StreamFailure {
    fn from_stream(error: StreamError, what: &str) -> Self {
        match error {
            StreamError::LastOperationFailed(error) => Self::from_io(&error),
            StreamError::Closed => Self::Text(format!("the {what} stream closed early")),
        }
    }

    fn from_io(error: &IoError) -> Self {
        match http_error_code(error) {
            Some(code) => Self::Code(code),
            None => {
                let text = error.to_debug_string();
                match code_in_text(&text) {
                    Some(code) => Self::Code(code),
                    None => Self::Text(text),
                }
            }
        }
    }

    fn into_http(self, url: &super::url::Url) -> HttpError {
        match self {
            Self::Code(code) => HttpError::from_code(code, url),
            Self::Text(text) => {
                HttpError::other(format!("the request to `{}` failed: {text}", url.host()))
            }
        }
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), StreamFailure> {
    {
        let stream = body
            .write()
            .map_err(|()| StreamFailure::Text("the request body could not be written".into()))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| StreamFailure::from_stream(e, "request body"))?;
        }
        // The stream is the body's child: it goes before `finish`.
    }
    OutgoingBody::finish(body, None).map_err(StreamFailure::Code)
}

/// Blocks until the response's head arrives.
fn wait(future: &FutureIncomingResponse) -> Result<IncomingResponse, ErrorCode> {
    loop {
        match future.get() {
            Some(Ok(result)) => return result,
            Some(Err(())) => {
                return Err(ErrorCode::InternalError(Some(
                    "the response was already taken".into(),
                )));
            }
            None => future.subscribe().block(),
        }
    }
}

fn headers(response: &IncomingResponse) -> Vec<(String, String)> {
    let fields = response.headers();
    fields
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect()
}

/// The whole body; past the plugin's size limit the host ends the stream
/// with an error (`HTTP-response-body-size`). Trailers are not read.
fn read_body(response: &IncomingResponse) -> Result<Vec<u8>, StreamFailure> {
    let body = response
        .consume()
        .map_err(|()| StreamFailure::Text("the response body was already read".into()))?;
    let mut bytes = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| StreamFailure::Text("the response body could not be read".into()))?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(error) => return Err(StreamFailure::from_stream(error, "response body")),
            }
        }
        // The stream is the body's child: it goes first.
    }
    Ok(bytes)
}

/// Wasmtime 48 hands a failure in the middle of a response body over as
/// text only (`http-error-code` gives none), so the host's cap and its
/// stall timeout are recognised by their words.
fn code_in_text(text: &str) -> Option<ErrorCode> {
    const TOO_LARGE: &str = "HTTP response body size exceeds limit";
    if let Some(at) = text.find(TOO_LARGE) {
        let limit = text[at + TOO_LARGE.len()..]
            .trim_start_matches(':')
            .split_whitespace()
            .next()
            .and_then(|number| number.parse().ok());
        return Some(ErrorCode::HttpResponseBodySize(limit));
    }
    if text.contains("connection read timeout") {
        return Some(ErrorCode::ConnectionReadTimeout);
    }
    if text.contains("HTTP response timeout") {
        return Some(ErrorCode::HttpResponseTimeout);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_failure_in_words_gets_its_code() {
        assert!(matches!(
            code_in_text("HTTP response body size exceeds limit: 4096 bytes"),
            Some(ErrorCode::HttpResponseBodySize(Some(4096)))
        ));
        assert!(matches!(
            code_in_text("connection read timeout"),
            Some(ErrorCode::ConnectionReadTimeout)
        ));
        assert!(code_in_text("something else").is_none());
    }
}
