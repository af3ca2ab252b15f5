"""How a check says that its control does not apply to the host: `not_applicable(reason)`.

A control that does not apply (a kernel control in a container, an MQTT check on a host that is
no gateway) is an outcome of its own, not a skip: the check calls `not_applicable(reason)` and
`cityward audit` records the outcome not_applicable, recognised by the exception's type (never by
the reason's text). pytest and Molecule verify still show it as a skip. `pytest.skip` stays for a
check that cannot say for another reason (outcome skipped).
"""

from __future__ import annotations

from typing import NoReturn

import pytest


class NotApplicable(pytest.skip.Exception):
    """A skip meaning: this control does not apply to this host (the reason says why)."""

    # pytest shows an outcome exception as "<type>: <reason>", the type with its module unless
    # that is builtins (where pytest places its own Skipped): "NotApplicable: <reason>".
    __module__ = "builtins"


def not_applicable(reason: str) -> NoReturn:
    """End the running check (or fixture) with the outcome not_applicable, for `reason`."""
    __tracebackhide__ = True  # pytest reports the check's line, as for pytest.skip
    raise NotApplicable(reason)
