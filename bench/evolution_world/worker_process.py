"""The worker process of the worker engine (``worker.py``): a Celery worker whose leaves ask
the world's provider. Solo pool: one hop at a time, in this process, so the patch holds.
The policy needs no telling: each trial names its own decision rule.

    python -m bench.evolution_world.worker_process SEED
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Any
from unittest import mock


def main(argv: list[str]) -> None:
    seed = int(argv[0])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsmsite.settings")
    import django

    django.setup()
    from bench.evolution_world.determinism import Clock
    from bench.evolution_world.services import WorldProvider
    from bench.evolution_world.worker import QUEUES
    from vsmsite.celery import app

    state: dict[str, Any] = {"tokens": 0, "regret": 0, "best_so_far": 0.0}
    clock = Clock()
    provider = WorldProvider(seed, clock, state)
    # A leaf's latency is the world's, as in the services engine (the provider moves the
    # clock by the task's simulated latency), not this machine's wall time: the decision's
    # latency guardrail compares the arms on it.
    latency_clock = SimpleNamespace(monotonic=clock.monotonic)
    with (
        mock.patch("workers.services.leaf.provider_for", return_value=provider),
        mock.patch("workers.services.leaf.time", latency_clock),
    ):
        app.worker_main(
            [
                "worker",
                "--pool=solo",
                f"--queues={QUEUES}",
                f"--hostname=evolution-world-{seed}-{os.getpid()}@localhost",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
            ]
        )


if __name__ == "__main__":
    main(sys.argv[1:])
