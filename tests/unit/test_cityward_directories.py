"""plugins/action/directories.py: a role's missing directories created in one task, with one shell
command. Driven through ansible-playbook on this machine (local connection) in a temporary folder:
what it creates and reports, what a second run and --check report, that an existing directory
keeps its mode, and what stops it. The roles' own directories are created by it in every Molecule
scenario (kernel, baseline, patching and update_mirror tasks: converge, then idempotence)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from local_play import assert_refused, load_action, run_task

PLUGIN = load_action("directories")


def run(lab: Path, directories: list, *args: str):
    return run_task(lab, {"name": "CW-TEST-01 | directories", "cityward.hardening.directories": {
        "directories": directories}}, *args)


def mode(path: Path) -> str:
    return format(stat.S_IMODE(path.stat().st_mode), "04o")


def three(lab: Path) -> list:
    out = lab / "out"
    return [{"path": f"{out}/etc.d", "mode": "0755"},
            {"path": f"{out}/deeper/secret", "mode": "0700"},
            {"path": f"{out}/it's here", "mode": 488, "owner": os.getuid(), "group": "root"}]


@pytest.fixture
def lab(tmp_path):
    (tmp_path / "out").mkdir()
    return tmp_path


def test_creates_what_is_missing_then_reports_nothing_changed(lab):
    out = lab / "out"
    code, first, output = run(lab, three(lab))
    assert code == 0, output
    assert first["changed"] is True
    assert first["missing"] == [f"{out}/etc.d", f"{out}/deeper/secret", f"{out}/it's here"]
    assert [mode(out / name) for name in ("etc.d", "deeper/secret", "it's here")] == ["0755", "0700", "0750"]
    assert (out / "deeper" / "secret").stat().st_uid == 0

    code, second, output = run(lab, three(lab))
    assert code == 0, output
    assert second["changed"] is False and second["missing"] == []


def test_an_existing_directory_keeps_its_owner_and_mode(lab):
    (lab / "out" / "etc.d").mkdir(mode=0o700)
    (lab / "out" / "etc.d").chmod(0o700)
    code, result, output = run(lab, three(lab)[:1])
    assert code == 0, output
    assert result["changed"] is False
    assert mode(lab / "out" / "etc.d") == "0700"


def test_check_mode_lists_what_is_missing_and_creates_nothing(lab):
    (lab / "out" / "etc.d").mkdir()
    code, checked, output = run(lab, three(lab), "--check")
    assert code == 0, output
    assert checked["changed"] is True
    assert checked["missing"] == [f"{lab}/out/deeper/secret", f"{lab}/out/it's here"]
    assert sorted(p.name for p in (lab / "out").iterdir()) == ["etc.d"]


def test_a_file_in_the_way_fails_the_task_after_the_directories_before_it(lab):
    (lab / "out" / "file").write_text("not a directory\n")
    directories = [three(lab)[0], {"path": f"{lab}/out/file", "mode": "0755"}, three(lab)[1]]
    code, _, output = run(lab, directories)
    assert code != 0
    assert f"{lab}/out/file" in output and "File exists" in output, output
    assert (lab / "out" / "etc.d").is_dir()
    assert not (lab / "out" / "deeper").exists()


@pytest.mark.parametrize(("entry", "message"), [
    ({"path": "relative/x", "mode": "0755"}, "directories[0] (relative/x): field path must be an absolute path"),
    ({"path": "/srv/x\n/etc", "mode": "0755"}, "field path must be an absolute path on one line"),
    ({"path": "/srv/x", "mode": "u=rwx"}, "field mode must be an octal string such as '0755'"),
    ({"path": "/srv/x"}, "field mode must be an octal string such as '0755'"),
    ({"path": "/srv/x", "mode": "0755", "owner": "root; reboot"}, "field owner ('root; reboot') is not a user"),
    ({"path": "/srv/x", "mode": "0755", "state": "absent"}, "unknown field(s) state"),
])
def test_bad_entries_are_refused_naming_the_entry_and_field(entry, message):
    with pytest.raises(PLUGIN.AnsibleActionFail) as refused:
        PLUGIN.check_entries([entry])
    assert message in str(refused.value)


def test_a_bad_entry_stops_the_task_before_the_host_is_asked(lab):
    code, _, output = run_task(lab, {"name": "CW-TEST-01 | directories", "cityward.hardening.directories": {
        "directories": [{"path": f"{lab}/out/a", "mode": "0755"}, {"path": "b", "mode": "0755"}]}}, "-vvv")
    assert_refused(code, output, "directories[1] (b): field path must be an absolute path", "install -d")
    assert not (lab / "out" / "a").exists()


def test_the_command_quotes_every_path_and_only_lists_under_check():
    entries = PLUGIN.check_entries([{"path": "/srv/it's; here", "mode": "0750", "group": "adm"}])
    assert PLUGIN.command(entries, create=True) == (
        "set -e; if [ ! -d '/srv/it'\"'\"'s; here' ]; then install -d -o root -g adm -m 0750 "
        "'/srv/it'\"'\"'s; here'; printf '%s\\n' '/srv/it'\"'\"'s; here'; fi")
    assert "install" not in PLUGIN.command(entries, create=False)
