"""Run a child process for a task: its own process group, a given environment, a deadline.

The sandbox (``workers.providers.sandbox``) starts bubblewrap through here. The child starts
a new session so a timeout (or a worker being told to stop) can kill its whole process group;
what escapes the group (a ``setsid`` grandchild) the sandbox's PID namespace ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DRAIN_SECONDS = 5.0

ProcessHook = Callable[["subprocess.Popen[str]"], None]


@dataclass(kw_only=True)
class ProcessRun:
    returncode: int | None  # None when the deadline killed it
    stdout: str
    stderr: str
    timed_out: bool
    duration_ms: int


def run_in_process_group(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: str | None,
    timeout_seconds: float,
    merge_stderr: bool = False,
    pass_fds: Sequence[int] = (),
    on_start: ProcessHook | None = None,
    on_end: ProcessHook | None = None,
) -> ProcessRun:
    """Run ``argv`` to completion or to the deadline, whichever comes first.

    ``on_start`` runs right after the child started, ``on_end`` after it was killed and
    reaped (also when anything in between raised). Raises OSError when the program cannot be
    started (not found, not executable). Whatever happens in here, including an exception in
    the caller's thread, the process group does not outlive the call.
    """
    started = time.monotonic()
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
        pass_fds=tuple(pass_fds),
    )
    timed_out = False
    try:
        if on_start is not None:
            on_start(process)
        try:
            stdout, stderr = process.communicate(input=stdin, timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
            stdout, stderr = _drain(process)
    finally:
        # Also after a normal exit: background jobs the agent left behind (a dev server, a
        # watcher) belong to the task and end with it.
        _kill_group(process)
        if process.poll() is None:
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        if on_end is not None:
            on_end(process)
    return ProcessRun(
        returncode=None if timed_out else process.returncode,
        stdout=stdout or "",
        stderr=stderr or "",
        timed_out=timed_out,
        duration_ms=round((time.monotonic() - started) * 1000),
    )


def _kill_group(process: subprocess.Popen[str]) -> None:
    # The group id is the child's pid (start_new_session); it may already be gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _drain(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Output collected so far; a process that escaped the group may hold the pipes open."""
    try:
        return process.communicate(timeout=DRAIN_SECONDS)
    except subprocess.TimeoutExpired:
        return "", ""


def tail(text: str, max_chars: int) -> str:
    return text[-max_chars:] if len(text) > max_chars else text
