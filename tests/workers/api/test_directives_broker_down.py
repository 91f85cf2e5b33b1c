"""A broker that is down when a directive is accepted: the directive stands, its envelope
waits for the outbox sweeper, and the API says so."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from kombu.exceptions import OperationalError as BrokerError
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from organization.services import genome_bootstrap
from tests import factories
from workers.models import Directive, Envelope
from workers.services.outbox import outbox_sweep

# Transactional: the send happens on commit, before the view writes its answer.
pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/directives/"
BODY = {"title": "Ship it", "metadata": {"requires_code_write": True}}


@pytest.fixture
def client() -> APIClient:
    genome_bootstrap(template="single", actor="operator:test")
    api = APIClient()
    token, _ = Token.objects.get_or_create(user=factories.admin())
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return api


class Broker:
    def __init__(self) -> None:
        self.down = True
        self.sent: list[str] = []

    def __call__(self, *, envelope_id: str, queue: str) -> None:
        if self.down:
            raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        self.sent.append(envelope_id)


@pytest.fixture
def broker() -> Any:
    fake = Broker()
    with mock.patch("workers.services.transport.envelope_send", side_effect=fake):
        yield fake


def test_a_directive_accepted_while_the_broker_is_down_waits_to_be_sent(
    client: APIClient, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.post(URL, BODY, format="json", headers={"Idempotency-Key": "k1"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["waiting_to_send"]) == ("accepted", 1)
    envelope = Envelope.objects.get()
    assert envelope.handled_at is None and envelope.correlation_id == body["id"]
    assert f"sending envelope {envelope.id} to controllers failed" in caplog.text

    retry = client.post(URL, BODY, format="json", headers={"Idempotency-Key": "k1"})
    assert retry.status_code == 200
    assert (retry.json()["id"], retry.json()["waiting_to_send"]) == (body["id"], 1)
    assert Directive.objects.count() == 1 and Envelope.objects.count() == 1

    detail = client.get(f"{URL}{body['id']}/").json()
    listed = client.get(URL).json()["results"]
    assert detail["waiting_to_send"] == 1
    assert [(item["id"], item["waiting_to_send"]) for item in listed] == [(body["id"], 1)]

    # The broker is back: the next sweep sends it, and nothing waits any more.
    broker.down = False
    assert outbox_sweep().sent == [envelope.id]
    assert broker.sent == [envelope.id]
    assert client.get(f"{URL}{body['id']}/").json()["waiting_to_send"] == 0


def test_a_directive_sent_normally_waits_for_nothing(client: APIClient, broker: Broker) -> None:
    broker.down = False
    response = client.post(URL, BODY, format="json")

    assert response.status_code == 201
    assert response.json()["waiting_to_send"] == 0
    assert broker.sent == [Envelope.objects.get().id]
