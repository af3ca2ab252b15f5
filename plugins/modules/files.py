#!/usr/bin/python
"""Host side of the cityward.hardening.files action: which of a role's managed files differ from what the
controller rendered? One module run answers for every file, where template/copy take two each."""
from __future__ import annotations

import grp
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: files
version_added: 0.2.0
short_description: Manage several files of a role in one task, checked in one remote call
description:
  - Renders or reads every entry on the controller, asks the host in one module run which files
    already have that content, owner, group and mode, and hands only the ones that differ to
    ansible.builtin.copy (so C(validate), check mode, diff mode and atomic writes work as there).
  - Stops at the first file that fails; the task then fails naming that file and its control.
  - The action plugin (plugins/action/files.py) does the work; this module is the
    read-only comparison it runs on the host.
options:
  files:
    description:
      - The files, each a dict with C(dest) (absolute path), exactly one of C(template) (a
        template of the role, rendered like ansible.builtin.template), C(src) (a file of the role,
        copied as is) or C(content) (text), and optionally C(owner), C(group), C(mode) (octal
        string), C(validate) (as for ansible.builtin.copy), C(vars) (extra variables for its
        template) and C(control) (the control ID the file serves, shown in the results).
    type: list
    elements: dict
    required: true
notes:
  - A template sees the task's variables plus its entry's C(vars); the variables the template
    action adds (C(template_path), C(template_host), ...) are not offered.
attributes:
  check_mode: {support: full}
  diff_mode: {support: full}
  platform: {platforms: posix}
author: cityward maintainers
"""

EXAMPLES = r"""
- name: CW-ACC-01 | Lockout policy and password quality, in one task
  cityward.hardening.files:
    files:
      - template: faillock.conf.j2
        dest: /etc/security/faillock.conf
        owner: root
        group: root
        mode: "0644"
        control: CW-ACC-01
      - content: "umask 027\n"
        dest: /etc/profile.d/cityward-umask.sh
        mode: "0644"
        control: CW-ACC-06
"""

RETURN = r"""
files:
  description: One entry per file, in task order.
  type: list
  elements: dict
  returned: always
  contains:
    dest:
      description: The path.
      type: str
    control:
      description: The control ID given for the file.
      type: str
    changed:
      description: Whether the file was (or under --check would be) written.
      type: bool
    differs:
      description: What differed (missing, type, mode, owner, group, content), or null when nothing did.
      type: str
"""


def _name_matches(wanted: str | None, actual_id: int, lookup) -> bool:
    if wanted is None:
        return True
    if wanted.isdigit():
        return int(wanted) == actual_id
    try:
        return lookup(actual_id) == wanted
    except KeyError:
        return False


def difference(entry: dict, sha1) -> str | None:
    """The first way the file at entry['dest'] differs from the entry, or None when it matches.
    `sha1` computes a file's checksum (the module's, so it is the one copy compares with)."""
    try:
        st = os.lstat(entry["dest"])
    except FileNotFoundError:
        return "missing"
    if not stat.S_ISREG(st.st_mode):
        return "type"
    mode = entry.get("mode")
    if mode is not None and stat.S_IMODE(st.st_mode) != int(mode, 8):
        return "mode"
    if not _name_matches(entry.get("owner"), st.st_uid, lambda uid: pwd.getpwuid(uid).pw_name):
        return "owner"
    if not _name_matches(entry.get("group"), st.st_gid, lambda gid: grp.getgrgid(gid).gr_name):
        return "group"
    if st.st_size != entry["size"] or sha1(entry["dest"]) != entry["checksum"]:
        return "content"
    return None


def main() -> None:
    module = AnsibleModule(argument_spec={"files": {"type": "list", "elements": "dict", "required": True}},
                           supports_check_mode=True)
    try:
        found = [difference(entry, module.sha1) for entry in module.params["files"]]
    except (KeyError, ValueError, TypeError) as exc:
        module.fail_json(msg=f"files: malformed comparison request ({exc}); use the action, not the module")
    except OSError as exc:
        module.fail_json(msg=f"files: cannot read {exc.filename}: {exc.strerror}")
    module.exit_json(changed=False, differs=found)


if __name__ == "__main__":
    main()
