"""The audit as a pipeline (issue 21): collect -> aggregate once -> render -> write, wired by the
command; "not applicable" an outcome the check decides, told by type; the evidence collectors
registered by control."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from test_report import build_run

from cityward import audit_cmd
from cityward.audit import aggregate as aggregate_module
from cityward.audit import collect
from cityward.audit.model import Outcome
from cityward.audit.sbom import ARCH_QUERY, DPKG_QUERY, host_architecture
from cityward.resources import checks_dir

PROBE = textwrap.dedent('''\
    import pytest

    from cityward.checks.outcomes import not_applicable


    @pytest.fixture
    def broken():
        raise RuntimeError("fixture broke")


    @pytest.fixture
    def elsewhere():
        not_applicable("not applicable: decided in a fixture")


    @pytest.fixture
    def record():
        pytest.fail("evidence missing: /etc/ansible/facts.d/cityward_x.fact is absent", pytrace=False)


    @pytest.mark.control("CW-X-01")
    def test_pass():
        pass


    @pytest.mark.control("CW-X-02", "CW-X-03")
    def test_fail():
        assert 1 == 2, "one is not two"


    def test_error(broken):
        pass


    def test_na():
        not_applicable("not applicable in a container: the kernel is the host's")


    def test_na_in_fixture(elsewhere):
        pass


    def test_evidence_missing(record):
        pass


    def test_text_decides_nothing():
        pytest.skip("not applicable: says only the text")


    def test_skip():
        pytest.skip("mosquitto not installed")
    ''')


def test_not_applicable_is_an_outcome_told_by_its_type(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    results = tmp_path / "results.jsonl"
    env = {**os.environ, "CITYWARD_RESULTS": str(results)}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path), "-p", "cityward.audit.pytest_plugin",
                           "-p", "no:cacheprovider", "-q", "--no-header", "-o", "addopts=", "--strict-markers"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    rows = {row["nodeid"].split("::")[-1]: row for row in map(json.loads, results.read_text().splitlines())}
    assert {name: row["outcome"] for name, row in rows.items()} == {
        "test_pass": "passed", "test_fail": "failed", "test_error": "error", "test_na": "not_applicable",
        "test_na_in_fixture": "not_applicable", "test_text_decides_nothing": "skipped", "test_skip": "skipped",
        "test_evidence_missing": "failed"}
    assert rows["test_evidence_missing"]["reason"].startswith("evidence missing: ")
    assert rows["test_na"]["reason"] == "not applicable in a container: the kernel is the host's"
    assert rows["test_na_in_fixture"]["reason"] == "not applicable: decided in a fixture"
    assert rows["test_skip"]["reason"] == "mosquitto not installed"
    assert rows["test_fail"]["control_ids"] == ["CW-X-02", "CW-X-03"]
    assert {row["outcome"] for row in rows.values()} <= set(Outcome)
    assert "4 skipped" in proc.stdout  # to pytest (and Molecule verify) not applicable is a skip


def _not_applicable_text(node, constants: dict[str, str]) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        text = str(node.values[0].value)
    elif isinstance(node, ast.Name):
        text = constants.get(node.id, "")
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):  # CONSTANT.format(...)
        return _not_applicable_text(node.func.value, constants)
    else:
        return False
    return text.lower().startswith("not applicable")


def _skips_meaning_not_applicable(tree: ast.Module) -> list[int]:
    """Lines of pytest.skip calls that mean "not applicable": by their text, or under a test of a
    status "not_applicable"."""
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}
    found = []
    for node in ast.walk(tree):
        under_status = isinstance(node, ast.If) and any(
            isinstance(n, ast.Constant) and n.value == "not_applicable" for n in ast.walk(node.test))
        for call in ast.walk(node) if under_status else [node]:
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "skip"
                    and isinstance(call.func.value, ast.Name) and call.func.value.id == "pytest"
                    and (under_status or (call.args and _not_applicable_text(call.args[0], constants)))):
                found.append(call.lineno)
    return sorted(set(found))


@pytest.mark.parametrize("path", sorted(checks_dir().glob("test_*.py")), ids=lambda p: p.name)
def test_the_checks_say_not_applicable_with_its_helper(path):
    """A check whose control does not apply calls cityward.checks.outcomes.not_applicable: the audit
    no longer reads a skip's text, so a pytest.skip there would report the control skipped."""
    lines = _skips_meaning_not_applicable(ast.parse(path.read_text(encoding="utf-8")))
    assert not lines, f"{path.name}: pytest.skip meaning not applicable on line(s) {lines}: call not_applicable"


def test_the_guard_sees_each_way_of_skipping_as_not_applicable():
    tree = ast.parse(textwrap.dedent('''\
        WHY = "not applicable in a container: {why}"
        def f(found, x):
            pytest.skip("not applicable: a")
            pytest.skip(f"Not applicable: {x}")
            pytest.skip(WHY.format(why="b"))
            if found.status == "not_applicable":
                pytest.skip(found.reason)
            pytest.skip("no USB bus")
            not_applicable("not applicable: c")
        '''))
    assert _skips_meaning_not_applicable(tree) == [3, 4, 5, 7]


def test_the_sbom_is_registered_evidence_of_its_control(tmp_path):
    assert dict(collect.EVIDENCE) == {"CW-GOV-06": collect.collect_sbom, "CW-GOV-07": collect.scanners.collect_scanners}
    answers = {f"{ARCH_QUERY} && {DPKG_QUERY}": "arm64\nopenssl\t3.0.15-1~deb12u1\tarm64\n"}
    host = types.SimpleNamespace(run=lambda command: types.SimpleNamespace(rc=0, stdout=answers[command], stderr=""),
                                 system_info=types.SimpleNamespace(distribution="debian", codename="bookworm",
                                                                   release="12"))
    path = collect.collect_sbom(host, "gw-01", tmp_path)
    assert path == tmp_path / "sbom" / "gw-01.cdx.json"
    bom = json.loads(path.read_text())
    assert bom["metadata"]["component"]["version"] == "debian-bookworm"
    assert [c["name"] for c in bom["components"]] == ["openssl"]
    # The host's architecture, which the audit report shows beside the host (issue 22).
    assert host_architecture(bom) == "arm64"


def test_the_command_wires_collect_aggregate_once_render_and_write(tmp_path, monkeypatch, capsys):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all: {}\n")
    given = {}

    def run_audit(inventory, out, **kwargs):
        given.update(kwargs)
        return build_run()

    calls = []
    real_aggregate = aggregate_module.aggregate

    def counted(run, catalog):
        calls.append(run)
        return real_aggregate(run, catalog)

    report = types.SimpleNamespace(problems=["plc-01: no vendor"], zones=None)
    monkeypatch.setattr(collect, "resolve_inventory", lambda inventory, limit: {"_meta": {"hostvars": {"a": {}}}})
    monkeypatch.setattr(collect, "run_audit", run_audit)
    monkeypatch.setattr(aggregate_module, "aggregate", counted)
    monkeypatch.setattr("cityward.inventory.validate_inventory", lambda *args, **kwargs: report)
    args = types.SimpleNamespace(format="json,sarif", inventory=str(inventory), inventory_dir=None, limit=None,
                                 out=str(tmp_path / "out"), workers=None)

    assert audit_cmd._run(args) == 1  # mandatory controls failed, a host unreachable
    assert len(calls) == 1
    assert given["env"]["CONTAINERS_CONF"]
    out, err = capsys.readouterr()
    assert "cityward audit: metadata: plc-01: no vendor" in err
    assert out.splitlines()[0].split() == ["ZONE", "HOSTS", "PASSED", "FAILED", "ERROR", "NOT", "APPLICABLE",
                                           "SKIPPED", "UNREACHABLE"]
    assert "FAIL CW-SSH-02 " in out and "siem-01: unreachable: ssh" in out
    written = sorted(Path(line.removeprefix("report: ")).name for line in out.splitlines()
                     if line.startswith("report: "))
    assert written == ["report.json", "report.sarif"]
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["aggregate"]["summary"]["verdict"] == "fail"
