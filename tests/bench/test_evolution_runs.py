"""``bench/evolution.py`` runs: progress as each run ends, the record a long run resumes from,
and the same runs on one process or several (the model engine: fast, no database)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from bench.evolution import RecordError, read_runs, run_all
from bench.evolution_world.records import POLICIES, SeedRun, Settings

SMOKE = Settings(max_tasks=30, generations=2, watch_tasks=5, baseline=6)
RULE, REFERENCE = POLICIES[0], POLICIES[1]
COMMAND = Path(__file__).resolve().parents[2] / "bench" / "evolution.py"


def _trials(by_policy: dict[str, list[SeedRun]]) -> dict[str, list[list[dict[str, object]]]]:
    """What a run found, without its timing."""
    return {
        policy: [[asdict(trial) for trial in run.trials] for run in runs]
        for policy, runs in by_policy.items()
    }


def test_each_finished_run_is_reported_with_the_time_left_and_recorded(tmp_path):
    record, progress = tmp_path / "runs.jsonl", io.StringIO()
    runs = run_all(1, "model", [1, 2], SMOKE, (RULE, REFERENCE), record=record, progress=progress)
    lines = progress.getvalue().splitlines()
    assert [line.split("]")[0].split("[")[1] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert all("tasks in" in line and "gone, about" in line for line in lines)
    assert lines[-1].endswith("about 0 s left")
    kept = read_runs(record)
    assert sorted((run.seed, run.policy) for run in kept) == sorted(
        (seed, policy) for seed in (1, 2) for policy in (RULE, REFERENCE)
    )
    assert [len(runs[policy]) for policy in POLICIES] == [2, 2, 0, 0]


def test_a_rerun_reads_the_record_back_and_runs_only_what_is_missing(tmp_path):
    record = tmp_path / "runs.jsonl"
    first = run_all(1, "model", [1, 2], SMOKE, (RULE,), record=record)
    lines = record.read_text().splitlines()
    # A stop after one run and in the middle of writing the next one's line.
    record.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    progress = io.StringIO()
    again = run_all(1, "model", [1, 2], SMOKE, (RULE,), record=record, progress=progress)
    assert len(progress.getvalue().splitlines()) == 1  # the cut-short run, done again
    assert _trials(again) == _trials(first)
    assert [run.seed for run in again[RULE]] == [1, 2]  # in seed order, whatever ended first
    assert len(read_runs(record)) == 2  # the run done again starts a line of its own
    nothing = io.StringIO()
    third = run_all(1, "model", [1, 2], SMOKE, (RULE,), record=record, progress=nothing)
    assert _trials(third) == _trials(first)
    assert nothing.getvalue() == ""


def test_two_processes_give_the_same_runs_as_one_in_the_same_order():
    one = run_all(1, "model", [1, 2, 3], SMOKE, (RULE, REFERENCE))
    two = run_all(2, "model", [1, 2, 3], SMOKE, (RULE, REFERENCE))
    assert _trials(two) == _trials(one)
    assert [run.seed for run in two[RULE]] == [1, 2, 3]


def test_a_record_of_other_settings_is_refused_and_left_as_it_was(tmp_path):
    record = tmp_path / "runs.jsonl"
    run_all(1, "model", [1], SMOKE, (RULE,), record=record)
    before = record.read_text()
    assert read_runs(record)[0].settings == asdict(SMOKE)
    longer = replace(SMOKE, generations=3)
    with pytest.raises(RecordError, match="under other settings"):
        run_all(1, "model", [1, 2], longer, (RULE,), record=record)
    with pytest.raises(RecordError, match="of the model engine, and this command runs the serv"):
        run_all(1, "services", [1], SMOKE, (RULE,), record=record)
    assert record.read_text() == before


def test_the_command_says_what_to_fix_in_its_arguments(tmp_path):
    record = tmp_path / "runs.jsonl"
    unsettled = SeedRun(seed=1, policy=RULE, engine="services")  # its settings not recorded
    record.write_text(json.dumps(asdict(unsettled)) + "\n")
    for arguments, message in (
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--max-tasks", "5"], "--max-tasks at least 20"),
        (["--record", str(tmp_path)], "is a directory"),
        (["--seeds", "0", "--record", str(record)], "under other settings (not recorded)"),
    ):
        done = subprocess.run(
            [sys.executable, str(COMMAND), *arguments], capture_output=True, text=True, check=False
        )
        assert done.returncode == 2, arguments
        assert message in done.stderr, (arguments, done.stderr)
