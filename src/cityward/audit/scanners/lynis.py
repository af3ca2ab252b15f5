"""Lynis, from Debian's package, run on the audited host and removed after (CW-GOV-07).

Nothing is installed on the host. The controller downloads Debian's lynis package once
(`apt-get download lynis` into cityward's cache, cityward.paths.cache_dir()/lynis/; scripts/bootstrap.sh
fetches it too) and unpacks it (`dpkg-deb -x`). For each host it packs the tree Lynis runs from
(its script, include/, db/, plugins/, Debian's default.prf and cityward's custom.prf below) as a
gzip'd tar owned by root, sends it base64'd in chunks over the connection the audit uses for that
host (testinfra's `host.run`: the same for Podman and SSH hosts; a command line carries at most
128 KiB), unpacks it into a fresh `mktemp -d` folder, runs `lynis audit system --usecwd --quick`
there with its log and report in that folder, reads the report back and removes the folder, then
checks that neither the folder nor Lynis's pid file is left (anything left is recorded, and fails
CW-GOV-07).
"""

from __future__ import annotations

import base64
import io
import shlex
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cityward.audit.scanners.findings import FAILED, MISSING, RAN, SUGGESTION, WARNING, Finding, ScannerResult
from cityward.paths import cache_dir

NAME = "lynis"
TIMEOUT = 600
CHUNK = 64 * 1024  # base64 characters per command: well under a command line's 128 KiB
TMP_PREFIX = "/tmp/cityward-lynis."  # noqa: S108 - on the host, made by mktemp -d (mode 0700)
PID_FILE = "/var/run/lynis.pid"
# On top of Debian's default.prf. The audit only reads: Lynis must not refresh the host's package
# lists (`apt-get update`, its default before PKGS-7392); the report is for machines.
CUSTOM_PROFILE = """\
# cityward: Lynis in `cityward audit` (CW-GOV-07), on top of Debian's default.prf
refresh-repositories=no
colors=no
show-tool-tips=no
skip-upgrade-test=yes
"""
_lock = threading.Lock()


@dataclass(frozen=True)
class Package:
    version: str  # the Debian package's
    tarball: bytes  # the tree Lynis runs from, as tar.gz


def _deb(folder: Path) -> Path:
    debs = sorted(folder.glob("lynis_*_all.deb"))
    if debs:
        return debs[-1]
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["apt-get", "download", "lynis"], cwd=folder, capture_output=True, text=True,
                          check=False, timeout=300)
    debs = sorted(folder.glob("lynis_*_all.deb"))
    if proc.returncode != 0 or not debs:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise FileNotFoundError(f"Debian's lynis package is not in {folder} and `apt-get download lynis` failed: "
                                f"{lines[-1] if lines else f'exit {proc.returncode}'}")
    return debs[-1]


def _tree(deb: Path) -> tuple[str, Path]:
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    tree = deb.parent / f"tree-{version}"
    if not (tree / "usr" / "sbin" / "lynis").is_file():
        partial = deb.parent / f".tree-{version}.partial"
        subprocess.run(["rm", "-rf", str(partial)], check=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True, capture_output=True)
        partial.rename(tree)
    return version, tree


def _pack(tree: Path) -> bytes:
    """The run folder as tar.gz: lynis, include/, db/, plugins/, default.prf, custom.prf, owned by
    root (Lynis refuses include files another user could have written)."""
    members = [("lynis", tree / "usr/sbin/lynis"), ("include", tree / "usr/share/lynis/include"),
               ("db", tree / "usr/share/lynis/db"), ("plugins", tree / "etc/lynis/plugins"),
               ("default.prf", tree / "etc/lynis/default.prf")]

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o750 if info.isdir() or info.name == "lynis/lynis" else 0o640
        return info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, path in members:
            tar.add(path, arcname=f"lynis/{name}", filter=owned_by_root)
        data = CUSTOM_PROFILE.encode()
        info = owned_by_root(tarfile.TarInfo("lynis/custom.prf"))
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


_PACKAGE: dict[Path, Package] = {}


def package(folder: Path | None = None) -> Package:
    """Debian's Lynis, ready to send (downloaded and packed once per process; threads share it)."""
    folder = folder or cache_dir() / "lynis"
    with _lock:
        if folder not in _PACKAGE:
            version, tree = _tree(_deb(folder))
            _PACKAGE[folder] = Package(version, _pack(tree))
        return _PACKAGE[folder]


def parse_report(text: str) -> dict:
    """Lynis's report file (key=value, key[]=value for lists) as {key: value or [values]}."""
    report: dict = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep or line.startswith("#"):
            continue
        if key.endswith("[]"):
            report.setdefault(key[:-2], []).append(value)
        else:
            report[key] = value
    return report


def findings(report: dict) -> list[Finding]:
    """Warnings and suggestions: 'ID|text|detail|solution|' each; keys 'ID <first word of the
    detail>' then 'ID' (SSH-7408's detail names the sshd option)."""
    found = []
    for severity, key in ((WARNING, "warning"), (SUGGESTION, "suggestion")):
        for entry in report.get(key, []):
            ident, text, detail, *_ = [*entry.split("|"), "", "", ""]
            detail = "" if detail.strip() == "-" else detail.strip()
            keys = [f"{ident} {detail.split()[0]}"] if detail else []
            found.append(Finding(id=ident, severity=severity, text=text.strip(), detail=detail,
                                 keys=[*keys, ident]))
    return found


def _examined(report: dict) -> list[str]:
    return [test for test in report.get("tests_executed", "").split("|") if test]


def examined_keys(report: dict, entries) -> list[str]:
    """The mapping keys whose test Lynis ran on the host."""
    ran = set(_examined(report))
    return [key for key in entries if key.split()[0] in ran]


def run(host, out: Path, name: str, pkg: Package | None = None) -> tuple[ScannerResult, dict]:
    """(result without dispositions, parsed report) of one Lynis run on `host`; its screen output
    and report are written to out/<name>/lynis-*.txt (paths recorded relative to out's parent)."""
    try:
        pkg = pkg or package()
    except (OSError, subprocess.SubprocessError) as exc:
        return ScannerResult(NAME, MISSING, error=str(exc).strip().splitlines()[-1]), {}
    started = time.monotonic()
    made = host.run(f"mktemp -d {TMP_PREFIX}XXXXXXXX")
    folder = made.stdout.strip()
    if made.rc != 0 or not folder.startswith(TMP_PREFIX):
        return ScannerResult(NAME, FAILED, version=pkg.version, error=f"no temporary folder on the host: "
                             f"{(made.stderr or made.stdout).strip() or made.rc}"), {}
    quoted = shlex.quote(folder)
    result = ScannerResult(NAME, FAILED, version=pkg.version, target=folder)
    report: dict = {}
    try:
        encoded = base64.b64encode(pkg.tarball).decode("ascii")
        for start in range(0, len(encoded), CHUNK):
            sent = host.run(f"printf %s '{encoded[start:start + CHUNK]}' >> {quoted}/lynis.tgz.b64")
            if sent.rc != 0:
                result.error = f"could not copy Lynis to {folder}: {(sent.stderr or sent.stdout).strip()}"
                return result, report
        command = (f"cd {quoted} && base64 -d lynis.tgz.b64 | tar -xzf - && rm lynis.tgz.b64 && cd lynis && "
                   f"timeout {TIMEOUT} ./lynis audit system --usecwd --quick --no-colors "
                   f"--logfile {quoted}/lynis.log --report-file {quoted}/report.dat > {quoted}/screen.txt 2>&1; "
                   f"echo \"::cityward-rc::$?\"; cat {quoted}/screen.txt; echo '::cityward-report::'; "
                   f"cat {quoted}/report.dat 2>/dev/null")
        ran = host.run(command)
        screen, _, report_text = ran.stdout.partition("::cityward-report::\n")
        code, _, screen = screen.partition("\n")
        result.seconds = round(time.monotonic() - started, 1)
        folder_out = out / name
        folder_out.mkdir(parents=True, exist_ok=True)
        (folder_out / "lynis-screen.txt").write_text(screen, encoding="utf-8")
        (folder_out / "lynis-report.dat").write_text(report_text, encoding="utf-8")
        result.raw = [f"{out.name}/{name}/lynis-screen.txt", f"{out.name}/{name}/lynis-report.dat"]
        report = parse_report(report_text)
        rc = code.removeprefix("::cityward-rc::").strip()
        if rc != "0" or "hardening_index" not in report:
            tail = (screen or ran.stderr).strip().splitlines()
            result.error = f"lynis exited {rc or ran.rc}: {tail[-1] if tail else 'no output'}"
            return result, report
        result.status = RAN
        result.version = report.get("lynis_version") or pkg.version
        result.findings = findings(report)
        result.summary = {
            "hardening_index": int(report["hardening_index"]),
            "tests_done": int(report.get("lynis_tests_done") or 0),
            "tests_skipped": len([t for t in report.get("tests_skipped", "").split("|") if t]),
            "warnings": sum(f.severity == WARNING for f in result.findings),
            "suggestions": sum(f.severity == SUGGESTION for f in result.findings),
            "exceptions": report.get("exception_event", []),
            "package": pkg.version,
            "os": report.get("os_fullname", ""),
        }
        return result, report
    finally:
        # Nothing left on the host: the folder goes, and neither it nor Lynis's pid file stays.
        left = host.run(f"rm -rf {quoted}; for p in {quoted} {PID_FILE}; do [ -e \"$p\" ] && echo \"$p\"; done; true")
        result.leftover = [line for line in left.stdout.splitlines() if line.strip()]
