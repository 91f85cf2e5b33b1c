"""The per-process ledger reader: one read per bell, fanned out to every live consumer.

Each websocket that follows the ledger used to read it itself, and daphne runs
ORM calls one after another on its single database thread, so the last of N
clients waited for N reads (about 1 ms each). Here one ``LedgerReader`` per
event loop reads the ledger once after the lowest seq any subscriber needs,
on every bell and at least once every ``poll_interval`` seconds (workers in
other processes never ring an in-memory bell), and hands each subscriber the
events past its own ``after_seq`` that it ``wants``, in seq order. A bell that
carries its append's events (ledger/bell.py) saves the read when they continue
the lowest ``after_seq``: the common case, one append at a time.

No gap and no duplicate: a subscriber's ``after_seq`` is the last seq it has
been handed or shown to be uninterested in, the reader reads ``seq >`` the
lowest of them, and only the reader moves them on. A subscriber joining late
(after catching up on its own backlog) only pulls the next read back to its
seq. A lost bell costs at most a poll; a failed read is logged and closes
every subscriber with ``on_read_failure`` (the consumers close with 1013,
after which clients resume from their last seq).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from channels.db import database_sync_to_async

from ledger.bell import BELL_MESSAGE_TYPE, LEDGER_GROUP, bell_listening
from ledger.frames import StreamEvent
from ledger.selectors import SUBTREE_SCAN_CHUNK, subtree_events_after

logger = logging.getLogger(__name__)

# Without a bell, the reader still reads the ledger this often (seconds).
POLL_INTERVAL = 1.0
# channels-redis forgets group members after its group_expiry (300 s here);
# the reader joins its group again well before that.
REJOIN_INTERVAL = 60.0
# What a stopping reader sends its own listener so its receive returns, and how long each
# step of stopping may take.
READER_STOP_MESSAGE_TYPE = "ledger.reader_stop"
STOP_TIMEOUT = 2.0

P = ParamSpec("P")
R = TypeVar("R")


def in_database(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``database_sync_to_async`` with its types: run ``func`` in the ORM's thread,
    closing connections past their age, as a long-lived consumer needs."""
    return cast(Callable[P, Awaitable[R]], database_sync_to_async(func))


@in_database
def events_after(*, node_id: str | None, after_seq: int) -> tuple[list[StreamEvent], int, bool]:
    """One chunk after ``after_seq``: (events, last seq scanned, whether more may follow)."""
    events, scanned = subtree_events_after(
        node_id=node_id, after_seq=after_seq, limit=SUBTREE_SCAN_CHUNK
    )
    return (
        [StreamEvent.of(event) for event in events],
        scanned,
        (scanned - after_seq >= SUBTREE_SCAN_CHUNK),
    )


class Subscriber(Protocol):
    """A consumer of the shared reader. The reader alone moves ``after_seq`` on."""

    after_seq: int

    def wants(self, event: StreamEvent) -> bool: ...

    async def deliver(self, events: Sequence[StreamEvent]) -> None: ...

    async def on_read_failure(self) -> None: ...


class LedgerReader:
    """Reads the ledger for every subscriber on one event loop; runs while it has any."""

    poll_interval = POLL_INTERVAL

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.subscribers: set[Subscriber] = set()
        self._wake = asyncio.Event()
        # The events bells carried since the last hand-out, batch by batch; and whether
        # the next hand-out must read the ledger (a poll, a join, a bell without events).
        self._belled: list[list[dict[str, Any]]] = []
        self._read_needed = True
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def join(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)
        # Read soon: events between the subscriber's catch-up and now are not belled again.
        self._read_needed = True
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def leave(self, subscriber: Subscriber) -> None:
        """Without subscribers the reader stops on its own (``_follow`` returns, the listener
        is woken by a message, never cancelled mid-receive); ``reader_stopped`` awaits it."""
        self.subscribers.discard(subscriber)
        if not self.subscribers and self._task is not None:
            self._retire()
            self._wake.set()

    def _retire(self) -> None:
        """No subscriber left: this loop gets a new reader on its next join, and this one's
        task, ending on its own, is left for ``reader_stopped`` to await."""
        if self._task is not None:
            _stopping[asyncio.get_running_loop()] = self._task
            self._task = None
        _forget(self)

    async def _run(self) -> None:
        channel = await self.layer.new_channel()
        listener = asyncio.create_task(self._listen(channel))
        try:
            await self._follow()
        finally:
            self._stopped = True
            # Wake the listener's receive with a message of its own rather than cancel it:
            # channels-redis can swallow a cancellation mid-receive and go on popping, which
            # held event loops at their end (seen on PostgreSQL + Redis test runs).
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(
                    self.layer.send(channel, {"type": READER_STOP_MESSAGE_TYPE}), STOP_TIMEOUT
                )
            # Wait for the listener, then cancel it without waiting again: a cancellation
            # swallowed mid-receive must not hold the reader (wait_for would wait for it).
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait({listener}, timeout=STOP_TIMEOUT)
            if not listener.done():
                listener.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(
                    self.layer.group_discard(LEDGER_GROUP, channel), STOP_TIMEOUT
                )

    async def _listen(self, channel: str) -> None:
        """Turn bells into wake-ups; join the group again before it forgets us.

        A layer that fails (Redis restarting) only costs the bell: the poll goes on.
        """
        joined = 0.0
        while not self._stopped:
            try:
                if time.monotonic() - joined > REJOIN_INTERVAL:
                    await self.layer.group_add(LEDGER_GROUP, channel)
                    bell_listening(self.layer)
                    joined = time.monotonic()
                # A layer call may swallow the reader's cancellation (channels-redis's
                # group_add can): look whether the reader stopped before waiting a minute.
                # Not a shorter wait instead: each timeout cancels a receive mid-read, which
                # channels-redis and redis-py do not survive reliably.
                if self._stopped:
                    return
                with contextlib.suppress(TimeoutError):
                    message = await asyncio.wait_for(self.layer.receive(channel), REJOIN_INTERVAL)
                    if message.get("type") == BELL_MESSAGE_TYPE:
                        events = message.get("events")
                        if events:
                            self._belled.append(events)
                        else:
                            self._read_needed = True
                        self._wake.set()
            except Exception:
                if self._stopped:
                    return
                logger.exception("the ledger reader cannot hear the bell; it polls meanwhile")
                joined = 0.0
                await asyncio.sleep(self.poll_interval)

    async def _follow(self) -> None:
        while self.subscribers:
            self._wake.clear()
            batches, self._belled = self._belled, []
            read, self._read_needed = self._read_needed, False
            try:
                for batch in batches:
                    if not await self._hand_out_belled(batch):
                        read = True
                if read:
                    await self._read_and_hand_out()
            except Exception:
                logger.exception(
                    "the ledger reader stopped following the ledger; closing %d subscribers",
                    len(self.subscribers),
                )
                await self._fail_everyone()
                return
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            except TimeoutError:
                self._read_needed = True  # the poll: bells from elsewhere may be lost

    async def _hand_out_belled(self, batch: list[dict[str, Any]]) -> bool:
        """Hand out the events a bell carried, if they continue the lowest seq any
        subscriber needs; False when they do not (a gap: the ledger must be read)."""
        if not self.subscribers:
            return True
        events = [StreamEvent.from_message(message) for message in batch]
        after_seq = min(subscriber.after_seq for subscriber in self.subscribers)
        if events[-1].seq <= after_seq:
            return True  # read already
        if events[0].seq > after_seq + 1:
            return False
        for subscriber in list(self.subscribers):
            await self._hand_out(subscriber, events, events[-1].seq)
        return True

    async def _read_and_hand_out(self) -> None:
        more = True
        while more and self.subscribers:
            after_seq = min(subscriber.after_seq for subscriber in self.subscribers)
            events, scanned, more = await events_after(node_id=None, after_seq=after_seq)
            for subscriber in list(self.subscribers):
                await self._hand_out(subscriber, events, scanned)

    async def _hand_out(
        self, subscriber: Subscriber, events: Sequence[StreamEvent], scanned: int
    ) -> None:
        if subscriber not in self.subscribers or subscriber.after_seq >= scanned:
            return
        mine = [e for e in events if e.seq > subscriber.after_seq and subscriber.wants(e)]
        try:
            if mine:
                await subscriber.deliver(mine)
        except Exception:
            # One client's broken socket must not stall the others.
            logger.exception("could not hand ledger events to %r", subscriber)
            with contextlib.suppress(Exception):
                await subscriber.on_read_failure()
            # Last: leaving the last subscriber ends this very loop (the reader stops).
            self.leave(subscriber)
            return
        subscriber.after_seq = scanned

    async def _fail_everyone(self) -> None:
        failed, self.subscribers = list(self.subscribers), set()
        self._retire()
        for subscriber in failed:
            with contextlib.suppress(Exception):
                await subscriber.on_read_failure()


_readers: dict[asyncio.AbstractEventLoop, LedgerReader] = {}
# The reader task of each loop that lost its last subscriber and is stopping.
_stopping: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}


async def reader_stopped() -> None:
    """Wait (at most a few seconds) for this loop's reader to stop, if its last subscriber
    just left: a websocket's handler awaits it on its way out, so no reader task outlives
    the connection that was keeping it (nor the event loop, in tests)."""
    task = _stopping.pop(asyncio.get_running_loop(), None)
    if task is None or task.done():
        return
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), 3 * STOP_TIMEOUT)


def _forget(reader: LedgerReader) -> None:
    for loop, known in list(_readers.items()):
        if known is reader:
            del _readers[loop]


def ledger_reader(layer: Any) -> LedgerReader:
    """The reader of the running event loop (daphne has one per process)."""
    loop = asyncio.get_running_loop()
    for stale in [known for known in _readers if known.is_closed()]:
        del _readers[stale]
    reader = _readers.get(loop)
    if reader is None or reader.layer is not layer:
        reader = _readers[loop] = LedgerReader(layer)
    return reader
