"""Websockets that follow the ledger, through the process's shared reader (``ledger.stream``).

``/ws/events/?node=<id>&since=<seq>`` sends, as one JSON text frame per event,
every event of ``node``'s subtree after ``since`` in seq order, then the live
ones. Reconnecting with the last seq received resumes with no gap and no
duplicate. Close codes: 4401 not logged in, 4403 without the consumer's
``required_permission`` (the close reason names it), 4400 bad query, 4404 unknown
node, 1013 (try again later) when reading the ledger failed; the error is logged.

The ledger knows no nodes (it sits below ``organization``), so
``LedgerStreamConsumer`` asks its subclass whether a node exists:
``organization.consumers.SubtreeStreamConsumer`` is the one that is routed.

The live pages' sockets (``/ws/alarms/``, ``/ws/trials/``, ``/ws/directives/``) are
``LivePageConsumer``s: HTML frames for htmx's ws extension, rendered from the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from ledger.frames import StreamEvent
from ledger.selectors import ledger_head_seq
from ledger.stream import events_after, in_database, ledger_reader, reader_stopped

logger = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
# A websocket close reason is at most 123 bytes (RFC 6455, 5.5).
CLOSE_REASON_BYTES = 123
CLOSE_UNKNOWN_NODE = 4404
# "Try again later": htmx's ws extension reconnects on it (not on 1011), and a
# client of /ws/events/ resumes from its last seq without loss.
CLOSE_TRY_AGAIN_LATER = 1013
MAX_SEQ_DIGITS = 18


class LedgerFollowingConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    """A websocket fed by the shared reader of its event loop (a ``ledger.stream.Subscriber``).

    Subclasses implement ``wants`` and ``deliver``; ``start_following`` joins
    the reader after ``after_seq``.
    """

    after_seq = 0
    _following = False
    # Followers hear the ledger through the process's shared reader, so none needs a channel
    # of its own on the layer (on Redis a blocking pop per websocket, whose cancellation at
    # an event loop's end was seen to hang): an alias no settings name subscribes none.
    channel_layer_alias = "vsm-ledger-followers-need-no-channel"
    # The Django permission a user needs to follow (every subclass names one; none: refused).
    required_permission: str | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when the server cancels the connection without a disconnect message
            # (daphne shutting down): the reader must not keep handing it events. If this
            # was its last subscriber, the reader stops before the connection's task ends.
            self.stop_following()
            await reader_stopped()

    def start_following(self, *, after_seq: int) -> None:
        self.after_seq = after_seq
        self._following = True
        ledger_reader(get_channel_layer()).join(self)

    def stop_following(self) -> None:
        if self._following:
            self._following = False
            ledger_reader(get_channel_layer()).leave(self)

    def wants(self, event: StreamEvent) -> bool:
        raise NotImplementedError

    async def deliver(self, events: Sequence[StreamEvent]) -> None:
        raise NotImplementedError

    async def on_read_failure(self) -> None:
        self._following = False
        await self.close(code=CLOSE_TRY_AGAIN_LATER)

    async def refuse(self, code: int, reason: str | None = None) -> None:
        # Accept first: a close before the handshake reaches a browser as a bare
        # HTTP 403, and the client could not tell why.
        await self.accept()
        if reason:
            reason = reason.encode()[:CLOSE_REASON_BYTES].decode(errors="ignore")
        await self.close(code=code, reason=reason)

    async def admit(self) -> bool:
        """Whether the user may follow; if not, the socket is refused (4401 or 4403)."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED, "log in first")
            return False
        permission = self.required_permission
        if permission is None or not await _has_perm(user, permission):
            await self.refuse(
                CLOSE_FORBIDDEN, f"{user.get_username()} lacks the {permission} permission"
            )
            return False
        return True

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Clients only listen; anything they send is ignored."""

    async def disconnect(self, code: int) -> None:
        self.stop_following()


def _stream_query(query_string: bytes) -> tuple[str, int | None] | None:
    """(node, since) from ``?node=<id>&since=<seq>``, or None if malformed."""
    query = parse_qs(query_string.decode("latin-1"))
    nodes, sinces = query.get("node", []), query.get("since", [])
    if len(nodes) != 1 or not nodes[0] or len(sinces) > 1:
        return None
    if not sinces:
        return nodes[0], None
    # Decimal digits, and few enough for a bigint: "²" is a digit to isdigit(), not to int().
    if not sinces[0].isdecimal() or len(sinces[0]) > MAX_SEQ_DIGITS:
        return None
    return nodes[0], int(sinces[0])


@in_database
def _has_perm(user: Any, permission: str) -> bool:
    return bool(user.is_active and user.has_perm(permission))


@in_database
def _head_seq() -> int:
    return ledger_head_seq()


class LedgerStreamConsumer(LedgerFollowingConsumer):
    """``/ws/events/?node=<id>&since=<seq>``: the ledger of one subtree, as JSON frames.

    ``since`` is the last seq the client has (0 for the whole history); without
    it the stream starts at the current end of the ledger. A ``since`` beyond the
    end of the ledger is refused (4400): events up to it would never be sent.
    A client behind the end reads its own backlog first, so that an old
    ``since`` never holds up the shared reader's other subscribers.
    """

    node_id: str
    _catch_up: asyncio.Task[None] | None = None

    async def node_known(self, node_id: str) -> bool:
        """Whether ``node_id`` names a node (the subclass knows the organization)."""
        raise NotImplementedError

    async def connect(self) -> None:
        if not await self.admit():
            return
        parsed = _stream_query(self.scope.get("query_string", b""))
        if parsed is None:
            await self.refuse(CLOSE_BAD_REQUEST)
            return
        self.node_id, since = parsed
        if not await self.node_known(self.node_id):
            await self.refuse(CLOSE_UNKNOWN_NODE)
            return
        head = await _head_seq()
        if since is not None and since > head:
            # A seq the ledger has not reached: from another database, or made up.
            await self.refuse(CLOSE_BAD_REQUEST)
            return
        await self.accept()
        if since is None or since == head:
            self.start_following(after_seq=head)
        else:
            self._catch_up = asyncio.create_task(self._catch_up_then_follow(since))

    async def _catch_up_then_follow(self, after_seq: int) -> None:
        try:
            more = True
            while more:
                events, after_seq, more = await events_after(
                    node_id=self.node_id, after_seq=after_seq
                )
                await self.deliver(events)
        except Exception:
            logger.exception("%s stopped following the ledger", type(self).__name__)
            await self.close(code=CLOSE_TRY_AGAIN_LATER)
            return
        self.start_following(after_seq=after_seq)

    def stop_following(self) -> None:
        if self._catch_up is not None:
            self._catch_up.cancel()
            self._catch_up = None
        super().stop_following()

    def wants(self, event: StreamEvent) -> bool:
        return event.in_subtree_of(self.node_id)

    async def deliver(self, events: Sequence[StreamEvent]) -> None:
        for event in events:
            await self.send(text_data=event.frame)


class LivePageConsumer(LedgerFollowingConsumer):
    """A live page's websocket: whole sections of HTML, rendered from the database.

    After ``accept`` a subclass calls ``go_live``: it reads the ledger's head, renders the
    first frame and follows the reader from that head, so nothing landing in between is
    missed (it is rendered again). Each frame is rendered on a task of its own, so the
    shared reader never waits for a page render; events delivered meanwhile coalesce into
    the next frame. Subclasses implement ``wants`` and ``render``, and ``deliver`` if they
    keep track of what changed (then they call ``changed``). A render that fails closes with
    1013 (the error is logged); one that answers None (what the page shows is gone) closes
    with ``gone_close_code``.
    """

    gone_close_code = CLOSE_UNKNOWN_NODE
    _renderer: asyncio.Task[None] | None = None

    async def render(self) -> str | None:
        """The next frame, or None when what the page shows is gone."""
        raise NotImplementedError

    async def go_live(self) -> None:
        # Read the head before rendering: anything later is rendered again.
        head = await _head_seq()
        self._dirty = asyncio.Event()
        self._dirty.set()
        self._renderer = asyncio.create_task(self._render_changes())
        self.start_following(after_seq=head)

    def changed(self) -> None:
        self._dirty.set()

    async def deliver(self, events: Sequence[StreamEvent]) -> None:
        self.changed()

    async def _render_changes(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                html = await self.render()
            except Exception:
                logger.exception("%s stopped following the ledger", type(self).__name__)
                await self.close(code=CLOSE_TRY_AGAIN_LATER)
                return
            if html is None:
                await self.close(code=self.gone_close_code)
                return
            await self.send(text_data=html)

    def stop_following(self) -> None:
        if self._renderer is not None:
            self._renderer.cancel()
            self._renderer = None
        super().stop_following()
