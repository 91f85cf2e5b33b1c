"""Acceptance checks: run each criterion's verifier command in the task workspace.

A verifier is a shell snippet (``bash -c``) that exits 0 when the criterion holds. It runs in
the same sandbox as an agent (``workers.providers.sandbox``): only the workspace writable, its
own PID namespace, no network unless the node's ``sandbox.network`` is ``on``, and only PATH,
LANG and HOME (= the workspace) in its environment: a check must not depend on, or be able to
read, the worker's secrets. Each check has its own deadline, and on expiry the sandbox is
killed with everything in it, so a hung test server cannot outlive the task. Without
bubblewrap every check fails with the reason, unless the admin allowed unsandboxed runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workers.domain.messages import AcceptanceCriterion
from workers.providers.process import tail
from workers.providers.sandbox import (
    SandboxError,
    SandboxHost,
    agent_environment,
    run_sandboxed,
)

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
    sandbox: SandboxHost | None = None,
    network: bool = False,
) -> list[CheckOutcome]:
    """One outcome per criterion that has a verifier, in order; the others are skipped.

    A failing, hanging, unstartable or refused check is a failed outcome, never an exception
    (the caller records all of them in the trace), except ``sandbox.Superseded``: a newer
    delivery of the task took the workspace, and this delivery's work is to be discarded.
    """
    workspace = workspace.resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    run = _Runner(
        workspace=workspace,
        timeout_seconds=timeout_seconds,
        env=agent_environment(os.environ if environ is None else environ, workspace=workspace),
        sandbox=sandbox or SandboxHost(),
        network=network,
    )
    return [
        run.check(criterion.name, criterion.verifier)
        for criterion in criteria
        if criterion.verifier is not None and criterion.verifier.strip()
    ]


@dataclass(kw_only=True)
class _Runner:
    workspace: Path
    timeout_seconds: float
    env: Mapping[str, str]
    sandbox: SandboxHost
    network: bool

    def check(self, name: str, command: str) -> CheckOutcome:
        try:
            run = run_sandboxed(
                ["bash", "-c", command],
                host=self.sandbox,
                workspace=self.workspace,
                env=self.env,
                network=self.network,
                stdin=None,
                timeout_seconds=self.timeout_seconds,
                merge_stderr=True,
            )
        except SandboxError as error:
            return _not_run(name, command, f"refused to run the check: {error}")
        except OSError as error:
            return _not_run(name, command, f"could not start bash: {error}")
        output = run.stdout
        if run.timed_out:
            output += (
                f"\n[timed out after {self.timeout_seconds:g}s; "
                "its sandbox was killed with everything in it]"
            )
        return CheckOutcome(
            name=name,
            command=command,
            passed=run.returncode == 0,
            exit_code=run.returncode,
            output_tail=tail(output, OUTPUT_TAIL_CHARS),
            duration_ms=run.duration_ms,
        )


def _not_run(name: str, command: str, reason: str) -> CheckOutcome:
    return CheckOutcome(
        name=name,
        command=command,
        passed=False,
        exit_code=None,
        output_tail=reason,
        duration_ms=0,
    )
