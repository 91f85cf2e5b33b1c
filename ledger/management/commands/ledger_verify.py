"""Verify the ledger's hash chain: exit 0 with ``ok <N> events`` or 1 naming the first bad seq."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ledger.chain import ChainBreak
from ledger.selectors import ledger_chain_breaks

PROGRESS_EVERY = 50_000


class Command(BaseCommand):
    help = "Check every ledger event's hash and link; report the first seq that is wrong."

    def handle(self, *args: Any, **options: Any) -> None:
        verified = 0
        for outcome in ledger_chain_breaks():
            if isinstance(outcome, ChainBreak):
                raise CommandError(
                    f"ledger chain broken at {outcome} ({verified} events verified before it)"
                )
            verified += 1
            if verified % PROGRESS_EVERY == 0:
                self.stderr.write(f"verified {verified} events…")
        self.stdout.write(f"ok {verified} events")
