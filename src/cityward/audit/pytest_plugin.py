"""A pytest plugin loaded by `cityward audit`: writes one JSON line per test with its outcome
(cityward.audit.model.Outcome), the control IDs of its `control` marker and the reason, to the
file named by CITYWARD_RESULTS. A check that raised cityward.checks.outcomes.NotApplicable is
not_applicable, told by the exception's type; any other skip is skipped. A fixture that ends the
check with pytest.fail (the evidence it needs is missing) makes it failed; any other exception
outside the check's body is an error."""

from __future__ import annotations

import json
import os

import pytest

from cityward.audit.model import Outcome
from cityward.checks.outcomes import NotApplicable

_CONTROLS: dict[str, list[str]] = {}
# Set on a report whose phase ended in NotApplicable: the reason the check gave.
_NOT_APPLICABLE = "cityward_not_applicable"
# Set on a setup report ended by pytest.fail: a fixture judged the host (e.g. "evidence missing:
# the role's record is absent"), which is the check failing, not the check crashing.
_FAILED_IN_SETUP = "cityward_failed_in_setup"


def pytest_configure(config):
    # The checks run from wherever the wheel is installed, with no pytest configuration of a checkout.
    config.addinivalue_line("markers", "control(*ids): the cityward control ID(s) this test proves")


def pytest_collection_modifyitems(items):
    for item in items:
        _CONTROLS[item.nodeid] = [cid for mark in item.iter_markers("control") for cid in mark.args]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, NotApplicable):
        # the reason as pytest words a skip, "Skipped: " excepted
        setattr(report, _NOT_APPLICABLE, str(call.excinfo.value).rstrip())
    elif call.when == "setup" and call.excinfo is not None and isinstance(call.excinfo.value, pytest.fail.Exception):
        setattr(report, _FAILED_IN_SETUP, True)
    return report


def _reason(report) -> str:
    if hasattr(report, _NOT_APPLICABLE):
        return getattr(report, _NOT_APPLICABLE)
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None:  # pytest.fail's message without pytest's "Failed: " in front of it
        return crash.message.strip().removeprefix("Failed: ")[:1500]
    return str(report.longrepr or "")[-1500:]


def _outcome(report) -> Outcome:
    if report.passed:
        return Outcome.PASSED
    if report.skipped:
        return Outcome.NOT_APPLICABLE if hasattr(report, _NOT_APPLICABLE) else Outcome.SKIPPED
    return Outcome.FAILED if report.when == "call" or hasattr(report, _FAILED_IN_SETUP) else Outcome.ERROR


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
