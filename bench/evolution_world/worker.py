"""The worker engine: the services engine's loop with a real Celery worker doing the hops.

The loop (``services.Loop``) submits each directive in this process as before, but its
envelopes go through the broker to a separate ``celery worker`` process, which runs the
controller and leaf hops (and, on each trace's commit, the trial's evaluation) with the world's
provider in place of the coder's model. The loop waits for the directive to settle before the
next one, and calls ``trials_tick`` itself (activation, the watch window), as beat would.

It shows that the in-process path of the benchmark and the production path agree: the same
candidates meet the same verdicts. It is not byte-identical to the services engine: the worker's
ids and clocks are its own, so which tasks fall in the candidate's exposure bucket differs, and
the counts of traces differ with it. The world's luck is keyed by task number, not by id, so
both engines face the same outcomes for the same structure.

The worker process is ``bench/evolution_world/worker_process.py`` (started for you).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.db.models import F, Sum

from ledger.models import TaskTrace
from workers.models import Directive
from workers.services.transport import CONTROLLER_QUEUE, LEAF_QUEUE

from .determinism import Clock
from .records import SeedRun, Settings
from .services import Loop

BASE_DIR = Path(__file__).resolve().parents[2]
QUEUES = f"{CONTROLLER_QUEUE},{LEAF_QUEUE}"
SETTLED = (Directive.Status.COMPLETED, Directive.Status.FAILED)


class WorkerLoop(Loop):
    """The services loop, with the hops done by the worker process."""

    timeout_s = 20.0
    output: WorkerOutput | None = None

    def deliver(self, directive_id: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            status = Directive.objects.values_list("status", flat=True).get(pk=directive_id)
            if status in SETTLED:
                return
            if time.monotonic() > deadline:
                tail = self.output.tail() if self.output else ""
                raise TimeoutError(
                    f"directive {directive_id} still {status} after {self.timeout_s:.0f} s; "
                    f"the worker said:\n{tail}"
                )
            time.sleep(0.005)

    def tokens(self) -> int:
        total = TaskTrace.objects.aggregate(total=Sum(F("input_tokens") + F("output_tokens")))
        return int(total["total"] or 0)


@dataclass
class WorkerOutput:
    lines: list[str]

    def tail(self, count: int = 40) -> str:
        return "".join(self.lines[-count:])


@contextmanager
def world_worker(seed: int, env: dict[str, str]) -> Iterator[WorkerOutput]:
    """The worker process for one run, ready when the block starts, stopped when it ends.
    ``env`` must name the same database and broker as this process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.evolution_world.worker_process", str(seed)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stdout = process.stdout
    assert stdout is not None
    lines: list[str] = []
    try:
        for line in stdout:
            lines.append(line)
            if "ready." in line:
                break
        else:
            raise RuntimeError("the world's worker exited early:\n" + "".join(lines))
        reader = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
        reader.start()
        yield WorkerOutput(lines)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def run_worker(seed: int, policy: str, settings: Settings, env: dict[str, str]) -> SeedRun:
    """One seed under one policy with a real worker, on the (empty) database ``env`` names."""
    with world_worker(seed, env) as output:
        loop = WorkerLoop(seed, policy, settings, Clock())
        loop.output = output
        loop.run.engine = "worker"
        return loop.go()


def purge_queues() -> None:
    """Drop messages an earlier run left in the broker (their rows are gone)."""
    from vsmsite.celery import app

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for name in QUEUES.split(","):
            channel.queue_declare(queue=name, durable=True, auto_delete=False)
            channel.queue_purge(name)
