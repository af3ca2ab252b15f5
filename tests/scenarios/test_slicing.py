"""Job slicing on the converged hosts of molecule/default (issue 17, item 6; docs/awx-slicing.md).

site.yml run as two slices the way AWX runs a sliced job template (cityward.slices: hosts sorted by
name, one each here, each slice a pared-down inventory, both at once through ansible-runner) repairs
an operator's or an attacker's edits on both hosts and reaches the end state of the scenario's own
single-run converge; and each playbook whose steps span the whole inventory, run as slices, refuses
in one line and touches no host. That a sliced run changes nothing once the hosts are converged is
the scenario's own idempotence step: a slice is site.yml on a subset of the hosts, the tasks per
host are the same, so a second sliced run here would only repeat it (about 2.5 min of CI).

Molecule's verifier runs this file first (it sorts the test paths), so the checksums taken first
are those of the scenario's converge and idempotence run, and the read-only control checks that
follow verify the state the sliced runs leave; tests/faults (which change and stop the hosts) come
last, ordered so by their conftest.py.
"""

from __future__ import annotations

import os
import time

import pytest
from lab_secrets import lab_secret_values, leaks
from managed_state import FIRST, ROOT, SECOND, ansible_env, checksums, exec_in, molecule_inventory

from cityward.slices import run_slices

# tests/scenarios holds every scenario's modules: this one proves something about molecule/default's hosts.
pytestmark = pytest.mark.skipif(os.environ.get("MOLECULE_SCENARIO_NAME") != "default",
                                reason="not applicable: runs in molecule/default only")

HOSTS = (FIRST, SECOND)
# An operator's quick fix and an attacker's foothold, on every host: root logins in the sshd_config
# (first match wins in sshd), IP forwarding in the sysctl drop-in of the kernel role.
DRIFT = ("sed -i '1i PermitRootLogin yes' /etc/ssh/sshd_config && "
         "echo 'net.ipv4.ip_forward = 1' >> /etc/sysctl.d/60-cityward.conf")


@pytest.fixture(scope="module")
def converged():
    """The managed state after the scenario's own converge, before this module changes anything."""
    return {host: checksums(host) for host in HOSTS}


def _sliced(playbook: str, record_property):
    """`playbook` run as two slices; the seconds it took are reported with the scenario's results
    (tests/scenarios/conftest.py): what this proof adds to molecule/default."""
    start = time.monotonic()
    runs = run_slices(ROOT / "playbooks" / playbook, molecule_inventory(), 2, project_dir=ROOT,
                      envvars=ansible_env(), timeout=1500)
    record_property("seconds", round(time.monotonic() - start, 1))
    secrets = lab_secret_values()
    assert not {run.number: found for run in runs if (found := leaks(run.output, secrets))}
    return runs


def test_site_as_two_slices_repairs_drift_and_reaches_the_single_run_state(converged, record_property):
    for host in HOSTS:
        assert exec_in(host, DRIFT).returncode == 0
        assert checksums(host) != converged[host]
    first, second = _sliced("site.yml", record_property)
    assert (first.hosts, second.hosts) == ([FIRST], [SECOND])  # name order, every 2nd: as AWX slices them
    for run, host in ((first, FIRST), (second, SECOND)):
        assert run.ok, run.output[-3000:]
        assert set(run.stats) == {"localhost", host}  # a slice reaches its own host only
        assert run.stats[host]["failed"] == run.stats[host]["unreachable"] == 0
        assert run.stats[host]["changed"] >= 2  # the two files put back (and sshd reloaded)
        assert "Finished on all 1 hosts." in run.output
    assert {host: checksums(host) for host in HOSTS} == converged
    for host in HOSTS:
        assert exec_in(host, "sshd -T | grep -i '^permitrootlogin'").stdout.strip() == "permitrootlogin no"


@pytest.mark.control("CW-RES-04")
@pytest.mark.parametrize(("playbook", "why"), [
    ("patch.yml", "patch.yml installs updates in batches sized from every host it patches"),
    ("lab_pki.yml", "lab_pki.yml certifies every host of the inventory from one CA"),
    ("lab_siem.yml", "lab_siem.yml lets the SIEM accept the logs of every other host of the inventory"),
])
def test_a_cross_host_playbook_run_as_slices_refuses_and_touches_no_host(converged, record_property, playbook, why):
    runs = _sliced(playbook, record_property)
    for run in runs:
        errors = [line for line in run.output.splitlines() if line.startswith("[ERROR]")]
        assert not run.ok and len(errors) == 1, run.output[-3000:]
        assert f"Refused as one of 2 slices: {why}" in errors[0]
        assert set(run.stats) == {"localhost"}  # no host of the slice was contacted
    assert {host: checksums(host) for host in HOSTS} == converged
