"""WSGI plumbing for the Google emulator: requests, responses, Google-shaped errors, timestamps."""

from __future__ import annotations

import datetime as dt
import html
import http
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any
from wsgiref.types import WSGIEnvironment

JsonDict = dict[str, Any]

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"

# The canonical status names Google puts into error bodies next to the HTTP code.
_CANONICAL_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass
class Request:
    method: str
    segments: list[str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    base_url: str
    script_name: str = ""

    @property
    def path(self) -> str:
        return "/" + "/".join(self.segments)

    @classmethod
    def from_environ(cls, environ: WSGIEnvironment) -> Request:
        # PEP 3333: PATH_INFO arrives already percent-decoded, as latin-1 code points of the bytes.
        raw_path = str(environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8", "replace")
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        host = (
            headers.get("host") or f"{environ.get('SERVER_NAME', '127.0.0.1')}:{environ.get('SERVER_PORT')}"
        )
        script_name = str(environ.get("SCRIPT_NAME", "")).rstrip("/")
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        query_string = str(environ.get("QUERY_STRING", ""))
        override = headers.get("x-http-method-override", method).upper()
        if override == "GET" and method == "POST" and "form-urlencoded" in headers.get("content-type", ""):
            # googleapiclient turns a GET with a URI over 2048 characters into this POST.
            query_string = "&".join(filter(None, [query_string, body.decode("utf-8", "replace")]))
            body = b""
        return cls(
            method=override,
            segments=[segment for segment in raw_path.split("/") if segment],
            query=urllib.parse.parse_qs(query_string, keep_blank_values=True),
            headers=headers,
            body=body,
            base_url=f"{environ.get('wsgi.url_scheme', 'http')}://{host}{script_name}",
            script_name=script_name,
        )

    @classmethod
    def from_target(
        cls, method: str, target: str, headers: dict[str, str], body: bytes, base_url: str
    ) -> Request:
        """A request given by its request-line target (`/path?query`), e.g. a part of a batch."""
        parsed = urllib.parse.urlsplit(target)
        return cls(
            method=headers.get("x-http-method-override", method).upper(),
            segments=[urllib.parse.unquote(segment) for segment in parsed.path.split("/") if segment],
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            headers=headers,
            body=body,
            base_url=base_url,
        )

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def form(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def json(self) -> JsonDict:
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except ValueError:
            raise ApiError(400, "parseError", "Parse Error") from None
        if not isinstance(data, dict):
            raise ApiError(400, "parseError", "Parse Error")
        return data


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON_CONTENT_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def status_line(self) -> str:
        try:
            reason = http.HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Unknown"
        return f"{self.status} {reason}"

    def header_list(self) -> list[tuple[str, str]]:
        headers = list(self.headers)
        if self.content_type is not None:
            headers.append(("Content-Type", self.content_type))
        headers.append(("Content-Length", str(len(self.body))))
        return headers


def json_response(data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(data, indent=1, ensure_ascii=False).encode("utf-8")
    return Response(status, body, JSON_CONTENT_TYPE, list(headers or []))


def empty_response(status: int = 204) -> Response:
    return Response(status, b"", None)


def html_response(markup: str, status: int = 200) -> Response:
    return Response(status, markup.encode("utf-8"), "text/html; charset=utf-8")


def redirect(location: str, status: int = 302) -> Response:
    return Response(status, b"", "text/html; charset=utf-8", [("Location", location)])


def html_page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem}"
        "fieldset{margin:.5rem 0}label{display:block;margin:.25rem 0}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top}"
        ".error{color:#b00}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


class ApiError(Exception):
    """A Google API error; rendered as Google's JSON error body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        headers: list[tuple[str, str]] | None = None,
        extra: JsonDict | None = None,
        top_message: str | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.headers = list(headers or [])
        self.extra = dict(extra or {})
        self.top_message = top_message or message

    def body(self) -> JsonDict:
        error: JsonDict = {
            "code": self.code,
            "message": self.top_message,
            "errors": [{"domain": self.domain, "reason": self.reason, "message": self.message, **self.extra}],
        }
        if self.code in _CANONICAL_STATUS:
            error["status"] = _CANONICAL_STATUS[self.code]
        return {"error": error}

    def to_response(self) -> Response:
        return json_response(self.body(), self.code, self.headers)


def not_found() -> ApiError:
    return ApiError(404, "notFound", "Not Found")


def format_timestamp(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as Google writes `created`/`updated`."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_timestamp(value: str) -> dt.datetime:
    """An RFC 3339 timestamp with an offset (raises ValueError otherwise)."""
    moment = dt.datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without offset: {value!r}")
    return moment


def format_datetime(moment: dt.datetime) -> str:
    """An event dateTime: seconds precision, 'Z' for UTC, else the numeric offset."""
    text = moment.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") and moment.utcoffset() == dt.timedelta(0) else text
