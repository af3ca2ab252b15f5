"""The tampering proof's pure pieces (tests/scenarios/tampering.py), without a host: the failures
the real checks raise on tampered state, through the real aggregate and renderers, read back from
report.json and report.sarif and judged; the table's consistency with the checks' control markers
and the catalog; the probe of the host's state; the order of the fault tests."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from managed_state import FIRST, ROOT, SECOND
from tampering import (
    BY_KEY,
    EXPECTED,
    LISTEN_PORT,
    NO_SCANNERS,
    PROBE,
    RULE_PORT,
    RULESET,
    SUDO_USER,
    SUDOERS_DROPIN,
    SYSCTL,
    SYSCTL_LINE,
    TAMPERINGS,
    UID0_NAME,
    ReportError,
    audit_command,
    failed_in_report,
    failed_in_sarif,
    parse_probe,
    present,
    problems,
)

from cityward.audit.aggregate import aggregate
from cityward.audit.model import AuditRun, CheckResult, HostResult, Outcome
from cityward.audit.write import write_reports
from cityward.catalog import load_catalog
from cityward.checks import test_accounts as accounts_checks
from cityward.checks import test_baseline as baseline_checks
from cityward.checks import test_firewall as firewall_checks
from cityward.checks import test_kernel as kernel_checks
from cityward.checks import test_logging as logging_checks

AIDE_REPORT = f"""Start timestamp: 2026-11-24 08:00:01 +0000 (AIDE 0.18.3)
AIDE found differences between database and filesystem!!

Summary:
  Total number of entries:\t9120
  Added entries:\t\t1
  Removed entries:\t\t0
  Changed entries:\t\t5

---------------------------------------------------
Added entries:
---------------------------------------------------

f++++++++++++++++: {SUDOERS_DROPIN}

---------------------------------------------------
Changed entries:
---------------------------------------------------

d =.... mc.. .. .: /etc
f >.... mc.. .. H: /etc/passwd
f >.... mc.. .. H: /etc/shadow
d =.... mc.. .. .: /etc/sudoers.d
f >.... mc.. .. H: {SYSCTL}
"""


class FakeSudoHost:
    """What the sudo check reads from a host whose sudoers.d holds the tampering's drop-in."""

    rules = f"%cw-admins ALL=(ALL:ALL) ALL\ncityward ALL=(ALL) NOPASSWD: ALL\n{SUDO_USER} ALL=(ALL:ALL) ALL\n"

    def run(self, command):
        return SimpleNamespace(rc=0, stdout="", stderr="")

    def check_output(self, command):
        return self.rules


def _failure(check, *args) -> str:
    """The reason the audit's pytest plugin records for `check` failing on these inputs."""
    with pytest.raises(AssertionError) as raised:
        check(*args)
    return f"AssertionError: {raised.value}"[:1500]


def _tampered_reasons() -> dict[str, str]:
    """{check name: reason} from the real checks on the tampered state TAMPERINGS leaves."""
    dropin = kernel_checks.parse_sysctl(f"net.ipv4.conf.all.accept_redirects = 0\n{SYSCTL_LINE}\n")
    applied_kernel = {"sysctl_network": {"net.ipv4.conf.all.accept_redirects": "0"}, "sysctl_overridden": {}}
    listeners = ('tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))\n'
                 f'tcp LISTEN 0 5 0.0.0.0:{LISTEN_PORT} 0.0.0.0:* users:(("python3",pid=77,fd=3))\n')
    listen_state = {"allowlist_stat": (0, "root 644"), "allowlist": (0, "tcp/22\ntcp/4840\n"),
                    "listeners": (0, listeners)}
    passwd = {name: [name, "x", uid, "0", "", "/root", "/bin/sh"] for name, uid in
              (("root", "0"), ("daemon", "1"), (UID0_NAME, "0"))}
    record = {"ssh_port": 22, "management_sources": ["10.88.0.1/32"], "controller": None, "inbound": [],
              "outbound": [], "dns_resolvers": [], "zone": "ot-operations", "zone_kind": "ot",
              "egress_limited": True, "forward_policy": "drop", "log_dropped": False}
    expected = firewall_checks.Expected.from_record(record)
    rules = [firewall_checks.Rule("accept", proto="tcp", port=RULE_PORT),  # inserted first, by hand
             firewall_checks.Rule("accept", address=expected.management[0], proto="tcp", port=22)]
    live = firewall_checks.Ruleset(chains={"input": {"hook": "input", "policy": "drop"},
                                           "forward": {"hook": "forward", "policy": "drop"},
                                           "output": {"hook": "output", "policy": "drop"}},
                                   rules={"input": rules, "forward": [], "output": []})
    accounts = {"breakglass_user": "breakglass", "automation_user": "cityward", "sudo_group": "cw-admins"}
    checks = {
        kernel_checks.test_network_sysctls_configured: (applied_kernel, dropin, dropin),
        logging_checks.test_running_rsyslog_loaded_the_forwarding_and_listens_for_nothing: (
            {"rsyslog_active": (3, "inactive\n")}, None),
        baseline_checks.test_only_allowlisted_sockets_listen: (listen_state,
                                                               {"listen_allowlist": ["tcp/22", "tcp/4840"]}),
        accounts_checks.test_only_root_has_uid_zero: (passwd,),
        accounts_checks.test_sudo_through_a_group_and_one_documented_nopasswd: (FakeSudoHost(), accounts),
        firewall_checks.test_input_is_default_deny_and_opens_only_the_conduits_into_the_zone: (live, expected),
        baseline_checks.test_aide_check_finds_no_change: ({"aide_check": (5, AIDE_REPORT)},),
    }
    return {check.__name__: _failure(check, *args) for check, args in checks.items()}


def _result(host, name, controls, outcome=Outcome.PASSED, reason=""):
    return CheckResult(host=host, nodeid=f"test_x.py::{name}", name=name, control_ids=list(controls),
                       outcome=outcome, reason=reason, duration=0.1)


def _run(first_checks: list[CheckResult], first_reachable: bool = True) -> AuditRun:
    """FIRST with the given checks; SECOND failing a control of its own (never FIRST's)."""
    first = HostResult(FIRST, "ot-operations", first_reachable, "" if first_reachable else "unreachable: gone", {},
                       first_checks if first_reachable else [])
    second = HostResult(SECOND, "ot-operations", True, "", {}, [
        _result(SECOND, "test_key_only_no_root_no_empty_passwords", ["CW-SSH-01"], Outcome.FAILED,
                "AssertionError: sshd -T permitrootlogin: expected 'no', found 'yes'")])
    return AuditRun(inventory="molecule", started="2026-11-24T08:00:00+00:00", finished="2026-11-24T08:00:40+00:00",
                    hosts=[first, second], cityward_version="0.1.0")


def _tampered_checks(reasons: dict[str, str] | None = None) -> list[CheckResult]:
    """FIRST's checks after the tampering: each expected check failed with the real reason, others passed."""
    reasons = reasons if reasons is not None else _tampered_reasons()
    by_check: dict[str, list[str]] = {}
    for control, want in EXPECTED.items():
        by_check.setdefault(want.check, []).append(control)
    failed = [_result(FIRST, name, controls, Outcome.FAILED, reasons[name]) for name, controls in by_check.items()]
    return failed + [_result(FIRST, "test_key_only_no_root_no_empty_passwords", ["CW-SSH-01"]),
                     _result(FIRST, "test_kernel_sysctls_configured", ["CW-KRN-02"]),
                     _result(FIRST, "test_network_sysctls_live", ["CW-KRN-01"], Outcome.NOT_APPLICABLE, "container")]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _read(run: AuditRun, catalog, out: Path) -> tuple[dict[str, str], dict[str, str]]:
    write_reports(aggregate(run, catalog), {"json", "sarif"}, out)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    sarif = json.loads((out / "report.sarif").read_text(encoding="utf-8"))
    return failed_in_report(report, FIRST), failed_in_sarif(sarif, FIRST)


def test_the_real_checks_failures_on_tampered_state_pass_the_judgement(catalog, tmp_path):
    report, sarif = _read(_run(_tampered_checks()), catalog, tmp_path)
    assert set(report) == set(sarif) == set(EXPECTED)
    assert problems(report, sarif, EXPECTED, FIRST) == []
    assert sarif["CW-ACC-04"].startswith(f"CW-ACC-04 failed on {FIRST}: test_only_root_has_uid_zero: ")
    assert f"found ['root', '{UID0_NAME}']" in report["CW-ACC-04"]


def test_a_control_no_tampering_explains_is_a_problem(catalog, tmp_path):
    extra = _result(FIRST, "test_port_and_methods_are_those_applied", ["CW-SSH-01"], Outcome.FAILED,
                    "AssertionError: sshd -T port: expected '22', found '2222'")
    report, sarif = _read(_run([*_tampered_checks(), extra]), catalog, tmp_path)
    found = problems(report, sarif, EXPECTED, FIRST)
    assert len(found) == 1 and found[0].startswith(f"CW-SSH-01 failed on {FIRST}, but no tampering explains it")


def test_a_tampering_the_audit_missed_is_a_problem(catalog, tmp_path):
    checks = [c if c.name != "test_only_root_has_uid_zero" else _result(FIRST, c.name, c.control_ids)
              for c in _tampered_checks()]
    report, sarif = _read(_run(checks), catalog, tmp_path)
    assert problems(report, sarif, EXPECTED, FIRST) == [
        f"CW-ACC-04 did not fail on {FIRST}; expected from: a second UID-0 account ({UID0_NAME})"]


def test_a_failure_that_does_not_say_expected_and_found_is_a_problem(catalog, tmp_path):
    reasons = _tampered_reasons()
    reasons["test_only_root_has_uid_zero"] = "AssertionError: assert ['root', 'toor'] == ['root']"
    report, sarif = _read(_run(_tampered_checks(reasons)), catalog, tmp_path)
    found = problems(report, sarif, EXPECTED, FIRST)
    assert len(found) == 1
    assert found[0].startswith(f"CW-ACC-04: the failure does not show ['expected', 'found', '{UID0_NAME}']")


def test_a_failure_missing_from_sarif_or_naming_another_host_is_a_problem(catalog, tmp_path):
    report, sarif = _read(_run(_tampered_checks()), catalog, tmp_path)
    del sarif["CW-FW-01"]
    sarif["CW-FW-02"] = sarif["CW-FW-02"].replace(FIRST, SECOND)
    assert problems(report, sarif, EXPECTED, FIRST) == [
        f"CW-FW-01: failed in report.json, no failure on {FIRST} in report.sarif",
        f"CW-FW-02: the SARIF message does not name the control and host: {sarif['CW-FW-02'][:200]}"]


def test_the_other_hosts_failures_are_not_the_first_hosts(catalog, tmp_path):
    report, sarif = _read(_run(_tampered_checks()), catalog, tmp_path)
    assert "CW-SSH-01" not in report and "CW-SSH-01" not in sarif


def test_an_unreadable_report_is_one_line_naming_file_host_and_field(catalog, tmp_path):
    write_reports(aggregate(_run([], first_reachable=False), catalog), {"json"}, tmp_path)
    document = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    unreachable = rf"^report.json: host {FIRST}, field reachable: false \(unreachable: gone\)$"
    with pytest.raises(ReportError, match=unreachable):
        failed_in_report(document, FIRST)
    with pytest.raises(ReportError, match=r"^report.json: field aggregate.hosts: host elsewhere not in the report"):
        failed_in_report(document, "elsewhere")
    with pytest.raises(ReportError, match=r"^report.json: field format: expected 'cityward-audit-report/1', "
                                          r"found 'x'$"):
        failed_in_report({**document, "format": "x"}, FIRST)
    with pytest.raises(ReportError, match=r"^report.sarif: field runs.0.results: missing$"):
        failed_in_sarif({"runs": []}, FIRST)


def test_the_audit_command_uses_only_options_cityward_audit_has():
    command = audit_command("cityward", "inv", FIRST, "out")
    assert command[-1] == NO_SCANNERS and command[command.index("--limit") + 1] == FIRST
    cli = Path(sys.executable).parent / "cityward"
    usage = subprocess.run([str(cli), "audit", "--help"], capture_output=True, text=True, check=True).stdout
    assert {word for word in command if word.startswith("-")} <= set(re.findall(r"--?[a-z][a-z-]*", usage))


def test_the_probe_tells_each_tampering_apart():
    clean = {t.key: t.clean for t in TAMPERINGS}
    text = "\n".join(f"{key}={value}" for key, value in clean.items()) + f"\n{RULESET}=abc123\n"
    assert parse_probe(text) == {**clean, RULESET: "abc123"}
    assert present(parse_probe(text)) == []
    assert present({**clean, "uid0": f"root,{UID0_NAME}", "service": "inactive"}) == ["service", "uid0"]
    assert present({}) == [t.key for t in TAMPERINGS]  # a probe that printed nothing proves nothing
    assert PROBE.count("echo ") == len(TAMPERINGS) + 1


def _markers() -> dict[str, set[str]]:
    """{check function: its control IDs} from the `pytest.mark.control(...)` decorators of src/cityward/checks."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "src" / "cityward" / "checks").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                for decorator in node.decorator_list:
                    if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "control":
                        found.setdefault(node.name, set()).update(a.value for a in decorator.args)
    return found


def test_each_expected_control_is_its_checks_marker_and_caused_by_a_tampering(catalog):
    markers = _markers()
    for control, want in EXPECTED.items():
        assert control in markers.get(want.check, set()), f"{want.check} is not marked {control}"
        assert want.caused_by and set(want.caused_by) <= set(BY_KEY), f"{control}: {want.caused_by}"
        entry = catalog.get(control)
        assert entry.status == "implemented" and entry.mandatory, control
    assert {key for want in EXPECTED.values() for key in want.caused_by} == set(BY_KEY)
    assert len(BY_KEY) == len(TAMPERINGS) == 6


def _fault_order(conftest: Path, items) -> list[str]:
    spec = importlib.util.spec_from_file_location("faults_conftest_under_test", conftest)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.pytest_collection_modifyitems(items)
    return [item.name for item in items]


def test_tampering_runs_after_the_checks_and_before_the_reliability_faults_the_lost_host_last():
    faults, checks = ROOT / "tests" / "faults", ROOT / "src" / "cityward" / "checks"

    def item(path, name):
        return SimpleNamespace(path=path, name=name, originalname=name.split("[")[0])

    items = [item(faults / "test_reliability.py", "test_a_host_lost_mid_run_does_not_stop_the_other"),
             item(faults / "test_reliability.py", "test_one_bad_entry_changes_no_host"),
             item(faults / "test_tampering.py", "test_the_audit_fails_exactly_the_tampered_controls"),
             item(checks / "test_accounts.py", "test_only_root_has_uid_zero[podman://cw]"),
             item(faults / "test_reliability.py", "test_audit_and_runs_never_show_a_secret"),
             item(ROOT / "tests" / "scenarios" / "test_slicing.py", "test_slices")]
    assert _fault_order(faults / "conftest.py", items) == [
        "test_only_root_has_uid_zero[podman://cw]", "test_slices",
        "test_the_audit_fails_exactly_the_tampered_controls",
        "test_one_bad_entry_changes_no_host", "test_audit_and_runs_never_show_a_secret",
        "test_a_host_lost_mid_run_does_not_stop_the_other"]
