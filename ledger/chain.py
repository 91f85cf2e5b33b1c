"""The hash chain of the ledger: pure functions, no Django.

Each event's hash is ``sha256`` over the canonical JSON of the event (every
stored field but ``hash`` itself, ``prev_hash`` included), so changing any
field of any event, or reordering, inserting or deleting events, breaks the
chain at that point.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "sha256:" + "0" * 64

# The fields covered by the hash, in the order they are documented.
HASHED_FIELDS = (
    "seq",
    "id",
    "kind",
    "created_at",
    "node_id",
    "responsible_ancestor_ids",
    "directive_id",
    "task_id",
    "trial_id",
    "suggestion_id",
    "genome_id",
    "correlation_id",
    "causation_id",
    "actor",
    "payload",
    "prev_hash",
)


def new_id() -> str:
    """A fresh opaque id (a random UUID v4 string): events, envelopes, directives, tasks."""
    return str(uuid.uuid4())


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace and no NaN: one text per value."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def normalise_payload(payload: Any) -> Any:
    """The payload as the database will give it back (JSON types only).

    Raises ValueError (or TypeError) for values JSON cannot carry, so a bad
    payload fails before anything is written.
    """
    return json.loads(canonical_json(payload))


def format_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("ledger timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(fields: dict[str, Any]) -> str:
    """The hash of one event, from its hashed fields (``created_at`` a datetime)."""
    document = {name: fields[name] for name in HASHED_FIELDS}
    document["created_at"] = format_timestamp(fields["created_at"])
    digest = hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()
    return f"sha256:{digest}"


# Keys sort, so the payload sits between these two in every event's canonical JSON.
_PAYLOAD_SLOT = ',"payload":0,"prev_hash":'


def event_hash_of_payload_text(fields: dict[str, Any], payload_text: str) -> str:
    """``event_hash(fields)`` when the payload's canonical JSON is known already: the text is
    spliced into the document's instead of serialised again (the same bytes, the same hash).
    """
    document = {name: fields[name] for name in HASHED_FIELDS}
    document["created_at"] = format_timestamp(fields["created_at"])
    document["payload"] = 0
    head, tail = canonical_json(document).split(_PAYLOAD_SLOT)
    text = f'{head},"payload":{payload_text},"prev_hash":{tail}'
    return f"sha256:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"


@dataclass(frozen=True)
class ChainBreak:
    """The first place where the stored chain disagrees with itself."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.reason}"
