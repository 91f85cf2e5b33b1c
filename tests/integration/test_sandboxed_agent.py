"""A `command` agent in real worker processes: a crash leaves none of its processes behind.

The first delivery's agent starts a ``setsid`` grandchild and hangs; its worker gets SIGKILL.
Nothing the agent started may outlive the worker (the sandbox's PID namespace dies with it).
The redelivered task runs the agent again in the same workspace, in the sandbox: it finishes,
its acceptance verifier (also sandboxed) passes, and the directive completes with one trace.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

from ledger.models import TaskTrace
from ledger.selectors import ledger_verify
from organization.services import genome_apply_patch, genome_bootstrap
from tests.support.organizations import replace_coder
from tests.support.processes import celery_worker, purge_queues, wait_until
from tests.support.sandboxes import SANDBOX_PYTHON, kill_all, processes_running
from tests.support.verifiers import registered
from workers.models import Directive, Envelope
from workers.services.directives import directive_submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SECRET = f"fake-secret-{uuid.uuid4().hex}"
WORKER_ENV = {
    "VSM_REDIS_VISIBILITY_TIMEOUT": "6",
    "VSM_REDIS_RESTORE_INTERVAL": "1",
    "DJANGO_SECRET_KEY": SECRET,
}

AGENT = """
import os, pathlib, subprocess, sys, time
if not pathlib.Path("first-attempt").exists():
    pathlib.Path("first-attempt").touch()
    subprocess.Popen(["sleep", sys.argv[1]], start_new_session=True)
    time.sleep(120)
leaked = any(
    sys.argv[2] in open(f"/proc/{pid}/environ", errors="replace").read()
    for pid in os.listdir("/proc") if pid.isdigit()
)
pathlib.Path("result.txt").write_text("leaked" if leaked else "clean")
print("done on the second attempt")
"""


def command_coder(agent: Path, marker: str) -> dict[str, object]:
    return replace_coder(
        "agent-coder",
        provider="command",
        model="unbound",
        metadata={"provider.command.argv": json.dumps([str(agent), marker, SECRET])},
    )


def test_a_killed_worker_leaves_no_agent_process_and_the_redelivery_completes(tmp_path):
    marker = f"300.{uuid.uuid4().int % 10**9}"
    agent = tmp_path / "agent.py"
    agent.write_text(f"#!{SANDBOX_PYTHON}\n{textwrap.dedent(AGENT)}")
    agent.chmod(0o755)
    genome_bootstrap(template="single", actor="operator:test")
    genome_apply_patch(patch=command_coder(agent, marker), actor="operator:test")
    purge_queues("controllers", "leaves")

    try:
        with celery_worker("controller", queues="controllers", env=WORKER_ENV):
            with celery_worker("doomed", queues="leaves", env=WORKER_ENV) as doomed:
                directive = directive_submit(
                    title="Survive a crash in the sandbox",
                    metadata={"requires_code_write": "true"},
                    acceptance=[
                        {
                            "name": "clean result",
                            "verifier": registered(
                                "clean-result",
                                'grep -qx clean result.txt && test -z "$DJANGO_SECRET_KEY"',
                            ),
                        }
                    ],
                ).directive
                wait_until(
                    lambda: processes_running(marker, sleep_only=True, wait_seconds=0) != [],
                    60,
                    "the agent's setsid grandchild to start",
                )
                doomed.kill()

            assert processes_running(marker) == []  # grandchild and agent died with the worker
            assert Envelope.objects.get(target_node_id="agent-coder").handled_at is None

            with celery_worker("rescuer", queues="leaves", env=WORKER_ENV):
                wait_until(
                    lambda: Directive.objects.get(id=directive.id).is_finished,
                    90,
                    "the directive",
                )
    finally:
        kill_all(marker)

    directive.refresh_from_db()
    assert directive.status == Directive.Status.COMPLETED
    (trace,) = TaskTrace.objects.filter(task_id=directive.tasks.get().id)
    assert trace.tests_run == ["clean result"]
    assert trace.tests_passed is True
    assert ledger_verify()[1] is None
