"""Fixtures for the runtime's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.dispatch import Signal

from trials import receivers
from workers import signals

TRIALS_RECEIVERS = {
    "trials.freeze": signals.mutation_freeze_requested,
    "trials.gene": signals.gene_suggested,
    "trials.audit": signals.audit_report_received,
    "trials.evidence": signals.trial_evidence_arrived,
}


@pytest.fixture(autouse=True)
def _trials_receivers_disconnected() -> Iterator[None]:
    """The runtime's tests assert what it sends (``workers.signals``), not what the trials app
    does with it: that app's receivers are tested in ``tests/trials``. A test that needs a
    receiver connects its own (``listening``)."""
    for uid, signal in TRIALS_RECEIVERS.items():
        signal.disconnect(dispatch_uid=uid)
    yield
    receivers.connect()


class Listener:
    """A receiver that remembers every call's kwargs and answers ``reply``."""

    def __init__(self, reply: Any = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.reply = reply

    def __call__(self, sender: str, **kwargs: Any) -> Any:
        kwargs.pop("signal", None)
        self.calls.append({"sender": sender, **kwargs})
        return self.reply


@pytest.fixture
def listening() -> Iterator[Any]:
    """``listening(signal, reply=None)`` connects a Listener for the rest of the test."""
    connected: list[tuple[Signal, Listener]] = []

    def listen(signal: Signal, reply: Any = None) -> Listener:
        listener = Listener(reply)
        signal.connect(listener, weak=False)
        connected.append((signal, listener))
        return listener

    yield listen
    for signal, listener in connected:
        signal.disconnect(listener)
