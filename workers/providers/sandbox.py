"""Agents and verifier commands run inside bubblewrap (docs/operations.md, "The agent sandbox").

What a sandboxed child sees and may do:

* the system's programs and libraries, read-only: ``/usr``, ``/etc`` (without the shadow
  files) and the ``/bin``, ``/sbin``, ``/lib…`` links, plus the paths the admin lists in
  ``VSM_SANDBOX_READ_ONLY_PATHS`` and the program it runs;
* its workspace, at the same path as outside, the only place it can write; ``HOME`` is the
  workspace;
* a private ``/tmp`` and ``/dev``, and a ``/proc`` of its own PID namespace: no other process
  of the machine, so no ``/proc/$PPID/environ`` of the worker;
* never the worker's hidden paths (``var/``, the SQLite database, the broker file), not even
  under a read-only path;
* no network unless the node's ``sandbox.network`` is ``on``;
* only PATH, LANG, HOME and the variables the node names; bubblewrap itself is started with
  an empty environment, so the sandbox's init process has none to leak either;
* no capabilities, no new privileges, a new session (no terminal injection).

A sure kill: bubblewrap's init is PID 1 of the namespace, and when it dies the kernel kills
every process in it, ``setsid`` or not. ``--die-with-parent`` ends the sandbox when the worker
dies (even by SIGKILL); a timeout kills bubblewrap's group, then every process still in the
namespace until none is left. Before starting, a run takes its workspace's slot
(``agent_slot``), which kills an earlier delivery's run that is still alive.

Where bubblewrap is missing or cannot work, nothing runs (``SandboxUnavailable`` says why)
unless the admin allowed unsandboxed execution (``VSM_ALLOW_UNSANDBOXED_AGENTS``): then the
child runs as a plain process group, with the same environment and slot but no isolation.
No Django here: the worker passes what it knows as a ``SandboxHost``.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workers.providers.agent_slot import AgentSlot, EarlierAgentAlive, kill_pid_namespace
from workers.providers.bwrap import (
    DEFAULT_PATH,
    NAMESPACE_HINT,
    SETUP_SECONDS,
    SandboxHost,
    bwrap_arguments,
    sandbox_problem,
)
from workers.providers.process import ProcessRun, run_in_process_group

logger = logging.getLogger(__name__)

__all__ = [
    "SandboxConfigError",
    "SandboxError",
    "SandboxHost",
    "SandboxOptions",
    "SandboxUnavailable",
    "Superseded",
    "agent_environment",
    "bwrap_arguments",
    "run_sandboxed",
    "sandbox_problem",
]

BASE_ENVIRONMENT = ("PATH", "LANG")
NETWORK_KEY = "sandbox.network"
ALLOW_SETTING = "VSM_ALLOW_UNSANDBOXED_AGENTS"


class SandboxError(Exception):
    """The run could not be sandboxed as configured; nothing was started."""


class SandboxUnavailable(SandboxError):
    """bubblewrap is missing or cannot work here, and unsandboxed runs are not allowed."""


class SandboxConfigError(SandboxError):
    """A node's ``sandbox.*`` metadata does not parse."""


class Superseded(Exception):
    """A newer delivery of the task killed this run and took its workspace: discard the work."""


@dataclass(frozen=True, kw_only=True)
class SandboxOptions:
    """What a node's metadata decides: today, whether its agent and verifiers have network."""

    network: bool = False

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> SandboxOptions:
        value = metadata.get(NETWORK_KEY, "").strip().lower()
        if value in ("", "off", "false", "no"):
            return cls(network=False)
        if value in ("on", "true", "yes"):
            return cls(network=True)
        raise SandboxConfigError(
            f"node metadata {NETWORK_KEY}={metadata[NETWORK_KEY]!r} is invalid: expected off "
            "(the default: no network) or on"
        )


@dataclass(frozen=True, kw_only=True)
class _Sandbox:
    host: SandboxHost
    workspace: Path
    env: Mapping[str, str]
    network: bool


@dataclass
class _Namespace:
    """What bubblewrap reported about the sandbox it set up (``--info-fd``)."""

    reported: bool = False
    write_end_closed: bool = False
    pid_namespace: int | None = None
    info: dict[str, int] = field(default_factory=dict)


def agent_environment(
    environ: Mapping[str, str], names: Iterable[str] = (), *, workspace: Path
) -> dict[str, str]:
    """PATH, LANG and the named variables the worker has, and HOME = the workspace.

    Everything else (API keys, database URLs, broker passwords) stays with the worker unless
    a node names it.
    """
    env = {name: environ[name] for name in (*BASE_ENVIRONMENT, *names) if name in environ}
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOME"] = str(workspace)
    return env


def resolve_program(name: str, *, workspace: Path, path: str) -> Path:
    """The file ``name`` runs: as given when it has a slash (relative to the workspace), else
    found on ``path``. Raises FileNotFoundError or PermissionError, as starting it would."""
    if "/" in name:
        program = workspace / name
        if not program.is_file():
            raise FileNotFoundError(2, "No such file or directory", name)
        if not os.access(program, os.X_OK):
            raise PermissionError(13, "Permission denied", name)
        return program
    found = shutil.which(name, path=path)
    if found is None:
        raise FileNotFoundError(2, "No such file or directory (not on PATH)", name)
    return Path(found)


def run_sandboxed(
    argv: Sequence[str],
    *,
    host: SandboxHost,
    workspace: Path,
    env: Mapping[str, str],
    network: bool,
    stdin: str | None,
    timeout_seconds: float,
    merge_stderr: bool = False,
) -> ProcessRun:
    """Run ``argv`` in the workspace inside the sandbox, to completion or to the deadline.

    Raises FileNotFoundError / PermissionError when the program cannot be found or run,
    SandboxUnavailable when the sandbox cannot be used and unsandboxed runs are not allowed,
    SandboxError when an earlier run for the workspace could not be killed, and Superseded
    when a newer delivery killed this run. When it returns, nothing it started is alive.
    """
    workspace = workspace.resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    program = resolve_program(argv[0], workspace=workspace, path=env.get("PATH", DEFAULT_PATH))
    problem = sandbox_problem(host, network=network)
    if problem is not None and not host.allow_unsandboxed:
        raise SandboxUnavailable(
            f"{problem}. Agents and verifier commands run only inside bubblewrap: install "
            f"Debian's bubblewrap (apt-get install bubblewrap), or, knowing that the child "
            f"can then read the worker's files, secrets and processes, set {ALLOW_SETTING}=true"
        )
    try:
        with AgentSlot(workspace) as slot:
            if problem is not None:
                logger.warning(
                    "running %s UNSANDBOXED (%s=true): %s", argv[0], ALLOW_SETTING, problem
                )
                run = _run_plain(argv, slot, workspace, env, stdin, timeout_seconds, merge_stderr)
            else:
                run = _run_in_bwrap(
                    argv,
                    slot,
                    _Sandbox(host=host, workspace=workspace, env=env, network=network),
                    program,
                    stdin,
                    timeout_seconds,
                    merge_stderr,
                )
    except EarlierAgentAlive as error:
        raise SandboxError(str(error)) from error
    if slot.superseded:
        raise Superseded(f"a newer delivery of the task took over {workspace}")
    return run


def _run_plain(
    argv: Sequence[str],
    slot: AgentSlot,
    workspace: Path,
    env: Mapping[str, str],
    stdin: str | None,
    timeout_seconds: float,
    merge_stderr: bool,
) -> ProcessRun:
    return run_in_process_group(
        argv,
        cwd=workspace,
        env=env,
        stdin=stdin,
        timeout_seconds=timeout_seconds,
        merge_stderr=merge_stderr,
        on_start=lambda process: slot.started(process.pid, pid_namespace=None),
    )


def _run_in_bwrap(
    argv: Sequence[str],
    slot: AgentSlot,
    sandbox: _Sandbox,
    program: Path,
    stdin: str | None,
    timeout_seconds: float,
    merge_stderr: bool,
) -> ProcessRun:
    bwrap = shutil.which(sandbox.host.bwrap) or sandbox.host.bwrap
    info_read, info_write = os.pipe()
    namespace = _Namespace()

    def started(process: subprocess.Popen[str]) -> None:
        os.close(info_write)
        namespace.write_end_closed = True
        namespace.info = _read_info(info_read)
        namespace.reported = bool(namespace.info)
        namespace.pid_namespace = namespace.info.get("pid-namespace")
        slot.started(process.pid, pid_namespace=namespace.pid_namespace)

    def ended(process: subprocess.Popen[str]) -> None:
        # bubblewrap's group is dead; make sure nothing it contained outlives it either.
        if namespace.pid_namespace is not None and not kill_pid_namespace(namespace.pid_namespace):
            logger.error("processes of sandbox %s outlived the kill", namespace.info)

    arguments = bwrap_arguments(
        host=sandbox.host,
        workspace=sandbox.workspace,
        env=sandbox.env,
        network=sandbox.network,
        program=program,
        info_fd=info_write,
    )
    try:
        run = run_in_process_group(
            [bwrap, *arguments, "--", *argv],
            cwd=sandbox.workspace,
            env={},  # bubblewrap's own environment: what its init would show in /proc
            stdin=stdin,
            timeout_seconds=timeout_seconds,
            merge_stderr=merge_stderr,
            pass_fds=(info_write,),
            on_start=started,
            on_end=ended,
        )
    finally:
        os.close(info_read)
        if not namespace.write_end_closed:
            os.close(info_write)
    if not namespace.reported:
        said = (run.stdout if merge_stderr else run.stderr).strip()
        raise SandboxUnavailable(
            f"bubblewrap could not set up the sandbox: {said or 'no reason given'}; "
            f"{NAMESPACE_HINT}"
        )
    return run


def _read_info(fd: int) -> dict[str, int]:
    """bubblewrap's JSON report, written once the sandbox exists; empty when setup failed."""
    data = b""
    while True:
        ready, _, _ = select.select([fd], [], [], SETUP_SECONDS)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    try:
        info = json.loads(data) if data.strip() else {}
    except ValueError:
        return {}
    return {key: value for key, value in info.items() if isinstance(value, int)}
