"""Run the whole system in one terminal: web (daphne), a Celery worker and Celery beat."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

import environ
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

COLOURS = {"web": "\033[36m", "worker": "\033[33m", "beat": "\033[35m"}
RESET = "\033[0m"


class Command(BaseCommand):
    help = (
        "Start web (daphne, HTTP and websockets), a Celery worker for the controllers and "
        "leaves queues, and Celery beat; prefix each one's output; Ctrl-C stops them all. "
        "If any of them exits, the others are stopped too."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--concurrency",
            type=int,
            default=2,
            help="Tasks a worker runs at once (threads on the embedded broker, else processes).",
        )
        parser.add_argument("--no-beat", action="store_true", help="Do not start Celery beat.")

    def handle(self, *args: Any, **options: Any) -> None:
        python = sys.executable
        debug = debug_environment(host=options["host"], environment=os.environ)
        if debug["DJANGO_DEBUG"] == "false":
            self.stdout.write(_public_address_notes(options["host"], os.environ))
        processes = {
            "web": [
                python,
                "-m",
                "daphne",
                "-b",
                options["host"],
                "-p",
                str(options["port"]),
                "vsmsite.asgi:application",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "vsmsite",
                "worker",
                "--loglevel",
                "INFO",
                "--queues",
                "controllers,leaves,celery",
                "--concurrency",
                str(options["concurrency"]),
                "--hostname",
                "devstack@%h",
            ],
        }
        if not options["no_beat"]:
            schedule = str(settings.VAR_DIR / "celerybeat-schedule")
            processes["beat"] = [
                python,
                "-m",
                "celery",
                "-A",
                "vsmsite",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                schedule,
            ]
        colour = self.stdout.isatty()
        started: dict[str, subprocess.Popen[str]] = {}
        stopping = threading.Event()

        def stop(*_: Any) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for name, command in processes.items():
                started[name] = subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    env={**os.environ, **debug, "PYTHONUNBUFFERED": "1"},
                    start_new_session=True,
                )
                threading.Thread(
                    target=_relay,
                    args=(name, started[name].stdout, self.stdout, colour),
                    daemon=True,
                ).start()
            self.stdout.write(
                f"devstack: {', '.join(started)} running; "
                f"web on http://{options['host']}:{options['port']}/ ; Ctrl-C stops all"
            )
            exited = None
            while not stopping.is_set() and exited is None:
                time.sleep(0.2)
                exited = next((n for n, p in started.items() if p.poll() is not None), None)
        finally:
            _stop_all(started)
        if exited is not None:
            raise CommandError(
                f"{exited} exited with status {started[exited].returncode}; stopped the rest"
            )
        self.stdout.write("devstack: stopped")


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` serves only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def debug_environment(*, host: str, environment: Mapping[str, str]) -> dict[str, str]:
    """``DJANGO_DEBUG`` for the processes devstack starts, serving on ``host``.

    On a loopback address debug is on unless the environment turned it off: that is
    `make run`, one person on their own machine. On any other address it is off, and
    asking for it is refused: a debug page shows settings and tracebacks to whoever
    can reach the server, and rendering one can cost seconds of CPU.
    """
    asked = environment.get("DJANGO_DEBUG")
    if is_loopback(host):
        return {"DJANGO_DEBUG": "true" if asked is None else asked}
    if asked is not None and environ.Env.parse_value(asked, bool):
        raise CommandError(
            f"refusing DJANGO_DEBUG={asked} on {host}, which is not a loopback address: "
            "debug pages would show settings and tracebacks to anyone who can reach it. "
            "Unset DJANGO_DEBUG, or serve on 127.0.0.1."
        )
    return {"DJANGO_DEBUG": "false"}


def _public_address_notes(host: str, environment: Mapping[str, str]) -> str:
    notes = [f"devstack: serving on {host} with DEBUG off"]
    if "DJANGO_ALLOWED_HOSTS" not in environment:
        notes.append(
            "  requests must name a host in DJANGO_ALLOWED_HOSTS "
            f"(now {','.join(settings.ALLOWED_HOSTS)}); others get 400"
        )
    if "DJANGO_SECRET_KEY" not in environment:
        notes.append("  DJANGO_SECRET_KEY is unset: the development key signs sessions")
    return "\n".join(notes)


def _relay(name: str, stream: TextIO | None, out: Any, colour: bool) -> None:
    if stream is None:
        return
    prefix = f"{COLOURS[name]}[{name}]{RESET} " if colour else f"[{name}] "
    for line in stream:
        out.write(prefix + line.rstrip("\n"))


def _stop_all(started: dict[str, subprocess.Popen[str]]) -> None:
    # SIGTERM to each main process only: Celery then shuts its pool down warmly.
    for process in started.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in started.values():
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
