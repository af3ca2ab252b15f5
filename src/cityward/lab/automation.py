"""The documented automation account on a lab container, as an installer would leave it: granted
over `podman exec` (a login with one public key and passwordless sudo), and the inventory
variables Ansible and the audit log in with over SSH.

`cityward bench` uses it on its fresh containers; so does the execution-environment proof
(tests/scenarios/test_ee.py). The VM tier makes the same grant at first boot (cityward.lab.vm_image).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from cityward.lab.podman import podman

AUTOMATION_USER = "cityward-automation"
# Run in the container as root, with the public key on stdin.
GRANT_AUTOMATION = f"""set -eu
u={AUTOMATION_USER}
id "$u" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$u"
install -d -m 0700 -o "$u" -g "$u" /home/$u/.ssh
cat > /home/$u/.ssh/authorized_keys
chown "$u:$u" /home/$u/.ssh/authorized_keys
chmod 0600 /home/$u/.ssh/authorized_keys
echo "$u ALL=(ALL:ALL) NOPASSWD: ALL" > /etc/sudoers.d/50-cityward-automation
chmod 0440 /etc/sudoers.d/50-cityward-automation
"""


def automation_key(folder: Path, comment: str = "cityward-lab") -> Path:
    """An ed25519 key pair for the automation account in `folder` (private half 0600), made once."""
    key = folder / "automation_key"
    if not key.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
                       check=True, capture_output=True)
    key.chmod(0o600)
    return key


def public_key(key: Path) -> str:
    """The public half of the key pair whose private half is `key`."""
    return key.with_suffix(".pub").read_text(encoding="ascii").strip()


def grant_automation(container: str, key: Path) -> None:
    """Create the automation account in a running container, logging in with `key`'s public half."""
    podman("exec", "-i", container, "sh", "-c", GRANT_AUTOMATION, input_bytes=(public_key(key) + "\n").encode())


def ssh_vars(key: Path, sources: list[str], known_hosts: str, key_file: str | None = None) -> dict:
    """Inventory variables for SSH as the automation account with `key`: from `sources` only (the
    ssh and firewall roles admit it from there, and only there), host keys learnt on first contact
    into `known_hosts`, and the private key from `key_file` (None: from the ssh-agent, as
    ansible-runner hands a machine credential to Ansible)."""
    variables = {
        "ansible_connection": "ssh",
        "ansible_user": AUTOMATION_USER,
        "ansible_become": True,
        "ansible_ssh_common_args": f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={known_hosts}",
        "cityward_automation_user": AUTOMATION_USER,
        "cityward_automation_sources": list(sources),
        "accounts_automation_ssh_keys": [public_key(key)],
    }
    if key_file is not None:
        variables["ansible_private_key_file"] = key_file
    return variables
