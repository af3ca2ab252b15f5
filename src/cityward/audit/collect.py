"""Collect the audit's evidence from every host of an inventory: the evidence collectors
(EVIDENCE: the SBOM for CW-GOV-06, the independent scanners for CW-GOV-07), then the control
checks (cityward.checks) in a pytest process of their own, into an AuditRun. Nothing here judges
a result (cityward.audit.aggregate).

The inventory is resolved once; each host gets its own pytest process, reached over the
inventory's own connection through testinfra's native backends (SSH for a city, Podman for the
lab; cityward.testinfra_hosts), hosts in parallel. The evidence is collected first, over the same
connection, so that the checks can check it (the SBOM control does). The environment the check
processes run with (e.g. Podman's settings for lab containers) is the caller's to give.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path

from testinfra.host import Host

from cityward import __version__
from cityward.audit import scanners
from cityward.audit.model import AuditRun, CheckResult, HostResult, Outcome
from cityward.audit.sbom import ARCH_QUERY, DPKG_QUERY, cyclonedx_from_dpkg, host_architecture
from cityward.checks.fixtures import AUDIT_HOST, AUDIT_INVENTORY, AUDIT_INVENTORY_DIR, AUDIT_INVENTORY_JSON
from cityward.errors import CitywardError
from cityward.inventory import list_inventory
from cityward.resources import checks_dir
from cityward.testinfra_hosts import host_for


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def resolve_inventory(inventory: Path, limit: str | None) -> dict:
    """The inventory as `ansible-inventory --list` resolves it (once per audit), read the way
    `cityward check` reads it (its files screened first, warnings as errors); refuses an empty one."""
    resolved = list_inventory(inventory, limit)
    if not resolved.get("_meta", {}).get("hostvars"):
        raise CitywardError(f"{inventory}: no hosts match {limit!r}" if limit else f"{inventory}: no hosts")
    return resolved


class Progress:
    """One status line on a terminal, one line per finished host otherwise."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.done, self.stream = total, 0, stream
        self.tty = stream.isatty()
        self._lock = threading.Lock()

    def host_done(self, host: HostResult) -> None:
        with self._lock:
            self.done += 1
            passed = sum(c.outcome == Outcome.PASSED for c in host.checks)
            failed = sum(c.outcome in (Outcome.FAILED, Outcome.ERROR) for c in host.checks)
            state = f"{passed} passed, {failed} failed" if host.reachable else "UNREACHABLE"
            width = 24
            filled = width * self.done // self.total
            bar = "#" * filled + "-" * (width - filled)
            line = f"audit [{bar}] {self.done}/{self.total} hosts  {host.name}: {state}"
            if self.tty:
                self.stream.write("\r\033[K" + line + ("\n" if self.done == self.total else ""))
            else:
                self.stream.write(line + "\n")
            self.stream.flush()


def collect_sbom(host: Host, name: str, out_dir: Path, hostvars: Mapping | None = None) -> Path:
    """The host's CycloneDX SBOM from its package database, written to <out>/sbom/<name>.cdx.json
    (where the SBOM check reads it); raises when the host cannot be reached."""
    # One round trip (a remote command costs about a second): the architecture, then the packages.
    listing = host.run(f"{ARCH_QUERY} && {DPKG_QUERY}")
    if listing.rc != 0:
        detail = (listing.stderr or listing.stdout).strip().splitlines()
        raise ConnectionError(detail[-1] if detail else f"exit {listing.rc}")
    arch, *lines = listing.stdout.splitlines() or [""]
    info = host.system_info
    distro = f"{info.distribution}-{info.codename or info.release}"
    bom = cyclonedx_from_dpkg(lines, hostname=name, distro=distro, architecture=arch.strip())
    path = out_dir / "sbom" / f"{name}.cdx.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bom, indent=2), encoding="utf-8")
    return path


# The evidence collectors, by the control whose evidence they produce: each runs on every host
# (testinfra host, host name, audit output folder, hostvars=the host's variables) before its
# checks and returns the file it wrote. The traceability gate (cityward.trace) reads this mapping.
EVIDENCE: dict[str, Callable[..., Path]] = {
    "CW-GOV-06": collect_sbom,
    "CW-GOV-07": scanners.collect_scanners,
}
# With --no-scanners: the scanners' evidence says they were not run (their check: skipped).
WITHOUT_SCANNERS: dict[str, Callable[..., Path]] = {**EVIDENCE, "CW-GOV-07": scanners.record_not_run}


def _run_checks(name: str, inventory: Path, out_dir: Path, tests: Path, resolved: Path,
                inventory_dir: Path | None, base_env: Mapping[str, str]) -> list[CheckResult]:
    with tempfile.NamedTemporaryFile(prefix=f"cityward-{name}-", suffix=".jsonl", delete=False) as tmp:
        results_file = Path(tmp.name)
    env = dict(base_env)
    # The process's host and the resolved inventory: cityward.checks.fixtures reads them (no --hosts).
    env.update(CITYWARD_RESULTS=str(results_file), CITYWARD_AUDIT_OUT=str(out_dir),
               **{AUDIT_HOST: name, AUDIT_INVENTORY: str(inventory), AUDIT_INVENTORY_JSON: str(resolved)})
    if inventory_dir is not None:
        env[AUDIT_INVENTORY_DIR] = str(inventory_dir)
    cmd = [sys.executable, "-m", "pytest", str(tests), "-p", "cityward.audit.pytest_plugin",
           "-p", "no:cacheprovider", "-q", "--no-header", "-o", "addopts=", "--strict-markers"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        rows = [json.loads(line) for line in results_file.read_text().splitlines() if line.strip()]
    finally:
        results_file.unlink(missing_ok=True)
    if not rows and proc.returncode not in (0, 5):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise CitywardError(f"the checks could not run on {name}:\n{tail}")
    return [
        CheckResult(host=name, nodeid=r["nodeid"], name=r["nodeid"].split("::")[-1].split("[")[0],
                    control_ids=r["control_ids"], outcome=Outcome(r["outcome"]), reason=r["reason"],
                    duration=r["duration"])
        for r in rows
    ]


def audit_host(name: str, inventory: Path, out_dir: Path, tests: Path, resolved: dict,
               resolved_file: Path, inventory_dir: Path | None = None,
               env: Mapping[str, str] | None = None, evidence: Mapping[str, Callable[..., Path]] | None = None,
               ) -> HostResult:
    """One host: its evidence (`evidence`, EVIDENCE by default; a failure there means
    unreachable; the scanners record their own failures), then its checks."""
    hostvars = resolved["_meta"]["hostvars"][name]
    result = HostResult(name=name, zone=hostvars.get("cityward_zone"), reachable=True, error="",
                        metadata=dict(hostvars.get("cityward_device") or {}), checks=[])
    try:
        host = host_for(name, resolved, str(inventory))
        written = {control: collector(host, name, out_dir, hostvars=hostvars)
                   for control, collector in (EVIDENCE if evidence is None else evidence).items()}
    except Exception as exc:  # noqa: BLE001 - any transport failure means: not reachable
        result.reachable = False
        lines = str(exc).strip().splitlines()
        result.error = f"unreachable: {lines[-1] if lines else type(exc).__name__}"
        return result
    if "CW-GOV-06" in written:
        result.architecture = host_architecture(json.loads(written["CW-GOV-06"].read_text(encoding="utf-8")))
    if "CW-GOV-07" in written:
        result.scanners = scanners.read_evidence(written["CW-GOV-07"])
    try:
        result.checks = _run_checks(name, inventory, out_dir, tests, resolved_file, inventory_dir,
                                    os.environ if env is None else env)
    except CitywardError as exc:
        result.error = str(exc)
    return result


def run_audit(inventory: Path, out_dir: Path, limit: str | None = None, workers: int | None = None,
              tests: Path | None = None, progress: Progress | None = None,
              inventory_dir: Path | None = None, resolved: dict | None = None,
              env: Mapping[str, str] | None = None, scan: bool = True) -> AuditRun:
    """Collect from every host; `inventory_dir` is the city's inventory folder when the inventory
    was generated elsewhere (relative paths of the inventory resolve there); `resolved` the
    inventory as resolve_inventory gave it, when the caller already read it; `env` the environment
    of the per-host check processes (default: this process's), which the audit adds its own
    variables to; `scan` False skips the independent scanners (their evidence says so)."""
    inventory = inventory.resolve()
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    tests = tests or checks_dir()
    resolved = resolved or resolve_inventory(inventory, limit)
    hostvars = resolved["_meta"]["hostvars"]
    # testinfra multiplexes SSH hosts over one connection each only when the folder of the
    # control_path ansible.cfg sets exists (Ansible makes it on its first SSH run; a fresh
    # controller may audit before any).
    (Path.home() / ".ansible" / "cp").mkdir(mode=0o700, parents=True, exist_ok=True)
    started = _now()
    progress = progress or Progress(len(hostvars))
    workers = max(1, min(workers or 8, len(hostvars)))
    hosts: list[HostResult] = []
    # The per-host processes read the resolved inventory from a private file (it can hold the
    # vault's values), removed when the audit ends.
    with tempfile.TemporaryDirectory(prefix="cityward-audit-") as private, \
            ThreadPoolExecutor(max_workers=workers) as pool:
        resolved_file = Path(private) / "inventory.json"
        resolved_file.touch(mode=0o600)
        resolved_file.write_text(json.dumps(resolved), encoding="utf-8")
        futures = {pool.submit(audit_host, name, inventory, out_dir, tests, resolved, resolved_file,
                               inventory_dir and inventory_dir.resolve(), env,
                               EVIDENCE if scan else WITHOUT_SCANNERS): name
                   for name in sorted(hostvars)}
        for future in as_completed(futures):
            host = future.result()
            hosts.append(host)
            progress.host_done(host)
    hosts.sort(key=lambda h: h.name)
    run = AuditRun(inventory=str(inventory), started=started, finished=_now(), hosts=hosts,
                   cityward_version=__version__)
    return run
