"""Submit a directive from the command line, through the same validation as the API."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.api import DirectiveDetailSerializer
from workers.errors import Rejected
from workers.models import Directive, Task
from workers.selectors import directive_waiting_to_send
from workers.services.directives import directive_submit


class Command(BaseCommand):
    help = (
        "Submit a directive to the root controller. With --wait, show progress until it "
        "finishes and exit non-zero if it failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("title")
        parser.add_argument("--body", default="")
        parser.add_argument(
            "--metadata",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="Repeatable, e.g. --metadata required_capability=review",
        )
        parser.add_argument("--risk", default="Medium", choices=Directive.Risk.values)
        parser.add_argument("--constraint", action="append", default=[], dest="constraints")
        parser.add_argument(
            "--accept",
            action="append",
            default=[],
            metavar="NAME=VERIFIER",
            help=(
                "An acceptance check NAME run by the registered verifier VERIFIER "
                "(see verifier_register)."
            ),
        )
        parser.add_argument("--wait", action="store_true", help="Wait for the directive to finish.")
        parser.add_argument("--timeout", type=float, default=300.0, help="Seconds --wait waits.")
        parser.add_argument("--json", action="store_true", help="Print the directive as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        metadata = dict(self._pairs(options["metadata"], "--metadata"))
        acceptance = [
            {"name": name, "verifier": verifier}
            for name, verifier in self._pairs(options["accept"], "--accept")
        ]
        data = {
            "title": options["title"],
            "body": options["body"],
            "risk": options["risk"],
            "constraints": options["constraints"],
            "metadata": metadata,
            "acceptance": [{"description": "", **item} for item in acceptance],
        }
        try:
            submission = directive_submit(
                title=data["title"],
                body=data["body"],
                constraints=data["constraints"],
                risk=data["risk"],
                metadata=data["metadata"],
                acceptance=data["acceptance"],
                origin="cli",
            )
        except Rejected as rejected:
            raise CommandError(f"directive refused: {json.dumps(rejected.errors)}") from rejected
        directive = submission.directive
        if not options["json"]:
            self.stdout.write(f"submitted directive {directive.id}: {directive.title}")
        if options["wait"]:
            directive = self._wait(directive, options["timeout"], quiet=options["json"])
        if options["json"]:
            self.stdout.write(json.dumps(DirectiveDetailSerializer(directive).data, indent=2))
        if directive.status == Directive.Status.FAILED:
            raise CommandError(f"directive {directive.id} failed: {directive.result_summary}")

    def _pairs(self, items: list[str], flag: str) -> list[tuple[str, str]]:
        pairs = []
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CommandError(f"{flag} expects KEY=VALUE, got {item!r}")
            pairs.append((key, value))
        return pairs

    def _wait(self, directive: Directive, timeout: float, *, quiet: bool) -> Directive:
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while True:
            directive.refresh_from_db()
            for task in Task.objects.filter(directive=directive):
                where = task.executed_by or task.assigned_node_id or "-"
                line = f"  task {task.title!r}: {task.status} ({where})"
                if task.status == Task.Status.FAILED and task.result_summary:
                    line += f": {task.result_summary}"
                if seen.get(task.id) != line and not quiet:
                    self.stdout.write(line)
                seen[task.id] = line
            waiting = directive_waiting_to_send(directive_id=directive.id)
            line = (
                f"  {waiting} message(s) waiting to be sent: the outbox sweeper sends them "
                "(manage.py outbox_sweep does it now)"
                if waiting
                else ""
            )
            if seen.get("waiting", "") != line and not quiet and line:
                self.stdout.write(line)
            seen["waiting"] = line
            if directive.is_finished:
                if not quiet:
                    self.stdout.write(f"directive {directive.status}: {directive.result_summary}")
                return directive
            if time.monotonic() > deadline:
                raise CommandError(
                    f"directive {directive.id} still {directive.status} after {timeout:.0f}s; "
                    "is a worker running? (celery -A vsmsite worker -Q controllers,leaves)"
                )
            time.sleep(0.2)
