"""Let testinfra's ansible backend talk to Podman hosts natively.

testinfra runs every command through an Ansible module (about a second each) for connection
types it does not know, and it does not know Podman. This wraps its host lookup so hosts with
`ansible_connection: podman` use testinfra's own podman backend (`podman exec`): the same
inventory, the same checks, twenty times faster. Importing the module installs the wrapper.
"""

from __future__ import annotations

import testinfra
from testinfra.utils import ansible_runner

_PODMAN = ("podman", "containers.podman.podman")
_original = ansible_runner.get_ansible_host


def _get_ansible_host(config, inventory, host, ssh_config=None, ssh_identity_file=None):
    hostvars = inventory.get("_meta", {}).get("hostvars", {}).get(host, {})
    if hostvars.get("ansible_connection") in _PODMAN:
        container = hostvars.get("ansible_host", host)
        user = hostvars.get("ansible_user")
        return testinfra.get_host(f"podman://{user + '@' if user else ''}{container}")
    return _original(config, inventory, host, ssh_config=ssh_config, ssh_identity_file=ssh_identity_file)


if ansible_runner.get_ansible_host is not _get_ansible_host:
    ansible_runner.get_ansible_host = _get_ansible_host
