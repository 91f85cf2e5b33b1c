"""Print the champion tree, one node a line, or the genome as JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from organization.selectors import champion_version, node_tree


class Command(BaseCommand):
    help = "Show the champion genome: one node a line with kind, status and capabilities."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", help='Print {"hash": ..., "genome": ...} instead.'
        )

    def handle(self, *args: Any, **options: Any) -> None:
        version = champion_version()
        if version is None:
            raise CommandError(
                "there is no champion genome yet; run `python manage.py org_bootstrap`"
            )
        if options["json"]:
            document = {
                "hash": version.content_hash,
                "version_id": version.id,
                "genome": version.genome,
            }
            self.stdout.write(json.dumps(document, indent=2))
            return
        self.stdout.write(f"champion {version.content_hash} (version {version.id})")
        for node in node_tree():
            label = node.id if node.name == node.id else f"{node.id} ({node.name})"
            kind = node.kind if not node.leaf_kind else f"{node.kind}:{node.leaf_kind}"
            capabilities = ", ".join(node.capabilities) or "none"
            self.stdout.write(
                f"{'  ' * node.depth}{label}  [{kind}] {node.status}  can: {capabilities}"
            )
