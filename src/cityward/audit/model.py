"""The audit's records: what collect gathered per check and per host (CheckResult, HostResult,
AuditRun), and the outcome vocabulary of one check (Outcome)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    """How one check ended on one host. The check decides NOT_APPLICABLE itself (it calls
    cityward.checks.outcomes.not_applicable); the audit's pytest plugin reads the rest from pytest."""

    PASSED = "passed"
    FAILED = "failed"  # an assertion of the check failed
    ERROR = "error"  # the check could not run to its assertions (a fixture or setup failed)
    SKIPPED = "skipped"  # pytest.skip: the check could not say, for a reason other than n/a
    NOT_APPLICABLE = "not_applicable"  # the control does not apply to this host


OUTCOMES = tuple(Outcome)


@dataclass
class CheckResult:
    host: str
    nodeid: str
    name: str
    control_ids: list[str]
    outcome: Outcome
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
    # The independent scanners' evidence (CW-GOV-07, cityward.audit.scanners): per scanner its
    # status, version, raw output files, summary and findings with their disposition.
    scanners: list[dict] = field(default_factory=list)
    # The host's architecture as dpkg names it (amd64, arm64), read from its SBOM (CW-GOV-06).
    architecture: str = ""


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
    # The city's waivers that cover hosts of the inventory (cityward.waivers.CoveredWaiver.as_data:
    # entry, control, names, hosts, reason, approver, expires, ticket), read before any host was
    # contacted: the aggregate judges with them, and report.json keeps them as evidence.
    waivers: list[dict] = field(default_factory=list)
