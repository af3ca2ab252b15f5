"""The registry of governance rules: one function per control, registered with the control's ID
and the host variables and record fields it reads.

    @rule("CW-GOV-02", reads=("cityward_device.support_end_of_life", "cityward_device.replacement_plan"))
    def vendor_support_not_ended(host: HostContext) -> Judgement:
        ...

A rule judges one host (a `HostContext`) and returns `PASSED`, `failed(reason)` or
`not_applicable(reason)`; `Rule.verdict` makes that the control's `Verdict`. `RULES` maps each
control ID to its rule; a control has one rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from cityward.catalog import CONTROL_ID

if TYPE_CHECKING:
    from cityward.governance.context import HostContext

Status = Literal["passed", "failed", "not_applicable"]


@dataclass(frozen=True)
class Verdict:
    """A control's verdict on one host; a reason unless it passed."""

    control: str
    status: Status
    reason: str = ""


@dataclass(frozen=True)
class Judgement:
    """What a rule found, before it is its control's verdict."""

    status: Status
    reason: str = ""


PASSED = Judgement("passed")


def failed(reason: str) -> Judgement:
    return Judgement("failed", reason)


def not_applicable(reason: str) -> Judgement:
    """The control does not apply to the host; `reason` starts 'not applicable: ' (the audit
    reports a check skipped with such a reason as not applicable, not as skipped)."""
    return Judgement("not_applicable", reason)


@dataclass(frozen=True)
class Rule:
    control: str  # the control ID, as policies/controls.yml has it
    reads: tuple[str, ...]  # host variables and record fields: "cityward_device.runbook", "cityward_log_retention"
    judge: Callable[[HostContext], Judgement]

    def verdict(self, host: HostContext) -> Verdict:
        found = self.judge(host)
        return Verdict(self.control, found.status, found.reason)


_registered: dict[str, Rule] = {}
RULES: Mapping[str, Rule] = MappingProxyType(_registered)


def rule(control: str, *, reads: tuple[str, ...]) -> Callable[[Callable[[HostContext], Judgement]],
                                                              Callable[[HostContext], Judgement]]:
    """Register the decorated function as the rule of `control`, reading `reads`."""
    if not CONTROL_ID.fullmatch(control):
        raise ValueError(f"not a control ID: {control!r}")
    if isinstance(reads, str) or not reads:
        raise ValueError(f"{control}: reads must be a tuple naming what the rule reads")

    def register(judge: Callable[[HostContext], Judgement]) -> Callable[[HostContext], Judgement]:
        if control in _registered:
            raise ValueError(f"{control} has a rule already: {_registered[control].judge.__qualname__}")
        _registered[control] = Rule(control, tuple(reads), judge)
        return judge

    return register
