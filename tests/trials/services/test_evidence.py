"""The evaluation's arms read once per trace (``trial_arms_cached``) are the arms read from
all the rows (``trial_arms``): the same traces in the same order, the same sufficient
statistics, the same breaches, the same decision, after every new trace."""

from __future__ import annotations

import datetime
import itertools
import random

import pytest
from django.utils import timezone

from ledger.models import TaskTrace
from ledger.services import task_trace_record
from trials.domain.decision import ArmSummary
from trials.models import Trial, TrialArmTrace
from trials.services.candidates import suggestion_queue
from trials.services.evaluation import evaluate_arms, trial_evaluate
from trials.services.evidence import Arms, trial_arms, trial_arms_cached
from trials.services.lifecycle import trial_activate
from workers.models import AlgedonicSignalRecord

pytestmark = pytest.mark.django_db

ROOT = "root-codebase-system"
CODER = "primary-code-service"
_numbers = itertools.count()


def _trace(
    trial: Trial,
    rng: random.Random,
    *,
    shadow_pairs: list[str],
    retried: list[str] | None = None,
    kind: str | None = None,
) -> TaskTrace:
    """One trace of any kind the window can hold: either arm's, another role's, another
    trial's, another genome's, a class the trial may not name; some late (started before
    traces already stored), some with violations, adjustments, reverts; some of the
    champion's run a task the candidate ran before (``retried``: a retry)."""
    number = next(_numbers)
    kind = kind or rng.choice(
        ["candidate"] * 4 + ["champion"] * 4 + ["other_role", "other_trial", "other_genome"]
    )
    metadata: dict[str, str] = {"task_metadata.task_class": rng.choice(["code", "docs"])}
    genome_id = trial.base_version_id
    task_id = f"task-{number}"
    role = "shadow" if trial.mode == "shadow" else "control"
    if kind in ("candidate", "other_role", "other_trial"):
        genome_id = trial.candidate_version_id
        other_role = "control" if role == "shadow" else "shadow"
        metadata |= {
            "trial_id": trial.id if kind != "other_trial" else "another-trial",
            "trial_route_role": role if kind != "other_role" else other_role,
        }
        if kind == "candidate" and shadow_pairs and rng.random() < 0.8:
            task_id = shadow_pairs.pop(rng.randrange(len(shadow_pairs)))
    elif kind == "other_genome":
        genome_id = "some-older-version"
    elif trial.mode == "shadow":
        shadow_pairs.append(task_id)
    elif retried and (len(retried) == 1 or rng.random() < 0.3):
        task_id = rng.choice(retried)
    if rng.random() < 0.1:
        metadata["capability_violation"] = "wrote outside its scope"
    late = datetime.timedelta(seconds=rng.choice([0, 0, 0, 5, 40]))
    now = timezone.now()
    return task_trace_record(
        trace=TaskTrace(
            task_id=task_id,
            genome_id=genome_id,
            assigned_node_id=CODER,
            responsible_ancestor_ids=[ROOT],
            started_at=max(now - late, trial.started_at or now),
            completed_at=now,
            input_tokens=rng.randrange(50, 2000),
            output_tokens=rng.randrange(0, 500),
            latency_ms=rng.randrange(10, 5000),
            merged=rng.choice([None, True, False]),
            reverted=rng.choice([None, None, True]),
            outcome_score=rng.choice([1.0, 0.5, -1.0, -6.0, 2.6]),
            delayed_adjustments=[{"delta_score": -2.0}] if rng.random() < 0.1 else [],
            metadata=metadata,
        )
    )


def _pain(trial: Trial, rng: random.Random, task_id: str | None) -> None:
    AlgedonicSignalRecord.objects.create(
        source="ChildNode",
        valence="Pain",
        severity=rng.randrange(1, 10),
        related_suggestion_id=trial.id,
        related_task_id=task_id,
        message="the candidate broke something",
        raised_by=f"node:{CODER}",
    )


def assert_same_arms(trial: Trial) -> None:
    rows, cached = trial_arms(trial), trial_arms_cached(trial)
    assert cached.candidate == rows.candidate
    assert cached.breached_task_ids == rows.breached_task_ids
    assert cached.champion_count == len(rows.champion)
    assert cached.champion_summary() == ArmSummary.of(rows.observations(rows.champion))
    if trial.mode == "shadow":
        assert cached.pairs() == rows.pairs()
    for exhausted in (False, True):
        assert evaluate_arms(trial, cached, exhausted=exhausted) == evaluate_arms(
            trial, rows, exhausted=exhausted
        )


def _trial(champion, make_draft, *, mode: str, classes: list[str], rule: str | None) -> Trial:
    from workers.domain.homeostat import SafetyLimits, TrialMode

    limits = SafetyLimits(max_traffic_share_basis_points=10_000, allowed_task_classes=classes)
    trial = suggestion_queue(
        draft=make_draft(mode=TrialMode(mode.capitalize()), safety_limits=limits), actor="test"
    )
    trial_activate(actor="test")
    trial.refresh_from_db()
    if rule is not None:
        Trial.objects.filter(pk=trial.pk).update(metadata={"decision_rule": rule})
        trial.refresh_from_db()
    return trial


# Each case records about 150 traces and reads both arms 90 times: about a second apiece. The
# fast run keeps one case of each mode; the class filter and the two other decision rules run
# with the slow tests (the whole suite runs all six).
_slow = pytest.mark.slow


@pytest.mark.parametrize(
    ("seed", "mode", "classes", "rule"),
    [
        (1, "canary", [], None),
        pytest.param(2, "canary", ["docs"], None, marks=_slow),
        (3, "shadow", [], None),
        pytest.param(4, "canary", [], "naive_fixed_sample_v1", marks=_slow),
        pytest.param(5, "canary", [], "reference_absolute_v1", marks=_slow),
        (6, "probation", ["code"], None),
    ],
)
def test_the_arms_read_once_are_the_arms_read_from_every_row_after_every_trace(
    champion, make_draft, seed, mode, classes, rule
):
    rng = random.Random(seed)
    trial = _trial(champion, make_draft, mode=mode, classes=classes, rule=rule)
    shadow_pairs: list[str] = []
    candidate_tasks: list[str] = []
    for step in range(90):
        # Several traces may land between two evaluations (two workers finishing at once).
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            stored = _trace(trial, rng, shadow_pairs=shadow_pairs, retried=candidate_tasks)
            if stored.metadata.get("trial_id") == trial.id:
                candidate_tasks.append(stored.task_id)
        if step in (30, 60) and candidate_tasks:  # pain: about one task, and about none
            pained = rng.choice(candidate_tasks) if step == 30 else None
            _pain(trial, rng, pained)
            if pained is not None and trial.mode != "shadow":  # the champion retries it
                _trace(trial, rng, shadow_pairs=[], retried=[pained], kind="champion")
        assert_same_arms(trial)
    kept = TrialArmTrace.objects.filter(trial_id=trial.id)
    assert kept.count() == len(set(kept.values_list("trace_id", flat=True)))  # each once
    assert kept.filter(arm=TrialArmTrace.Arm.NEITHER).exists()  # other traces are kept too


def test_a_trial_evaluated_before_its_traces_were_kept_reads_them_all_at_once(champion, make_draft):
    """A trial that was live before the kept rows existed (or whose rows were lost) starts
    from nothing kept: its first evaluation reads the whole window, as before."""
    rng = random.Random(7)
    trial = _trial(champion, make_draft, mode="canary", classes=[], rule=None)
    for _ in range(60):
        _trace(trial, rng, shadow_pairs=[])
    rows = trial_arms(trial)
    assert not TrialArmTrace.objects.filter(trial_id=trial.id).exists()
    evaluated = trial_evaluate(trial_id=trial.id)
    assert (evaluated.candidate_traces, evaluated.champion_traces) == (
        len(rows.candidate),
        len(rows.champion),
    )
    assert TrialArmTrace.objects.filter(trial_id=trial.id).count() == 60


def test_the_evaluation_reads_each_trace_of_the_window_once(champion, make_draft):
    """After the first evaluation, the next one reads only the new trace's row: the kept
    rows grow by one per trace, never by the window."""
    rng = random.Random(8)
    trial = _trial(champion, make_draft, mode="canary", classes=[], rule=None)
    for expected in range(1, 15):
        _trace(trial, rng, shadow_pairs=[])
        trial_arms_cached(trial)
        assert TrialArmTrace.objects.filter(trial_id=trial.id).count() == expected


def test_an_empty_window_gives_empty_arms(champion, make_draft):
    trial = _trial(champion, make_draft, mode="canary", classes=[], rule=None)
    cached = trial_arms_cached(trial)
    assert cached == Arms(champion_totals=ArmSummary())


@pytest.mark.parametrize(
    ("written", "violation"),
    [("wrote outside its scope", True), (False, False), (None, False), ("", False)],
)
def test_a_capability_violation_is_a_reason_not_the_text_of_false(
    champion, make_draft, written, violation
):
    """A trace's ``capability_violation`` counts when it holds a reason. Stored as JSON
    ``false`` (or null, or empty) it counts on no stack: read as text, PostgreSQL would give
    'false', a true string."""
    trial = _trial(champion, make_draft, mode="canary", classes=[], rule=None)
    now = timezone.now()
    task_trace_record(
        trace=TaskTrace(
            task_id="task-violation",
            genome_id=trial.candidate_version_id,
            assigned_node_id=CODER,
            responsible_ancestor_ids=[ROOT],
            started_at=max(now, trial.started_at or now),
            completed_at=now,
            input_tokens=100,
            output_tokens=10,
            latency_ms=50,
            outcome_score=1.0,
            metadata={
                "trial_id": trial.id,
                "trial_route_role": "control",
                "capability_violation": written,
            },
        )
    )
    assert [t.capability_violation for t in trial_arms(trial).candidate] == [violation]
    assert [t.capability_violation for t in trial_arms_cached(trial).candidate] == [violation]
