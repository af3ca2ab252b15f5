"""The callback cityward.hardening.change_record: at the end of a run whose change gate
(cityward.hardening.change_gate, playbooks/check.yml) opened a change record, it writes the run's
end into that record (CW-GOV-10): each host's counts, the hosts changed, the result; and it sends the
end's line to the controller's syslog, whose forwarder takes it to the SIEM. Every other run it
leaves alone. The gate hands it the record's path through set_stats (the run's custom stats)."""

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
  - Sends one line with the result and the hosts changed to the controller's syslog socket (tag C(cityward-change),
    facility auth, severity notice), which a controller hardened by cityward forwards to the SIEM. Without the
    socket the record alone has the end, and the run's last line says so.
  - A run stopped before its end (the controller killed) leaves its record without an end, which the audit fails.
requirements:
  - Enabled in ansible.cfg, C(callbacks_enabled = cityward.hardening.change_record); the change gate refuses a run
    without it.
options:
  syslog_socket:
    description: The controller's syslog socket (a Unix datagram socket).
    type: path
    default: /dev/log
    env:
      - name: CITYWARD_CHANGE_SYSLOG_SOCKET
    ini:
      - section: callback_change_record
        key: syslog_socket
"""

import socket  # noqa: E402 (after the documentation, as Ansible's plugins are written)
from pathlib import Path  # noqa: E402

from ansible.plugins.callback import CallbackBase  # noqa: E402
from ansible.utils.display import Display  # noqa: E402

display = Display()
STAT = "cityward_change_record"  # the custom stat the gate sets: the record's path
PRIORITY = 4 * 8 + 5  # facility auth, severity notice (RFC 5424's numbers)


def to_syslog(line: str, address: str) -> str | None:
    """Send `line` to the syslog socket at `address`; why it could not be sent, else None."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.send(f"<{PRIORITY}>cityward-change: {line}".encode())
    except OSError as exc:
        return f"{address}: {exc.strerror or exc}"
    return None


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "cityward.hardening.change_record"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_stats(self, stats):
        path = (stats.custom or {}).get("_run", {}).get(STAT)
        if not path:
            return
        from cityward.changes import close_change, end_line

        hosts = {host: stats.summarize(host) for host in stats.processed}
        try:
            record = close_change(Path(path), hosts)
        except (OSError, ValueError) as exc:
            display.warning(f"cityward change record {path} not closed: {exc}; the audit will report the run as "
                            "unfinished (CW-GOV-10)")
            return
        line = end_line(record)
        unsent = to_syslog(line, self.get_option("syslog_socket"))
        display.display(f"{line} (record {path}" + (f"; not sent to syslog, {unsent})" if unsent else ")"))
