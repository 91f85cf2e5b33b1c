"""``python manage.py evolution_demo``: the whole evolution cycle, with a real worker and beat.

It runs in a fresh embedded default of its own (``var/evolution-demo/``: SQLite, the
embedded broker), so it never touches the organization you work with, and prints each step
as it happens (``trials/demo.py`` says what the world is). ``--effect`` is how much a
reviewer beside the coder raises its success: 0.5 (the default) ends in a promotion, a
negative effect in a prune, 0 usually in an inconclusive trial that waits for an operator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

INSIDE = "VSM_EVOLUTION_DEMO"
DEMO_DIR = "evolution-demo"
TICK_SECONDS = 2


class Command(BaseCommand):
    help = (
        "Run the evolution cycle end to end in a fresh embedded organization of its own: "
        "baseline, System 3* audit, canary trial, both arms, the verdict, ledger_verify."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", default="evolution-demo", help="The scripted world's seed.")
        parser.add_argument(
            "--effect",
            type=float,
            default=0.5,
            help="How much a reviewer beside the coder raises its success rate (base 0.3).",
        )
        parser.add_argument("--max-directives", type=int, default=400)
        parser.add_argument(
            "--var-dir",
            default=None,
            help=f"Where the demo's organization lives (default var/{DEMO_DIR}, emptied first).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if os.environ.get(INSIDE) != "1":
            self._relaunch(options)
            return
        self._run(options)

    def _relaunch(self, options: dict[str, Any]) -> None:
        """Start again inside a fresh embedded default, so nothing of yours is touched."""
        var_dir = Path(options["var_dir"] or settings.BASE_DIR / "var" / DEMO_DIR).resolve()
        if var_dir.exists():
            shutil.rmtree(var_dir)
        var_dir.mkdir(parents=True)
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
        }
        env.update({INSIDE: "1", "VSM_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"})
        self.stdout.write(f"evolution demo in {var_dir} (embedded default: SQLite, no servers)")
        argv = [sys.executable, "manage.py", "evolution_demo", "--seed", options["seed"]]
        argv += ["--effect", str(options["effect"])]
        argv += ["--max-directives", str(options["max_directives"])]
        code = subprocess.call(argv, cwd=settings.BASE_DIR, env=env)
        if code != 0:
            raise CommandError(f"the demo failed (exit {code}); its output is above")

    def _run(self, options: dict[str, Any]) -> None:
        from django_celery_beat.models import IntervalSchedule, PeriodicTask

        from organization.services import genome_bootstrap_from
        from trials.demo import DemoWorld, demo_genome, run_cycle
        from trials.models import Trial
        from trials.tasks import TICK_TASK

        world = DemoWorld(seed=options["seed"], effect=options["effect"])
        say = self._say
        say(
            f"world: the coder succeeds on {world.base_rate:.0%} of its tasks, "
            f"{world.rate_with_reviewer:.0%} with a reviewer beside it (seed {world.seed!r})"
        )
        call_command("migrate", verbosity=0, interactive=False)
        genome_bootstrap_from(genome=demo_genome(world), actor="demo", label="evolution demo")
        call_command("beat_sync", stdout=open(os.devnull, "w"))  # noqa: SIM115
        every, _ = IntervalSchedule.objects.get_or_create(
            every=TICK_SECONDS, period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.filter(name=TICK_TASK).update(interval=every)
        # The demo runs its audit itself, to print it; the schedule would only repeat it.
        PeriodicTask.objects.filter(name__startswith="vsm.trials.audit:").update(enabled=False)
        processes = self._start_processes()
        try:
            outcome = run_cycle(world=world, say=say, max_directives=options["max_directives"])
        finally:
            self._stop(processes)
        if not outcome.ledger_ok:
            raise CommandError("ledger_verify found a break in the chain")
        if outcome.trial is None:
            raise CommandError("the audit queued no trial")
        state = outcome.trial.state
        say(f"done: trial {state} after {outcome.directives} directives")
        if state == Trial.State.ACTIVE:
            raise CommandError("the trial was still undecided when the demo ran out of directives")

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def _start_processes(self) -> dict[str, subprocess.Popen[str]]:
        python = sys.executable
        schedule = str(settings.VAR_DIR / "celerybeat-schedule")
        commands = {
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "vsmsite",
                "worker",
                "--loglevel",
                "WARNING",
                "--queues",
                "controllers,leaves",
                "--concurrency",
                "2",
                "--hostname",
                "evolution-demo@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "vsmsite",
                "beat",
                "--loglevel",
                "WARNING",
                "--schedule",
                schedule,
            ],
        }
        log_dir = Path(settings.VAR_DIR)
        started: dict[str, subprocess.Popen[str]] = {}
        for name, command in commands.items():
            log = open(log_dir / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
            started[name] = subprocess.Popen(
                command, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT, text=True
            )
            self._say(f"started {name} (pid {started[name].pid}, log {log.name})")
        threading.Thread(target=self._watch, args=(started,), daemon=True).start()
        time.sleep(1.0)
        return started

    def _watch(self, started: dict[str, subprocess.Popen[str]]) -> None:
        while True:
            for name, process in started.items():
                if process.poll() is not None and not getattr(self, "_stopping", False):
                    self.stderr.write(f"{name} exited with {process.returncode}; see its log")
                    return
            time.sleep(1.0)

    def _stop(self, started: dict[str, subprocess.Popen[str]]) -> None:
        self._stopping = True
        for process in started.values():
            process.terminate()
        for process in started.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
