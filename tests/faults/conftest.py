"""Fault tests (molecule/default): they change and stop the scenario's hosts on purpose, so they
run after every read-only check of the scenario, whatever order Molecule lists the files in."""

from __future__ import annotations


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: "faults" in item.path.parts)
