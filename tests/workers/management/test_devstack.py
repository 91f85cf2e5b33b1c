"""`manage.py devstack` serves web, worker and beat together and stops them all on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from organization.services import genome_bootstrap
from tests.support.processes import BASE_DIR, free_port, process_env, purge_queues
from workers.models import Directive
from workers.services.directives import directive_submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def status_of(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def test_devstack_runs_a_directive_end_to_end_and_stops_cleanly_on_ctrl_c() -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    purge_queues("controllers", "leaves")
    port = free_port()
    stack = subprocess.Popen(
        [sys.executable, "manage.py", "devstack", "--port", str(port), "--concurrency", "1"],
        cwd=BASE_DIR,
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.rstrip() for line in stack.stdout or []), daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while status_of(f"http://127.0.0.1:{port}/api/directives/") != 401:
            assert time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.3)
        directive = directive_submit(
            title="Through devstack", metadata={"requires_code_write": "true"}
        ).directive
        while not Directive.objects.get(id=directive.id).is_finished:
            assert time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.2)
        assert Directive.objects.get(id=directive.id).status == Directive.Status.COMPLETED
        # On loopback (`make run`) web runs with DEBUG: a missing page is Django's debug 404.
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page/", timeout=5)
        assert "URLconf" in missing.value.read().decode()
    finally:
        stack.send_signal(signal.SIGINT)
        code = stack.wait(timeout=60)
        reader.join(timeout=5)

    output = "\n".join(lines)
    assert code == 0, output
    assert any(line.startswith("[web] ") for line in lines)
    assert any(line.startswith("[worker] ") and "ready" in line for line in lines), output
    assert any(line.startswith("[beat] ") for line in lines), output
    assert lines[-1] == "devstack: stopped"
    assert status_of(f"http://127.0.0.1:{port}/api/directives/") is None  # web is gone
