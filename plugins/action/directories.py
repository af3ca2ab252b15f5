"""cityward.hardening.directories: create a role's missing directories in one task, with one shell command.

ansible.builtin.file costs one module run per directory (~0.15 s on a small host) even to find
that a directory is already there, and a loop pays it per item. This action sends one shell
command over the open connection (as the task's become user) that creates each missing directory
with `install -d` and the entry's owner, group and mode, and prints the ones it created. Under
--check it creates nothing and prints the ones it would create, so the task reports "changed"
exactly when a directory is missing.

A directory that already exists is left as it is: its owner and mode are not changed (a stricter
mode set on the host is never loosened). A path that exists but is not a directory fails the task.
"""
from __future__ import annotations

import re
import shlex

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.cityward.hardening.plugins.plugin_utils.file_mode import octal_mode
from ansible_collections.cityward.hardening.plugins.plugin_utils.text import breaking_character

KEYS = frozenset(("path", "owner", "group", "mode"))
# A user or group name (or a numeric id) as install -o/-g take it.
ACCOUNT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$")


def check_entries(value) -> list[dict]:
    """The entries with owner and group filled in (root) and the mode as an octal string;
    AnsibleActionFail naming the entry and the field."""
    if not isinstance(value, list) or not value:
        raise AnsibleActionFail("directories: field directories must be a non-empty list of directories")
    entries = []
    for index, entry in enumerate(value):
        where = f"directories[{index}]"
        if not isinstance(entry, dict):
            raise AnsibleActionFail(f"directories: {where} must be a mapping, got {type(entry).__name__}")
        path = entry.get("path")
        where = f"directories[{index}] ({path if isinstance(path, str) else 'no path'})"
        unknown = sorted(set(entry) - KEYS)
        if unknown:
            raise AnsibleActionFail(f"directories: {where}: unknown field(s) {', '.join(unknown)}")
        if not isinstance(path, str) or not path.startswith("/") or breaking_character(path):
            raise AnsibleActionFail(f"directories: {where}: field path must be an absolute path on one line")
        checked = {"path": path, "mode": octal_mode(entry.get("mode"), f"directories: {where}", "0755")}
        for field in ("owner", "group"):
            name = entry.get(field, "root")
            if isinstance(name, int) and not isinstance(name, bool):  # a numeric id
                name = str(name)
            if not isinstance(name, str) or not ACCOUNT.match(name):
                raise AnsibleActionFail(f"directories: {where}: field {field} ({name!r}) is not a user or group name")
            checked[field] = name
        entries.append(checked)
    return entries


def command(entries: list[dict], create: bool) -> str:
    """One shell command: for each entry whose path is not a directory, create it (unless only
    listing) and print its path, one a line. It stops at the first directory it cannot create."""
    steps = []
    for entry in entries:
        path = shlex.quote(entry["path"])
        make = (f"install -d -o {shlex.quote(entry['owner'])} -g {shlex.quote(entry['group'])} "
                f"-m {entry['mode']} {path}; ") if create else ""
        steps.append(f"if [ ! -d {path} ]; then {make}printf '%s\\n' {path}; fi")
    return "set -e; " + "; ".join(steps)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("directories",))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        entries = check_entries(self._task.args.get("directories"))
        create = not self._task.check_mode
        done = self._low_level_execute_command(command(entries, create), sudoable=True)
        missing = [line for line in done.get("stdout", "").splitlines() if line]
        result.update(changed=bool(missing), missing=missing)
        if done.get("rc") != 0:
            result.update(failed=True, msg=f"directories: {(done.get('stderr') or '').strip() or done.get('rc')}")
        return result
