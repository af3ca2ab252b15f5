"""Governance rule on data retention: a legal, security and privacy risk review sets a
data-retention limit, and the host keeps its logs no longer than that (CW-GOV-09)."""

from __future__ import annotations

import math

from cityward.governance.context import HostContext
from cityward.governance.registry import PASSED, Judgement, failed, rule
from cityward.log_settings import log_retention


@rule("CW-GOV-09", reads=("cityward_device.risk_review", "logging_journal_max_retention", "cityward_log_retention"))
def risk_review_sets_retention(host: HostContext) -> Judgement:
    """The risk review is dated, sets data_retention_days, and the journal is kept no longer."""
    review = host.fields.get("risk_review")
    kept, kept_from = log_retention(host.hostvars)
    if review is None:
        return failed("no valid cityward_device.risk_review")
    if review.date > host.today:
        return failed(f"risk review {review.reference} is dated in the future ({review.date})")
    if review.data_retention_days is None:
        return failed(f"risk review {review.reference} sets no data_retention_days")
    if kept is None:
        return failed(f"cannot read the log retention {kept_from}")
    if math.floor(kept) > review.data_retention_days:  # '1y' is 365.25 days: a year is fine
        return failed(f"logs are kept {kept:g} days ({kept_from}), longer than the "
                      f"{review.data_retention_days} days set by {review.reference}")
    return PASSED
