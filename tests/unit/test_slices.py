"""cityward.slices and the slicing contract (docs/awx-slicing.md), on this machine.

The slices are AWX's (hosts sorted by name, every N-th; every group and variable kept, only the
slice's hosts), run in parallel by ansible-runner over localhost with a local connection; a slice of
a real city passes `cityward check` only as a slice of that city; and the playbooks whose steps span
the whole inventory refuse a sliced run in one line before any host is touched."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from cityward.errors import CitywardError
from cityward.inventory import list_inventory
from cityward.slices import build_slices, host_stats, run_slices, slice_hosts, write_inventory

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab"
EXAMPLE = ROOT / "inventories" / "example-city"
PLAYBOOK_BIN = Path(sys.executable).parent / "ansible-playbook"


def test_slices_are_every_nth_host_in_name_order():
    hosts = ["gw-2", "scada-1", "gw-1", "hist-1", "mgmt-1", "siem-1", "gw-3"]
    assert slice_hosts(hosts, 3) == [["gw-1", "hist-1", "siem-1"], ["gw-2", "mgmt-1"], ["gw-3", "scada-1"]]
    for count in range(1, 10):
        slices = slice_hosts(reversed(hosts), count)
        assert len(slices) == min(count, len(hosts))  # never an empty slice: AWX caps the count at the hosts
        assert sorted(h for s in slices for h in s) == sorted(hosts)  # disjoint, and every host once
        assert max(map(len, slices)) - min(map(len, slices)) <= 1
        assert [s[0] for s in slices] == sorted(hosts)[:len(slices)]


@pytest.mark.parametrize("count", [0, -1, 2.0, "2", True])
def test_a_bad_slice_count_is_refused_in_one_line(count):
    with pytest.raises(CitywardError, match="slice count must be a whole number, 1 or more"):
        slice_hosts(["a", "b"], count)


def test_no_hosts_is_refused():
    with pytest.raises(CitywardError, match="no hosts to slice"):
        build_slices({"_meta": {"hostvars": {}}, "all": {"children": ["ungrouped"]}}, 2)


# `ansible-inventory --list --export` of a small city: variables stay on their groups.
LISTING = {
    "_meta": {"hostvars": {"gw-1": {"cityward_zone": "field"}, "gw-2": {"cityward_zone": "field"},
                           "scada-1": {"cityward_zone": "ot-operations"}, "laptop": {"note": "ungrouped"}},
              "profile": "inventory_legacy"},
    "all": {"children": ["ungrouped", "ot", "gateways", "servers"], "vars": {"city": "Riverton"}},
    "ungrouped": {"hosts": ["laptop"]},
    "ot": {"children": ["gateways", "servers"], "vars": {"zone_policy": "zones.yml"}},
    "gateways": {"hosts": ["gw-1", "gw-2"], "vars": {"broker": True}},
    "servers": {"hosts": ["scada-1"]},
}


def test_a_slice_keeps_every_group_and_variable_but_only_its_hosts():
    first, second = build_slices(LISTING, 2)
    assert first == {
        "ot": {"children": ["gateways", "servers"], "vars": {"zone_policy": "zones.yml"}},
        "gateways": {"hosts": ["gw-1"], "vars": {"broker": True}},
        "all": {"hosts": ["laptop"], "vars": {"city": "Riverton"}, "children": ["ot", "gateways", "servers"]},
        "_meta": {"profile": "inventory_legacy",
                  "hostvars": {"gw-1": {"cityward_zone": "field"}, "laptop": {"note": "ungrouped"}}},
    }
    assert second["gateways"] == {"hosts": ["gw-2"], "vars": {"broker": True}}
    assert second["servers"] == {"hosts": ["scada-1"]}
    assert second["all"]["hosts"] == []
    assert list(second["_meta"]["hostvars"]) == ["gw-2", "scada-1"]


def test_host_stats_are_the_recap_per_host():
    stats = {"ok": {"a": 3, "b": 1}, "changed": {"a": 1}, "dark": {"b": 1}, "failures": {}, "skipped": {"a": 2},
             "processed": {"a": 1, "b": 1}}
    assert host_stats(stats) == {
        "a": {"ok": 3, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 2, "rescued": 0, "ignored": 0},
        "b": {"ok": 1, "changed": 0, "unreachable": 1, "failed": 0, "skipped": 0, "rescued": 0, "ignored": 0},
    }
    assert host_stats(None) == {}


def test_the_inventory_script_is_private(tmp_path):
    path = write_inventory({"all": {"hosts": ["a"]}, "_meta": {"hostvars": {"a": {}}}}, tmp_path / "slice" / "inv")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


@pytest.fixture
def local_city(tmp_path, monkeypatch):
    """Three hosts on this machine (local connection), an inline-vaulted variable, a trivial play,
    and a temporary folder of their own, to see that run_slices leaves nothing behind."""
    city = tmp_path / "city"
    (city / "inventory" / "group_vars" / "all").mkdir(parents=True)
    (city / "vault-password").write_text("slice-test-password\n")
    vaulted = subprocess.run([str(PLAYBOOK_BIN.parent / "ansible-vault"), "encrypt_string", "--vault-password-file",
                              str(city / "vault-password"), "--name", "passphrase", "opened-in-each-slice"],
                             capture_output=True, text=True, check=True).stdout
    (city / "inventory" / "group_vars" / "all" / "vault.yml").write_text(vaulted)
    (city / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "children": {"field": {"hosts": {"gamma": {}, "alpha": {}}, "vars": {"zone": "field"}}},
        "hosts": {"beta": {}},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}))
    (city / "play.yml").write_text(yaml.safe_dump([{
        "name": "Record what each slice sees", "hosts": "all", "gather_facts": False, "tasks": [
            {"name": "Write the slice's view", "ansible.builtin.copy": {
                "dest": "{{ out }}/{{ inventory_hostname }}", "mode": "0600",
                "content": "{{ cityward_job_slices }} {{ groups['all'] | sort | join(',') }} {{ zone | default('-') }} "
                           "{{ passphrase }} {{ cityward_inventory_dir }}\n"}},
            {"name": "Fail where asked", "ansible.builtin.fail": {"msg": "failing {{ inventory_hostname }} on purpose"},
             "when": "inventory_hostname == fail_host"}]}]))
    (city / "out").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return city


def _run_local(city: Path, fail_host: str):
    return run_slices(city / "play.yml", city / "inventory", 2, project_dir=city,
                      extravars={"out": str(city / "out"), "fail_host": fail_host},
                      envvars={"ANSIBLE_VAULT_PASSWORD_FILE": str(city / "vault-password")})


def test_run_slices_runs_each_slice_apart_and_reports_each(local_city, tmp_path):
    first, second = _run_local(local_city, fail_host="beta")
    assert (first.number, first.count, first.hosts) == (1, 2, ["alpha", "gamma"])
    assert (second.number, second.count, second.hosts) == (2, 2, ["beta"])
    assert first.ok and (first.status, first.rc) == ("successful", 0)
    assert set(first.stats) == {"alpha", "gamma"} and first.changed == 2
    assert not second.ok and second.status == "failed" and second.rc != 0
    assert second.stats["beta"]["failed"] == 1 and second.stats["beta"]["changed"] == 1
    assert "failing beta on purpose" in second.output and "failing" not in first.output
    # Each slice saw only its hosts (groups['all']), with its group's variables, the contract's
    # variables and the vault-encrypted one opened at run time.
    where = str(local_city / "inventory")
    assert (local_city / "out" / "alpha").read_text() == f"2 alpha,gamma field opened-in-each-slice {where}\n"
    assert (local_city / "out" / "gamma").read_text() == f"2 alpha,gamma field opened-in-each-slice {where}\n"
    assert (local_city / "out" / "beta").read_text() == f"2 beta - opened-in-each-slice {where}\n"
    assert list((tmp_path / "tmp").iterdir()) == []  # the slices' inventories (and their secrets) are gone

    again = _run_local(local_city, fail_host="nobody")
    assert [(run.ok, run.changed) for run in again] == [(True, 0), (True, 0)]


def test_run_slices_refuses_a_bad_inventory_or_count(tmp_path):
    with pytest.raises(CitywardError, match="inventory not found"):
        run_slices("play.yml", tmp_path / "nowhere", 2)
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    a: {}\n")
    with pytest.raises(CitywardError, match="slice count must be a whole number"):
        run_slices("play.yml", tmp_path / "hosts.yml", 0)


@pytest.mark.control("CW-RES-04")
def test_a_slice_of_a_city_passes_cityward_check_only_as_a_slice_of_it(tmp_path):
    """A slice's inventory lives away from the city's folder and lacks the other slice's hosts:
    `cityward check` finds its zones policy and records only from --inventory-dir, and accepts a
    redundancy partner in the other slice only with --job-slices."""
    slices = build_slices(list_inventory(EXAMPLE, export=True), 2)
    assert sorted(h for s in slices for h in s["_meta"]["hostvars"]) == sorted(
        list_inventory(EXAMPLE)["_meta"]["hostvars"])
    script = write_inventory(slices[0], tmp_path / "slice-1")

    def check(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cityward", "check", "-i", str(script), *args],
                              capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)

    alone = check()
    assert alone.returncode == 2 and "cityward_zones_file" in alone.stderr and "is not a file" in alone.stderr
    unsliced = check("--inventory-dir", str(EXAMPLE))
    assert unsliced.returncode == 2
    assert "host atms-01, field cityward_device.redundancy: unknown host 'atms-02'" in unsliced.stderr
    sliced = check("--inventory-dir", str(EXAMPLE), "--job-slices", "2")
    assert sliced.returncode == 0, sliced.stderr
    assert f"ok: {len(slices[0]['_meta']['hostvars'])} hosts" in sliced.stdout
    bad = check("--job-slices", "two")
    assert bad.returncode == 2 and "expected a whole number of slices, 1 or more (got 'two')" in bad.stderr
    nowhere = check("--inventory-dir", str(tmp_path / "nowhere"), "--job-slices", "2")
    assert nowhere.returncode == 2 and "inventory folder not found" in nowhere.stderr


def _playbook(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_VAULT_PASSWORD_FILE": str(LAB / "vault-password.txt")}
    return subprocess.run([str(PLAYBOOK_BIN), "-i", str(LAB), str(ROOT / "playbooks" / name), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)


def _recap_hosts(output: str) -> set[str]:
    recap = output.rsplit("PLAY RECAP", 1)[-1]
    return {line.split()[0] for line in recap.splitlines() if " : ok=" in line}


@pytest.mark.control("CW-RES-04")
@pytest.mark.parametrize(("playbook", "why"), [
    ("patch.yml", "patch.yml installs updates in batches sized from every host it patches"),
    ("lab_pki.yml", "lab_pki.yml certifies every host of the inventory from one CA"),
    ("lab_siem.yml", "lab_siem.yml lets the SIEM accept the logs of every other host of the inventory"),
])
def test_a_cross_host_playbook_refuses_a_sliced_run_in_one_line(playbook, why):
    result = _playbook(playbook, "-e", "cityward_job_slices=2")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    errors = [line for line in output.splitlines() if line.startswith("[ERROR]")]
    assert len(errors) == 1, output
    assert f"Refused as one of 2 slices: {why}" in errors[0]
    assert "Run it as one job over the whole inventory" in errors[0]
    assert _recap_hosts(output) == {"localhost"}  # no host of the city was contacted
    assert "Traceback" not in output


@pytest.mark.control("CW-RES-04")
@pytest.mark.parametrize("slices", [[], ["-e", "cityward_job_slices=1"]])
def test_an_unsliced_run_of_a_cross_host_playbook_goes_on(slices, tmp_path):
    """The refusal is for slices only: unsliced (unset or 1), the check play of patch.yml passes.
    A dry run (the change gate refuses an apply without one), its change record kept out of the lab's."""
    result = _playbook("check.yml", "-e", "preflight_slices_refused='patch.yml spans the inventory'", *slices,
                       "-e", f"cityward_change_records_dir={tmp_path}", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Refused" not in result.stdout + result.stderr


@pytest.mark.control("CW-RES-04")
@pytest.mark.parametrize("value", ["two", "0"])
def test_a_slice_count_that_is_not_one_is_refused_before_any_host(value):
    result = _playbook("site.yml", "-e", f"cityward_job_slices={value}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"cityward_job_slices must be the number of slices the job runs as (1 or more, the job template's " \
           f"job_slice_count), not '{value}'" in output
    assert _recap_hosts(output) == {"localhost"}


@pytest.mark.control("CW-RES-04")
def test_the_slicer_sets_the_contract_so_patch_refuses_each_slice(monkeypatch):
    """run_slices tells every slice it is one (cityward_job_slices): both slices of patch.yml over
    the lab city stop in their first play, contacting none of the lab's hosts."""
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(LAB / "vault-password.txt"))  # read as AWX's sync would
    runs = run_slices(ROOT / "playbooks" / "patch.yml", LAB, 2, project_dir=ROOT,
                      envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    assert [len(run.hosts) for run in runs] == [4, 3]  # the lab's seven hosts, round-robin
    for run in runs:
        assert not run.ok
        assert set(run.stats) == {"localhost"} and run.stats["localhost"]["failed"] == 1
        assert "Refused as one of 2 slices: patch.yml installs updates" in run.output
