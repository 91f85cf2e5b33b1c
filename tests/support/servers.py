"""Redis and PostgreSQL servers of a test's own, on free loopback ports, to restart at will.

Fault tests restart these, never the machine's shared 6379 / 5432.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.processes import free_port, wait_until


def _postgres_bin() -> Path:
    """Debian's newest installed PostgreSQL (``/usr/lib/postgresql/<major>/bin``)."""
    installed = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not installed:
        return Path("/usr/lib/postgresql/15/bin")
    return max(
        installed, key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0
    )


PG_BIN = _postgres_bin()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class RedisServer:
    """``redis-server`` without persistence: a restart forgets every message it held."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _answers(self.port), 10, f"redis on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # no shutdown save: what it held is gone
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        import pytest

        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def celery_broker(url: str, **transport_options: Any) -> Iterator[None]:
    """Make this process's Celery app publish to ``url`` for the block, then to its own broker
    again.

    Two traps, both met on the RabbitMQ pass (docs/operations.md, "RabbitMQ"):

    * Celery reads the broker from the ``CELERY_BROKER_URL`` environment variable before its
      configuration (``celery.app.utils.Settings.broker_url``), so where that variable is set
      a change to ``app.conf.broker_url`` alone changes nothing: the variable is replaced for
      the block too.
    * Celery's connection and producer pools are kombu's process-wide ones, keyed by the
      connection's URL and options. Closing one leaves it closed in kombu's registry, and
      the next ``send_task`` to that broker then fails with "Acquire on closed pool" (every
      later test's envelopes waited for a sweeper that never ran). ``kombu.pools.reset``
      closes them and forgets them, so fresh ones are made on the next publish.
    """
    from kombu import pools

    from vsmsite.celery import app

    def reset() -> None:
        pools.reset()
        app._after_fork()  # drops the app's references to the pools just closed

    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    saved_environment = os.environ.get("CELERY_BROKER_URL")
    reset()
    app.conf.broker_url = url
    app.conf.broker_transport_options = transport_options
    if saved_environment is not None:
        os.environ["CELERY_BROKER_URL"] = url
    try:
        yield
    finally:
        reset()
        app.conf.broker_url, app.conf.broker_transport_options = saved
        if saved_environment is not None:
            os.environ["CELERY_BROKER_URL"] = saved_environment


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory, run by the ``postgres`` user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="vsm-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "log"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/vsm"

    def _as_postgres(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"
        )
        self.start()
        self._as_postgres(
            str(PG_BIN / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "vsm",
        )

    def start(self) -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    import pytest

    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries are not in {PG_BIN}")
    server = PostgresServer()
    try:
        server.create()
        yield server
    finally:
        server.destroy()
