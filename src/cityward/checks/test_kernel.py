"""Kernel controls (CW-KRN-01..05): sysctls, module blocklist, core dumps, USBGuard on field devices.

A container runs on the host's kernel, shared and not namespaced: there the checks read the
configuration the kernel gets at boot (systemd's own merge of every sysctl.d file, so a file that
undoes ours is caught), and the live values are skipped; on a VM or real host they compare the
running kernel with it.
"""

from __future__ import annotations

import re
import shlex

import pytest

from cityward.checks.applied import applied
from cityward.checks.hoststate import snapshot
from cityward.checks.outcomes import not_applicable

DROPIN = "/etc/sysctl.d/60-cityward.conf"
MODPROBE_DROPIN = "/etc/modprobe.d/60-cityward-blocklist.conf"
USBGUARD_CONF = "/etc/usbguard/usbguard-daemon.conf"
CONTAINER_SKIP = (
    "not applicable in a container: the kernel is shared with the host, so live values are checked on the VM tier"
)

# The expected values are what the kernel role recorded it applied (cityward_kernel.fact), never
# restated here. A fixed bound of CW-KRN-02 instead: Yama ptrace scope 1 (parent only) or stricter.
PTRACE = "kernel.yama.ptrace_scope"
# The record's sysctls of each control (CW-KRN-01, CW-KRN-02, CW-KRN-04), as the role splits them.
NETWORK, KERNEL, COREDUMP = "sysctl_network", "sysctl_kernel", "sysctl_coredump"


def parse_sysctl(text: str) -> dict[str, str]:
    """sysctl.d syntax: `key = value`, `#`/`;` comments, `/` or `.` separators, a leading `-` ignores errors.
    Later assignments win, as they do for systemd-sysctl."""
    values = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().lstrip("-").replace("/", ".")] = " ".join(value.split())
    return values


def parse_ini(text: str) -> dict[str, str]:
    """KEY=value lines (systemd and USBGuard configuration), comments and sections ignored."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith(("#", ";", "[")):
            values[key.strip()] = value.strip()
    return values


def _module(name: str) -> str:
    return name.replace("-", "_")


@pytest.fixture(scope="module")
def applied_kernel(host):
    """What the kernel role applied on this host (cityward_kernel.fact): the expected values."""
    return applied(host, "kernel")


def _sysctls(applied_kernel, split: str) -> dict[str, str]:
    return {key: " ".join(str(value).split()) for key, value in applied_kernel[split].items()}


@pytest.fixture(scope="module")
def state(host, applied_kernel):
    sysctl_keys = [key for split in (NETWORK, KERNEL, COREDUMP) for key in applied_kernel[split]]
    modules = " ".join(map(shlex.quote, applied_kernel["blocked_modules"]))
    return snapshot(host, {
        "dropin": f"cat {DROPIN}",
        # What systemd-sysctl applies at boot: every sysctl.d file in systemd's order, later ones winning.
        "boot": "systemd-analyze cat-config sysctl.d",
        "live": "sysctl " + " ".join(map(shlex.quote, sysctl_keys)),
        "modprobe_dropin": f"test -f {MODPROBE_DROPIN}",
        # kmod reads /etc, /run and /lib (or /usr/lib)
        "modprobe": "cat /etc/modprobe.d/*.conf /run/modprobe.d/*.conf /lib/modprobe.d/*.conf"
                    " /usr/lib/modprobe.d/*.conf 2>/dev/null; true",
        "modprobe_dry_run": f"for m in {modules}; do echo \"$m: $(modprobe -n -v $m 2>&1 | tr '\\n' ' ')\"; done",
        "proc_modules": "cat /proc/modules",
        "limits": "cat /etc/security/limits.conf /etc/security/limits.d/*.conf 2>/dev/null; true",
        "coredump": "systemd-analyze cat-config systemd/coredump.conf",
        "usbguard_pkg": "dpkg-query -W -f='${db:Status-Status}' usbguard",
        "usbguard_conf": f"cat {USBGUARD_CONF}",
        "usbguard_enabled": "systemctl is-enabled usbguard",
        "usbguard_active": "systemctl is-active usbguard",
        "usb_bus": "test -d /sys/bus/usb",
        "usbguard_rules": "usbguard list-rules",
    })


@pytest.fixture(scope="module")
def usbguard(applied_kernel):
    return bool(applied_kernel["usbguard"])


@pytest.fixture(scope="module")
def dropin(state):
    rc, text = state["dropin"]
    assert rc == 0, f"{DROPIN} is missing: {text}"
    return parse_sysctl(text)


@pytest.fixture(scope="module")
def boot_sysctls(state):
    return parse_sysctl(state["boot"][1])


def _check_config(applied_kernel, split: str, dropin: dict, boot: dict) -> None:
    expected = _sysctls(applied_kernel, split)
    wrong = {k: (v, dropin.get(k)) for k, v in expected.items() if dropin.get(k) != v}
    assert not wrong, f"{DROPIN} differs from what the kernel role applied (expected, found): {wrong}"
    undone = {k: (v, boot.get(k)) for k, v in expected.items() if boot.get(k) != v}
    assert not undone, f"another sysctl.d file overrides the drop-in at boot (expected, found): {undone}"
    # The role's own values are its hardening: changing one (kernel_sysctl_extra) needs a waiver.
    # The ptrace scope has a fixed bound instead, checked apart.
    changed = {k: (role_value, expected[k]) for k, role_value in applied_kernel["sysctl_overridden"].items()
               if k in expected and k != PTRACE}
    assert not changed, (f"kernel_sysctl_extra changes the kernel role's hardened values (role's, applied): {changed}; "
                         "a weaker value needs a waiver")


def _check_live(state, expected: dict[str, str]) -> None:
    rc, text = state["live"]
    assert rc == 0, f"sysctl could not read every key: {text}"
    live = parse_sysctl(text)
    differ = {k: (v, live.get(k)) for k, v in expected.items() if live.get(k) != v}
    assert not differ, f"running kernel differs from what the kernel role applied (expected, live): {differ}"


@pytest.mark.control("CW-KRN-01")
def test_network_sysctls_configured(applied_kernel, dropin, boot_sysctls):
    _check_config(applied_kernel, NETWORK, dropin, boot_sysctls)


@pytest.mark.control("CW-KRN-01")
def test_network_sysctls_live(state, applied_kernel, in_container):
    if in_container:
        not_applicable(CONTAINER_SKIP)
    _check_live(state, _sysctls(applied_kernel, NETWORK))


@pytest.mark.control("CW-KRN-02")
def test_kernel_sysctls_configured(applied_kernel, dropin, boot_sysctls):
    _check_config(applied_kernel, KERNEL, dropin, boot_sysctls)
    for source, values in ((DROPIN, dropin), ("boot configuration", boot_sysctls)):
        scope = values.get(PTRACE, "0")
        assert scope.isdigit() and int(scope) >= 1, f"{PTRACE}: expected at least 1, found {scope!r} in {source}"


@pytest.mark.control("CW-KRN-02")
def test_kernel_sysctls_live(state, applied_kernel, in_container):
    if in_container:
        not_applicable(CONTAINER_SKIP)
    _check_live(state, _sysctls(applied_kernel, KERNEL))


@pytest.mark.control("CW-KRN-03")
def test_modules_refused_and_blacklisted(state, applied_kernel):
    assert state["modprobe_dropin"][0] == 0, f"{MODPROBE_DROPIN} is missing"
    installs, blacklisted = {}, set()
    for line in state["modprobe"][1].splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "install":
            installs.setdefault(_module(words[1]), " ".join(words[2:]))
        elif len(words) == 2 and words[0] == "blacklist":
            blacklisted.add(_module(words[1]))
    refusing = re.compile(r"^(/usr)?/bin/(false|true)$")
    for name in applied_kernel["blocked_modules"]:
        found = installs.get(_module(name))
        assert refusing.match(found or ""), (
            f"{name} (blocked by the kernel role): expected 'install {name} /bin/false', "
            f"found {f'install {name} {found}' if found else 'no install line'}")
        assert _module(name) in blacklisted, (
            f"{name} (blocked by the kernel role): expected 'blacklist {name}', found none")


@pytest.mark.control("CW-KRN-03")
def test_modules_cannot_load(state, applied_kernel, in_container):
    if in_container:
        not_applicable(CONTAINER_SKIP)
    loaded = {line.split()[0] for line in state["proc_modules"][1].splitlines() if line.strip()}
    dry_runs = dict(line.split(": ", 1) for line in state["modprobe_dry_run"][1].splitlines() if ": " in line)
    for name in applied_kernel["blocked_modules"]:
        dry_run = dry_runs.get(name, "")
        assert re.search(r"install (/usr)?/bin/(false|true)", dry_run), (
            f"{name} (blocked by the kernel role): expected modprobe to run /bin/false, found {dry_run.strip()!r}")
        assert _module(name) not in loaded, f"{name} (blocked by the kernel role) is loaded"


@pytest.mark.control("CW-KRN-04")
def test_core_dumps_off_in_configuration(state, applied_kernel, dropin, boot_sysctls):
    _check_config(applied_kernel, COREDUMP, dropin, boot_sysctls)
    hard = {}
    for line in state["limits"][1].splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) == 4 and words[1] in ("hard", "-") and words[2] == "core":
            hard[words[0]] = words[3]
    assert hard.get("*") == "0", "no '* hard core 0' in limits.d"
    assert hard.get("root") == "0", "no 'root hard core 0' in limits.d ('*' does not cover root)"
    coredump = parse_ini(state["coredump"][1])
    assert coredump.get("Storage") == "none"
    assert coredump.get("ProcessSizeMax") == "0"


@pytest.mark.control("CW-KRN-04")
def test_core_dumps_off_live(state, applied_kernel, in_container):
    if in_container:
        not_applicable(CONTAINER_SKIP)
    _check_live(state, _sysctls(applied_kernel, COREDUMP))


@pytest.mark.control("CW-KRN-05")
def test_usbguard_configured_on_field_devices(state, usbguard):
    if not usbguard:
        pytest.skip("not a field device (the kernel role applied no USBGuard): USBGuard does not apply")
    assert state["usbguard_pkg"][1].strip() == "installed", "usbguard is not installed"
    conf = parse_ini(state["usbguard_conf"][1])
    assert conf.get("ImplicitPolicyTarget") == "block"
    assert conf.get("InsertedDevicePolicy") in ("apply-policy", "block", "reject")
    assert conf.get("PresentDevicePolicy") in ("apply-policy", "block", "reject")
    assert "plugdev" not in conf.get("IPCAllowedGroups", ""), "plugdev members could change the USB policy"
    assert state["usbguard_enabled"][1].strip() == "enabled"


@pytest.mark.control("CW-KRN-05")
def test_usbguard_enforcing_on_field_devices(state, usbguard, in_container):
    if not usbguard:
        pytest.skip("not a field device (the kernel role applied no USBGuard): USBGuard does not apply")
    if in_container:
        not_applicable("not applicable in a container: it has no USB bus (USB devices belong to the host), "
                       "so USBGuard enforcement is checked on the VM tier")
    if state["usb_bus"][0] != 0:
        pytest.skip("this host has no USB bus (/sys/bus/usb is absent)")
    assert state["usbguard_active"][1].strip() == "active", "usbguard is not running"
    rc, rules = state["usbguard_rules"]
    assert rc == 0, rules
    # Generated from the devices present: at least the root hubs of the bus are listed.
    assert rules.strip(), "USBGuard runs with no rules: every USB device is blocked"
