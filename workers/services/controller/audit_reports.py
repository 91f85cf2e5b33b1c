"""System 3* audit reports arriving on the Audit channel (docs/rules/trials.md).

The controller records the arrival (``audit_report_received``) and hands the report to the
trials app through ``workers.signals.audit_report_received``, inside this hop's transaction:
the trials app validates it and queues its suggested patches, or records why it refused it.
``workers`` never imports ``trials`` (it sits below it).
"""

from __future__ import annotations

from ledger import kinds
from workers import signals
from workers.services.hop import Hop


def _count(payload: object, key: str) -> int | None:
    value = payload.get(key) if isinstance(payload, dict) else None
    return len(value) if isinstance(value, list) else None


def on_audit_report(hop: Hop) -> None:
    report = hop.incoming.payload
    target = report.get("target_node_id") if isinstance(report, dict) else None
    hop.event(
        kinds.AUDIT_REPORT_RECEIVED,
        {
            "envelope_id": hop.incoming.id,
            "source_node_id": hop.incoming.source_node_id,
            "target_node_id": target if isinstance(target, str) else None,
            "finding_count": _count(report, "findings"),
            "suggested_patch_count": _count(report, "suggested_patches"),
            "metadata": {"source_channel": hop.incoming.channel_type.value},
        },
    )
    signals.audit_report_received.send(
        sender=hop.node_id,
        report=report,
        controller_node_id=hop.node_id,
        incoming=hop.incoming,
        event_context=hop.event_context(),
    )
