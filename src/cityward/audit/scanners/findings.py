"""What an independent scanner found on a host, and where each finding stands (CW-GOV-07).

A scanner's findings are judged against policies/scanner_findings.yml, the mapping of finding keys
to the control that addresses them or to "waived: <reason>". A finding is

  mapped    the mapping names the control that addresses it: it is shown next to that control
  waived    the mapping waives it (with its reason), or the city waives its mapped control on the
            host (the audit's aggregate decides that one, from the city's waivers)
  unmapped  nothing in the mapping: an unmapped warning fails CW-GOV-07, an unmapped suggestion
            is shown

A mapping entry whose test the scanner ran and which raised nothing is `fixed` on the host: the
scanner agrees that the control holds there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cityward.errors import CitywardError
from cityward.resources import policies_dir
from cityward.yamlfile import load_yaml

MAPPING_FILE = "scanner_findings.yml"
SCANNER_NAMES = ("ssh-audit", "lynis")
WARNING, SUGGESTION = "warning", "suggestion"
MAPPED, WAIVED, UNMAPPED = "mapped", "waived", "unmapped"
# How a scanner ended on a host; only "ran" is evidence.
RAN, MISSING, FAILED, NOT_RUN = "ran", "missing", "failed", "not_run"

_CONTROL = re.compile(r"^CW-[A-Z]+-\d{2}$")
_WAIVED = "waived:"


@dataclass
class Finding:
    """One finding of one scanner. `keys` are the mapping keys that may match it, most specific
    first (e.g. 'SSH-7408 MaxAuthTries', then 'SSH-7408')."""

    id: str
    severity: str  # WARNING or SUGGESTION
    text: str
    detail: str = ""
    keys: list[str] = field(default_factory=list)
    control: str | None = None
    disposition: str = UNMAPPED
    reason: str = ""

    def as_data(self) -> dict:
        return asdict(self)


@dataclass
class ScannerResult:
    """One scanner on one host: whether it ran, its version, its raw output files (relative to the
    audit's output folder), its per-host summary and its findings."""

    name: str
    status: str
    version: str = ""
    error: str = ""
    target: str = ""
    seconds: float = 0.0
    raw: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    fixed: list[dict] = field(default_factory=list)
    leftover: list[str] = field(default_factory=list)  # what a scanner run on the host left there

    def as_data(self) -> dict:
        data = asdict(self)
        data["findings"] = [f.as_data() for f in self.findings]
        return data


def _entry_problem(path: Path, scanner: str, key, value, control_ids: set[str] | None) -> str | None:
    where = f"{path}: {scanner}, entry {key!r}"
    if not isinstance(key, str) or not key.strip():
        return f"{where}: the key must be a finding name"
    if not isinstance(value, str):
        return f"{where}: expected a control ID or 'waived: <reason>', got {type(value).__name__}"
    if value.startswith(_WAIVED):
        if len(value[len(_WAIVED):].strip()) < 10:
            return f"{where}: a waiver needs its reason in a sentence ('waived: <reason>')"
        return None
    if not _CONTROL.match(value):
        return f"{where}: {value!r} is neither a control ID (CW-<AREA>-NN) nor 'waived: <reason>'"
    if control_ids is not None and value not in control_ids:
        return f"{where}: {value} is not a control of the catalog"
    return None


def load_mapping(path: Path | None = None, control_ids: set[str] | None = None) -> dict[str, dict[str, str]]:
    """{scanner: {finding key: control ID or 'waived: reason'}}; a bad entry raises CitywardError
    naming the file, the scanner and the entry."""
    path = path or policies_dir() / MAPPING_FILE
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise CitywardError(f"{path}: expected a mapping of scanner names")
    unknown = sorted(set(data) - set(SCANNER_NAMES))
    if unknown:
        raise CitywardError(f"{path}: unknown scanner(s) {', '.join(map(str, unknown))}; "
                            f"expected {', '.join(SCANNER_NAMES)}")
    mapping: dict[str, dict[str, str]] = {}
    for scanner in SCANNER_NAMES:
        entries = data.get(scanner) or {}
        if not isinstance(entries, dict):
            raise CitywardError(f"{path}: {scanner}: expected a mapping of finding names")
        for key, value in entries.items():
            problem = _entry_problem(path, scanner, key, value, control_ids)
            if problem:
                raise CitywardError(problem)
        mapping[scanner] = {str(key): str(value) for key, value in entries.items()}
    return mapping


def dispose(finding: Finding, entries: Mapping[str, str]) -> Finding:
    """The finding with its control and disposition from the scanner's mapping entries."""
    for key in finding.keys:
        value = entries.get(key)
        if value is None:
            continue
        if value.startswith(_WAIVED):
            finding.disposition, finding.reason = WAIVED, value[len(_WAIVED):].strip()
        else:
            finding.control, finding.disposition = value, MAPPED
        return finding
    finding.disposition = UNMAPPED
    return finding


def fixed(entries: Mapping[str, str], examined: Iterable[str], found_keys: set[str]) -> list[dict]:
    """The mapping's control entries the scanner examined (`examined`: keys it tested) and that
    matched no finding: the scanner agrees their control holds."""
    examined = set(examined)
    return [{"key": key, "control": value} for key, value in entries.items()
            if not value.startswith(_WAIVED) and key in examined and key not in found_keys]


def problems(scanners: list[dict]) -> list[str]:
    """What fails CW-GOV-07 in one host's evidence (as written by the collector): a scanner that
    did not run, one without a version, an unmapped warning, anything a scanner left on the host."""
    found = []
    for scanner in scanners:
        name = scanner["name"]
        if scanner["status"] != RAN:
            found.append(f"{name}: {scanner['status'].replace('_', ' ')}: {scanner.get('error') or 'no result'}")
            continue
        if not scanner.get("version"):
            found.append(f"{name}: ran, but its version was not recorded")
        for finding in scanner.get("findings", []):
            if finding["severity"] == WARNING and finding["disposition"] == UNMAPPED:
                detail = f" ({finding['detail']})" if finding.get("detail") else ""
                found.append(f"{name}: unmapped warning {finding['id']}: {finding['text']}{detail}")
        for path in scanner.get("leftover", []):
            found.append(f"{name}: left {path} on the host")
    return found
