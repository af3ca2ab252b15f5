"""A city adopts cityward as a Python package (issue 17, item 4): the wheel built from this checkout,
installed with pip into a fresh virtualenv outside it, and every command run from a folder outside
the checkout with that virtualenv's own executables only (PATH is its bin and the system's; nothing
of the checkout's .venv, no PYTHONPATH, no Ansible settings).

Installing costs minutes (ansible's thousands of files, the `cloud` extra's Pulumi), so the
virtualenvs are kept in cityward's cache, named by a hash of what the wheel holds: a re-run with the
same source reuses them, a changed source (or a clean machine) pays the install once. Two of them: `pip install
"cityward[cloud]"`, and `pip install cityward` without the extra, where `cityward cloud plan` must
say in one line what to install.

The audit runs against this scenario's hosts, which have the OS baseline of its converge and
whatever the adoption proofs before this one applied (test_collection.py: access and segmentation on
cw-baseline-bookworm; test_ee.py: site.yml on cw-baseline-trixie). The inventory is Molecule's: no
device metadata, no zones, no vault. So what it proves is that the audit runs on it (saying in one
line that it gives no zones policy), that the kernel and baseline controls pass on both hosts, that
every check ran to a verdict (none crashed: outcome "error"), that the metadata control CW-GOV-01
fails on both for want of a device record, and that the exit code says whether a mandatory control
failed. The other areas' verdicts depend on those earlier proofs, and are not asserted here.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lab_secrets import lab_secret_values, leaks

import cityward.checks.fixtures as fixtures
from cityward.lab.ee import build_wheel, wheel_digest
from cityward.paths import cache_dir

# tests/scenarios holds every scenario's modules: this one proves something about molecule/baseline's hosts.
pytestmark = pytest.mark.skipif(os.environ.get("MOLECULE_SCENARIO_NAME") != "baseline",
                                reason="not applicable: runs in molecule/baseline only")

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab"
STACK = ROOT / "stacks" / "segmented_network"
VENVS = cache_dir() / "wheel-venvs"
KEEP = 2  # wheels whose virtualenvs stay cached (this one and the one before: two checkouts on one machine)
BASELINE_AREAS = ("CW-KRN-", "CW-BASE-")
INSTALLED = "cityward-installed"

inventory_path = fixtures.inventory_path  # the Molecule inventory this scenario's hosts come from


def _clean_env(**extra: str) -> dict[str, str]:
    """This machine's settings (home, locale, pip's index, Podman's configuration) and nothing else."""
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "CONTAINERS_CONF") or k.startswith("PIP_")}
    return {**env, "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", **extra}


def _prune(current: str) -> None:
    """Keep the virtualenvs of this wheel and of the one used last before it; remove the others."""
    last_used: dict[str, float] = {}
    for marker in VENVS.glob(f"*/{INSTALLED}"):
        digest = marker.parent.name.split("-")[0]
        last_used[digest] = max(last_used.get(digest, 0.0), marker.stat().st_mtime)
    keep = {current, *sorted(last_used, key=last_used.__getitem__, reverse=True)[:KEEP]}
    for entry in VENVS.iterdir():
        if entry.name.split("-")[0] not in keep:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _virtualenv(wheel: Path, digest: str, extra: str | None) -> Path:
    """A virtualenv in cityward's cache with `pip install wheel[extra]` done, made once per wheel
    content and flavour (a lock keeps two runs from making the same one at once)."""
    VENVS.mkdir(parents=True, exist_ok=True)
    name = f"{digest[:16]}-{extra or 'core'}"
    venv = VENVS / name
    with open(VENVS / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = venv / INSTALLED
        if not done.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_clean_env(), timeout=300)
            requirement = f"{wheel}[{extra}]" if extra else str(wheel)
            pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", requirement], capture_output=True,
                                 text=True, env=_clean_env(), timeout=1800, check=False)
            assert pip.returncode == 0, f"pip install {requirement}:\n{pip.stdout[-3000:]}\n{pip.stderr[-3000:]}"
            done.write_text(f"{wheel.name}\n")
        done.touch()  # last used
    return venv


@pytest.fixture(scope="module")
def venvs(tmp_path_factory) -> dict[str, Path]:
    wheel = build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))
    digest = wheel_digest(wheel)
    made = {"cloud": _virtualenv(wheel, digest, "cloud"), "core": _virtualenv(wheel, digest, None)}
    _prune(digest[:16])
    return made


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """The folder the commands run in, as a city's operator would: nothing of the checkout."""
    return tmp_path_factory.mktemp("city")


def _cityward(venv: Path, outside: Path, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "cityward"), *args], capture_output=True, text=True, cwd=outside,
                          env=_clean_env(PATH=f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", **env),
                          timeout=timeout, check=False)


def test_the_wheel_carries_the_package_the_collection_and_the_checks(venvs, outside):
    venv = venvs["cloud"]
    probe = ("import json, sysconfig, cityward, cityward.checks, cityward.resources as r; print(json.dumps("
             "[sysconfig.get_path('purelib'), cityward.__file__, str(r.checks_dir()), str(r.collection_root())]))")
    found = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, cwd=outside,
                           env=_clean_env(), timeout=120, check=True)
    site, package, checks, collection = (Path(p).resolve() for p in json.loads(found.stdout))
    assert site.is_relative_to(venv.resolve())
    assert package == site / "cityward" / "__init__.py"
    assert checks == site / "cityward" / "checks"
    assert collection == site / "ansible_collections" / "cityward" / "hardening"
    assert (collection / "MANIFEST.json").is_file() and (checks / "test_kernel.py").is_file()
    version = _cityward(venv, outside, "--version")
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert version.returncode == 0 and version.stdout.split() == ["cityward", galaxy["version"]], version.stdout


def test_controls_shows_the_installed_catalog(venvs, outside):
    result = _cityward(venvs["cloud"], outside, "controls", "--format", "json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    catalog = yaml.safe_load((ROOT / "policies" / "controls.yml").read_text())
    assert [c["id"] for c in shown["controls"]] == [c["id"] for c in catalog["controls"]]
    assert shown["coverage"] and all(row["controls"] for row in shown["coverage"])


@pytest.mark.control("CW-RES-04", "CW-RES-08")
def test_check_reads_the_lab_inventory_and_shows_no_secret(venvs, outside):
    result = _cityward(venvs["cloud"], outside, "check", "-i", str(LAB),
                       ANSIBLE_VAULT_PASSWORD_FILE=str(LAB / "vault-password.txt"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert not leaks(output, lab_secret_values())


def test_cloud_plan_of_the_segmented_network(venvs, outside):
    result = _cityward(venvs["cloud"], outside, "cloud", "plan", "--project", str(STACK), "--format", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    plan = json.loads(result.stdout)
    assert plan["summary"]["mandatoryViolations"] == 0 and plan["violations"] == []
    assert plan["summary"]["resources"] > 0


def test_cloud_plan_without_the_extra_says_what_to_install(venvs, outside):
    result = _cityward(venvs["core"], outside, "cloud", "plan", "--project", str(STACK))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'cityward[cloud]'" in lines[0], result.stderr


def test_audit_of_the_baseline_hosts_with_the_installed_checks(venvs, outside, inventory_path):
    out = outside / "audit"
    # Without the scanners: molecule/default proves them (CW-GOV-07); here they would add two minutes.
    result = _cityward(venvs["cloud"], outside, "audit", "-i", inventory_path, "--format", "json", "--out", str(out),
                       "--no-scanners", timeout=1200)
    metadata = [line for line in result.stderr.splitlines() if line.startswith("cityward audit: metadata: ")]
    assert len(metadata) == 1 and "no zones policy: set cityward_zones_file" in metadata[0], result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    hosts = {host["name"]: host for host in report["run"]["hosts"]}
    assert sorted(hosts) == ["cw-baseline-bookworm", "cw-baseline-trixie"], result.stdout + result.stderr
    crashed = {name: [c["nodeid"] for c in host["checks"] if c["outcome"] == "error"] for name, host in hosts.items()}
    assert all(host["reachable"] and host["checks"] for host in hosts.values()), result.stdout[-3000:]
    assert crashed == {name: [] for name in hosts}
    # The kernel and baseline controls pass on both hosts; USBGuard (CW-KRN-05) only applies to the
    # field device (cw-baseline-trixie), and the other host says so.
    controls = report["aggregate"]["controls"]
    cells = {(cid, name): cell for cid, body in controls.items() if cid.startswith(BASELINE_AREAS)
             for name, cell in body["hosts"].items()}
    assert len(cells) > 20
    assert {key: (cell["status"], cell["reason"]) for key, cell in cells.items() if cell["status"] != "passed"} == {
        ("CW-KRN-05", "cw-baseline-bookworm"):
            ("skipped", "not a field device (the kernel role applied no USBGuard): USBGuard does not apply")}
    gov = report["aggregate"]["controls"]["CW-GOV-01"]["hosts"]
    assert {name: (cell["status"], "field cityward_device: required field missing" in cell["reason"])
            for name, cell in gov.items()} == dict.fromkeys(hosts, ("failed", True))
    # The exit code is the verdict: 1 exactly when a mandatory control failed (or a host was unreachable).
    assert result.returncode == (1 if report["aggregate"]["summary"]["verdict"] == "fail" else 0)
