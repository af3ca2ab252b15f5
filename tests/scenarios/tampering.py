"""The tampering proof's pieces (tests/faults/test_tampering.py, molecule/default): what is changed
by hand on a converged host, one shell command each, how each change is undone, and which
controls the audit must then fail, with the words each failure must show; and the reading of the
audit's report.json and report.sarif into what failed on a host and what it says.

Everything here is pure (strings and documents in, data out): tests/unit/test_tampering_report.py
proves it on synthetic reports, the real checks' messages and the checks' control markers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cityward.audit.render_json import REPORT_FORMAT

# On the host: the copies taken before tampering (tmpfs, outside every tree AIDE watches).
BACKUP = "/run/cityward-tamper"
SYSCTL = "/etc/sysctl.d/60-cityward.conf"  # the kernel role's drop-in, compared with its record
SYSCTL_LINE = "net.ipv4.conf.all.accept_redirects = 1"  # the role applied 0 (CW-KRN-01)
SERVICE = "rsyslog.service"  # its check proves it runs (CW-LOG-03)
LISTEN_PORT = 8081  # an extra listener, on no allowlist (CW-BASE-02)
UID0_NAME = "cw-tamper-root"  # a second UID-0 account (CW-ACC-04)
SUDO_USER = "cw-tamper-sudo"  # granted sudo by a drop-in nobody applied (CW-ACC-05)
SUDOERS_DROPIN = "/etc/sudoers.d/99-tamper"
RULE_PORT = 8082  # opened by a rule inserted by hand into the role's table (CW-FW-01, CW-FW-02)
NO_SCANNERS = "--no-scanners"


@dataclass(frozen=True)
class Tampering:
    """One change by hand: `command` makes it (exit 0 when it did), `undo` reverts it and is safe
    when the change was never made, `probe` prints one word of the host's state, `clean` when untouched."""

    key: str
    what: str
    command: str
    undo: str
    probe: str
    clean: str


_LISTENING = f"ss -Hltn 'sport = :{LISTEN_PORT}' | wc -l"
_PID = f"{BACKUP}/listener.pid"


def _until(condition: str) -> str:
    """Shell: wait up to 10 s for `condition`, exit 1 if it never holds."""
    return f"i=0; until {condition}; do i=$((i + 1)); [ $i -le 100 ] || exit 1; sleep 0.1; done"


TAMPERINGS: tuple[Tampering, ...] = (
    Tampering("file", f"a managed file edited by hand ({SYSCTL})",
              f"cp -p {SYSCTL} {BACKUP}/ && echo '{SYSCTL_LINE}' >> {SYSCTL}",
              f"[ ! -f {BACKUP}/{Path(SYSCTL).name} ] || cp -p {BACKUP}/{Path(SYSCTL).name} {SYSCTL}",
              f"grep -cxF '{SYSCTL_LINE}' {SYSCTL}", "0"),
    Tampering("service", f"a managed service stopped ({SERVICE})",
              f"systemctl stop {SERVICE}", f"systemctl start {SERVICE}",
              f"systemctl is-active {SERVICE}", "active"),
    # setsid -f and no inherited descriptors: podman exec returns while the listener stays. It
    # serves an empty folder, and the command waits until it listens.
    Tampering("listener", f"an extra listening socket (tcp/{LISTEN_PORT}, python3 -m http.server)",
              f"mkdir -p {BACKUP}/www && setsid -f sh -c 'echo $$ > {_PID}; exec python3 -m http.server "
              f"{LISTEN_PORT} --bind 0.0.0.0 --directory {BACKUP}/www' >/dev/null 2>&1 </dev/null; "
              + _until(f'[ "$({_LISTENING})" != 0 ]'),
              f"[ ! -s {_PID} ] || kill \"$(cat {_PID})\" 2>/dev/null; " + _until(f'[ "$({_LISTENING})" = 0 ]'),
              _LISTENING, "0"),
    # userdel -f: every process of UID 0 "uses" the account, which plain userdel refuses.
    Tampering("uid0", f"a second UID-0 account ({UID0_NAME})",
              f"useradd -o -u 0 -g root -N -M -s /usr/sbin/nologin {UID0_NAME}",
              f"! getent passwd {UID0_NAME} >/dev/null || userdel -f {UID0_NAME}",
              "getent passwd | awk -F: '$3 == 0 { print $1 }' | paste -sd, -", "root"),
    Tampering("sudoers", f"a sudoers drop-in added ({SUDOERS_DROPIN}, valid syntax)",
              f"printf '%s\\n' '{SUDO_USER} ALL=(ALL:ALL) ALL' > {BACKUP}/99-tamper && visudo -cqf {BACKUP}/99-tamper "
              f"&& install -m 0440 -o root -g root {BACKUP}/99-tamper {SUDOERS_DROPIN}",
              f"rm -f {SUDOERS_DROPIN}",
              f"ls {SUDOERS_DROPIN} 2>/dev/null | wc -l", "0"),
    # Undone the way the firewall role loads its ruleset: its handler reloads nftables (nft -f the file).
    Tampering("firewall", f"a firewall rule inserted by hand (tcp dport {RULE_PORT} accept)",
              f"nft insert rule inet cityward input tcp dport {RULE_PORT} accept",
              "systemctl reload nftables.service",
              f"nft list chain inet cityward input | grep -c 'tcp dport {RULE_PORT} accept'", "0"),
)
BY_KEY = {t.key: t for t in TAMPERINGS}
# The whole live ruleset, stateless (no counters): the same before tampering and after the undo.
RULESET = "ruleset"
PROBE = "; ".join([*(f"echo \"{t.key}=$({t.probe})\"" for t in TAMPERINGS),
                   f"echo \"{RULESET}=$(nft -s list ruleset | sha256sum | cut -d' ' -f1)\""])
PREPARE = f"rm -rf {BACKUP} && mkdir -m 0700 {BACKUP}"
CLEANUP = f"rm -rf {BACKUP}"


@dataclass(frozen=True)
class Expected:
    """A control the audit must fail after the tampering: the check (src/cityward/checks) that
    fails it, the tamperings (keys) that cause it, and pieces of text its failure must show."""

    check: str
    caused_by: tuple[str, ...]
    words: tuple[str, ...]


_FIREWALL = Expected("test_input_is_default_deny_and_opens_only_the_conduits_into_the_zone", ("firewall",),
                     (f"any tcp/{RULE_PORT}",))
# Exactly the controls the audit must fail on the tampered host, each mapped to its tampering.
EXPECTED: dict[str, Expected] = {
    "CW-KRN-01": Expected("test_network_sysctls_configured", ("file",),
                          (SYSCTL, "net.ipv4.conf.all.accept_redirects", "('0', '1')")),
    "CW-LOG-03": Expected("test_running_rsyslog_loaded_the_forwarding_and_listens_for_nothing", ("service",),
                          ("rsyslog", "found 'inactive'")),
    "CW-BASE-02": Expected("test_only_allowlisted_sockets_listen", ("listener",), (f"tcp/{LISTEN_PORT}", "python3")),
    "CW-ACC-04": Expected("test_only_root_has_uid_zero", ("uid0",), (UID0_NAME,)),
    "CW-ACC-05": Expected("test_sudo_through_a_group_and_one_documented_nopasswd", ("sudoers",), (SUDO_USER,)),
    "CW-FW-01": _FIREWALL,
    "CW-FW-02": _FIREWALL,
    # AIDE watches /etc: every file changed by hand is reported changed or added.
    "CW-BASE-04": Expected("test_aide_check_finds_no_change", ("file", "uid0", "sudoers"),
                           (SYSCTL, "/etc/passwd", SUDOERS_DROPIN)),
}


class ReportError(ValueError):
    """A report that does not hold what the proof reads: one line naming the file and the field."""


def parse_probe(text: str) -> dict[str, str]:
    """PROBE's output as {key: value}."""
    return {key: value.strip() for key, sep, value in (line.partition("=") for line in text.splitlines()) if sep}


def present(state: Mapping[str, str]) -> list[str]:
    """The tamperings PROBE's output shows on the host (a key missing from it counts as present)."""
    return [t.key for t in TAMPERINGS if state.get(t.key) != t.clean]


def audit_command(cityward: str, inventory: str, host: str, out: str) -> list[str]:
    """`cityward audit` of one host, JSON and SARIF only, without the scanners (the scenario's full
    audit proves them; here they would cost a minute and judge nothing tampered)."""
    return [cityward, "audit", "-i", inventory, "--limit", host, "--out", out, "--format", "json,sarif", NO_SCANNERS]


def _field(document, path: tuple, name: str):
    value = document
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            shown = ".".join(str(s) for s in path)
            raise ReportError(f"{name}: field {shown}: missing") from None
    return value


def failed_in_report(document: dict, host: str, name: str = "report.json") -> dict[str, str]:
    """{control: reason} of every control report.json gives as failed on `host`."""
    found = _field(document, ("format",), name)
    if found != REPORT_FORMAT:
        raise ReportError(f"{name}: field format: expected {REPORT_FORMAT!r}, found {found!r}")
    hosts = _field(document, ("aggregate", "hosts"), name)
    if host not in hosts:
        raise ReportError(f"{name}: field aggregate.hosts: host {host} not in the report (found {sorted(hosts)})")
    if not _field(hosts, (host, "reachable"), name):
        raise ReportError(f"{name}: host {host}, field reachable: false ({hosts[host].get('error')})")
    failed = {}
    for control, body in _field(document, ("aggregate", "controls"), name).items():
        cell = _field(body, ("hosts", host), f"{name}: control {control}")
        if cell.get("status") == "failed":
            failed[control] = str(cell.get("reason", ""))
    return failed


def failed_in_sarif(document: dict, host: str, name: str = "report.sarif") -> dict[str, str]:
    """{control: message} of every SARIF result that is a failure on `host`."""
    failed = {}
    for index, result in enumerate(_field(document, ("runs", 0, "results"), name)):
        where = f"{name}: result {index}"
        if _field(result, ("kind",), where) == "fail" and _field(result, ("properties", "host"), where) == host:
            failed[_field(result, ("ruleId",), where)] = str(_field(result, ("message", "text"), where))
    return failed


def problems(report: Mapping[str, str], sarif: Mapping[str, str], expected: Mapping[str, Expected],
             host: str) -> list[str]:
    """What is wrong with the audit's failures on `host` (report.json's reasons, report.sarif's
    messages) against `expected`: a control failed that no tampering explains, an expected one not
    failed, a failure that does not name its host and control (SARIF), its check, expected and
    found, or a word it must show. Empty when the audit told the truth."""
    found = []
    for control in sorted(set(report) - set(expected)):
        found.append(f"{control} failed on {host}, but no tampering explains it: {report[control][:300]}")
    for control in sorted(set(expected) - set(report)):
        causes = ", ".join(BY_KEY[key].what if key in BY_KEY else key for key in expected[control].caused_by)
        found.append(f"{control} did not fail on {host}; expected from: {causes}")
    for control in sorted(set(expected) & set(report)):
        reason, want = report[control], expected[control]
        message = sarif.get(control)
        if message is None:
            found.append(f"{control}: failed in report.json, no failure on {host} in report.sarif")
        elif not message.startswith(f"{control} failed on {host}: "):
            found.append(f"{control}: the SARIF message does not name the control and host: {message[:200]}")
        if f"{want.check}: " not in reason:
            found.append(f"{control}: the failure does not name its check {want.check}: {reason[:200]}")
        lowered = reason.lower()
        missing = [w for w in ("expected", "found") if w not in lowered]
        missing += [w for w in want.words if w not in reason]
        if missing:
            found.append(f"{control}: the failure does not show {missing}: {reason[:600]}")
    return found
