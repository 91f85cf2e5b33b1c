"""Apply one JSON genome patch to the champion and print the new content hash."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from organization.genome import PATCH_KINDS, GenomeError
from organization.services import genome_apply_patch


class Command(BaseCommand):
    help = (
        'Apply a genome patch, {"kind": "<kind>", ...}, read from FILE or \'-\' for stdin. '
        f"Kinds: {', '.join(sorted(PATCH_KINDS))}. A bad patch changes nothing and exits 1."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path of a JSON file holding one patch, or - for stdin.")
        parser.add_argument("--actor", default="operator:cli", help="Recorded with the version.")
        parser.add_argument("--reason", default="", help="Why: kept with the version and event.")

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["file"]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as error:
            raise CommandError(f"cannot read {source}: {error.strerror or error}") from error
        name = "stdin" if source == "-" else source
        try:
            patch = json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(
                f"{name} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
            ) from error
        if not isinstance(patch, dict):
            raise CommandError(
                f'{name} must hold one JSON object like {{"kind": "add_child", ...}}'
            )
        try:
            version = genome_apply_patch(
                patch=patch, actor=options["actor"], reason=options["reason"]
            )
        except GenomeError as error:
            detail = "; ".join([str(error), *getattr(error, "__notes__", [])])
            raise CommandError(f"patch refused, nothing changed: {detail}") from error
        self.stdout.write(version.content_hash)
