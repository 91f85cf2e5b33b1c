"""The runtime's signals (``workers.signals``), answered by the trials services.

Connected in ``TrialsConfig.ready``; each receiver runs inside the hop's transaction. The
services are imported when a signal first fires, so the app registry never waits on them.
"""

from __future__ import annotations

from typing import Any

from workers import signals


def _freeze(sender: str, **kwargs: Any) -> list[str]:
    from trials.services.lifecycle import on_freeze_requested

    return on_freeze_requested(sender, **kwargs)


def _gene(sender: str, **kwargs: Any) -> str:
    from trials.services.candidates import on_gene_suggested

    return on_gene_suggested(sender, **kwargs)


def _audit_report(sender: str, **kwargs: Any) -> Any:
    from trials.services.audits import on_audit_report

    return on_audit_report(sender, **kwargs)


def _evidence(sender: str, **kwargs: Any) -> None:
    from trials.services.evaluation import on_evidence_arrived

    on_evidence_arrived(sender, **kwargs)


def connect() -> None:
    signals.mutation_freeze_requested.connect(_freeze, dispatch_uid="trials.freeze")
    signals.gene_suggested.connect(_gene, dispatch_uid="trials.gene")
    signals.audit_report_received.connect(_audit_report, dispatch_uid="trials.audit")
    signals.trial_evidence_arrived.connect(_evidence, dispatch_uid="trials.evidence")
