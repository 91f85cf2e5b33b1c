"""An outage answers 503 with Retry-After; the API answers every error in JSON."""

from __future__ import annotations

from typing import Any

import kombu.exceptions
import pytest
import redis.exceptions
from django.db import InterfaceError, OperationalError
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from organization.services import genome_bootstrap
from tests import factories
from workers.models import Directive

pytestmark = pytest.mark.django_db

DIRECTIVES = "/api/directives/"


@pytest.fixture
def api() -> APIClient:
    genome_bootstrap(template="nested", actor="operator:test")
    client = APIClient()
    token = Token.objects.create(user=factories.admin())
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture(autouse=True)
def _debug_on(settings: Any) -> None:
    """As under `make run`: errors must not become Django's debug pages even then."""
    settings.DEBUG = True


def assert_unavailable_json(response: Any) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "service_unavailable"
    assert "not answering" in response.json()["detail"]


@pytest.mark.parametrize(
    "outage",
    [
        OperationalError("connection to server at 127.0.0.1, port 5432 failed"),
        InterfaceError("connection already closed"),
        kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379"),
        redis.exceptions.ConnectionError("Connection refused"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
    ],
    ids=type,
)
def test_a_submission_during_an_outage_gets_a_json_503_to_retry(
    api: APIClient, monkeypatch: pytest.MonkeyPatch, outage: Exception
) -> None:
    def down(**kwargs: Any) -> None:
        raise outage

    monkeypatch.setattr("workers.api.directive_submit", down)

    response = api.post(DIRECTIVES, {"title": "Add a health check"}, format="json")

    assert_unavailable_json(response)
    assert not Directive.objects.exists()


def test_a_read_during_a_database_outage_gets_a_json_503(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(self: Any) -> None:
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr("workers.api.DirectiveListCreate.get_queryset", down)

    assert_unavailable_json(api.get(DIRECTIVES))


def test_a_broker_error_inside_a_view_gets_a_json_503(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr("workers.api.directive_submit", broker_down)

    assert_unavailable_json(api.post(DIRECTIVES, {"title": "Add a health check"}, format="json"))


@pytest.mark.django_db(transaction=True)
def test_a_broker_down_at_publish_after_the_commit_is_no_outage_for_the_caller(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directive is committed before its message is sent: a failed send is the outbox
    sweeper's to repeat (docs/operations.md, "Work waiting to be sent"), so the caller gets
    the directive, with its work shown as waiting, rather than a 503 inviting a retry."""

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr("workers.services.transport.envelope_send", broker_down)

    response = api.post(DIRECTIVES, {"title": "Add a health check"}, format="json")

    assert response.status_code == 201
    assert response.json()["status"] == "accepted"
    assert response.json()["waiting_to_send"] == 1


def test_a_page_during_an_outage_gets_a_plain_503_not_a_debug_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    browser = Client()
    browser.force_login(factories.admin())

    def down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("could not connect to server")

    monkeypatch.setattr("workers.views.alarms._context", down)

    response = browser.get("/alarms/")

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith("text/plain")
    assert b"Traceback" not in response.content


def test_an_outage_inside_another_middleware_is_a_503_too(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(self: Any, request: Any, response: Any) -> None:
        raise OperationalError("could not write the session")

    monkeypatch.setattr(
        "django.contrib.sessions.middleware.SessionMiddleware.process_response", down
    )
    api.raise_request_exception = False

    assert_unavailable_json(api.get(DIRECTIVES))


def test_an_unknown_api_url_is_a_json_404(api: APIClient) -> None:
    response = api.get("/api/no-such-thing/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not Found", "code": "not_found"}


def test_an_unexpected_error_in_the_api_is_a_logged_json_500(
    api: APIClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kwargs: Any) -> None:
        raise ZeroDivisionError("a bug of ours")

    monkeypatch.setattr("workers.api.directive_submit", broken)

    response = api.post(DIRECTIVES, {"title": "Add a health check"}, format="json")

    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert "a bug of ours" not in response.content.decode()
    assert any(
        "ZeroDivisionError: a bug of ours" in r.exc_text for r in caplog.records if r.exc_text
    )


def test_the_api_s_own_errors_stay_as_they_were(api: APIClient) -> None:
    response = api.post(DIRECTIVES, {"title": ""}, format="json")

    assert response.status_code == 400
    assert "title" in response.json()
