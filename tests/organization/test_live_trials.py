"""The short-lived list of controllers with a live trial: only "none here" is trusted."""

from __future__ import annotations

from typing import Any

import pytest

from organization import selectors
from organization.models import LiveTrial
from organization.selectors import live_trial_possible
from organization.services import genome_bootstrap, genome_candidate_create, live_trial_close

pytestmark = pytest.mark.django_db

ROOT = "root-codebase-system"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr("organization.selectors.time.monotonic", lambda: now[0])
    return now


def open_elsewhere() -> None:
    """A live trial opened by another process: a row, without this process hearing of it."""
    base, _ = genome_bootstrap(template="single", actor="test")
    candidate = genome_candidate_create(
        base_version_id=base.id,
        patch={"kind": "set_node_status", "node_id": "primary-code-service", "status": "Probation"},
        suggestion_id="s-1",
        actor="test",
    )
    LiveTrial.objects.create(
        controller_node_id=ROOT,
        trial_id="s-1",
        candidate_version_id=candidate.id,
        base_version_id=base.id,
        mode="canary",
    )


def test_a_trial_opened_by_another_process_is_seen_within_the_ttl(clock: list[float]) -> None:
    assert not live_trial_possible(controller_node_id=ROOT)
    open_elsewhere()
    assert not live_trial_possible(controller_node_id=ROOT)  # trusted for a moment
    clock[0] += selectors.LIVE_TRIALS_TTL_SECONDS + 0.01
    assert live_trial_possible(controller_node_id=ROOT)


def test_a_closed_trial_is_only_ever_possible_never_trusted_as_live(clock: list[float]) -> None:
    open_elsewhere()
    assert live_trial_possible(controller_node_id=ROOT)
    LiveTrial.objects.all().delete()  # closed by another process
    # Still on this process's list, so the router reads the row, finds none, routes normally.
    assert live_trial_possible(controller_node_id=ROOT)
    assert selectors.live_trial(controller_node_id=ROOT) is None


def test_this_process_closing_a_trial_forgets_the_list(
    clock: list[float], django_capture_on_commit_callbacks: Any
) -> None:
    open_elsewhere()
    assert live_trial_possible(controller_node_id=ROOT)
    with django_capture_on_commit_callbacks(execute=True):
        live_trial_close(trial_id="s-1")
    assert not live_trial_possible(controller_node_id=ROOT)
