"""Fault tests (molecule/default): they change and stop the scenario's hosts on purpose, so they
run after every read-only check of the scenario, whatever order Molecule lists the files in:
first the tampering proof (it needs the converged state the checks verified, and undoes what it
changes), then the reliability faults, and last the host lost mid-run (it stops a container;
destroy follows)."""

from __future__ import annotations

TAMPERING = "test_tampering.py"
LOST_HOST = "test_a_host_lost_mid_run_does_not_stop_the_other"


def run_order(item) -> int:
    """0 the read-only checks and other scenario tests, 1 tampering, 2 the other faults, 3 the lost host."""
    if "faults" not in item.path.parts:
        return 0
    if item.path.name == TAMPERING:
        return 1
    return 3 if getattr(item, "originalname", item.name) == LOST_HOST else 2


def pytest_collection_modifyitems(items):
    items.sort(key=run_order)
