"""/alarms/: recent algedonic signals and paused subtrees, live, with Pause and Resume per node.

These drive the page and its websocket in-process; tests/browser/test_alarms.py
is a person in Chromium against daphne.
"""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from organization.models import SubtreePause
from organization.services import genome_bootstrap
from tests import factories
from tests.support.processes import drain_in_process
from vsmsite.asgi import application
from workers.domain.algedonic import AlgedonicSignal, OverridePolicy
from workers.models import AlgedonicSignalRecord, Envelope
from workers.services.algedonic import signal_raise


@pytest.fixture
def tree() -> None:
    genome_bootstrap(template="nested", actor="operator:test")


@pytest.fixture
def operator_client(tree: None) -> Client:
    client = Client()
    client.force_login(factories.operator())
    return client


def pause(node_id: str, message: str = "tests are red") -> AlgedonicSignalRecord:
    record = signal_raise(
        signal=AlgedonicSignal(
            severity=8,
            target_node_id=node_id,
            message=message,
            override_policy=OverridePolicy(pause_subtree=True),
        ),
        raised_by="user:operator",
    )
    drain_in_process()
    return record


# -- the page, rendered on the server -------------------------------------------


@pytest.mark.django_db
def test_it_sends_an_anonymous_visitor_to_the_login_form(tree: None) -> None:
    response = Client().get("/alarms/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/alarms/"


@pytest.mark.django_db
def test_a_full_load_lists_signals_pauses_and_every_node_without_javascript(
    operator_client: Client,
) -> None:
    pause("backend-system", message="coverage fell below 60%")

    page = operator_client.get("/alarms/").content.decode()

    assert "coverage fell below 60%" in page
    assert 'data-paused-node-id="backend-system"' in page
    assert 'data-node-id="backend-coder" data-paused="true"' in page
    assert 'data-node-id="root-codebase-system" data-paused="false"' in page
    assert 'action="/alarms/nodes/backend-system/resume/"' in page
    assert 'action="/alarms/nodes/root-codebase-system/pause/"' in page
    assert 'name="csrfmiddlewaretoken"' in page  # the forms work without htmx
    assert 'ws-connect="/ws/alarms/"' in page
    assert "/static/vendor/htmx/htmx.min.js" in page
    assert "/static/vendor/htmx/ext/ws.min.js" in page
    assert "//unpkg.com" not in page and "cdn" not in page.lower()


@pytest.mark.django_db
def test_pause_without_htmx_raises_a_pause_signal_and_comes_back_to_the_page(
    operator_client: Client,
) -> None:
    response = operator_client.post("/alarms/nodes/backend-system/pause/")

    assert response.status_code == 302
    assert response["Location"] == "/alarms/"
    record = AlgedonicSignalRecord.objects.get()
    assert record.target_node_id == "backend-system"
    assert record.raised_by == "user:operator"
    assert record.override_policy is not None and record.override_policy["pause_subtree"]
    assert Envelope.objects.filter(target_node_id="root-codebase-system").exists()
    assert not SubtreePause.objects.exists()  # the controller pauses, not the view
    followed = operator_client.get("/alarms/").content.decode()
    assert "Pause of backend-system requested" in followed

    drain_in_process()
    assert SubtreePause.objects.filter(node_id="backend-system").exists()


@pytest.mark.django_db
def test_resume_with_htmx_answers_with_the_flash_fragment(operator_client: Client) -> None:
    pause("backend-system")

    response = operator_client.post("/alarms/nodes/backend-system/resume/", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith('<div id="alarm-flash"')
    assert "Resume of backend-system requested" in body
    drain_in_process()
    assert not SubtreePause.objects.exists()


@pytest.mark.django_db
def test_pause_and_resume_refuse_unknown_nodes_get_requests_and_strangers(
    operator_client: Client,
) -> None:
    assert operator_client.post("/alarms/nodes/ghost/pause/").status_code == 404
    assert operator_client.get("/alarms/nodes/backend-system/pause/").status_code == 405
    anonymous = Client().post("/alarms/nodes/backend-system/pause/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(factories.operator())
    assert strict.post("/alarms/nodes/backend-system/pause/").status_code == 403
    assert not AlgedonicSignalRecord.objects.exists()


# -- the page's websocket -----------------------------------------------------------


def alarms_socket(client: Client | None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost")]
    if client is not None:
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/alarms/", headers=headers)


@pytest.mark.django_db(transaction=True)
def test_the_alarms_socket_refuses_anonymous_visitors_with_4401(tree: None) -> None:
    async def scenario() -> int:
        socket = alarms_socket(None)
        assert (await socket.connect())[0]
        closed = await socket.receive_output(timeout=5)
        return int(closed["code"])

    assert async_to_sync(scenario)() == 4401


async def receive_until(socket: WebsocketCommunicator, wanted: str, timeout: float = 5) -> str:
    """Frames until one contains ``wanted`` (an event may land in one frame or several)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = str(await socket.receive_from(timeout=max(deadline - time.monotonic(), 0.01)))
        if wanted in frame:
            return frame


@pytest.mark.django_db(transaction=True)
def test_the_alarms_socket_refreshes_on_connect_then_pushes_what_lands(
    operator_client: Client,
) -> None:
    async def scenario() -> tuple[str, str, str]:
        socket = alarms_socket(operator_client)
        assert (await socket.connect())[0]
        first = await socket.receive_from(timeout=5)
        await database_sync_to_async(signal_raise)(
            signal=AlgedonicSignal(severity=3, target_node_id="backend-coder", message="slow"),
            raised_by="user:operator",
        )
        raised = await receive_until(socket, ">slow<")
        await database_sync_to_async(pause)("backend-system")
        paused = await receive_until(socket, 'data-node-id="backend-coder" data-paused="true"')
        await socket.disconnect()
        return first, raised, paused

    first, raised, paused = async_to_sync(scenario)()

    for section in ("alarm-signals", "alarm-pauses", "alarm-nodes"):
        assert (
            f'<section id="{section}" aria-labelledby="{section}-heading" hx-swap-oob="true"'
            in first
        )
    assert 'id="alarm-signals"' in raised
    assert 'id="alarm-nodes"' not in raised  # only the sections an event changes
    assert 'data-paused-node-id="backend-system"' in paused
    assert "csrfmiddlewaretoken" not in paused  # htmx sends the token from <body hx-headers>
