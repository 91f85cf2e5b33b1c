"""bubblewrap's command line for a sandboxed run, and whether bubblewrap works here.

``workers.providers.sandbox`` runs children with these arguments; what they allow and hide is
described there and in docs/operations.md ("The agent sandbox").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

SYSTEM_READ_ONLY = ("/usr", "/etc")
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
MASKED_SYSTEM_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
SETUP_SECONDS = 10.0
NAMESPACE_HINT = (
    "bubblewrap needs to create namespaces: as root it needs CAP_SYS_ADMIN, otherwise "
    "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
    "user.max_user_namespaces > 0, and no AppArmor restrict_unprivileged_userns); in a "
    "container, its seccomp or AppArmor profile may forbid them"
)


@dataclass(frozen=True, kw_only=True)
class SandboxHost:
    """What the worker's admin decided, the same for every node (vsmsite/settings.py)."""

    allow_unsandboxed: bool = False
    read_only_paths: tuple[Path, ...] = ()
    hidden_paths: tuple[Path, ...] = ()
    bwrap: str = "bwrap"


def bwrap_arguments(
    *,
    host: SandboxHost,
    workspace: Path,
    env: Mapping[str, str],
    network: bool,
    program: Path | None = None,
    info_fd: int | None = None,
) -> list[str]:
    """bubblewrap's options, in mount order (a later mount covers an earlier one)."""
    arguments = [
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        *([] if network else ["--unshare-net"]),
        "--cap-drop",
        "ALL",
        "--clearenv",
    ]
    for name, value in sorted(env.items()):
        arguments += ["--setenv", name, value]
    if info_fd is not None:
        arguments += ["--info-fd", str(info_fd)]
    mounts, visible = _system_mounts(host.read_only_paths)
    arguments += mounts
    arguments += _hidden_mounts(host.hidden_paths, visible)
    if program is not None and not any(
        program.is_relative_to(root) for root in (*visible, workspace)
    ):
        arguments += ["--ro-bind", str(program.resolve()), str(program)]
    arguments += ["--bind", str(workspace), str(workspace), "--chdir", str(workspace)]
    return arguments


def _system_mounts(read_only_paths: Iterable[Path]) -> tuple[list[str], list[Path]]:
    """The read-only system, a private /tmp, /dev and /proc; and the paths now visible."""
    arguments: list[str] = []
    visible = [Path(path) for path in SYSTEM_READ_ONLY if Path(path).is_dir()]
    for path in visible:
        arguments += ["--ro-bind", str(path), str(path)]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            arguments += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            arguments += ["--ro-bind", link, link]
            visible.append(Path(link))
    for secret in MASKED_SYSTEM_FILES:
        if os.path.isfile(secret):
            arguments += ["--ro-bind", "/dev/null", secret]
    arguments += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in read_only_paths:
        arguments += ["--ro-bind-try", str(path), str(path)]
        visible.append(path)
    return arguments, visible


def _hidden_mounts(hidden_paths: Iterable[Path], visible: list[Path]) -> list[str]:
    """Cover every hidden path that a visible one would show: a directory with an empty
    tmpfs, a file with /dev/null. Outermost first, and nothing inside a covered directory
    (covering it would create it)."""
    arguments: list[str] = []
    covered: list[Path] = []
    for hidden in sorted(hidden_paths, key=lambda path: len(path.parts)):
        if not any(hidden.is_relative_to(root) for root in visible):
            continue
        if any(hidden.is_relative_to(directory) for directory in covered):
            continue
        if hidden.is_dir():
            arguments += ["--tmpfs", str(hidden)]
            covered.append(hidden)
        elif hidden.exists():
            arguments += ["--ro-bind", "/dev/null", str(hidden)]
    return arguments


_WORKING: set[tuple[str, bool]] = set()


def sandbox_problem(host: SandboxHost, *, network: bool) -> str | None:
    """Why bubblewrap cannot run here, or None; a successful probe is remembered."""
    bwrap = shutil.which(host.bwrap)
    if bwrap is None:
        return f"bubblewrap ({host.bwrap}) is not installed on this worker"
    if (bwrap, network) in _WORKING:
        return None
    with tempfile.TemporaryDirectory(prefix="vsm-sandbox-probe-") as probe:
        workspace = Path(probe)
        arguments = bwrap_arguments(
            host=host, workspace=workspace, env={"PATH": DEFAULT_PATH}, network=network
        )
        try:
            probed = subprocess.run(
                [bwrap, *arguments, "--", "true"],
                env={},
                capture_output=True,
                text=True,
                timeout=SETUP_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bubblewrap ({bwrap}) could not be started: {error}"
    if probed.returncode != 0:
        said = probed.stderr.strip() or f"exit status {probed.returncode}"
        return f"bubblewrap ({bwrap}) cannot create a sandbox here: {said}; {NAMESPACE_HINT}"
    _WORKING.add((bwrap, network))
    return None
