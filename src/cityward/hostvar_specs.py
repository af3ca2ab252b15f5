"""What each host variable the roles read must look like: its type, from the roles' own argument
specs (roles/*/meta/argument_specs.yml, read here, never restated), and the FORMAT of its strings
(one table, FORMATS), for the schema gate in cityward.hostvars.

A `cityward_*` variable of the inventory API takes the spec of the role option whose default is
that variable (`accounts_operators: "{{ cityward_operators | default([]) }}"`); the few that no
single option defaults to are in EXTRA_SPECS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from cityward.resources import collection_root
from cityward.yamlfile import load_yaml

# Formats of strings. Each names what a value may contain (cityward.hostvars checks it).
ADDRESS = "address"      # an IP address or network (ipaddress), e.g. a source of SSH
HOST = "host"            # a host name or an IP address
NAME = "name"            # a user or group name
WORD = "word"            # one token from a conservative set: package, unit, cipher, size, choice
PORT = "port"            # 1-65535, or tcp/N, udp/N
PATH = "path"            # a file system path, one line
URL = "url"              # http(s)://host/path
TEXT = "text"            # free text, one line
MULTILINE = "multiline"  # free text whose lines are kept (banners)
PEM = "pem"              # a certificate or key (PEM), usually lookup('file') or vault
SECRET = "secret"  # noqa: S105 (a format name, not a password): a password hash, TOTP seeds: vault or a template
SSHKEY = "sshkey"        # an OpenSSH public key line
ZONE = "zone"            # a zone name of the zones policy
MFA = "mfa"              # totp or fido2 (roles/accounts, roles/mfa)
PERCENT = "percent"      # an integer or N% (a patch batch)


@dataclass(frozen=True)
class Format:
    kind: str
    templated: bool = False  # a Jinja template is legitimate here (the template's filters defend)


def _f(kind: str, templated: bool = False) -> Format:
    return Format(kind, templated)


# Every str and list-of-str option of every argument spec, and the parts of dict options the
# roles read (`name[]` an element of a list, `name.key` a key of a mapping, `name.*` any key).
FORMATS: dict[str, Format] = {
    # accounts
    "accounts_operators[].name": _f(NAME),
    "accounts_operators[].ssh_keys[]": _f(SSHKEY, templated=True),
    "accounts_operators[].mfa": _f(MFA),
    "accounts_ssh_group": _f(NAME), "accounts_admin_group": _f(NAME), "accounts_fido2_group": _f(NAME),
    "accounts_automation_user": _f(NAME),
    "accounts_automation_ssh_keys": _f(SSHKEY, templated=True),
    "accounts_automation_sources": _f(ADDRESS),
    "accounts_breakglass_user": _f(NAME),
    "accounts_breakglass_password_hash": _f(SECRET, templated=True),
    "accounts_vendor_defaults": _f(NAME),
    "accounts_vendor_default_action": _f(WORD),
    "accounts_umask": _f(WORD),
    "accounts_home_mode": _f(WORD),
    "accounts_pwquality.*": _f(WORD),
    # backup
    "backup_server": _f(HOST), "backup_server_address": _f(HOST, templated=True),
    "backup_passphrase": _f(SECRET, templated=True), "backup_paths": _f(PATH),
    "backup_application_state": _f(PATH, templated=True), "backup_exclude": _f(PATH),
    "backup_retention.*": _f(WORD), "backup_window.*": _f(WORD), "backup_server_user": _f(NAME),
    "backup_server_root": _f(PATH), "backup_restore_from": _f(HOST, templated=True),
    # baseline
    "baseline_packages_absent": _f(WORD), "baseline_packages_absent_extra": _f(WORD),
    "baseline_masked_units": _f(WORD), "baseline_masked_units_extra": _f(WORD),
    "baseline_listen_allowlist": _f(PORT), "baseline_listen_allowlist_extra": _f(PORT, templated=True),
    "baseline_aide_paths": _f(PATH), "baseline_aide_exclude": _f(PATH),
    "baseline_aide_check_schedule": _f(TEXT),
    "baseline_file_permissions[].path": _f(PATH), "baseline_file_permissions[].owner": _f(NAME),
    "baseline_file_permissions[].group": _f(NAME), "baseline_file_permissions[].mode": _f(WORD),
    "baseline_root_only_programs": _f(PATH),
    "baseline_banner_text": _f(MULTILINE), "baseline_motd_text": _f(MULTILINE),
    # firewall
    "firewall_zones_file": _f(PATH), "firewall_zone": _f(ZONE),
    "firewall_service_hosts.*[]": _f(ADDRESS),
    "firewall_dns_resolvers": _f(ADDRESS), "firewall_management_sources": _f(ADDRESS),
    "firewall_forward_policy": _f(WORD), "firewall_state_dir": _f(PATH),
    # kernel
    "kernel_sysctl_extra.*": _f(WORD),
    "kernel_sysctl_mask_vendor_files": _f(PATH),
    "kernel_module_blocklist": _f(WORD), "kernel_module_blocklist_extra": _f(WORD),
    # lab_pki (the lab's own CA, run on the controller)
    "lab_pki_dir": _f(PATH, templated=True), "lab_pki_cas": _f(WORD), "lab_pki_signing_keys": _f(WORD),
    # logging
    "logging_siem_host": _f(HOST), "logging_siem_peer_name": _f(HOST),
    "logging_forward_selector": _f(WORD),
    "logging_tls_ca_cert": _f(PEM, templated=True), "logging_tls_cert": _f(PEM, templated=True),
    "logging_tls_key": _f(PEM, templated=True), "logging_tls_dir": _f(PATH),
    "logging_queue_max_disk": _f(WORD), "logging_journal_max_retention": _f(WORD),
    "logging_journal_system_max_use": _f(WORD), "logging_journal_system_keep_free": _f(WORD),
    "logging_audit_rules_extra": _f(TEXT),
    "logging_audit_space_left_action": _f(WORD), "logging_audit_admin_space_left_action": _f(WORD),
    "logging_audit_disk_full_action": _f(WORD), "logging_audit_disk_error_action": _f(WORD),
    "logging_ntp_servers[].host": _f(HOST), "logging_ntp_servers[].options": _f(TEXT),
    "logging_ntp_trusted_certs": _f(PEM, templated=True),
    # mfa
    "mfa_totp_secrets.*": _f(SECRET, templated=True),
    "mfa_operators": _f(NAME), "mfa_secret_dir": _f(PATH),
    "mfa_admin_group": _f(NAME), "mfa_breakglass_user": _f(NAME),
    # mqtt_gateway
    "mqtt_gateway_tls_version": _f(WORD), "mqtt_gateway_ciphers": _f(WORD), "mqtt_gateway_ciphers_tls13": _f(WORD),
    "mqtt_gateway_ca_cert": _f(PEM, templated=True), "mqtt_gateway_server_cert": _f(PEM, templated=True),
    "mqtt_gateway_server_key": _f(PEM, templated=True),
    "mqtt_gateway_acls[].user": _f(NAME), "mqtt_gateway_acls[].read[]": _f(WORD),
    "mqtt_gateway_acls[].write[]": _f(WORD),
    # patching
    "patching_origins": _f(TEXT), "patching_maintenance_window.*": _f(WORD),
    "patching_reboot_time": _f(WORD), "patching_mirrors.*[]": _f(URL),
    "patching_components": _f(WORD), "patching_keyring": _f(PATH),
    "patching_legacy_debian_uris": _f(URL), "patching_report_path": _f(PATH),
    "patching_report_dir": _f(PATH, templated=True), "patching_batch_hosts": _f(TEXT, templated=True),
    "patching_mirror_public_key": _f(PEM, templated=True), "patching_mirror_ca_cert": _f(PEM, templated=True),
    # preflight
    "preflight_slices_refused": _f(TEXT),
    # siem_receiver
    "siem_receiver_permitted_peers": _f(HOST, templated=True), "siem_receiver_log_dir": _f(PATH),
    "siem_receiver_tls_priority": _f(WORD),
    "siem_receiver_tls_ca_cert": _f(PEM, templated=True), "siem_receiver_tls_cert": _f(PEM, templated=True),
    "siem_receiver_tls_key": _f(PEM, templated=True), "siem_receiver_tls_dir": _f(PATH),
    # update_mirror
    "update_mirror_url": _f(URL, templated=True), "update_mirror_root": _f(PATH),
    "update_mirror_tls_cert": _f(PEM, templated=True), "update_mirror_tls_key": _f(PEM, templated=True),
    "update_mirror_tls_protocols": _f(WORD), "update_mirror_tls_ciphers": _f(WORD),
    "update_mirror_signing_key": _f(PEM, templated=True), "update_mirror_public_key": _f(PEM, templated=True),
    "update_mirror_architectures": _f(WORD),
    "update_mirror_upstreams[].name": _f(WORD), "update_mirror_upstreams[].url": _f(URL),
    "update_mirror_upstreams[].distribution": _f(WORD), "update_mirror_upstreams[].components[]": _f(WORD),
    "update_mirror_upstreams[].filter": _f(TEXT), "update_mirror_upstreams[].keyring": _f(PATH),
    "update_mirror_repos[].name": _f(WORD), "update_mirror_repos[].distribution": _f(WORD),
    "update_mirror_repos[].component": _f(WORD),
    "update_mirror_publications[].prefix": _f(WORD), "update_mirror_publications[].distribution": _f(WORD),
    "update_mirror_publications[].snapshot": _f(WORD), "update_mirror_publications[].origin": _f(TEXT),
    "update_mirror_publications[].label": _f(TEXT),
    "update_mirror_stage_id": _f(WORD), "update_mirror_stage_packages[].repo": _f(WORD),
    "update_mirror_stage_packages[].file": _f(PATH, templated=True),
    "cityward_update_mirrors[].name": _f(WORD), "cityward_update_mirrors[].url": _f(URL),
    "cityward_update_mirrors[].host": _f(HOST), "cityward_update_mirrors[].zone": _f(WORD),
    # ssh
    "ssh_allow_groups": _f(NAME), "ssh_fido2_group": _f(NAME), "ssh_automation_user": _f(NAME),
    "ssh_automation_sources": _f(ADDRESS), "ssh_deny_users": _f(NAME), "ssh_banner_text": _f(MULTILINE),
    "ssh_kex_algorithms": _f(WORD), "ssh_ciphers": _f(WORD), "ssh_macs": _f(WORD),
    "ssh_host_key_algorithms": _f(WORD), "ssh_pubkey_accepted_algorithms": _f(WORD),
    # the inventory API variables no single option defaults to (EXTRA_SPECS)
    "cityward_patch_serial": _f(PERCENT),
    "cityward_inventory_dir": _f(PATH, templated=True),
    # connection variables: never templated (a template here runs on the controller)
    "ansible_host": _f(HOST), "ansible_user": _f(NAME), "ansible_become_user": _f(NAME),
    "ansible_connection": _f(WORD), "ansible_become_method": _f(WORD),
    "ansible_python_interpreter": _f(PATH), "ansible_private_key_file": _f(PATH, templated=True),
    "ansible_ssh_common_args": _f(TEXT), "ansible_ssh_extra_args": _f(TEXT), "ansible_ssh_args": _f(TEXT),
    "ansible_password": _f(SECRET, templated=True), "ansible_become_password": _f(SECRET, templated=True),
    "ansible_ssh_pass": _f(SECRET, templated=True), "ansible_become_pass": _f(SECRET, templated=True),
}

# cityward_* variables that no role option defaults to as a whole: their spec, in the same words.
EXTRA_SPECS: dict[str, dict[str, Any]] = {
    "cityward_ntp_servers": {"type": "list", "elements": "dict", "like": "logging_ntp_servers"},
    "cityward_apt_mirrors": {"type": "dict", "like": "patching_mirrors"},
    "cityward_patch_serial": {"type": "raw"},
    "cityward_patch_max_fail_percentage": {"type": "int"},
    "cityward_apt_cache_valid_time": {"type": "int"},
    "cityward_job_slices": {"type": "int"},
    "cityward_inventory_dir": {"type": "str"},
    "cityward_ntp_reachable": {"type": "bool"},
    # The audit's certificate renewal threshold (cityward.checks.certificates).
    "cityward_certificate_renew_days": {"type": "int"},
    "cityward_update_mirrors": {"type": "list", "elements": "dict"},
}
# Connection variables (Ansible's own): their types.
CONNECTION_SPECS: dict[str, dict[str, Any]] = {
    "ansible_host": {"type": "str"}, "ansible_user": {"type": "str"}, "ansible_port": {"type": "port"},
    "ansible_connection": {"type": "str"}, "ansible_become": {"type": "bool"},
    "ansible_become_user": {"type": "str"}, "ansible_become_method": {"type": "str"},
    "ansible_python_interpreter": {"type": "str"}, "ansible_private_key_file": {"type": "str"},
    "ansible_ssh_common_args": {"type": "str"}, "ansible_ssh_extra_args": {"type": "str"},
    "ansible_ssh_args": {"type": "str"}, "ansible_password": {"type": "str"},
    "ansible_become_password": {"type": "str"}, "ansible_ssh_pass": {"type": "str"},
    "ansible_become_pass": {"type": "str"},
}
ROLE_PREFIXES = ("backup_", "ssh_", "logging_", "accounts_", "mfa_", "firewall_", "kernel_", "baseline_", "patching_",
                 "mqtt_gateway_", "siem_receiver_", "update_mirror_")
# `role_var: "{{ cityward_x | default(...) }}"` (or a one-element list of it): role_var reads cityward_x.
_READS = re.compile(r"^\s*\{\{\s*(cityward_[a-z0-9_]+)\s*\|\s*default\(")


@cache
def role_options() -> dict[str, dict[str, Any]]:
    """Every option of every role's argument specs (all entry points), by name."""
    options: dict[str, dict[str, Any]] = {}
    for path in sorted((collection_root() / "roles").glob("*/meta/argument_specs.yml")):
        data = load_yaml(path) or {}
        for entry in (data.get("argument_specs") or {}).values():
            for name, spec in (entry.get("options") or {}).items():
                options.setdefault(name, dict(spec or {}))
    return options


@cache
def role_defaults() -> dict[str, Any]:
    """Every role's defaults (roles/*/defaults/main.yml), by variable name."""
    found: dict[str, Any] = {}
    for path in sorted((collection_root() / "roles").glob("*/defaults/main.yml")):
        found.update(load_yaml(path) or {})
    return found


@cache
def api_options() -> dict[str, str]:
    """cityward_x -> the role option that defaults to it (the first one, by name)."""
    found: dict[str, str] = {}
    options = role_options()
    for name, value in sorted(role_defaults().items()):
        text = value[0] if isinstance(value, list) and len(value) == 1 else value
        match = _READS.match(text) if isinstance(text, str) else None
        if match and name in options:
            found.setdefault(match.group(1), name)
    return found


def spec_of(variable: str) -> tuple[str, dict[str, Any]] | None:
    """(the name its formats are keyed by, its spec) for a variable the gate types, else None."""
    if variable in CONNECTION_SPECS:
        return variable, CONNECTION_SPECS[variable]
    if variable in EXTRA_SPECS:
        spec = EXTRA_SPECS[variable]
        like = spec.get("like")
        return (like, role_options()[like]) if like else (variable, spec)
    if variable.startswith("cityward_") and variable in api_options():
        option = api_options()[variable]
        return option, role_options()[option]
    if variable in role_options():
        return variable, role_options()[variable]
    return None


def format_of(key: str) -> Format | None:
    return FORMATS.get(key)


def check_table() -> list[str]:
    """Options of the argument specs whose strings have no format in FORMATS (for the tests)."""
    missing = []
    for name, spec in role_options().items():
        kind, elements = spec.get("type", "str"), spec.get("elements")
        if kind in ("str", "path") or (kind == "list" and elements in ("str", "path")):
            if name not in FORMATS:
                missing.append(name)
        elif kind in ("dict", "list") and not any(k.startswith((f"{name}.", f"{name}[")) for k in FORMATS) \
                and name not in ("firewall_zones", "lab_pki_identities"):  # checked by their own loaders
            missing.append(name)
    return missing


__all__ = ["FORMATS", "Format", "api_options", "check_table", "format_of", "role_options",
           "spec_of"]
