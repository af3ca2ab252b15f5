"""The TLS certificates the roles installed (log forwarding, the SIEM receiver, the MQTT broker),
judged against the city's renewal threshold: a certificate that expires within
`cityward_certificate_renew_days` days (inventory; 30 when unset) fails its control, so that the
audit names it while there is still time to renew it, not on the day the forwarding stops."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509

# The one default of the threshold: no role renews certificates (a city's PKI does), so only the
# audit reads it.
RENEW_DAYS_DEFAULT = 30
RENEW_DAYS_VARIABLE = "cityward_certificate_renew_days"


def threshold(hostvars: Mapping[str, Any]) -> int:
    """The host's renewal threshold in days; fails the running check for a value that is not a
    whole number of days."""
    __tracebackhide__ = True
    value = hostvars.get(RENEW_DAYS_VARIABLE, RENEW_DAYS_DEFAULT)
    if isinstance(value, bool) or not str(value).isdigit():
        pytest.fail(f"{RENEW_DAYS_VARIABLE} must be a whole number of days (0 or more), not {value!r}", pytrace=False)
    return int(value)


def expiry_problem(path: str, pem: str, days: int, now: datetime | None = None) -> str:
    """'' when the certificate in `pem` (read from `path`) is valid for more than `days` days, else
    what is wrong with it, in one line."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        return f"{path} is no PEM certificate: {exc}"
    now = now or datetime.now(UTC)
    expires = certificate.not_valid_after_utc
    if expires <= now:
        return f"{path} expired {expires:%Y-%m-%d %H:%M} UTC"
    if expires - now < timedelta(days=days):
        left = expires - now
        return (f"{path} expires {expires:%Y-%m-%d %H:%M} UTC, in {left.days} days {left.seconds // 3600} hours: "
                f"inside the renewal threshold of {days} days ({RENEW_DAYS_VARIABLE}); renew it now")
    return ""
