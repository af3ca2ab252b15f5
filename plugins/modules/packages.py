#!/usr/bin/python
"""Documentation and argument spec of the cityward.hardening.packages action (plugins/action/packages.py).

The action does all the work on the controller and over the open connection; it never runs this
module. ansible-doc and ansible-lint read the documentation and the argument spec from here."""
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: packages
version_added: 0.2.0
short_description: A role's Debian packages in one task; no module run when nothing is to do
description:
  - Reads dpkg's state of every package, and the age of the package index, with one shell command
    on the open connection. Only a package to install or purge goes to M(ansible.builtin.apt), the
    ones to install in one transaction, the ones to remove in another. So a host that is already
    right costs one command instead of an apt run (apt opens python-apt's cache, about 0.4 s, on
    every run).
  - The index is refreshed first when something is to install (or O(update_cache) is set) and it
    is older than O(cache_valid_time); also under check mode, where apt can only predict from a
    current index.
  - Names are checked before the host is asked; a bad one fails the task naming the field and entry.
options:
  present:
    description: Plain Debian package names to have installed (no version, wildcard or architecture).
    type: list
    elements: str
    default: []
  absent:
    description: Plain Debian package names to have removed.
    type: list
    elements: str
    default: []
  purge:
    description: Remove the configuration files of O(absent) packages too.
    type: bool
    default: false
  install_recommends:
    description: Passed to M(ansible.builtin.apt) for the packages to install.
    type: bool
  update_cache:
    description: Refresh the index when it is older than O(cache_valid_time), even with nothing to install.
    type: bool
    default: false
  cache_valid_time:
    description:
      - Seconds an index stays current. Defaults to the inventory's C(cityward_apt_cache_valid_time), else 3600.
    type: int
attributes:
  check_mode: {support: full}
  diff_mode: {support: full}
  platform: {platforms: debian}
author: cityward maintainers
"""

EXAMPLES = r"""
- name: CW-FW-02 | Install nftables
  cityward.hardening.packages:
    present: [nftables]

- name: CW-BASE-01 | Purge legacy network services in one transaction
  cityward.hardening.packages:
    absent: [telnetd, rsh-server]
    purge: true
"""

RETURN = r"""
to_install: {description: Packages that were (or under check mode would be) installed, type: list, returned: always}
to_remove: {description: Packages that were (or would be) removed, type: list, returned: always}
cache_updated: {description: Whether the package index was refreshed, type: bool, returned: always}
"""

ARGUMENT_SPEC = {
    "present": {"type": "list", "elements": "str", "default": []},
    "absent": {"type": "list", "elements": "str", "default": []},
    "purge": {"type": "bool", "default": False},
    "install_recommends": {"type": "bool"},
    "update_cache": {"type": "bool", "default": False},
    "cache_valid_time": {"type": "int"},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="packages: run it as the action cityward.hardening.packages (a task of a play), "
                         "not as a module on its own")


if __name__ == "__main__":
    main()
