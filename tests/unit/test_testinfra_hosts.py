"""The audit reaches each host through testinfra's own backends, from the inventory it resolved
once: no ansible-inventory per host, and no patching of testinfra (cityward.testinfra_hosts and
the checks' fixtures)."""

from __future__ import annotations

import json
import textwrap

import pytest
from testinfra.utils import ansible_runner

from cityward.audit.collect import run_audit
from cityward.testinfra_hosts import host_for, host_variables, podman_spec

RESOLVED = {
    "_meta": {"hostvars": {
        "gw-01": {"ansible_connection": "containers.podman.podman", "ansible_host": "cw-lab-gw-01"},
        "cw-default-trixie": {"ansible_connection": "podman"},  # Molecule's: the container is named as the host
        "scada-01": {"ansible_host": "10.40.64.10", "ansible_user": "cityward-automation", "ansible_port": 2202,
                     "ansible_become": True},
    }},
    "all": {"children": ["ot_servers", "ungrouped"]}, "ot_servers": {"hosts": ["scada-01", "gw-01"]},
}


@pytest.fixture
def no_inventory_runs(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("ansible-inventory ran again")
    monkeypatch.setattr(ansible_runner, "get_ansible_inventory", refuse)


def test_podman_hosts_get_testinfras_podman_backend(no_inventory_runs):
    assert podman_spec(RESOLVED["_meta"]["hostvars"]["gw-01"]) == "podman://cw-lab-gw-01"
    assert podman_spec({"ansible_connection": "podman", "ansible_host": "c", "ansible_user": "u"}) == "podman://u@c"
    assert podman_spec({"ansible_connection": "ssh"}) is None
    assert host_for("gw-01", RESOLVED, "unused").backend.NAME == "podman"
    assert host_for("cw-default-trixie", RESOLVED, "unused").backend.name == "cw-default-trixie"


def test_ssh_hosts_get_testinfras_ssh_backend_from_the_same_variables(no_inventory_runs):
    backend = host_for("scada-01", RESOLVED, "unused").backend
    assert backend.NAME == "ssh"
    assert (backend.host.name, backend.host.user, backend.host.port) == ("10.40.64.10", "cityward-automation", "2202")
    assert backend.get_command("id") == "sudo /bin/sh -c id"  # ansible_become: the checks read as root


def test_variables_are_testinfras_with_groups():
    variables = host_variables("scada-01", RESOLVED)
    assert variables["inventory_hostname"] == "scada-01"
    assert "ot_servers" in variables["group_names"]
    assert variables["groups"]["ot_servers"] == ["gw-01", "scada-01"]


def test_an_audit_runs_the_checks_on_the_host_it_resolved(tmp_path):
    """A whole audit of this machine (local connection) with one read-only check of our own: the
    per-host process gets its host and variables from the audit, not from its own pytest options."""
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "conftest.py").write_text("from cityward.checks.fixtures import host, hostvars  # noqa: F401\n")
    (checks / "test_probe.py").write_text(textwrap.dedent("""\
        import pytest

        @pytest.mark.control("CW-RES-04")
        def test_probe(host, hostvars):
            assert hostvars["inventory_hostname"] == "probe-01"
            assert hostvars["probe_value"] == 42
            assert host.backend.NAME == "local"
            assert host.run("echo reached").stdout.strip() == "reached"
        """))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"probe-01": {
        "ansible_connection": "local", "probe_value": 42, "cityward_zone": "management"}}}}))
    run = run_audit(inventory, tmp_path / "out", tests=checks, progress=_Quiet())
    (host,) = run.hosts
    assert host.reachable, host.error
    assert [(c.name, c.outcome, c.control_ids) for c in host.checks] == [("test_probe", "passed", ["CW-RES-04"])]


class _Quiet:
    def host_done(self, host) -> None:
        pass
