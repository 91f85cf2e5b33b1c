"""Send again, now, the envelopes whose message was lost (what beat's ``vsm.outbox.sweep``
does every 30 s)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.selectors import envelopes_waiting_to_send
from workers.services.outbox import outbox_sweep


class Command(BaseCommand):
    help = (
        "Send again every unhandled envelope older than VSM_OUTBOX_GRACE_SECONDS (handlers "
        "dedupe, so this is always safe). --list only shows them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--list", action="store_true", help="Show the envelopes waiting; send nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        waiting = envelopes_waiting_to_send()
        for envelope in waiting:
            self.stdout.write(
                f"waiting: envelope {envelope.id} {envelope.payload_type} → "
                f"{envelope.target_node_id} on {envelope.queue} (directive "
                f"{envelope.correlation_id}, created {envelope.created_at:%Y-%m-%d %H:%M:%S}, "
                f"resent {envelope.resends} time(s))"
            )
        if options["list"]:
            self.stdout.write(f"{len(waiting)} envelope(s) waiting to be sent")
            return
        sweep = outbox_sweep()
        self.stdout.write(str(sweep))
        if sweep.failed:
            raise CommandError("the broker refused a send; the rest wait for the next run")
