"""The lookup cityward.hardening.waived_controls: the city's waivers in force today, per host, for
the check play of playbooks/site.yml (playbooks/check.yml), which hands each host the list as
cityward_waived_controls (roles/preflight) and prints what it switches off there.

The waiver file is read with the cityward package (cityward.waivers, as `cityward check` reads it
just before, in the same Python): that check has already refused a bad file, so names are not
judged again here, and no inventory is listed; the play's `groups` expand group names."""

from __future__ import annotations

DOCUMENTATION = r"""
name: waived_controls
author: cityward maintainers
version_added: 0.2.0
short_description: The controls a city's waivers cover today, per host, and which of them the roles switch off
description:
  - Reads records/waivers.yml of each inventory folder (docs/waivers.md) with the cityward package, leaves out
    the waivers past their expiry, expands group names through O(groups) and returns one mapping of each covered
    host to its waivers, sorted by control.
  - Each waiver says whether the roles switch its control off on the host (its tasks are skipped) or still apply it
    (access and lockout safety, or tasks shared with another control); the audit reports both as waived.
  - Run it after C(cityward check), which refuses a bad file with one line per problem.
options:
  sources:
    description: The inventory sources of the run (ansible_inventory_sources).
    type: list
    elements: str
    required: true
  inventory_dir:
    description:
      - The city's inventory folder when the inventory was generated elsewhere (cityward_inventory_dir), where its
        records are. Unset, each source's own folder.
    type: str
  groups:
    description: Every group of the inventory with all the hosts under it (the play's C(groups)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Read the controls waived today on each host
  ansible.builtin.set_fact:
    _cityward_waived: >-
      {{ query('cityward.hardening.waived_controls', sources=ansible_inventory_sources, groups=groups) | first }}
"""

RETURN = r"""
_raw:
  description:
    - One mapping of host to a list of its waivers, each with control, reason, approver, expires (YYYY-MM-DD),
      ticket, switched_off (true when the roles skip the control's tasks there) and text (one line for the run).
  type: list
  elements: dict
"""

from pathlib import Path  # noqa: E402 (after the documentation, as Ansible's plugins are written)

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402

# The controls whose tasks a waiver switches off on its hosts: each implemented by tasks of its own
# (no other control's setting in them) whose skipping leaves nothing half-applied, and none guarding
# access or lockout safety. docs/waivers.md says why each other control is not one of them;
# tests/unit/test_waiver_switches.py holds the roles' tasks and that table to this set.
SWITCHABLE = frozenset({"CW-KRN-05", "CW-BASE-01", "CW-BASE-03", "CW-BASE-04", "CW-BASE-05"})


def entry(waiver, host: str) -> dict:
    """A cityward.waivers.CoveredWaiver on `host` as the play reads it, with its one line for the run."""
    ticket = f", ticket {waiver.ticket}" if waiver.ticket else ""
    why = f"{waiver.reason} (approved by {waiver.approver}, expires {waiver.expires.isoformat()}{ticket})"
    switched_off = waiver.control in SWITCHABLE
    if switched_off:
        text = f"{host}: {waiver.control} switched off, its tasks skipped: waived, {why}"
    else:
        text = (f"{host}: {waiver.control} still applied wherever a role applies it (a waiver cannot switch it off: "
                f"docs/waivers.md); the audit reports it waived: {why}")
    return {"control": waiver.control, "reason": waiver.reason, "approver": waiver.approver,
            "expires": waiver.expires.isoformat(), "ticket": waiver.ticket, "switched_off": switched_off,
            "text": text}


def waived_controls(sources, groups, inventory_dir=None) -> dict[str, list[dict]]:
    """{host: [entry, ...]} of the waiver files of `sources` (each file once)."""
    try:
        from cityward.errors import CitywardError
        from cityward.waivers import read_waivers, waived_per_host, waivers_path
    except ImportError as exc:
        raise AnsibleLookupError(f"the cityward package is not installed next to Ansible ({exc}): pip install the "
                                 "cityward wheel there, or run the play from its virtualenv") from None
    per_host: dict[str, list[dict]] = {}
    read: set[Path] = set()
    for source in sources:
        try:
            path = waivers_path(source, inventory_dir).resolve()
            if path in read:
                continue
            read.add(path)
            # Names were judged by `cityward check` against the whole inventory: read as a slice does.
            found = read_waivers(source, inventory_dir=inventory_dir, sliced=True)
        except (CitywardError, OSError) as exc:
            raise AnsibleLookupError(f"{source}: waivers not read: {exc}") from None
        if found.problems:
            raise AnsibleLookupError("; ".join(str(problem) for problem in found.problems))
        for host, waivers in waived_per_host(found.waivers, groups).items():
            per_host.setdefault(host, []).extend(entry(waiver, host) for waiver in waivers)
    return {host: sorted(per_host[host], key=lambda item: item["control"]) for host in sorted(per_host)}


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [waived_controls(self.get_option("sources"), self.get_option("groups"),
                                self.get_option("inventory_dir") or None)]
