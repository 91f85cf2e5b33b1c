"""System 3* audits: run on beat or on demand, and audit reports from the Audit channel.

An audit suggests and never mutates the live genome: every suggestion it makes is queued as a
trial (``trials.services.candidates.suggestion_queue``, which records
``gene_suggestion_created`` and ``trial_queued``); this module records ``audit_started`` and
``audit_completed`` around it, and ``audit_report_rejected`` for a report it cannot read.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.selectors import subtree_task_traces
from ledger.services import EventDraft, ledger_batch, ledger_record
from organization.genome import OrganizationalGenome, ancestor_ids
from organization.models import GenomeVersion
from organization.selectors import champion_version, genome_of
from trials.domain.audit import (
    AuditOutcome,
    AuditReport,
    AuditReportInvalid,
    ObservedTrace,
    RuleBasedSystem3StarAuditor,
    audit_report_parse,
    audit_window,
    finding_json,
    proposes_reviewer,
    report_drafts,
    report_in_subtree,
)
from trials.errors import AuditRefused, SuggestionRefused
from trials.models import AuditRun, GeneSuggestion, Trial
from trials.services.candidates import suggestion_queue
from workers.domain.homeostat import GeneSuggestionDraft
from workers.domain.messages import MessageEnvelope
from workers.errors import NoOrganization

logger = logging.getLogger(__name__)

# Trials still alive at a controller: a reviewer proposed by one of these is not proposed again.
PENDING_TRIAL_STATES = (Trial.State.QUEUED, Trial.State.ACTIVE, Trial.State.INCONCLUSIVE)


def audited_controller_ids(genome: OrganizationalGenome) -> list[str]:
    """The metasystems of ``genome`` whose System 3* config has audits enabled, in tree order."""
    return [
        node_id
        for node_id, node in genome.nodes.items()
        if node.is_metasystem and node.system_3_star.audit_enabled
    ]


def _champion() -> tuple[GenomeVersion, OrganizationalGenome]:
    version = champion_version()
    if version is None:
        raise NoOrganization()
    return version, genome_of(version)


def audit_run(
    *,
    controller_node_id: str,
    trigger: str,
    actor: str,
    auditor: RuleBasedSystem3StarAuditor | None = None,
) -> AuditRun:
    """Audit one controller's subtree under the champion now and queue what it suggests.

    One transaction: the AuditRun row (counts, trace ids, findings, genome id),
    ``audit_started``, one queued trial per suggestion, ``audit_completed``. A suggestion
    whose patch no longer applies is reported as refused, not raised. The audit runs whether
    or not the node's ``audit_enabled`` is set (that flag governs its beat schedule).

    Raises NoOrganization before bootstrap, and AuditRefused (nothing written) for a node that
    is not in the champion or is a System 1 leaf.
    """
    version, genome = _champion()
    controller = genome.nodes.get(controller_node_id)
    if controller is None:
        raise AuditRefused(
            controller_node_id, f"{controller_node_id!r} is not a node of the champion genome"
        )
    if not controller.is_metasystem:
        raise AuditRefused(
            controller_node_id,
            f"{controller_node_id!r} is a System 1 leaf, not a metasystem: only a metasystem's "
            "subtree is audited",
        )
    auditor = auditor or RuleBasedSystem3StarAuditor()
    limit = audit_window(controller)
    with ledger_batch():
        run = AuditRun.objects.create(
            controller_node_id=controller_node_id, trigger=trigger, genome_id=version.id
        )
        context = EventDraft(
            kind="",
            actor=actor,
            node_id=controller_node_id,
            responsible_ancestor_ids=tuple(ancestor_ids(genome, controller_node_id)),
            genome_id=version.id,
            correlation_id=run.id,
        )
        ledger_record(
            dataclasses.replace(
                context,
                kind=kinds.AUDIT_STARTED,
                payload={
                    "audit_run_id": run.id,
                    "controller_node_id": controller_node_id,
                    "trigger": trigger,
                    "genome_id": version.id,
                    "trace_limit": limit,
                },
            )
        )
        traces = subtree_task_traces(node_id=controller_node_id, limit=limit)
        outcome = auditor.audit(
            genome,
            controller_node_id,
            [_observed(trace) for trace in traces],
            pending_reviewer_trial_ids=_pending_reviewer_trials(controller_node_id),
        )
        queued, refused = _queue_all(
            outcome.drafts,
            actor=actor,
            controller_node_id=controller_node_id,
            audit_run=run,
            event_context=context,
        )
        run.trace_count = outcome.trace_count
        run.failed_count = outcome.failed_count
        run.trace_ids = outcome.trace_ids
        run.findings = [finding_json(finding) for finding in outcome.findings]
        run.completed_at = timezone.now()
        run.save(
            update_fields=["trace_count", "failed_count", "trace_ids", "findings", "completed_at"]
        )
        ledger_record(
            dataclasses.replace(
                context,
                kind=kinds.AUDIT_COMPLETED,
                payload=_completed_payload(run, outcome, queued, refused),
            )
        )
    return run


def audit_completion(*, audit_run: AuditRun) -> dict[str, Any] | None:
    """The ``audit_completed`` payload of a run made by ``audit_run`` (its events carry the
    run's id as their correlation id), or None if it never completed. A read, kept beside
    the writer whose payload it knows."""
    event = (
        LedgerEvent.objects.filter(kind=kinds.AUDIT_COMPLETED, correlation_id=audit_run.id)
        .only("payload")
        .first()
    )
    return None if event is None else dict(event.payload)


def _observed(trace: TaskTrace) -> ObservedTrace:
    return ObservedTrace(
        trace_id=trace.id, task_id=trace.task_id, merged=trace.merged, reverted=trace.reverted
    )


def _pending_reviewer_trials(controller_node_id: str) -> list[str]:
    """Live trials at (or targeting) the controller whose patch adds a reviewer under it."""
    pending = GeneSuggestion.objects.filter(
        Q(trial__controller_node_id=controller_node_id) | Q(target_node_id=controller_node_id),
        trial__state__in=PENDING_TRIAL_STATES,
    ).values_list("id", "patch")
    return [
        suggestion_id
        for suggestion_id, patch in pending
        if isinstance(patch, dict) and proposes_reviewer(patch, controller_node_id)
    ]


def _queue_all(
    drafts: list[GeneSuggestionDraft],
    *,
    actor: str,
    controller_node_id: str | None,
    audit_run: AuditRun,
    event_context: EventDraft,
) -> tuple[list[Trial], list[dict[str, str]]]:
    """Queue each draft; a refused one (its patch no longer applies) is returned with why.

    Each in a savepoint, so a refusal leaves the audit (and the hop around it) intact.
    """
    queued: list[Trial] = []
    refused: list[dict[str, str]] = []
    for draft in drafts:
        try:
            with transaction.atomic():
                trial = suggestion_queue(
                    draft=draft,
                    actor=actor,
                    controller_node_id=controller_node_id,
                    audit_run=audit_run,
                    event_context=event_context,
                )
        except SuggestionRefused as refusal:
            refused.append({"suggestion_id": draft.id, "reason": str(refusal)})
            continue
        queued.append(trial)
    return queued, refused


def _completed_payload(
    run: AuditRun, outcome: AuditOutcome, queued: list[Trial], refused: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "audit_run_id": run.id,
        "controller_node_id": run.controller_node_id,
        "trigger": run.trigger,
        "genome_id": run.genome_id,
        "trace_count": outcome.trace_count,
        "failed_count": outcome.failed_count,
        "failure_ratio": round(outcome.failure_ratio, 3),
        "trace_ids": list(outcome.trace_ids),
        "findings": list(run.findings),
        "suggestion_ids": [trial.pk for trial in queued],
        "withheld": list(outcome.withheld),
        "refused": refused,
    }


# -- audit reports on the Audit channel ---------------------------------------------------------


def on_audit_report(
    sender: str,
    *,
    report: Any,
    controller_node_id: str,
    incoming: MessageEnvelope,
    event_context: EventDraft | None = None,
    **kwargs: Any,
) -> None:
    """``workers.signals.audit_report_received``: queue each suggested patch of the report.

    Runs inside the hop's transaction. A report that is not an AuditReport, names a target
    outside this controller's subtree, or arrives before bootstrap is recorded as
    ``audit_report_rejected`` with the reason, and the hop goes on; so is a suggestion whose
    patch does not apply (in ``audit_completed``'s ``refused``).
    """
    context = event_context or EventDraft(
        kind="", actor=f"node:{controller_node_id}", node_id=controller_node_id
    )
    source_channel = incoming.channel_type.value
    champion = champion_version()
    try:
        if champion is None:
            raise AuditReportInvalid("there is no champion genome yet")
        genome = genome_of(champion)
        parsed = audit_report_parse(report, genome=genome)
        report_in_subtree(parsed, genome, controller_node_id)
    except AuditReportInvalid as invalid:
        logger.warning("controller %s rejects audit report %s: %s", sender, incoming.id, invalid)
        ledger_record(
            dataclasses.replace(
                context,
                kind=kinds.AUDIT_REPORT_REJECTED,
                payload={
                    "envelope_id": incoming.id,
                    "controller_node_id": controller_node_id,
                    "source_node_id": incoming.source_node_id,
                    "reason": str(invalid),
                    "metadata": {"source_channel": source_channel},
                },
            )
        )
        return
    _report_queue(parsed, genome, champion, controller_node_id, incoming, context)


def _report_queue(
    report: AuditReport,
    genome: OrganizationalGenome,
    champion: GenomeVersion,
    controller_node_id: str,
    incoming: MessageEnvelope,
    context: EventDraft,
) -> None:
    source_channel = incoming.channel_type.value
    drafts = report_drafts(
        report,
        suggested_by_node_id=incoming.source_node_id or controller_node_id,
        source_channel=source_channel,
        correlation_id=incoming.correlation_id,
    )
    withheld: list[str] = []
    if drafts and not genome.node(controller_node_id).system_3_star.gene_suggestion_enabled:
        withheld.append(f"gene suggestions are disabled at {controller_node_id}")
        drafts = []
    with ledger_batch():
        run = AuditRun.objects.create(
            controller_node_id=controller_node_id,
            trigger=AuditRun.Trigger.AUDIT_CHANNEL,
            genome_id=champion.id,
            findings=[finding_json(finding) for finding in report.findings],
            completed_at=timezone.now(),
        )
        queued, refused = _queue_all(
            drafts,
            actor=context.actor,
            controller_node_id=None,
            audit_run=run,
            event_context=context,
        )
        ledger_record(
            dataclasses.replace(
                context,
                kind=kinds.AUDIT_COMPLETED,
                payload={
                    "audit_run_id": run.id,
                    "envelope_id": incoming.id,
                    "controller_node_id": controller_node_id,
                    "target_node_id": report.target_node_id,
                    "trigger": run.trigger,
                    "genome_id": champion.id,
                    "findings": list(run.findings),
                    "suggestion_ids": [trial.pk for trial in queued],
                    "withheld": withheld,
                    "refused": refused,
                    "metadata": {
                        "source_channel": source_channel,
                        "suggestion_count": str(len(queued)),
                    },
                },
            )
        )
