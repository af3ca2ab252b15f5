"""OS baseline controls (CW-BASE-01..06): least functionality, listening sockets, AIDE, permissions, banners.

All of them hold in a container as on a VM, so every check reads the live state (in one round trip
per host: a remote command costs about a second over Ansible or SSH). The lists a check needs come
from the inventory when the city sets them, else from the role's defaults.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import shlex

import pytest
import yaml

from cityward.checks.hoststate import snapshot
from cityward.resources import collection_root

ROLE_DEFAULTS = collection_root() / "roles" / "baseline" / "defaults" / "main.yml"
ALLOWLIST = "/etc/cityward/listen-allowlist"
AIDE_CONFIG = "/etc/aide/cityward.conf"
AIDE_TREES = {"/usr/bin", "/usr/sbin", "/usr/lib/systemd", "/etc", "/boot"}
AIDE_SERVICE = "cityward-aide-check.service"
AIDE_TIMER = "cityward-aide-check.timer"
# The planted change: the baseline's SHA-256 of this file is forged in a copy AIDE reads from a pipe.
AIDE_PLANT = "/usr/bin/aide"
SSHD_PROBE = "/usr/sbin/sshd -T -C user=cityward-probe,host=probe.invalid,addr=192.0.2.10"


def setting(hostvars: dict, name: str):
    """The value the baseline role applies: the inventory's, else the role default."""
    if name in hostvars:
        return hostvars[name]
    return yaml.safe_load(ROLE_DEFAULTS.read_text(encoding="utf-8"))[name]




def _units(hostvars) -> list[str]:
    return list(setting(hostvars, "baseline_masked_units")) + list(hostvars.get("baseline_masked_units_extra", []))


def _permission_script(entries: list[dict]) -> str:
    """`INDEX PATH OWNER GROUP MODE` for every existing path of each entry (globs expanded on the host)."""
    return "; ".join(
        f"for p in {entry['path']}; do [ -e \"$p\" ] && stat -c '{i} %n %U %G %a' \"$p\"; done"
        for i, entry in enumerate(entries)
    ) + "; true"


def _plant_script() -> str:
    db = f"$(sed -n 's/^database_in=file://p' {AIDE_CONFIG})"
    field = "awk '/^@@db_spec/ { for (i = 2; i <= NF; i++) if ($i == \"sha256\") print i - 1; exit }'"
    forged = base64.b64encode(bytes(32)).decode()
    forge = f"awk -v p={AIDE_PLANT} -v n=\"$n\" '$1 == p {{ $n = \"{forged}\" }} {{ print }}'"
    return (
        f"db={db}; n=$(zcat -f \"$db\" | {field}); "
        f"aide --config <(sed 's|^database_in=.*|database_in=stdin|' {AIDE_CONFIG}) --check --limit '^{AIDE_PLANT}$' "
        f"< <(zcat -f \"$db\" | {forge})"
    )


@pytest.fixture(scope="module")
def state(host, hostvars):
    units = " ".join(map(shlex.quote, _units(hostvars)))
    return snapshot(host, {
        "packages": "dpkg-query -W -f='${Package}\\t${db:Status-Status}\\n'",
        "allowlist_stat": f"stat -c '%U %a' {ALLOWLIST}",
        "allowlist": f"cat {ALLOWLIST}",
        "listeners": "ss -H -tulnp",
        "units": f"systemctl list-unit-files --no-legend --plain --full -- {units}",
        "unit_states": f"present=$(systemctl list-unit-files --no-legend --plain --full -- {units} | cut -d' ' -f1); "
                       "[ -z \"$present\" ] || systemctl show -p Id,LoadState,ActiveState -- $present",
        "aide_config_stat": f"stat -c '%U %a' {AIDE_CONFIG}",
        "aide_config": f"cat {AIDE_CONFIG}",
        "aide_db_stat": f"db=$(sed -n 's/^database_in=file://p' {AIDE_CONFIG}); "
                        "stat -c '%U %a %s' \"$db\" && stat -c '%U %a' \"$(dirname \"$db\")\"",
        "aide_check": f"aide --config {AIDE_CONFIG} --check",
        "aide_plant": _plant_script(),
        "timer_enabled": f"systemctl is-enabled {AIDE_TIMER}",
        "timer_active": f"systemctl is-active {AIDE_TIMER}",
        "aide_exec": f"systemctl show -p ExecStart {AIDE_SERVICE}",
        "permissions": _permission_script(setting(hostvars, "baseline_file_permissions")),
        "issue": "cat /etc/issue",
        "motd": "cat /etc/motd",
        "os_release": "cat /etc/os-release",
        "kernel": "uname -r",
        "sshd_banner": f"{SSHD_PROBE} | awk '$1 == \"banner\" {{ print $2 }}'",
    })


# --- CW-BASE-01 -------------------------------------------------------------------------------

@pytest.mark.control("CW-BASE-01")
def test_legacy_packages_absent(state, hostvars):
    unwanted = set(setting(hostvars, "baseline_packages_absent"))
    unwanted |= set(hostvars.get("baseline_packages_absent_extra", []))
    rc, out = state["packages"]
    assert rc == 0, out
    installed = sorted(
        name for name, _, status in (line.partition("\t") for line in out.splitlines())
        if name in unwanted and status not in ("not-installed", "config-files")
    )
    assert not installed, f"still installed: {installed}"


# --- CW-BASE-02 -------------------------------------------------------------------------------

def parse_listeners(ss_output: str) -> list[tuple[str, str, int, str]]:
    """(protocol, address, port, process) of each socket in `ss -H -tulnp` output."""
    listeners = []
    for line in ss_output.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        address, _, port = fields[4].rpartition(":")
        if not port.isdigit():
            continue
        listeners.append((fields[0], address, int(port), " ".join(fields[6:])))
    return listeners


def is_loopback(address: str) -> bool:
    host = address.strip("[]").split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # "*" and the like: every address
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def unexpected_listeners(ss_output: str, allowed: set[str]) -> list[str]:
    return [
        f"{proto}/{port} on {address} {process}".strip()
        for proto, address, port, process in parse_listeners(ss_output)
        if not is_loopback(address) and f"{proto}/{port}" not in allowed
    ]


@pytest.mark.control("CW-BASE-02")
def test_socket_check_flags_what_is_not_allowed():
    """The check itself, on a sample: loopback ignored, unlisted listeners reported with their process."""
    sample = (
        'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))\n'
        'tcp LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=1,fd=4))\n'
        'tcp LISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:* users:(("resolved",pid=2,fd=5))\n'
        'udp UNCONN 0 0 [::1]:323 [::]:* users:(("chronyd",pid=3,fd=6))\n'
        'tcp LISTEN 0 5 *:8080 *:* users:(("python3",pid=4,fd=3))\n'
        'udp UNCONN 0 0 10.88.0.5%eth0:68 0.0.0.0:*\n'
    )
    found = unexpected_listeners(sample, {"tcp/22"})
    assert [entry.split()[0] for entry in found] == ["tcp/8080", "udp/68"]
    assert "python3" in found[0]


@pytest.mark.control("CW-BASE-02")
def test_only_allowlisted_sockets_listen(state):
    rc, owner_mode = state["allowlist_stat"]
    assert rc == 0, f"{ALLOWLIST} is missing (written by the baseline role)"
    owner, mode = owner_mode.split()
    assert owner == "root" and int(mode, 8) & 0o022 == 0, f"{ALLOWLIST} is writable by others ({owner} {mode})"
    lines = [line.strip() for line in state["allowlist"][1].splitlines()]
    allowed = {line for line in lines if line and not line.startswith("#")}
    rc, live = state["listeners"]
    assert rc == 0, live
    unexpected = unexpected_listeners(live, allowed)
    assert not unexpected, f"listening beyond loopback but not in {ALLOWLIST} ({sorted(allowed)}): {unexpected}"


# --- CW-BASE-03 -------------------------------------------------------------------------------

@pytest.mark.control("CW-BASE-03")
def test_unused_units_masked(state):
    rc, out = state["units"]
    assert rc in (0, 1), out  # 1: the host has none of them
    blocks = [dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
              for block in state["unit_states"][1].split("\n\n")]
    states = [b for b in blocks if b]
    assert len(states) == len([line for line in out.splitlines() if line.strip()])
    bad = [s for s in states if s.get("LoadState") != "masked" or s.get("ActiveState") == "active"]
    assert not bad, f"present but not masked and stopped: {bad}"


# --- CW-BASE-04 -------------------------------------------------------------------------------

@pytest.mark.control("CW-BASE-04")
def test_aide_watches_only_the_trees_that_matter(state):
    rc, owner_mode = state["aide_config_stat"]
    assert rc == 0, f"{AIDE_CONFIG} is missing"
    owner, mode = owner_mode.split()
    assert owner == "root" and int(mode, 8) & 0o077 == 0, f"{AIDE_CONFIG}: {owner} {mode}"
    text = state["aide_config"][1]
    selections = {line.split()[0] for line in text.splitlines() if line.startswith("/")}
    assert selections >= AIDE_TREES, f"not watched: {sorted(AIDE_TREES - selections)}"
    assert not selections & {"/", "/.*", "/*"}, "AIDE walks the whole filesystem"
    rules = dict(re.findall(r"^\s*(\w+)\s*=\s*(\S+)\s*$", text, re.MULTILINE))
    for line in text.splitlines():
        if line.startswith("/"):
            rule = line.split()[1]
            assert re.search(r"sha256|sha512", rules.get(rule, rule)), f"{line!r}: no content hash"


@pytest.mark.control("CW-BASE-04")
def test_aide_baseline_exists_and_is_private(state):
    rc, out = state["aide_db_stat"]
    assert rc == 0, f"no AIDE baseline database: {out}"
    (owner, mode, size), (dir_owner, dir_mode) = (line.split() for line in out.splitlines()[:2])
    assert int(size) > 0
    assert owner == "root" and int(mode, 8) & 0o077 == 0, f"database: {owner} {mode}"
    assert dir_owner == "root" and int(dir_mode, 8) & 0o077 == 0, f"database directory: {dir_owner} {dir_mode}"


@pytest.mark.control("CW-BASE-04")
def test_aide_check_finds_no_change(state):
    rc, out = state["aide_check"]
    assert rc < 14, f"aide could not check (rc {rc}): {out[-2000:]}"
    assert rc == 0, f"monitored files changed since the baseline (rc {rc}):\n{out[:4000]}"


@pytest.mark.control("CW-BASE-04")
def test_aide_reports_a_planted_change(state):
    """Nothing on the host changes: AIDE reads a copy of the baseline, piped in, in which the recorded
    SHA-256 of AIDE_PLANT is forged, and must report that file as changed."""
    rc, out = state["aide_plant"]
    assert rc < 14 and rc & 4, f"AIDE did not report the planted change (rc {rc}): {out[-2000:]}"
    assert f"File: {AIDE_PLANT}" in out


@pytest.mark.control("CW-BASE-04")
def test_aide_daily_timer_active(state):
    assert state["timer_enabled"][1].strip() == "enabled"
    assert state["timer_active"][1].strip() == "active"
    exec_start = state["aide_exec"][1]
    assert f"--config {AIDE_CONFIG}" in exec_start and "--check" in exec_start, exec_start


# --- CW-BASE-05 -------------------------------------------------------------------------------

@pytest.mark.control("CW-BASE-05")
def test_sensitive_files_owner_and_mode(state, hostvars):
    wanted = setting(hostvars, "baseline_file_permissions")
    seen, wrong = set(), []
    for line in state["permissions"][1].splitlines():
        index, path, owner, group, mode = line.split()
        entry = wanted[int(index)]
        seen.add(entry["path"])
        if (owner, group) != (entry["owner"], entry["group"]) or int(mode, 8) & ~int(entry["mode"], 8):
            want = f"{entry['owner']}:{entry['group']} at most {entry['mode']}"
            wrong.append(f"{path} {owner}:{group} {mode} (want {want})")
    assert not wrong, "\n".join(wrong)
    for must in ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"):
        assert must in seen, f"{must} not found"


# --- CW-BASE-06 -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def os_identifiers(state):
    """Words that reveal the OS: distribution name and ID, kernel release."""
    release = dict(line.split("=", 1) for line in state["os_release"][1].splitlines() if "=" in line)
    words = {release.get(k, "").strip('"') for k in ("NAME", "PRETTY_NAME", "ID")} | {"GNU/Linux"}
    words.add(state["kernel"][1].strip())
    return {w for w in words if w}


def assert_notice(text: str, path: str, os_identifiers: set[str]) -> None:
    assert len(text.strip()) > 20, f"{path} carries no notice"
    escapes = re.findall(r"\\[a-zA-Z0-9]", text)
    assert not escapes, f"{path} has getty escapes that print system details: {escapes}"
    revealed = [w for w in os_identifiers if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE)]
    assert not revealed, f"{path} reveals the OS: {revealed}"


@pytest.mark.control("CW-BASE-06")
def test_console_banner_and_motd(state, os_identifiers):
    for name, path in (("issue", "/etc/issue"), ("motd", "/etc/motd")):
        rc, text = state[name]
        assert rc == 0, f"{path} is missing"
        assert_notice(text, path, os_identifiers)


@pytest.mark.control("CW-BASE-06")
def test_network_banner_reveals_nothing(host, state, os_identifiers):
    """/etc/issue.net belongs to the ssh role (CW-SSH-04); here: the file sshd shows reveals no OS detail."""
    rc, banner = state["sshd_banner"]
    banner = banner.strip()
    if rc != 0 or banner in ("", "none"):
        pytest.skip("sshd shows no pre-login banner file here (the network banner is the ssh role's, CW-SSH-04)")
    assert_notice(host.file(banner).content_string, banner, os_identifiers)
