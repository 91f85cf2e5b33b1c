"""trials.selectors: the lists an operator reads and the evidence bundle they decide on."""

from __future__ import annotations

import pytest

from ledger.chain import canonical_json
from tests.trials.operators import (
    BACKEND,
    CANDIDATE_NUMBERS,
    DIFFERENCE,
    EVALUATION,
    EVIDENCE,
    HYPOTHESIS,
    make_trial,
    organization,
    record_traces,
)
from trials.charts import arm_chart
from trials.errors import TrialNotFound
from trials.models import Trial
from trials.selectors import (
    evidence_hash,
    trial_evidence_bundle,
    trial_get,
    trial_inbox,
    trial_list,
    trial_pending,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _organization() -> None:
    organization()


def test_pending_means_awaiting_an_operator_exactly_as_the_model_says() -> None:
    waiting = make_trial()
    inconclusive = make_trial(
        state=Trial.State.INCONCLUSIVE, controller_node_id=BACKEND, queued_minutes_ago=30
    )
    make_trial(state=Trial.State.QUEUED)
    make_trial(state=Trial.State.PROMOTED)
    approved = make_trial(state=Trial.State.ACTIVE, approved=True, controller_node_id=BACKEND)

    pending = list(trial_pending())

    assert pending == [waiting, inconclusive]  # the longest waiting first
    assert all(trial.awaiting_operator for trial in pending)
    assert not approved.awaiting_operator


def test_the_inbox_puts_pending_first_then_running_then_the_rest() -> None:
    queued = make_trial(state=Trial.State.QUEUED, queued_minutes_ago=5)
    running = make_trial(requires_approval=False)
    waiting = make_trial(controller_node_id=BACKEND)
    ended = make_trial(state=Trial.State.PRUNED, queued_minutes_ago=90)

    inbox = trial_inbox()

    assert inbox.pending == [waiting]
    assert inbox.active == [running]
    assert inbox.recent == [queued, ended]


def test_the_list_filters_by_state_mode_and_controller() -> None:
    canary = make_trial(mode="canary", requires_approval=False)
    shadow = make_trial(mode="shadow", controller_node_id=BACKEND)
    queued = make_trial(state=Trial.State.QUEUED)

    assert set(trial_list()) == {canary, shadow, queued}
    assert set(trial_list(state="active")) == {canary, shadow}
    assert list(trial_list(mode="shadow")) == [shadow]
    assert list(trial_list(controller_node_id=BACKEND)) == [shadow]
    assert list(trial_list(state="queued", mode="canary")) == []


def test_trial_get_names_the_missing_trial() -> None:
    with pytest.raises(TrialNotFound, match="ghost"):
        trial_get(trial_id="ghost")


def test_the_bundle_holds_hypothesis_diff_numbers_series_and_recommendation() -> None:
    trial = make_trial(evaluation=EVALUATION, verdict="inconclusive", reason="interval has 0")
    record_traces(trial, candidate=[1.0, 1.0, -1.0], champion=[1.0, -1.0])

    bundle = trial_evidence_bundle(trial=trial_get(trial_id=trial.id))

    assert bundle["suggestion"]["hypothesis"] == HYPOTHESIS
    assert bundle["suggestion"]["evidence"] == EVIDENCE
    diff = bundle["genome_diff"]
    assert diff["nodes_added"] == ["review-probation-leaf"]
    assert diff["nodes_removed"] == []
    changed = {change["node_id"]: change["fields"] for change in diff["nodes_changed"]}
    assert changed == {"root-codebase-system": ["children"]}
    decision = bundle["decision"]
    assert decision["candidate"] == {
        "n": 24,
        "successes": 20,
        "rate": CANDIDATE_NUMBERS["rate"],
        "interval": CANDIDATE_NUMBERS["wilson"],
    }
    assert decision["difference"] == {
        "estimate": DIFFERENCE["estimate"],
        "interval": [DIFFERENCE["lower"], DIFFERENCE["upper"]],
    }
    assert [(g["name"], g["passed"]) for g in decision["guardrails"]] == [
        ("tokens", True),
        ("latency", False),
    ]
    assert decision["verdict"] == "continue"
    series = bundle["series"]
    assert [(p["n"], p["successes"]) for p in series["candidate"]] == [(1, 1), (2, 2), (3, 2)]
    assert [(p["n"], p["successes"]) for p in series["champion"]] == [(1, 1), (2, 1)]
    assert bundle["recommendation"] == {"verdict": "inconclusive", "reason": "interval has 0"}
    canonical_json(bundle)  # JSON values only: it can be hashed


def test_traces_before_the_trial_started_count_for_neither_arm() -> None:
    trial = make_trial()
    assert trial.started_at is not None
    record_traces(trial, candidate=[1.0], champion=[1.0])
    early = make_trial(state=Trial.State.QUEUED)

    assert trial_evidence_bundle(trial=early)["series"]["candidate"] == []
    assert len(trial_evidence_bundle(trial=trial)["series"]["champion"]) == 1


def test_the_hash_is_stable_and_changes_with_the_evidence() -> None:
    trial = make_trial()
    first = evidence_hash(trial_evidence_bundle(trial=trial_get(trial_id=trial.id)))
    again = evidence_hash(trial_evidence_bundle(trial=trial_get(trial_id=trial.id)))
    record_traces(trial, candidate=[1.0], champion=[])
    later = evidence_hash(trial_evidence_bundle(trial=trial_get(trial_id=trial.id)))

    assert first == again
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 64
    assert later != first


def test_the_chart_draws_one_line_per_arm_within_its_frame() -> None:
    trial = make_trial()
    record_traces(trial, candidate=[1.0, -1.0], champion=[1.0, 1.0, 1.0])

    chart = arm_chart(trial_evidence_bundle(trial=trial)["series"])

    assert [(line.arm, line.n) for line in chart.lines] == [("candidate", 2), ("champion", 3)]
    for line in chart.lines:
        for point in line.points.split():
            x, y = (float(v) for v in point.split(","))
            assert chart.left <= x <= chart.right and chart.top <= y <= chart.bottom
    assert arm_chart({"candidate": [], "champion": []}).empty
