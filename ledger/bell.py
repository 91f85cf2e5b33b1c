"""The ledger's bell: after an append commits, wake the streams that follow the ledger.

The ledger stays the source of truth. ``ledger_bell_ring`` sends
``{"type": "ledger.appended", "seq": <last seq>, "events": [...]}`` to the group
``ledger``: the seq its append committed up to and, when they are few, the events
themselves as the stream shows them (ledger/frames.py), in seq order and without a
gap. A reader whose last seq they continue hands them out without reading the
database; any other reader (a gap, a bell without events) reads the ledger after
its last seq, and every reader reads it at least once a second anyway, so a lost
bell costs at most a second of latency and never an event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from ledger.frames import StreamEvent

if TYPE_CHECKING:
    from ledger.models import LedgerEvent

logger = logging.getLogger(__name__)

LEDGER_GROUP = "ledger"
BELL_MESSAGE_TYPE = "ledger.appended"
# A bell carries its events only up to these bounds; past them it carries the seq alone
# and its readers read the ledger, as for a bell that lost its events.
BELL_MAX_EVENTS = 50
BELL_MAX_FRAME_BYTES = 64 * 1024


class _Bell:
    """Rings the ``ledger`` group from one event loop, one message at a time.

    ``ring`` may be called from any thread and costs a wake-up of the loop.
    Bells coalesce: while one is being sent, and for ``min_gap`` seconds after
    it, later rings only raise the seq of the next one. A burst of appends (or a
    slow or dead Redis) never queues more than one message, and a process sends
    at most 1 / ``min_gap`` bells a second: a Redis ``group_send`` costs CPU
    that the appending thread would otherwise have (bench/ledger_append.py).
    """

    min_gap = 0.01

    def __init__(self, loop: asyncio.AbstractEventLoop, layer: Any) -> None:
        self.loop = loop
        self.layer = layer
        self._pending: int | None = None
        # The events of the pending bell, contiguous in seq; None once they cannot be
        # carried (a gap between two coalesced rings, or past the bounds).
        self._events: list[dict[str, Any]] | None = []
        self._frame_bytes = 0
        self._sending: asyncio.Task[None] | None = None

    def ring(self, seq: int, events: Sequence[LedgerEvent] = ()) -> None:
        self.loop.call_soon_threadsafe(self._want, seq, events)

    def _want(self, seq: int, events: Sequence[LedgerEvent]) -> None:
        self._carry(events)
        self._pending = seq if self._pending is None else max(self._pending, seq)
        if self._sending is None:
            self._sending = self.loop.create_task(self._send())

    def _carry(self, events: Sequence[LedgerEvent]) -> None:
        """Add an append's events to the pending bell's, while they stay carriable."""
        if self._events is None:
            return
        if not events or (self._events and self._events[-1]["seq"] + 1 != events[0].seq):
            self._events = None  # the reader must read: it cannot know what is missing
            return
        for event in events:
            message = StreamEvent.of(event).as_message()
            self._frame_bytes += len(message["frame"])
            self._events.append(message)
        if len(self._events) > BELL_MAX_EVENTS or self._frame_bytes > BELL_MAX_FRAME_BYTES:
            self._events = None

    async def _send(self) -> None:
        while self._pending is not None:
            seq, self._pending = self._pending, None
            message: dict[str, Any] = {"type": BELL_MESSAGE_TYPE, "seq": seq}
            if self._events:
                message["events"] = self._events
            self._events, self._frame_bytes = [], 0
            try:
                await self.layer.group_send(LEDGER_GROUP, message)
            except Exception:
                logger.exception(
                    "ledger bell for seq %s failed; consumers will find the events by polling",
                    seq,
                )
            await asyncio.sleep(self.min_gap)
        self._sending = None


_bell_lock = threading.Lock()
# A layer that crosses processes (Redis) is rung from a daemon thread of this process.
_thread_bell: _Bell | None = None
# The in-memory layer reaches only consumers of this process, on their own loop.
_listener_bell: _Bell | None = None


def _forget_bells_after_fork() -> None:
    # A forked child (a Celery prefork worker) has neither the parent's bell
    # thread nor its consumers.
    global _bell_lock, _thread_bell, _listener_bell
    _bell_lock = threading.Lock()
    _thread_bell = None
    _listener_bell = None


os.register_at_fork(after_in_child=_forget_bells_after_fork)


def _bell_thread_for(layer: Any) -> _Bell:
    global _thread_bell
    with _bell_lock:
        if _thread_bell is None or _thread_bell.layer is not layer:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="ledger-bell", daemon=True).start()
            _thread_bell = _Bell(loop, layer)
        return _thread_bell


def bell_listening(layer: Any) -> None:
    """Called by listeners on their loop: in-memory bells must be rung there."""
    global _listener_bell
    if not isinstance(layer, InMemoryChannelLayer):
        return
    loop = asyncio.get_running_loop()
    with _bell_lock:
        if _listener_bell is None or _listener_bell.loop is not loop:
            _listener_bell = _Bell(loop, layer)


def ledger_bell_ring(seq: int, events: Sequence[LedgerEvent] = ()) -> None:
    """Tell consumers that the ledger has committed events up to ``seq``: ``events``, the
    ones this append committed (in seq order, ending at ``seq``), when the caller has them.

    Runs on commit of every append. Never raises and never waits on the
    network: a failed bell is logged and the consumers' one-second poll finds
    the events anyway. With the in-memory layer it rings only when consumers in
    this process listen (a Celery worker has none; it costs nothing there).
    """
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        if isinstance(layer, InMemoryChannelLayer):
            bell = _listener_bell
            if bell is None or bell.loop.is_closed() or LEDGER_GROUP not in layer.groups:
                return
        else:
            bell = _bell_thread_for(layer)
        bell.ring(seq, events)
    except Exception:
        logger.exception("could not ring the ledger bell for seq %s", seq)
