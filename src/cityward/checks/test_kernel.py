"""Kernel controls (CW-KRN-01..05): sysctls, module blocklist, core dumps, USBGuard on field devices.

A container runs on the host's kernel, shared and not namespaced: there the checks read the
configuration the kernel gets at boot (systemd's own merge of every sysctl.d file, so a file that
undoes ours is caught), and the live values are skipped; on a VM or real host they compare the
running kernel with it.
"""

from __future__ import annotations

import re

import pytest

from cityward.checks.hoststate import snapshot
from cityward.checks.outcomes import not_applicable

DROPIN = "/etc/sysctl.d/60-cityward.conf"
MODPROBE_DROPIN = "/etc/modprobe.d/60-cityward-blocklist.conf"
USBGUARD_CONF = "/etc/usbguard/usbguard-daemon.conf"
CONTAINER_SKIP = (
    "not applicable in a container: the kernel is shared with the host, so live values are checked on the VM tier"
)

# CW-KRN-01 (forwarding is added per host: on only for routers)
NETWORK = {
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.default.accept_redirects": "0",
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
    "net.ipv4.conf.all.secure_redirects": "0",
    "net.ipv4.conf.default.secure_redirects": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv4.conf.all.accept_source_route": "0",
    "net.ipv4.conf.default.accept_source_route": "0",
    "net.ipv6.conf.all.accept_source_route": "0",
    "net.ipv6.conf.default.accept_source_route": "0",
    "net.ipv4.conf.all.rp_filter": "1",
    "net.ipv4.conf.default.rp_filter": "1",
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv4.conf.all.log_martians": "1",
    "net.ipv4.conf.default.log_martians": "1",
}
# CW-KRN-02 (kernel.yama.ptrace_scope: at least 1, checked apart)
KERNEL = {
    "kernel.kptr_restrict": "2",
    "kernel.dmesg_restrict": "1",
    "kernel.unprivileged_bpf_disabled": "1",
    "net.core.bpf_jit_harden": "2",
    "fs.protected_hardlinks": "1",
    "fs.protected_symlinks": "1",
    "fs.protected_fifos": "2",
    "fs.protected_regular": "2",
    "kernel.randomize_va_space": "2",
}
PTRACE = "kernel.yama.ptrace_scope"
# CW-KRN-04
COREDUMP = {"fs.suid_dumpable": "0"}
# CW-KRN-03 (usb-storage is added on field devices)
BLOCKED_MODULES = [
    "cramfs", "freevxfs", "jffs2", "hfs", "hfsplus", "udf", "dccp", "sctp", "rds", "tipc",
    "firewire-core", "firewire-ohci", "bluetooth", "btusb",
]


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




def _blocked_modules(hostvars) -> list[str]:
    modules = BLOCKED_MODULES + list(hostvars.get("kernel_module_blocklist_extra", []))
    if hostvars.get("kernel_field_device", False) and not hostvars.get("kernel_allow_usb_storage", False):
        modules.append("usb-storage")
    return modules


def _expected_network(hostvars) -> dict[str, str]:
    forwarding = "1" if hostvars.get("kernel_router", False) else "0"
    return {**NETWORK, "net.ipv4.ip_forward": forwarding, "net.ipv6.conf.all.forwarding": forwarding}


@pytest.fixture(scope="module")
def state(host, hostvars):
    sysctl_keys = [*_expected_network(hostvars), *KERNEL, PTRACE, *COREDUMP]
    modules = " ".join(_blocked_modules(hostvars))
    return snapshot(host, {
        "dropin": f"cat {DROPIN}",
        # What systemd-sysctl applies at boot: every sysctl.d file in systemd's order, later ones winning.
        "boot": "systemd-analyze cat-config sysctl.d",
        "live": "sysctl " + " ".join(sysctl_keys),
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
def field_device(hostvars):
    return bool(hostvars.get("kernel_field_device", False))


@pytest.fixture(scope="module")
def dropin(state):
    rc, text = state["dropin"]
    assert rc == 0, f"{DROPIN} is missing: {text}"
    return parse_sysctl(text)


@pytest.fixture(scope="module")
def boot_sysctls(state):
    return parse_sysctl(state["boot"][1])


def _check_config(expected: dict[str, str], dropin: dict, boot: dict) -> None:
    wrong = {k: dropin.get(k) for k, v in expected.items() if dropin.get(k) != v}
    assert not wrong, f"{DROPIN} lacks or weakens: {wrong} (expected {expected})"
    undone = {k: boot.get(k) for k, v in expected.items() if boot.get(k) != v}
    assert not undone, f"another sysctl.d file overrides the drop-in at boot: {undone}"


def _check_live(state, keys: list[str], dropin: dict) -> None:
    rc, text = state["live"]
    assert rc == 0, f"sysctl could not read every key: {text}"
    live = parse_sysctl(text)
    differ = {k: (live.get(k), dropin.get(k)) for k in keys if live.get(k) != dropin.get(k)}
    assert not differ, f"running kernel differs from {DROPIN} (live, file): {differ}"


@pytest.mark.control("CW-KRN-01")
def test_network_sysctls_configured(hostvars, dropin, boot_sysctls):
    _check_config(_expected_network(hostvars), dropin, boot_sysctls)


@pytest.mark.control("CW-KRN-01")
def test_network_sysctls_live(state, hostvars, dropin, in_container):
    if in_container:
        not_applicable(CONTAINER_SKIP)
    _check_live(state, list(_expected_network(hostvars)), dropin)


@pytest.mark.control("CW-KRN-02")
def test_kernel_sysctls_configured(dropin, boot_sysctls):
    _check_config(KERNEL, dropin, boot_sysctls)
    for source, values in ((DROPIN, dropin), ("boot configuration", boot_sysctls)):
        scope = values.get(PTRACE, "0")
        assert scope.isdigit() and int(scope) >= 1, f"{PTRACE} = {scope} in {source}"


@pytest.mark.control("CW-KRN-02")
def test_kernel_sysctls_live(state, dropin, in_container):
    if in_container:
        not_applicable(CONTAINER_SKIP)
    _check_live(state, [*KERNEL, PTRACE], dropin)


@pytest.mark.control("CW-KRN-03")
def test_modules_refused_and_blacklisted(state, hostvars):
    assert state["modprobe_dropin"][0] == 0, f"{MODPROBE_DROPIN} is missing"
    installs, blacklisted = {}, set()
    for line in state["modprobe"][1].splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "install":
            installs.setdefault(_module(words[1]), " ".join(words[2:]))
        elif len(words) == 2 and words[0] == "blacklist":
            blacklisted.add(_module(words[1]))
    refusing = re.compile(r"^(/usr)?/bin/(false|true)$")
    for name in _blocked_modules(hostvars):
        assert refusing.match(installs.get(_module(name), "")), f"{name}: no 'install {name} /bin/false'"
        assert _module(name) in blacklisted, f"{name} is not blacklisted"


@pytest.mark.control("CW-KRN-03")
def test_modules_cannot_load(state, hostvars, in_container):
    if in_container:
        not_applicable(CONTAINER_SKIP)
    loaded = {line.split()[0] for line in state["proc_modules"][1].splitlines() if line.strip()}
    dry_runs = dict(line.split(": ", 1) for line in state["modprobe_dry_run"][1].splitlines() if ": " in line)
    for name in _blocked_modules(hostvars):
        assert re.search(r"install (/usr)?/bin/(false|true)", dry_runs.get(name, "")), f"modprobe would load {name}"
        assert _module(name) not in loaded, f"{name} is loaded"


@pytest.mark.control("CW-KRN-04")
def test_core_dumps_off_in_configuration(state, dropin, boot_sysctls):
    _check_config(COREDUMP, dropin, boot_sysctls)
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
def test_core_dumps_off_live(state, dropin, in_container):
    if in_container:
        not_applicable(CONTAINER_SKIP)
    _check_live(state, list(COREDUMP), dropin)


@pytest.mark.control("CW-KRN-05")
def test_usbguard_configured_on_field_devices(state, field_device):
    if not field_device:
        pytest.skip("not a field device (kernel_field_device is false): USBGuard does not apply")
    assert state["usbguard_pkg"][1].strip() == "installed", "usbguard is not installed"
    conf = parse_ini(state["usbguard_conf"][1])
    assert conf.get("ImplicitPolicyTarget") == "block"
    assert conf.get("InsertedDevicePolicy") in ("apply-policy", "block", "reject")
    assert conf.get("PresentDevicePolicy") in ("apply-policy", "block", "reject")
    assert "plugdev" not in conf.get("IPCAllowedGroups", ""), "plugdev members could change the USB policy"
    assert state["usbguard_enabled"][1].strip() == "enabled"


@pytest.mark.control("CW-KRN-05")
def test_usbguard_enforcing_on_field_devices(state, field_device, in_container):
    if not field_device:
        pytest.skip("not a field device (kernel_field_device is false): USBGuard does not apply")
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
