"""A trial's two arms, as its evaluation reads them (docs/rules/trials.md, "Decision rule").

The evidence is read from the task traces, never counted on the side, so an evaluation
after a restart (or twice) sees exactly what is stored:

* the **candidate arm**: traces tagged with the trial (``trial_id``) in its route role
  (control; shadow in shadow mode), since the trial started;
* the **champion arm**: the other traces of work done in the controller's subtree under
  the trial's base version, since the trial started, of the trial's task classes when it
  names some. In shadow mode the candidate's copy and the champion's run of the same task
  form a pair.

A safety breach is a candidate trace with a capability violation, or a pain signal about
one of the candidate's tasks or about the trial itself.

Two readings give the same arms. ``trial_arms`` reads both arms' rows (the watch window
and the chart use it, once). ``trial_arms_cached``, which the evaluation after every trace
uses, reads each trace of the window once: traces are append-only and a trace's arm depends
only on the trace and the trial's fixed settings, so what it read is kept in
``TrialArmTrace`` rows and each evaluation reads only the window's traces not there yet (by
the same arm conditions, in one query of the window's new rows); the champion's sufficient
statistics are integer sums kept on the trial with them (``Trial.champion_totals``), so its
rows are not read at all (but in shadow mode, whose pairs need them). Pain signals can
arrive at any time, so the breaches are read afresh every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.db.models.fields.json import KT, KeyTransform

from ledger.compiled import READINGS, save_fields
from ledger.models import TaskTrace
from ledger.services import ledger_batch_flush_inserts, ledger_batch_insert
from organization.selectors import genome_version
from trials.domain.decision import ArmSummary, Observation
from trials.models import Trial, TrialArmTrace, TrialMode
from workers.models import AlgedonicSignalRecord

CANDIDATE_ROLE: dict[str, str] = {
    TrialMode.SHADOW.value: "shadow"
}  # every other mode's candidate arm: "control"
TASK_CLASS_KEY = "task_metadata.task_class"


class ArmTrace(NamedTuple):
    """What the evaluation reads of one trace: a few columns and two metadata keys, never the
    whole row (an arm is re-read after every trace, and decoding every trace's JSON columns
    was most of the cost). A named tuple: the kept candidate traces are made anew with every
    evaluation, and a tuple is several times cheaper to make than a frozen dataclass."""

    id: str
    task_id: str
    started_at: Any
    total_score: float
    succeeded: bool
    tokens: int
    latency_ms: int
    capability_violation: bool
    task_class: str | None


@dataclass
class Arms:
    """Both arms, oldest first. ``champion_totals``, when given, stands for the champion's
    rows (which are then not read): its sufficient statistics with the breaches counted."""

    candidate: list[ArmTrace] = field(default_factory=list)
    champion: list[ArmTrace] = field(default_factory=list)
    breached_task_ids: set[str] = field(default_factory=set)
    champion_totals: ArmSummary | None = None

    def observations(self, traces: list[ArmTrace]) -> list[Observation]:
        return [observation(trace, self.breached_task_ids) for trace in traces]

    @property
    def champion_count(self) -> int:
        if self.champion_totals is not None:
            return self.champion_totals.n
        return len(self.champion)

    def champion_summary(self) -> ArmSummary:
        if self.champion_totals is not None:
            return self.champion_totals
        return ArmSummary.of(self.observations(self.champion))

    def pairs(self) -> list[tuple[Observation, Observation]]:
        """Shadow mode: the candidate's copy and the champion's run of the same task."""
        champion = {trace.task_id: trace for trace in self.champion}
        return [
            (
                observation(trace, self.breached_task_ids),
                observation(champion[trace.task_id], set()),
            )
            for trace in self.candidate
            if trace.task_id in champion
        ]


def observation(trace: ArmTrace, breached_task_ids: set[str]) -> Observation:
    return Observation(
        success=trace.succeeded,
        tokens=trace.tokens,
        latency_ms=trace.latency_ms,
        safety_breach=trace.capability_violation or trace.task_id in breached_task_ids,
    )


_ARM_COLUMNS = (
    "id",
    "task_id",
    "started_at",
    "outcome_score",
    "delayed_adjustments",
    "reverted",
    "merged",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "violation",
    "task_class",
)


def arm_traces(traces: QuerySet[TaskTrace], limit: int | None = None) -> list[ArmTrace]:
    """The traces of a queryset as the evaluation reads them, oldest first (the first
    ``limit`` of them, when given)."""
    rows = _arm_rows(traces).order_by("started_at", "id").values_list(*_ARM_COLUMNS)
    return [_arm_trace(row) for row in (rows if limit is None else rows[:limit])]


def _arm_rows(traces: QuerySet[TaskTrace]) -> QuerySet[TaskTrace]:
    return traces.annotate(
        violation=KeyTransform("capability_violation", "metadata"),  # the JSON value
        task_class=KT(f"metadata__{TASK_CLASS_KEY}"),
    )


def _arm_trace(row: tuple[Any, ...]) -> ArmTrace:
    id_, task_id, started_at, score, adjustments, reverted, merged, tokens_in = row[:8]
    tokens_out, latency_ms, violation, task_class = row[8:12]
    total = score + sum(float(item.get("delta_score", 0.0)) for item in adjustments)
    return ArmTrace(
        id=id_,
        task_id=task_id,
        started_at=started_at,
        total_score=total,
        succeeded=total > 0 and reverted is not True and merged is not False,
        tokens=tokens_in + tokens_out,
        latency_ms=latency_ms,
        capability_violation=bool(violation),  # a reason; false, null, "" or absent: none
        task_class=task_class,
    )


def _since(trial: Trial) -> Any:
    return trial.started_at or trial.queued_at


def _window(trial: Trial) -> QuerySet[TaskTrace]:
    """The traces of the trial's window: in its controller's subtree since it started. Read
    through the subtree scope index (node, start): the trial routes only inside its
    controller's subtree, so its traces are there, and the read costs the trial's window, not
    the whole history of traces (the metadata keys have no index)."""
    return TaskTrace.objects.filter(
        scopes__node_id=trial.controller_node_id, scopes__started_at__gte=_since(trial)
    )


def _arm_conditions(trial: Trial) -> tuple[Q, Q]:
    """Which traces of the window are the candidate's, and which the champion's (before the
    champion's task-class filter, which ``_in_classes`` applies)."""
    role = CANDIDATE_ROLE.get(trial.mode, "control")
    candidate = Q(metadata__trial_id=trial.id, metadata__trial_route_role=role)
    champion = Q(genome_id=trial.base_version_id) & ~Q(metadata__has_key="trial_id")
    return candidate, champion


def _in_classes(trial: Trial, trace: ArmTrace) -> bool:
    return not trial.allowed_task_classes or trace.task_class in trial.allowed_task_classes


def trial_arms(trial: Trial) -> Arms:
    """Both arms' traces, oldest first, read from their rows (see the module docstring)."""
    in_candidate, in_champion = _arm_conditions(trial)
    window = _window(trial)
    candidate = arm_traces(window.filter(in_candidate))
    champion = [
        trace for trace in arm_traces(window.filter(in_champion)) if _in_classes(trial, trace)
    ]
    breached = _breached_task_ids(trial, candidate, _since(trial))
    return Arms(candidate=candidate, champion=champion, breached_task_ids=breached)


def trial_arms_cached(trial: Trial, *, save: bool = True) -> Arms:
    """The arms ``trial_arms`` reads, from the traces already read for the trial and the
    window's new ones (see the module docstring). Call it holding the trial's row lock (the
    evaluation does), so that two evaluations never read the same new trace at once; the
    unique ``(trial, trace_id)`` refuses a second copy anyway. The champion's sums are
    updated on ``trial.champion_totals``: saved here, or by the caller in the same
    transaction when ``save`` is false (the evaluation saves the trial anyway)."""
    if _read_new_traces(trial) and save:
        save_fields(trial, "champion_totals")
    candidate = [
        ArmTrace(*row)
        for row in READINGS.rows(
            ("kept candidate", trial.id),
            lambda: (
                _kept(trial, TrialArmTrace.Arm.CANDIDATE)
                .order_by("started_at", "trace_id")
                .values_list(*_KEPT_COLUMNS)
            ),
        )
    ]
    breached = _breached_task_ids(trial, candidate, _since(trial))
    if trial.mode == TrialMode.SHADOW:  # the pairs need the champion's rows
        rows = (
            _kept(trial, TrialArmTrace.Arm.CHAMPION)
            .order_by("started_at", "trace_id")
            .values_list(*_KEPT_COLUMNS)
        )
        return Arms(
            candidate=candidate,
            champion=[ArmTrace(*row) for row in rows],
            breached_task_ids=breached,
        )
    return Arms(
        candidate=candidate,
        breached_task_ids=breached,
        champion_totals=_champion_summary(trial, breached),
    )


def _kept(trial: Trial, arm: str) -> QuerySet[TrialArmTrace]:
    """The traces kept for the trial in ``arm``."""
    return TrialArmTrace.objects.filter(trial_id=trial.id, arm=arm)


_KEPT_COLUMNS = (
    "trace_id",
    "task_id",
    "started_at",
    "total_score",
    "succeeded",
    "tokens",
    "latency_ms",
    "capability_violation",
    "task_class",
)


def _read_new_traces(trial: Trial) -> bool:
    """Keep the arm of every trace of the window not read for the trial yet: one read of the
    window's new rows (the anti-join on the kept ones costs index probes, not rows), one
    insert; add the new champion traces to ``trial.champion_totals``. True when those
    changed (the trial is then to be saved)."""
    key = (
        "new traces",
        trial.id,
        trial.mode,
        trial.controller_node_id,
        _since(trial),
        trial.base_version_id,
    )
    new: dict[str, TrialArmTrace] = {}
    for read in READINGS.rows(key, lambda: _new_traces(trial)):
        trace = _arm_trace(read)
        if read[12]:  # tagged with the trial: never the champion's as well
            arm = TrialArmTrace.Arm.CANDIDATE
        elif read[13] and _in_classes(trial, trace):
            arm = TrialArmTrace.Arm.CHAMPION
        else:  # kept too, so that it is not read again
            arm = TrialArmTrace.Arm.NEITHER
        new[trace.id] = TrialArmTrace(
            trial_id=trial.id,
            trace_id=trace.id,
            arm=arm,
            task_id=trace.task_id,
            started_at=trace.started_at,
            total_score=trace.total_score,
            succeeded=trace.succeeded,
            tokens=trace.tokens,
            latency_ms=trace.latency_ms,
            capability_violation=trace.capability_violation,
            task_class=trace.task_class,
        )
    if not new:
        return False
    # Written now (the kept reading below reads them), as the ledger's held inserts are.
    ledger_batch_insert(*new.values())
    ledger_batch_flush_inserts()
    champion = [row for row in new.values() if row.arm == TrialArmTrace.Arm.CHAMPION]
    if not champion:
        return False
    totals = {key: int(trial.champion_totals.get(key, 0)) for key in _TOTALS}
    for row in champion:
        totals["n"] += 1
        totals["successes"] += int(row.succeeded)
        totals["tokens_sum"] += row.tokens
        totals["tokens_sumsq"] += row.tokens * row.tokens
        totals["latency_sum"] += row.latency_ms
        totals["latency_sumsq"] += row.latency_ms * row.latency_ms
        totals["violations"] += int(row.capability_violation)
    trial.champion_totals = totals
    return True


def _new_traces(trial: Trial) -> QuerySet[TaskTrace]:
    """The window's traces not kept for the trial yet, with the arm conditions' values."""
    in_candidate, in_champion = _arm_conditions(trial)
    kept = TrialArmTrace.objects.filter(trial_id=trial.id).values("trace_id")
    return (
        _arm_rows(_window(trial).exclude(id__in=kept))
        .annotate(
            in_candidate=ExpressionWrapper(in_candidate, output_field=BooleanField()),
            in_champion=ExpressionWrapper(in_champion, output_field=BooleanField()),
        )
        .values_list(*_ARM_COLUMNS, "in_candidate", "in_champion")
    )


_TOTALS = (
    "n",
    "successes",
    "tokens_sum",
    "tokens_sumsq",
    "latency_sum",
    "latency_sumsq",
    "violations",
)


def _champion_summary(trial: Trial, breached: set[str]) -> ArmSummary:
    """``ArmSummary.of`` the champion's observations, from its kept sums. They are integer
    sums (tokens and latencies are integers), so they equal the summary's float sums below
    2**53. A champion trace of a breached task is a breach too: those (rare) are counted by
    one query."""
    totals = {key: int(trial.champion_totals.get(key, 0)) for key in _TOTALS}
    breaches = totals["violations"]
    if breached:
        champion = _kept(trial, TrialArmTrace.Arm.CHAMPION)
        breaches += champion.filter(capability_violation=False, task_id__in=breached).count()
    return ArmSummary(
        n=totals["n"],
        successes=totals["successes"],
        tokens_sum=float(totals["tokens_sum"]),
        tokens_sumsq=float(totals["tokens_sumsq"]),
        latency_sum=float(totals["latency_sum"]),
        latency_sumsq=float(totals["latency_sumsq"]),
        safety_breaches=breaches,
    )


def _breached_task_ids(trial: Trial, candidate: list[ArmTrace], since: Any) -> set[str]:
    """The candidate's tasks that a pain signal attributes to the candidate: one naming the
    trial, or one about a node only the candidate genome has. (A streak of failures at a leaf
    both arms share is not the candidate's breach: those failures are already in its rate.)"""
    if not candidate:
        return set()

    def pains() -> QuerySet[AlgedonicSignalRecord, tuple[str | None]]:
        base_nodes = set(genome_version(version_id=trial.base_version_id).nodes)
        candidate_nodes = set(genome_version(version_id=trial.candidate_version_id).nodes)
        own_nodes = candidate_nodes - base_nodes
        return (
            AlgedonicSignalRecord.objects.filter(valence="Pain", created_at__gte=since)
            .filter(Q(related_suggestion_id=trial.id) | Q(target_node_id__in=own_nodes))
            .values_list("related_task_id")
        )

    candidate_tasks = {trace.task_id for trace in candidate}
    key = ("pains", trial.id, since, trial.base_version_id, trial.candidate_version_id)
    pain_task_ids = [row[0] for row in READINGS.rows(key, pains)]  # one read, not two
    breached = {str(task_id) for task_id in pain_task_ids if task_id in candidate_tasks}
    if len(breached) < len(pain_task_ids):
        # A breach not tied to one of its tasks still counts once, on its latest trace.
        breached.add(candidate[-1].task_id)
    return breached
