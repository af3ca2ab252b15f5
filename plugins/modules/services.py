#!/usr/bin/python
"""Documentation and argument spec of the cityward.hardening.services action (plugins/action/services.py).

The action does all the work on the controller and over the open connection; it never runs this
module. ansible-doc and ansible-lint read the documentation and the argument spec from here."""
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: services
version_added: 0.2.0
short_description: Keep systemd units enabled and running (or not) in one task; no module run when they are
description:
  - Reads the load, active and unit-file state of every unit with one C(systemctl show) on the open
    connection. A unit already exactly as asked is left alone; every other one (not loaded,
    activating, static, failed, unknown) goes to M(ansible.builtin.systemd_service) with the same
    options, so check mode, errors and daemon-reload are that module's.
  - Names are checked before the host is asked; a bad one fails the task naming the field and entry.
options:
  names:
    description: systemd unit names.
    type: list
    elements: str
    required: true
  enabled:
    description: Whether the units start at boot.
    type: bool
  state:
    description: Whether the units run now.
    type: str
    choices: [started, stopped]
  daemon_reload:
    description: Reload systemd's configuration first (the module then handles every unit).
    type: bool
    default: false
attributes:
  check_mode: {support: full}
  diff_mode: {support: none}
  platform: {platforms: posix}
author: cityward maintainers
"""

EXAMPLES = r"""
- name: CW-FW-02 | Load the ruleset at boot
  cityward.hardening.services:
    names: nftables
    enabled: true
    state: started
"""

RETURN = r"""
units:
  description: One entry per unit, with whether it had to go to the module.
  type: list
  elements: dict
  returned: always
"""

ARGUMENT_SPEC = {
    "names": {"type": "list", "elements": "str", "required": True},
    "enabled": {"type": "bool"},
    "state": {"type": "str", "choices": ["started", "stopped"]},
    "daemon_reload": {"type": "bool", "default": False},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="services: run it as the action cityward.hardening.services (a task of a play), "
                         "not as a module on its own")


if __name__ == "__main__":
    main()
