"""System 3* audits: run on beat or on demand, and audit reports from the Audit channel."""

from __future__ import annotations

from typing import Any


def on_audit_report(sender: str, **kwargs: Any) -> None:
    """``workers.signals.audit_report_received``: queue each suggested patch."""
    raise NotImplementedError
