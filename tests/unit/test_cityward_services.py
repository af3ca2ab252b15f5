"""plugins/action/services.py: systemd units kept enabled and running in one task, with
no module run when `systemctl show` says they already are. This machine runs no systemd, so here:
what it refuses before asking the host, that an unreadable answer hands every unit to
ansible.builtin.systemd_service (whose failure it names), and how it reads systemctl's answer.
The shortcut itself runs in every Molecule scenario (systemd containers: converge, then
idempotence) and in `cityward bench`'s second run."""

from __future__ import annotations

import pytest
from local_play import assert_refused, load_action, run_task

PLUGIN = load_action("services")


def services(lab, args: dict, *flags: str):
    return run_task(lab, {"name": "CW-TEST-01 | services", "cityward.hardening.services": args}, "-vvv", *flags)


@pytest.mark.parametrize(("args", "message"), [
    ({"names": [], "state": "started"}, "field names must be a non-empty list of unit names"),
    ({"names": ["ssh; reboot"], "state": "started"}, "names[0] ('ssh; reboot') is not a systemd unit name"),
    ({"names": "ssh", "state": "restarted"}, "field state must be one of started, stopped, got 'restarted'"),
    ({"names": "ssh", "enabled": "maybe"}, "enabled and daemon_reload must be true or false"),
    ({"names": "ssh"}, "give enabled, state or both"),
])
def test_bad_input_is_refused_before_the_host_is_asked(tmp_path, args, message):
    code, _, output = services(tmp_path, args)
    assert_refused(code, output, message, "systemctl")


def test_an_unreadable_answer_hands_the_units_to_the_module(tmp_path):
    code, _, output = services(tmp_path, {"names": ["cron.service"], "enabled": True, "state": "started"}, "--check")
    assert code != 0
    assert "systemctl show --property=Id,LoadState,ActiveState,UnitFileState -- cron.service" in output
    assert "AnsiballZ_systemd_service" in output
    assert "services: cron.service:" in output


def test_reads_one_block_per_unit_in_order():
    answer = ("Id=ssh.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n\n"
              "Id=nosuch.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\n")
    assert PLUGIN.parse(answer) == [
        {"Id": "ssh.service", "LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"},
        {"Id": "nosuch.service", "LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""}]


@pytest.mark.parametrize(("unit", "enabled", "state", "left_alone"), [
    ({"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"}, True, "started", True),
    ({"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "disabled"}, True, "started", False),
    ({"LoadState": "loaded", "ActiveState": "failed", "UnitFileState": "enabled"}, True, "started", False),
    ({"LoadState": "loaded", "ActiveState": "activating", "UnitFileState": "enabled"}, None, "started", False),
    ({"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "static"}, True, "started", False),
    ({"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""}, False, "stopped", False),
    ({"LoadState": "loaded", "ActiveState": "inactive", "UnitFileState": "disabled"}, False, "stopped", True),
    ({"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "masked"}, None, "started", True),
])
def test_only_an_exact_answer_skips_the_module(unit, enabled, state, left_alone):
    assert PLUGIN.already(unit, enabled, state) is left_alone
