"""An idle websocket stays open on Redis and still gets the next event (daphne, real layer).

channels-redis waits for a channel's messages with a 5 s blocking pop, and redis-py gives
up on a silent socket after its own 5 s by default: every idle consumer used to crash with
a timeout and close with 1011 about 6 s after its last message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.authtoken.models import Token

from ledger import kinds
from organization.services import genome_bootstrap
from tests import factories
from tests.support.processes import ServerProcess, daphne_server, purge_queues
from tests.support.websocket import WebSocketClient

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (set REDIS_URL)"),
]

IDLE_SECONDS = 30


def post_signal(server: ServerProcess, token: str, message: str) -> int:
    request = urllib.request.Request(
        f"{server.url}/api/signals/",
        data=json.dumps(
            {"severity": 7, "message": message, "target_node_id": "backend-coder"}
        ).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


async def idle_then_event(
    server: ServerProcess, cookie: str, token: str
) -> tuple[int | None, bool]:
    """(the close code if the socket closed while idle, whether the event then arrived)."""
    client = await WebSocketClient.connect(
        server.port,
        "/ws/events/?node=backend-system",
        {"Origin": server.url, "Cookie": cookie},
    )
    frames: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def read() -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            async for message in client.messages():
                await frames.put(json.loads(message))

    reader = asyncio.create_task(read())
    try:
        await asyncio.sleep(IDLE_SECONDS)
        if reader.done():
            return client.close_code, False
        status = await asyncio.to_thread(post_signal, server, token, "after a long silence")
        assert status == 201
        async with asyncio.timeout(10):
            while True:
                frame = await frames.get()
                if frame["kind"] == kinds.ALGEDONIC_SIGNAL_RAISED:
                    return None, True
    except TimeoutError:
        return client.close_code, False
    finally:
        if not reader.done():
            await client.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


def test_a_websocket_idle_for_30_seconds_stays_open_and_receives_the_next_event() -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    operator = factories.admin()
    token = Token.objects.create(user=operator).key
    browser = Client()
    browser.force_login(operator)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"

    with daphne_server() as server:
        closed_with, received = asyncio.run(idle_then_event(server, cookie, token))
        output = server.output
    purge_queues("controllers", "leaves")

    assert closed_with is None, f"closed with {closed_with} while idle:\n{output[-3000:]}"
    assert received, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
