"""cityward run the way AWX runs it: ansible-runner with process isolation in Podman, in the
execution environment `cityward lab ee` builds (tagged localhost/cityward-ee:<version>), against
cw-baseline-trixie of molecule/baseline (only the kernel and baseline roles applied so far) over
SSH as the documented automation account. site.yml runs in check mode first, then for real, then
the audit playbook; each run is judged by ansible-runner's artifacts, as AWX judges a job.

Each run has the private data dir AWX hands ansible-runner for a job: the machine credential's
key as env/ssh_key (runner loads it into an ssh-agent inside the EE), the project (a city's repo
with the playbooks and ansible.cfg of awx/city-repo, and the zones policy) and an inventory made of
the lab's group_vars and records and one device record. The lab keeps its secrets in a fully
encrypted vars file, so the vault password comes as a file named by ANSIBLE_VAULT_PASSWORD_FILE
(in AWX, a credential type with a file injector): cityward check and cityward audit read the
inventory again in their own processes, which a password answered at ansible-playbook's prompt
never reaches.

After this module the target is hardened as a field device (as molecule/baseline declares it): its
firewall admits SSH from the EE's address and from this machine (the scenario network's gateway).
CITYWARD_EE_TARGET names another container to run it against (a fresh one from
localhost/cityward-debian:trixie, with NET_ADMIN and systemd, while working on this file). The
seconds each step took are written to ~/.cache/cityward/ee/proof-timings.json (docs/awx-ee.md).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from lab_secrets import lab_secret_values, leaks

from cityward.lab.automation import automation_key, grant_automation, ssh_vars
from cityward.lab.ee import build_ee
from cityward.lab.podman import podman
from cityward.paths import cache_dir
from cityward.resources import podman_env

PROJECT = Path(__file__).resolve().parents[2]
LAB = PROJECT / "inventories" / "lab"
TARGET = os.environ.get("CITYWARD_EE_TARGET", "cw-baseline-trixie")
# The lab device whose record the target takes (a Debian 13 one, with no redundancy partner).
RECORD = "historian-01"
RUN_TIMEOUT = 1200

pytestmark = pytest.mark.skipif(
    os.environ.get("MOLECULE_SCENARIO_NAME") != "baseline" and "CITYWARD_EE_TARGET" not in os.environ,
    reason="needs molecule/baseline's cw-baseline-trixie (or a container named by CITYWARD_EE_TARGET)")


def _address(container: str) -> tuple[str, str]:
    """(network, address) of a running container."""
    networks = json.loads(podman("inspect", container).stdout)[0]["NetworkSettings"]["Networks"]
    name, settings = next((n, s) for n, s in sorted(networks.items()) if s.get("IPAddress"))
    return name, settings["IPAddress"]


def _addresses(network: str) -> tuple[str, str]:
    """(gateway, EE address) on the network. The gateway is this machine, the operator's, as in the
    lab. The EE's is the highest address no container holds, the same in every run, so that the
    target's firewall and sshd can admit it by address, as they admit an AWX execution node."""
    subnet = json.loads(podman("network", "inspect", network).stdout)[0]["subnets"][0]
    ids = podman("ps", "-aq").stdout.decode().split()
    taken = {subnet["gateway"]}
    for info in json.loads(podman("inspect", *ids).stdout) if ids else []:
        taken |= {s.get("IPAddress") for s in info["NetworkSettings"]["Networks"].values()}
    hosts = list(ipaddress.ip_network(subnet["subnet"]).hosts())[-256:]
    return subnet["gateway"], next(str(a) for a in reversed(hosts) if str(a) not in taken)


def _private_data_dir(folder: Path, key: Path, target_ip: str, ee_ip: str, gateway: str) -> Path:
    """A private data dir for one run, as AWX makes one per job (everything secret in it 0600)."""
    for sub in ("env", "inventory"):
        (folder / sub).mkdir(parents=True, mode=0o700)
    secret = {"ssh_key": key.read_text(encoding="ascii"),
              "vault_password": (LAB / "vault-password.txt").read_text(encoding="utf-8")}
    for name, text in secret.items():
        path = folder / "env" / name
        path.touch(mode=0o600)
        path.write_text(text, encoding="utf-8")
    # The job's inventory is written for it, not a git checkout: site.yml's change gate (CW-GOV-10)
    # lets the apply go ahead with a reason, as a city's job template would set one.
    (folder / "env" / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_VAULT_PASSWORD_FILE": "/runner/env/vault_password",
        "CITYWARD_CHANGE_OVERRIDE": "AWX proof: each job's inventory is written for it, not a git checkout"}),
        encoding="utf-8")

    # The project AWX checks out: a city's repo, with the playbooks and ansible.cfg of awx/city-repo
    # (and here the lab's zones policy, which a city keeps in its repo too).
    project = folder / "project"
    shutil.copytree(PROJECT / "awx" / "city-repo", project)
    (project / "policies").mkdir()
    shutil.copy(PROJECT / "policies" / "zones.yml", project / "policies" / "zones.yml")

    inventory = folder / "inventory"
    shutil.copytree(LAB / "group_vars", inventory / "group_vars")
    shutil.copytree(LAB / "records", inventory / "records")
    record = yaml.safe_load((LAB / "host_vars" / f"{RECORD}.yml").read_text(encoding="utf-8"))
    lab_vars = yaml.safe_load((LAB / "hosts.yml").read_text(encoding="utf-8"))["all"]["vars"]
    host = {
        "ansible_host": target_ip,
        "ansible_python_interpreter": lab_vars["ansible_python_interpreter"],
        **ssh_vars(key, [ee_ip], known_hosts="/runner/known_hosts"),
        # A field device, as molecule/baseline declares it (its later checks expect one).
        "cityward_zone": "field",
        "kernel_field_device": True,
        # SSH stays open, once the firewall is loaded, from the EE (this city's management host) and
        # from the operator's machine (the scenario's own checks that follow probe sshd from there).
        "cityward_management_sources": [ee_ip, gateway],
        "cityward_zones_file": "../project/policies/zones.yml",
        **record,
    }
    hosts = {"all": {"children": {"field_devices": {"hosts": {TARGET: host}}}}}
    (inventory / "hosts.yml").write_text("---\n" + yaml.safe_dump(hosts, sort_keys=False), encoding="utf-8")
    return folder


class Run:
    """One ansible-runner run, judged by its artifacts."""

    def __init__(self, folder: Path, ident: str, seconds: float, exit_code: int, output: str):
        self.folder = folder
        self.artifacts = folder / "artifacts" / ident
        self.seconds, self.exit, self.output = seconds, exit_code, output

    @property
    def status(self) -> str:
        path = self.artifacts / "status"
        return path.read_text(encoding="utf-8").strip() if path.is_file() else f"none (runner exited {self.exit})"

    @property
    def rc(self) -> int | None:
        path = self.artifacts / "rc"
        return int(path.read_text(encoding="utf-8")) if path.is_file() else None

    @property
    def command(self) -> list[str]:
        """The command ansible-runner ran (podman run ... ansible-playbook ...)."""
        return json.loads((self.artifacts / "command").read_text(encoding="utf-8"))["command"]

    def events(self) -> list[dict]:
        paths = sorted((self.artifacts / "job_events").glob("*.json"))
        return [json.loads(p.read_text(encoding="utf-8")) for p in paths]

    def stats(self) -> dict:
        return next(e["event_data"] for e in self.events() if e["event"] == "playbook_on_stats")

    def describe(self) -> str:
        tail = "\n".join(self.output.splitlines()[-40:])
        return f"{self.artifacts.name}: status {self.status}, rc {self.rc}\n{tail}"


def _run(folder: Path, ident: str, playbook: str, image: str, network: str, ee_ip: str, cmdline: str = "") -> Run:
    """`ansible-runner run` with the EE as its container, as AWX starts one for a job: as root in
    the container (`--user=root`, AWX's option; rootless Podman maps it to AWX's own user), here
    on the target's network at the EE's fixed address."""
    cmd = [sys.executable, "-m", "ansible_runner", "run", str(folder), "--ident", ident, "-p", playbook,
           "--process-isolation", "--process-isolation-executable", "podman", "--container-image", image,
           f"--container-option=--network={network}", f"--container-option=--ip={ee_ip}",
           "--container-option=--user=root"]
    if cmdline:
        cmd += ["--cmdline", cmdline]
    started = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, env=podman_env(), timeout=RUN_TIMEOUT, check=False)
    return Run(folder, ident, time.monotonic() - started, result.returncode, result.stdout + result.stderr)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Build (or reuse) the EE, grant the automation account on the target, then run site.yml in
    check mode, site.yml, and the audit playbook, each with a private data dir of its own (a job's,
    in AWX); all of them (keys, vault password) are removed afterwards."""
    timings = {}
    started = time.monotonic()
    ee = build_ee()
    timings["ee_image"] = {"seconds": round(time.monotonic() - started, 1), "built": ee["built"]}
    network, target_ip = _address(TARGET)
    gateway, ee_ip = _addresses(network)
    base = tmp_path_factory.mktemp("cw-ee-runner")
    try:
        key = automation_key(base / "keys", "cityward-ee-proof")
        grant_automation(TARGET, key)
        done = {"image": ee["image"], "ee_ip": ee_ip, "runs": {}}
        for ident, playbook, cmdline in (("cw-ee-check", "cityward-site.yml", "--check --diff"),
                                         ("cw-ee-apply", "cityward-site.yml", ""),
                                         ("cw-ee-audit", "cityward-audit.yml", "")):
            folder = _private_data_dir(base / ident, key, target_ip, ee_ip, gateway)
            # The change records outlive each job, as on the persistent volume a city gives them
            # under AWX (docs/change-records.md): the apply finds the check run's, the audit the apply's.
            if done["runs"]:
                kept = next(reversed(done["runs"].values())).folder / "inventory" / "records" / "changes"
                if kept.is_dir():
                    shutil.copytree(kept, folder / "inventory" / "records" / "changes")
            run = _run(folder, ident, playbook, ee["image"], network, ee_ip, cmdline)
            done["runs"][ident] = run
            timings[ident] = round(run.seconds, 1)
        (cache_dir() / "ee").mkdir(parents=True, exist_ok=True)
        (cache_dir() / "ee" / "proof-timings.json").write_text(json.dumps(timings, indent=2), encoding="utf-8")
        yield done
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _host_stats(run: Run) -> dict:
    stats = run.stats()
    return {kind: stats.get(kind, {}).get(TARGET, 0) for kind in ("ok", "changed", "failures", "dark", "skipped")}


def test_the_image_has_the_execution_environment_layout(runs):
    config = json.loads(podman("image", "inspect", runs["image"]).stdout)[0]["Config"]
    assert config["User"] == "1000" and config["WorkingDir"] == "/runner"
    assert config["Entrypoint"] == ["/usr/bin/dumb-init"]
    assert config["Labels"]["ansible-execution-environment"] == "true"
    # Its own user (not root) runs Ansible, ansible-runner and cityward, with a writable home.
    out = podman("run", "--rm", "--name", f"cw-ee-layout-{os.getpid()}", "--network", "none", runs["image"],
                 "sh", "-ec", "id -u; touch $HOME/probe; ansible-runner --version; python -m cityward --version; "
                 "ansible-galaxy collection list cityward.hardening").stdout.decode()
    assert out.splitlines()[0] == "1000"
    assert "cityward.hardening" in out and "cityward " in out


def test_check_run_in_the_ee_fails_nothing(runs):
    run = runs["runs"]["cw-ee-check"]
    assert run.status == "successful" and run.rc == 0, run.describe()
    # Run in the EE's container, with the playbook in check mode.
    assert runs["image"] in run.command and "--check" in run.command[-1].split()
    stats = _host_stats(run)
    assert stats["ok"] > 0 and stats["failures"] == 0 and stats["dark"] == 0, (stats, run.describe())
    assert (run.artifacts / "job_events").is_dir() and len(run.events()) > 10


def test_apply_in_the_ee_hardens_the_host(runs):
    run = runs["runs"]["cw-ee-apply"]
    assert run.status == "successful" and run.rc == 0, run.describe()
    assert runs["image"] in run.command and "--check" not in run.command[-1].split()
    stats = _host_stats(run)
    assert stats["changed"] > 0 and stats["failures"] == 0 and stats["dark"] == 0, (stats, run.describe())
    assert any(e["event"] == "runner_on_ok" and e["event_data"].get("host") == TARGET for e in run.events())


@pytest.mark.control("CW-GOV-06")
def test_audit_in_the_ee_publishes_a_passing_verdict_and_the_evidence(runs):
    """After the apply, the audit run from a new EE container (the same address) reaches the host
    through its firewall, passes, and hands its verdict to runner's artifacts; the SBOM it wrote
    is CycloneDX 1.5 and lists the host's packages."""
    run = runs["runs"]["cw-ee-audit"]
    assert run.status == "successful" and run.rc == 0, run.describe()
    stats = run.stats()
    assert stats.get("failures", {}).get("localhost", 0) == 0
    verdict = stats["artifact_data"]["cityward_audit"]
    assert verdict["verdict"] == "pass" and verdict["rc"] == 0, verdict
    assert verdict["passed_hosts"] == [TARGET] and verdict["failed_hosts"] == [], verdict
    assert verdict["hosts"][TARGET]["reachable"] and verdict["summary"]["mandatory_failures"] == 0
    assert verdict["summary"]["checks"]["passed"] > 20, verdict["summary"]
    # The evidence was written inside the EE under its home, /runner: the private data dir here.
    out = run.folder / Path(verdict["report"]).parent.relative_to("/runner")
    sbom = json.loads((out / "sbom" / f"{TARGET}.cdx.json").read_text(encoding="utf-8"))
    assert sbom["specVersion"] == "1.5" and len(sbom["components"]) > 100


@pytest.mark.control("CW-GOV-07")
def test_audit_in_the_ee_runs_both_scanners_and_leaves_nothing_on_the_host(runs):
    """The EE carries both independent scanners: ssh-audit (requirements.txt) scans the host's sshd
    from the EE, and Lynis, taken from the EE's own lynis package (bindep.txt), is copied to the
    host for the run and removed after; CW-GOV-07 passes on the host."""
    run = runs["runs"]["cw-ee-audit"]
    verdict = run.stats()["artifact_data"]["cityward_audit"]
    out = run.folder / Path(verdict["report"]).parent.relative_to("/runner")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    cell = report["aggregate"]["controls"]["CW-GOV-07"]["hosts"][TARGET]
    assert cell["status"] == "passed", cell
    evidence = json.loads((out / "scanners" / f"{TARGET}.json").read_text(encoding="utf-8"))
    scanners = {scanner["name"]: scanner for scanner in evidence["scanners"]}
    assert {name: (s["status"], s["error"]) for name, s in scanners.items()} == {
        "ssh-audit": ("ran", ""), "lynis": ("ran", "")}, scanners
    assert scanners["ssh-audit"]["version"] == "2.5.0"
    lynis = scanners["lynis"]
    # The lab EE is Debian 12: Lynis comes from its installed package, not from a downloaded one.
    assert lynis["summary"]["source"] == "/usr/sbin/lynis" and lynis["summary"]["package"].startswith("3.0.8-"), lynis
    assert lynis["leftover"] == [] and lynis["summary"]["hardening_index"] > 0


@pytest.mark.control("CW-RES-08")
def test_runner_output_and_artifacts_hold_no_secret(runs):
    """Neither what ansible-runner printed nor its artifacts (events, stdout, the EE's env list)
    show a lab secret, the vault password or a private key."""
    secrets = {**lab_secret_values(), "the vault password": (LAB / "vault-password.txt").read_text().strip()}
    for ident, run in runs["runs"].items():
        texts = {"output": run.output, **{str(p.relative_to(run.artifacts)): p.read_text(errors="replace")
                                          for p in run.artifacts.rglob("*") if p.is_file()}}
        found = {name: what for name, text in texts.items() if (what := leaks(text, secrets))}
        assert not found, f"{ident}: {found}"
