"""Acceptance checks: run each criterion's verifier command in the task workspace.

A verifier is a shell snippet (``bash -c``) that exits 0 when the criterion holds. It runs
with the same stripped environment as an agent (PATH, HOME, LANG, TMPDIR): a check must not
depend on, or be able to read, the worker's secrets. Each check has its own deadline, and on
expiry its whole process group is killed so a hung test server cannot outlive the task.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workers.domain.messages import AcceptanceCriterion
from workers.providers.process import run_in_process_group, stripped_environment, tail

OUTPUT_TAIL_CHARS = 4000
DEFAULT_TIMEOUT_SECONDS = 120.0


@dataclass(kw_only=True)
class CheckOutcome:
    name: str
    command: str
    passed: bool
    exit_code: int | None  # None when the check timed out or could not start
    output_tail: str  # the last 4000 characters of stdout and stderr, interleaved
    duration_ms: int


def run_acceptance_checks(
    criteria: list[AcceptanceCriterion],
    *,
    workspace: Path,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    environ: Mapping[str, str] | None = None,
) -> list[CheckOutcome]:
    """One outcome per criterion that has a verifier, in order; the others are skipped.

    A failing, hanging or unstartable check is a failed outcome, never an exception: the
    caller records all of them in the trace.
    """
    workspace.mkdir(parents=True, exist_ok=True)
    env = stripped_environment(os.environ if environ is None else environ)
    return [
        _run_check(criterion.name, criterion.verifier, workspace, timeout_seconds, env)
        for criterion in criteria
        if criterion.verifier is not None and criterion.verifier.strip()
    ]


def _run_check(
    name: str, command: str, workspace: Path, timeout_seconds: float, env: Mapping[str, str]
) -> CheckOutcome:
    try:
        run = run_in_process_group(
            ["bash", "-c", command],
            cwd=workspace,
            env=env,
            stdin=None,
            timeout_seconds=timeout_seconds,
            merge_stderr=True,
        )
    except OSError as error:
        return CheckOutcome(
            name=name,
            command=command,
            passed=False,
            exit_code=None,
            output_tail=f"could not start bash: {error}",
            duration_ms=0,
        )
    output = run.stdout
    if run.timed_out:
        output += f"\n[timed out after {timeout_seconds:g}s; process group killed]"
    return CheckOutcome(
        name=name,
        command=command,
        passed=run.returncode == 0,
        exit_code=run.returncode,
        output_tail=tail(output, OUTPUT_TAIL_CHARS),
        duration_ms=run.duration_ms,
    )
