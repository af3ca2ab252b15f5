"""The backup program the role installs (roles/backup/files/cityward-backup, CW-RES-02), run
against a stand-in `borg` that records its calls: a restore of an archive taken on another host is
refused before borg extracts anything; a failed step is recorded with the step and borg's words;
a success records the archive and the check. The real borg, over the real SSH service, is
proven in molecule/firewall (tests/scenarios/test_recovery.py)."""

from __future__ import annotations

import json
import os
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.control("CW-RES-02")

# Answers like borg 1.2's: `list --json`, `extract --stdout` of the identity file, any other call.
FAKE_BORG = r"""#!/usr/bin/env python3
import json, os, sys
log = os.environ["FAKE_BORG_LOG"]
with open(log, "a") as handle:
    handle.write(" ".join(sys.argv[1:]) + "\n")
fail = os.environ.get("FAKE_BORG_FAIL", "")
if fail and sys.argv[1] == fail:
    print("Remote: ssh: connect to host 10.40.32.20 port 2222: Connection refused", file=sys.stderr)
    sys.exit(2)
if sys.argv[1] == "list":
    print(json.dumps({"archives": [{"name": "gw-01-20261206T030000Z", "time": "2026-12-06T03:00:00"}]}))
elif sys.argv[1] == "extract" and "--stdout" in sys.argv:
    print(json.dumps({"host": os.environ["FAKE_BORG_IDENTITY"], "zone": "field"}))
"""


def load_program():
    path = ROOT / "roles" / "backup" / "files" / "cityward-backup"
    loader = SourceFileLoader("cityward_backup_program", str(path))
    module = module_from_spec(spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


@pytest.fixture
def program(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    borg = bin_dir / "borg"
    borg.write_text(FAKE_BORG)
    borg.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_BORG_LOG", str(tmp_path / "calls"))
    monkeypatch.setenv("FAKE_BORG_IDENTITY", "gw-01")
    monkeypatch.chdir(tmp_path)
    module = load_program()
    monkeypatch.setattr(module.os, "chdir", lambda _path: None)  # never extract into this machine's /
    config = {"host": "gw-01", "zone": "field", "repository": "ssh://b@10.40.32.20:2222/srv/cityward-backup/gw-01",
              "paths": [str(tmp_path)], "exclude": [], "retention": {"daily": 7, "weekly": 4, "monthly": 12},
              "max_age_hours": 192, "state_dir": str(tmp_path / "state"), "ssh_key": "/k", "known_hosts": "/kh",
              "passphrase_file": "/p"}
    (tmp_path / "state").mkdir()
    return module, config, tmp_path


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_a_restore_of_another_hosts_archive_is_refused_before_extracting(program, monkeypatch, capsys):
    module, config, tmp_path = program
    monkeypatch.setenv("FAKE_BORG_IDENTITY", "gw-02")
    assert module.restore(config) == 3
    assert "refused: archive gw-01-20261206T030000Z was taken on 'gw-02', not on 'gw-01'" in capsys.readouterr().err
    assert not [c for c in calls(tmp_path) if c.startswith("extract") and "--stdout" not in c], calls(tmp_path)


def test_the_own_newest_archive_is_extracted_with_numeric_ids(program, capsys):
    module, config, tmp_path = program
    assert module.restore(config) == 0
    assert json.loads(capsys.readouterr().out)["archive"] == "gw-01-20261206T030000Z"
    assert "extract --numeric-ids ::gw-01-20261206T030000Z" in calls(tmp_path)


def test_a_failed_backup_is_recorded_with_its_step_and_borgs_words(program, monkeypatch):
    module, config, tmp_path = program
    monkeypatch.setenv("FAKE_BORG_FAIL", "create")
    assert module.run(config) == 1
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert status["result"] == "failed" and status["failed_step"] == "create"
    assert "Connection refused" in status["error"]


def test_a_backup_creates_prunes_compacts_and_checks_then_records_it(program):
    module, config, tmp_path = program
    assert module.run(config) == 0
    verbs = [c.split()[0] for c in calls(tmp_path)]
    assert verbs == ["create", "prune", "compact", "check"], verbs
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert status["result"] == "ok" and status["checked"] is True and status["archive"].startswith("gw-01-")
    identity = json.loads((tmp_path / "state" / "state" / "identity.json").read_text())
    assert identity == {"host": "gw-01", "zone": "field"}


def test_if_stale_skips_a_host_backed_up_after_its_last_change(program, monkeypatch, capsys):
    module, config, tmp_path = program
    monkeypatch.setattr(module, "RECORDS", str(tmp_path / "*.fact"))
    (tmp_path / "cityward_x.fact").write_text("{}")
    os.utime(tmp_path / "cityward_x.fact", (1_000_000_000, 1_000_000_000))
    assert module.if_stale(config) == 0 and "backed up" in capsys.readouterr().out
    assert module.if_stale(config) == 0 and capsys.readouterr().out.strip() == "current"
    (tmp_path / "cityward_x.fact").write_text("{} ")  # a role changed the host: its record is newer
    os.utime(tmp_path / "cityward_x.fact", (4_000_000_000, 4_000_000_000))
    assert module.if_stale(config) == 0 and "backed up" in capsys.readouterr().out
