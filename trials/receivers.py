"""The runtime's signals (``workers.signals``), answered by the trials services.

Connected in ``TrialsConfig.ready``; each receiver runs inside the hop's transaction.
"""

from __future__ import annotations

from workers import signals


def connect() -> None:
    from trials.services import audits, candidates, evaluation, lifecycle

    signals.mutation_freeze_requested.connect(
        lifecycle.on_freeze_requested, dispatch_uid="trials.freeze"
    )
    signals.gene_suggested.connect(candidates.on_gene_suggested, dispatch_uid="trials.gene")
    signals.audit_report_received.connect(audits.on_audit_report, dispatch_uid="trials.audit")
    signals.trial_evidence_arrived.connect(
        evaluation.on_evidence_arrived, dispatch_uid="trials.evidence"
    )
