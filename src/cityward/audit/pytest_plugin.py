"""A pytest plugin loaded by `cityward audit`: writes one JSON line per test with its outcome,
the control IDs of its `control` marker and the reason, to the file named by CITYWARD_RESULTS."""

from __future__ import annotations

import json
import os

_CONTROLS: dict[str, list[str]] = {}


def pytest_configure(config):
    # The checks run from wherever the wheel is installed, with no pytest configuration of a checkout.
    config.addinivalue_line("markers", "control(*ids): the cityward control ID(s) this test proves")


def pytest_collection_modifyitems(items):
    for item in items:
        _CONTROLS[item.nodeid] = [cid for mark in item.iter_markers("control") for cid in mark.args]


def _reason(report) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None:
        return crash.message.strip()[:1500]
    return str(report.longrepr or "")[-1500:]


def _outcome(report) -> str:
    if report.passed:
        return "passed"
    if report.skipped:
        return "not_applicable" if _reason(report).lower().startswith("not applicable") else "skipped"
    return "failed" if report.when == "call" else "error"


def pytest_runtest_logreport(report):
    # One line per test: the call phase, or the setup phase when it did not get that far.
    if report.when == "call" or (report.when == "setup" and not report.passed):
        path = os.environ.get("CITYWARD_RESULTS")
        if not path:
            return
        row = {
            "nodeid": report.nodeid,
            "control_ids": _CONTROLS.get(report.nodeid, []),
            "outcome": _outcome(report),
            "reason": "" if report.passed else _reason(report),
            "duration": round(report.duration, 3),
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
