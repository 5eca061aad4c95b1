"""Outbound HTTP for a plugin granted `http`: `wasi:http/outgoing-handler`,
which the host serves itself (the manifest's allow-list, injected secrets,
the per-call request budget), used here without asyncio:

    from wasmbot import http

    def handle(event):
        response = http.get(f"{config.get('api_url')}/today")
        response.raise_for_status()
        return response.json()["summary"]

A request the host refuses, or one that fails on the way (an unlisted
host, a refused address, a timeout), raises `CapabilityError` with
`.capability == "http"`, `.kind` the WIT error code (e.g.
"http-request-denied") and `.detail` what the host said.
"""

import json as _json
from urllib.parse import urlsplit

try:
    from componentize_py_types import Err, Ok
    from wit_world.imports import outgoing_handler, types as _types
    from wit_world.imports.streams import StreamError_Closed
except ImportError:
    raise ImportError(
        '`wasmbot.http` needs the `http` capability: add "http" to `capabilities` '
        "(and the hosts to `http`) in plugin.toml"
    ) from None

from ._capabilities import CapabilityError, error_of

# `blocking_write_and_flush` takes at most this much at a time.
_WRITE_CHUNK = 4096
_READ_CHUNK = 65536

_METHODS = {
    "GET": _types.Method_Get,
    "HEAD": _types.Method_Head,
    "POST": _types.Method_Post,
    "PUT": _types.Method_Put,
    "DELETE": _types.Method_Delete,
    "PATCH": _types.Method_Patch,
    "OPTIONS": _types.Method_Options,
}


class Response:
    """A response, read whole: `status`, `headers` (a list of pairs, names
    lower-case), `body` (bytes), `text`, `json()`."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return _json.loads(self.body)

    def header(self, name):
        """The first value of header `name`, or None."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    def raise_for_status(self):
        """Raises `CapabilityError(kind="status")` unless the status is 2xx."""
        if not 200 <= self.status < 300:
            raise CapabilityError("http", "status", f"{self.status}: {self.text[:200]}")
        return self


def _call(function, *args):
    try:
        return function(*args)
    except Err as error:
        raise error_of("http", error.value) from None


def request(method, url, headers=(), body=None):
    """Sends one request and reads the whole response. `headers` is a list
    of (name, value) pairs or a dict; `body` bytes or text."""
    if method.upper() not in _METHODS:
        raise CapabilityError("http", "invalid-method", method)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CapabilityError("http", "invalid-url", url)
    if isinstance(headers, dict):
        headers = list(headers.items())
    if isinstance(body, str):
        body = body.encode("utf-8")
    fields = _call(
        _types.Fields.from_list, [(name.lower(), str(value).encode()) for name, value in headers]
    )
    outgoing = _types.OutgoingRequest(fields)
    _call(outgoing.set_method, _METHODS[method.upper()]())
    scheme = _types.Scheme_Https() if parts.scheme == "https" else _types.Scheme_Http()
    _call(outgoing.set_scheme, scheme)
    _call(outgoing.set_authority, parts.netloc)
    _call(outgoing.set_path_with_query, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    # The body is taken before the request is handed over, written after.
    outgoing_body = outgoing.body() if body is not None else None
    future = _call(outgoing_handler.handle, outgoing, None)
    if outgoing_body is not None:
        stream = outgoing_body.write()
        for start in range(0, len(body), _WRITE_CHUNK):
            _call(stream.blocking_write_and_flush, body[start : start + _WRITE_CHUNK])
        stream.__exit__(None, None, None)
        _call(_types.OutgoingBody.finish, outgoing_body, None)
    ready = future.subscribe()
    ready.block()
    ready.__exit__(None, None, None)
    answered = future.get()
    future.__exit__(None, None, None)
    if not isinstance(answered, Ok) or answered.value is None:
        raise CapabilityError("http", "internal-error", "the response was not ready")
    if isinstance(answered.value, Err):
        raise error_of("http", answered.value.value)
    response = answered.value.value
    status = response.status()
    response_headers = [(name, value.decode("utf-8", "replace")) for name, value in response.headers().entries()]
    incoming = _call(response.consume)
    stream = _call(incoming.stream)
    chunks = []
    while True:
        try:
            chunks.append(stream.blocking_read(_READ_CHUNK))
        except Err as error:
            if isinstance(error.value, StreamError_Closed):
                break
            raise error_of("http", error.value) from None
    stream.__exit__(None, None, None)
    _types.IncomingBody.finish(incoming)
    response.__exit__(None, None, None)
    return Response(status, response_headers, b"".join(chunks))


def get(url, headers=()):
    return request("GET", url, headers)


def post_json(url, value, headers=()):
    """POSTs `value` as JSON."""
    headers = list(headers.items()) if isinstance(headers, dict) else list(headers)
    return request("POST", url, [("content-type", "application/json"), *headers], _json.dumps(value))
