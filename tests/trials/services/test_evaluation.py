"""Each trial is decided against the champion's traces of the same window, from the traces."""

from __future__ import annotations

import datetime
import itertools

import pytest
from django.utils import timezone

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.services import task_trace_record
from organization.models import LiveTrial
from organization.selectors import champion_version_id, genome_version
from tests.factories import approver
from trials.models import Trial
from trials.services.approvals import trial_approve
from trials.services.candidates import suggestion_queue
from trials.services.evaluation import trial_evaluate
from trials.services.lifecycle import trial_activate
from trials.services.schedule import trials_tick
from trials.services.watch import watch_check
from workers.models import AlgedonicSignalRecord

pytestmark = pytest.mark.django_db

ROOT = "root-codebase-system"
CODER = "primary-code-service"
_task_ids = itertools.count()


def trace(
    *,
    genome_id: str,
    success: bool,
    trial: Trial | None = None,
    tokens: int = 100,
    task_class: str = "code",
    adjustments: list[dict[str, float]] | None = None,
    task_id: str | None = None,
    route_role: str = "control",
    **metadata_extra: str,
):
    task_id = task_id or f"task-{next(_task_ids)}"
    metadata: dict[str, str] = {"task_metadata.task_class": task_class}
    if trial is not None:
        metadata |= {
            "trial_id": trial.id,
            "related_suggestion_id": trial.id,
            "trial_route_role": route_role,
            "candidate_genome_id": trial.candidate_version_id,
        }
    metadata |= metadata_extra
    return task_trace_record(
        trace=TaskTrace(
            task_id=task_id,
            genome_id=genome_id,
            assigned_node_id=CODER,
            responsible_ancestor_ids=[ROOT],
            related_suggestion_ids=[trial.id] if trial else [],
            started_at=timezone.now(),
            completed_at=timezone.now(),
            input_tokens=tokens,
            latency_ms=50,
            merged=None if success else False,
            outcome_score=1.0 if success else -1.0,
            delayed_adjustments=adjustments or [],
            metadata=metadata,
        )
    )


def arms(trial: Trial, *, candidate: tuple[int, int], champion: tuple[int, int]) -> None:
    """Store (successes, failures) traces for each arm."""
    for success, count in ((True, candidate[0]), (False, candidate[1])):
        for _ in range(count):
            trace(genome_id=trial.candidate_version_id, success=success, trial=trial)
    for success, count in ((True, champion[0]), (False, champion[1])):
        for _ in range(count):
            trace(genome_id=trial.base_version_id, success=success)


@pytest.fixture
def active(champion, make_draft):
    trial = suggestion_queue(draft=make_draft(), actor="test")
    trial_activate(actor="test")
    trial.refresh_from_db()
    return trial


def test_with_no_evidence_it_continues_and_records_nothing_new(active):
    trial_evaluate(trial_id=active.id)
    trial_evaluate(trial_id=active.id)
    assert not LedgerEvent.objects.filter(kind=kinds.TRIAL_DECISION_RECORDED).exists()
    assert Trial.objects.get(pk=active.pk).state == Trial.State.ACTIVE


def test_one_lucky_success_never_promotes(active):
    arms(active, candidate=(1, 0), champion=(0, 1))
    trial = trial_evaluate(trial_id=active.id)
    assert trial.state == Trial.State.ACTIVE
    assert trial.verdict == "continue"
    decision = LedgerEvent.objects.get(kind=kinds.TRIAL_DECISION_RECORDED)
    assert decision.payload["numbers"]["traces_needed"]["candidate"] == 19
    # Where the reference's rule (min 10 traces) waits too, ten lucky ones would promote it.
    arms(active, candidate=(9, 0), champion=(0, 9))
    trial = trial_evaluate(trial_id=active.id)
    assert trial.state == Trial.State.ACTIVE
    latest = LedgerEvent.objects.filter(kind=kinds.TRIAL_DECISION_RECORDED).last()
    assert latest is not None and latest.payload["reference_rule"]["verdict"] == "promote"


def test_a_clearly_better_candidate_is_promoted_with_the_numbers_it_used(champion, active):
    arms(active, candidate=(55, 5), champion=(20, 40))

    trial = trial_evaluate(trial_id=active.id)

    assert trial.state == Trial.State.PROMOTED
    assert champion_version_id() == trial.promoted_version_id
    assert "review-probation-leaf" in genome_version(version_id=str(champion_version_id())).nodes
    decision = LedgerEvent.objects.get(kind=kinds.TRIAL_DECISION_RECORDED, trial_id=trial.id)
    numbers = decision.payload["numbers"]
    assert numbers["arms"]["candidate"]["n"] == 60
    assert numbers["arms"]["champion"]["n"] == 60
    assert numbers["difference"]["lower"] > 0
    low, high = numbers["arms"]["candidate"]["wilson"]
    assert low < 55 / 60 < high
    assert decision.payload["verdict"] == "promote"
    assert decision.payload["reference_rule"]["verdict"] == "promote"  # for comparison only
    recorded = LedgerEvent.objects.filter(kind=kinds.TRIAL_TRACE_RECORDED, trial_id=trial.id)
    assert recorded.count() == 60
    assert not LiveTrial.objects.exists()


def test_a_clearly_worse_candidate_is_pruned_and_the_champion_stays(champion, active):
    arms(active, candidate=(10, 50), champion=(45, 15))
    trial = trial_evaluate(trial_id=active.id)
    assert trial.state == Trial.State.PRUNED
    assert champion_version_id() == champion.id


def test_champion_traces_of_other_task_classes_are_not_compared(champion, make_draft):
    trial = suggestion_queue(
        draft=make_draft(
            safety_limits=make_draft().safety_limits.__class__(
                max_traffic_share_basis_points=10_000, allowed_task_classes=["docs"]
            )
        ),
        actor="test",
    )
    trial_activate(actor="test")
    trial.refresh_from_db()
    arms(trial, candidate=(0, 0), champion=(30, 0))  # all of class "code"
    evaluated = trial_evaluate(trial_id=trial.id)
    assert evaluated.champion_traces == 0


def test_champion_traces_of_the_allowed_task_class_are_the_ones_compared(champion, make_draft):
    limits = make_draft().safety_limits.__class__(
        max_traffic_share_basis_points=10_000, allowed_task_classes=["docs"]
    )
    trial = suggestion_queue(draft=make_draft(safety_limits=limits), actor="test")
    trial_activate(actor="test")
    trial.refresh_from_db()
    for task_class in ("docs", "docs", "code"):
        trace(genome_id=trial.base_version_id, success=True, task_class=task_class)
    trace(genome_id=trial.candidate_version_id, success=True, trial=trial, task_class="docs")
    evaluated = trial_evaluate(trial_id=trial.id)
    assert (evaluated.candidate_traces, evaluated.champion_traces) == (1, 2)


def test_a_capability_violation_on_a_candidate_trace_is_a_safety_breach(active):
    arms(active, candidate=(30, 0), champion=(5, 25))
    trace(
        genome_id=active.candidate_version_id,
        success=True,
        trial=active,
        capability_violation="wrote outside its scope",
    )
    trial = trial_evaluate(trial_id=active.id)
    assert trial.state == Trial.State.PRUNED
    assert "safety" in trial.reason or "breach" in trial.reason


def test_a_delayed_adjustment_that_sinks_a_score_makes_the_trace_a_failure(active):
    """The evaluation reads the score with its later adjustments (a revert found after the
    fact), not the first outcome."""
    reverted_later = [{"delta_score": -2.0}]
    for _ in range(40):
        trace(
            genome_id=active.candidate_version_id,
            success=True,
            trial=active,
            adjustments=reverted_later,
        )
    arms(active, candidate=(0, 0), champion=(35, 5))
    trial = trial_evaluate(trial_id=active.id)
    assert trial.state == Trial.State.PRUNED
    assert trial.evaluation["numbers"]["arms"]["candidate"]["successes"] == 0


def test_a_pain_signal_about_the_trial_prunes_it(active):
    arms(active, candidate=(30, 0), champion=(5, 25))
    AlgedonicSignalRecord.objects.create(
        source="ChildNode",
        valence="Pain",
        severity=7,
        related_suggestion_id=active.id,
        message="the candidate broke the build",
        raised_by="node:primary-code-service",
    )
    trial = trial_evaluate(trial_id=active.id)
    assert trial.state == Trial.State.PRUNED
    assert "safety" in trial.reason or "breach" in trial.reason


def test_at_its_deadline_an_undecided_trial_waits_for_an_operator(active):
    arms(active, candidate=(12, 10), champion=(11, 10))
    Trial.objects.filter(pk=active.pk).update(
        deadline=timezone.now() - datetime.timedelta(minutes=1)
    )

    trial = trial_evaluate(trial_id=active.id)

    assert trial.state == Trial.State.INCONCLUSIVE and trial.awaiting_operator
    assert "deadline" in trial.reason
    assert not LiveTrial.objects.exists()
    # The operator overrides with a reason: the candidate is promoted.
    trial_approve(trial_id=trial.id, user=approver(), reason="the team wants the reviewer")
    trial.refresh_from_db()
    assert trial.state == Trial.State.PROMOTED


def test_a_trial_whose_tasks_are_all_traced_is_concluded(champion, make_draft):
    trial = suggestion_queue(draft=make_draft(max_tasks=5), actor="test")
    trial_activate(actor="test")
    trial.refresh_from_db()
    LiveTrial.objects.filter(trial_id=trial.id).update(routed_tasks=5)
    arms(trial, candidate=(3, 2), champion=(3, 2))

    assert trial_evaluate(trial_id=trial.id).state == Trial.State.INCONCLUSIVE


def test_the_tick_activates_queued_trials_and_evaluates_live_ones(champion, make_draft):
    trial = suggestion_queue(draft=make_draft(), actor="test")
    report = trials_tick()
    assert report.activated == [trial.id]
    trial.refresh_from_db()
    arms(trial, candidate=(55, 5), champion=(20, 40))
    report = trials_tick()
    assert report.evaluated == [trial.id]
    assert Trial.objects.get(pk=trial.pk).state == Trial.State.PROMOTED


def test_a_promotion_that_regresses_in_its_watch_window_is_rolled_back(champion, active):
    arms(active, candidate=(58, 2), champion=(30, 30))
    trial = trial_evaluate(trial_id=active.id)
    assert trial.state == Trial.State.PROMOTED
    for _ in range(trial.watch_tasks):
        trace(genome_id=str(trial.promoted_version_id), success=False)

    watch_check(trial_id=trial.id)

    trial.refresh_from_db()
    assert trial.state == Trial.State.ROLLED_BACK
    assert (
        "review-probation-leaf" not in genome_version(version_id=str(champion_version_id())).nodes
    )


def test_a_promotion_that_holds_up_is_kept(champion, active):
    arms(active, candidate=(55, 5), champion=(30, 30))
    trial = trial_evaluate(trial_id=active.id)
    for _ in range(trial.watch_tasks - 1):
        trace(genome_id=str(trial.promoted_version_id), success=True)
    watch_check(trial_id=trial.id)
    assert Trial.objects.get(pk=trial.pk).watch == Trial.Watch.WATCHING  # not full yet
    trace(genome_id=str(trial.promoted_version_id), success=True)
    watch_check(trial_id=trial.id)
    trial.refresh_from_db()
    assert (trial.state, trial.watch) == (Trial.State.PROMOTED, Trial.Watch.PASSED)
    assert champion_version_id() == trial.promoted_version_id


def test_a_shadow_trial_is_decided_on_pairs_of_the_same_tasks(champion, make_draft):
    from workers.domain.homeostat import TrialMode

    trial = suggestion_queue(draft=make_draft(mode=TrialMode.SHADOW), actor="test")
    trial_activate(actor="test")
    trial.refresh_from_db()
    for index in range(40):
        # The champion's run and the candidate's shadow copy of the same task.
        champion_run = trace(genome_id=trial.base_version_id, success=index % 3 == 0)
        trace(
            genome_id=trial.candidate_version_id,
            success=True,
            trial=trial,
            task_id=champion_run.task_id,
            route_role="shadow",
            trial_shadow="true",
        )

    evaluated = trial_evaluate(trial_id=trial.id)

    assert evaluated.state == Trial.State.PROMOTED, evaluated.reason
    numbers = LedgerEvent.objects.get(kind=kinds.TRIAL_DECISION_RECORDED).payload["numbers"]
    assert numbers["design"] == "paired"
    assert numbers["pairs"]["n"] == 40
