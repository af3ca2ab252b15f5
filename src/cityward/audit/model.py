"""The audit's results, as the runner records them and the reports read them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CheckResult:
    host: str
    nodeid: str
    name: str
    control_ids: list[str]
    outcome: str  # "passed" | "failed" | "skipped" | "not_applicable" | "error"
    reason: str  # failure message (first lines), or skip / n.a. reason; "" when passed
    duration: float


@dataclass
class HostResult:
    name: str
    zone: str | None
    reachable: bool
    error: str  # error: why unreachable / metadata problems
    metadata: dict  # cityward_device as given
    checks: list[CheckResult]


@dataclass
class AuditRun:
    inventory: str
    started: str  # ISO 8601 UTC
    finished: str  # ISO 8601 UTC
    hosts: list[HostResult]
    cityward_version: str
    # The zones policy's exceptions in force (its rules knowingly waived), one line each with the
    # reason, approver and expiry: evidence an auditor must see beside the results.
    policy_exceptions: list[str] = field(default_factory=list)
