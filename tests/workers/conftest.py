"""Fixtures for the runtime's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
    receiver connects its own."""
    for uid, signal in TRIALS_RECEIVERS.items():
        signal.disconnect(dispatch_uid=uid)
    yield
    receivers.connect()
