"""Run evolution generations now: one controller's, or every metasystem's."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from organization.selectors import champion_genome
from trials.services.evolution import (
    GenerationRun,
    evolution_controller_ids,
    evolution_generation_attempt,
)
from workers.errors import NoOrganization, Rejected


class Command(BaseCommand):
    help = (
        "Run the next deterministic evolution generation of a controller and queue its "
        "offspring as canary trials: the one named by --controller, else every metasystem of "
        "the champion. Prints each operator's outcome and the trials queued."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--controller", help="The metasystem to evolve (a node id).")
        parser.add_argument("--actor", default="operator:cli", help="Recorded in the ledger.")

    def handle(self, *args: Any, **options: Any) -> None:
        genome = champion_genome()
        if genome is None:
            raise CommandError(str(NoOrganization()))
        controller = options["controller"]
        for controller_node_id in [controller] if controller else evolution_controller_ids(genome):
            try:
                run = evolution_generation_attempt(
                    controller_node_id=controller_node_id, actor=options["actor"]
                )
            except Rejected as refusal:
                problems = [problem for listed in refusal.errors.values() for problem in listed]
                raise CommandError("; ".join(problems)) from None
            self._report(run)

    def _report(self, run: GenerationRun) -> None:
        plan = run.plan
        if run.generation is not None:
            self.stdout.write(
                f"generation {plan.generation} of {plan.controller_node_id} "
                f"(id {run.generation.id}, champion {plan.champion_genome_id}, policy "
                f"{plan.policy}): {len(run.trials)} offspring queued"
            )
        else:
            self.stdout.write(
                f"no generation for {plan.controller_node_id} (it would have been generation "
                f"{plan.generation}, champion {plan.champion_genome_id}): no offspring"
            )
        if plan.reason:
            self.stdout.write(f"  {plan.reason}")
            return
        self.stdout.write(
            f"  capacity {plan.capacity} ({plan.queued_count} queued), "
            f"{plan.recent_trace_count} recent traces, {len(plan.elites)} elite parent(s)"
        )
        for elite in plan.elites:
            self.stdout.write(f"  elite {elite.trial_id} ({elite.state}): {elite.reason}")
        for trial_id, reason in plan.excluded_elites:
            self.stdout.write(f"  not an elite: {trial_id}: {reason}")
        for report in plan.reports:
            self.stdout.write(f"  {report.operator}: {report.outcome}: {report.reason}")
        operator_of = {offspring.draft.id: offspring.operator for offspring in plan.offspring}
        for trial in run.trials:
            self.stdout.write(
                f"  queued trial {trial.id}: {operator_of[trial.id]} "
                f"({trial.suggestion.patch.get('kind', 'patch')}, {trial.mode}, "
                f"{trial.traffic_share_basis_points} bp, at most {trial.max_tasks} tasks)"
            )
        for refused in run.refused:
            self.stdout.write(
                f"  refused {refused['suggestion_id']} ({refused['operator']}): {refused['reason']}"
            )
