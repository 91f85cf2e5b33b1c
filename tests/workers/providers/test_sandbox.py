"""The agent sandbox: what an agent or verifier cannot do, and that it leaves nothing behind.

Where the worker's own process matters (its environment as /proc shows it, its death by
SIGKILL, a second delivery while it still runs), the worker is a real child process running
the command provider (``WORKER``); the rest runs in the test process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from organization.genome import ModelSpec, ViableNode
from tests.support.sandboxes import (
    SANDBOX_PYTHON,
    kill_all,
    processes_running,
    wait_for_process,
)
from vsmsite.broker_paths import doorbell_directory
from workers.acceptance import run_acceptance_checks
from workers.domain.messages import AcceptanceCriterion
from workers.providers import ModelRequest, ProviderError, provider_for
from workers.providers.process import run_in_process_group
from workers.providers.sandbox import SandboxHost, Superseded, run_sandboxed
from workers.services.leaf import sandbox_host

BASE_DIR = Path(settings.BASE_DIR)
NO_BWRAP = SandboxHost(bwrap="/nonexistent/bwrap")
UNSANDBOXED = SandboxHost(bwrap="/nonexistent/bwrap", allow_unsandboxed=True)

# A worker process: runs one agent through the command provider (the environ it hands the
# provider is its own, as in a real worker) and prints what came of it as JSON.
WORKER = """
import json, sys
from pathlib import Path
from organization.genome import ModelSpec, ViableNode
from workers.providers import ModelRequest, ProviderError, provider_for
from workers.providers.sandbox import SandboxHost, Superseded
import os

config = json.loads(sys.argv[1])
node = ViableNode(
    name="coder",
    model=ModelSpec(provider="command"),
    metadata={f"provider.command.{k}": v for k, v in config["options"].items()},
)
host = SandboxHost(**config.get("host", {}))
provider = provider_for(node, environ=os.environ, recordings_dir=Path("."), sandbox=host)
request = ModelRequest(model=ModelSpec(provider="command"), instructions="go", input="{}")
secret = config.get("secret", "")
report = {"worker_has_secret": secret in Path("/proc/self/environ").read_text(errors="replace")}
print(json.dumps({"event": "ready"}), flush=True)
try:
    response = provider.complete(request, workspace=Path(config["workspace"]))
    report["output"] = response.output_text
except Superseded as error:
    report["superseded"] = str(error)
except ProviderError as error:
    report["error"] = str(error)
print(json.dumps(report), flush=True)
"""


def agent_script(directory: Path, body: str, name: str = "agent.py") -> Path:
    path = directory / name
    path.write_text(f"#!{SANDBOX_PYTHON}\n{textwrap.dedent(body)}")
    path.chmod(0o755)
    return path


def start_worker(
    config: dict[str, Any], *, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(config)],
        cwd=BASE_DIR,
        env={**os.environ, **(extra_env or {})},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    assert json.loads(worker.stdout.readline()) == {"event": "ready"}
    return worker


def worker_report(worker: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, _ = worker.communicate(timeout=60)
    return json.loads(stdout.strip().splitlines()[-1])


def command_node(**options: str) -> ViableNode:
    return ViableNode(
        name="coder",
        model=ModelSpec(provider="command"),
        metadata={
            (key if key.startswith("sandbox.") else f"provider.command.{key}"): value
            for key, value in options.items()
        },
    )


def complete(node: ViableNode, workspace: Path, *, sandbox: SandboxHost | None = None) -> str:
    provider = provider_for(
        node, environ=os.environ, recordings_dir=workspace.parent, sandbox=sandbox
    )
    request = ModelRequest(model=ModelSpec(provider="command"), instructions="go", input="{}")
    return provider.complete(request, workspace=workspace).output_text


def marker() -> str:
    """A unique ``sleep`` argument that finds a sandboxed process from outside."""
    return f"30.{uuid.uuid4().int % 10**9}"


# --- The environment -------------------------------------------------------------------------

PROC_SNOOP = """
import json, os
seen = {"env": dict(os.environ), "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
dumps = []
for pid in ["self", str(os.getppid()), *map(str, seen["pids"])]:
    for name in ("environ", "cmdline"):
        try:
            dumps.append(open(f"/proc/{pid}/{name}", "rb").read().decode(errors="replace"))
        except OSError as error:
            dumps.append(f"/proc/{pid}/{name}: {error}")
seen["proc"] = dumps
print(json.dumps(seen))
"""


def snoop_as_worker(tmp_path: Path, secret: str, host: dict[str, Any]) -> dict[str, Any]:
    agent = agent_script(tmp_path, PROC_SNOOP)
    worker = start_worker(
        {
            "options": {"argv": json.dumps([str(agent)])},
            "workspace": str(tmp_path / "ws"),
            "secret": secret,
            "host": host,
        },
        extra_env={
            "DJANGO_SECRET_KEY": secret,
            "AWS_SECRET_ACCESS_KEY": f"aws-{secret}",
            "DATABASE_URL": f"postgres://vsm:{secret}@db/vsm",
        },
    )
    return {"worker_pid": worker.pid, **worker_report(worker)}


def test_an_agent_cannot_read_the_workers_secrets_in_its_environment_or_through_proc(tmp_path):
    secret = f"fake-secret-{uuid.uuid4().hex}"

    report = snoop_as_worker(tmp_path, secret, host={})

    assert report["worker_has_secret"]  # the worker's /proc/self/environ holds it...
    assert "error" not in report
    assert secret not in report["output"]  # ...and nothing the agent could read does
    seen = json.loads(report["output"])
    assert not {"DJANGO_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "DATABASE_URL"} & set(seen["env"])
    # Its own PID namespace: bubblewrap's init and the agent, never the worker.
    assert report["worker_pid"] not in seen["pids"]
    assert len(seen["pids"]) <= 3


def test_unsandboxed_the_same_agent_reads_the_secret_from_its_parent(tmp_path):
    """The control: what the sandbox prevents, and why unsandboxed runs are dangerous."""
    secret = f"fake-secret-{uuid.uuid4().hex}"

    report = snoop_as_worker(
        tmp_path, secret, host={"bwrap": "/nonexistent/bwrap", "allow_unsandboxed": True}
    )

    assert secret not in json.dumps(json.loads(report["output"])["env"])
    assert secret in report["output"]  # /proc/$PPID/environ


def test_only_the_allowed_variables_reach_a_verifier(tmp_path):
    environ = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "SECRET_TOKEN": "sk-do-not-leak"}

    (outcome,) = run_acceptance_checks(
        [AcceptanceCriterion(name="env", verifier="env | sort | cut -d= -f1")],
        workspace=tmp_path / "ws",
        environ=environ,
    )

    assert outcome.passed
    assert set(outcome.output_tail.split()) == {"HOME", "LANG", "PATH", "PWD", "SHLVL", "_"}


# --- The filesystem --------------------------------------------------------------------------

WRITE_EVERYWHERE = """
import json, sys
results = {}
for target in sys.argv[1:]:
    try:
        with open(target, "w") as handle:
            handle.write("escaped")
        results[target] = "written"
    except OSError as error:
        results[target] = error.strerror
print(json.dumps(results))
"""


def test_an_agent_can_write_only_in_its_workspace(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    name = f"escape-{uuid.uuid4().hex}"
    targets = {
        "workspace": workspace / "result.txt",
        "beside the workspace": tmp_path / name,
        "tmp": Path("/tmp") / name,
        "project": BASE_DIR / name,
        "usr": Path("/usr/local") / name,
        "etc": Path("/etc") / name,
        "root": Path("/") / name,
    }
    agent = agent_script(tmp_path, WRITE_EVERYWHERE)
    node = command_node(argv=json.dumps([str(agent), *map(str, targets.values())]))

    results = json.loads(complete(node, workspace))

    assert results[str(targets["workspace"])] == "written"
    assert (workspace / "result.txt").read_text() == "escaped"
    assert results[str(targets["usr"])] == "Read-only file system"
    assert results[str(targets["etc"])] == "Read-only file system"
    for where, target in targets.items():
        if where != "workspace":
            # Written, if at all, into the sandbox's private tmpfs: gone with it.
            assert not target.exists(), where


def test_a_verifier_cannot_write_outside_its_workspace_either(tmp_path):
    outside = BASE_DIR / f"escape-{uuid.uuid4().hex}"

    (outcome,) = run_acceptance_checks(
        [AcceptanceCriterion(name="escape", verifier=f"echo x > {outside}")],
        workspace=tmp_path / "ws",
    )

    assert not outcome.passed
    assert not outside.exists()


LIST_PATHS = """
import json, os, sys
seen = {}
for path in sys.argv[1:]:
    seen[path] = sorted(os.listdir(path)) if os.path.isdir(path) else os.path.exists(path)
print(json.dumps(seen))
"""


def test_an_agent_cannot_see_the_projects_runtime_files_even_when_the_project_is_visible(
    tmp_path,
):
    var_dir = Path(settings.VAR_DIR)
    broker = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("database", var_dir / "b")))
    workspace = Path(settings.VSM_WORKSPACE_ROOT) / f"task-{uuid.uuid4().hex}"
    (var_dir / "db.sqlite3").touch(exist_ok=True)  # as a running worker would have them
    agent = agent_script(tmp_path, LIST_PATHS)
    exposing = SandboxHost(
        hidden_paths=sandbox_host().hidden_paths,
        read_only_paths=(BASE_DIR,),  # an admin who shows agents the project's code
    )
    paths = [str(BASE_DIR), str(var_dir), str(var_dir / "db.sqlite3"), str(broker)]
    node = command_node(argv=json.dumps([str(agent), *paths]))

    seen = json.loads(complete(node, workspace, sandbox=exposing))
    default = json.loads(complete(node, workspace, sandbox=sandbox_host()))

    assert "workers" in seen[str(BASE_DIR)]  # the code is there, read-only
    # Of var/, only the path down to the task's own workspace.
    assert seen[str(var_dir)] == first_step(var_dir, workspace, otherwise=[])
    assert seen[str(var_dir / "db.sqlite3")] is False
    assert seen[str(broker)] is False
    # By default the project is not there at all.
    assert default[str(BASE_DIR)] == first_step(BASE_DIR, workspace, otherwise=False)
    assert default[str(var_dir / "db.sqlite3")] is False


def first_step(directory: Path, workspace: Path, *, otherwise: object) -> object:
    """What listing ``directory`` inside the sandbox shows: the step towards the workspace."""
    if workspace.is_relative_to(directory):
        return [workspace.relative_to(directory).parts[0]]
    return otherwise


# --- The network -----------------------------------------------------------------------------

CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
    print("connected")
except OSError as error:
    print(f"no network: {error}")
"""


@pytest.mark.parametrize(("setting", "expected"), [({}, "no network"), ({"on": 1}, "connected")])
def test_the_network_is_off_unless_the_node_turns_it_on(tmp_path, setting, expected):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    agent = agent_script(tmp_path, CONNECT)
    options = {"argv": json.dumps([str(agent), str(port)])}
    if setting:
        options["sandbox.network"] = "on"

    try:
        answer = complete(command_node(**options), tmp_path / "ws")
    finally:
        server.close()

    assert answer.startswith(expected)


def test_an_unreadable_network_setting_names_the_key(tmp_path):
    node = command_node(argv='["true"]', **{"sandbox.network": "maybe"})

    with pytest.raises(ProviderError) as caught:
        complete(node, tmp_path / "ws")

    assert caught.value.kind == "missing_config"
    assert "sandbox.network='maybe'" in str(caught.value)


# --- Processes -------------------------------------------------------------------------------

ESCAPING_AGENT = """
import pathlib, subprocess, sys, time
# start_new_session: a setsid grandchild, out of reach of a process-group kill
subprocess.Popen(["sleep", sys.argv[1]], start_new_session=True)
pathlib.Path("escaped.started").touch()
time.sleep(30)
"""


def test_a_timeout_leaves_no_process_behind_not_even_a_setsid_grandchild(tmp_path):
    grandchild = marker()
    agent = agent_script(tmp_path, ESCAPING_AGENT)
    node = command_node(argv=json.dumps([str(agent), grandchild]), timeout_seconds="1")

    with pytest.raises(ProviderError) as caught:
        complete(node, tmp_path / "ws")

    assert caught.value.kind == "timeout"
    assert (tmp_path / "ws" / "escaped.started").exists()
    assert processes_running(grandchild) == []  # the grandchild, and the agent itself


@pytest.mark.slow  # it waits out a grandchild on purpose (about 6 s)
def test_without_the_sandbox_a_setsid_grandchild_outlives_the_group_kill(tmp_path):
    """The control: the grandchild above really escapes a process-group kill."""
    grandchild = marker()
    # Its output goes nowhere, so that the grandchild holds no pipe the run would wait on.
    quiet = ESCAPING_AGENT.replace("True)", "True, stdout=subprocess.DEVNULL)")
    agent = agent_script(tmp_path, quiet)
    try:
        run = run_in_process_group(
            [str(agent), grandchild], cwd=tmp_path, env={}, stdin=None, timeout_seconds=1
        )

        assert run.timed_out
        assert processes_running(grandchild, sleep_only=True, wait_seconds=0.5) != []
    finally:
        kill_all(grandchild)


def test_a_sigkilled_worker_leaves_no_agent_behind(tmp_path):
    grandchild, agent_marker = marker(), marker()
    agent = agent_script(tmp_path, ESCAPING_AGENT)
    worker = start_worker(
        {
            "options": {"argv": json.dumps([str(agent), grandchild, agent_marker])},
            "workspace": str(tmp_path / "ws"),
        }
    )
    try:
        wait_for_process(grandchild, sleep_only=True)
        wait_for_process(agent_marker)

        worker.kill()
        worker.wait()

        assert processes_running(grandchild, sleep_only=True) == []
        assert processes_running(agent_marker) == []
    finally:
        kill_all(grandchild)
        kill_all(agent_marker)


def test_a_redelivery_kills_the_earlier_agent_before_its_own_starts(tmp_path):
    workspace = tmp_path / "ws"
    grandchild, agent_marker = marker(), marker()
    slow = agent_script(tmp_path, ESCAPING_AGENT, name="slow.py")
    first = start_worker(
        {
            "options": {"argv": json.dumps([str(slow), grandchild, agent_marker])},
            "workspace": str(workspace),
        }
    )
    try:
        wait_for_process(grandchild, sleep_only=True)
        probe = agent_script(
            tmp_path,
            f"""
            import subprocess
            found = subprocess.run(["pgrep", "-f", "^sleep {grandchild}$"], capture_output=True)
            print("earlier agent alive" if found.returncode == 0 else "alone")
            """,
            name="probe.py",
        )
        # The second delivery's check must run where it could see the first one's processes.
        second = run_sandboxed(
            [str(probe)],
            host=UNSANDBOXED,
            workspace=workspace,
            env={"PATH": os.environ["PATH"]},
            network=False,
            stdin=None,
            timeout_seconds=10,
        )

        assert second.stdout.strip() == "alone"
        assert processes_running(agent_marker) == []
        assert processes_running(grandchild) == []
        report = worker_report(first)
        assert "newer delivery" in report["superseded"]  # its work is discarded
    finally:
        first.kill()
        kill_all(grandchild)
        kill_all(agent_marker)


def test_a_run_that_was_not_superseded_reports_normally(tmp_path):
    agent = agent_script(tmp_path, "print('done')")

    answer = complete(command_node(argv=json.dumps([str(agent)])), tmp_path / "ws")

    assert answer.strip() == "done"
    assert (tmp_path / ".ws.agent").read_text() == ""  # the slot is free again


def test_superseded_is_not_a_provider_error():
    assert not issubclass(Superseded, ProviderError)


# --- Without bubblewrap ----------------------------------------------------------------------


def test_without_bubblewrap_a_command_node_is_refused_with_the_way_out(tmp_path):
    agent = agent_script(tmp_path, "print('ran')")

    with pytest.raises(ProviderError) as caught:
        complete(command_node(argv=json.dumps([str(agent)])), tmp_path / "ws", sandbox=NO_BWRAP)

    message = str(caught.value)
    assert caught.value.kind == "missing_config"
    assert "bubblewrap (/nonexistent/bwrap) is not installed" in message
    assert "apt-get install bubblewrap" in message
    assert "VSM_ALLOW_UNSANDBOXED_AGENTS=true" in message
    assert not (tmp_path / "ws").exists() or not list((tmp_path / "ws").iterdir())


def test_without_bubblewrap_a_verifier_fails_with_the_reason_and_never_runs(tmp_path):
    (outcome,) = run_acceptance_checks(
        [AcceptanceCriterion(name="ran", verifier="touch ran")],
        workspace=tmp_path,
        sandbox=NO_BWRAP,
    )

    assert not outcome.passed
    assert outcome.exit_code is None
    assert "refused to run the check: bubblewrap" in outcome.output_tail
    assert not (tmp_path / "ran").exists()


def test_an_admin_may_allow_unsandboxed_runs(tmp_path):
    agent = agent_script(tmp_path, "import os; print(os.environ['HOME'])")

    answer = complete(
        command_node(argv=json.dumps([str(agent)])), tmp_path / "ws", sandbox=UNSANDBOXED
    )
    (outcome,) = run_acceptance_checks(
        [AcceptanceCriterion(name="ran", verifier="touch ran")],
        workspace=tmp_path / "ws",
        sandbox=UNSANDBOXED,
    )

    assert answer.strip() == str((tmp_path / "ws").resolve())
    assert outcome.passed
    assert (tmp_path / "ws" / "ran").exists()


def test_a_bubblewrap_that_cannot_create_namespaces_says_why(tmp_path):
    broken = tmp_path / "bwrap"
    broken.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace, likely because the "
        "kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n"
    )
    broken.chmod(0o755)
    agent = agent_script(tmp_path, "print('ran')")

    with pytest.raises(ProviderError) as caught:
        complete(
            command_node(argv=json.dumps([str(agent)])),
            tmp_path / "ws",
            sandbox=SandboxHost(bwrap=str(broken)),
        )

    message = str(caught.value)
    assert "cannot create a sandbox here: bwrap: No permissions to create new namespace" in message
    assert "unprivileged user namespaces" in message


def test_the_settings_refuse_unsandboxed_runs_and_hide_the_runtime_files_by_default():
    host = sandbox_host()

    assert host.allow_unsandboxed is False
    assert Path(settings.VAR_DIR).resolve() in host.hidden_paths
    broker = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("database")
    if broker:
        assert Path(str(broker)).resolve() in host.hidden_paths
        assert Path(doorbell_directory(str(broker))).resolve() in host.hidden_paths


def test_the_doorbells_of_a_broker_with_a_long_path_are_hidden_in_the_temp_dir(tmp_path):
    """A broker path too long for a socket address keeps its doorbells under the temp dir,
    outside the runtime directory: the sandbox must hide them there too."""
    broker = tmp_path / ("b" * 120) / "broker.sqlite3"
    script = (
        "import django, json, os\n"
        "django.setup()\n"
        "from django.conf import settings\n"
        "print(json.dumps([str(p) for p in settings.VSM_SANDBOX_HIDDEN_PATHS]))\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    env.update(DJANGO_SETTINGS_MODULE="vsmsite.settings", VSM_BROKER_PATH=str(broker))
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    hidden = json.loads(done.stdout.strip().splitlines()[-1])
    elsewhere = doorbell_directory(str(broker))

    assert not elsewhere.startswith(str(tmp_path))  # the fallback, not beside the file
    assert elsewhere in hidden
