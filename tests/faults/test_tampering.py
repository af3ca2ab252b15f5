"""Tampering after converge (issue 18, "the audit tells the truth"): on the first host of
molecule/default, by hand, one command each, a managed file is edited, a managed service stopped,
an extra socket opened, a second UID-0 account and a sudoers drop-in added, a firewall rule
inserted. `cityward audit` of that host must then fail exactly the controls those changes break
(tests/scenarios/tampering.py: EXPECTED, each mapped to its tampering), and each failure must
name the host, the control, what was expected and what was found.

Every change is undone in the fixture's finalizer, and the host is checked to be back (the
managed files' checksums, the live ruleset, the service, the socket, the accounts). It runs after
the read-only checks, on the converged state they verified, and before the reliability faults
(tests/faults/conftest.py orders it). Unmarked: it proves the audit, not one control. Cost: one
audit of one container (about 20 to 40 s) and a few seconds of podman exec.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from managed_state import FIRST, ROOT, ansible_env, checksums, exec_in, molecule_inventory
from tampering import (
    CLEANUP,
    EXPECTED,
    PREPARE,
    PROBE,
    RULESET,
    TAMPERINGS,
    audit_command,
    failed_in_report,
    failed_in_sarif,
    parse_probe,
    present,
    problems,
)

CITYWARD = str(Path(sys.executable).parent / "cityward")


def _probe() -> dict[str, str]:
    result = exec_in(FIRST, PROBE)
    assert result.returncode == 0, f"{FIRST}: cannot read its state: {result.stderr}"
    return parse_probe(result.stdout)


def _undo() -> list[str]:
    """Every tampering undone, last first, whether or not it was made; what failed."""
    failed = []
    for tampering in reversed(TAMPERINGS):
        result = exec_in(FIRST, tampering.undo)
        if result.returncode != 0:
            failed.append(f"undo {tampering.what} ({tampering.undo}): exit {result.returncode} {result.stderr.strip()}")
    exec_in(FIRST, CLEANUP)
    return failed


@pytest.fixture
def tampered():
    """FIRST as converged, then tampered with; the finalizer undoes every change and proves the host back."""
    files, state = checksums(FIRST), _probe()
    assert not present(state), f"{FIRST} is not as converged before tampering: {present(state)} ({state})"
    try:
        prepared = exec_in(FIRST, PREPARE)
        assert prepared.returncode == 0, f"{FIRST}: {PREPARE}: {prepared.stderr}"
        for tampering in TAMPERINGS:
            result = exec_in(FIRST, tampering.command)
            assert result.returncode == 0, (f"{FIRST}: could not make {tampering.what} ({tampering.command}): "
                                            f"exit {result.returncode} {result.stderr.strip()}")
        after = _probe()
        # Each change is on the host when the audit starts (a service that came back would hide one).
        assert present(after) == [t.key for t in TAMPERINGS], f"{FIRST}: not every change holds: {after}"
        yield
    finally:
        failed = _undo()
        back = _probe()
        assert not failed, "\n".join(failed)
        assert not present(back), f"{FIRST} is not back after the undo: {present(back)} ({back})"
        assert back[RULESET] == state[RULESET], f"{FIRST}: the live ruleset differs from before the tampering"
        assert checksums(FIRST) == files, f"{FIRST}: a managed file differs from before the tampering"


def test_the_audit_fails_exactly_the_tampered_controls(tampered, tmp_path):
    """The audit of the tampered host fails exactly EXPECTED's controls, each failure naming host,
    control, its check, expected and found, with the tampering's own words (account, port, file)."""
    out = tmp_path / "audit"
    command = audit_command(CITYWARD, str(molecule_inventory()), FIRST, str(out))
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=ansible_env(), timeout=600,
                            check=False)
    assert result.returncode == 1, (f"cityward audit: expected exit 1 (mandatory controls failed), found "
                                    f"{result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    report = failed_in_report(json.loads((out / "report.json").read_text(encoding="utf-8")), FIRST)
    sarif = failed_in_sarif(json.loads((out / "report.sarif").read_text(encoding="utf-8")), FIRST)
    assert not (wrong := problems(report, sarif, EXPECTED, FIRST)), "\n".join(wrong)
    assert set(report) == set(EXPECTED)
