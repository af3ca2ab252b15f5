"""Lynis, from a system package's files, run on the audited host and removed after (CW-GOV-07).

Nothing is installed on the host. The controller takes Lynis, in this order, from Debian's lynis
package downloaded into cityward's cache (cityward.paths.cache_dir()/lynis/lynis_*_all.deb:
scripts/bootstrap.sh runs `apt-get download lynis` there; unpacked once with `dpkg-deb -x`), or from
a lynis package installed on the controller (what the execution environment carries: Debian's, or
EPEL's on UBI/RHEL; its version from dpkg or rpm, else `lynis --version`), or else downloads
Debian's into the cache. For each host it packs the tree Lynis runs from (its script, include/, db/,
plugins/, the package's default.prf and cityward's custom.prf below: the same layout whatever the
source) as a gzip'd tar owned by root, sends it base64'd in chunks over the connection the audit
uses for that host (testinfra's `host.run`: the same for Podman and SSH hosts; a command line
carries at most 128 KiB), unpacks it into a fresh `mktemp -d` folder, runs `lynis audit system
--usecwd --quick` there with its log and report in that folder, reads the report back and removes
the folder, then checks that neither the folder nor Lynis's pid file is left (anything left is
recorded, and fails CW-GOV-07).
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
# On top of the package's default.prf (Debian's or EPEL's). The audit only reads: Lynis must not
# refresh the host's package lists (`apt-get update`, its default before PKGS-7392); the report is
# for machines.
CUSTOM_PROFILE = """\
# cityward: Lynis in `cityward audit` (CW-GOV-07), on top of the package's default.prf
refresh-repositories=no
colors=no
show-tool-tips=no
skip-upgrade-test=yes
"""

# Where a lynis package puts what Lynis runs from, relative to the file system's root. Debian's
# (`dpkg-deb -c lynis_3.0.8-1.1_all.deb`): usr/sbin/lynis, usr/share/lynis/{include,db},
# etc/lynis/{default.prf,plugins}. EPEL's (Fedora's lynis.spec, 3.1.3): usr/bin/lynis,
# usr/share/lynis/{include,db,plugins}, etc/lynis/default.prf. Plugins are looked for in Lynis's own
# order (usr/share/lynis/plugins before etc/lynis/plugins).
PROGRAMS = ("usr/sbin/lynis", "usr/bin/lynis")
PLUGIN_DIRS = ("usr/share/lynis/plugins", "etc/lynis/plugins")
SHARE = "usr/share/lynis"
DEFAULT_PROFILE = "etc/lynis/default.prf"
VERSION_TIMEOUT = 30
_lock = threading.Lock()


@dataclass(frozen=True)
class Package:
    version: str  # the package's (Debian's or EPEL's), else what `lynis --version` says
    tarball: bytes  # the tree Lynis runs from, as tar.gz
    source: str = ""  # where it was taken from: the cached .deb, or the installed program


def _cached_deb(folder: Path) -> Path | None:
    debs = sorted(folder.glob("lynis_*_all.deb"))
    return debs[-1] if debs else None


def _download(folder: Path) -> Path:
    """Debian's lynis package, downloaded into folder (`apt-get download lynis`)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(["apt-get", "download", "lynis"], cwd=folder, capture_output=True, text=True,
                              check=False, timeout=300)
    except OSError as exc:
        raise FileNotFoundError(f"`apt-get download lynis` could not run: {exc.strerror or exc}") from exc
    deb = _cached_deb(folder)
    if proc.returncode != 0 or deb is None:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise FileNotFoundError(f"`apt-get download lynis` failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return deb


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


def _layout(root: Path) -> tuple[dict[str, Path], list[str]]:
    """The run folder's members (lynis, include, db, plugins, default.prf) in a tree laid out as
    Debian's or EPEL's package installs Lynis under root, and the ones missing there."""
    program = next((root / p for p in PROGRAMS if (root / p).is_file()), root / PROGRAMS[0])
    plugins = next((root / p for p in PLUGIN_DIRS if (root / p).is_dir()), root / PLUGIN_DIRS[-1])
    members = {"lynis": program, "include": root / SHARE / "include", "db": root / SHARE / "db",
               "plugins": plugins, "default.prf": root / DEFAULT_PROFILE}
    missing = [str(path) for name, path in members.items()
               if not (path.is_file() if name in ("lynis", "default.prf") else path.is_dir())]
    return members, missing


def _query(cmd: list[str], cwd: Path | None = None) -> str:
    """The first line a command prints when it succeeds; empty when it fails or is not there."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=VERSION_TIMEOUT)
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = proc.stdout.strip().splitlines()
    return lines[0].strip() if proc.returncode == 0 and lines else ""


def installed_version(root: Path, program: Path) -> str:
    """The installed lynis package's version: dpkg's, else rpm's, else `lynis --version` (run from
    its share folder, where it finds include/ whatever the root); 'unknown' if none answers."""
    dpkg = _query(["dpkg-query", f"--admindir={root / 'var/lib/dpkg'}", "-W",
                   "-f=${db:Status-Status} ${Version}", "lynis"])
    if dpkg.startswith("installed "):
        return dpkg.removeprefix("installed ").strip()
    rpm = _query(["rpm", "--root", str(root), "-q", "--qf", "%{VERSION}-%{RELEASE}", "lynis"])
    if rpm and " " not in rpm:
        return rpm
    return _query([str(program), "--version"], cwd=root / SHARE) or "unknown"


def _pack(members: dict[str, Path]) -> bytes:
    """The run folder as tar.gz: lynis, include/, db/, plugins/, default.prf, custom.prf, owned by
    root (Lynis refuses include files another user could have written)."""

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o750 if info.isdir() or info.name == "lynis/lynis" else 0o640
        return info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("lynis", "include", "db", "plugins", "default.prf"):
            # resolve(): a member that is a symlink (a packager's choice) goes as what it points to;
            # symlinks inside the folders (db/languages/) stay as they are.
            tar.add(members[name].resolve(), arcname=f"lynis/{name}", filter=owned_by_root)
        data = CUSTOM_PROFILE.encode()
        info = owned_by_root(tarfile.TarInfo("lynis/custom.prf"))
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _find(folder: Path, root: Path) -> Package:
    """The cached .deb, else the installed package, else a downloaded .deb; else one line naming both ways."""
    deb = _cached_deb(folder)
    if deb is None:
        members, missing = _layout(root)
        if not missing:
            return Package(installed_version(root, members["lynis"]), _pack(members), str(members["lynis"]))
        try:
            deb = _download(folder)
        except (OSError, subprocess.SubprocessError) as exc:
            installed = (f"no lynis system package is installed ({' or '.join(str(root / p) for p in PROGRAMS)})"
                         if len(missing) == len(members) else
                         f"the installed lynis is incomplete ({', '.join(missing)} missing)")
            raise FileNotFoundError(
                f"no Lynis: Debian's lynis package is not in {folder} ({str(exc).strip() or type(exc).__name__}) "
                f"and {installed}: run scripts/bootstrap.sh (or `apt-get download lynis` in {folder}), or "
                "install the lynis package (Debian: apt-get install lynis; UBI/RHEL: EPEL's lynis)") from exc
    version, tree = _tree(deb)
    members, missing = _layout(tree)
    if missing:
        raise FileNotFoundError(f"{deb.name} does not hold what Lynis runs from: {', '.join(missing)} missing")
    return Package(version, _pack(members), str(deb))


_PACKAGE: dict[tuple[Path, Path], Package] = {}


def package(folder: Path | None = None, root: Path = Path("/")) -> Package:
    """Lynis ready to send, from the cached .deb in folder or the lynis package installed under root
    (found and packed once per process; threads share it)."""
    folder = folder or cache_dir() / "lynis"
    with _lock:
        if (folder, root) not in _PACKAGE:
            _PACKAGE[folder, root] = _find(folder, root)
        return _PACKAGE[folder, root]


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
            "source": pkg.source,
            "os": report.get("os_fullname", ""),
        }
        return result, report
    finally:
        # Nothing left on the host: the folder goes, and neither it nor Lynis's pid file stays.
        left = host.run(f"rm -rf {quoted}; for p in {quoted} {PID_FILE}; do [ -e \"$p\" ] && echo \"$p\"; done; true")
        result.leftover = [line for line in left.stdout.splitlines() if line.strip()]
