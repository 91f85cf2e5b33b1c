"""The hash of a stored trace, which its ``trace_written`` event records and ledger_verify checks.

Fitness, audits and trial decisions read trace rows, not events, so the chain must vouch for
the rows themselves. The hash is ``sha256`` over the canonical JSON of every stored field of
the trace (``TRACE_HASHED_FIELDS``, each as the database gives it back) and its scope rows
(``[distance, node_id, started_at]``, nearest first): the scopes decide which subtree a trace
counts for.

The field list is fixed on purpose: a column added to ``TaskTrace`` later must not change the
hash of the rows written before it. Such a column needs a new payload key (a second hash) for
the traces written after it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import models
from django.utils import timezone

from ledger.chain import canonical_json, format_timestamp, normalise_payload
from ledger.models import TaskTrace

TRACE_HASH_KEY = "trace_hash"

TRACE_HASHED_FIELDS = (
    "id",
    "task_id",
    "directive_id",
    "genome_id",
    "assigned_node_id",
    "responsible_ancestor_ids",
    "related_suggestion_ids",
    "started_at",
    "completed_at",
    "input_tokens",
    "output_tokens",
    "tool_calls",
    "latency_ms",
    "files_touched",
    "lines_added",
    "lines_deleted",
    "tests_run",
    "tests_passed",
    "review_passed",
    "merged",
    "reverted",
    "post_merge_regression",
    "human_override",
    "outcome_score",
    "delayed_adjustments",
    "metadata",
)


def _concrete_field(name: str) -> models.Field[Any, Any]:
    field = TaskTrace._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


_FIELDS = {name: _concrete_field(name) for name in TRACE_HASHED_FIELDS}


def _timestamp(moment: datetime) -> str:
    # A naive value is stored in the default time zone (USE_TZ); hash what will be read back.
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return format_timestamp(moment)


def _stored_value(field: models.Field[Any, Any], value: Any) -> Any:
    """``value`` as the database gives it back, in JSON types."""
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return normalise_payload(value)
    value = field.to_python(value)
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # canonical JSON has no NaN; keep the hash total
    return value


def trace_document(trace: TaskTrace, scopes: Iterable[tuple[int, str, datetime]]) -> dict[str, Any]:
    """What the trace hash covers: the trace's fields and its scopes, nearest first."""
    return {
        "trace": {
            name: _stored_value(field, getattr(trace, field.attname))
            for name, field in _FIELDS.items()
        },
        "scopes": [
            [int(distance), str(node_id), _timestamp(started_at)]
            for distance, node_id, started_at in sorted(scopes)
        ],
    }


def trace_hash(trace: TaskTrace, scopes: Iterable[tuple[int, str, datetime]]) -> str:
    document = canonical_json(trace_document(trace, scopes))
    return "sha256:" + hashlib.sha256(document.encode("utf-8")).hexdigest()
