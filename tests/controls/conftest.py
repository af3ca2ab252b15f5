"""Shared helpers for the control checks. The same modules run under `molecule verify` and
`cityward audit`: they only read state from the host, never change it."""

from __future__ import annotations

import json
import subprocess

import pytest

import cityward.testinfra_podman  # noqa: F401 - podman hosts through testinfra's native backend


@pytest.fixture(scope="module")
def hostvars(host):
    return host.ansible.get_variables()


@pytest.fixture(scope="module")
def ssh_endpoint(host, hostvars):
    """(address, port) of the host's sshd as reached from the controller."""
    if hostvars.get("ansible_connection") in ("podman", "containers.podman.podman"):
        name = hostvars.get("ansible_host", hostvars["inventory_hostname"])
        out = subprocess.run(["podman", "inspect", name], capture_output=True, text=True, check=True).stdout
        networks = json.loads(out)[0]["NetworkSettings"]["Networks"]
        address = next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))
        return address, int(hostvars.get("ssh_port", 22))
    port = int(hostvars.get("ansible_port", hostvars.get("ssh_port", 22)))
    return hostvars.get("ansible_host", hostvars["inventory_hostname"]), port
