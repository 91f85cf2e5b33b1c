"""Run System 3* audits now: one controller's, or every audited controller's."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from organization.selectors import champion_genome
from trials.models import AuditRun, GeneSuggestion
from trials.services.audits import audit_completion, audit_run, audited_controller_ids
from workers.errors import NoOrganization, Rejected


class Command(BaseCommand):
    help = (
        "Audit a controller's subtree now and queue a trial for each suggestion: the one named "
        "by --controller, else every metasystem whose System 3* config enables audits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--controller", help="The metasystem to audit (a node id).")
        parser.add_argument("--actor", default="operator:cli", help="Recorded in the ledger.")

    def handle(self, *args: Any, **options: Any) -> None:
        genome = champion_genome()
        if genome is None:
            raise CommandError(str(NoOrganization()))
        controller = options["controller"]
        controllers = [controller] if controller else audited_controller_ids(genome)
        if not controllers:
            self.stdout.write("no controller has audits enabled; nothing audited")
            return
        for controller_node_id in controllers:
            try:
                run = audit_run(
                    controller_node_id=controller_node_id,
                    trigger=AuditRun.Trigger.COMMAND,
                    actor=options["actor"],
                )
            except Rejected as refusal:
                problems = [problem for listed in refusal.errors.values() for problem in listed]
                raise CommandError("; ".join(problems)) from None
            self._report(run)

    def _report(self, run: AuditRun) -> None:
        completion = audit_completion(audit_run=run) or {}
        ratio = completion.get("failure_ratio", 0.0)
        self.stdout.write(
            f"audit of {run.controller_node_id} (run {run.id}, genome {run.genome_id}): "
            f"{run.trace_count} traces, {run.failed_count} failed/reverted (ratio {ratio:.3f})"
        )
        if not run.findings:
            self.stdout.write("  no findings")
        for finding in run.findings:
            evidence = "; ".join(finding.get("evidence", []))
            self.stdout.write(
                f"  finding: {finding['title']} (severity {finding['severity']}): {evidence}"
            )
        for suggestion in run.suggestions.order_by("created_at", "id"):
            self.stdout.write(f"  queued trial {suggestion.id}: {_described(suggestion)}")
        for reason in completion.get("withheld", []):
            self.stdout.write(f"  withheld: {reason}")
        for refused in completion.get("refused", []):
            self.stdout.write(f"  refused {refused['suggestion_id']}: {refused['reason']}")


def _described(suggestion: GeneSuggestion) -> str:
    patch = suggestion.patch if isinstance(suggestion.patch, dict) else {}
    what = str(patch.get("kind", "patch"))
    child = patch.get("child")
    if isinstance(child, dict):
        what = f"{what} {child.get('name')} under {patch.get('parent_id')}"
    limits = suggestion.safety_limits or {}
    approval = ", approval required" if limits.get("requires_approval") else ""
    return f"{what} ({suggestion.trial_mode}{approval})"
