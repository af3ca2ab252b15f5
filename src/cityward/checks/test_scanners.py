"""CW-GOV-07: the audit's evidence carries independent scanners' results for the host: ssh-audit
against its live sshd and Lynis on the host, each with its version, every finding mapped to a
control, waived with a reason, or (a suggestion only) shown unmapped, and nothing left on the host.

`cityward audit` writes the evidence (cityward.audit.scanners) to
$CITYWARD_AUDIT_OUT/scanners/<host>.json before it runs these checks; under Molecule there is no
audit output, so the check does not apply there. An audit run with --no-scanners leaves the
control not assessed (skipped), never passed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cityward.audit.scanners import evidence_path, lynis
from cityward.audit.scanners.findings import NOT_RUN, RAN, SCANNER_NAMES, problems
from cityward.checks.outcomes import not_applicable


@pytest.fixture(scope="module")
def scanners(hostvars):
    out = os.environ.get("CITYWARD_AUDIT_OUT")
    if not out:
        not_applicable("not applicable: the scanners are run by cityward audit")
    path = evidence_path(Path(out), hostvars["inventory_hostname"])
    if not path.is_file():
        pytest.fail(f"no scanner evidence at {path}", pytrace=False)
    try:
        found = json.loads(path.read_text(encoding="utf-8"))["scanners"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        pytest.fail(f"{path} is not the scanners' evidence: {exc}", pytrace=False)
    if found and all(scanner.get("status") == NOT_RUN for scanner in found):
        pytest.skip(f"not assessed: {found[0].get('error') or 'the scanners were not run'}")
    return found


@pytest.mark.control("CW-GOV-07")
def test_both_scanners_ran_and_are_versioned(scanners):
    names = [scanner.get("name") for scanner in scanners]
    assert sorted(names) == sorted(SCANNER_NAMES), f"scanners in the evidence: {names}"
    broken = [f"{s['name']}: {s['status'].replace('_', ' ')}: {s.get('error') or 'no result'}"
              for s in scanners if s["status"] != RAN or not s.get("version")]
    assert not broken, "\n".join(broken)


@pytest.mark.control("CW-GOV-07")
def test_every_warning_is_mapped_or_waived_and_nothing_left(scanners):
    found = problems(scanners)
    assert not found, "\n".join(found)


@pytest.mark.control("CW-GOV-07")
def test_no_lynis_folder_left_on_host(host, scanners):
    left = host.run(f"ls -d {lynis.TMP_PREFIX}* 2>/dev/null; true").stdout.split()
    assert not left, f"Lynis's temporary folder(s) left on the host: {left}"
