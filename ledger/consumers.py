"""The live ledger stream: the websocket that follows the chain, woken by ``ledger.bell``.

The ledger is the source of truth; the channel layer only rings a bell. After
a transaction with ledger events commits, ``ledger_bell_ring`` sends
``{"type": "ledger.appended", "seq": <last seq>}`` to the group ``ledger``.
A consumer that hears it (or that has heard nothing for a second) reads the
ledger after the last seq it scanned. A lost bell therefore costs at most a
second of latency and never an event, and a bell carries no event data a
client could receive twice.

``/ws/events/?node=<id>&since=<seq>`` sends, as one JSON text frame per event,
every event of ``node``'s subtree after ``since`` in seq order, then the live
ones. Reconnecting with the last seq received resumes with no gap and no
duplicate. Close codes: 4401 not logged in, 4400 bad query, 4404 unknown node,
1013 (try again later) when reading the ledger failed; the error is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from ledger.bell import LEDGER_GROUP, bell_listening
from ledger.models import LedgerEvent
from ledger.selectors import SUBTREE_SCAN_CHUNK, ledger_head_seq, subtree_events_after
from organization.models import Node

logger = logging.getLogger(__name__)

# Without a bell, a consumer still reads the ledger this often (seconds).
POLL_INTERVAL = 1.0

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_UNKNOWN_NODE = 4404
# "Try again later": htmx's ws extension reconnects on it (not on 1011), and a
# client of /ws/events/ resumes from its last seq without loss.
CLOSE_TRY_AGAIN_LATER = 1013

P = ParamSpec("P")
R = TypeVar("R")


def in_database(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``database_sync_to_async`` with its types: run ``func`` in the ORM's thread,
    closing connections past their age, as a long-lived consumer needs."""
    return cast(Callable[P, Awaitable[R]], database_sync_to_async(func))


# -- following the ledger ------------------------------------------------------


class LedgerFollowingConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    """A websocket that reads the ledger on every bell, and at least once a second.

    Subclasses implement ``ledger_advanced(after_seq)``: send what is new after
    ``after_seq`` and return the last seq scanned.
    """

    poll_interval = POLL_INTERVAL

    _follower: asyncio.Task[None] | None = None
    _bell: asyncio.Event
    _scanned = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when the server cancels the connection without a disconnect message
            # (daphne shutting down): on Redis a channel left in the group would
            # collect bells until the group expires.
            await self._stop_following()

    async def _stop_following(self) -> None:
        if self._follower is None:
            return
        self._follower.cancel()
        self._follower = None
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(
                asyncio.shield(self.channel_layer.group_discard(LEDGER_GROUP, self.channel_name)),
                timeout=2,
            )

    async def refuse(self, code: int) -> None:
        # Accept first: a close before the handshake reaches a browser as a bare
        # HTTP 403, and the client could not tell why.
        await self.accept()
        await self.close(code=code)

    async def start_following(self, *, after_seq: int) -> None:
        self._bell = asyncio.Event()
        self._scanned = after_seq
        await self.channel_layer.group_add(LEDGER_GROUP, self.channel_name)
        bell_listening(self.channel_layer)
        self._follower = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        try:
            while True:
                self._scanned = await self.ledger_advanced(self._scanned)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._bell.wait(), self.poll_interval)
                self._bell.clear()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s stopped following the ledger", type(self).__name__)
            await self.close(code=CLOSE_TRY_AGAIN_LATER)

    async def ledger_advanced(self, after_seq: int) -> int:
        raise NotImplementedError

    async def ledger_appended(self, message: dict[str, Any]) -> None:
        """The bell (message type ``ledger.appended``)."""
        if int(message.get("seq", 0)) > self._scanned:
            self._bell.set()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Clients only listen; anything they send is ignored."""

    async def disconnect(self, code: int) -> None:
        await self._stop_following()


def event_frame(event: LedgerEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "id": event.id,
        "kind": event.kind,
        "created_at": event.created_at.isoformat(),
        "node_id": event.node_id,
        "responsible_ancestor_ids": list(event.responsible_ancestor_ids or ()),
        "directive_id": event.directive_id,
        "task_id": event.task_id,
        "actor": event.actor,
        "payload": event.payload,
    }


def _stream_query(query_string: bytes) -> tuple[str, int | None] | None:
    """(node, since) from ``?node=<id>&since=<seq>``, or None if malformed."""
    query = parse_qs(query_string.decode("latin-1"))
    nodes, sinces = query.get("node", []), query.get("since", [])
    if len(nodes) != 1 or not nodes[0] or len(sinces) > 1:
        return None
    if not sinces:
        return nodes[0], None
    if not sinces[0].isdigit():
        return None
    return nodes[0], int(sinces[0])


@in_database
def _node_exists(node_id: str) -> bool:
    return Node.objects.filter(id=node_id).exists()


@in_database
def _head_seq() -> int:
    return ledger_head_seq()


@in_database
def _subtree_frames(node_id: str, after_seq: int) -> tuple[list[str], int, bool]:
    events, scanned = subtree_events_after(
        node_id=node_id, after_seq=after_seq, limit=SUBTREE_SCAN_CHUNK
    )
    frames = [json.dumps(event_frame(event), separators=(",", ":")) for event in events]
    # A full chunk may have more behind it.
    return frames, scanned, scanned - after_seq >= SUBTREE_SCAN_CHUNK


class LedgerStreamConsumer(LedgerFollowingConsumer):
    """``/ws/events/?node=<id>&since=<seq>``: the ledger of one subtree, as JSON frames.

    ``since`` is the last seq the client has (0 for the whole history); without
    it the stream starts at the current end of the ledger. A ``since`` beyond the
    end of the ledger is refused (4400): events up to it would never be sent.
    """

    node_id: str

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        parsed = _stream_query(self.scope.get("query_string", b""))
        if parsed is None:
            await self.refuse(CLOSE_BAD_REQUEST)
            return
        self.node_id, since = parsed
        if not await _node_exists(self.node_id):
            await self.refuse(CLOSE_UNKNOWN_NODE)
            return
        head = await _head_seq()
        if since is not None and since > head:
            # A seq the ledger has not reached: from another database, or made up.
            await self.refuse(CLOSE_BAD_REQUEST)
            return
        await self.accept()
        await self.start_following(after_seq=head if since is None else since)

    async def ledger_advanced(self, after_seq: int) -> int:
        more = True
        while more:
            frames, after_seq, more = await _subtree_frames(self.node_id, after_seq)
            for frame in frames:
                await self.send(text_data=frame)
        return after_seq
