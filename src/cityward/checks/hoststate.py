"""Read a host's state in one round trip: a remote command costs about a second over Ansible or
SSH, so the checks batch the read-only commands they need."""

from __future__ import annotations

import re
import shlex

_MARK = "::cityward-check::"


def snapshot(host, commands: dict[str, str]) -> dict[str, tuple[int, str]]:
    """Run read-only commands in one round trip; returns name -> (exit status, output with stderr)."""
    script = "".join(
        f"echo '{_MARK}BEGIN {name}'; ( {command} ) 2>&1; rc=$?; echo; echo \"{_MARK}END $rc\"; "
        for name, command in commands.items()
    )
    out = host.run("bash -c " + shlex.quote(script)).stdout
    found = re.findall(rf"^{_MARK}BEGIN (\S+)\n(.*?)\n?^{_MARK}END (\d+)$", out, re.MULTILINE | re.DOTALL)
    results = {name: (int(rc), text) for name, text, rc in found}
    assert set(results) == set(commands), f"could not read {sorted(set(commands) - set(results))} from the host"
    return results
