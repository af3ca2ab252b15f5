"""Independent scanners in the audit's evidence (CW-GOV-07): Debian's ssh-audit against the host's
live sshd from the controller (ssh_audit), and Debian's Lynis on the host, copied there for the run
and removed after (lynis).

`collect_scanners` is the audit's evidence collector (cityward.audit.collect.EVIDENCE): it runs
both, judges each finding against policies/scanner_findings.yml (findings), and writes the
host's evidence to <audit out>/scanners/<host>.json, the raw outputs beside it in
<audit out>/scanners/<host>/. A scanner that is missing or fails is recorded as such, never as a
pass; `record_not_run` writes the same file saying the scanners were not run (--no-scanners).
The check src/cityward/checks/test_scanners.py judges that file; the aggregate shows each
finding next to its control.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from cityward.audit.scanners import lynis, ssh_audit
from cityward.audit.scanners.findings import FAILED, NOT_RUN, RAN, ScannerResult, dispose, fixed, load_mapping
from cityward.errors import CitywardError

EVIDENCE_FORMAT = "cityward-scanners/1"
FOLDER = "scanners"


def evidence_path(out_dir: Path, name: str) -> Path:
    """Where the scanners' evidence of host `name` is written (and read by the check)."""
    return Path(out_dir) / FOLDER / f"{name}.json"


def _judged(result: ScannerResult, entries: Mapping[str, str], examined) -> ScannerResult:
    for finding in result.findings:
        dispose(finding, entries)
    found_keys = {key for finding in result.findings for key in finding.keys}
    result.fixed = fixed(entries, examined, found_keys)
    return result


def _write(out_dir: Path, name: str, results: list[ScannerResult]) -> Path:
    path = evidence_path(out_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"format": EVIDENCE_FORMAT, "host": name, "collected": datetime.now(UTC).isoformat(timespec="seconds"),
                "scanners": [result.as_data() for result in results]}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def collect_scanners(host, name: str, out_dir: Path, hostvars: Mapping | None = None) -> Path:
    """Run ssh-audit and Lynis for host `name` and write their evidence; returns its path. Never
    raises for a scanner's sake: a missing or failing scanner is recorded as such."""
    from cityward.checks.fixtures import sshd_endpoint

    try:
        mapping = load_mapping()
    except CitywardError as exc:  # the audit checks it before any host: only a file changed since
        return _write(out_dir, name, [ScannerResult(scanner, FAILED, error=str(exc))
                                      for scanner in (ssh_audit.NAME, lynis.NAME)])
    folder = Path(out_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    variables = {"inventory_hostname": name, **(hostvars or {})}
    try:
        address, port = sshd_endpoint(variables)
    except Exception as exc:  # noqa: BLE001 - no endpoint is a failed scan, recorded
        scanned = ScannerResult(ssh_audit.NAME, FAILED, error=f"no sshd address for {name}: {exc}")
    else:
        scanned, raw = ssh_audit.scan(address, port)
        if raw:
            raw_path = folder / name / "ssh-audit.txt"
            raw_path.parent.mkdir(parents=True, exist_ok=True)
            raw_path.write_text(raw, encoding="utf-8")
            scanned.raw = [f"{FOLDER}/{name}/ssh-audit.txt"]
    _judged(scanned, mapping[ssh_audit.NAME], ssh_audit.CATEGORIES if scanned.status == RAN else ())
    audited, report = lynis.run(host, folder, name)
    _judged(audited, mapping[lynis.NAME], lynis.examined_keys(report, mapping[lynis.NAME]))
    return _write(out_dir, name, [scanned, audited])


def record_not_run(host, name: str, out_dir: Path, hostvars: Mapping | None = None) -> Path:
    """The evidence of an audit run with --no-scanners: each scanner not run (never a pass)."""
    reason = "not run: the audit was run with --no-scanners"
    return _write(out_dir, name, [ScannerResult(scanner, NOT_RUN, error=reason)
                                  for scanner in (ssh_audit.NAME, lynis.NAME)])


def read_evidence(path: Path) -> list[dict]:
    """The scanners of an evidence file, as written."""
    return json.loads(Path(path).read_text(encoding="utf-8"))["scanners"]
