"""The action cityward.hardening.change_gate (documented in plugins/modules/change_gate.py): the
change gate of playbooks/check.yml (CW-GOV-10). It runs on the controller only: it judges the run
and opens its change record with cityward.changes (the package next to Ansible, as `cityward check`
just before it), and the callback cityward.hardening.change_record closes the record at the run's end."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path

from ansible import context
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.cityward.hardening.plugins.modules.change_gate import ARGUMENT_SPEC


def playbook_name() -> str:
    """The playbook this run was started with, as given (a path, resolved, or an FQCN)."""
    given = (context.CLIARGS.get("args") or ["?"])[0]
    path = Path(given)
    return str(path.resolve()) if path.is_file() else given


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars or {})
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            from cityward import __version__
            from cityward.changes import (
                MAX_AGE_HOURS_DEFAULT,
                Inputs,
                inventory_folder,
                open_change,
                records_dir,
                summary_line,
            )
        except ImportError as exc:
            raise AnsibleActionFail(f"the cityward package is not installed next to Ansible ({exc}): pip install "
                                    "the cityward wheel there, or run the play from its virtualenv") from None
        # The city's folder (cityward_inventory_dir), else the first source's.
        folder = inventory_folder(args["inventory_dir"] or args["sources"][0])
        inputs = Inputs(playbook=playbook_name(), folder=folder, limit=args["limit"], tags=args["tags"],
                        skip_tags=args["skip_tags"], extra_vars=list(context.CLIARGS.get("extra_vars") or ()),
                        check=args["check"], diff=args["diff"])
        operator = f"{getpass.getuser()}@{socket.gethostname()}"
        if args["requested_by"]:
            operator = f"{args['requested_by']} (through {operator})"
        max_age = args["max_age_hours"] if args["max_age_hours"] is not None else MAX_AGE_HOURS_DEFAULT
        gate = open_change(inputs, records_folder=records_dir(folder, args["records_dir"]), hosts=args["hosts"],
                           max_age_hours=max_age, override=args["override"], operator=operator,
                           cityward_version=__version__)
        if gate.problems:
            return {**result, "failed": True, "changed": False, "msg": "\n".join(gate.problems)}
        return {**result, "changed": False, "id": gate.record["id"], "record": str(gate.path),
                "line": summary_line(gate.record), "msg": summary_line(gate.record)}
