"""A city adopts cityward with Ansible alone (issue 17, item 1): the collection tarball, installed
with ansible-galaxy into a collections path of its own, applied by FQCN from the city's own folder
(an inventory and a short playbook, nothing of this checkout) to cw-baseline-bookworm, which has
only the OS baseline (kernel, baseline) of the scenario's converge.

The run can find no other copy of cityward.hardening: ANSIBLE_COLLECTIONS_PATH is the one
collections path, the Python path (where this checkout is linked in as the collection) is not
scanned, no ansible.cfg is read, and the play runs from a folder outside the checkout. Galaxy is
not reached: the dependencies galaxy.yml names are installed next to it from the copies the
`ansible` package ships, as a shop without Galaxy installs them from its own mirror.

The playbook applies accounts, mfa, ssh and firewall, and accepts its own changes into the AIDE
baseline the scenario's baseline role built (without that, the daily integrity check and the audit
would report the run's authorised changes as tampering). MFA is on, with a throwaway TOTP seed in
the inventory: the ssh role's default asks for the key and then a TOTP code through PAM, which only
the mfa role's PAM stack answers, and that is what a city runs (cityward_mfa: false would prove a
path cities should not take). kernel and baseline are already on the host. docs/adopt.md shows the
same inventory and playbook.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path
from string import Template

import pyotp
import pytest
import yaml
from firewall_lab import recap
from lab_secrets import leaks
from managed_state import checksums

from cityward.lab.podman import podman

# tests/scenarios holds every scenario's modules: this one proves something about molecule/baseline's hosts.
pytestmark = pytest.mark.skipif(os.environ.get("MOLECULE_SCENARIO_NAME") != "baseline",
                                reason="not applicable: runs in molecule/baseline only")

# The host of the Molecule inventory this module runs against (testinfra's own parametrisation).
testinfra_hosts = ["cw-baseline-bookworm"]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CITY_HOST = "scada-01"

# The city's two files, as docs/adopt.md shows them. Secrets: throwaway ones made by the test; a
# city keeps them in ansible-vault.
INVENTORY = Template("""\
---
all:
  vars:
    # The version of cityward's variables this inventory is written for.
    cityward_inventory_schema: 2
    ansible_connection: containers.podman.podman
    ansible_python_interpreter: /usr/bin/python3
    # Operators log in with their key and a TOTP code; break-glass works on the console only.
    cityward_operators:
      - name: alice
        ssh_keys: ["$alice_key"]
    cityward_totp_secrets:
      alice: $alice_seed
    cityward_breakglass_password_hash: '$breakglass_hash'
    # SSH from the management zone is always allowed; this adds the machine that audits the city.
    cityward_management_sources: [$auditor]
    # The zones policy travels with the inventory.
    cityward_zones:
      version: 1
      zones:
        management: {kind: management, cidr: 10.40.32.0/20}
        ot-operations: {kind: ot, cidr: 10.40.64.0/20}
        field: {kind: ot, cidr: 10.40.80.0/20}
      conduits:
        - {from: management, to: ot-operations, protocol: tcp, port: 22, service: ssh, purpose: Operators and Ansible}
        - {from: ot-operations, to: field, protocol: tcp, port: 502, service: modbus-tcp, purpose: SCADA polls the PLCs}
        - {from: field, to: ot-operations, protocol: tcp, port: 8883, service: mqtt-tls, purpose: Gateways publish data}
  children:
    ot_servers:
      hosts:
        scada-01:
          ansible_host: $container
          cityward_zone: ot-operations
""")

PLAYBOOK = """\
---
- name: Harden access to the OT servers and segment them
  hosts: ot_servers
  become: true
  gather_facts: false
  force_handlers: true
  roles:
    - cityward.hardening.accounts
    - cityward.hardening.mfa
    - cityward.hardening.ssh
    - cityward.hardening.firewall
  post_tasks:
    - name: Accept this authorised run into the AIDE baseline
      ansible.builtin.include_role:
        name: cityward.hardening.baseline
        tasks_from: aide_accept
"""


def _gateway(container: str) -> str:
    """The address this machine has on the container's network: where the audit's SSH probes come from."""
    networks = json.loads(podman("inspect", container).stdout)[0]["NetworkSettings"]["Networks"]
    return next(network["Gateway"] for network in networks.values() if network.get("Gateway"))


class City:
    """The city's own folder (inventory.yml, harden.yml) and the collections path it installed into."""

    def __init__(self, folder: Path, collections: Path, container: str):
        self.folder, self.collections, self.container = folder, collections, container
        self.secrets: dict[str, str] = {}  # what no run may print (tests/lab_secrets.leaks)
        # Nothing of Molecule's or this checkout's Ansible settings: a clean environment, Ansible
        # (and pydantic, which the collection's filters import) from the controller's Python.
        keep = {k: os.environ[k] for k in ("HOME", "LANG", "CONTAINERS_CONF") if k in os.environ}
        self.env = {**keep, "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                    # a folder without ansible.cfg: no config file is read (the cwd has none either)
                    "ANSIBLE_CONFIG": str(folder), "ANSIBLE_COLLECTIONS_PATH": str(collections),
                    "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}

    def command(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd=self.folder, timeout=timeout,
                              check=False)

    def play(self, *args: str, inventory: str = "inventory.yml") -> tuple[subprocess.CompletedProcess, str]:
        result = self.command(str(BIN / "ansible-playbook"), "-i", inventory, "harden.yml", *args, timeout=900)
        output = result.stdout + result.stderr
        assert not leaks(output, self.secrets), f"the run printed {leaks(output, self.secrets)}"
        return result, output

    def variant(self, name: str, change) -> str:
        """A copy of the inventory with `change(data)` applied; its file name."""
        data = yaml.safe_load((self.folder / "inventory.yml").read_text())
        change(data)
        (self.folder / name).write_text(yaml.safe_dump(data, sort_keys=False))
        return name


@pytest.fixture(scope="module")
def city(tmp_path_factory, container) -> City:
    work = tmp_path_factory.mktemp("adopt-collection")
    collections, folder, operator = work / "collections", work / "city", work / "operator"
    folder.mkdir()
    operator.mkdir(mode=0o700)
    city = City(folder, collections, container)

    # The release: the tarball `ansible-galaxy collection build` makes in the checkout.
    built = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work)],
                           capture_output=True, text=True, cwd=ROOT, env=city.env, timeout=300, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = work.glob("cityward-hardening-*.tar.gz")
    # Offline: its dependencies from the copies the `ansible` package ships, in the same command.
    shipped = distribution("ansible")
    deps = [str(shipped.locate_file(f"ansible_collections/{name}")) for name in ("ansible/posix", "containers/podman")]
    installed = city.command(str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections),
                             str(tarball), *deps, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (collections / "ansible_collections/cityward/hardening/MANIFEST.json").is_file()

    # The operator's key (kept on the operator's machine, 0600) and the vaulted secrets.
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@city", "-f", str(operator / "alice")],
                   check=True, timeout=60)
    password = secrets.token_urlsafe(18)
    hashed = subprocess.run(["mkpasswd", "-m", "yescrypt", "-s"], input=password, capture_output=True, text=True,
                            check=True, timeout=60).stdout.strip()
    seed = pyotp.random_base32()
    city.secrets.update({"break-glass password": password, "break-glass hash": hashed, "TOTP seed": seed})
    (folder / "inventory.yml").write_text(INVENTORY.substitute(
        alice_key=(operator / "alice.pub").read_text().strip(), alice_seed=seed, breakglass_hash=hashed,
        container=container, auditor=_gateway(container)))
    (folder / "harden.yml").write_text(PLAYBOOK)
    return city


def test_the_run_reads_only_the_installed_collection(city):
    """cityward.hardening and its dependencies are found in the one collections path, and no
    ansible.cfg is read."""
    listed = city.command(str(BIN / "ansible-galaxy"), "collection", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    where = {name: path for path, found in json.loads(listed.stdout).items() for name in found}
    ours = str(city.collections / "ansible_collections")
    assert {name: where.get(name) for name in ("cityward.hardening", "ansible.posix", "containers.podman")} == \
        dict.fromkeys(("cityward.hardening", "ansible.posix", "containers.podman"), ours)
    version = city.command(str(BIN / "ansible-playbook"), "--version")
    assert "config file = None" in version.stdout, version.stdout


# (what the inventory gets wrong, the preflight task that refuses it, the one line it says)
BAD_INPUT = [
    ("no-zones", lambda data: data["all"]["vars"].pop("cityward_zones"),
     "CW-FW-01 | PREFLIGHT | The zones policy and the host's zone",
     "CW-FW-01 refused the zones policy: no zones policy: set cityward_zones_file (the path of the zones policy YAML, "
     "absolute or relative to the inventory folder) or cityward_zones (the policy itself) in the inventory"),
    ("unknown-zone", lambda data: data["all"]["children"]["ot_servers"]["hosts"][CITY_HOST].update(cityward_zone="dmz"),
     "CW-FW-01 | PREFLIGHT | The zones policy and the host's zone",
     f"{CITY_HOST}: cityward_zone: zone 'dmz' is not in the zones policy (known: field, management, ot-operations)"),
    ("newer-schema", lambda data: data["all"]["vars"].update(cityward_inventory_schema=3),
     "CW-RES-04 | PREFLIGHT | The inventory is written for a schema this collection reads",
     f"{CITY_HOST}: cityward_inventory_schema: the inventory is written for schema 3, newer than this "
     "cityward.hardening reads (schema 2 to 2): upgrade the collection"),
]


@pytest.mark.control("CW-RES-04", "CW-FW-01")
@pytest.mark.parametrize(("name", "change", "task", "line"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_stops_before_the_host_is_touched(city, name, change, task, line):
    """The same playbook, with an inventory the collection refuses: the installed collection's
    preflight stops it with one line, before the first role's first task; no file on the host changes."""
    before = checksums(city.container)
    result, output = city.play(inventory=city.variant(f"{name}.yml", change))
    assert result.returncode != 0
    fatal = [row for row in output.splitlines() if row.startswith(f"fatal: [{CITY_HOST}]")]
    assert len(fatal) == 1 and line in fatal[0], output[-3000:]
    assert output.rsplit("TASK [", 1)[-1].startswith(f"cityward.hardening.preflight : {task}")
    assert f"Origin: {city.collections}/ansible_collections/cityward/hardening/roles/preflight/" in output
    assert "Traceback" not in output
    assert recap(result, CITY_HOST)["changed"] == 0
    assert checksums(city.container) == before


def test_check_diff_predicts_the_hardening_and_changes_nothing(city):
    before = checksums(city.container)
    result, output = city.play("--check", "--diff")
    counts = recap(result, CITY_HOST)
    assert result.returncode == 0 and counts["failed"] == 0, output[-3000:]
    assert counts["changed"] > 0
    assert "+AuthenticationMethods publickey,keyboard-interactive" in output
    assert "+table inet cityward {" in output
    assert checksums(city.container) == before


@pytest.mark.control("CW-SSH-01", "CW-MFA-01", "CW-FW-02")
def test_the_city_playbook_hardens_ssh_and_segments_the_host(city, host):
    result, output = city.play()
    counts = recap(result, CITY_HOST)
    assert result.returncode == 0 and counts["failed"] == counts["unreachable"] == 0, output[-3000:]
    assert counts["changed"] > 0
    sshd = dict(line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line)
    assert {k: sshd.get(k) for k in ("permitrootlogin", "passwordauthentication", "authenticationmethods",
                                     "allowgroups", "denyusers")} == {
        "permitrootlogin": "no", "passwordauthentication": "no",
        "authenticationmethods": "publickey,keyboard-interactive", "allowgroups": "cityward-ssh",
        "denyusers": "breakglass"}
    assert "cityward-ssh" in host.user("alice").groups
    seed = host.file("/var/lib/cityward/totp/alice")
    assert (seed.user, seed.mode) == ("root", 0o600)
    ruleset = host.check_output("nft list ruleset")
    assert "table inet cityward {" in ruleset
    assert 'ip saddr 10.40.80.0/20 tcp dport 8883 accept comment "field->ot-operations:tcp/8883 mqtt-tls"' in ruleset
    assert "type filter hook input priority filter; policy drop;" in ruleset


def test_a_second_run_changes_nothing(city):
    result, output = city.play()
    counts = recap(result, CITY_HOST)
    assert result.returncode == 0 and counts["failed"] == 0, output[-3000:]
    assert counts["changed"] == 0, output[-5000:]
