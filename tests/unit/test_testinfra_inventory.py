"""The audit resolves the inventory once; testinfra's lookups in the per-host processes reuse it."""

from __future__ import annotations

import json

from testinfra.utils import ansible_runner

from cityward import testinfra_inventory

RESOLVED = {"_meta": {"hostvars": {"scada-01": {"ansible_connection": "local"}}},
            "all": {"children": ["ot_servers"]}, "ot_servers": {"hosts": ["scada-01"]}}


def test_a_process_started_by_the_audit_reads_the_resolved_file(tmp_path, monkeypatch):
    resolved = tmp_path / "inventory.json"
    resolved.write_text(json.dumps(RESOLVED))
    monkeypatch.setenv(testinfra_inventory.ENV, str(resolved))
    # No ansible-inventory runs: the path given need not even exist.
    runner = ansible_runner.AnsibleRunner(str(tmp_path / "no-such-inventory"))
    assert runner.get_hosts("ot_servers") == ["scada-01"]
    assert runner.get_variables("scada-01")["ansible_connection"] == "local"


def test_the_audit_process_itself_uses_what_it_preloaded(tmp_path, monkeypatch):
    monkeypatch.delenv(testinfra_inventory.ENV, raising=False)
    inventory = str(tmp_path / "preloaded-inventory")
    testinfra_inventory.preload(inventory, RESOLVED)
    assert ansible_runner.AnsibleRunner(inventory).get_hosts("all") == ["scada-01"]


def test_without_either_testinfra_runs_ansible_inventory_as_before(tmp_path, monkeypatch):
    monkeypatch.delenv(testinfra_inventory.ENV, raising=False)
    calls = []
    monkeypatch.setattr(testinfra_inventory, "_original", lambda config, path: calls.append(path) or RESOLVED)
    ansible_runner.AnsibleRunner(str(tmp_path / "plain")).get_hosts("all")
    assert calls == [str(tmp_path / "plain")]
