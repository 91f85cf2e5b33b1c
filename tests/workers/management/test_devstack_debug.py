"""devstack keeps DEBUG for loopback (`make run`) and off on any other address."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from workers.management.commands.devstack import debug_environment, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_addresses_serve_only_this_machine(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "vsm.example.org"])
def test_any_other_address_or_a_name_may_be_reached_from_elsewhere(host: str) -> None:
    assert not is_loopback(host)


def test_make_run_on_loopback_runs_with_debug_on() -> None:
    assert debug_environment(host="127.0.0.1", environment={}) == {"DJANGO_DEBUG": "true"}


def test_debug_turned_off_on_loopback_stays_off() -> None:
    found = debug_environment(host="127.0.0.1", environment={"DJANGO_DEBUG": "false"})

    assert found == {"DJANGO_DEBUG": "false"}


def test_a_public_address_runs_with_debug_off() -> None:
    assert debug_environment(host="0.0.0.0", environment={}) == {"DJANGO_DEBUG": "false"}
    found = debug_environment(host="0.0.0.0", environment={"DJANGO_DEBUG": "no"})
    assert found == {"DJANGO_DEBUG": "false"}


@pytest.mark.parametrize("asked", ["true", "1", "yes", "on"])
def test_debug_asked_for_on_a_public_address_is_refused(
    asked: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_DEBUG", asked)

    with pytest.raises(CommandError, match="not a loopback address"):
        call_command("devstack", host="0.0.0.0", port=8000)
