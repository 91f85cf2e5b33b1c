"""Create the first champion genome from a stock template (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from organization.genome import TEMPLATES
from organization.models import Node
from organization.services import genome_bootstrap


class Command(BaseCommand):
    help = (
        "Bootstrap the organization from a template: 'single' (root-codebase-system with the "
        "coding leaf primary-code-service) or 'nested' (root-codebase-system → backend-system "
        "→ backend-coder). Does nothing if a champion genome already exists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--template", choices=sorted(TEMPLATES), default="single")
        parser.add_argument("--actor", default="operator:cli", help="Recorded in the ledger.")

    def handle(self, *args: Any, **options: Any) -> None:
        version, created = genome_bootstrap(template=options["template"], actor=options["actor"])
        nodes = Node.objects.count()
        if created:
            self.stdout.write(
                f"bootstrapped the {options['template']} organization: {nodes} nodes, "
                f"champion {version.content_hash}"
            )
        else:
            self.stdout.write(
                f"already bootstrapped ({version.reason or 'patched'}): {nodes} nodes, "
                f"champion {version.content_hash}; nothing changed"
            )
