"""The Three-Four homeostat: its event, and the bounded gene suggestions it drafts."""

from __future__ import annotations

from typing import Any

import pytest

from organization.genome import GenomeFormatError, VsmChannelType
from tests.workers.domain.organizations import BACKEND, ROOT, envelope, organization
from workers.domain.bargaining import (
    ResourceBargain,
    decide,
    environment_pressure_details,
    summarise_environment_pressure,
)
from workers.domain.channel_messages import (
    HomeostatBalance,
    HomeostatKind,
    ThreeFourHomeostatSignal,
)
from workers.domain.homeostat import (
    GeneSuggestionDraft,
    SuggestionSource,
    TrialMode,
    gene_suggestion_drafts,
    gene_suggestion_event,
    homeostat_event,
)
from workers.domain.messages import PayloadType, to_json

INCOMING = envelope(
    VsmChannelType.THREE_FOUR_HOMEOSTAT,
    PayloadType.THREE_FOUR_HOMEOSTAT_SIGNAL,
    source_node_id=ROOT,
)
PATCHES: list[dict[str, Any]] = [
    {"kind": "set_node_status", "node_id": BACKEND, "status": "Probation"},
    {"kind": "remove_subtree", "node_id": "frontend-coder"},
]


def signal(
    kind: HomeostatKind = HomeostatKind.RESOURCE_IMBALANCE,
    balance: HomeostatBalance = HomeostatBalance.CONFLICT,
    severity: int | None = 8,
    **fields: object,
) -> ThreeFourHomeostatSignal:
    values: dict[str, object] = {
        "system_3_node_id": ROOT,
        "system_4_node_id": "future-probe",
        "target_node_id": BACKEND,
        "related_task_id": "t1",
        "related_suggestion_id": "s0",
        "present_summary": "backend overloaded",
        "future_summary": "more API work coming",
        "recommendation": "Add a second backend coder.",
        "evidence": ["queue depth 12", "p95 40 min"],
        "suggested_patches": PATCHES,
        **fields,
    }
    return ThreeFourHomeostatSignal(
        kind=kind,
        balance=balance,
        severity=severity,
        **values,  # type: ignore[arg-type]
    )


def test_the_event_carries_the_signal_its_patch_count_and_where_it_came_from() -> None:
    received = signal()

    event = homeostat_event(received, INCOMING)

    assert event.kind == "three_four_homeostat_signal"
    assert event.payload == {
        **to_json(received),
        "suggested_patch_count": 2,
        "source_channel": "ThreeFourHomeostat",
        "source_payload_type": "vsm.three_four_homeostat_signal",
        "causation_id": "env-1",
        "correlation_id": "corr-1",
    }
    assert event.metadata == {
        "source_channel": "ThreeFourHomeostat",
        "homeostat_kind": "ResourceImbalance",
        "homeostat_balance": "Conflict",
        "severity": "8",
    }
    assert (event.task_id, event.suggestion_id) == ("t1", "s0")


def test_the_worked_example_a_conflicted_resource_imbalance_at_8_is_risk_12() -> None:
    event = homeostat_event(signal(suggested_patches=[]), INCOMING)

    details = environment_pressure_details([event.as_record()])

    pressure = details.pressure
    assert (pressure.risk, pressure.max_severity, pressure.homeostat_count) == (12.0, 8, 1)
    assert (pressure.opportunity, pressure.feedback, pressure.event_count) == (0.0, 0.0, 1)


def test_the_worked_example_quarters_a_request_of_800_to_200() -> None:
    pressure = summarise_environment_pressure([homeostat_event(signal(), INCOMING).as_record()])

    decision = decide(
        ResourceBargain(requested_by=BACKEND, requested_tokens=800),
        genome=organization(),
        controller_id=ROOT,
        environment=pressure,
    )

    assert decision.approved_tokens == 200


@pytest.mark.parametrize(
    ("balance", "risk", "opportunity", "feedback"),
    [
        (HomeostatBalance.FUTURE_DOMINANT, 8.0, 4.0, 0.0),
        (HomeostatBalance.PRESENT_DOMINANT, 12.0, 0.0, 0.0),
        (HomeostatBalance.BALANCED, 8.0, 0.0, 2.0),
    ],
)
def test_the_balance_tilts_the_pressure(
    balance: HomeostatBalance, risk: float, opportunity: float, feedback: float
) -> None:
    event = homeostat_event(signal(balance=balance), INCOMING)

    pressure = summarise_environment_pressure([event.as_record()])

    assert (pressure.risk, pressure.opportunity, pressure.feedback) == (risk, opportunity, feedback)


def test_each_suggested_patch_becomes_one_bounded_canary_suggestion() -> None:
    drafts = gene_suggestion_drafts(signal(), INCOMING)

    assert [draft.patch for draft in drafts] == PATCHES
    first = drafts[0]
    assert first.suggested_by_node_id == "future-probe"
    assert first.target_node_id == BACKEND
    assert first.source is SuggestionSource.SYSTEM4_FUTURE_PROBE
    assert first.trial_mode is TrialMode.CANARY
    assert first.hypothesis == (
        "Three-Four homeostat recommends a bounded adaptation: Add a second backend coder. "
        "Present: backend overloaded Future: more API work coming"
    )
    limits = first.safety_limits
    assert (limits.max_tasks, limits.max_token_budget) == (10, 100_000)
    assert limits.max_traffic_share_basis_points == 1000
    assert (limits.max_files_touched, limits.allowed_task_classes) == (None, [])
    plan = first.measurement_plan
    assert (plan.window_tasks, plan.window_days, plan.compare_against) == (
        25,
        None,
        "CurrentParent",
    )
    assert plan.success_metrics == [
        "accepted_task_value",
        "regression_rate",
        "three_four_homeostat_expected_value",
    ]
    assert plan.failure_metrics == ["token_cost", "revert_rate", "present_operational_regression"]
    assert drafts[0].id != drafts[1].id


def test_the_evidence_says_where_the_suggestion_came_from_then_what_the_signal_said() -> None:
    (draft, _) = gene_suggestion_drafts(signal(), INCOMING)

    assert draft.evidence == [
        "source_channel=ThreeFourHomeostat",
        "three_four_kind=ResourceImbalance",
        "three_four_balance=Conflict",
        "severity=8",
        "correlation_id=corr-1",
        "present_summary=backend overloaded",
        "future_summary=more API work coming",
        "recommendation=Add a second backend coder.",
        "queue depth 12",
        "p95 40 min",
    ]


def test_absent_severity_correlation_and_summaries_are_left_out_of_the_evidence() -> None:
    incoming = envelope(
        VsmChannelType.THREE_FOUR_HOMEOSTAT,
        PayloadType.THREE_FOUR_HOMEOSTAT_SIGNAL,
        correlation_id=None,
    )
    bare = signal(
        severity=None,
        present_summary="",
        future_summary="",
        evidence=[],
        kind=HomeostatKind.OTHER,
        other_kind="tooling drift",
    )

    (draft, _) = gene_suggestion_drafts(bare, incoming)

    assert draft.evidence == [
        "source_channel=ThreeFourHomeostat",
        "three_four_kind=other:tooling drift",
        "three_four_balance=Conflict",
        "recommendation=Add a second backend coder.",
    ]


@pytest.mark.parametrize(
    ("severity", "balance", "approval"),
    [
        (None, HomeostatBalance.BALANCED, False),
        (6, HomeostatBalance.FUTURE_DOMINANT, False),
        (7, HomeostatBalance.BALANCED, True),
        (1, HomeostatBalance.CONFLICT, True),
        (None, HomeostatBalance.CONFLICT, True),
    ],
)
def test_approval_is_needed_from_severity_7_or_when_present_and_future_conflict(
    severity: int | None, balance: HomeostatBalance, approval: bool
) -> None:
    drafts = gene_suggestion_drafts(signal(severity=severity, balance=balance), INCOMING)

    assert [d.safety_limits.requires_approval for d in drafts] == [approval, approval]


def test_a_signal_without_patches_drafts_nothing() -> None:
    assert gene_suggestion_drafts(signal(suggested_patches=[]), INCOMING) == []


def test_a_patch_is_stored_in_its_complete_replayable_form() -> None:
    promote = {
        "kind": "promote_leaf_to_metasystem",
        "node_id": BACKEND,
        "extracted_child_name": "x",
    }

    (draft,) = gene_suggestion_drafts(signal(suggested_patches=[promote]), INCOMING)

    assert draft.patch["extracted_child_id"]
    assert {k: v for k, v in draft.patch.items() if k != "extracted_child_id"} == promote


def test_a_suggested_patch_that_is_no_patch_is_refused_naming_the_field() -> None:
    bad = {"kind": "set_node_status", "node_id": BACKEND, "status": "Paused"}

    with pytest.raises(GenomeFormatError, match="status"):
        gene_suggestion_drafts(signal(suggested_patches=[bad]), INCOMING)


def test_each_draft_is_recorded_as_a_gene_suggestion_created_event() -> None:
    (draft, _) = gene_suggestion_drafts(signal(), INCOMING)

    event = gene_suggestion_event(draft, INCOMING)

    assert event.kind == "gene_suggestion_created"
    assert event.payload == to_json(draft)
    assert event.payload["trial_mode"] == "Canary"
    assert event.payload["source"] == "System4FutureProbe"
    assert event.metadata == {
        "source_channel": "ThreeFourHomeostat",
        "source_payload_type": "vsm.three_four_homeostat_signal",
    }
    assert (event.suggestion_id, event.correlation_id) == (draft.id, "corr-1")


def test_a_new_suggestion_defaults_to_a_probation_trial_without_limits() -> None:
    draft = GeneSuggestionDraft(
        suggested_by_node_id=ROOT,
        target_node_id=BACKEND,
        source=SuggestionSource.SYSTEM3_STAR_AUDIT,
        patch=PATCHES[1],
    )

    assert draft.trial_mode is TrialMode.PROBATION
    assert draft.safety_limits.requires_approval is False
    assert draft.safety_limits.max_tasks is None
    assert draft.measurement_plan.success_metrics == ["accepted_task_value", "regression_rate"]
    assert to_json(draft.rollback_plan) == {
        "remove_nodes": [],
        "restore_genome_id": None,
        "notes": None,
    }
