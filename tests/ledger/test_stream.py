"""/ws/events/ streams a subtree's ledger: history after ``since``, then live, never a gap."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django.test import Client

from ledger import bell, kinds, services, stream
from ledger.models import LedgerEvent
from ledger.selectors import subtree_events_after
from ledger.services import EventDraft, ledger_append, ledger_append_many
from organization.models import Node
from organization.services import genome_bootstrap
from tests import factories
from vsmsite.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

FRAME_KEYS = {
    "seq",
    "id",
    "kind",
    "created_at",
    "node_id",
    "responsible_ancestor_ids",
    "directive_id",
    "task_id",
    "actor",
    "payload",
}


@pytest.fixture
def tree() -> None:
    """root-codebase-system → backend-system → backend-coder."""
    genome_bootstrap(template="nested", actor="operator:test")


@pytest.fixture
def session_cookie(tree: None) -> bytes:
    client = Client()
    client.force_login(factories.admin())
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


def communicator(query: str, cookie: bytes | None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost")]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, f"/ws/events/?{query}", headers=headers)


def run(scenario: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    return async_to_sync(scenario)(*args)


def append_at(node_id: str, **payload: Any) -> LedgerEvent:
    node = Node.objects.get(id=node_id)
    return ledger_append(
        kind=kinds.ENVIRONMENT_SIGNAL,
        node_id=node.id,
        responsible_ancestor_ids=node.ancestor_ids,
        payload=payload,
    )


def subtree_seqs(node_id: str, after_seq: int = 0) -> list[int]:
    return [
        event.seq
        for event in LedgerEvent.objects.filter(seq__gt=after_seq).order_by("seq")
        if event.node_id == node_id or node_id in event.responsible_ancestor_ids
    ]


async def receive_frames(client: WebsocketCommunicator, count: int, timeout: float = 5.0):
    frames = []
    for _ in range(count):
        frames.append(json.loads(await client.receive_from(timeout=timeout)))
    return frames


async def close_code(query: str, cookie: bytes | None) -> int:
    client = communicator(query, cookie)
    connected, _ = await client.connect()
    assert connected  # accepted first, so that a browser can read the close code
    message = await client.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    return int(message["code"])


def test_it_sends_the_subtree_after_since_in_seq_order_then_live_events(
    session_cookie: bytes,
) -> None:
    since = append_at("backend-system", n=0).seq
    append_at("root-codebase-system", n=1)  # above the subtree: not sent
    inside = [append_at("backend-coder", n=2), append_at("backend-system", n=3)]

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        client = communicator(f"node=backend-system&since={since}", session_cookie)
        connected, _ = await client.connect()
        assert connected
        history = await receive_frames(client, 2)
        assert await client.receive_nothing(timeout=0.3)
        live = await database_sync_to_async(append_at)("backend-coder", n=4)
        frame = (await receive_frames(client, 1))[0]
        assert frame["seq"] == live.seq
        await client.disconnect()
        return history, frame

    history, live_frame = run(scenario)

    assert [frame["seq"] for frame in history] == [event.seq for event in inside]
    assert set(live_frame) == FRAME_KEYS
    assert live_frame["node_id"] == "backend-coder"
    assert live_frame["responsible_ancestor_ids"] == ["backend-system", "root-codebase-system"]
    assert live_frame["payload"] == {"n": 4}
    assert live_frame["kind"] == kinds.ENVIRONMENT_SIGNAL


def test_without_since_it_streams_only_what_comes_next(session_cookie: bytes) -> None:
    append_at("backend-coder", n=1)

    async def scenario() -> int:
        client = communicator("node=backend-coder", session_cookie)
        assert (await client.connect())[0]
        assert await client.receive_nothing(timeout=0.3)
        live = await database_sync_to_async(append_at)("backend-coder", n=2)
        frame = (await receive_frames(client, 1))[0]
        await client.disconnect()
        assert frame["seq"] == live.seq
        return int(frame["payload"]["n"])

    assert run(scenario) == 2


def test_the_bell_wakes_the_stream_long_before_its_poll(
    session_cookie: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream.LedgerReader, "poll_interval", 30.0)

    async def scenario() -> float:
        client = communicator("node=backend-system", session_cookie)
        assert (await client.connect())[0]
        await client.receive_nothing(timeout=0.2)
        started = time.monotonic()
        await database_sync_to_async(append_at)("backend-coder")
        await receive_frames(client, 1, timeout=3)
        elapsed = time.monotonic() - started
        await client.disconnect()
        return elapsed

    assert run(scenario) < 3


@pytest.mark.slow  # waits on the one-second poll
def test_without_a_bell_the_stream_still_polls_the_ledger_every_second(
    session_cookie: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ledger.services.ledger_bell_ring", lambda *bell: None)

    async def scenario() -> float:
        client = communicator("node=backend-system", session_cookie)
        assert (await client.connect())[0]
        await client.receive_nothing(timeout=0.2)
        started = time.monotonic()
        await database_sync_to_async(append_at)("backend-coder")
        await receive_frames(client, 1, timeout=3)
        elapsed = time.monotonic() - started
        await client.disconnect()
        return elapsed

    assert run(scenario) < 2.5


def test_it_closes_4401_for_an_anonymous_client(session_cookie: bytes) -> None:
    assert run(close_code, "node=backend-system&since=0", None) == 4401


def test_it_closes_4404_for_an_unknown_node(session_cookie: bytes) -> None:
    assert run(close_code, "node=ghost&since=0", session_cookie) == 4404


@pytest.mark.parametrize(
    "query",
    [
        "node=backend-system&since=abc",
        "node=backend-system&since=-1",
        "node=backend-system&since=1.5",
        "node=backend-system&since=%C2%B2",  # a digit to str.isdigit, not to int
        "node=backend-system&since=" + "9" * 5000,  # past the digits int converts
        "node=backend-system&since=1&since=2",
        "node=backend-system&since=999999",  # beyond the end of the ledger
        "since=0",
        "node=&since=0",
    ],
)
def test_it_closes_4400_for_a_bad_query(session_cookie: bytes, query: str) -> None:
    assert run(close_code, query, session_cookie) == 4400


def test_a_failing_ledger_read_closes_with_try_again_later(
    session_cookie: bytes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(stream, "subtree_events_after", broken)

    async def scenario() -> int:
        client = communicator("node=backend-system&since=0", session_cookie)
        assert (await client.connect())[0]
        closed = await client.receive_output(timeout=5)
        return int(closed["code"])

    assert run(scenario) == 1013
    assert "stopped following the ledger" in caplog.text


@pytest.mark.slow  # waits on the one-second poll
def test_reconnecting_with_the_last_seq_received_loses_and_repeats_nothing(
    session_cookie: bytes,
) -> None:
    """Disconnect mid-run, again and again, while events pour in from another thread."""
    nodes = {node.id: list(node.ancestor_ids) for node in Node.objects.all()}
    writes = 240
    finished = threading.Event()

    def writer() -> None:
        rng = random.Random(7)
        try:
            written = 0
            while written < writes:
                batch = min(rng.choice([1, 1, 1, 3, 10]), writes - written)
                drafts = []
                for _ in range(batch):
                    node_id = rng.choice(sorted(nodes))
                    drafts.append(
                        EventDraft(
                            kind=kinds.ENVIRONMENT_SIGNAL,
                            node_id=node_id,
                            responsible_ancestor_ids=nodes[node_id],
                            payload={"n": written},
                        )
                    )
                    written += 1
                ledger_append_many(drafts=drafts)
                time.sleep(rng.uniform(0, 0.01))
        finally:
            connection.close()
            finished.set()

    async def scenario() -> list[int]:
        received: list[int] = []
        last = 0
        thread = threading.Thread(target=writer)
        thread.start()
        rounds = 0
        while True:
            rounds += 1
            client = communicator(f"node=root-codebase-system&since={last}", session_cookie)
            assert (await client.connect())[0]
            # Take a few frames, then drop the connection in the middle of the flow.
            for _ in range(random.Random(rounds).randint(5, 40)):
                try:
                    frame = json.loads(await client.receive_from(timeout=1.5))
                except TimeoutError:
                    break  # the communicator has cancelled the consumer: gone too
                received.append(frame["seq"])
                last = frame["seq"]
            else:
                await client.disconnect()
            if finished.is_set() and last >= await database_sync_to_async(head)():
                break
            assert rounds < 500
        await database_sync_to_async(thread.join)()
        return received

    def head() -> int:
        return subtree_seqs("root-codebase-system")[-1]

    received = run(scenario)

    expected = subtree_seqs("root-codebase-system")
    assert len(received) == len(set(received)), "a seq was sent twice"
    assert received == expected
    assert received == list(range(received[0], received[-1] + 1))  # contiguous: all in the tree


def test_the_selector_scans_in_chunks_and_reports_how_far_it_read(tree: None) -> None:
    start = append_at("backend-coder").seq
    for index in range(5):
        append_at("root-codebase-system" if index % 2 else "backend-coder", n=index)

    events, scanned = subtree_events_after(node_id="backend-coder", after_seq=start, limit=3)
    assert [event.payload["n"] for event in events] == [0, 2]
    assert scanned == start + 3
    events, scanned = subtree_events_after(node_id="backend-coder", after_seq=scanned, limit=3)
    assert [event.payload["n"] for event in events] == [4]
    assert scanned == start + 5
    assert subtree_events_after(node_id="backend-coder", after_seq=scanned) == ([], scanned)


def test_clients_of_different_subtrees_each_receive_only_their_own_live_events(
    session_cookie: bytes,
) -> None:
    async def scenario() -> dict[str, list[int]]:
        watched = ["root-codebase-system", "backend-system", "backend-coder", "backend-coder"]
        clients = [communicator(f"node={node}", session_cookie) for node in watched]
        for client in clients:
            assert (await client.connect())[0]
        await clients[-1].receive_nothing(timeout=0.2)
        top = await database_sync_to_async(append_at)("root-codebase-system", n=1)
        leaf = await database_sync_to_async(append_at)("backend-coder", n=2)
        middle = await database_sync_to_async(append_at)("backend-system", n=3)
        expected = {0: [top, leaf, middle], 1: [leaf, middle], 2: [leaf], 3: [leaf]}
        received: dict[str, list[int]] = {}
        for index, client in enumerate(clients):
            frames = await receive_frames(client, len(expected[index]))
            assert [frame["seq"] for frame in frames] == [e.seq for e in expected[index]]
            assert await client.receive_nothing(timeout=0.2)
            received[f"{index}:{watched[index]}"] = [frame["payload"]["n"] for frame in frames]
            await client.disconnect()
        return received

    assert run(scenario) == {
        "0:root-codebase-system": [1, 2, 3],
        "1:backend-system": [2, 3],
        "2:backend-coder": [2],
        "3:backend-coder": [2],
    }


def test_a_client_catching_up_from_an_old_since_gets_its_backlog_then_live_events(
    session_cookie: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "SUBTREE_SCAN_CHUNK", 3)  # a backlog of several chunks
    since = append_at("backend-coder", n=-1).seq
    backlog = [append_at("backend-coder", n=n).seq for n in range(10)]

    async def scenario() -> tuple[list[int], list[int]]:
        live_client = communicator("node=backend-coder", session_cookie)
        assert (await live_client.connect())[0]
        late = communicator(f"node=backend-coder&since={since}", session_cookie)
        assert (await late.connect())[0]
        caught_up = [frame["seq"] for frame in await receive_frames(late, len(backlog))]
        live = await database_sync_to_async(append_at)("backend-coder", n=10)
        both = [
            (await receive_frames(late, 1))[0]["seq"],
            (await receive_frames(live_client, 1))[0]["seq"],
        ]
        assert await late.receive_nothing(timeout=0.3)
        assert both == [live.seq, live.seq]
        await late.disconnect()
        await live_client.disconnect()
        return caught_up, both

    caught_up, _ = run(scenario)
    assert caught_up == backlog


def test_a_failing_live_read_closes_every_follower_with_try_again_later(
    session_cookie: bytes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    async def scenario() -> list[int]:
        clients = [communicator(f"node={n}", session_cookie) for n in ("backend-system",) * 3]
        for client in clients:
            assert (await client.connect())[0]
        await clients[0].receive_nothing(timeout=0.2)
        reader_task = stream._readers[asyncio.get_running_loop()]._task
        assert reader_task is not None
        monkeypatch.setattr(stream, "subtree_events_after", broken)
        # A bell without its events (as from a process whose bell could not carry them):
        # the reader must read the ledger for it.
        real_ring = bell.ledger_bell_ring
        monkeypatch.setattr(services, "ledger_bell_ring", lambda seq, events=(): real_ring(seq))
        await database_sync_to_async(append_at)("backend-coder")
        codes = [int((await client.receive_output(timeout=5))["code"]) for client in clients]
        for client in clients:  # the reader has stopped before the connections end
            await client.disconnect()
        assert reader_task.done(), "the reader outlived the connections it served"
        return codes

    assert run(scenario) == [1013, 1013, 1013]
    assert "stopped following the ledger" in caplog.text
