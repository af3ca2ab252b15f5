#!/usr/bin/python
"""Documentation and argument spec of the cityward.hardening.directories action (plugins/action/directories.py).

The action does all the work on the controller and over the open connection; it never runs this
module. ansible-doc and ansible-lint read the documentation and the argument spec from here."""
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: directories
version_added: 0.3.0
short_description: Create a role's missing directories in one task, with one shell command
description:
  - Sends one shell command on the open connection, as the task's become user, that creates every
    directory of the list that does not exist (C(install -d) with its owner, group and mode) and
    prints the ones it created. So a host where they all exist costs one command, where
    M(ansible.builtin.file) costs one module run per directory.
  - A directory that exists is left as it is; its owner and mode are not changed (a stricter mode
    set on the host is never loosened). A path that exists but is not a directory fails the task,
    as does a directory that cannot be created; the directories before it stay created.
  - Under check mode nothing is created; the task reports changed when a directory is missing.
  - Entries are checked before the host is asked; a bad one fails the task naming the entry and field.
options:
  directories:
    description: The directories, in the order they are created.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description:
          - Absolute path of the directory. Missing parents are created too, as C(install -d)
            makes them (owned by the become user, mode from its umask).
        type: str
        required: true
      mode:
        description: Octal mode of the directory when it is created, such as V(0755).
        type: raw
        required: true
      owner:
        description: Owner of the directory when it is created.
        type: str
        default: root
      group:
        description: Group of the directory when it is created.
        type: str
        default: root
attributes:
  check_mode: {support: full}
  diff_mode: {support: none}
  platform: {platforms: posix}
author: cityward maintainers
"""

EXAMPLES = r"""
- name: CW-BASE-02 | Create the cityward and AIDE directories in one pass (CW-BASE-04)
  cityward.hardening.directories:
    directories:
      - {path: /etc/cityward, mode: "0755"}
      - {path: /var/lib/aide, mode: "0700"}
"""

RETURN = r"""
missing:
  description: The directories that were missing, in task order; created, or under check mode to be created.
  type: list
  elements: str
  returned: always
"""

ARGUMENT_SPEC = {
    "directories": {"type": "list", "elements": "dict", "required": True, "options": {
        "path": {"type": "str", "required": True},
        "mode": {"type": "raw", "required": True},
        "owner": {"type": "str", "default": "root"},
        "group": {"type": "str", "default": "root"},
    }},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="directories: run it as the action cityward.hardening.directories (a task of a play), "
                         "not as a module on its own")


if __name__ == "__main__":
    main()
