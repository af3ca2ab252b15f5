"""The change gate and the change records (CW-GOV-10, cityward.changes): which runs the gate
refuses and why, what a record keeps, and how the audit judges a host from the records. Real git
repositories in temporary folders; molecule/access proves the gate in real runs (test_rotation.py)."""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from local_play import PLAYBOOK_BIN, ROOT

from cityward.changes import (
    OVERRIDE_ENV,
    Inputs,
    close_change,
    judge_host,
    open_change,
    override_problem,
    read_records,
    records_dir,
    summary_line,
)

pytestmark = pytest.mark.control("CW-GOV-10")

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)
HOSTS = ["gw-north-01", "scada-01"]
REASON = "INC-2231: rebuild of gw-north-01 after its disk failed"


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def city(tmp_path) -> Path:
    """A city's inventory folder, committed."""
    folder = tmp_path / "city"
    (folder / "host_vars").mkdir(parents=True)
    (folder / "hosts.yml").write_text("all:\n  hosts:\n    gw-north-01:\n    scada-01:\n")
    (folder / "host_vars" / "scada-01.yml").write_text("cityward_zone: ot-operations\n")
    _git(folder, "init", "-q")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", "inventory")
    return folder


def _inputs(folder: Path, check: bool = False, **changes) -> Inputs:
    return Inputs(**{"playbook": "/city/playbooks/site.yml", "folder": folder, "check": check, "diff": check,
                     **changes})


def _open(folder: Path, inputs: Inputs, now=NOW, override=None, max_age_hours=24):
    return open_change(inputs, records_folder=records_dir(folder), hosts=HOSTS, max_age_hours=max_age_hours,
                       override=override, operator="alice@controller", cityward_version="0.2.0", now=now)


def _ran(gate, failed: str | None = None, changed=("scada-01",), now=NOW + datetime.timedelta(minutes=3)):
    """The callback's part: the run's end."""
    hosts = {host: {"ok": 5, "changed": int(host in changed), "failures": int(host == failed), "unreachable": 0}
             for host in HOSTS}
    return close_change(gate.path, hosts, now=now)


def _dry_run(folder: Path, **changes):
    gate = _open(folder, _inputs(folder, check=True, **changes))
    assert gate.problems == []
    return _ran(gate)


def test_an_apply_of_a_committed_inventory_after_its_dry_run_goes_ahead(city):
    dry = _dry_run(city)
    gate = _open(city, _inputs(city), now=NOW + datetime.timedelta(hours=2))
    assert gate.problems == []
    record = _ran(gate)
    assert record["dry_run"] == {"id": dry["id"], "started": dry["started"], "finished": dry["finished"],
                                 "hosts_changed": ["scada-01"]}
    assert record["inventory"]["commit"] == _git(city, "rev-parse", "HEAD") and record["inventory"]["uncommitted"] == []
    assert (record["kind"], record["status"], record["result"], record["hosts_changed"]) == \
        ("apply", "finished", "succeeded", ["scada-01"])
    assert record["override"] is None and record["operator"] == "alice@controller"
    assert judge_host("scada-01", *read_records(records_dir(city)), records_dir(city)) is None


def test_an_apply_without_a_dry_run_is_refused_and_writes_nothing(city):
    gate = _open(city, _inputs(city))
    assert gate.problems[0] == (f"{city}: no successful --check --diff run of these inputs in the last 24 h "
                                "(no --check --diff run of /city/playbooks/site.yml is recorded)")
    assert gate.problems[-1].startswith("the change was refused before any host was touched")
    assert OVERRIDE_ENV in gate.problems[-1]
    assert not records_dir(city).exists()


@pytest.mark.parametrize(("dry_changes", "apply_changes", "why"), [
    ({"limit": "scada-01"}, {}, "was of other inputs"),
    ({}, {"tags": ["firewall"]}, "was of other inputs"),
    ({}, {"extra_vars": ["firewall_reload=false"]}, "was of other inputs"),
    ({}, {"playbook": "/city/playbooks/patch.yml"}, "no --check --diff run of /city/playbooks/patch.yml"),
    ({"diff": False}, {}, "without --diff"),
])
def test_a_dry_run_of_other_inputs_does_not_count(city, dry_changes, apply_changes, why):
    _dry_run(city, **dry_changes)
    gate = _open(city, _inputs(city, **apply_changes))
    assert len(gate.problems) == 2 and why in gate.problems[0], gate.problems


def test_a_dry_run_of_an_edit_counts_once_the_edit_is_committed(city):
    """The fingerprint is of the inventory's content: dry-run the edit, commit it, apply."""
    (city / "host_vars" / "scada-01.yml").write_text("cityward_zone: ot-operations\nssh_port: 22\n")
    _dry_run(city)
    refused = _open(city, _inputs(city))
    assert refused.problems[0] == f"{city}: the inventory has uncommitted changes (host_vars/scada-01.yml)"
    _git(city, "commit", "-q", "-am", "ssh port")
    assert _open(city, _inputs(city)).problems == []


def test_an_edit_after_the_dry_run_needs_a_new_one(city):
    _dry_run(city)
    (city / "hosts.yml").write_text("all:\n  hosts:\n    gw-north-01:\n")
    _git(city, "commit", "-q", "-am", "one host less")
    assert "was of other inputs" in _open(city, _inputs(city)).problems[0]


def test_the_records_are_not_uncommitted_changes_of_the_inventory(city):
    _dry_run(city)
    assert list(records_dir(city).glob("CH-*.json"))
    assert _open(city, _inputs(city)).problems == []


def test_untracked_files_are_uncommitted_changes(city):
    (city / "host_vars" / "gw-north-01.yml").write_text("cityward_zone: field\n")
    _dry_run(city)
    assert "uncommitted changes (host_vars/gw-north-01.yml)" in _open(city, _inputs(city)).problems[0]


@pytest.mark.parametrize(("failed", "age_hours", "why"), [
    ("scada-01", 1, "which failed on a host"),
    (None, 25, "older than 24 h"),
])
def test_a_failed_or_old_dry_run_does_not_count(city, failed, age_hours, why):
    gate = _open(city, _inputs(city, check=True))
    _ran(gate, failed=failed)
    later = NOW + datetime.timedelta(hours=age_hours)
    assert why in _open(city, _inputs(city), now=later).problems[0]


def test_an_unfinished_dry_run_does_not_count(city):
    _open(city, _inputs(city, check=True))  # the controller was killed: no end
    assert "which did not finish" in _open(city, _inputs(city)).problems[0]


def test_the_window_is_configurable(city):
    _dry_run(city)
    later = NOW + datetime.timedelta(hours=30)
    assert _open(city, _inputs(city), now=later, max_age_hours=48).problems == []
    assert "older than 2 h" in _open(city, _inputs(city), now=later, max_age_hours=2).problems[0]
    assert _open(city, _inputs(city), now=later, max_age_hours="36").problems == []
    for bad in (0, -1, "a day", True, None, "nan"):
        assert _open(city, _inputs(city), max_age_hours=bad).problems == [
            f"cityward_change_dry_run_max_age_hours: a number of hours above 0, not {bad!r}"]


def test_an_unreadable_inventory_file_refuses_the_run_in_one_line(city, monkeypatch):
    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    problems = _open(city, _inputs(city, check=True)).problems
    assert len(problems) == 1 and "cannot be read for the change record" in problems[0], problems
    assert "Permission denied" in problems[0]


def test_a_fifo_in_the_inventory_is_never_read(city):
    """A FIFO would block a read forever: it is named in the digest, never opened."""
    os.mkfifo(city / "host_vars" / "pipe")
    _dry_run(city)  # would block here
    assert _open(city, _inputs(city)).problems == []  # git does not track a FIFO: nothing uncommitted


def test_an_inventory_outside_git_is_refused(tmp_path):
    folder = tmp_path / "generated"
    folder.mkdir()
    (folder / "hosts.yml").write_text("all: {}\n")
    problems = _open(folder, _inputs(folder)).problems
    assert problems[0] == f"{folder}: the inventory is not in version control (git)"


def test_a_dry_run_is_never_refused_and_is_recorded(tmp_path):
    folder = tmp_path / "generated"
    folder.mkdir()
    gate = _open(folder, _inputs(folder, check=True))
    assert gate.problems == [] and gate.record["kind"] == "dry-run" and gate.record["inventory"]["in_git"] is False


def test_an_override_with_a_reason_lets_the_apply_go_ahead_and_is_recorded(city):
    (city / "hosts.yml").write_text("all: {}\n")
    gate = _open(city, _inputs(city), override=f"  {REASON} ")
    assert gate.problems == []
    override = gate.record["override"]
    assert override["reason"] == REASON
    assert [rule.split(": ", 1)[1].split(" (")[0] for rule in override["overrode"]] == \
        ["the inventory has uncommitted changes", "no successful --check --diff run of these inputs in the last 24 h"]
    assert summary_line(gate.record).endswith(f"without a matching dry run; override: {REASON}")
    _ran(gate)
    assert judge_host("scada-01", *read_records(records_dir(city)), records_dir(city)) is None


@pytest.mark.parametrize("reason", ["", "yes", "   1   ", "override!!", "x" * 501, "emergency\nfix of the broker"])
def test_an_override_without_a_reason_is_refused_in_one_line(city, reason):
    if not reason.strip():
        assert override_problem(reason) is not None
        return
    gate = _open(city, _inputs(city), override=reason)
    assert len(gate.problems) == 1 and gate.problems[0].startswith(f"{OVERRIDE_ENV}: "), gate.problems
    assert not records_dir(city).exists()


def test_a_record_keeps_no_extra_var_value(city):
    gate = _open(city, _inputs(city, check=True, extra_vars=["vault_breakglass_password_hash=$y$secret"]))
    text = gate.path.read_text()
    assert "$y$secret" not in text and json.loads(text)["extra_vars"] == 1


def test_a_record_the_callback_never_closed_fails_the_audit(city):
    _dry_run(city)
    _open(city, _inputs(city))  # no end
    why = judge_host("scada-01", *read_records(records_dir(city)), records_dir(city))
    assert why is not None and "has no end" in why and "cityward.hardening.change_record" in why


def test_the_audit_judges_the_newest_apply_that_targeted_the_host(city):
    folder = records_dir(city)
    assert "no change record" in judge_host("scada-01", *read_records(folder), folder)
    _dry_run(city)
    _ran(_open(city, _inputs(city)), failed="gw-north-01")
    records, unreadable = read_records(folder)
    assert judge_host("scada-01", records, unreadable, folder) is None
    assert "failed on this host (1 failed, 0 unreachable)" in judge_host("gw-north-01", records, unreadable, folder)
    assert "no change record" in judge_host("historian-01", records, unreadable, folder)


def test_a_hand_made_record_without_dry_run_or_override_fails_the_audit(city):
    _dry_run(city)
    gate = _open(city, _inputs(city))
    record = _ran(gate)
    record["dry_run"] = None
    gate.path.write_text(json.dumps(record))
    assert "names no --check --diff run before it, and no override" in \
        judge_host("scada-01", *read_records(records_dir(city)), records_dir(city))


def test_an_unreadable_record_fails_the_audit(city):
    _dry_run(city)
    (records_dir(city) / "CH-broken.json").write_text("{")
    records, unreadable = read_records(records_dir(city))
    assert unreadable == ["CH-broken.json"]
    assert "cannot be read: CH-broken.json" in judge_host("scada-01", records, unreadable, records_dir(city))


def test_a_records_folder_that_cannot_be_written_refuses_the_run(city, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    gate = open_change(_inputs(city, check=True), records_folder=blocked / "changes", hosts=HOSTS, max_age_hours=24,
                       override=None, operator="alice@c", cityward_version="0.2.0", now=NOW)
    assert len(gate.problems) == 1 and "cityward_change_records_dir" in gate.problems[0]


def _play_handing_over(record: Path | None, folder: Path, syslog: Path) -> subprocess.CompletedProcess:
    """A local run with the project's ansible.cfg (which enables the callback), whose one play hands
    the callback `record` as the change gate does and changes one thing."""
    tasks = [{"name": "A change", "ansible.builtin.command": "true", "changed_when": True}]
    if record:
        tasks.insert(0, {"name": "Hand the record over", "ansible.builtin.set_stats": {
            "data": {"cityward_change_record": str(record)}, "per_host": False, "aggregate": False}})
    play = folder / "play.yml"
    play.write_text(yaml.safe_dump([{"name": "A run", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               CITYWARD_CHANGE_SYSLOG_SOCKET=str(syslog))
    return subprocess.run([str(PLAYBOOK_BIN), "-i", "localhost,", "-c", "local", "-e",
                           f"ansible_python_interpreter={sys.executable}", str(play)],
                          capture_output=True, text=True, env=env, cwd=folder, timeout=300)


def test_the_callback_writes_the_end_and_sends_it_to_the_controllers_syslog(city, tmp_path):
    address = tmp_path / "log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslog:
        syslog.bind(str(address))
        syslog.settimeout(60)
        gate = _open(city, _inputs(city, check=True), now=datetime.datetime.now(datetime.UTC).replace(microsecond=0))
        run = _play_handing_over(gate.path, tmp_path, address)
        assert run.returncode == 0, run.stdout + run.stderr
        received = syslog.recv(4096).decode()
    record = json.loads(gate.path.read_text())
    assert (record["status"], record["result"], record["hosts_changed"], record["hosts_failed"]) == \
        ("finished", "succeeded", ["localhost"], [])
    assert record["hosts"]["localhost"]["changed"] == 1 and record["hosts"]["localhost"]["failures"] == 0
    line = (f"cityward change {record['id']}: dry-run of /city/playbooks/site.yml succeeded at {record['finished']}, "
            "hosts changed: localhost")
    assert received == f"<37>cityward-change: {line}"
    assert f"{line} (record {gate.path})" in run.stdout


def test_without_a_syslog_socket_the_callback_still_closes_the_record_and_says_so(city, tmp_path):
    gate = _open(city, _inputs(city, check=True))
    run = _play_handing_over(gate.path, tmp_path, tmp_path / "none")
    assert json.loads(gate.path.read_text())["status"] == "finished"
    assert f"not sent to syslog, {tmp_path / 'none'}: " in run.stdout


def test_the_callback_leaves_a_run_without_a_change_record_alone(tmp_path):
    run = _play_handing_over(None, tmp_path, tmp_path / "none")
    assert run.returncode == 0 and "cityward change" not in run.stdout
