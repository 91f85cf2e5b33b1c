"""Verify the ledger: exit 0 with ``ok <N> events…`` or 1 naming the first bad seq or trace.

``--checkpoint`` then prints a signed checkpoint of the last event; ``--against CHECKPOINT``
proves the ledger still holds a checkpoint's event (docs/operations.md, "Ledger checkpoints").
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ledger.checkpoint import (
    PREFIX,
    Checkpoint,
    CheckpointError,
    checkpoint_key_problem,
    checkpoint_read,
    checkpoint_sign,
)
from ledger.verification import checkpoint_problem, ledger_audit

KEY_SETTING = "VSM_LEDGER_CHECKPOINT_KEY"


class Command(BaseCommand):
    help = (
        "Check every ledger event's hash and link, the chain head and every trace row; report "
        "the first seq (or trace) that is wrong. --checkpoint prints a signed checkpoint, "
        "--against checks the ledger still holds one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint",
            action="store_true",
            help=f"after verifying, print a checkpoint of the last event signed with {KEY_SETTING}",
        )
        parser.add_argument(
            "--against",
            metavar="CHECKPOINT",
            help="a checkpoint (its text, a file holding it, or - for stdin) that the ledger "
            "must still hold",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        wanted = options["against"]
        anchor = _checkpoint_read_or_fail(_checkpoint_text(wanted)) if wanted else None
        key = _key() if options["checkpoint"] else ""
        report = ledger_audit(progress=lambda n: self.stderr.write(f"verified {n} events…"))
        problems = report.problems()
        if anchor is not None:
            against = checkpoint_problem(report, anchor)
            if against is not None:
                problems.append(f"checkpoint {anchor} not held: {against}")
        if problems:
            raise CommandError("\n".join(problems))
        summary = report.summary()
        if anchor is not None:
            summary += f"; holds checkpoint {anchor}"
        if options["checkpoint"]:
            self.stderr.write(summary)
            position = Checkpoint(seq=report.events, hash=report.last_hash, taken_at=timezone.now())
            self.stdout.write(checkpoint_sign(position, key=key))
        else:
            self.stdout.write(summary)


def _key() -> str:
    key = str(getattr(settings, KEY_SETTING, "") or "")
    problem = checkpoint_key_problem(key)
    if problem is not None:
        raise CommandError(
            f"{KEY_SETTING}: {problem}. Checkpoints are signed with a key kept outside the "
            f"database: set {KEY_SETTING} in the environment (docs/operations.md, "
            '"Ledger checkpoints").'
        )
    return key


def _checkpoint_read_or_fail(text: str) -> Checkpoint:
    key = _key()
    try:
        return checkpoint_read(text, key=key)
    except CheckpointError as error:
        raise CommandError(f"checkpoint refused: {error}") from None


def _checkpoint_text(value: str) -> str:
    if value == "-":
        return sys.stdin.read()
    if value.strip().startswith(PREFIX + "."):
        return value
    path = Path(value)
    if not path.is_file():
        raise CommandError(f"checkpoint refused: {value!r} is neither a checkpoint nor a file")
    return path.read_text(encoding="utf-8")
