"""POST /api/environment-signals/: the environment's way into the organization."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ledger import kinds
from ledger.models import LedgerEvent
from organization.services import genome_bootstrap
from tests import factories
from workers.models import Envelope

pytestmark = pytest.mark.django_db
URL = "/api/environment-signals/"
CI_FAILURE = {
    "kind": "Risk",
    "source_environment": "ci",
    "summary": "main is red: test_login fails",
    "evidence": ["job 42 failed", "since commit abc123"],
    "severity": 7,
    "target_node_id": "backend-coder",
}


@pytest.fixture
def api() -> APIClient:
    genome_bootstrap(template="nested", actor="operator:test")
    client = APIClient()
    client.force_authenticate(factories.operator())
    return client


def post(api: APIClient, **body: Any) -> Any:
    return api.post(URL, {**CI_FAILURE, **body}, format="json")


def stored_nothing() -> bool:
    raised = LedgerEvent.objects.filter(kind=kinds.ENVIRONMENT_SIGNAL_RAISED)
    return not raised.exists() and not Envelope.objects.exists()


def test_a_ci_failure_is_stored_and_sent_to_the_controller_of_its_target(api: APIClient) -> None:
    response = post(api)

    assert response.status_code == 201, response.content
    body = response.json()
    envelope = Envelope.objects.get(id=body["envelope_id"])
    assert envelope.payload["id"] == body["id"]
    assert envelope.channel_type == "OperationToEnvironment"
    assert envelope.payload_type == "vsm.environment_signal"
    assert envelope.target_node_id == "backend-system"
    assert envelope.correlation_id == body["id"]
    assert envelope.metadata == {"raised_by": "user:operator"}
    assert (body["channel"], body["handled_by_controller"]) == (
        "OperationToEnvironment",
        "backend-system",
    )
    assert (body["kind"], body["severity"], body["evidence"]) == (
        "Risk",
        7,
        ["job 42 failed", "since commit abc123"],
    )


def test_the_raise_is_recorded_in_the_ledger_before_the_envelope_is_published(
    api: APIClient,
) -> None:
    body = post(api).json()

    events = list(LedgerEvent.objects.filter(correlation_id=body["id"]).order_by("seq"))
    assert [event.kind for event in events] == [
        kinds.ENVIRONMENT_SIGNAL_RAISED,
        kinds.MESSAGE_PUBLISHED,
    ]
    raised = events[0]
    assert raised.actor == "user:operator"
    assert raised.node_id == "backend-coder"
    assert raised.payload["channel"] == "OperationToEnvironment"
    assert raised.payload["handled_by_controller"] == "backend-system"
    assert raised.payload["summary"] == CI_FAILURE["summary"]


def test_a_signal_about_no_node_goes_to_the_root(api: APIClient) -> None:
    response = post(api, target_node_id=None, kind="UserFeedback", source_environment="users")

    assert response.status_code == 201, response.content
    assert response.json()["handled_by_controller"] == "root-codebase-system"


@pytest.mark.parametrize("channel", ["FutureProbeToEnvironment", "EnvironmentToEnvironment"])
def test_the_request_may_choose_another_environment_channel(api: APIClient, channel: str) -> None:
    response = post(api, channel=channel, kind="Opportunity")

    assert response.status_code == 201, response.content
    assert Envelope.objects.get(id=response.json()["envelope_id"]).channel_type == channel


def test_a_signal_of_kind_other_says_what_it_is(api: APIClient) -> None:
    response = post(api, kind="Other", other_kind="press coverage")

    assert response.status_code == 201, response.content
    assert response.json()["other_kind"] == "press coverage"


def test_an_observing_node_becomes_the_envelopes_source(api: APIClient) -> None:
    response = post(api, observed_by_node_id="backend-coder")

    assert Envelope.objects.get(id=response.json()["envelope_id"]).source_node_id == "backend-coder"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target_node_id": "ghost"}, "target_node_id"),
        ({"observed_by_node_id": "ghost"}, "observed_by_node_id"),
        ({"channel": "Algedonic"}, "channel"),
        ({"channel": "ResourceBargaining"}, "channel"),
        ({"kind": "Meh"}, "kind"),
        ({"kind": "Other"}, "other_kind"),
        ({"other_kind": "not other"}, "other_kind"),
        ({"severity": 11}, "severity"),
        ({"severity": -1}, "severity"),
        ({"severity": "7"}, "severity"),
        ({"severity": 7.0}, "severity"),
        ({"severity": True}, "severity"),
        ({"summary": ""}, "summary"),
        ({"summary": 42}, "summary"),
        ({"source_environment": ""}, "source_environment"),
        ({"source_environment": ["ci"]}, "source_environment"),
        ({"evidence": "one string"}, "evidence"),
        ({"evidence": [1]}, "evidence"),
        ({"evidence": ["x"] * 51}, "evidence"),
        ({"metadata": {"k": {"nested": "no"}}}, "metadata"),
        ({"target_node_id": 3}, "target_node_id"),
    ],
)
def test_a_bad_signal_gets_a_400_naming_the_field_and_stores_nothing(
    api: APIClient, body: dict[str, Any], field: str
) -> None:
    response = post(api, **body)

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert stored_nothing()


@pytest.mark.parametrize("missing", ["kind", "source_environment", "summary"])
def test_a_signal_missing_a_required_field_is_refused(api: APIClient, missing: str) -> None:
    body = {k: v for k, v in CI_FAILURE.items() if k != missing}

    response = api.post(URL, body, format="json")

    assert response.status_code == 400
    assert missing in response.json()
    assert stored_nothing()


def test_before_there_is_an_organization_a_signal_is_refused() -> None:
    client = APIClient()
    client.force_authenticate(factories.operator())

    response = client.post(URL, CI_FAILURE, format="json")

    assert response.status_code == 400
    assert "organization" in response.json()
    assert stored_nothing()


def test_anonymous_signals_are_refused(api: APIClient) -> None:
    assert APIClient().post(URL, CI_FAILURE, format="json").status_code == 401
    assert stored_nothing()


def test_a_bad_token_is_refused(api: APIClient) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    assert client.post(URL, CI_FAILURE, format="json").status_code == 401
    assert stored_nothing()


def test_an_operators_token_is_enough(api: APIClient) -> None:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=factories.operator())}"
    )

    assert client.post(URL, CI_FAILURE, format="json").status_code == 201


def test_a_viewers_token_is_refused_with_the_permission_it_lacks(api: APIClient) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=factories.viewer())}")

    response = client.post(URL, CI_FAILURE, format="json")

    assert response.status_code == 403
    assert "workers.raise_signal" in response.json()["detail"]
    assert "operator" in response.json()["detail"]
    assert stored_nothing()
