"""System 3* audits, pure: the rule-based auditor and the Audit channel's report (no Django).

**The rule-based auditor** (docs/rules/trials.md, "Gene suggestions") reads a controller's
subtree traces: a trace *failed* when it was not merged (``merged = false``) or was reverted.
With at least ``min_traces_for_review_suggestion`` traces and a failure ratio of at least
``failed_task_ratio_threshold`` it finds "High child failure ratio" and suggests a bounded
probationary reviewer leaf under the controller, unless the controller already has a live
reviewing child or a pending trial proposing one (the reference kernel proposed a second).

**An audit report** (payload ``vsm.audit_report`` on the Audit channel) is decoded strictly:
:func:`audit_report_parse` raises :class:`AuditReportInvalid`, naming the field, for anything
that is not exactly an :class:`AuditReport`; :func:`report_drafts` turns each suggested patch
into a gene suggestion.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from organization.genome import (
    AddChild,
    Batch,
    GenomeError,
    LeafKind,
    LeafOperationSpec,
    NodeLifecycleStatus,
    OrganizationalGenome,
    Patch,
    ViableNode,
    parse_patch,
    patch_to_json,
    subtree_ids,
)
from organization.genome.codec import from_json_value
from workers.domain.homeostat import (
    GeneSuggestionDraft,
    SafetyLimits,
    SuggestionSource,
    TrialMode,
)
from workers.domain.messages import JsonObject

# The reference kernel's defaults. Not (yet) genome fields: a new System3StarConfig field
# would change every stored genome's encoding, so they are the auditor's parameters.
DEFAULT_MIN_TRACES_FOR_REVIEW_SUGGESTION = 5
DEFAULT_FAILED_TASK_RATIO_THRESHOLD = 0.25
# The newest traces an audit reads; the node's ``audit_window_tasks`` may bound it further.
AUDIT_TRACE_LIMIT = 100

HIGH_FAILURE_TITLE = "High child failure ratio"
HIGH_FAILURE_SEVERITY = 6
REVIEW_LEAF_NAME = "review-probation-leaf"
REVIEW_LEAF_IDENTITY = "Probationary review leaf suggested by System 3* audit."
REVIEW_LEAF_VALUES = ("catch regressions before integration",)
REVIEW_LEAF_CONSTRAINT = "Do not write code; review only according to leaf capabilities."
REVIEW_TASK_TAG = "review"
SUGGESTED_BY_AUDIT = "system_3_star"
REVIEW_HYPOTHESIS = "Observed failure ratio suggests trialing a bounded review child."
AUDIT_MAX_TASKS = 10
AUDIT_MAX_TOKEN_BUDGET = 100_000
# At most this many trace ids in one evidence line; every counted id is on the AuditRun.
EVIDENCE_TRACE_IDS = 20

REPORT_HYPOTHESIS = "System 3* audit report suggested a bounded organizational mutation."
REPORT_HYPOTHESIS_WITH_FINDINGS = (
    "System 3* audit report suggests a bounded organizational mutation: {titles}"
)
REPORT_WITHOUT_FINDINGS = "audit report supplied suggested patch without findings"
MAX_SEVERITY = 10


def audit_window(node: ViableNode) -> int:
    """How many of the newest subtree traces the node's audit reads (100, or fewer when the
    node's ``audit_window_tasks`` says so; 0 there means no bound of its own)."""
    window = node.system_3_star.audit_window_tasks
    return min(AUDIT_TRACE_LIMIT, window) if window > 0 else AUDIT_TRACE_LIMIT


@dataclass(frozen=True, kw_only=True)
class ObservedTrace:
    """What the auditor reads of one task trace."""

    trace_id: str
    task_id: str
    merged: bool | None = None
    reverted: bool | None = None

    @property
    def failed(self) -> bool:
        return self.merged is False or self.reverted is True


@dataclass(kw_only=True)
class AuditFinding:
    title: str
    severity: int
    evidence: list[str] = field(default_factory=list)
    related_nodes: list[str] = field(default_factory=list)
    related_tasks: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class AuditOutcome:
    """What one audit counted, found and suggested, and why it withheld a suggestion."""

    controller_node_id: str
    trace_ids: list[str]
    failed_trace_ids: list[str]
    findings: list[AuditFinding] = field(default_factory=list)
    drafts: list[GeneSuggestionDraft] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)

    @property
    def trace_count(self) -> int:
        return len(self.trace_ids)

    @property
    def failed_count(self) -> int:
        return len(self.failed_trace_ids)

    @property
    def failure_ratio(self) -> float:
        return self.failed_count / self.trace_count if self.trace_ids else 0.0


def capped_ids(ids: Sequence[str], cap: int = EVIDENCE_TRACE_IDS) -> str:
    """``a,b,c`` — at most ``cap`` ids, then how many more there were."""
    shown = ",".join(ids[:cap])
    return f"{shown},…(+{len(ids) - cap} more)" if len(ids) > cap else shown


@dataclass(frozen=True, kw_only=True)
class RuleBasedSystem3StarAuditor:
    """The reference kernel's System 3* audit rule, plus "no second reviewer".

    The trial it suggests is the reference's (Probation, at most 10 tasks and 100,000
    tokens, approval required) unless the auditor is built with other bounds.
    """

    min_traces_for_review_suggestion: int = DEFAULT_MIN_TRACES_FOR_REVIEW_SUGGESTION
    failed_task_ratio_threshold: float = DEFAULT_FAILED_TASK_RATIO_THRESHOLD
    trial_mode: TrialMode = TrialMode.PROBATION
    traffic_share_basis_points: int | None = None
    max_tasks: int | None = AUDIT_MAX_TASKS
    max_token_budget: int | None = AUDIT_MAX_TOKEN_BUDGET
    requires_approval: bool = True

    def audit(
        self,
        genome: OrganizationalGenome,
        controller_node_id: str,
        traces: Sequence[ObservedTrace],
        *,
        pending_reviewer_trial_ids: Sequence[str] = (),
    ) -> AuditOutcome:
        """Audit ``traces`` (the controller's subtree's, newest first) under ``genome``.

        ``pending_reviewer_trial_ids`` are live (queued, active or awaiting) trials at this
        controller already proposing a reviewer: with one, no second is suggested. Raises
        NodeNotFound for a controller that is not in the genome.
        """
        controller = genome.node(controller_node_id)
        outcome = AuditOutcome(
            controller_node_id=controller_node_id,
            trace_ids=[trace.trace_id for trace in traces],
            failed_trace_ids=[trace.trace_id for trace in traces if trace.failed],
        )
        if (
            outcome.trace_count < self.min_traces_for_review_suggestion
            or outcome.failure_ratio < self.failed_task_ratio_threshold
        ):
            return outcome
        outcome.findings.append(
            AuditFinding(
                title=HIGH_FAILURE_TITLE,
                severity=HIGH_FAILURE_SEVERITY,
                evidence=[
                    f"{outcome.failed_count} failed/reverted traces across "
                    f"{outcome.trace_count} observed traces",
                    f"failed_trace_ids={capped_ids(outcome.failed_trace_ids)}",
                ],
                related_nodes=list(controller.children),
                related_tasks=[trace.task_id for trace in traces],
            )
        )
        reviewers = live_reviewer_ids(genome, controller_node_id)
        if reviewers:
            outcome.withheld.append(
                f"no reviewer suggested: {controller_node_id} already has reviewing child "
                f"{', '.join(reviewers)}"
            )
        elif pending_reviewer_trial_ids:
            outcome.withheld.append(
                f"no reviewer suggested: trial {', '.join(pending_reviewer_trial_ids)} already "
                f"proposes one at {controller_node_id}"
            )
        elif not controller.system_3_star.gene_suggestion_enabled:
            outcome.withheld.append(
                f"no reviewer suggested: gene suggestions are disabled at {controller_node_id}"
            )
        else:
            outcome.drafts.append(review_suggestion(genome, controller_node_id, outcome, self))
        return outcome


def is_reviewer(node: ViableNode) -> bool:
    """A reviewing leaf: its leaf kind, its ``task_tag`` or its name says so."""
    return node.is_leaf and (
        node.leaf_operation.kind == LeafKind.REVIEWING
        or node.metadata.get("task_tag") == REVIEW_TASK_TAG
        or node.name == REVIEW_LEAF_NAME
    )


def live_reviewer_ids(genome: OrganizationalGenome, controller_node_id: str) -> list[str]:
    """The controller's children that review and are not retired."""
    return [
        child_id
        for child_id in genome.node(controller_node_id).children
        if child_id in genome.nodes
        and genome.nodes[child_id].status is not NodeLifecycleStatus.RETIRED
        and is_reviewer(genome.nodes[child_id])
    ]


def proposes_reviewer(patch: JsonObject, controller_node_id: str) -> bool:
    """Whether a stored patch adds a reviewing leaf under the controller (batches included)."""
    try:
        parsed = parse_patch(patch)
    except GenomeError:
        return False
    return any(
        isinstance(step, AddChild)
        and step.parent_id == controller_node_id
        and is_reviewer(step.child)
        for step in _flattened(parsed)
    )


def _flattened(patch: Patch) -> Iterable[Patch]:
    if isinstance(patch, Batch):
        for step in patch.patches:
            yield from _flattened(step)
    else:
        yield patch


def review_leaf(genome: OrganizationalGenome, controller_node_id: str) -> ViableNode:
    """The probationary reviewer: reviewer preset, no code writing, on the model of the
    controller's first live leaf (so it can run at all; the default model is unbound)."""
    leaf = ViableNode.leaf(REVIEW_LEAF_NAME, LeafOperationSpec.reviewer())
    leaf.system_5.identity = REVIEW_LEAF_IDENTITY
    leaf.system_5.values = list(REVIEW_LEAF_VALUES)
    leaf.system_5.non_negotiable_constraints = [REVIEW_LEAF_CONSTRAINT]
    leaf.system_5.denied_capabilities = ["write_code"]
    leaf.status = NodeLifecycleStatus.PROBATION
    leaf.metadata = {"suggested_by": SUGGESTED_BY_AUDIT, "task_tag": REVIEW_TASK_TAG}
    sibling = next(
        (
            genome.nodes[child_id]
            for child_id in genome.node(controller_node_id).children
            if child_id in genome.nodes
            and genome.nodes[child_id].is_leaf
            and genome.nodes[child_id].status is not NodeLifecycleStatus.RETIRED
        ),
        None,
    )
    if sibling is not None:
        leaf.model = replace(sibling.model)
        leaf.metadata.update(
            {key: value for key, value in sibling.metadata.items() if key.startswith("provider.")}
        )
    return leaf


def review_suggestion(
    genome: OrganizationalGenome,
    controller_node_id: str,
    outcome: AuditOutcome,
    bounds: RuleBasedSystem3StarAuditor | None = None,
) -> GeneSuggestionDraft:
    bounds = bounds or RuleBasedSystem3StarAuditor()
    return GeneSuggestionDraft(
        suggested_by_node_id=controller_node_id,
        target_node_id=controller_node_id,
        source=SuggestionSource.SYSTEM3_STAR_AUDIT,
        patch=patch_to_json(
            AddChild(parent_id=controller_node_id, child=review_leaf(genome, controller_node_id))
        ),
        evidence=[
            f"failure_ratio={outcome.failure_ratio:.3f}, failed={outcome.failed_count}, "
            f"traces={outcome.trace_count}",
            f"failed_trace_ids={capped_ids(outcome.failed_trace_ids)}",
        ],
        hypothesis=REVIEW_HYPOTHESIS,
        trial_mode=bounds.trial_mode,
        safety_limits=SafetyLimits(
            max_tasks=bounds.max_tasks,
            max_token_budget=bounds.max_token_budget,
            max_traffic_share_basis_points=bounds.traffic_share_basis_points,
            requires_approval=bounds.requires_approval,
        ),
    )


# -- audit reports on the Audit channel ---------------------------------------------------------


class AuditReportInvalid(ValueError):
    """A ``vsm.audit_report`` payload that is not an AuditReport; the message names the field."""


@dataclass(kw_only=True)
class AuditReport:
    """The payload of ``vsm.audit_report``: an auditor's findings and the patches it suggests."""

    target_node_id: str
    findings: list[AuditFinding] = field(default_factory=list)
    suggested_patches: list[Patch] = field(default_factory=list)


def audit_report_parse(
    payload: object, *, genome: OrganizationalGenome | None = None
) -> AuditReport:
    """Decode a report strictly: unknown or mistyped fields, an empty title or target, a
    severity above 10 or a malformed patch raise AuditReportInvalid. With ``genome``, the
    target must also be one of its nodes."""
    try:
        report = from_json_value(AuditReport, payload)
    except GenomeError as error:
        raise AuditReportInvalid(str(error)) from None
    if not report.target_node_id.strip():
        raise AuditReportInvalid("target_node_id: must not be empty")
    for index, finding in enumerate(report.findings):
        if not finding.title.strip():
            raise AuditReportInvalid(f"findings[{index}].title: must not be empty")
        if finding.severity > MAX_SEVERITY:
            raise AuditReportInvalid(
                f"findings[{index}].severity: must be 0 to {MAX_SEVERITY}, got {finding.severity}"
            )
    if genome is not None and report.target_node_id not in genome.nodes:
        raise AuditReportInvalid(
            f"target_node_id: {report.target_node_id!r} is not a node of the genome"
        )
    return report


def report_in_subtree(
    report: AuditReport, genome: OrganizationalGenome, controller_node_id: str
) -> None:
    """A controller acts only on reports about its own subtree (AuditReportInvalid)."""
    if controller_node_id not in genome.nodes or report.target_node_id not in subtree_ids(
        genome, controller_node_id
    ):
        raise AuditReportInvalid(
            f"target_node_id: {report.target_node_id!r} is outside the subtree of "
            f"{controller_node_id!r}, which received the report"
        )


def report_evidence(
    report: AuditReport, *, source_channel: str, correlation_id: str | None
) -> list[str]:
    evidence = [f"source_channel={source_channel}"]
    if correlation_id:
        evidence.append(f"correlation_id={correlation_id}")
    for finding in report.findings:
        evidence.append(
            f"finding={finding.title} severity={finding.severity} "
            f"related_nodes={len(finding.related_nodes)} "
            f"related_tasks={len(finding.related_tasks)}"
        )
        evidence.extend(finding.evidence)
    if len(evidence) == 1:
        evidence.append(REPORT_WITHOUT_FINDINGS)
    return evidence


def report_drafts(
    report: AuditReport,
    *,
    suggested_by_node_id: str,
    source_channel: str,
    correlation_id: str | None,
) -> list[GeneSuggestionDraft]:
    """One bounded suggestion per suggested patch, in order."""
    titles = "; ".join(finding.title for finding in report.findings)
    hypothesis = (
        REPORT_HYPOTHESIS_WITH_FINDINGS.format(titles=titles) if titles else REPORT_HYPOTHESIS
    )
    evidence = report_evidence(report, source_channel=source_channel, correlation_id=correlation_id)
    return [
        GeneSuggestionDraft(
            suggested_by_node_id=suggested_by_node_id,
            target_node_id=report.target_node_id,
            source=SuggestionSource.SYSTEM3_STAR_AUDIT,
            patch=patch_to_json(patch),
            evidence=list(evidence),
            hypothesis=hypothesis,
            safety_limits=SafetyLimits(
                max_tasks=AUDIT_MAX_TASKS,
                max_token_budget=AUDIT_MAX_TOKEN_BUDGET,
                requires_approval=True,
            ),
        )
        for patch in report.suggested_patches
    ]


def finding_json(finding: AuditFinding) -> JsonObject:
    return {
        "title": finding.title,
        "severity": finding.severity,
        "evidence": list(finding.evidence),
        "related_nodes": list(finding.related_nodes),
        "related_tasks": list(finding.related_tasks),
    }
