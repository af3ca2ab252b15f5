"""plugins/action/files.py: a role's files in one task, checked on the host in one module
run. Driven through ansible-playbook on this machine (local connection) in a temporary folder:
what lands, what a second run reports, what --check and drift do, and what a refusing validator
leaves behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from local_play import run_task

TEMPLATE = """# Ansible managed
value={{ demo_value }}
{% for number in [1, 2] %}
line {{ number }} of {{ timer.unit | default('none') }}
{% endfor %}
"""


@pytest.fixture
def lab(tmp_path):
    role = tmp_path / "roles" / "demo"
    (role / "templates").mkdir(parents=True)
    (role / "files").mkdir()
    (role / "tasks").mkdir()
    (role / "templates" / "a.conf.j2").write_text(TEMPLATE)
    (role / "files" / "b.txt").write_text("copied as is\n")
    out = tmp_path / "out"
    out.mkdir()
    return tmp_path


def run(lab: Path, files: list, *args: str):
    """Manage `files` under lab/out in a one-task role; return (exit, result, output)."""
    return run_task(lab, {"name": "CW-TEST-01 | files", "cityward.hardening.files": {"files": files}}, *args,
                    play_vars={"demo_value": "1", "demo_validate": "grep -q hello %s"})


def three(lab: Path) -> list:
    out = lab / "out"
    return [{"template": "a.conf.j2", "dest": f"{out}/a.conf", "mode": "0640", "control": "CW-TEST-01",
             "vars": {"timer": {"unit": "apt-daily.timer"}}},
            {"src": "b.txt", "dest": f"{out}/b.txt", "mode": "0600", "control": "CW-TEST-02"},
            {"content": "hello\n", "dest": f"{out}/c.txt", "mode": "0644", "validate": "{{ demo_validate }}"}]


def test_writes_every_file_then_reports_nothing_changed(lab):
    code, first, output = run(lab, three(lab))
    assert code == 0, output
    assert first["changed"] is True
    assert [row["differs"] for row in first["files"]] == ["missing", "missing", "missing"]
    out = lab / "out"
    assert (out / "a.conf").read_text() == ("# Ansible managed\nvalue=1\nline 1 of apt-daily.timer\n"
                                            "line 2 of apt-daily.timer\n")
    assert (out / "b.txt").read_text() == "copied as is\n"
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == {
        "a.conf": "0o640", "b.txt": "0o600", "c.txt": "0o644"}

    code, second, output = run(lab, three(lab))
    assert code == 0, output
    assert second["changed"] is False
    assert all(row["differs"] is None and not row["changed"] for row in second["files"])
    assert [row["control"] for row in second["files"]] == ["CW-TEST-01", "CW-TEST-02", None]


def test_the_same_bytes_as_the_template_module(lab):
    """What a host converged by ansible.builtin.template holds is what this action expects."""
    assert run(lab, three(lab))[0] == 0
    code, _, output = run_task(lab, {"name": "Reference", "ansible.builtin.template": {
        "src": "a.conf.j2", "dest": str(lab / "out" / "ref.conf"), "mode": "0640"},
        "vars": {"timer": {"unit": "apt-daily.timer"}}}, play_vars={"demo_value": "1"})
    assert code == 0, output
    assert (lab / "out" / "ref.conf").read_bytes() == (lab / "out" / "a.conf").read_bytes()


def test_drift_is_put_back_and_check_mode_only_reports_it(lab):
    assert run(lab, three(lab))[0] == 0
    out = lab / "out"
    (out / "a.conf").chmod(0o666)
    (out / "b.txt").write_text("edited on the host\n")
    code, checked, output = run(lab, three(lab), "--check", "--diff")
    assert code == 0, output
    assert [row["differs"] for row in checked["files"]] == ["mode", "content", None]
    assert [row["changed"] for row in checked["files"]] == [True, True, False]
    assert "+copied as is" in output and "-edited on the host" in output
    assert (out / "b.txt").read_text() == "edited on the host\n"
    assert oct((out / "a.conf").stat().st_mode & 0o777) == "0o666"

    code, fixed, output = run(lab, three(lab))
    assert code == 0 and fixed["changed"] is True, output
    assert (out / "b.txt").read_text() == "copied as is\n"
    assert oct((out / "a.conf").stat().st_mode & 0o777) == "0o640"


@pytest.mark.control("CW-RES-06")
def test_a_refused_file_never_lands_and_the_run_stops_there(lab):
    """The validator refuses c.txt: it keeps its old content, the task fails naming it, and a file
    listed after it is not written."""
    assert run(lab, three(lab))[0] == 0
    files = three(lab) + [{"content": "after\n", "dest": f"{lab}/out/d.txt", "mode": "0644"}]
    files[2]["content"] = "goodbye\n"
    code, _, output = run(lab, files)
    assert code != 0
    assert f"{lab}/out/c.txt (no control): failed to validate" in output
    assert (lab / "out" / "c.txt").read_text() == "hello\n"
    assert not (lab / "out" / "d.txt").exists()


@pytest.mark.parametrize(("entry", "message"), [
    ({"dest": "relative/x", "content": "x"}, "files[0] (relative/x): field dest must be an absolute path"),
    ({"dest": "OUT/x", "content": "x", "template": "a.conf.j2"}, "give exactly one of template, src, content"),
    ({"dest": "OUT/x", "content": "x", "mode": "u=rw"}, "field mode must be an octal string"),
    ({"dest": "OUT/x", "content": "x", "owner_name": "root"}, "unknown field(s) owner_name"),
    ({"dest": "OUT/x", "template": "missing.j2"}, "missing.j2"),
])
def test_bad_entries_are_refused_naming_the_entry_and_field(lab, entry, message):
    entry = {key: value.replace("OUT", str(lab / "out")) for key, value in entry.items()}
    code, _, output = run(lab, [entry])
    assert code != 0
    assert message in " ".join(output.split()), output
    assert "Traceback" not in output
    assert not (lab / "out" / "x").exists()
