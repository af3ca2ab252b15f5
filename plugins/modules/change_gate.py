#!/usr/bin/python
"""Documentation and argument spec of the cityward.hardening.change_gate action (plugins/action/change_gate.py).

The action does all its work on the controller; it never runs this module. ansible-doc and
ansible-lint read the documentation and the argument spec from here."""
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: change_gate
version_added: 0.2.0
short_description: Refuse an apply run that has no committed inventory or no dry run, and open its change record
description:
  - The change gate of C(playbooks/check.yml) (CW-GOV-10), run on the controller before any host is touched.
  - An apply run (not O(check)) is refused when the inventory folder is not a git work tree, has no commit, or has
    uncommitted changes (the change records left out), or when no successful C(--check --diff) run of the same
    inputs (the playbook, the inventory's content, the limit, the tags, the extra vars) is recorded within
    O(max_age_hours); an O(override) that gives a reason lets it go on, and the record keeps the reason and the
    rules it overrode. A dry run is never refused.
  - Writes the run's change record, C(<records_dir>/<id>.json), status C(started); the callback
    C(cityward.hardening.change_record) adds the end, each host's counts and the hosts changed (docs/change-records.md).
options:
  sources:
    description: The inventory sources of the run (ansible_inventory_sources).
    type: list
    elements: str
    required: true
  inventory_dir:
    description: The city's inventory folder when the inventory was generated elsewhere (cityward_inventory_dir).
    type: str
  records_dir:
    description: Where the change records are kept, relative to the inventory folder (default C(records/changes)).
    type: str
  hosts:
    description: The hosts the run targets (its limit applied).
    type: list
    elements: str
    required: true
  check:
    description: Whether the run is a dry run (ansible_check_mode).
    type: bool
    required: true
  diff:
    description: Whether the run shows its differences (ansible_diff_mode); only a dry run with them counts.
    type: bool
    default: false
  limit:
    description: The run's limit (ansible_limit).
    type: str
  tags:
    description: The run's tags (ansible_run_tags).
    type: list
    elements: str
    default: [all]
  skip_tags:
    description: The run's skipped tags (ansible_skip_tags).
    type: list
    elements: str
    default: []
  max_age_hours:
    description: How old the dry run may be, in hours, above 0 (cityward_change_dry_run_max_age_hours; default 24).
    type: raw
  override:
    description:
      - The reason this apply may go ahead without a committed inventory or a matching dry run
        (the environment variable CITYWARD_CHANGE_OVERRIDE); at least 10 characters on one line.
    type: str
  requested_by:
    description: Who asked for the run when it is not the controller's user (AWX's awx_user_name).
    type: str
attributes:
  check_mode: {support: full}
  diff_mode: {support: none}
  platform: {platforms: posix}
author: cityward maintainers
"""

EXAMPLES = r"""
- name: CW-GOV-10 | CHANGE | A committed inventory and a dry run of the same inputs, or an override with a reason
  cityward.hardening.change_gate:
    sources: "{{ ansible_inventory_sources }}"
    hosts: "{{ query('inventory_hostnames', ansible_limit | default('all')) }}"
    check: "{{ ansible_check_mode }}"
    diff: "{{ ansible_diff_mode }}"
    override: "{{ lookup('ansible.builtin.env', 'CITYWARD_CHANGE_OVERRIDE') }}"
  check_mode: false
"""

RETURN = r"""
id:
  description: The change's ID, CH-<UTC time>-<6 hex digits>.
  type: str
  returned: success
record:
  description: The path of the change record.
  type: str
  returned: success
line:
  description: The one line the hosts' journals get (what ran, from which commit, by whom, after which dry run).
  type: str
  returned: success
"""

ARGUMENT_SPEC = {
    "sources": {"type": "list", "elements": "str", "required": True},
    "inventory_dir": {"type": "str"},
    "records_dir": {"type": "str"},
    "hosts": {"type": "list", "elements": "str", "required": True},
    "check": {"type": "bool", "required": True},
    "diff": {"type": "bool", "default": False},
    "limit": {"type": "str"},
    "tags": {"type": "list", "elements": "str", "default": ["all"]},
    "skip_tags": {"type": "list", "elements": "str", "default": []},
    "max_age_hours": {"type": "raw"},
    "override": {"type": "str"},
    "requested_by": {"type": "str"},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="change_gate: run it as the action cityward.hardening.change_gate (a task of a play), "
                         "not as a module on its own")


if __name__ == "__main__":
    main()
