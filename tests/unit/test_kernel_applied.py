"""The kernel and baseline roles' records of what they applied (cityward_<role>.fact) say what
their templates wrote: rendered by real Ansible templating from the same variables, each file is
read back with the audit's own parsers and must match the record the checks take as expected.
Both roles, every case, in ONE ansible-playbook on localhost."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.cityward.hardening.plugins.plugin_utils.applied import read
from local_play import playbook

from cityward.checks.test_baseline import _unescape
from cityward.checks.test_kernel import parse_sysctl

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"

# name -> (role, inventory values): the role defaults, then a city that overrides them.
CASES = {
    "kernel-defaults": ("kernel", {}),
    "kernel-overrides": ("kernel", {
        "kernel_router": True,
        "kernel_ptrace_scope": 2,
        "kernel_field_device": True,
        "kernel_module_blocklist_extra": ["usb-storage", "n_hdlc"],
        "kernel_sysctl_extra": {"kernel.kptr_restrict": 1, "fs.suid_dumpable": "0",
                                "net.ipv4.tcp_rmem": "4096 87380 6291456"},
    }),
    "kernel-usb-allowed": ("kernel", {"kernel_field_device": True, "kernel_allow_usb_storage": True}),
    "baseline-defaults": ("baseline", {}),
    "baseline-overrides": ("baseline", {
        "ssh_port": 2222,
        "baseline_listen_allowlist_extra": ["tcp/8883", "tcp/2222"],
        "baseline_masked_units_extra": ["rpcbind.socket", "bluetooth.service"],
        "baseline_packages_absent_extra": ["snmpd"],
        "baseline_aide_paths": ["/usr/bin", "/etc", "/opt/scada-1.2"],
        "baseline_aide_exclude": ["/etc/mtab", "/etc/.pwd.lock"],
        "baseline_file_permissions": [{"path": "/etc/shadow", "owner": "root", "group": "shadow", "mode": "0600"}],
        "baseline_banner_text": "Authorised use only: C:\\city\\scada is monitored.\n",
    }),
}
TEMPLATES = {
    "kernel": ["sysctl.conf.j2", "modprobe-blocklist.conf.j2"],
    "baseline": ["listen-allowlist.j2", "aide.conf.j2"],
}


def _play(name: str, role: str, inventory: dict, out: Path) -> dict:
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    tasks = [{"name": f"Render {template}", "ansible.builtin.template": {
        "src": str(ROLES / role / "templates" / template), "dest": str(out / f"{name}.{template}"), "mode": "0600"}}
        for template in TEMPLATES[role]]
    tasks.append({"name": "Write the record", "ansible.builtin.copy": {
        "content": f"{{{{ _{role}_applied | cityward.hardening.applied_fact('{role}') }}}}",
        "dest": str(out / f"{name}.fact"), "mode": "0600"}})
    if role == "baseline":
        tasks.append({"name": "Write /etc/issue as the role does", "ansible.builtin.copy": {
            "content": "{{ _baseline_issue_text }}", "dest": str(out / f"{name}.issue"), "mode": "0600"}})
    # Role vars (vars/main.yml) outrank the play's vars, as they outrank the inventory in a real run.
    return {"name": name, "hosts": "localhost", "gather_facts": False, "vars": {**defaults, **inventory},
            "vars_files": [str(ROLES / role / "vars" / "main.yml")], "tasks": tasks}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    lab = tmp_path_factory.mktemp("applied")
    out = lab / "out"
    out.mkdir()
    plays = [_play(name, role, inventory, out) for name, (role, inventory) in CASES.items()]
    (lab / "play.yml").write_text(yaml.safe_dump(plays))
    proc = playbook(lab, "-e", f"ansible_python_interpreter={sys.executable}")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    def files(name: str) -> dict:
        role = CASES[name][0]
        found = {template: (out / f"{name}.{template}").read_text() for template in TEMPLATES[role]}
        found["settings"] = read(role, (out / f"{name}.fact").read_text())
        if role == "baseline":
            found["issue"] = (out / f"{name}.issue").read_text()
        return found

    return files


@pytest.mark.parametrize("name", [n for n, (role, _) in CASES.items() if role == "kernel"])
def test_kernel_record_is_what_the_drop_ins_say(rendered, name):
    files = rendered(name)
    settings = files["settings"]
    written = parse_sysctl(files["sysctl.conf.j2"])
    recorded = {**settings["sysctl_network"], **settings["sysctl_kernel"], **settings["sysctl_coredump"],
                **settings["sysctl_site"]}
    assert {k: " ".join(v.split()) for k, v in recorded.items()} == written
    assert all(isinstance(value, str) for value in recorded.values())
    blocked = [line.split()[1] for line in files["modprobe-blocklist.conf.j2"].splitlines()
               if line.startswith("install ")]
    assert settings["blocked_modules"] == blocked
    assert settings["usb_storage_blocked"] == ("usb-storage" in blocked)
    assert settings["usbguard"] == settings["field_device"]
    json.dumps(settings)  # plain data only


def test_kernel_record_names_what_the_city_changed(rendered):
    defaults, city = rendered("kernel-defaults")["settings"], rendered("kernel-overrides")["settings"]
    assert defaults["sysctl_overridden"] == {} and defaults["sysctl_site"] == {}
    assert defaults["sysctl_network"]["net.ipv4.ip_forward"] == "0" and not defaults["router"]
    assert "usb-storage" not in defaults["blocked_modules"] and not defaults["usbguard"]
    # The router forwards; ptrace_scope is the role's own variable, not an override of its value.
    assert city["router"] and city["sysctl_network"]["net.ipv4.ip_forward"] == "1"
    assert city["sysctl_kernel"]["kernel.yama.ptrace_scope"] == "2"
    # "0" and 0 are one value in the file: fs.suid_dumpable is not an override.
    assert city["sysctl_overridden"] == {"kernel.kptr_restrict": "2"}
    assert city["sysctl_kernel"]["kernel.kptr_restrict"] == "1"
    assert city["sysctl_site"] == {"net.ipv4.tcp_rmem": "4096 87380 6291456"}
    assert city["blocked_modules"].count("usb-storage") == 1 and "n_hdlc" in city["blocked_modules"]
    usb_allowed = rendered("kernel-usb-allowed")["settings"]
    assert usb_allowed["usbguard"] and not usb_allowed["usb_storage_blocked"]


@pytest.mark.parametrize("name", [n for n, (role, _) in CASES.items() if role == "baseline"])
def test_baseline_record_is_what_the_files_say(rendered, name):
    files = rendered(name)
    settings = files["settings"]
    allowlist = [line for line in files["listen-allowlist.j2"].splitlines() if line and not line.startswith("#")]
    assert settings["listen_allowlist"] == allowlist
    aide = files["aide.conf.j2"].splitlines()
    assert settings["aide_paths"] == [_unescape(line.split()[0]) for line in aide if line.startswith("/")]
    assert settings["aide_exclude"] == [_unescape(line[1:].removesuffix("$")) for line in aide if line.startswith("!")]
    assert settings["issue"] == files["issue"]
    json.dumps(settings)


def test_baseline_record_follows_the_inventory(rendered):
    defaults, city = rendered("baseline-defaults")["settings"], rendered("baseline-overrides")["settings"]
    assert defaults["listen_allowlist"] == ["tcp/22"]
    assert city["listen_allowlist"] == ["tcp/2222", "tcp/8883"]
    assert city["masked_units"].count("rpcbind.socket") == 1 and "bluetooth.service" in city["masked_units"]
    assert "snmpd" in city["packages_absent"] and "telnet" in city["packages_absent"]
    assert city["file_permissions"] == [{"path": "/etc/shadow", "owner": "root", "group": "shadow", "mode": "0600"}]
    # getty would expand "\c": every backslash of /etc/issue is doubled, the motd keeps the text as given.
    assert city["issue"] == "Authorised use only: C:\\\\city\\\\scada is monitored.\n"
    assert city["motd"] == "Authorised use only: C:\\city\\scada is monitored.\n"
    assert defaults["issue"] == defaults["motd"] and "Authorised access only" in defaults["issue"]
