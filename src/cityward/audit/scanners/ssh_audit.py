"""Debian's ssh-audit, run from the controller against a host's live sshd (CW-GOV-07).

The installed ssh-audit (2.5.0 in Debian 12) has a JSON output (-j), but it lists only the
algorithms, without the fail/warn notes: the notes are read from its text output (-n, no colours),
one finding per algorithm and note, e.g. `(kex) ecdh-sha2-nistp256 -- [fail] using weak elliptic
curves`, whose id is `kex:ecdh-sha2-nistp256`. `weaknesses()` is the reading CW-SSH-02's check
makes of the same output.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time

from cityward.audit.scanners.findings import FAILED, MISSING, RAN, SUGGESTION, WARNING, Finding, ScannerResult

NAME = "ssh-audit"
TIMEOUT = 60
# "(kex) curve25519-sha256   -- [info] ..." and its continuation lines "   `- [warn] ...".
_ALGORITHM = re.compile(r"^\((?P<cat>[a-z]+)\) (?P<alg>\S+)(?: \([^)]*\))?\s+(?:--|`-) "
                        r"\[(?P<level>\w+)\] (?P<note>.*)$")
_MORE = re.compile(r"^\s+`- \[(?P<level>\w+)\] (?P<note>.*)$")
_VERSION = re.compile(r"ssh-audit v(\S+?),?\s")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# What ssh-audit examines on every scan: the categories of algorithms (the mapping's keys).
CATEGORIES = ("kex", "key", "enc", "mac")
SCANNED = "(gen) banner"


def version(tool: str) -> str:
    """The installed ssh-audit's version, from the first line of its help ('# ssh-audit v2.5.0, ...')."""
    out = subprocess.run([tool, "-h"], capture_output=True, text=True, timeout=TIMEOUT, check=False).stdout
    found = _VERSION.search(_ANSI.sub("", out))
    return found.group(1) if found else ""


def parse(report: str) -> list[Finding]:
    """One finding per algorithm and [fail]/[warn] note of ssh-audit's text output (-n); a fail or
    a warn is a weakness (a warning), as CW-SSH-02 reads it."""
    findings = []
    category = algorithm = None
    for line in _ANSI.sub("", report).splitlines():
        head = _ALGORITHM.match(line)
        if head:
            category, algorithm = head["cat"], head["alg"]
            level, note = head["level"], head["note"]
        else:
            more = _MORE.match(line)
            if not more or category is None:
                if line.strip() and not line.startswith(" "):
                    category = algorithm = None
                continue
            level, note = more["level"], more["note"]
        if level not in ("fail", "warn") or category not in CATEGORIES:
            continue
        ident = f"{category}:{algorithm}"
        note = note.strip()
        findings.append(Finding(id=ident, severity=WARNING if level in ("fail", "warn") else SUGGESTION,
                                text=f"[{level}] {note}", keys=[ident, note, category]))
    return findings


def weaknesses(report: str) -> list[str]:
    """The fail/warn lines of a scan, except an algorithm newer than the scanner (only 'unknown'
    to it, e.g. ML-KEM): what CW-SSH-02's check refuses."""
    return [f"{f.id} {f.text}" for f in parse(report) if "unknown algorithm" not in f.text]


def scan(address: str, port: int) -> tuple[ScannerResult, str]:
    """(result without dispositions, raw output) of one scan of address:port."""
    tool = shutil.which(NAME)
    if tool is None:
        return ScannerResult(NAME, MISSING, error="ssh-audit is not installed on the controller "
                             "(apt-get install ssh-audit; scripts/bootstrap.sh installs it)"), ""
    target = f"{address}:{port}"
    started = time.monotonic()
    try:
        proc = subprocess.run([tool, "-n", "-p", str(port), address], capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return ScannerResult(NAME, FAILED, version=version(tool), target=target,
                             error=f"no answer from {target} within {TIMEOUT} s"), ""
    seconds = round(time.monotonic() - started, 2)
    raw = proc.stdout + (f"\n# stderr\n{proc.stderr}" if proc.stderr.strip() else "")
    if SCANNED not in proc.stdout:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return ScannerResult(NAME, FAILED, version=version(tool), target=target, seconds=seconds,
                             error=f"could not scan {target}: {lines[-1] if lines else f'exit {proc.returncode}'}"), raw
    findings = parse(proc.stdout)
    levels = [f.text.split("]")[0].lstrip("[") for f in findings]
    summary = {"fail": levels.count("fail"), "warn": levels.count("warn"), "exit": proc.returncode,
               "software": next((line.split(": ", 1)[1] for line in proc.stdout.splitlines()
                                 if line.startswith("(gen) software: ")), "")}
    return ScannerResult(NAME, RAN, version=version(tool), target=target, seconds=seconds, summary=summary,
                         findings=findings), raw
