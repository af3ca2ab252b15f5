"""What a role applied on the host under test: the expected values of its controls.

    settings = applied(host, "kernel")

reads /etc/ansible/facts.d/cityward_kernel.fact (written by the role in the run that enforced the
settings; format and seal in the collection's plugin_utils/applied.py). A record that is missing,
not root's, writable by anyone else, unreadable, or edited by hand ends the check (and every check
that uses it) as failed with "evidence missing": never a pass on an assumed default.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from ansible_collections.cityward.hardening.plugins.plugin_utils.applied import EvidenceMissing, fact_path, read

from cityward.checks.hoststate import snapshot


class Recorded(dict):
    """A role's recorded settings. A key the record lacks (written by an older version of the role)
    fails the check that asks for it as evidence missing, naming the key, instead of a KeyError."""

    def __init__(self, role: str, settings: dict[str, Any]):
        super().__init__(settings)
        self.role = role

    def __missing__(self, key: str):
        __tracebackhide__ = True
        pytest.fail(f"evidence missing: {fact_path(self.role)} records no {key!r}: apply the {self.role} role "
                    "of this cityward version", pytrace=False)


def applied(host, role: str) -> Recorded:
    """The settings `role` recorded on `host`; fails the running check when the evidence is missing."""
    __tracebackhide__ = True
    path = fact_path(role)
    state = snapshot(host, {"stat": f"stat -c '%U %G %a' {shlex.quote(path)}",
                            "text": f"cat {shlex.quote(path)}"})
    try:
        return Recorded(role, settings_from(role, state["stat"], state["text"]))
    except EvidenceMissing as exc:
        pytest.fail(f"evidence missing: {exc}", pytrace=False)


def settings_from(role: str, stat: tuple[int, str], text: tuple[int, str]) -> dict[str, Any]:
    """The recorded settings from the fact file's `stat -c '%U %G %a'` and `cat` results
    (exit status, output); EvidenceMissing naming the file and what is wrong with it."""
    path = fact_path(role)
    if stat[0] != 0:
        raise EvidenceMissing(f"{path} is absent: the {role} role has not been applied with this cityward version")
    owner, group, mode = (stat[1].split() + ["", "", ""])[:3]
    if owner != "root" or group != "root" or not mode.isdigit() or int(mode, 8) & 0o022:
        raise EvidenceMissing(f"{path} is {owner}:{group} mode {mode}; "
                              "the record must be root:root and writable by root only")
    if text[0] != 0:
        raise EvidenceMissing(f"{path} cannot be read: {text[1].strip()}")
    return read(role, text[1])
