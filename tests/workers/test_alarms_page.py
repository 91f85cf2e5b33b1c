"""/alarms/: recent algedonic signals and paused subtrees, live, with Pause and Resume per node.

These drive the page and its websocket in-process; tests/browser/test_alarms.py
is a person in Chromium against daphne.
"""

from __future__ import annotations

import re
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
from tests.support.organizations import bootstrap_wide
from tests.support.processes import drain_in_process
from vsmsite.asgi import application
from workers.domain.algedonic import AlgedonicSignal, OverridePolicy
from workers.models import AlgedonicSignalRecord, Envelope
from workers.selectors import NODE_PAGE_SIZE, PINNED_LIMIT
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
    assert response["Location"] == "/login/?next=/alarms/"


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


@pytest.fixture
def viewer_client(tree: None) -> Client:
    client = Client()
    client.force_login(factories.viewer())
    return client


ACTION_FORM = re.compile(r'action="/alarms/nodes/[^"]+/(pause|resume)/')


@pytest.mark.django_db
def test_a_viewer_sees_the_signals_and_pauses_without_pause_or_resume_buttons(
    viewer_client: Client,
) -> None:
    pause("backend-system", message="coverage fell below 60%")

    page = viewer_client.get("/alarms/").content.decode()

    assert "coverage fell below 60%" in page
    assert 'data-paused-node-id="backend-system"' in page
    assert 'data-node-id="backend-coder" data-paused="true"' in page
    assert not ACTION_FORM.search(page)
    assert 'class="pause"' not in page and 'class="resume"' not in page
    assert "needs the <code>workers.raise_signal</code> permission" in page


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
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(factories.operator())
    assert strict.post("/alarms/nodes/backend-system/pause/").status_code == 403
    assert not AlgedonicSignalRecord.objects.exists()


# -- the page's websocket -----------------------------------------------------------


def alarms_socket(client: Client | None, path: str = "/ws/alarms/") -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost")]
    if client is not None:
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


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
    # An operator's live sections carry the buttons, as the page does.
    assert 'action="/alarms/nodes/root-codebase-system/pause/"' in first
    assert 'action="/alarms/nodes/backend-system/resume/"' in paused


@pytest.mark.django_db(transaction=True)
def test_a_viewers_alarms_socket_pushes_the_sections_without_pause_or_resume_buttons(
    viewer_client: Client,
) -> None:
    async def scenario() -> tuple[str, str]:
        socket = alarms_socket(viewer_client)
        assert (await socket.connect())[0]
        first = str(await socket.receive_from(timeout=5))
        await database_sync_to_async(pause)("backend-system")
        paused = await receive_until(socket, 'data-node-id="backend-coder" data-paused="true"')
        await socket.disconnect()
        return first, paused

    first, paused = async_to_sync(scenario)()

    assert 'data-node-id="root-codebase-system"' in first
    assert 'data-paused-node-id="backend-system"' in paused
    for frame in (first, paused):
        assert not ACTION_FORM.search(frame)
        assert 'class="pause"' not in frame and 'class="resume"' not in frame


# -- a large organization -----------------------------------------------------------


@pytest.fixture
def large_organization() -> Client:
    """The root over 10 units of 99 leaves each: 1,000 nodes and the root."""
    bootstrap_wide(units=10, leaves_per_unit=99)
    client = Client()
    client.force_login(factories.operator())
    return client


def node_rows(page: str) -> list[str]:
    return re.findall(r'<tr data-node-id="([^"]+)"', page)


@pytest.mark.django_db
@pytest.mark.slow  # a thousand-node organization
def test_with_a_thousand_nodes_the_page_lists_one_page_of_them_and_still_shows_the_pause(
    large_organization: Client,
) -> None:
    pause("unit-9-leaf-98", message="the last leaf is on fire")

    page = large_organization.get("/alarms/").content.decode()

    rows = node_rows(page)
    assert len(rows) <= NODE_PAGE_SIZE + PINNED_LIMIT
    assert 'data-node-id="unit-9-leaf-98" data-paused="true"' in page
    assert 'data-node-id="unit-9" data-paused="false"' in page  # its ancestors, for context
    assert 'action="/alarms/nodes/unit-9-leaf-98/resume/"' in page
    assert "page 1 of 21 (1001 nodes)" in page
    assert 'rel="next" href="?page=2"' in page
    assert len(rows) == len(set(rows))


@pytest.mark.django_db
@pytest.mark.slow  # a thousand-node organization
def test_the_next_page_and_a_search_show_other_nodes_and_keep_the_listing_on_the_buttons(
    large_organization: Client,
) -> None:
    second = large_organization.get("/alarms/?page=2").content.decode()
    assert node_rows(second)[0] == "unit-0-leaf-48"
    assert "unit-0-leaf-0" not in node_rows(second)
    assert 'action="/alarms/nodes/unit-0-leaf-48/pause/?page=2"' in second
    assert 'ws-connect="/ws/alarms/?page=2"' in second

    found = large_organization.get("/alarms/?q=unit-7-leaf-3").content.decode()
    assert node_rows(found) == ["unit-7-leaf-3", *(f"unit-7-leaf-3{n}" for n in range(10))]
    assert 'value="unit-7-leaf-3"' in found
    assert "No node matches" in large_organization.get("/alarms/?q=ghost").content.decode()

    answer = large_organization.post("/alarms/nodes/unit-0-leaf-48/pause/?page=2")
    assert answer.status_code == 302
    assert answer["Location"] == "/alarms/?page=2"


@pytest.mark.django_db(transaction=True)
def test_the_alarms_socket_renders_the_page_of_nodes_the_visitor_looks_at(
    operator_client: Client,
) -> None:
    async def scenario() -> str:
        socket = alarms_socket(operator_client, "/ws/alarms/?q=coder")
        assert (await socket.connect())[0]
        first = str(await socket.receive_from(timeout=5))
        await socket.disconnect()
        return first

    first = async_to_sync(scenario)()

    assert node_rows(first) == ["backend-coder"]
    assert 'value="coder"' in first


@pytest.mark.django_db(transaction=True)
def test_a_failing_render_closes_the_alarms_socket_with_try_again_later(
    operator_client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("the database went away")

    async def scenario() -> int:
        socket = alarms_socket(operator_client)
        assert (await socket.connect())[0]
        await socket.receive_from(timeout=5)
        monkeypatch.setattr("workers.consumers.alarm_sections_html", broken)
        await database_sync_to_async(pause)("backend-system")
        code = int((await socket.receive_output(timeout=5))["code"])
        # As a server does once the close handshake is over: the consumer leaves the reader.
        await socket.disconnect()
        return code

    assert async_to_sync(scenario)() == 1013
    assert "AlarmsConsumer stopped following the ledger" in caplog.text
