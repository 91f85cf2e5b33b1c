"""Helpers for tests of programs run inside the agent sandbox."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

# The sandbox shows the system's programs, not the project's venv (under /root here): scripts
# standing in for agents run on the system's Python.
SANDBOX_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"


def _live_with_argument(marker: str, *, sleep_only: bool = False) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if sleep_only and Path(argv[0].decode()).name != "sleep":
            continue
        if marker.encode() in argv and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def processes_running(
    marker: str, *, sleep_only: bool = False, wait_seconds: float = 3.0
) -> list[int]:
    """Pids of live processes with ``marker`` as one of their arguments, after giving them up
    to ``wait_seconds`` to go (a killed process takes a moment to disappear).

    A process inside a sandbox has another pid there; from outside it is found by a marker
    argument (``sleep 30.123456``), unique per test; ``sleep_only`` counts only ``sleep``
    processes (not the agent that passed the marker on).
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        found = _live_with_argument(marker, sleep_only=sleep_only)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def wait_for_process(
    marker: str, *, sleep_only: bool = False, timeout_seconds: float = 10.0
) -> list[int]:
    """Pids with ``marker`` once at least one runs; raises AssertionError on the deadline."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        found = _live_with_argument(marker, sleep_only=sleep_only)
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no process with argument {marker!r} started")


def kill_all(marker: str) -> None:
    """Clean up after a test that proves something survives (the unsandboxed control)."""
    for pid in _live_with_argument(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
