"""The `applied_fact` filter: a role's record of the settings it applied, as the audit reads it.

    content: "{{ _kernel_applied | cityward.hardening.applied_fact('kernel') }}"

The format and its seal are in plugin_utils/applied.py, shared with the checks that read it.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.cityward.hardening.plugins.plugin_utils.applied import render


def applied_fact(settings, role: str) -> str:
    try:
        return render(role, settings)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"applied_fact({role!r}): {exc}") from None


class FilterModule:
    """cityward record of applied settings."""

    def filters(self):
        return {"applied_fact": applied_fact}
