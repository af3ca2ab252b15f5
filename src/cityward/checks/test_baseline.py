"""OS baseline controls (CW-BASE-01..06): least functionality, listening sockets, AIDE, permissions, banners.

All of them hold in a container as on a VM, so every check reads the live state (in one round trip
per host: a remote command costs about a second over Ansible or SSH). The lists a check needs are
the ones the baseline role recorded it applied (cityward_baseline.fact, after every inventory override).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import shlex

import pytest

from cityward.checks.applied import applied
from cityward.checks.hoststate import snapshot

ALLOWLIST = "/etc/cityward/listen-allowlist"
AIDE_SERVICE = "cityward-aide-check.service"
AIDE_TIMER = "cityward-aide-check.timer"
# The planted change: the baseline's SHA-256 of this file is forged in a copy AIDE reads from a pipe.
AIDE_PLANT = "/usr/bin/aide"
SSHD_PROBE = "/usr/sbin/sshd -T -C user=cityward-probe,host=probe.invalid,addr=192.0.2.10"


@pytest.fixture(scope="module")
def applied_baseline(host):
    """What the baseline role applied on this host (cityward_baseline.fact): the expected values."""
    return applied(host, "baseline")


def _permission_script(entries: list[dict]) -> str:
    """`INDEX PATH OWNER GROUP MODE` for every existing path of each entry (globs expanded on the host)."""
    return "; ".join(
        f"for p in {entry['path']}; do [ -e \"$p\" ] && stat -c '{i} %n %U %G %a' \"$p\"; done"
        for i, entry in enumerate(entries)
    ) + "; true"


def _plant_script(config: str) -> str:
    db = f"$(sed -n 's/^database_in=file://p' {config})"
    field = "awk '/^@@db_spec/ { for (i = 2; i <= NF; i++) if ($i == \"sha256\") print i - 1; exit }'"
    forged = base64.b64encode(bytes(32)).decode()
    forge = f"awk -v p={AIDE_PLANT} -v n=\"$n\" '$1 == p {{ $n = \"{forged}\" }} {{ print }}'"
    return (
        f"db={db}; n=$(zcat -f \"$db\" | {field}); "
        f"aide --config <(sed 's|^database_in=.*|database_in=stdin|' {config}) --check --limit '^{AIDE_PLANT}$' "
        f"< <(zcat -f \"$db\" | {forge})"
    )


@pytest.fixture(scope="module")
def state(host, applied_baseline):
    units = " ".join(map(shlex.quote, applied_baseline["masked_units"]))
    config = shlex.quote(applied_baseline["aide_config"])
    return snapshot(host, {
        "packages": "dpkg-query -W -f='${Package}\\t${db:Status-Status}\\n'",
        "allowlist_stat": f"stat -c '%U %a' {ALLOWLIST}",
        "allowlist": f"cat {ALLOWLIST}",
        "listeners": "ss -H -tulnp",
        "units": f"systemctl list-unit-files --no-legend --plain --full -- {units}",
        "unit_states": f"present=$(systemctl list-unit-files --no-legend --plain --full -- {units} | cut -d' ' -f1); "
                       "[ -z \"$present\" ] || systemctl show -p Id,LoadState,ActiveState -- $present",
        "aide_config_stat": f"stat -c '%U %a' {config}",
        "aide_config": f"cat {config}",
        "aide_db_stat": f"db=$(sed -n 's/^database_in=file://p' {config}); "
                        "stat -c '%U %a %s' \"$db\" && stat -c '%U %a' \"$(dirname \"$db\")\"",
        "aide_check": f"aide --config {config} --check",
        "aide_plant": _plant_script(config),
        "timer_enabled": f"systemctl is-enabled {AIDE_TIMER}",
        "timer_active": f"systemctl is-active {AIDE_TIMER}",
        "aide_exec": f"systemctl show -p ExecStart {AIDE_SERVICE}",
        "permissions": _permission_script(applied_baseline["file_permissions"]),
        # Each program the role restricted, followed to its file: owner, group, mode, and dpkg's override.
        "root_only": "for name in " + " ".join(map(shlex.quote, applied_baseline["root_only_programs"])) + "; do "
                     "[ -e \"$name\" ] || continue; real=$(readlink -f -- \"$name\"); "
                     "echo \"$real $(stat -c '%U %G %a' \"$real\") "
                     "$(dpkg-statoverride --list \"$real\" | wc -l)\"; done",
        "issue": "cat /etc/issue",
        "motd": "cat /etc/motd",
        "os_release": "cat /etc/os-release",
        "kernel": "uname -r",
        "sshd_banner": f"{SSHD_PROBE} | awk '$1 == \"banner\" {{ print $2 }}'",
    })


# --- CW-BASE-01 -------------------------------------------------------------------------------

@pytest.mark.control("CW-BASE-01")
def test_legacy_packages_absent(state, applied_baseline):
    unwanted = set(applied_baseline["packages_absent"])
    rc, out = state["packages"]
    assert rc == 0, out
    installed = sorted(
        name for name, _, status in (line.partition("\t") for line in out.splitlines())
        if name in unwanted and status not in ("not-installed", "config-files")
    )
    assert not installed, f"expected absent (purged by the baseline role), found installed: {installed}"


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
def test_only_allowlisted_sockets_listen(state, applied_baseline):
    rc, owner_mode = state["allowlist_stat"]
    assert rc == 0, f"{ALLOWLIST} is missing (written by the baseline role)"
    owner, mode = owner_mode.split()
    assert owner == "root" and int(mode, 8) & 0o022 == 0, f"{ALLOWLIST} is writable by others ({owner} {mode})"
    allowed = set(applied_baseline["listen_allowlist"])
    # The file is what operators read on the host: an entry added or dropped by hand is caught here.
    lines = [line.strip() for line in state["allowlist"][1].splitlines()]
    in_file = {line for line in lines if line and not line.startswith("#")}
    assert in_file == allowed, (f"{ALLOWLIST}: expected {sorted(allowed)} (applied by the baseline role), "
                                f"found {sorted(in_file)}")
    rc, live = state["listeners"]
    assert rc == 0, live
    unexpected = unexpected_listeners(live, allowed)
    assert not unexpected, (f"listening beyond loopback: expected only {sorted(allowed)} "
                            f"(the baseline role's allowlist), found also {unexpected}")


# --- CW-BASE-03 -------------------------------------------------------------------------------

@pytest.mark.control("CW-BASE-03")
def test_unused_units_masked(state):
    """Every unit of the role's mask list (the record's masked_units) that the host has."""
    rc, out = state["units"]
    assert rc in (0, 1), out  # 1: the host has none of them
    blocks = [dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
              for block in state["unit_states"][1].split("\n\n")]
    states = [b for b in blocks if b]
    assert len(states) == len([line for line in out.splitlines() if line.strip()])
    bad = [s for s in states if s.get("LoadState") != "masked" or s.get("ActiveState") == "active"]
    assert not bad, f"expected masked and stopped (by the baseline role), found: {bad}"


# --- CW-BASE-04 -------------------------------------------------------------------------------

def _unescape(pattern: str) -> str:
    """A path from an AIDE selection line, written regex-escaped by the role (regex_escape)."""
    return re.sub(r"\\(.)", r"\1", pattern)


@pytest.mark.control("CW-BASE-04")
def test_aide_watches_only_the_trees_that_matter(state, applied_baseline):
    config = applied_baseline["aide_config"]
    rc, owner_mode = state["aide_config_stat"]
    assert rc == 0, f"{config} is missing"
    owner, mode = owner_mode.split()
    assert owner == "root" and int(mode, 8) & 0o077 == 0, f"{config}: {owner} {mode}"
    text = state["aide_config"][1]
    raw = {line.split()[0] for line in text.splitlines() if line.startswith("/")}
    assert not raw & {"/", "/.*", "/*"}, "AIDE walks the whole filesystem"
    selections = {_unescape(selection) for selection in raw}
    trees = set(applied_baseline["aide_paths"])
    assert selections == trees, (f"{config} watches: expected {sorted(trees)} (applied by the baseline role), "
                                 f"found {sorted(selections)}")
    excluded = {_unescape(line[1:].strip().removesuffix("$")) for line in text.splitlines() if line.startswith("!")}
    exclude = set(applied_baseline["aide_exclude"])
    assert excluded == exclude, (f"{config} leaves out: expected {sorted(exclude)} "
                                 f"(applied by the baseline role), found {sorted(excluded)}")
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
    assert rc == 0, (f"monitored files: expected no change since the AIDE baseline, found changes "
                     f"(aide rc {rc}):\n{out[:4000]}")


@pytest.mark.control("CW-BASE-04")
def test_aide_reports_a_planted_change(state):
    """Nothing on the host changes: AIDE reads a copy of the baseline, piped in, in which the recorded
    SHA-256 of AIDE_PLANT is forged, and must report that file as changed."""
    rc, out = state["aide_plant"]
    assert rc < 14 and rc & 4, f"AIDE did not report the planted change (rc {rc}): {out[-2000:]}"
    assert f"File: {AIDE_PLANT}" in out


@pytest.mark.control("CW-BASE-04")
def test_aide_daily_timer_active(state, applied_baseline):
    assert state["timer_enabled"][1].strip() == "enabled"
    assert state["timer_active"][1].strip() == "active"
    exec_start = state["aide_exec"][1]
    assert f"--config {applied_baseline['aide_config']}" in exec_start and "--check" in exec_start, exec_start


# --- CW-BASE-05 -------------------------------------------------------------------------------

@pytest.mark.control("CW-BASE-05")
def test_sensitive_files_owner_and_mode(state, applied_baseline):
    wanted = applied_baseline["file_permissions"]
    seen, wrong = set(), []
    for line in state["permissions"][1].splitlines():
        index, path, owner, group, mode = line.split()
        entry = wanted[int(index)]
        seen.add(entry["path"])
        if (owner, group) != (entry["owner"], entry["group"]) or int(mode, 8) & ~int(str(entry["mode"]), 8):
            want = f"{entry['owner']}:{entry['group']} at most {entry['mode']}"
            wrong.append(f"{path}: expected {want} (applied by the baseline role), found {owner}:{group} {mode}")
    assert not wrong, "\n".join(wrong)
    for must in ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"):
        assert must in seen, f"{must} not found"


@pytest.mark.control("CW-BASE-05")
def test_compilers_run_by_root_only(state, applied_baseline):
    """Assemblers, linkers and compilers present: root's, nobody else may run or change them, and
    dpkg keeps it so through upgrades (its statoverride). A host without any passes."""
    rc, listing = state["root_only"]
    assert rc == 0, f"could not read the programs the baseline role restricted: {listing}"
    wrong = []
    for line in listing.splitlines():
        path, owner, group, mode, overrides = line.split()
        if (owner, group) != ("root", "root") or int(mode, 8) & 0o027:
            wrong.append(f"{path}: expected root:root at most 0750 (applied by the baseline role), "
                         f"found {owner}:{group} {mode}")
        elif overrides != "1":
            wrong.append(f"{path}: expected a dpkg-statoverride keeping root:root at most 0750 through upgrades, "
                         "found none")
    assert not wrong, "\n".join(wrong)


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
    # An odd run of backslashes before a letter or digit: the role writes "\\" for a literal backslash.
    escapes = re.findall(r"(?<!\\)(?:\\\\)*(\\[a-zA-Z0-9])", text)
    assert not escapes, f"{path} has getty escapes that print system details: {escapes}"
    revealed = [w for w in os_identifiers if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE)]
    assert not revealed, f"{path} reveals the OS: {revealed}"


@pytest.mark.control("CW-BASE-06")
def test_console_banner_and_motd(state, applied_baseline, os_identifiers):
    for name, path in (("issue", "/etc/issue"), ("motd", "/etc/motd")):
        rc, text = state[name]
        assert rc == 0, f"{path} is missing"
        expected = applied_baseline[name]
        assert text == expected, f"{path}: expected {expected!r} (applied by the baseline role), found {text!r}"
        assert_notice(text, path, os_identifiers)


@pytest.mark.control("CW-BASE-06")
def test_network_banner_reveals_nothing(host, state, os_identifiers):
    """/etc/issue.net belongs to the ssh role (CW-SSH-04); here: the file sshd shows reveals no OS detail."""
    rc, banner = state["sshd_banner"]
    banner = banner.strip()
    if rc != 0 or banner in ("", "none"):
        pytest.skip("sshd shows no pre-login banner file here (the network banner is the ssh role's, CW-SSH-04)")
    assert_notice(host.file(banner).content_string, banner, os_identifiers)
