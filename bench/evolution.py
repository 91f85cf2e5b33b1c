"""Does the loop make the organization better, and how often does it make it worse?

Offline and deterministic from a seed. A simulated world (bench/evolution_world/world.py) gives
every organization structure a true success rate per task class and a token cost the loop
cannot see; candidates of every kind are tried (better, worse, equal A/A, worse only on cost,
better only on code tasks), each seed under four decision policies side by side: this project's
rule (``sequential_confidence_v1``), the reference's absolute rule, a naive fixed-sample test
re-checked after every trace, and a random choice (a control).

    VSM_VAR_DIR=$PWD/var/bench-evo .venv/bin/python bench/evolution.py [--seeds 100]
        [--services-seeds 4] [--worker-seeds 1] [--policies a,b] [--jobs N] [--quick]
        [--record runs.jsonl]
        [--svg docs/evolution-champion.svg] [--source scripted|generations]

Two engines run the same loop on the same world:

* **services**: the real services in process (audit, queue, activation, trial routing, leaf
  execution, evaluation after every trace, promotion, watch, rollback), envelopes delivered in
  order, ids and clocks fixed by the seed; prints each run's final ledger chain hash (a rerun
  with the same seed gives the same hash). About 11 ms a task on a quiet 2-core machine
  (100 seeds of this rule and the reference: 19 minutes on two processes; ``--jobs``, one a
  core by default, scales it), so it runs ``--services-seeds`` seeds, with a progress line on
  stderr as each ends;
* **worker**: the services engine's loop with a real Celery worker process doing the hops
  (``--worker-seeds``), printed trial by trial beside the services engine: the two paths agree
  on the verdicts, not byte for byte (the worker's ids and clocks are its own);
* **model**: the same protocol without the database, on the project's own pure code (exposure
  bucket, decision policies); it runs ``--seeds`` seeds for the figures and the aims, and is
  printed beside the services engine on the seeds both ran.

Candidates come from the scripted source (bench/evolution_world/source.py): the System 3*
audit's reviewer first (through ``audit_run`` in the services engine), then the other genes in
an order drawn from the seed, queued with ``suggestion_queue``. With ``--source generations``
the services engine takes them from the project's evolution generation
(``trials.services.evolution``) first, the scripted source when it has no offspring; the model
engine keeps the scripted source. Figures: docs/evolution.md.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import TextIO

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

if os.environ.get("PYTHONHASHSEED") != "0" and __name__ == "__main__":
    # Set iteration order must not differ between runs, or a ledger payload could.
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])

from bench.evolution_world.metrics import Figures, aims, figures  # noqa: E402
from bench.evolution_world.model import run_model  # noqa: E402
from bench.evolution_world.records import (  # noqa: E402
    POLICIES,
    SHORT,
    SeedRun,
    Settings,
    TrialRecord,
)
from bench.evolution_world.report import (  # noqa: E402
    champion_svg,
    print_figures,
    print_generations,
)

RULE = POLICIES[0]


def setup_django() -> None:
    """Django on an in-memory SQLite test database of this process's own."""
    var_dir = os.environ.get("VSM_VAR_DIR")
    if var_dir:
        Path(var_dir).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="vsm-bench-evo-", dir=var_dir))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    os.environ["VSM_WORKSPACE_ROOT"] = str(scratch / "workspaces")
    os.environ["VSM_BROKER_PATH"] = str(scratch / "broker.sqlite3")
    os.environ["VSM_LEAF_QUEUES"] = "shared"
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_DEBUG", "false")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsmsite.settings")
    import django

    django.setup()
    import logging

    from django.db import connection
    from django.test.utils import setup_databases

    logging.disable(logging.WARNING)  # the world's failures are expected; keep the tables legible
    connection.settings_dict["TEST"]["NAME"] = ":memory:"
    options = connection.settings_dict.setdefault("OPTIONS", {})
    options["init_command"] = "PRAGMA synchronous=OFF;"
    setup_databases(verbosity=0, interactive=False)


def setup_django_files() -> None:
    """Django on a SQLite file (and the embedded broker's file) of this process's own, so that
    the worker engine's worker process can open the same database."""
    var_dir = Path(os.environ.get("VSM_VAR_DIR") or BASE_DIR / "var")
    var_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="vsm-bench-evo-worker-", dir=var_dir))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    os.environ["VSM_VAR_DIR"] = str(scratch)
    os.environ["VSM_WORKSPACE_ROOT"] = str(scratch / "workspaces")
    os.environ["VSM_BROKER_PATH"] = str(scratch / "broker.sqlite3")
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_DEBUG", "false")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsmsite.settings")
    import django

    django.setup()
    import logging

    from django.core.management import call_command

    logging.disable(logging.WARNING)
    call_command("migrate", verbosity=0, interactive=False)


def worker_job(args: tuple[int, str, Settings]) -> SeedRun:
    from bench.evolution_world.services import empty_database
    from bench.evolution_world.worker import purge_queues, run_worker

    empty_database()
    purge_queues()
    return run_worker(*args, env=dict(os.environ))


def services_job(args: tuple[int, str, Settings]) -> SeedRun:
    from bench.evolution_world.services import run_services

    return run_services(*args)


def model_job(args: tuple[int, str, Settings]) -> SeedRun:
    return run_model(*args)


def run_all(
    jobs: int,
    engine: str,
    seeds: Iterable[int],
    settings: Settings,
    policies: tuple[str, ...] = POLICIES,
    record: Path | None = None,
    progress: TextIO | None = None,
) -> dict[str, list[SeedRun]]:
    """Every (seed, policy) run of ``engine``, on ``jobs`` processes (the worker engine on one
    of its own). ``record``: each finished run is appended to it as one JSON line as it ends,
    and runs already there (same seed and policy) are read back, not run again. ``progress``:
    a line for each finished run, with the time gone and an estimate of the time left."""
    work = [(seed, policy, settings) for seed in seeds for policy in policies]
    done = {(run.seed, run.policy): run for run in _kept_runs(record, engine, settings)}
    todo = [item for item in work if (item[0], item[1]) not in done]
    meter = Progress(len(todo), engine, progress)
    with _appending(record) as keep:
        for run in _runs(jobs, engine, todo):
            run.settings = asdict(settings)
            keep(run)
            done[(run.seed, run.policy)] = run
            meter.finished(run)
    return _by_policy([done[(seed, policy)] for seed, policy, _ in work])


class RecordError(Exception):
    """A ``--record`` file that holds runs this command must not reuse."""


def _kept_runs(record: Path | None, engine: str, settings: Settings) -> list[SeedRun]:
    """The runs ``record`` kept, if they are runs of this engine under these settings;
    RecordError otherwise (mixing them would report figures no single run gave)."""
    runs = read_runs(record) if record is not None else []
    wanted = asdict(settings)
    for run in runs:
        if run.engine != engine:
            why = f"of the {run.engine} engine, and this command runs the {engine} engine"
        elif run.settings != wanted:
            why = f"under other settings ({run.settings or 'not recorded'}) than {wanted}"
        else:
            continue
        raise RecordError(
            f"{record} holds a run of seed {run.seed} {why}; give --record another file, "
            "or the same settings"
        )
    return runs


@contextmanager
def _appending(record: Path | None) -> Iterator[Callable[[SeedRun], None]]:
    """Keep each run in ``record`` as one JSON line, flushed as it ends (without a record,
    nothing). A last line cut short by a stop is ended first, so the next line is whole."""
    if record is None:
        yield lambda run: None
        return
    text = record.read_text() if record.exists() else ""
    with record.open("a") as out:
        if text and not text.endswith("\n"):
            out.write("\n")

        def keep(run: SeedRun) -> None:
            out.write(json.dumps(asdict(run)) + "\n")
            out.flush()

        yield keep


# Each engine's job and the set-up of the process that runs it.
Job = Callable[[tuple[int, str, Settings]], SeedRun]
_ENGINES: dict[str, tuple[Job, Callable[[], None] | None]] = {
    "services": (services_job, setup_django),
    "worker": (worker_job, setup_django_files),
    "model": (model_job, None),
}


def _runs(jobs: int, engine: str, todo: list[tuple[int, str, Settings]]) -> Iterator[SeedRun]:
    """The runs of ``todo``, each as soon as it ends (not in order: a long seed holds no other
    back)."""
    if not todo:
        return
    job, initializer = _ENGINES[engine]
    if engine == "worker":  # one process of its own, with its database on files
        jobs = 1
    elif jobs <= 1:
        if initializer is not None:
            initializer()
        for item in todo:
            yield job(item)
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=initializer) as pool:
        futures = [pool.submit(job, item) for item in todo]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


class Progress:
    """One line a finished run on ``out`` (stderr by the command): how many of how many, the
    run's tasks and time, the time gone and about how long is left (the time gone per finished
    run so far, times the runs left: rough while runs differ in length)."""

    def __init__(self, total: int, engine: str, out: TextIO | None) -> None:
        self.total, self.engine, self.out = total, engine, out
        self.count, self.started = 0, time.perf_counter()

    def finished(self, run: SeedRun) -> None:
        self.count += 1
        if self.out is None:
            return
        gone = time.perf_counter() - self.started
        left = gone / self.count * (self.total - self.count)
        width = len(str(self.total))
        print(
            f"  {self.engine} [{self.count:{width}d}/{self.total}] seed {run.seed} "
            f"{SHORT[run.policy]}: {run.tasks:,} tasks in {run.seconds:.1f} s; "
            f"{_duration(gone)} gone, about {_duration(left)} left",
            file=self.out,
            flush=True,
        )


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def read_runs(path: Path) -> list[SeedRun]:
    """The runs ``--record`` kept, one JSON object a line (none if the file is not there yet;
    a line cut short by a stop mid-write is skipped: its run is done again)."""
    runs = []
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        data["trials"] = [TrialRecord(**trial) for trial in data["trials"]]
        runs.append(SeedRun(**data))
    return runs


def _by_policy(results: list[SeedRun]) -> dict[str, list[SeedRun]]:
    by_policy: dict[str, list[SeedRun]] = {policy: [] for policy in POLICIES}
    for run in results:
        by_policy[run.policy].append(run)
    return by_policy


def print_agreement(services: dict[str, list[SeedRun]], worker: dict[str, list[SeedRun]]) -> None:
    """Each worker-engine trial beside the services engine's trial of the same seed, policy and
    generation: the same candidate, and whether the verdicts agree."""
    agree = total = 0
    for policy, runs in worker.items():
        in_process = {run.seed: run for run in services[policy]}
        for run in runs:
            print(f"  seed {run.seed:4d} {SHORT[policy]:>9}: {run.tasks} tasks, {run.seconds:.0f}s")
            pairs = zip(in_process[run.seed].trials, run.trials, strict=False)
            for there, here in pairs:
                same = (there.gene, there.state) == (here.gene, here.state)
                agree, total = agree + same, total + 1
                print(
                    f"    gen {here.generation:2d} {here.gene:>13} ({here.kind}): services "
                    f"{there.state} ({there.candidate_traces}/{there.champion_traces} traces), "
                    f"worker {here.state} ({here.candidate_traces}/{here.champion_traces})"
                    f"{'' if same else '  <- differs'}"
                )
    print(f"  verdicts that agree: {agree} of {total}")


def table(by_policy: dict[str, list[SeedRun]]) -> dict[str, Figures]:
    return {policy: figures(policy, runs) for policy, runs in by_policy.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=120, help="model-engine seeds (figures)")
    parser.add_argument("--services-seeds", type=int, default=1, help="services-engine seeds")
    parser.add_argument(
        "--worker-seeds",
        type=int,
        default=0,
        help="seeds also run with a real worker, beside the services engine (slow)",
    )
    parser.add_argument(
        "--policies",
        default=",".join(POLICIES),
        help="the policies the services and worker engines run (comma-separated)",
    )
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--max-tasks", type=int, default=200, help="a trial's maximum tasks")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes for the services and model engines (default: one a core); each "
        "services process has its own in-memory database",
    )
    parser.add_argument(
        "--source",
        choices=("scripted", "generations"),
        default="scripted",
        help="where candidates come from: the scripted source, or the project's evolution "
        "generation (services engine only; the model engine keeps the scripted source)",
    )
    parser.add_argument("--quick", action="store_true", help="10 model seeds, 1 services seed")
    parser.add_argument("--svg", type=Path, default=None, help="write the champion plot here")
    parser.add_argument(
        "--record",
        type=Path,
        default=None,
        help="append each finished services run to this JSON-lines file as it ends, and skip "
        "the runs already in it (a long run survives being stopped)",
    )
    arguments = parser.parse_args()
    for name, least in (("seeds", 0), ("services_seeds", 0), ("worker_seeds", 0), ("jobs", 1)):
        if getattr(arguments, name) < least:
            parser.error(f"--{name.replace('_', '-')} must be at least {least}")
    if arguments.generations < 1 or arguments.max_tasks < Settings().min_traces:
        parser.error(
            f"--generations must be at least 1 and --max-tasks at least {Settings().min_traces} "
            "(a trial's minimum traces per arm)"
        )
    if arguments.record is not None and arguments.record.is_dir():
        parser.error(f"--record {arguments.record} is a directory; name a file (JSON lines)")
    if arguments.quick:
        arguments.seeds, arguments.services_seeds = 10, 1
    settings = replace(Settings(), generations=arguments.generations, max_tasks=arguments.max_tasks)
    services_settings = replace(settings, source=arguments.source)
    if arguments.source == "generations" and arguments.worker_seeds:
        parser.error("--source generations runs in the services engine only, not the worker's")
    first = arguments.first_seed
    policies = tuple(arguments.policies.split(","))
    if unknown := set(policies) - set(POLICIES):
        parser.error(f"unknown policies {sorted(unknown)}; choose from {', '.join(POLICIES)}")
    arguments.services_seeds = max(arguments.services_seeds, arguments.worker_seeds)
    print(
        f"evolution bench: {arguments.seeds} model seeds, {arguments.services_seeds} services "
        f"seeds, {arguments.worker_seeds} worker seeds from seed {first}; {len(policies)} "
        f"policies there; canary share "
        f"{settings.share_basis_points} bp, at most {settings.max_tasks} tasks a trial, "
        f"{settings.generations} generations; candidates from the {arguments.source} source"
        + (
            " in the services engine (the model engine's stay scripted)"
            if arguments.source == "generations"
            else ""
        )
    )

    started = time.perf_counter()
    services_seeds = range(first, first + arguments.services_seeds)
    try:
        services = (
            run_all(
                arguments.jobs,
                "services",
                services_seeds,
                services_settings,
                policies,
                record=arguments.record,
                progress=sys.stderr,
            )
            if arguments.services_seeds
            else {policy: [] for policy in POLICIES}
        )
    except RecordError as error:
        parser.error(str(error))
    services_seconds = time.perf_counter() - started
    print(f"\n== services engine ({services_seconds:.0f} s) ==")
    for policy in POLICIES:
        for run in services[policy]:
            print(
                f"  seed {run.seed:4d} {SHORT[policy]:>9}: {len(run.trials)} trials, "
                f"{run.tasks} tasks, {run.ledger_events} events, chain {run.ledger_hash} "
                f"({run.seconds:.1f} s)"
            )
    if arguments.worker_seeds:
        worker_seeds = range(first, first + arguments.worker_seeds)
        started = time.perf_counter()
        worker = run_all(1, "worker", worker_seeds, settings, policies, progress=sys.stderr)
        seconds = time.perf_counter() - started
        print(f"\n== worker engine, a real Celery worker ({seconds:.0f} s) ==")
        print_agreement(services, worker)
    started = time.perf_counter()
    model = run_all(arguments.jobs, "model", range(first, first + arguments.seeds), settings)
    model_seconds = time.perf_counter() - started

    same = {
        policy: [run for run in model[policy] if run.seed in services_seeds] for policy in POLICIES
    }
    if arguments.source == "generations":
        print_generations(services)
        print_figures(
            f"Services engine, --source generations ({len(services_seeds)} seeds)",
            table({p: runs for p, runs in services.items() if runs}),
        )
    elif arguments.services_seeds:
        print_figures(
            f"Services engine beside the model engine on the same {len(services_seeds)} seeds",
            table(services),
            compare=table(same),
        )
        ran = table({policy: runs for policy, runs in services.items() if runs})
        if RULE in ran:
            print("\nAims (this project's rule, services engine):")
            for aim in aims(ran, RULE):
                print(f"  [{'met' if aim.met else 'MISSED'}] {aim.text}: {aim.value}")
    if not arguments.seeds:
        return
    by_policy = table(model)
    print_figures(f"Model engine, {arguments.seeds} seeds ({model_seconds:.0f} s)", by_policy)
    print("\nAims (this project's rule, model engine):")
    for aim in aims(by_policy, RULE):
        print(f"  [{'met' if aim.met else 'MISSED'}] {aim.text}: {aim.value}")
    if arguments.svg is not None:
        arguments.svg.write_text(champion_svg(by_policy))
        print(f"\nwrote {arguments.svg}")


if __name__ == "__main__":
    main()
