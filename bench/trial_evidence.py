"""What the evaluation after every trace costs, by the size of the trial's window: both arms
read from their rows (``trial_arms``, as before) against the kept arms and the window's new
rows (``trial_arms_cached``, as the evaluation reads them now), each followed by the decision.

    VSM_VAR_DIR=$PWD/var/bench-evidence .venv/bin/python bench/trial_evidence.py \
        [--windows 50,200,400,800] [--rounds 30]

In-memory SQLite, one process. Per window size: the window is filled with traces (half the
candidate's, half the champion's), then rounds alternate between the two readings, each after
new traces (the kept reading meets two new rows a round); medians of the process's CPU time
in milliseconds (the machine may be shared), each reading with the decision after it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from bench.evolution import setup_django  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", default="50,200,400,800")
    parser.add_argument("--rounds", type=int, default=30)
    arguments = parser.parse_args()
    setup_django()

    from django.utils import timezone

    from bench.evolution_world.services import empty_database
    from ledger.models import TaskTrace
    from ledger.services import task_trace_record
    from organization.genome import AddChild, LeafOperationSpec, ViableNode, patch_to_json
    from organization.services import genome_bootstrap
    from trials.models import Trial
    from trials.services.candidates import suggestion_queue
    from trials.services.evaluation import evaluate_arms
    from trials.services.evidence import trial_arms, trial_arms_cached
    from trials.services.lifecycle import trial_activate
    from workers.domain.homeostat import (
        GeneSuggestionDraft,
        SafetyLimits,
        SuggestionSource,
        TrialMode,
    )

    root, coder = "root-codebase-system", "primary-code-service"

    def new_trial() -> Trial:
        empty_database()
        genome_bootstrap(template="single", actor="bench")
        leaf = ViableNode.leaf("review-leaf", LeafOperationSpec.reviewer(), id="review-leaf")
        draft = GeneSuggestionDraft(
            suggested_by_node_id=root,
            target_node_id=root,
            source=SuggestionSource.OTHER,
            other_source="bench",
            patch=patch_to_json(AddChild(parent_id=root, child=leaf)),
            evidence=["bench"],
            hypothesis="bench",
            trial_mode=TrialMode.CANARY,
            safety_limits=SafetyLimits(max_traffic_share_basis_points=5000, max_tasks=10**6),
        )
        trial = suggestion_queue(draft=draft, actor="bench")
        trial_activate(actor="bench")
        trial.refresh_from_db()
        Trial.objects.filter(pk=trial.pk).update(max_traces_per_arm=10**6)
        trial.refresh_from_db()
        return trial

    counter = iter(range(10**9))

    def add_trace(trial: Trial) -> None:
        number = next(counter)
        candidate = number % 2 == 0
        metadata = {"task_metadata.task_class": "code"}
        if candidate:
            metadata |= {"trial_id": trial.id, "trial_route_role": "control"}
        task_trace_record(
            trace=TaskTrace(
                task_id=f"task-{number}",
                genome_id=trial.candidate_version_id if candidate else trial.base_version_id,
                assigned_node_id=coder,
                responsible_ancestor_ids=[root],
                started_at=timezone.now(),
                completed_at=timezone.now(),
                input_tokens=400 + number % 200,
                latency_ms=50 + number % 30,
                merged=None if number % 3 else False,
                outcome_score=1.0 if number % 3 else -1.0,
                metadata=metadata,
            )
        )

    print(
        f"evaluation reads per trace, median of {arguments.rounds} rounds (CPU ms), load "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"{'window':>8} {'from the rows':>15} {'kept + new rows':>17} {'ratio':>7}")
    for window in (int(size) for size in arguments.windows.split(",")):
        trial = new_trial()
        for _ in range(window):
            add_trace(trial)
        trial_arms_cached(trial)  # the kept rows catch up once, as a live trial's would
        rows_ms: list[float] = []
        kept_ms: list[float] = []
        for _ in range(arguments.rounds):
            for reading, into in ((trial_arms, rows_ms), (trial_arms_cached, kept_ms)):
                add_trace(trial)
                started = time.process_time()
                arms = reading(trial)
                evaluate_arms(trial, arms, exhausted=False)
                into.append((time.process_time() - started) * 1000)
        rows, kept = statistics.median(rows_ms), statistics.median(kept_ms)
        print(f"{window:>8} {rows:>15.2f} {kept:>17.2f} {rows / kept:>6.1f}x")


if __name__ == "__main__":
    main()
