"""Processes that die at the seam: after their transaction committed, as they publish.

* ``python -m tests.support.seam submit TITLE``: submit a directive and die (SIGKILL) as
  its envelope is sent, as a web process killed between commit and publish would.
* ``python -m tests.support.seam worker <celery worker arguments>``: a Celery worker whose
  pool process dies at its first publish (the file named by ``VSM_TEST_DIE_ONCE`` marks that
  it did; later publishes go out), as a worker killed at its own publish would.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import django


def _die(**_: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def submit(title: str) -> None:
    from workers.services import transport
    from workers.services.directives import directive_submit

    transport.envelope_send = _die
    directive_submit(title=title, metadata={"requires_code_write": "true"})
    raise SystemExit("still alive after the publish")


def worker(arguments: list[str]) -> None:
    from celery.bin.celery import main as celery_main

    from workers.services import transport

    marker = Path(os.environ["VSM_TEST_DIE_ONCE"])
    send = transport.envelope_send

    def die_once(*, envelope_id: str, queue: str) -> None:
        try:
            marker.open("x").close()  # only the first publish anywhere in the pool
        except FileExistsError:
            send(envelope_id=envelope_id, queue=queue)
            return
        _die()

    transport.envelope_send = die_once
    sys.argv = ["celery", *arguments]
    celery_main()


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsmsite.settings")
    django.setup()
    command, *rest = argv
    if command == "submit":
        submit(rest[0])
    elif command == "worker":
        worker(rest)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
