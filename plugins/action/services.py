"""cityward.hardening.services: keep systemd units enabled and running (or disabled and stopped) in one task,
and, when they already are, without a module run.

ansible.builtin.systemd_service costs one module run per unit, ~0.2 s on a small host, to find
that a unit is enabled and active, and a loop pays it per unit. This action asks systemd once over
the open connection (`systemctl show`, one shell command) for every unit's load, active and
unit-file state. A unit already in the wanted state is left alone; every other one goes to
ansible.builtin.systemd_service with the same options, so check mode, errors and daemon-reload
are that module's. It only takes the shortcut when the answer is unambiguous: a unit whose state is
anything but exactly what was asked (loading, static, failed, unknown) is handed to the module.
"""
from __future__ import annotations

import re
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

UNIT = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")
STATES = {"started": "active", "stopped": "inactive"}
PROPERTIES = ("Id", "LoadState", "ActiveState", "UnitFileState")


def units(args: dict) -> list[str]:
    value = args.get("names")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise AnsibleActionFail("services: field names must be a non-empty list of unit names")
    for index, name in enumerate(value):
        if not isinstance(name, str) or not UNIT.match(name):
            raise AnsibleActionFail(f"services: names[{index}] ({name!r}) is not a systemd unit name")
    return list(dict.fromkeys(value))


def query(names: list[str]) -> str:
    return ("LC_ALL=C systemctl show --property=" + ",".join(PROPERTIES) + " -- "
            + " ".join(shlex.quote(name) for name in names))


def parse(stdout: str) -> list[dict[str, str]]:
    """One dict of properties per unit, in the order systemctl show was given them."""
    blocks = []
    for block in stdout.strip().split("\n\n"):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        blocks.append(fields)
    return blocks


def already(unit: dict[str, str], enabled: bool | None, state: str | None) -> bool:
    """Whether systemd's answer for a unit is exactly what was asked; anything else goes to the module."""
    return (unit.get("LoadState") == "loaded"
            and (state is None or unit.get("ActiveState") == STATES[state])
            and (enabled is None or unit.get("UnitFileState") == ("enabled" if enabled else "disabled")))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("names", "enabled", "state", "daemon_reload"))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        names = units(args)
        state = args.get("state")
        if state is not None and state not in STATES:
            raise AnsibleActionFail(f"services: field state must be one of {', '.join(STATES)}, got {state!r}")
        try:
            enabled = None if args.get("enabled") is None else boolean(args["enabled"], strict=True)
            reload = boolean(args.get("daemon_reload", False), strict=True)
        except TypeError as exc:
            raise AnsibleActionFail(f"services: enabled and daemon_reload must be true or false: {exc}") \
                from exc
        if enabled is None and state is None:
            raise AnsibleActionFail("services: give enabled, state or both")

        pending = names
        if not reload:  # a daemon-reload is the module's job, for every unit
            seen = self._low_level_execute_command(query(names), sudoable=False)
            found = parse(seen.get("stdout", "")) if seen.get("rc") == 0 else []
            if len(found) == len(names):
                pending = [name for name, unit in zip(names, found, strict=True) if not already(unit, enabled, state)]

        result.update(changed=False, units=[{"name": name, "handed_to_module": name in pending} for name in names])
        options = {key: value for key, value in (("enabled", enabled), ("state", state)) if value is not None}
        for index, name in enumerate(pending):
            done = self._execute_module("ansible.legacy.systemd_service", task_vars=task_vars, module_args={
                "name": name, "daemon_reload": reload and index == 0, **options})
            result["changed"] = result["changed"] or bool(done.get("changed"))
            if done.get("failed"):
                result.update(failed=True,
                              msg=f"services: {name}: {done.get('msg', 'systemd_service failed')}")
                return result
        return result
