"""The traceability gate: the catalog, the roles, the policy rules and the tests agree."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cityward.catalog import load_catalog
from cityward.trace import collect, problems

ROOT = Path(__file__).resolve().parents[2]


def test_catalog_and_tree_are_traceable():
    gaps = problems(load_catalog(ROOT / "policies"), collect(ROOT))
    assert not gaps, "traceability gaps:\n" + "\n".join(gaps)


def test_catalog_covers_both_sources_with_enough_controls():
    catalog = load_catalog()
    assert len(catalog.controls) >= 40
    items = {item.id for item in catalog.source_items}
    assert {f"TM-{n:02d}" for n in range(1, 11)} <= items
    assert {f"FE-PD-{n:02d}" for n in range(1, 11)} | {"FE-SC-01", "FE-SC-03", "FE-OR-04"} <= items
    assert all(row["total"] for row in catalog.coverage())


# --- the gate itself must be able to fail: a small fake project with known gaps ---------

def _fake_project(tmp_path, status="implemented", tag="CW-SSH-01", marker="CW-SSH-01", name=None):
    real = ROOT / "policies"
    policies = tmp_path / "policies"
    policies.mkdir()
    for name_ in ("references.yml", "sources.yml"):
        (policies / name_).write_text((real / name_).read_text())
    (policies / "controls.yml").write_text(textwrap.dedent(f"""\
        controls:
          - id: CW-SSH-01
            title: SSH public key only
            sources: [{", ".join(i.id for i in load_catalog().source_items)}]
            enforced_by: [{{kind: role, ref: ssh}}]
            verification: sshd -T and a live probe
            container: live
            status: {status}
        """))
    tasks = tmp_path / "roles" / "ssh" / "tasks"
    tasks.mkdir(parents=True)
    task_name = name or f"{tag} | Render sshd_config"
    (tasks / "main.yml").write_text(f"- name: {task_name}\n  ansible.builtin.debug: {{}}\n  tags: [{tag}]\n")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_x.py").write_text(
        f"import pytest\n\n@pytest.mark.control({marker!r})\ndef test_x():\n    assert True\n")
    return tmp_path


def test_gate_passes_a_consistent_project(tmp_path):
    root = _fake_project(tmp_path)
    assert problems(load_catalog(root / "policies"), collect(root, registries=[])) == []


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"tag": "CW-SSH-09", "marker": "CW-SSH-01"}, "no task tag"),
    ({"marker": "CW-SSH-02"}, "no test is marked"),
    ({"tag": "CW-ZZZ-01", "marker": "CW-SSH-01"}, "unknown control CW-ZZZ-01"),
    ({"marker": "CW-ZZZ-02"}, "unknown control CW-ZZZ-02"),
    ({"name": "Render sshd_config"}, "does not name it"),
])
def test_gate_reports_each_kind_of_gap(tmp_path, kwargs, expected):
    root = _fake_project(tmp_path, **kwargs)
    found = problems(load_catalog(root / "policies"), collect(root, registries=[]))
    assert any(expected in line for line in found), found


def test_planned_controls_need_no_enforcement(tmp_path):
    root = _fake_project(tmp_path, status="planned", tag="CW-SSH-01", marker="CW-SSH-01")
    (root / "tests" / "test_x.py").write_text("def test_x():\n    assert True\n")
    assert problems(load_catalog(root / "policies"), collect(root, registries=[])) == []


# --- the gate reads structure: an ID in free text enforces and tests nothing -------------

def test_an_id_in_a_comment_or_docstring_is_not_enforcement(tmp_path):
    root = _fake_project(tmp_path, tag="CW-SSH-09", marker="CW-SSH-01")
    (root / "roles" / "ssh" / "tasks" / "extra.yml").write_text(
        "# CW-SSH-01 | enforced here, says a comment\n"
        "- name: CW-SSH-01 | A task that names the control but has no tag\n"
        "  ansible.builtin.debug:\n    msg: CW-SSH-01\n")
    rules = root / "src" / "cityward" / "cloud"
    rules.mkdir(parents=True)
    (rules / "rules.py").write_text('"""Enforces CW-SSH-01."""\n# CW-SSH-01\nDESCRIPTION = "CW-SSH-01"\n')
    trace = collect(root, registries=[])
    assert "CW-SSH-01" not in trace.enforced
    found = problems(load_catalog(root / "policies"), trace)
    assert any(line.startswith("CW-SSH-01 is implemented but no task tag") for line in found), found


def test_an_id_in_a_string_is_not_a_test_marker(tmp_path):
    root = _fake_project(tmp_path)
    (root / "tests" / "test_x.py").write_text(
        '"""pytest.mark.control("CW-SSH-01")"""\n# @pytest.mark.control("CW-SSH-01")\n'
        'def test_x():\n    assert "CW-SSH-01"\n')
    found = problems(load_catalog(root / "policies"), collect(root, registries=[]))
    assert any("no test is marked" in line for line in found), found


def test_a_registered_rule_is_enforcement(tmp_path):
    root = _fake_project(tmp_path, tag="CW-SSH-09")
    (root / "roles" / "ssh" / "tasks" / "main.yml").write_text("- name: Nothing\n  ansible.builtin.debug: {}\n")
    trace = collect(root, registries=[("CW-SSH-01", "policy rule cw-ssh-01-x")])
    assert trace.enforced["CW-SSH-01"] == {"policy rule cw-ssh-01-x"}
    assert problems(load_catalog(root / "policies"), trace) == []


def test_the_registries_name_only_catalog_controls():
    from cityward.trace import registered

    known = load_catalog(ROOT / "policies").ids
    places = registered()
    assert places, "no registered rule at all: the registries were not read"
    assert {control for control, _ in places} <= known
