"""The shared reader's bell listener stops soon after its last subscriber leaves, even when the
channel layer swallows the cancellation (channels-redis's group_add can)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from asgiref.sync import async_to_sync

from ledger import stream


class SwallowingLayer:
    """A layer whose group_add eats a cancellation and whose receive never gets a message."""

    def __init__(self) -> None:
        self.joined = asyncio.Event()

    async def new_channel(self) -> str:
        return "reader-channel"

    async def group_add(self, group: str, channel: str) -> None:
        self.joined.set()
        # Swallowed, as a layer that retries its connection may do.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.2)

    async def group_discard(self, group: str, channel: str) -> None:
        return None

    async def receive(self, channel: str) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}


class Quiet:
    after_seq = 0

    def wants(self, event: Any) -> bool:
        return False

    async def deliver(self, events: Any) -> None:
        return None

    async def on_read_failure(self) -> None:
        return None


def test_a_listener_whose_cancellation_was_swallowed_still_stops_within_seconds(monkeypatch):
    async def no_events(**kwargs: Any) -> tuple[list[Any], int, bool]:
        return [], 0, False

    monkeypatch.setattr(stream, "events_after", no_events)
    monkeypatch.setattr(stream, "bell_listening", lambda layer: None)

    async def scenario() -> float:
        layer = SwallowingLayer()
        reader = stream.LedgerReader(layer)
        subscriber = Quiet()
        reader.join(subscriber)
        await layer.joined.wait()
        left = time.monotonic()
        reader.leave(subscriber)
        # What async_to_sync (and daphne at shutdown) does: wait for every task to end.
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        await asyncio.wait_for(asyncio.gather(*others, return_exceptions=True), timeout=10)
        return time.monotonic() - left

    assert async_to_sync(scenario)() < 2  # not the minute the listener waits for a bell
