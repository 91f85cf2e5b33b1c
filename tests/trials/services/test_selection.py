"""Activation picks the best queued candidate, archives every evaluation, and the archive
learns each trial's real outcome when it ends (docs/rules/trials.md, "Activation")."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.services import EventDraft, ledger_record, task_trace_record
from organization.services import genome_apply_patch
from trials.models import ArchiveRecord, Trial
from trials.services.candidates import suggestion_queue
from trials.services.lifecycle import trial_activate, trial_freeze
from trials.services.promotion import trial_prune
from workers.domain.homeostat import SafetyLimits, SuggestionSource, TrialMode

pytestmark = pytest.mark.django_db

ROOT = "root-codebase-system"
CODER = "primary-code-service"
_task_ids = itertools.count()

BOUNDED = SafetyLimits(max_tasks=10, max_token_budget=100_000, max_traffic_share_basis_points=1000)


def manual_direct(make_draft, name: str = "manual"):
    return make_draft(
        name=name,
        mode=TrialMode.DIRECT,
        share=None,
        source=SuggestionSource.OTHER,
        other_source="Operator",
    )


def algedonic_canary(make_draft, name: str = "algedonic"):
    return make_draft(name=name, source=SuggestionSource.ALGEDONIC_SIGNAL, safety_limits=BOUNDED)


def trace(*, genome_id: str, outcome: float, trial: Trial | None = None, **fields: object):
    metadata: dict[str, str] = dict(fields.pop("metadata", {}))  # type: ignore[call-overload]
    if trial is not None:
        metadata |= {"trial_id": trial.id, "trial_route_role": "control"}
    return task_trace_record(
        trace=TaskTrace(
            task_id=f"task-{next(_task_ids)}",
            genome_id=genome_id,
            assigned_node_id=CODER,
            responsible_ancestor_ids=[ROOT],
            started_at=timezone.now(),
            completed_at=timezone.now(),
            outcome_score=outcome,
            metadata=metadata,
            **fields,
        )
    )


def started_payload(trial: Trial) -> dict:
    return LedgerEvent.objects.get(kind=kinds.TRIAL_STARTED, trial_id=trial.id).payload


def test_a_later_bounded_algedonic_canary_beats_an_earlier_manual_direct(champion, make_draft):
    manual = suggestion_queue(draft=manual_direct(make_draft), actor="test")
    algedonic = suggestion_queue(draft=algedonic_canary(make_draft), actor="test")

    started = trial_activate(actor="test")

    assert started is not None and started.id == algedonic.id
    manual.refresh_from_db()
    assert manual.state == Trial.State.QUEUED
    algedonic.refresh_from_db()
    assert algedonic.metadata["selection_policy"] == "pareto_empirical_candidate_score_v1"
    assert algedonic.metadata["selection_score"] == 30 + 20 + 2 + 8 + 4 + 10
    assert algedonic.metadata["pareto_frontier_size"] == 1
    assert algedonic.metadata["candidate_objectives"] == (
        "expected_value=32.000;safety=52.000;historical_fit=0.000;replay_fit=0.000;"
        "complexity_cost=11.000;exposure_cost=20.000"
    )
    assert "source=algedonic_signal:+30.0" in algedonic.metadata["selection_reasons"]
    payload = started_payload(algedonic)
    assert payload["source"] == "queued_candidate"
    assert payload["selection_score"] == 74
    assert payload["candidate_objectives"]["exposure_cost"] == 20
    assert payload["environment_pressure"]["event_count"] == 0
    assert payload["historical_replay"]["policy"] == "route_counterfactual_v2"


def test_an_archive_record_is_written_for_every_evaluated_candidate(champion, make_draft):
    manual = suggestion_queue(draft=manual_direct(make_draft), actor="test")
    algedonic = suggestion_queue(draft=algedonic_canary(make_draft), actor="test")
    equal = suggestion_queue(draft=algedonic_canary(make_draft, name="algedonic-2"), actor="test")

    trial_activate(actor="test")

    records = {record.trial_id: record for record in ArchiveRecord.objects.all()}
    assert records.keys() == {manual.id, algedonic.id, equal.id}
    assert len({record.activation_id for record in records.values()}) == 1
    assert records[algedonic.id].status == ArchiveRecord.Status.SELECTED_FOR_TRIAL
    # An equal candidate stays on the frontier; the older one wins the tie.
    assert records[equal.id].status == ArchiveRecord.Status.PARETO_FRONTIER
    assert records[manual.id].status == ArchiveRecord.Status.DOMINATED
    assert {record.frontier_size for record in records.values()} == {2}
    dominated = records[manual.id]
    assert dominated.policy == "pareto_empirical_candidate_score_v1"
    assert dominated.selection_score == 5 + 5 + 2 - 20
    assert dominated.objectives["safety"] == 5 - 30
    assert dominated.reasons[-1] == "unbounded_direct_penalty:-20.0"
    assert dominated.metadata["suggestion_source"] == "Operator"
    assert dominated.metadata["trial_mode"] == "direct"
    assert dominated.outcome == "" and dominated.realised_score is None
    # Every candidate carries its replay summary.
    manual.refresh_from_db()
    assert manual.metadata["historical_replay"]["policy"] == "route_counterfactual_v2"


def test_a_dominated_candidate_loses_even_with_selection_priority_1000(champion, make_draft):
    favourite = suggestion_queue(draft=manual_direct(make_draft, "favourite"), actor="test")
    Trial.objects.filter(pk=favourite.pk).update(metadata={"selection_priority": 1000})
    algedonic = suggestion_queue(draft=algedonic_canary(make_draft), actor="test")

    started = trial_activate(actor="test")

    assert started is not None and started.id == algedonic.id
    record = ArchiveRecord.objects.get(trial=favourite)
    assert record.status == ArchiveRecord.Status.DOMINATED
    assert record.selection_score == pytest.approx(-8 + 1000)
    assert "selection_priority:+1000.0" in record.reasons


def test_the_replay_over_the_subtrees_traces_is_stored_on_the_candidate(champion, make_draft):
    """The rules page's test vector, end to end: a failed trace (-6) that the candidate would
    have routed to its new reviewer adds 8.6."""
    trace(
        genome_id=champion.id,
        outcome=-1.0,
        merged=False,
        files_touched=["app.py"],
        metadata={"task_metadata.target_child": "reviewer"},
    )
    trace(genome_id="an-older-genome", outcome=-1.0, merged=False)
    trial = suggestion_queue(draft=make_draft(name="reviewer"), actor="test")

    trial_activate(actor="test")

    trial.refresh_from_db()
    replay = trial.metadata["historical_replay"]
    assert replay["trace_count"] == 2 and replay["base_genome_mismatch"] == 1
    assert replay["baseline_score"] == -6.0
    assert replay["affected_route_count"] == 1 and replay["estimated_delta"] == 8.6
    assert replay["reasons"][0].endswith("route=reviewer changed=true affected=true delta=8.600")
    record = ArchiveRecord.objects.get(trial=trial)
    assert record.objectives["replay_fit"] == pytest.approx(8.6 + 1)
    assert record.objectives["expected_value"] == pytest.approx(24 + 2 + 9.6)
    assert record.replay["evaluations"][0]["status"] == "AffectedRoute"
    assert (
        "historical_replay_score=8.600_affected_routes=1_candidate_no_route=0:+8.6"
        in record.reasons
    )
    assert started_payload(trial)["historical_replay"]["estimated_delta"] == 8.6


def test_the_archive_learns_the_real_outcome_when_the_trial_ends(champion, make_draft):
    picked = suggestion_queue(draft=algedonic_canary(make_draft), actor="test")
    other = suggestion_queue(draft=manual_direct(make_draft), actor="test")
    trial_activate(actor="test")
    picked.refresh_from_db()
    trace(genome_id=picked.candidate_version_id, outcome=1.0, trial=picked)
    trace(genome_id=picked.candidate_version_id, outcome=-1.0, merged=False, trial=picked)
    trace(genome_id=picked.base_version_id, outcome=-30.0)  # the champion's: not counted

    trial_freeze(trial_id=picked.id, reason="pain", actor="node:root")

    record = ArchiveRecord.objects.get(trial=picked)
    assert record.outcome == "frozen"
    assert record.realised_traces == 2
    assert record.realised_score == pytest.approx((1.0 + -6.0) / 2)
    untouched = ArchiveRecord.objects.get(trial=other)
    assert untouched.outcome == "" and untouched.realised_traces is None


def test_a_trial_ending_without_traces_has_no_realised_score(champion, make_draft):
    trial = suggestion_queue(draft=make_draft(), actor="test")
    trial_activate(actor="test")
    trial.refresh_from_db()

    trial_prune(trial=trial, actor="test", reason="no use")

    record = ArchiveRecord.objects.get(trial=trial)
    assert (record.outcome, record.realised_score, record.realised_traces) == ("pruned", None, 0)


def test_completed_trial_history_uses_the_realised_scores(champion, make_draft):
    """A pruned audit canary realised -20 a trace; the next audit candidate inherits it
    (same source, mode and patch kind) and a coordination signal's wins."""
    first = suggestion_queue(draft=make_draft(name="first"), actor="test")
    trial_activate(actor="test")
    first.refresh_from_db()
    trace(genome_id=first.candidate_version_id, outcome=-15.0, merged=False, trial=first)
    trial_prune(trial=first, actor="test", reason="worse")
    assert ArchiveRecord.objects.get(trial=first).realised_score == pytest.approx(-20.0)

    audit = suggestion_queue(draft=make_draft(name="audit"), actor="test")
    coordination = suggestion_queue(
        draft=make_draft(name="coordination", source=SuggestionSource.SYSTEM2_COORDINATION_SIGNAL),
        actor="test",
    )
    started = trial_activate(actor="test")

    assert started is not None and started.id == coordination.id
    records = {r.trial_id: r for r in ArchiveRecord.objects.exclude(trial=first)}
    # same source -20, same mode -20 * 0.75, same patch kind -20 * 1.25
    assert records[audit.id].objectives["historical_fit"] == -20 - 15 - 25
    assert records[coordination.id].objectives["historical_fit"] == -15 - 25
    assert records[audit.id].status == ArchiveRecord.Status.DOMINATED
    assert "history_same_source_avg=-20.000_n=1:-20.0" in records[audit.id].reasons


def test_future_probe_opportunity_pressure_at_the_controller_picks_the_probe(champion, make_draft):
    audit = suggestion_queue(draft=make_draft(name="audit", safety_limits=BOUNDED), actor="test")
    probe = suggestion_queue(
        draft=make_draft(
            name="probe", source=SuggestionSource.SYSTEM4_FUTURE_PROBE, safety_limits=BOUNDED
        ),
        actor="test",
    )
    for _ in range(2):
        ledger_record(
            EventDraft(
                kind=kinds.FUTURE_PROBE_ENVIRONMENT_SIGNAL,
                node_id=ROOT,
                payload={
                    "kind": "Opportunity",
                    "severity": 10,
                    "source_channel": "FutureProbeToEnvironment",
                },
            )
        )

    started = trial_activate(actor="test")

    assert started is not None and started.id == probe.id
    records = {r.trial_id: r for r in ArchiveRecord.objects.all()}
    assert records[probe.id].selection_score == pytest.approx(62 + 16)
    assert records[audit.id].selection_score == pytest.approx(68 + 20 * 0.9 * 0.35)
    assert records[audit.id].status == ArchiveRecord.Status.DOMINATED
    assert started_payload(probe)["environment_pressure"]["opportunity_pressure"] == 20


def test_risk_pressure_at_the_controller_picks_the_algedonic_candidate(champion, make_draft):
    probe = suggestion_queue(
        draft=make_draft(
            name="probe",
            source=SuggestionSource.SYSTEM4_FUTURE_PROBE,
            safety_limits=BOUNDED,
            evidence=[f"e{i}" for i in range(10)],
        ),
        actor="test",
    )
    algedonic = suggestion_queue(
        draft=algedonic_canary(make_draft), actor="test"
    )  # one piece of evidence
    # A homeostat's ResourceImbalance at severity 8 in Conflict: risk 8 + 4 = 12 each.
    for _ in range(2):
        ledger_record(
            EventDraft(
                kind=kinds.THREE_FOUR_HOMEOSTAT_SIGNAL,
                node_id=ROOT,
                payload={
                    "kind": "ResourceImbalance",
                    "severity": 8,
                    "balance": "Conflict",
                    "source_channel": "ThreeFourHomeostat",
                },
            )
        )

    started = trial_activate(actor="test")

    assert started is not None and started.id == algedonic.id
    records = {r.trial_id: r for r in ArchiveRecord.objects.all()}
    # Risk 24: algedonic min(24 * 0.8, 18) = 18, probe 24 * 0.8 * 0.25 = 4.8; both bounded: +7.2.
    assert records[algedonic.id].objectives["expected_value"] == pytest.approx(32 + 18)
    assert records[probe.id].objectives["expected_value"] == pytest.approx(38 + 4.8)
    assert records[algedonic.id].objectives["safety"] == pytest.approx(52 + 7.2)
    assert records[algedonic.id].selection_score == pytest.approx(74 + 18 + 7.2)
    assert started_payload(algedonic)["environment_pressure"]["risk_pressure"] == 24


def test_an_operator_named_trial_is_activated_and_archived_as_their_choice(champion, make_draft):
    manual = suggestion_queue(draft=manual_direct(make_draft), actor="test")
    algedonic = suggestion_queue(draft=algedonic_canary(make_draft), actor="test")

    started = trial_activate(actor="operator", trial_id=manual.id)

    assert started is not None and started.id == manual.id
    records = {r.trial_id: r for r in ArchiveRecord.objects.all()}
    assert records[manual.id].status == ArchiveRecord.Status.SELECTED_FOR_TRIAL
    assert records[algedonic.id].status == ArchiveRecord.Status.PARETO_FRONTIER
    assert {r.policy for r in records.values()} == {"operator_named_candidate_v1"}
    assert started_payload(manual)["selection_policy"] == "operator_named_candidate_v1"


def test_stale_candidates_are_rejected_before_selection_and_never_archived(champion, make_draft):
    stale = suggestion_queue(draft=algedonic_canary(make_draft, "stale"), actor="test")
    genome_apply_patch(
        patch={"kind": "set_node_status", "node_id": CODER, "status": "Probation"},
        actor="operator",
    )
    fresh = suggestion_queue(draft=manual_direct(make_draft), actor="test")

    started = trial_activate(actor="test")

    assert started is not None and started.id == fresh.id
    stale.refresh_from_db()
    assert stale.state == Trial.State.REJECTED
    assert list(ArchiveRecord.objects.values_list("trial_id", "status")) == [
        (fresh.id, ArchiveRecord.Status.SELECTED_FOR_TRIAL)
    ]


def test_the_archive_is_readable_in_the_admin_and_never_editable(champion, make_draft, client):
    suggestion_queue(draft=algedonic_canary(make_draft), actor="test")
    trial_activate(actor="test")
    record = ArchiveRecord.objects.get()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))

    listing = client.get(
        reverse("admin:trials_archiverecord_changelist") + "?status=selected_for_trial"
    )
    assert listing.status_code == 200 and record.trial_id[:8] in listing.content.decode()
    page = client.get(reverse("admin:trials_archiverecord_change", args=[record.pk]))
    assert page.status_code == 200
    assert (
        client.post(reverse("admin:trials_archiverecord_delete", args=[record.pk])).status_code
        == 403
    )
