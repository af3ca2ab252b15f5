"""The callback cityward.hardening.change_record: at the end of a run whose change gate
(cityward.hardening.change_gate, playbooks/check.yml) opened a change record, it writes the run's
end into that record (CW-GOV-10): each host's counts, the hosts changed, the result. Every other run
it leaves alone. The gate hands it the record's path through set_stats (the run's custom stats)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: change_record
type: notification
author: cityward maintainers
version_added: 0.2.0
short_description: Close cityward's change record at the end of a run (CW-GOV-10)
description:
  - At the end of a run of C(site.yml), C(patch.yml) or C(rotate_secrets.yml) (any playbook that imports
    C(cityward.hardening.check)), writes into the change record the gate opened the run's end, each host's counts
    (ok, changed, failures, unreachable, skipped, rescued, ignored), the hosts changed and the result.
  - A run stopped before its end (the controller killed) leaves its record without an end, which the audit fails.
requirements:
  - Enabled in ansible.cfg, C(callbacks_enabled = cityward.hardening.change_record); the change gate refuses an
    apply run without it.
"""

from pathlib import Path  # noqa: E402 (after the documentation, as Ansible's plugins are written)

from ansible.plugins.callback import CallbackBase  # noqa: E402
from ansible.utils.display import Display  # noqa: E402

display = Display()
STAT = "cityward_change_record"  # the custom stat the gate sets: the record's path


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "cityward.hardening.change_record"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_stats(self, stats):
        path = (stats.custom or {}).get("_run", {}).get(STAT)
        if not path:
            return
        from cityward.changes import close_change

        hosts = {host: stats.summarize(host) for host in stats.processed}
        try:
            record = close_change(Path(path), hosts)
        except (OSError, ValueError) as exc:
            display.warning(f"cityward change record {path} not closed: {exc}; the audit will report the run as "
                            "unfinished (CW-GOV-10)")
            return
        display.display(f"cityward change {record['id']}: {record['result']}, hosts changed: "
                        f"{', '.join(record['hosts_changed']) or 'none'} (record {path})")
