"""Logging controls (roles logging and siem_receiver), read from the host and never changed: audit
rules and auditd.conf, the journal (as journald runs it), rsyslog's forwarding to the SIEM (as the
running daemon loaded it), a SIEM receiver's input, and chrony's sources.

The expected values (SIEM, port, peer name, selector, queue bound, journal retention and cap, audit
immutability, NTS servers) are what the roles recorded applying on the host
(/etc/ansible/facts.d/cityward_logging.fact and cityward_siem_receiver.fact, cityward.checks.applied):
an inventory override is checked as applied. A missing or altered record fails the checks that
need it ("evidence missing"). Fixed limits (root-only files, no IGNORE action) stay here.

In a container the kernel audit system and the clock are the host's: auditd and chrony are
checked as configuration there, and their live checks say "not applicable" (the VM tier runs
them). A host the logging role recorded no SIEM for forwards nothing: its forwarding checks are
not applicable, the rest still apply."""

from __future__ import annotations

import json
import math
import re
import secrets

import pytest
from ansible_collections.cityward.hardening.plugins.plugin_utils.applied import fact_path
from cryptography import x509

from cityward.checks.applied import applied
from cityward.checks.certificates import expiry_problem, threshold
from cityward.checks.hoststate import snapshot
from cityward.checks.outcomes import not_applicable
from cityward.device import valid_device_fields

RULES = "/etc/audit/rules.d/60-cityward.rules"
COMPILED = "/etc/audit/audit.rules"
RSYSLOG = "/etc/rsyslog.d/60-cityward.conf"
TLS_DIR = "/etc/cityward/tls"
JOURNALD_DROPIN = "/etc/systemd/journald.conf.d/60-cityward.conf"
RECEIVER_CONF = "/etc/rsyslog.d/60-cityward-siem-receiver.conf"
# Each required kind of audited event: (what, a regular expression one rule must match).
AUDITED = [
    ("identity: passwd", r"^-w /etc/passwd -p wa\b"),
    ("identity: group", r"^-w /etc/group -p wa\b"),
    ("identity: shadow", r"^-w /etc/shadow -p wa\b"),
    ("identity: gshadow", r"^-w /etc/gshadow -p wa\b"),
    ("privilege use: sudo", r"^-w /usr/bin/sudo -p x\b"),
    ("privilege use: su", r"^-w /usr/bin/su -p x\b"),
    ("commands run as root by a logged-in person", r"^-a always,exit -F arch=b64 -S execve -F euid=0 -F auid>=1000 "),
    ("sudoers", r"^-w /etc/sudoers -p wa\b"),
    ("sudoers.d", r"^-w /etc/sudoers.d -p wa\b"),
    ("sshd_config", r"^-w /etc/ssh/sshd_config -p wa\b"),
    ("PAM configuration", r"^-w /etc/pam.d -p wa\b"),
    ("time changes", r"^-a always,exit -F arch=b64 -S \S*clock_settime\S* "),
    ("local time zone", r"^-w /etc/localtime -p wa\b"),
    ("module loads", r"^-a always,exit -F arch=b64 -S \S*init_module\S*delete_module\S* "),
]
AUDIT_ACTIONS = {"IGNORE", "SYSLOG", "ROTATE", "EMAIL", "SUSPEND", "SINGLE", "HALT"}
NOT_IN_CONTAINER = "not applicable in a container: {why}; the VM tier checks it live"


@pytest.fixture(scope="module")
def applied_logging(host):
    return applied(host, "logging")


@pytest.fixture(scope="module")
def siem(applied_logging):
    """The logging role's record on a host that forwards to a SIEM."""
    if not applied_logging["siem_host"]:
        not_applicable("not applicable: the logging role recorded no SIEM for this host (logging_siem_host empty): "
                       "it forwards nothing")
    return applied_logging


@pytest.fixture(scope="module")
def applied_receiver(host, state):
    """The siem_receiver role's record, None on a host that role never made a receiver (then
    rsyslog may listen nowhere: a receiver whose record is gone fails, never passes)."""
    if state["receiver_record"][0] != 0:
        return None
    return applied(host, "siem_receiver")


@pytest.fixture(scope="module")
def state(host):
    return snapshot(host, {
        "arch": "uname -m",
        "rules": f"cat {RULES}",
        "rules_mode": f"stat -c '%U %a' {RULES}",
        "compiled": f"cat {COMPILED}",
        "auditd_conf": "cat /etc/audit/auditd.conf",
        "audit_dir": "stat -c '%U %G %a' /var/log/audit",
        "audit_files": "stat -c '%n %U %a' /var/log/audit/* 2>/dev/null; true",
        "auditd_active": "systemctl is-active auditd",
        "auditctl_rules": "auditctl -l",
        "auditctl_status": "auditctl -s",
        "journald": "systemd-analyze cat-config systemd/journald.conf",
        "journal_header": "journalctl --header --no-pager | grep -m1 '^File path'",
        "journal_usage": "journalctl --disk-usage",
        "journald_active": "systemctl is-active systemd-journald",
        "rsyslog_conf": f"cat {RSYSLOG}",
        "rsyslog_conf_mtime": f"stat -c %Y {RSYSLOG}",
        "rsyslog_check": "/usr/sbin/rsyslogd -N1",
        "rsyslog_active": "systemctl is-active rsyslog",
        "rsyslog_started": "systemctl show rsyslog -p ExecMainStartTimestamp --timestamp=unix --value",
        # ss's complaints stay out of what is parsed (under qemu-user it cannot open its netlink
        # socket and reads /proc instead); its exit status is kept (pipefail) and checked.
        "rsyslog_plaintext": "set -o pipefail; ss -H -l -n -t -u -p 2>/dev/null | { grep rsyslogd || true; }",
        "tls_key_mode": f"stat -c '%U %G %a' {TLS_DIR}/rsyslog-client.key",
        "tls_cert": f"cat {TLS_DIR}/rsyslog-client.pem",
        "receiver_record": f"test -e {fact_path('siem_receiver')}",
        "receiver_conf": f"cat {RECEIVER_CONF}",
        "chrony_conf": "cat /etc/chrony/chrony.conf",
        "chrony_check": "/usr/sbin/chronyd -p -f /etc/chrony/chrony.conf",
        "chrony_sources": "chronyc -N -n authdata; chronyc -n tracking",
        "chrony_active": "systemctl is-active chrony",
        "chrony_started": "systemctl show chrony -p ExecMainStartTimestamp --timestamp=unix --value",
        "chrony_conf_mtime": "stat -c %Y /etc/chrony/chrony.conf",
        "chrony_authdata": "chronyc -n authdata",
        "chrony_selected": "chronyc -n sources",
    })


def _rules(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _conf(text: str) -> dict[str, str]:
    pairs = (line.partition("=") for line in text.splitlines() if not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, sep, value in pairs if sep and key.strip()}


def _chronyc_rows(text: str) -> list[list[str]]:
    """The rows of a chronyc table (below its line of '=')."""
    lines = text.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("====")), len(lines))
    return [line.split() for line in lines[start:] if line.strip()]


def _size(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)\s*([BKMGT]?)\w*", text.strip()).groups()
    return float(number) * {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[unit]


@pytest.fixture(scope="module")
def journald(state):
    """journald's effective settings: cat-config prints the files in reading order, the last value wins."""
    effective: dict[str, str] = {}
    for line in state["journald"][1].splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            effective[key.strip()] = value.strip()
    return effective


@pytest.mark.control("CW-LOG-01")
def test_audit_rules_cover_the_required_events(state):
    rc, text = state["rules"]
    assert rc == 0, f"{RULES} is missing"
    rules = _rules(text)
    missing = [what for what, pattern in AUDITED if not any(re.search(pattern, rule) for rule in rules)]
    assert not missing, f"no audit rule for: {', '.join(missing)}"
    assert state["rules_mode"][1].split() == ["root", "640"]


@pytest.mark.control("CW-LOG-01")
def test_audit_rules_are_compiled_for_boot(state):
    """augenrules turned rules.d into audit.rules, the file the kernel gets at boot."""
    rc, compiled = state["compiled"]
    assert rc == 0, f"{COMPILED} is missing"
    compiled_rules = _rules(compiled)
    assert all(rule in compiled_rules for rule in _rules(state["rules"][1]) if rule != "-e 2")


@pytest.mark.control("CW-LOG-01")
def test_audited_syscalls_exist_on_this_architecture(host, state):
    """A syscall name the kernel's table lacks makes auditctl reject the rule at load time."""
    arch = state["arch"][1].strip()
    names = {(rule_arch, name)
             for rule in _rules(state["rules"][1])
             for rule_arch, names in re.findall(r"-F arch=(b32|b64) -S (\S+)", rule)
             for name in names.split(",")}
    assert names
    table = {"b64": arch, "b32": {"x86_64": "i386", "aarch64": "arm"}.get(arch, arch)}
    script = "; ".join(f"ausyscall {table[a]} {n} >/dev/null || echo 'unknown: {a} {n}'" for a, n in sorted(names))
    unknown = host.run(script).stdout.strip()
    assert not unknown, unknown


@pytest.mark.control("CW-LOG-01")
def test_auditd_runs_with_the_rules_loaded(state, in_container):
    if in_container:
        not_applicable(NOT_IN_CONTAINER.format(why="the kernel audit system is the host's and not namespaced"))
    assert state["auditd_active"][1].strip() == "active"
    live = state["auditctl_rules"][1]
    for key in ("identity", "privileged", "root-commands", "sudoers", "sshd_config", "pam", "time-change", "modules"):
        assert f"key={key}" in live or f"-k {key}" in live, f"no live audit rule with key {key}"


@pytest.mark.control("CW-LOG-01")
def test_a_command_run_as_root_is_audited_with_its_login_account(host, in_container):
    """The audit's own session is a person's or the automation account's login made root by sudo:
    a harmless command it runs carrying a random marker must reach the audit trail under the
    root-commands key, with the login account (auid) kept."""
    if in_container:
        not_applicable(NOT_IN_CONTAINER.format(why="the kernel audit system is the host's and not namespaced"))
    loginuid = host.run("cat /proc/self/loginuid").stdout.strip()
    if not loginuid.isdigit() or not 1000 <= int(loginuid) < 4294967295:
        not_applicable(f"not applicable: the audit's session has no login account to trace (loginuid {loginuid!r}); "
                       "the rule itself is checked above")
    marker = f"cityward-audit-{secrets.token_hex(6)}"
    host.run(f"/usr/bin/test {marker} = {marker}")
    trail = host.run("ausearch --input-logs -k root-commands -ts recent -i").stdout
    records = [block for block in trail.split("----") if marker in block]
    assert records, (f"no audit record with key root-commands for a command run as root (marker {marker}) "
                     "in the last 10 minutes")
    account = host.run(f"getent passwd {loginuid} | cut -d: -f1").stdout.strip() or loginuid
    assert any(f"auid={account} " in block for block in records), (
        f"the record of the marked command does not name the login account {account!r}: {records[0].strip()}")


@pytest.mark.control("CW-LOG-05")
def test_audit_configuration_is_immutable_last(state, applied_logging):
    if not applied_logging["audit_immutable"]:
        not_applicable("not applicable: the logging role applied logging_audit_immutable: false on this host")
    assert _rules(state["rules"][1])[-1] == "-e 2"
    assert _rules(state["compiled"][1])[-1] == "-e 2", "augenrules did not put -e 2 last"


@pytest.mark.control("CW-LOG-05")
def test_kernel_audit_is_locked(state, in_container, applied_logging):
    if in_container:
        not_applicable(NOT_IN_CONTAINER.format(why="the kernel audit system is the host's and not namespaced"))
    if not applied_logging["audit_immutable"]:
        not_applicable("not applicable: the logging role applied logging_audit_immutable: false on this host")
    assert re.search(r"^enabled 2$", state["auditctl_status"][1], re.MULTILINE), state["auditctl_status"][1]


@pytest.mark.control("CW-LOG-05")
def test_audit_logs_are_root_only_and_disk_space_is_handled(state):
    conf = _conf(state["auditd_conf"][1])
    assert conf["log_group"] == "root"
    assert conf["log_file"] == "/var/log/audit/audit.log"
    assert state["audit_dir"][1].split() == ["root", "root", "700"]
    for line in state["audit_files"][1].splitlines():
        name, owner, mode = line.split()
        assert owner == "root" and mode in ("600", "400"), line
    # IEC 62443-3-3 SR 2.9/2.10: warn before the disk is full, and keep the host's service up when it is.
    assert conf["space_left_action"].upper() in AUDIT_ACTIONS - {"IGNORE"}
    assert conf["admin_space_left_action"].upper() in AUDIT_ACTIONS - {"IGNORE"}
    assert conf["disk_full_action"].upper() in AUDIT_ACTIONS - {"IGNORE"}
    assert conf["disk_error_action"].upper() in AUDIT_ACTIONS - {"IGNORE"}
    assert int(conf["space_left"].rstrip("%")) > int(conf["admin_space_left"].rstrip("%"))


@pytest.mark.control("CW-LOG-02")
def test_journal_is_persistent_and_capped(journald, applied_logging):
    effective = journald
    storage = effective.get("Storage")
    assert storage == "persistent", f"journald Storage: expected 'persistent', found {storage!r}"
    for key, recorded in (("SystemMaxUse", "journal_system_max_use"), ("MaxRetentionSec", "journal_max_retention")):
        expected, found = applied_logging[recorded], effective.get(key)
        assert found == expected, (
            f"journald {key}: expected {expected!r} (applied by the logging role), found {found!r}")
    assert effective.get("ForwardToSyslog") == "no", "rsyslog reads the journal; socket forwarding drops in bursts"


@pytest.mark.control("CW-GOV-09")
def test_journal_is_kept_no_longer_than_the_risk_review_allows(journald, applied_logging, hostvars):
    """The retention the logging role applied, in force in journald, within the device's risk review
    (`cityward check` judges the inventory's request before the run; this, what the host does)."""
    device = hostvars.get("cityward_device")
    review = valid_device_fields(device).get("risk_review") if isinstance(device, dict) else None
    if review is None or review.data_retention_days is None:
        pytest.skip("no valid cityward_device.risk_review with data_retention_days: the metadata check of "
                    "CW-GOV-09 fails it")
    kept, days = applied_logging["journal_max_retention"], applied_logging["journal_max_retention_days"]
    live = journald.get("MaxRetentionSec")
    assert live == kept, f"journald MaxRetentionSec: expected {kept!r} (applied by the logging role), found {live!r}"
    assert math.floor(days) <= review.data_retention_days, (  # '1year' is 365.25 days: a year is fine
        f"journal kept {kept!r} ({days:g} days, applied by the logging role): expected at most the "
        f"{review.data_retention_days} days set by risk review {review.reference}")


@pytest.mark.control("CW-LOG-02")
def test_running_journald_writes_to_disk_within_the_cap(state, journald):
    assert state["journald_active"][1].strip() == "active"
    assert "/var/log/journal/" in state["journal_header"][1], state["journal_header"][1]
    usage = re.search(r"take up ([\d.]+\s*[BKMGT]?)", state["journal_usage"][1])
    assert usage, state["journal_usage"][1]
    assert _size(usage[1]) <= _size(journald["SystemMaxUse"]), state["journal_usage"][1]


@pytest.mark.control("CW-LOG-03")
def test_rsyslog_forwards_everything_over_mutual_tls_with_a_disk_queue(state, siem):
    rc, conf = state["rsyslog_conf"]
    assert rc == 0, f"{RSYSLOG} is missing"
    action = re.search(r"^(\S+)\s+action\((.*?)\n\)", conf, re.MULTILINE | re.DOTALL)
    assert action, "no forwarding action"
    selector = siem["forward_selector"]
    assert action[1] == selector, (
        f"forwarding selector: expected {selector!r} (applied by the logging role), found {action[1]!r}")
    params = dict(re.findall(r'([\w.]+)="([^"]*)"', action[2]))
    expected = {
        "type": "omfwd", "target": siem["siem_host"], "port": str(siem["siem_port"]),
        "protocol": "tcp", "StreamDriver": "gtls", "StreamDriverMode": "1", "StreamDriverAuthMode": "x509/name",
        "StreamDriverPermittedPeers": siem["siem_peer_name"],
        "queue.type": "LinkedList", "queue.saveOnShutdown": "on", "action.resumeRetryCount": "-1",
        "queue.maxDiskSpace": siem["queue_max_disk"],
    }
    found = {k: params.get(k) for k in expected}
    wrong = {k: f"expected {v!r}, found {found[k]!r}" for k, v in expected.items() if found[k] != v}
    assert not wrong, f"forwarding action (expected values applied by the logging role): {wrong}"
    assert params.get("queue.filename"), "the forwarding queue has no queue.filename: it is not saved to disk"
    assert 'module(load="imjournal"' in conf, "rsyslog must read the journal (lossless), not the syslog socket"
    assert state["rsyslog_check"][0] == 0, state["rsyslog_check"][1]


@pytest.mark.control("CW-LOG-03")
def test_running_rsyslog_loaded_the_forwarding_and_listens_for_nothing(state, applied_receiver):
    """A sending host's rsyslog listens nowhere; a SIEM receiver (role siem_receiver) only on the TLS
    port that role recorded applying."""
    active = state["rsyslog_active"][1].strip()
    assert active == "active", f"rsyslog: expected 'active' (the logging role runs it), found {active!r}"
    started = int(state["rsyslog_started"][1].strip().lstrip("@") or 0)
    assert started >= int(state["rsyslog_conf_mtime"][1].strip()), "rsyslog runs an older configuration"
    allowed = {("tcp", str(applied_receiver["port"]))} if applied_receiver else set()
    rc, sockets = state["rsyslog_plaintext"]
    assert rc == 0, f"could not list the listening sockets (ss exit {rc})"
    listening = [line.split() for line in sockets.splitlines() if line.strip()]
    unexpected = [" ".join(f) for f in listening if (f[0], f[4].rsplit(":", 1)[-1]) not in allowed]
    assert not unexpected, (f"rsyslog listens on the network: {unexpected}; expected "
                            f"{sorted(allowed) or 'nothing'} (the siem_receiver role's record)")


@pytest.mark.control("CW-LOG-03")
def test_siem_receiver_accepts_only_its_permitted_peers_over_tls(state, applied_receiver):
    """The receiver's TLS input takes the port and certificate names the siem_receiver role applied."""
    if applied_receiver is None:
        not_applicable("not applicable: the siem_receiver role recorded nothing here: this host is no SIEM receiver")
    rc, conf = state["receiver_conf"]
    assert rc == 0, f"{RECEIVER_CONF} is missing"
    peers = re.search(r"PermittedPeer=(\[.*?\])", conf)
    found_peers = sorted(json.loads(peers[1])) if peers else None
    expected_peers = applied_receiver["permitted_peers"]
    assert found_peers == expected_peers, (
        f"PermittedPeer: expected {expected_peers!r} (applied by the siem_receiver role), found {found_peers!r}")
    port = re.search(r'input\(type="imtcp" port="(\d+)"', conf)
    expected_port = str(applied_receiver["port"])
    assert port and port[1] == expected_port, (
        f"TLS input port: expected {expected_port} (applied by the siem_receiver role), found {port and port[1]!r}")
    for setting in ('StreamDriver.Mode="1"', 'StreamDriver.AuthMode="x509/name"'):
        assert setting in conf, f"the receiver's input lacks {setting}: it would accept senders without a certificate"


@pytest.mark.control("CW-LOG-03")
def test_client_certificate_valid_and_key_root_only(state, siem, hostvars):
    assert state["tls_key_mode"][1].split() == ["root", "root", "600"], (
        f"{TLS_DIR}/rsyslog-client.key: expected root root 600, found {state['tls_key_mode'][1].strip()!r}")
    rc, out = state["tls_cert"]
    assert rc == 0, out
    try:
        cert = x509.load_pem_x509_certificate(out.encode())
    except ValueError as exc:
        pytest.fail(f"{TLS_DIR}/rsyslog-client.pem is no PEM certificate: {exc}", pytrace=False)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = None
    assert names and names.get_values_for_type(x509.DNSName), "no DNS name (subjectAltName) for the SIEM to permit"
    problem = expiry_problem(f"{TLS_DIR}/rsyslog-client.pem", out, threshold(hostvars))
    assert not problem, problem


@pytest.mark.control("CW-LOG-03")
def test_siem_receiver_certificate_is_not_due_for_renewal(host, applied_receiver, hostvars):
    if applied_receiver is None:
        not_applicable("not applicable: not a SIEM receiver (no siem_receiver record)")
    path = applied_receiver.get("cert_file")
    assert path, (f"evidence missing: {fact_path('siem_receiver')} does not record cert_file: "
                  "re-apply the siem_receiver role")
    problem = expiry_problem(path, host.file(path).content_string, threshold(hostvars))
    assert not problem, problem


@pytest.mark.control("CW-LOG-04")
def test_chrony_uses_authenticated_nts_sources_only(state, applied_logging):
    rc, conf = state["chrony_conf"]
    assert rc == 0, "chrony.conf is missing"
    lines = [line.split("#")[0].strip() for line in conf.splitlines()]
    sources = [line for line in lines if re.match(r"(server|pool|peer)\s", line)]
    assert sources, "no time source"
    found, expected = [s.split()[1] for s in sources], applied_logging["ntp_servers"]
    assert found == expected, f"chrony's sources: expected {expected!r} (applied by the logging role), found {found!r}"
    assert all(re.search(r"\bnts\b", s) for s in sources), [s for s in sources if not re.search(r"\bnts\b", s)]
    assert "authselectmode require" in lines
    assert not [line for line in lines if line.startswith("sourcedir")], "unauthenticated sources from sourcedir"
    assert state["chrony_check"][0] == 0, state["chrony_check"][1]


@pytest.mark.control("CW-LOG-04")
def test_running_chrony_uses_nts_sources_only(state, in_container):
    """The daemon, not just its file: running, started on the current chrony.conf, every source it
    has authenticated with NTS, and the one it follows (if any) among them."""
    if in_container:
        not_applicable(NOT_IN_CONTAINER.format(why="the clock is the host's and a container lacks CAP_SYS_TIME"))
    assert state["chrony_active"][1].strip() == "active", "chronyd is not running"
    started = int(state["chrony_started"][1].strip().lstrip("@") or 0)
    assert started >= int(state["chrony_conf_mtime"][1].strip()), "chronyd runs an older chrony.conf"
    rc, authdata = state["chrony_authdata"]
    assert rc == 0, authdata
    modes = {row[0]: row[1] for row in _chronyc_rows(authdata) if len(row) > 1}
    unauthenticated = sorted(source for source, mode in modes.items() if mode != "NTS")
    assert not unauthenticated, f"chronyd uses sources without NTS: {unauthenticated}"
    selected = [row[1] for row in _chronyc_rows(state["chrony_selected"][1]) if row[0].startswith("^*")]
    assert all(modes.get(source) == "NTS" for source in selected), f"chronyd follows {selected}, not an NTS source"


@pytest.mark.control("CW-LOG-04")
def test_chrony_synchronises_with_nts(state, in_container, applied_logging):
    if in_container:
        not_applicable(NOT_IN_CONTAINER.format(why="the clock is the host's and a container lacks CAP_SYS_TIME"))
    if not applied_logging["ntp_reachable"]:
        not_applicable("not applicable: the logging role recorded that this host cannot reach its NTS servers "
                       "(cityward_ntp_reachable: false, an offline lab); chronyd's sources are checked")
    rc, out = state["chrony_sources"]
    assert rc == 0, out
    assert re.search(r"\sNTS\s", out), out
    assert not re.search(r"Leap status\s*:\s*Not synchronised", out), out
