"""The hosts of molecule/default seen from outside (podman exec), for the tests that run playbooks
against them from its verify: the fault tests (tests/faults/test_reliability.py) and the slicing
proof (tests/scenarios/test_slicing.py). What the roles manage, as checksums: a run that changes
nothing leaves every one as it was, and two runs that reach the same end state leave the same."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST, SECOND = "cw-default-bookworm", "cw-default-trixie"
MANAGED = ("/etc/ssh/sshd_config /etc/pam.d/sshd /etc/pam.d/sudo /etc/sudoers.d/* /etc/profile.d/*cityward* "
           "/etc/login.defs /etc/security/*.conf /etc/passwd /etc/group /etc/shadow /etc/sysctl.d/* "
           "/etc/nftables.conf /etc/rsyslog.d/* /etc/audit/rules.d/* /etc/systemd/journald.conf.d/* "
           "/etc/chrony/chrony.conf /etc/apt/apt.conf.d/* /etc/apt/sources.list.d/*")


def molecule_inventory() -> Path:
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory"


def ansible_env() -> dict[str, str]:
    """The environment a playbook of this checkout runs with against the scenario's hosts. No roles
    path: the playbooks name every role by FQCN, found in the installed collection, as a city's are."""
    return {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_VAULT_PASSWORD_FILE": str(ROOT / "inventories" / "lab" / "vault-password.txt"),
            "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}


def exec_in(container: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", "exec", container, "sh", "-c", command], capture_output=True, text=True,
                          check=False, timeout=120)


def checksums(container: str) -> str:
    result = exec_in(container, f"sha256sum {MANAGED} 2>/dev/null | sort")
    assert result.stdout.count("\n") > 20, f"{container}: too few managed files found: {result.stdout}"
    return result.stdout
