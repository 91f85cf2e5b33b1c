"""Register (or replace, or with --remove delete) an acceptance verifier."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.errors import Rejected
from workers.models import AcceptanceVerifier
from workers.services.verifiers import verifier_register, verifier_remove


class Command(BaseCommand):
    help = (
        "Register the acceptance verifier NAME running COMMAND (a bash snippet run in the task "
        "workspace, in the agent sandbox; exit 0 passes). Directives name verifiers; only an "
        "admin writes their commands. With no arguments, list the registered verifiers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?")
        parser.add_argument("command", nargs="?")
        parser.add_argument("--description", default="")
        parser.add_argument("--remove", action="store_true", help="Remove NAME instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        name, command = options["name"], options["command"]
        actor = f"cli:{getpass.getuser()}"
        if name is None:
            for verifier in AcceptanceVerifier.objects.all():
                self.stdout.write(f"{verifier.name}\t{verifier.command}")
            return
        if options["remove"]:
            if not verifier_remove(name=name, actor=actor):
                raise CommandError(f"no acceptance verifier is called {name!r}")
            self.stdout.write(f"removed acceptance verifier {name}")
            return
        if command is None:
            raise CommandError("give the verifier's COMMAND after its NAME (or --remove)")
        try:
            verifier_register(
                name=name, command=command, description=options["description"], actor=actor
            )
        except Rejected as rejected:
            raise CommandError(f"verifier refused: {rejected}") from rejected
        self.stdout.write(f"registered acceptance verifier {name}: {command}")
