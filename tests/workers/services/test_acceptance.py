"""Acceptance checks: verifier commands run in the task workspace, in the agent sandbox."""

from __future__ import annotations

import os
import time
import uuid

from tests.support.sandboxes import processes_running
from workers.acceptance import run_acceptance_checks
from workers.domain.messages import AcceptanceCriterion

ENVIRON = {"PATH": os.environ["PATH"], "HOME": "/home/worker", "SECRET_TOKEN": "sk-do-not-leak"}


def check(name: str, verifier: str | None) -> AcceptanceCriterion:
    return AcceptanceCriterion(name=name, verifier=verifier)


def test_passing_and_failing_checks_are_reported_and_unverifiable_ones_skipped(tmp_path):
    (tmp_path / "limits.py").write_text("def parse_limit(value): ...\n")

    outcomes = run_acceptance_checks(
        [
            check("limits module exists", "test -f limits.py"),
            check("reviewed by a human", None),
            check("tests pass", "echo '2 failed, 5 passed'; exit 1"),
        ],
        workspace=tmp_path,
        environ=ENVIRON,
    )

    assert [(o.name, o.passed, o.exit_code) for o in outcomes] == [
        ("limits module exists", True, 0),
        ("tests pass", False, 1),
    ]
    assert outcomes[1].command == "echo '2 failed, 5 passed'; exit 1"
    assert outcomes[1].output_tail == "2 failed, 5 passed\n"


def test_checks_run_in_the_workspace_and_see_stderr_too(tmp_path):
    (outcome,) = run_acceptance_checks(
        [check("where", "pwd; echo warning >&2")], workspace=tmp_path, environ=ENVIRON
    )

    assert outcome.output_tail == f"{tmp_path.resolve()}\nwarning\n"


def test_checks_cannot_see_the_workers_secrets(tmp_path):
    (outcome,) = run_acceptance_checks(
        [check("no secrets", 'test -z "$SECRET_TOKEN" && test "$HOME" = "$PWD"')],
        workspace=tmp_path,
        environ=ENVIRON,
    )

    assert outcome.passed


def test_a_hanging_check_times_out_and_everything_it_started_is_killed(tmp_path):
    marker = f"30.{uuid.uuid4().int % 10**9}"  # finds the helper from outside the sandbox
    started = time.monotonic()

    (outcome,) = run_acceptance_checks(
        [check("server stays up", f"setsid sleep {marker} & echo started; wait")],
        workspace=tmp_path,
        timeout_seconds=0.5,
        environ=ENVIRON,
    )

    assert not outcome.passed
    assert outcome.exit_code is None
    assert outcome.output_tail.startswith("started\n")
    assert "timed out after 0.5s" in outcome.output_tail
    assert 400 <= outcome.duration_ms < 5000
    assert time.monotonic() - started < 5
    assert processes_running(marker) == []


def test_only_the_last_4000_characters_of_output_are_kept(tmp_path):
    (outcome,) = run_acceptance_checks(
        [check("noisy", "for i in $(seq 2000); do echo line-$i; done")],
        workspace=tmp_path,
        environ=ENVIRON,
    )

    assert len(outcome.output_tail) == 4000
    assert outcome.output_tail.endswith("line-2000\n")


def test_the_workspace_is_created_when_missing(tmp_path):
    workspace = tmp_path / "tasks" / "t-1"

    (outcome,) = run_acceptance_checks(
        [check("empty workspace", 'test -z "$(ls -A)"')], workspace=workspace, environ=ENVIRON
    )

    assert outcome.passed
    assert workspace.is_dir()
