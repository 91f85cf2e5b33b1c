"""The environment picks the deployment shape; nothing set means the embedded default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import BASE_DIR

pytestmark = pytest.mark.slow  # each test starts a Python process

PROBE = """
import json, django
django.setup()
from django.conf import settings
from vsmsite.celery import app
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "options": db.get("OPTIONS", {}),
    "broker": app.conf.broker_url, "transport_options": app.conf.broker_transport_options,
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "layer_config": settings.CHANNEL_LAYERS["default"].get("CONFIG", {}),
    "acks_late": app.conf.task_acks_late,
    "reject_on_worker_lost": app.conf.task_reject_on_worker_lost,
    "time_limit": app.conf.task_time_limit, "events": app.conf.worker_send_task_events,
    "result_backend": app.conf.result_backend, "first_app": settings.INSTALLED_APPS[0],
    "debug": settings.DEBUG,
}))
"""


def settings_under(tmp_path: Path, **env: str) -> dict[str, Any]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_DEBUG"}
    }
    clean.update(DJANGO_SETTINGS_MODULE="vsmsite.settings", VSM_VAR_DIR=str(tmp_path), **env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_nothing_set_gives_sqlite_the_embedded_broker_and_an_in_memory_layer(
    tmp_path: Path,
) -> None:
    found = settings_under(tmp_path)

    assert found["engine"] == "django.db.backends.sqlite3"
    assert found["name"] == str(tmp_path / "db.sqlite3")
    assert found["options"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in found["options"]["init_command"]
    assert found["broker"] == "embedded://localhost"
    assert found["transport_options"]["database"] == str(tmp_path / "broker.sqlite3")
    assert found["layer"] == "channels.layers.InMemoryChannelLayer"
    assert found["result_backend"] == "django-db"
    assert found["debug"] is False  # `make run` asks for it (devstack on loopback)


def test_database_and_redis_urls_switch_to_postgresql_and_redis(tmp_path: Path) -> None:
    found = settings_under(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/vsm",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )

    assert found["engine"] == "django.db.backends.postgresql"
    assert found["name"] == "vsm"
    assert found["broker"] == "redis://127.0.0.1:6379/0"
    assert found["layer"] == "channels_redis.core.RedisChannelLayer"
    assert found["options"]["server_side_binding"] is True
    assert found["options"]["prepare_threshold"] == 5


def test_prepared_statements_can_be_turned_off_for_a_pooler(tmp_path: Path) -> None:
    found = settings_under(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/vsm",
        DATABASE_PREPARE_THRESHOLD="",
    )
    assert found["options"]["prepare_threshold"] is None


def test_the_redis_layer_waits_on_its_socket_longer_than_its_blocking_pop(
    tmp_path: Path,
) -> None:
    from channels_redis.core import RedisChannelLayer  # type: ignore[import-untyped]

    found = settings_under(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")

    (host,) = found["layer_config"]["hosts"]
    assert host["address"] == "redis://127.0.0.1:6379/0"
    assert host["socket_timeout"] > RedisChannelLayer.brpop_timeout


def test_celery_delivers_at_least_once_with_limits_and_events(tmp_path: Path) -> None:
    found = settings_under(tmp_path)

    assert found["acks_late"] is True
    assert found["reject_on_worker_lost"] is True
    assert found["time_limit"] == 1800
    assert found["events"] is True
    assert found["first_app"] == "daphne"
