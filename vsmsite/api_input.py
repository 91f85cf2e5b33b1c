"""What every request meets before a view reads it: the edge's guards, in one place.

* ``InputGuardMiddleware``: a URL (path or query) or a header holding a NUL is a 400
  (PostgreSQL cannot compare or store text with a NUL, so a lookup by such an id would be a
  500); under /api/ a query
  parameter given twice is a 400 (no parameter of the schema is a list, and Django would read
  the last one silently); a body announced larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a
  413, before anything reads it.
* ``BoundedJSONParser``, the API's only parser: at most the same number of bytes, JSON at
  most ``MAX_JSON_DEPTH`` levels deep, and no string (key or value) that no column can store
  (``workers.domain.input_rules.text_problem``).
* ``JsonOnlyNegotiation``: a body that is not JSON (a form, say) is a 415 that says to send
  JSON, instead of being parsed as a form whose nested fields (metadata, plans) vanish.
* ``api_error_page``: Django's own 400, 404 and 500 pages answer JSON under ``/api/``.
* ``WebsocketNulGuard``: the websockets' equivalent of the middleware's NUL check (their
  queries name nodes and trials too): accepted, then closed with 4400.

Every refusal here is ``{"detail": "<what to fix>"}``. Limits: docs/operations.md, "Limits on
input".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, UnsupportedMediaType
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser, get_encoding  # type: ignore[attr-defined]
from rest_framework.request import Request
from rest_framework.utils.json import strict_constant

from workers.domain.input_rules import text_problem

# Deep enough for any body the API documents (a plan's task's depends_on is 4 levels), far
# below the recursion limit that the standard library's decoder would otherwise hit.
MAX_JSON_DEPTH = 32
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
API_PREFIX = "/api/"


def body_limit() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def too_large_message(limit: int) -> str:
    return (
        f"The request body is larger than {limit} bytes; send less "
        "(DATA_UPLOAD_MAX_MEMORY_SIZE sets the limit)."
    )


def holds_nul(path: str, raw_query: str | bytes) -> bool:
    query = raw_query if isinstance(raw_query, bytes) else raw_query.encode("latin-1", "replace")
    return "\x00" in path or b"\x00" in unquote_to_bytes(query)


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


class InputGuardMiddleware:
    """Refuses, before any view or session lookup, what no view could handle: see above."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if holds_nul(request.path, request.META.get("QUERY_STRING", "")):
            return refusal(
                request,
                status.HTTP_400_BAD_REQUEST,
                "The URL contains a NUL character (%00); no id or parameter may hold one.",
            )
        # Some servers pass a NUL in a header through; an Idempotency-Key is stored.
        for name, value in request.META.items():
            if name.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
                header = name.removeprefix("HTTP_").replace("_", "-").title()
                return refusal(
                    request,
                    status.HTTP_400_BAD_REQUEST,
                    f"The {header} header contains a NUL character; send it without.",
                )
        if request.path.startswith(API_PREFIX):
            for name, values in request.GET.lists():
                if len(values) > 1:
                    return refusal(
                        request,
                        status.HTTP_400_BAD_REQUEST,
                        f"The query parameter {name[:40]!r} is given {len(values)} times; "
                        "give it once.",
                    )
        limit = body_limit()
        try:
            announced = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return refusal(request, status.HTTP_400_BAD_REQUEST, "Content-Length is not a number.")
        if announced > limit:
            too_large = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
            return refusal(request, too_large, too_large_message(limit))
        return self.get_response(request)


def refusal(request: HttpRequest, code: int, detail: str) -> HttpResponse:
    """JSON under /api/, plain text for pages (which have no JSON client to read it)."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": detail}, status=code)
    return HttpResponse(detail, status=code, content_type="text/plain; charset=utf-8")


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser with bounds on size and depth, and only text a column can store."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = body_limit()
        # A body with no Content-Length (chunked) has not been measured yet: read one byte
        # past the limit at most.
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(too_large_message(limit))
        encoding = get_encoding(parser_context or {})
        try:
            text = raw.decode(encoding)
            parse_constant = strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant)
        except RecursionError as error:
            raise ParseError(depth_message()) from error
        except ValueError as error:  # UnicodeDecodeError and JSONDecodeError among them
            raise ParseError(f"JSON parse error - {error}") from error
        if problem := document_problem(data, text):
            raise ParseError(problem)
        return data


def depth_message() -> str:
    return f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep; send a flatter document."


def document_problem(data: Any, text: str) -> str | None:
    """Why a parsed document is refused (too deep; a string no column can store), or None.

    Walks the document with stacks of its own, never by recursion. A NUL or a lone surrogate
    can only arrive as a ``\\u`` escape (raw, the decoder refuses the one and UTF-8 the
    other), so the strings are read only when the text holds such an escape."""
    containers: list[tuple[Any, int]] = [(data, 1)] if isinstance(data, dict | list) else []
    while containers:
        value, depth = containers.pop()
        if depth > MAX_JSON_DEPTH:
            return depth_message()
        items = value.values() if isinstance(value, dict) else value
        containers.extend((item, depth + 1) for item in items if isinstance(item, dict | list))
    if not may_hold_unstorable_text(text):
        return None
    return _string_problem(data)


def may_hold_unstorable_text(text: str) -> bool:
    return "\\u0000" in text or SURROGATE_ESCAPE.search(text) is not None


def _string_problem(data: Any) -> str | None:
    pending: list[tuple[Any, str]] = [(data, "$")]
    while pending:
        value, where = pending.pop()
        if isinstance(value, str):
            if problem := text_problem(value):
                return f"A string at {where} {problem}."
        elif isinstance(value, list):
            pending.extend((item, f"{where}[{n}]") for n, item in enumerate(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                if problem := text_problem(key):
                    return f"A key in {where} {problem}."
                pending.append((item, f"{where}.{key[:40]}"))
    return None


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """The API speaks JSON: any other body is a 415 naming the one media type it takes."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        parser = super().select_parser(request, parsers)
        if parser is None:
            sent = (request.content_type or "no Content-Type")[:100]
            raise UnsupportedMediaType(
                sent,
                detail=(
                    f"The API takes JSON only, not {sent}: send the body as JSON with "
                    "Content-Type: application/json."
                ),
            )
        return parser


def api_error_page(code: int, detail: str, page: Callable[..., HttpResponse]) -> Any:
    """A handler for Django's error views: JSON under /api/, Django's page elsewhere."""

    def handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            return JsonResponse({"detail": detail.format(path=request.path)}, status=code)
        return page(request, exception) if code != 500 else page(request)

    return handler


not_found = api_error_page(
    404,
    "No API endpoint is at {path}; the endpoints are listed at /api/docs/.",
    defaults.page_not_found,
)
bad_request = api_error_page(
    400, "The request could not be read as sent; check its headers and body.", defaults.bad_request
)
server_error = api_error_page(
    500,
    "The server failed on this request; it is logged. Retry later, or report it.",
    defaults.server_error,
)


WEBSOCKET_BAD_QUERY = 4400  # as the consumers close a query they cannot read


class WebsocketNulGuard:
    """ASGI middleware: a websocket whose path or query holds a NUL never reaches a consumer
    (whose lookup by that id would fail on PostgreSQL). It is accepted first, so that a
    browser can read the close code, then closed with 4400."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and holds_nul(
            scope.get("path", ""), scope.get("query_string", b"")
        ):
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": WEBSOCKET_BAD_QUERY})
            return
        await self.app(scope, receive, send)
