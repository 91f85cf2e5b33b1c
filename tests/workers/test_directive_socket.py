"""/ws/directives/: a directive's page follows the ledger, its sections swapped out of band."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from ledger import kinds
from ledger.services import EventDraft, ledger_record
from tests import factories
from vsmsite.asgi import application
from workers.models import Directive, Task


@pytest.fixture
def operator_client() -> Client:
    client = Client()
    client.force_login(factories.operator())
    return client


@pytest.fixture
def directive() -> Directive:
    made = Directive.objects.create(
        title="Add a health check", status="running", root_node_id="root", genome_id="g"
    )
    for key, after in (("implementation", []), ("test", ["d-implementation"])):
        Task.objects.create(
            id=f"d-{key}",
            directive=made,
            title=f"the {key} task",
            packet={"title": f"the {key} task"},
            dependencies=after,
            status="routed" if key == "implementation" else "waiting",
        )
    return made


def socket(client: Client | None, query: str) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost")]
    if client is not None:
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, f"/ws/directives/{query}", headers=headers)


def close_code(client: Client | None, query: str) -> int:
    async def scenario() -> int:
        connection = socket(client, query)
        assert (await connection.connect())[0]
        closed = await connection.receive_output(timeout=5)
        return int(closed["code"])

    return async_to_sync(scenario)()


async def receive_until(connection: WebsocketCommunicator, wanted: str, timeout: float = 8) -> str:
    deadline = time.monotonic() + timeout
    while True:
        frame = str(await connection.receive_from(timeout=max(deadline - time.monotonic(), 0.01)))
        if wanted in frame:
            return frame


def task_finishes(task_id: str, directive_id: str) -> None:
    Task.objects.filter(id=task_id).update(status="completed", executed_by="backend-coder")
    ledger_record(
        EventDraft(kind=kinds.TASK_RESULT_RECEIVED, directive_id=directive_id, task_id=task_id)
    )


@pytest.mark.django_db(transaction=True)
def test_the_socket_refuses_strangers_bad_queries_and_unknown_directives(
    directive: Directive, operator_client: Client
) -> None:
    assert close_code(None, f"?directive={directive.id}") == 4401
    assert close_code(operator_client, "") == 4400
    assert close_code(operator_client, f"?directive={directive.id}&directive=x") == 4400
    assert close_code(operator_client, "?directive=no-such-directive") == 4404


@pytest.mark.django_db(transaction=True)
def test_the_socket_refreshes_on_connect_then_redraws_when_a_task_of_the_directive_changes(
    directive: Directive, operator_client: Client
) -> None:
    async def scenario() -> tuple[str, str]:
        connection = socket(operator_client, f"?directive={directive.id}&task=d-test")
        assert (await connection.connect())[0]
        first = await connection.receive_from(timeout=5)
        await database_sync_to_async(task_finishes)("d-implementation", directive.id)
        changed = await receive_until(connection, 'data-status="completed"')
        await connection.disconnect()
        return first, changed

    first, changed = async_to_sync(scenario)()
    for section in ("directive-progress", "directive-graph", "task-detail", "directive-tasks"):
        assert f'id="{section}"' in first and f'id="{section}"' in changed
    assert first.count('hx-swap-oob="true"') == 4
    assert 'data-task-id="d-implementation" data-status="routed"' in first
    assert 'data-task-id="d-implementation" data-status="completed"' in changed
    assert "1 of 2 tasks finished" in changed
    # The task the page has open stays open.
    assert '<h2 id="task-detail-heading" data-task-id="d-test">' in changed
    assert "csrfmiddlewaretoken" not in changed


@pytest.mark.slow  # waits out more than two of the shared reader's one-second polls
@pytest.mark.django_db(transaction=True)
def test_another_directives_events_send_nothing_and_its_own_still_redraw(
    directive: Directive, operator_client: Client
) -> None:
    other = Directive.objects.create(title="other", root_node_id="root", genome_id="g")

    async def scenario() -> str:
        connection = socket(operator_client, f"?directive={directive.id}&task=d-test")
        assert (await connection.connect())[0]
        await connection.receive_from(timeout=5)
        await database_sync_to_async(ledger_record)(
            EventDraft(kind=kinds.TASK_RESULT_RECEIVED, directive_id=other.id)
        )
        assert await connection.receive_nothing(timeout=2.5)
        await database_sync_to_async(task_finishes)("d-implementation", directive.id)
        changed = await receive_until(connection, 'data-status="completed"')
        await connection.disconnect()
        return changed

    assert "1 of 2 tasks finished" in async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_the_socket_closes_with_4404_once_the_directive_is_gone(
    directive: Directive, operator_client: Client
) -> None:
    def directive_deleted() -> None:
        Directive.objects.filter(id=directive.id).delete()
        ledger_record(EventDraft(kind=kinds.TASK_RESULT_RECEIVED, directive_id=directive.id))

    async def scenario() -> int:
        connection = socket(operator_client, f"?directive={directive.id}")
        assert (await connection.connect())[0]
        await connection.receive_from(timeout=5)
        await database_sync_to_async(directive_deleted)()
        code = int((await connection.receive_output(timeout=5))["code"])
        # As a server does once the close handshake is over: the consumer leaves the reader.
        await connection.disconnect()
        return code

    assert async_to_sync(scenario)() == 4404


@pytest.mark.django_db(transaction=True)
def test_a_failing_render_closes_the_socket_with_try_again_later(
    directive: Directive,
    operator_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object) -> str:
        raise RuntimeError("the database went away")

    async def scenario() -> int:
        connection = socket(operator_client, f"?directive={directive.id}")
        assert (await connection.connect())[0]
        await connection.receive_from(timeout=5)
        monkeypatch.setattr("workers.directive_consumer.directive_sections_html", broken)
        await database_sync_to_async(task_finishes)("d-implementation", directive.id)
        code = int((await connection.receive_output(timeout=5))["code"])
        # As a server does once the close handshake is over: the consumer leaves the reader.
        await connection.disconnect()
        return code

    assert async_to_sync(scenario)() == 1013
    assert "DirectiveConsumer stopped following the ledger" in caplog.text
