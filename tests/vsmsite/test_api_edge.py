"""What every request meets before any view: NULs in the URL, bodies too large, JSON too deep,
forms sent to the JSON API. Each is refused with a 4xx whose JSON says what to fix, and
changes nothing."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.exceptions import APIException
from rest_framework.test import APIClient

from organization.services import genome_bootstrap
from tests import factories
from tests.support.snapshots import nothing_changes
from vsmsite.api_input import MAX_JSON_DEPTH, BoundedJSONParser

pytestmark = pytest.mark.django_db

# The API's write endpoints: each takes JSON and only JSON.
WRITES = [
    "/api/directives/",
    "/api/signals/",
    "/api/environment-signals/",
    "/api/grants/",
    "/api/genome/rollback/",
    "/api/trials/some-trial/approve/",
    "/api/trials/some-trial/reject/",
]


@pytest.fixture
def api() -> APIClient:
    genome_bootstrap(template="nested", actor="operator:test")
    client = APIClient()
    client.force_login(factories.admin())
    return client


@pytest.fixture
def unchanged(api: APIClient) -> Iterator[None]:
    with nothing_changes():
        yield


def json_refusal(response: Any, status: int) -> str:
    """The answer's ``detail``: every API refusal is JSON that says what to fix."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    return detail


def routes_with_ids(
    patterns: list[URLPattern | URLResolver] | None = None, prefix: str = ""
) -> Iterator[str]:
    """Every route of the URLconf that captures part of the path, the admin's aside."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if route.startswith("admin/"):
            continue
        if isinstance(pattern, URLResolver):
            yield from routes_with_ids(pattern.url_patterns, route)
        elif "<" in route:
            yield route


def with_nul_ids(route: str) -> str:
    parts = [part if not part.startswith("<") else "a%00b" for part in route.split("/")]
    return "/" + "/".join(parts)


def test_the_urlconf_has_routes_with_ids_to_probe() -> None:
    probed = set(routes_with_ids())

    assert {"api/directives/<str:pk>/", "api/nodes/<str:pk>/fitness/"} <= probed
    assert {"trials/<str:trial_id>/approve/", "alarms/nodes/<path:node_id>/pause/"} <= probed


@pytest.mark.parametrize("route", sorted(routes_with_ids()))
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_nul_in_a_url_id_is_refused_not_a_server_error(
    api: APIClient, unchanged: None, route: str, method: str
) -> None:
    url = with_nul_ids(route)

    if method == "get":
        response = api.get(url)
    else:
        response = api.post(url, data=b"{}", content_type="application/json")

    assert response.status_code == 400, (url, response.status_code)
    if url.startswith("/api/"):
        assert "NUL" in json_refusal(response, 400)


@pytest.mark.parametrize(
    "url",
    [
        "/api/directives/?status=a%00b",
        "/api/trials/?controller=a%00b",
        "/api/nodes/backend-coder/fitness/?since=a%00b",
        "/alarms/?q=a%00b",
        "/admin/workers/directive/a%00b/change/",
        "/admin/workers/directive/?q=a%00b",
    ],
)
def test_a_nul_anywhere_in_the_url_is_refused(api: APIClient, unchanged: None, url: str) -> None:
    response = api.get(url)

    assert response.status_code == 400, (url, response.status_code)


@pytest.mark.parametrize("url", WRITES)
@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=BoUnDaRy"]
)
def test_a_form_sent_to_the_json_api_gets_a_415_saying_to_send_json(
    api: APIClient, unchanged: None, url: str, content_type: str
) -> None:
    body = b"title=x&metadata=requires_code_write%3Dtrue"

    response = api.post(url, data=body, content_type=content_type)

    assert "application/json" in json_refusal(response, 415)


@pytest.mark.parametrize("url", WRITES)
def test_json_nested_a_hundred_thousand_levels_deep_gets_a_400(
    api: APIClient, unchanged: None, url: str
) -> None:
    deep = "[" * 100_000 + "]" * 100_000

    response = api.post(url, data=deep, content_type="application/json")

    assert f"{MAX_JSON_DEPTH} levels" in json_refusal(response, 400)


def test_json_one_level_too_deep_gets_a_400_and_at_the_limit_parses(api: APIClient) -> None:
    def nested(levels: int) -> str:  # the body object is the first level
        return '{"title": "x", "metadata": {"a": ' + "[" * (levels - 2) + "]" * (levels - 2) + "}}"

    def post(body: str) -> Any:
        return api.post("/api/directives/", data=body, content_type="application/json")

    too_deep, at_limit = post(nested(MAX_JSON_DEPTH + 1)), post(nested(MAX_JSON_DEPTH))

    assert f"{MAX_JSON_DEPTH} levels" in json_refusal(too_deep, 400)
    # Deep enough to parse; the field itself then says what it takes.
    assert at_limit.status_code == 400 and "metadata" in at_limit.json()  # fmt: skip


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
@pytest.mark.parametrize("url", WRITES)
def test_a_body_over_the_limit_gets_a_413_naming_the_limit(
    api: APIClient, unchanged: None, url: str
) -> None:
    body = '{"title": "' + "x" * 1000 + '"}'

    response = api.post(url, data=body, content_type="application/json")

    assert "1000 bytes" in json_refusal(response, 413)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_form_page_over_the_limit_gets_a_413_too(api: APIClient, unchanged: None) -> None:
    response = api.post("/trials/some-trial/reject/", {"reason": "x" * 2000})

    assert response.status_code == 413


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_the_parser_stops_reading_at_the_limit_without_a_content_length() -> None:
    """A chunked body has no Content-Length to check first: the parser reads at most the limit."""
    stream = io.BytesIO(b'{"title": "' + b"x" * 5000 + b'"}')

    with pytest.raises(APIException) as refused:
        BoundedJSONParser().parse(stream, "application/json", {})

    assert refused.value.status_code == 413
    assert stream.tell() <= 1001


def test_an_unknown_api_url_gets_a_json_404(api: APIClient) -> None:
    assert "/api/" in json_refusal(api.get("/api/no-such-thing/"), 404)


def test_a_page_outside_the_api_keeps_its_html_404() -> None:
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


LISTS = ["/api/directives/", "/api/signals/", "/api/nodes/", "/api/trials/"]


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("page", ["abc", "1.5", "last", "0", "-1", " 1", "\u0663", "1_0", ""])
def test_a_page_that_is_not_a_positive_integer_gets_a_400(
    api: APIClient, url: str, page: str
) -> None:
    response = api.get(url, {"page": page})

    assert response.status_code == 400, (page, response.content)
    assert "positive integer" in str(response.json()["page"])


@pytest.mark.parametrize("url", ["/api/nodes/", "/api/trials/"])
@pytest.mark.parametrize("size", ["abc", "0", "2.0", ""])
def test_a_page_size_that_is_not_a_positive_integer_gets_a_400(
    api: APIClient, url: str, size: str
) -> None:
    response = api.get(url, {"page_size": size})

    assert response.status_code == 400, (size, response.content)
    assert "positive integer" in str(response.json()["page_size"])


@pytest.mark.parametrize("url", LISTS)
def test_the_first_page_and_a_page_past_the_end(api: APIClient, url: str) -> None:
    assert api.get(url, {"page": "1"}).status_code == 200
    assert "no page 99" in json_refusal(api.get(url, {"page": "99"}), 404).lower()


@pytest.mark.parametrize(
    "url", ["/api/trials/?state=", "/api/trials/?mode=", "/api/directives/?status="]
)
def test_an_empty_filter_is_refused_not_read_as_no_filter(api: APIClient, url: str) -> None:
    assert api.get(url).status_code == 400


@pytest.mark.parametrize(
    "url", ["/api/nodes/?page=1&page=2", "/api/trials/?state=active&state=bogus"]
)
def test_a_query_parameter_given_twice_is_refused(api: APIClient, url: str) -> None:
    assert "given 2 times" in json_refusal(api.get(url), 400)


@pytest.mark.parametrize(
    "url",
    [
        "/ws/events/?node=a%00b",
        "/ws/alarms/?q=a%00b",
        "/ws/trials/?trial=a%00b",
        "/ws/events/?node=backend-coder&since=1%00",
    ],
)
def test_a_websocket_whose_query_holds_a_nul_is_closed_as_a_bad_query(url: str) -> None:
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator

    from vsmsite.asgi import application

    async def close_code() -> int:
        client = WebsocketCommunicator(application, url, headers=[(b"origin", b"http://localhost")])
        connected, _ = await client.connect()
        assert connected
        message = await client.receive_output(timeout=5)
        assert message["type"] == "websocket.close"
        return int(message["code"])

    assert async_to_sync(close_code)() == 4400


@pytest.mark.parametrize(("handler", "code"), [("bad_request", 400), ("server_error", 500)])
def test_djangos_own_error_pages_answer_json_under_the_api(handler: str, code: int) -> None:
    from django.test import RequestFactory

    from vsmsite import api_input, urls

    assert getattr(urls, f"handler{code}") is getattr(api_input, handler)
    page = getattr(api_input, handler)
    api_answer = page(RequestFactory().get("/api/directives/"), Exception("boom"))
    site_answer = page(RequestFactory().get("/alarms/"), Exception("boom"))

    assert api_answer.status_code == code
    assert api_answer["Content-Type"] == "application/json"
    assert json.loads(api_answer.content)["detail"]
    assert site_answer.status_code == code
    assert not site_answer["Content-Type"].startswith("application/json")


def test_a_nul_in_a_header_is_refused(api: APIClient, unchanged: None) -> None:
    response = api.post(
        "/api/directives/", {"title": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="a\x00b"
    )

    assert "Idempotency-Key header" in json_refusal(response, 400)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'"\\u0000"', "at $ "),
        (b'{"tasks": [{"key": "a", "title": "A\\u0000"}]}', "at $.tasks[0].title"),
        (b'{"reason": {"\\udc80": 1}}', "A key in $.reason"),
    ],
)
def test_the_parser_names_where_a_string_no_column_can_store_is(body: bytes, where: str) -> None:
    with pytest.raises(APIException) as refused:
        BoundedJSONParser().parse(io.BytesIO(body), "application/json", {})

    assert refused.value.status_code == 400
    assert where in str(refused.value.detail)


def test_the_parser_takes_escaped_text_a_column_can_store() -> None:
    body = b'{"title": "\\ud83d\\ude00 \\u00e9", "n": 5}'

    assert BoundedJSONParser().parse(io.BytesIO(body), "application/json", {}) == {
        "title": "\U0001f600 é",
        "n": 5,
    }
