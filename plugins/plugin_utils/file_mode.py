"""A file mode as the collection's actions take it: an octal string such as '0644', decided once."""

from __future__ import annotations

import re

from ansible.errors import AnsibleActionFail

OCTAL = re.compile(r"^0?[0-7]{3,4}$")


def octal_mode(mode, where: str, example: str) -> str:
    """`mode` as an octal string; AnsibleActionFail naming `where` (action, entry) and the field.
    YAML's 0644 without quotes reaches an action as the integer 420: it is read back as octal."""
    if isinstance(mode, int) and not isinstance(mode, bool):
        mode = format(mode, "04o")
    if not isinstance(mode, str) or not OCTAL.match(mode):
        raise AnsibleActionFail(f"{where}: field mode must be an octal string such as '{example}'")
    return mode
