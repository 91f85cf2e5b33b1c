"""Real processes for integration tests: Celery workers bound to the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition`` every 0.1 s; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_database_url() -> str:
    """A DATABASE_URL naming the database the running tests use."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    if connection.vendor == "postgresql":
        user = quote(settings.get("USER") or "")
        password = settings.get("PASSWORD") or ""
        credentials = f"{user}:{quote(password)}@" if password else f"{user}@"
        host = settings.get("HOST") or "127.0.0.1"
        port = settings.get("PORT") or 5432
        return f"postgres://{credentials}{host}:{port}/{settings['NAME']}"
    raise NotImplementedError(f"no worker support for {connection.vendor}")


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = test_database_url()
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class WorkerProcess:
    """A ``celery worker`` subprocess whose output is collected for assertions."""

    def __init__(self, process: subprocess.Popen[str], hostname: str) -> None:
        self.process = process
        self.hostname = hostname
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if " ready." in line:
                self.ready.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.hostname} exited early:\n{self.output}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"worker {self.hostname} not ready in {timeout}s:\n{self.output}"
                )

    def kill(self) -> None:
        """SIGKILL the worker and its pool children (no cleanup, as in a crash)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextmanager
def celery_worker(
    name: str,
    *,
    queues: str = "celery",
    concurrency: int = 1,
    pool: str | None = None,
    env: dict[str, str] | None = None,
    wait: bool = True,
    module: str = "celery",
) -> Iterator[WorkerProcess]:
    """Run a real worker process for the duration of the block (``module``: what
    ``python -m`` runs, Celery's command line or a wrapper of it)."""
    hostname = f"{name}-{os.getpid()}@localhost"
    command = [
        sys.executable,
        "-m",
        module,
        *(["worker"] if module != "celery" else []),
        "-A",
        "vsmsite",
        "worker",
        "--hostname",
        hostname,
        "--queues",
        queues,
        "--concurrency",
        str(concurrency),
        *(["--pool", pool] if pool else []),  # default: the settings' pool, as in production
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
    ]
    process = subprocess.Popen(
        command,
        cwd=BASE_DIR,
        env=process_env(**(env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    worker = WorkerProcess(process, hostname)
    try:
        if wait:
            worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def purge_queues(*names: str) -> None:
    """Drop messages left in the broker by earlier tests (their rows are gone)."""
    from vsmsite.celery import app

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for name in names:
            channel.queue_declare(queue=name, durable=True, auto_delete=False)
            channel.queue_purge(name)


def drain_in_process(limit: int = 200) -> int:
    """Deliver every pending envelope in this process, oldest first, as workers would.

    For fast tests of the runtime without worker processes; returns how many
    deliveries were made. Celery messages are never sent in non-transactional
    tests (their on-commit callbacks do not run), so nothing else consumes them.
    """
    from workers.models import Envelope
    from workers.services.controller import controller_receive
    from workers.services.leaf import leaf_execute
    from workers.services.transport import CONTROLLER_QUEUE

    delivered = 0
    while delivered < limit:
        pending = Envelope.objects.filter(handled_at__isnull=True).order_by("created_at").first()
        if pending is None:
            return delivered
        if pending.queue == CONTROLLER_QUEUE:
            controller_receive(envelope_id=pending.id, worker="in-process")
        else:
            leaf_execute(envelope_id=pending.id, worker="in-process")
        delivered += 1
    raise AssertionError(f"still delivering after {limit} envelopes: a loop?")


class ServerProcess:
    """A ``daphne`` subprocess serving ``vsmsite.asgi`` on a free port; output collected."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines[-300:])

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._reader.join(timeout=5)


def _http_status(url: str) -> int | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


@contextmanager
def daphne_server(*, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """Run daphne (HTTP and websockets) bound to the test database for the block.

    The test process's exemption from Django's async-safety check is not passed on:
    the server must run as it does in production.
    """
    port = free_port()
    environment = process_env(**(env or {}))
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "daphne"),
            *("-b", "127.0.0.1", "-p", str(port)),
            "vsmsite.asgi:application",
        ],
        cwd=BASE_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    server = ServerProcess(process, port)
    try:
        deadline = time.monotonic() + 60
        while _http_status(f"{server.url}/admin/login/") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not start:\n{server.output}")
            time.sleep(0.2)
        yield server
    finally:
        server.stop()
