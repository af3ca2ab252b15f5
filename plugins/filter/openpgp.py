"""The `openpgp_key` filter: fingerprint, creation and expiry of an armored OpenPGP key (issue 24).

    {{ update_mirror_signing_key | cityward.hardening.openpgp_key('update_mirror_signing_key') }}

Used by the update_mirror and patching roles to refuse a missing, expired or mismatched signing
key on the controller, before any host is touched. The key text is never shown in an error.
"""

from __future__ import annotations

import datetime as dt

from ansible.errors import AnsibleFilterError
from ansible_collections.cityward.hardening.plugins.plugin_utils.openpgp import KeyReadError, read_key


def openpgp_key(text, name: str = "value") -> dict:
    if not isinstance(text, str) or not text.strip():
        raise AnsibleFilterError(f"{name}: no OpenPGP key given (an ASCII-armored key block is required)")
    try:
        key = read_key(text)
    except KeyReadError as exc:
        raise AnsibleFilterError(f"{name}: not a readable OpenPGP key: {exc}") from None
    # Whole days of validity left (negative once expired); None: the key does not expire.
    left = (key.expires - dt.datetime.now(dt.UTC)).days if key.expires else None
    return {**key.as_dict(), "days_left": left}


class FilterModule:
    """cityward OpenPGP key reader."""

    def filters(self):
        return {"openpgp_key": openpgp_key}
