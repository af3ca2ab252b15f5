"""cityward.hardening.packages: a role's Debian packages in one task and, when nothing is to do, no module run.

ansible.builtin.apt opens python-apt's cache on every run, ~0.4 s on a small host even when every
package is already there, and each role used to refresh the index in a task of its own. This
action asks dpkg once over the open connection (one shell command, no module) which packages
are missing or still present, and how old the index is. Only when there is something to do does
it hand the work to ansible.builtin.apt: the packages to install in one transaction, the ones to
remove in another, with the index refreshed first when it is older than cache_valid_time (default:
the inventory's cityward_apt_cache_valid_time, else an hour). So check mode, diff mode and apt's
own errors are apt's, and a host that is already right costs one command.
"""
from __future__ import annotations

import re
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

# Plain Debian package names (Debian Policy 5.6.7). Versions, wildcards and architectures are refused:
# dpkg-query would not answer for them the way apt reads them.
NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
# apt's own rule for the index age: the update-success stamp, else the lists folder.
STAMPS = ("/var/lib/apt/periodic/update-success-stamp", "/var/lib/apt/lists")
MARK = "--cityward--"


def names(args: dict, field: str) -> list[str]:
    """The package list in args[field]; AnsibleActionFail naming the field and the entry."""
    value = args.get(field, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise AnsibleActionFail(f"packages: field {field} must be a list of package names")
    for index, name in enumerate(value):
        if not isinstance(name, str) or not NAME.match(name):
            raise AnsibleActionFail(f"packages: {field}[{index}] ({name!r}) is not a plain Debian package "
                                    "name (no version, wildcard or architecture)")
    return list(dict.fromkeys(value))


def query(packages: list[str]) -> str:
    """One shell command: dpkg's state of the packages, the index's mtime, the host's clock."""
    stamp = " || ".join(f"stat -c %Y {path} 2>/dev/null" for path in STAMPS)
    listing = ""
    if packages:
        listing = ("dpkg-query -W -f='${Package}\\t${db:Status-Abbrev}\\n' -- "
                   + " ".join(shlex.quote(name) for name in packages) + " 2>/dev/null; ")
    return f"LC_ALL=C; export LC_ALL; {listing}echo {MARK}; ({stamp} || echo 0); date +%s"


def parse(stdout: str) -> tuple[dict[str, str], int]:
    """dpkg's two-letter status by package (e.g. 'ii', 'rc'), and the index's age in seconds."""
    listing, _, clock = stdout.partition(MARK)
    status = {}
    for line in listing.splitlines():
        name, _, abbrev = line.partition("\t")
        if abbrev[1:2] == "i" or name not in status:  # an installed architecture wins over another
            status[name] = abbrev[:2]
    numbers = [int(word) for word in clock.split() if word.isdigit()]
    age = numbers[-1] - numbers[0] if len(numbers) >= 2 else 1 << 62
    return status, age


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("present", "absent", "purge", "install_recommends", "update_cache", "cache_valid_time"))

    def _apt(self, args: dict, task_vars: dict, check_mode: bool) -> dict:
        saved = self._task.check_mode
        self._task.check_mode = check_mode
        try:
            return self._execute_module("ansible.legacy.apt", module_args=args, task_vars=task_vars)
        finally:
            self._task.check_mode = saved

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        present, absent = names(args, "present"), names(args, "absent")
        if not present and not absent and not args.get("update_cache"):
            raise AnsibleActionFail("packages: give present or absent packages, or update_cache: true")
        both = sorted(set(present) & set(absent))
        if both:
            raise AnsibleActionFail(f"packages: {', '.join(both)} in both present and absent")
        try:
            purge = boolean(args.get("purge", False), strict=True)
            refresh = boolean(args.get("update_cache", False), strict=True)
            valid = int(args["cache_valid_time"] if "cache_valid_time" in args else
                        self._templar.template(task_vars.get("cityward_apt_cache_valid_time", 3600)))
        except (TypeError, ValueError) as exc:
            raise AnsibleActionFail(f"packages: purge, update_cache (true/false) or cache_valid_time "
                                    f"(seconds): {exc}") from exc

        seen = self._low_level_execute_command(query(present + absent), sudoable=False)
        if seen.get("rc") != 0:
            raise AnsibleActionFail(f"packages: could not read dpkg's state on the host: "
                                    f"{seen.get('stderr', '').strip() or seen.get('rc')}")
        status, age = parse(seen.get("stdout", ""))
        gone = ("n", "c") if not purge else ("n",)  # 'c': only configuration files left
        to_install = [name for name in present if status.get(name, "un")[1:2] != "i"]
        to_remove = [name for name in absent if status.get(name, "un")[1:2] not in gone]
        result.update(changed=False, to_install=to_install, to_remove=to_remove, cache_updated=False)

        if (refresh or to_install) and age > valid:
            # Also under --check, as a separate refresh task did before: apt can only predict an
            # install from a current index. Refreshing the index changes no package.
            updated = self._apt({"update_cache": True, "cache_valid_time": valid}, task_vars, check_mode=False)
            if updated.get("failed"):
                return dict(updated, msg=f"packages: refreshing the index: {updated.get('msg', '')}")
            result["cache_updated"] = bool(updated.get("cache_updated"))

        steps = []
        if to_install:
            step = {"name": to_install, "state": "present"}
            if "install_recommends" in args:
                step["install_recommends"] = args["install_recommends"]
            steps.append(step)
        if to_remove:
            steps.append({"name": to_remove, "state": "absent", "purge": purge})
        for step in steps:
            done = self._apt(step, task_vars, check_mode=bool(self._task.check_mode))
            result["changed"] = result["changed"] or bool(done.get("changed"))
            if done.get("diff"):
                result.setdefault("diff", []).append(done["diff"])
            if done.get("failed"):
                result.update(failed=True, msg=f"packages: {step['state']} {', '.join(step['name'])}: "
                                               f"{done.get('msg', 'apt failed')}",
                              stdout=done.get("stdout", ""), stderr=done.get("stderr", ""))
                return result
        return result
