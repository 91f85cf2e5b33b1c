"""Signed ledger checkpoints: an anchor kept outside the database. Pure functions, no Django.

The chain proves that no stored event was changed on its own, but not that the whole chain
was not rewritten (every hash recomputed) by someone who can write the database. A checkpoint
is an operator's note of one event, ``(seq, hash)``, signed with HMAC-SHA256 under a key the
database never holds. Because each hash covers the one before it, a ledger whose event at
``seq`` still has that hash still holds exactly the checkpointed prefix.

The text form is one line without spaces::

    vsmledger1.<seq>.sha256:<64 hex>.<taken at, UTC, YYYYMMDDTHHMMSSZ>.<HMAC-SHA256, 64 hex>

the signature covering everything before its dot.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "vsmledger1"
MIN_KEY_LENGTH = 32
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_MAC = re.compile(r"[0-9a-f]{64}")
_SEQ = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or whose signature is wrong."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    taken_at: datetime

    def __str__(self) -> str:
        return f"seq {self.seq} ({self.hash}, taken {self.taken_at:%Y-%m-%d %H:%M:%S} UTC)"


def checkpoint_key_problem(key: str) -> str | None:
    """Why ``key`` cannot sign checkpoints, or None."""
    if not key:
        return "no checkpoint key is set"
    if len(key) < MIN_KEY_LENGTH:
        return f"the checkpoint key is shorter than {MIN_KEY_LENGTH} characters"
    return None


def _signature(body: str, key: str) -> str:
    return hmac.new(key.encode("utf-8"), body.encode("utf-8"), hashlib.sha256).hexdigest()


def checkpoint_sign(checkpoint: Checkpoint, *, key: str) -> str:
    """The checkpoint's signed text form."""
    problem = checkpoint_key_problem(key)
    if problem is not None:
        raise CheckpointError(problem)
    if checkpoint.seq < 0 or not _HASH.fullmatch(checkpoint.hash):
        raise CheckpointError(f"not a ledger position: seq {checkpoint.seq}, {checkpoint.hash}")
    taken_at = checkpoint.taken_at.astimezone(UTC).strftime(_TIME_FORMAT)
    body = f"{PREFIX}.{checkpoint.seq}.{checkpoint.hash}.{taken_at}"
    return f"{body}.{_signature(body, key)}"


def checkpoint_read(text: str, *, key: str) -> Checkpoint:
    """The checkpoint in ``text``, once its signature is proved under ``key``.

    Raises CheckpointError saying what is wrong: not a checkpoint, or a signature that does
    not match (another key, or an altered checkpoint).
    """
    problem = checkpoint_key_problem(key)
    if problem is not None:
        raise CheckpointError(problem)
    parts = text.strip().split(".")
    if len(parts) != 5 or parts[0] != PREFIX:
        raise CheckpointError(
            f"not a ledger checkpoint (expected {PREFIX}.<seq>.<hash>.<time>.<signature>)"
        )
    body, mac = ".".join(parts[:4]), parts[4]
    if not _MAC.fullmatch(mac) or not hmac.compare_digest(mac, _signature(body, key)):
        raise CheckpointError(
            "the checkpoint's signature is wrong: it was altered, or signed with another key"
        )
    _, seq, hash_, taken_at = parts[:4]
    # Signed by us, so well formed; checked anyway rather than trusted.
    if not _SEQ.fullmatch(seq) or not _HASH.fullmatch(hash_):
        raise CheckpointError("the checkpoint's seq or hash is malformed")
    try:
        moment = datetime.strptime(taken_at, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise CheckpointError("the checkpoint's time is malformed") from None
    return Checkpoint(seq=int(seq), hash=hash_, taken_at=moment)
