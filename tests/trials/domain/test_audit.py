"""The rule-based System 3* auditor and the Audit channel's report, pure."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from organization.genome import (
    AddChild,
    LeafKind,
    LeafOperationSpec,
    NodeLifecycleStatus,
    OrganizationalGenome,
    ViableNode,
    add_child,
    apply_patch,
    nested,
    parse_patch,
    patch_to_json,
)
from trials.domain.audit import (
    AuditReportInvalid,
    ObservedTrace,
    RuleBasedSystem3StarAuditor,
    audit_report_parse,
    audit_window,
    proposes_reviewer,
    report_drafts,
    report_in_subtree,
)
from workers.domain.homeostat import SuggestionSource, TrialMode

SYSTEM, CODER = "backend-system", "backend-coder"
AUDITOR = RuleBasedSystem3StarAuditor()


def traces(total: int, failed: int, *, reverted: int = 0) -> list[ObservedTrace]:
    """``failed`` unmerged traces, then ``reverted`` merged-but-reverted ones, then good ones."""
    made = []
    for index in range(total):
        merged = index >= failed
        made.append(
            ObservedTrace(
                trace_id=f"trace-{index}",
                task_id=f"task-{index}",
                merged=merged,
                reverted=failed <= index < failed + reverted,
            )
        )
    return made


def test_fewer_than_five_traces_find_nothing_however_many_failed() -> None:
    outcome = AUDITOR.audit(nested(), SYSTEM, traces(4, 4))

    assert (outcome.trace_count, outcome.failed_count) == (4, 4)
    assert outcome.findings == []
    assert outcome.drafts == []


def test_a_failure_ratio_below_the_threshold_finds_nothing() -> None:
    outcome = AUDITOR.audit(nested(), SYSTEM, traces(5, 1))

    assert outcome.failure_ratio == pytest.approx(0.2)
    assert outcome.findings == []


def test_no_traces_is_a_zero_ratio() -> None:
    outcome = AUDITOR.audit(nested(), SYSTEM, [])

    assert (outcome.trace_count, outcome.failure_ratio, outcome.findings) == (0, 0.0, [])


def test_unknown_outcomes_are_not_failures_but_reverts_are() -> None:
    unknown = [ObservedTrace(trace_id=f"t{i}", task_id=f"k{i}") for i in range(5)]
    assert AUDITOR.audit(nested(), SYSTEM, unknown).failed_count == 0

    outcome = AUDITOR.audit(nested(), SYSTEM, traces(5, 1, reverted=1))
    assert outcome.failed_trace_ids == ["trace-0", "trace-1"]


def test_two_failures_in_five_find_a_high_failure_ratio_naming_the_children_and_tasks() -> None:
    outcome = AUDITOR.audit(nested(), SYSTEM, traces(5, 2))

    [finding] = outcome.findings
    assert (finding.title, finding.severity) == ("High child failure ratio", 6)
    assert finding.evidence[0] == "2 failed/reverted traces across 5 observed traces"
    assert finding.related_nodes == [CODER]
    assert finding.related_tasks == [f"task-{i}" for i in range(5)]


def test_the_suggestion_is_a_bounded_probationary_reviewer_under_the_controller() -> None:
    [draft] = AUDITOR.audit(nested(), SYSTEM, traces(5, 2)).drafts

    assert (draft.suggested_by_node_id, draft.target_node_id) == (SYSTEM, SYSTEM)
    assert draft.source is SuggestionSource.SYSTEM3_STAR_AUDIT
    assert draft.hypothesis == "Observed failure ratio suggests trialing a bounded review child."
    assert draft.evidence[0] == "failure_ratio=0.400, failed=2, traces=5"
    assert draft.trial_mode is TrialMode.PROBATION
    limits = draft.safety_limits
    assert (limits.max_tasks, limits.max_token_budget, limits.requires_approval) == (
        10,
        100_000,
        True,
    )
    patch = parse_patch(draft.patch)
    assert isinstance(patch, AddChild)
    assert patch.parent_id == SYSTEM
    child = patch.child
    assert child.name == "review-probation-leaf"
    assert child.status is NodeLifecycleStatus.PROBATION
    assert child.leaf_operation.kind == LeafKind.REVIEWING
    assert not child.leaf_operation.allows_code_write
    assert child.system_5.identity == "Probationary review leaf suggested by System 3* audit."
    assert child.system_5.values == ["catch regressions before integration"]
    assert child.system_5.non_negotiable_constraints == [
        "Do not write code; review only according to leaf capabilities."
    ]
    assert child.system_5.denied_capabilities == ["write_code"]
    assert child.metadata == {"suggested_by": "system_3_star", "task_tag": "review"}


def test_the_reviewer_runs_on_its_siblings_model_and_the_patch_applies() -> None:
    genome = nested()
    [draft] = AUDITOR.audit(genome, SYSTEM, traces(5, 2)).drafts

    patched = apply_patch(genome, parse_patch(draft.patch))

    [reviewer] = [n for n in patched.nodes.values() if n.name == "review-probation-leaf"]
    assert reviewer.parent_id == SYSTEM
    assert (reviewer.model.provider, reviewer.model.model) == ("echo", "local-echo")


def test_the_evidence_names_the_failed_traces_capped_at_twenty() -> None:
    outcome = AUDITOR.audit(nested(), SYSTEM, traces(40, 25))

    [draft] = outcome.drafts
    line = draft.evidence[1]
    assert line.startswith("failed_trace_ids=trace-0,trace-1,")
    assert "trace-19," in line and "trace-20" not in line
    assert line.endswith("(+5 more)")
    assert outcome.trace_ids == [f"trace-{i}" for i in range(40)]


def with_reviewer(
    status: NodeLifecycleStatus = NodeLifecycleStatus.ACTIVE, **metadata: str
) -> OrganizationalGenome:
    genome = nested()
    spec = LeafOperationSpec.reviewer() if not metadata else LeafOperationSpec.coding()
    reviewer = ViableNode.leaf("careful-eyes", spec, id="careful-eyes")
    reviewer.status = status
    reviewer.metadata = dict(metadata)
    add_child(genome, SYSTEM, reviewer)
    return genome


@pytest.mark.parametrize(
    "genome",
    [with_reviewer(), with_reviewer(task_tag="review")],
    ids=["reviewing leaf kind", "task_tag review"],
)
def test_a_controller_with_a_live_reviewer_gets_the_finding_but_no_second_reviewer(
    genome: OrganizationalGenome,
) -> None:
    outcome = AUDITOR.audit(genome, SYSTEM, traces(5, 2))

    assert len(outcome.findings) == 1
    assert outcome.drafts == []
    assert outcome.withheld == [
        "no reviewer suggested: backend-system already has reviewing child careful-eyes"
    ]


def test_a_retired_reviewer_does_not_count() -> None:
    outcome = AUDITOR.audit(with_reviewer(NodeLifecycleStatus.RETIRED), SYSTEM, traces(5, 2))

    assert len(outcome.drafts) == 1


def test_a_pending_trial_proposing_a_reviewer_withholds_another() -> None:
    outcome = AUDITOR.audit(nested(), SYSTEM, traces(5, 2), pending_reviewer_trial_ids=["trial-1"])

    assert outcome.drafts == []
    assert outcome.withheld == [
        "no reviewer suggested: trial trial-1 already proposes one at backend-system"
    ]


def test_disabled_gene_suggestions_withhold_the_reviewer() -> None:
    genome = nested()
    genome.nodes[SYSTEM].system_3_star.gene_suggestion_enabled = False

    outcome = AUDITOR.audit(genome, SYSTEM, traces(5, 2))

    assert len(outcome.findings) == 1 and outcome.drafts == []


def test_thresholds_are_parameters() -> None:
    strict = RuleBasedSystem3StarAuditor(
        min_traces_for_review_suggestion=10, failed_task_ratio_threshold=0.5
    )

    assert strict.audit(nested(), SYSTEM, traces(9, 9)).findings == []
    assert strict.audit(nested(), SYSTEM, traces(10, 4)).findings == []
    assert len(strict.audit(nested(), SYSTEM, traces(10, 5)).findings) == 1


@given(total=st.integers(0, 60), failed=st.integers(0, 60))
def test_a_finding_exactly_when_enough_traces_fail_often_enough(total: int, failed: int) -> None:
    failed = min(failed, total)
    outcome = AUDITOR.audit(nested(), SYSTEM, traces(total, failed))

    expected = total >= 5 and failed / total >= 0.25
    assert bool(outcome.findings) is expected
    assert len(outcome.drafts) == int(expected)


def test_the_audit_window_is_at_most_a_hundred_and_follows_the_node() -> None:
    node = nested().nodes[SYSTEM]
    assert audit_window(node) == 50  # the genome's default audit_window_tasks
    node.system_3_star.audit_window_tasks = 500
    assert audit_window(node) == 100
    node.system_3_star.audit_window_tasks = 0
    assert audit_window(node) == 100


def test_a_stored_patch_proposes_a_reviewer_only_under_that_controller() -> None:
    [draft] = AUDITOR.audit(nested(), SYSTEM, traces(5, 2)).drafts

    assert proposes_reviewer(draft.patch, SYSTEM)
    assert not proposes_reviewer(draft.patch, "root-codebase-system")
    assert proposes_reviewer({"kind": "batch", "patches": [draft.patch]}, SYSTEM)
    assert not proposes_reviewer({"kind": "not-a-patch"}, SYSTEM)


# -- audit reports ------------------------------------------------------------------------------


def reviewer_patch() -> dict[str, Any]:
    leaf = ViableNode.leaf("second-opinion", LeafOperationSpec.reviewer(), id="second-opinion")
    return patch_to_json(AddChild(parent_id=SYSTEM, child=leaf))


def report(**fields: Any) -> dict[str, Any]:
    return {
        "target_node_id": SYSTEM,
        "findings": [
            {
                "title": "Flaky tests",
                "severity": 5,
                "evidence": ["3 reruns"],
                "related_nodes": [CODER],
                "related_tasks": ["t1", "t2"],
            },
            {"title": "Slow reviews", "severity": 3},
        ],
        "suggested_patches": [reviewer_patch()],
        **fields,
    }


def test_a_report_becomes_one_bounded_suggestion_per_patch_with_its_findings_as_evidence() -> None:
    parsed = audit_report_parse(report(), genome=nested())

    [draft] = report_drafts(
        parsed, suggested_by_node_id="auditor", source_channel="Audit", correlation_id="c-1"
    )

    assert (draft.suggested_by_node_id, draft.target_node_id) == ("auditor", SYSTEM)
    assert draft.source is SuggestionSource.SYSTEM3_STAR_AUDIT
    assert draft.hypothesis == (
        "System 3* audit report suggests a bounded organizational mutation: "
        "Flaky tests; Slow reviews"
    )
    assert draft.evidence == [
        "source_channel=Audit",
        "correlation_id=c-1",
        "finding=Flaky tests severity=5 related_nodes=1 related_tasks=2",
        "3 reruns",
        "finding=Slow reviews severity=3 related_nodes=0 related_tasks=0",
    ]
    limits = draft.safety_limits
    assert (limits.max_tasks, limits.max_token_budget, limits.requires_approval) == (
        10,
        100_000,
        True,
    )
    assert parse_patch(draft.patch) == parse_patch(reviewer_patch())


def test_a_report_without_findings_says_so() -> None:
    parsed = audit_report_parse(report(findings=[]))

    [draft] = report_drafts(
        parsed, suggested_by_node_id=SYSTEM, source_channel="Audit", correlation_id=None
    )

    assert draft.hypothesis == (
        "System 3* audit report suggested a bounded organizational mutation."
    )
    assert draft.evidence == [
        "source_channel=Audit",
        "audit report supplied suggested patch without findings",
    ]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ([], "expected an object"),
        ({"findings": []}, "target_node_id"),
        (report(target_node_id=""), "target_node_id: must not be empty"),
        (report(target_node_id=7), "target_node_id"),
        (report(extra=True), "extra: unknown field"),
        (report(findings=[{"title": "x"}]), "findings[0].severity"),
        (report(findings=[{"title": "x", "severity": -1}]), "findings[0].severity"),
        (report(findings=[{"title": "x", "severity": 11}]), "findings[0].severity"),
        (report(findings=[{"title": " ", "severity": 1}]), "findings[0].title"),
        (report(findings=[{"title": "x", "severity": 1, "evidence": "one"}]), "evidence"),
        (report(suggested_patches=[{"kind": "grow_wings"}]), "suggested_patches[0].kind"),
        (report(suggested_patches="add a reviewer"), "suggested_patches"),
        (report(target_node_id="nowhere"), "not a node of the genome"),
    ],
)
def test_a_malformed_report_is_refused_naming_the_field(payload: Any, problem: str) -> None:
    with pytest.raises(AuditReportInvalid, match=problem.replace("[", r"\[").replace("]", r"\]")):
        audit_report_parse(payload, genome=nested())


def test_a_report_about_a_node_outside_the_controllers_subtree_is_refused() -> None:
    genome = nested()
    parsed = audit_report_parse(report(target_node_id="root-codebase-system"), genome=genome)

    with pytest.raises(AuditReportInvalid, match="outside the subtree of 'backend-system'"):
        report_in_subtree(parsed, genome, SYSTEM)
    report_in_subtree(parsed, genome, "root-codebase-system")
