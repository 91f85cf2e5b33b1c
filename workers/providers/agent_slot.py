"""One agent at a time per task workspace: a record next to the workspace, taken under a lock.

A task redelivered while an earlier delivery's agent still runs (the earlier worker was
killed and something survived it, or the broker gave the message out again while the first
worker was busy) must not have two agents writing one workspace. Before starting, a run takes
the workspace's slot: under an exclusive ``flock`` it reads the record of the earlier run,
kills that run (its process group and, when sandboxed, every process of its PID namespace),
waits until it is gone, then records itself. The earlier run, when its worker still lives,
finds at the end that the record is no longer its own: it was superseded, and its work is
discarded (the newer delivery produces the task's one result).

The record sits *beside* the workspace (``.<name>.agent``), never in it: the sandbox binds
only the workspace, so an agent cannot rewrite the record to make a later delivery kill an
arbitrary process. A pid is only trusted together with its start time, so a recycled pid is
never killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

EVICT_SECONDS = 5.0
POLL_SECONDS = 0.005


@dataclass(frozen=True)
class RunRecord:
    token: str
    pid: int
    start_time: int | None
    pid_namespace: int | None


class EarlierAgentAlive(Exception):
    """An earlier run for the workspace could not be killed: nothing new may start."""


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of a live (non-zombie) process, else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of stat; fields[0] is field 3


def pid_namespace_members(namespace: int) -> list[int]:
    """Live processes in the PID namespace with this inode (as seen from the worker's /proc)."""
    link = f"pid:[{namespace}]"
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry.name}/ns/pid") != link:
                continue
        except OSError:
            continue
        if process_start_time(int(entry.name)) is not None:
            members.append(int(entry.name))
    return members


def kill_pid_namespace(namespace: int, *, timeout_seconds: float = EVICT_SECONDS) -> bool:
    """SIGKILL every process of the namespace until none is left; False if some outlived it."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        members = pid_namespace_members(namespace)
        if not members:
            return True
        if time.monotonic() > deadline:
            return False
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(POLL_SECONDS)


def kill_run(pid: int, start_time: int | None, pid_namespace: int | None) -> bool:
    """Kill a run's process group and PID namespace; True when nothing of it is left."""
    if start_time is not None and process_start_time(pid) == start_time:
        # The run's leader is a session leader (start_new_session): its group id is its pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    emptied = kill_pid_namespace(pid_namespace) if pid_namespace is not None else True
    deadline = time.monotonic() + EVICT_SECONDS
    while start_time is not None and process_start_time(pid) == start_time:
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return emptied


class AgentSlot:
    """``with AgentSlot(workspace) as slot: start; slot.started(pid, ns); run`` then check
    ``slot.superseded``.
    """

    def __init__(self, workspace: Path) -> None:
        self.path = workspace.parent / f".{workspace.name}.agent"
        self.token = uuid.uuid4().hex
        self.superseded = False
        self._fd: int | None = None
        self._locked = False
        self._recorded = False

    def __enter__(self) -> AgentSlot:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._lock()
        try:
            earlier = self._read()
            if earlier and not kill_run(earlier.pid, earlier.start_time, earlier.pid_namespace):
                raise EarlierAgentAlive(
                    f"an earlier agent for this task (pid {earlier.pid}) is still running "
                    "and could not be killed; nothing new was started"
                )
        except BaseException:
            self._close()
            raise
        return self

    def started(self, pid: int, *, pid_namespace: int | None) -> None:
        """Record the run just started, and let the next delivery see it."""
        self._write(RunRecord(self.token, pid, process_start_time(pid), pid_namespace))
        self._recorded = True
        self._unlock()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._lock()
            if self._recorded:
                current = self._read()
                self.superseded = current is None or current.token != self.token
                if not self.superseded:
                    self._write(None)
        finally:
            self._close()

    def _lock(self) -> None:
        assert self._fd is not None
        if not self._locked:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._locked = True

    def _unlock(self) -> None:
        assert self._fd is not None
        if self._locked:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._locked = False

    def _close(self) -> None:
        if self._fd is not None:
            self._unlock()
            os.close(self._fd)
            self._fd = None

    def _read(self) -> RunRecord | None:
        assert self._fd is not None
        os.lseek(self._fd, 0, os.SEEK_SET)
        raw = os.read(self._fd, 4096)
        if not raw.strip():
            return None
        try:
            fields = json.loads(raw)
            return RunRecord(
                token=str(fields["token"]),
                pid=int(fields["pid"]),
                start_time=_optional_int(fields.get("start_time")),
                pid_namespace=_optional_int(fields.get("pid_namespace")),
            )
        except (ValueError, TypeError, KeyError):
            # Only the worker writes here; a torn or foreign record names nothing to kill.
            return None

    def _write(self, record: RunRecord | None) -> None:
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        if record is not None:
            os.write(self._fd, json.dumps(asdict(record)).encode())


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))
