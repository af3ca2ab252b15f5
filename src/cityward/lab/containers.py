"""`cityward lab up|down|status`: the lab city as Podman containers, described by its inventory."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cityward.errors import CitywardError
from cityward.lab.image import build_image
from cityward.lab.podman import podman
from cityward.resources import podman_env

LAB_LABEL = "io.cityward.lab"
NEVER = {"SYS_TIME", "SYS_ADMIN", "ALL", "SYS_MODULE", "SYS_RAWIO"}


@dataclass(frozen=True)
class LabHost:
    name: str
    container: str
    ip: str
    ssh_port: int
    image: str
    capabilities: tuple[str, ...]
    zone: str
    network: str
    subnet: str


def lab_env(inventory: Path) -> dict[str, str]:
    """Podman settings, plus the lab's own vault password file (lab only: a real city never
    keeps its vault password next to its inventory)."""
    env = podman_env()
    lab_password = inventory / "vault-password.txt"
    if "ANSIBLE_VAULT_PASSWORD_FILE" not in env and lab_password.is_file():
        # Absolute: Ansible's tasks (the check play's `cityward check`) run in other folders.
        env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(lab_password.resolve())
    return env


def inventory_hosts(inventory: Path) -> dict[str, dict]:
    """Host variables of an inventory, as Ansible resolves them (templates left as written)."""
    result = subprocess.run(["ansible-inventory", "-i", str(inventory), "--list"],
                            capture_output=True, text=True, env=lab_env(inventory), check=False)
    if result.returncode != 0:
        raise CitywardError(f"{inventory}: ansible-inventory failed: {result.stderr.strip()[-400:]}")
    data = json.loads(result.stdout)
    return data.get("_meta", {}).get("hostvars", {})


def lab_hosts(inventory: Path) -> list[LabHost]:
    if not inventory.exists():
        raise CitywardError(f"{inventory}: no lab inventory here; run from a cityward checkout or pass -i INVENTORY")
    hosts = []
    for name, hv in sorted(inventory_hosts(inventory).items()):
        missing = [k for k in ("lab_ip", "lab_ssh_port", "lab_network", "lab_subnet") if k not in hv]
        if missing:
            raise CitywardError(f"{inventory}: host {name}: missing {', '.join(missing)} (needed by the lab)")
        caps = tuple(str(c).upper() for c in hv.get("lab_capabilities", []))
        refused = sorted(set(caps) & NEVER)
        if refused:
            raise CitywardError(f"{inventory}: host {name}, field lab_capabilities: {', '.join(refused)} "
                                "is never granted to a lab container")
        hosts.append(LabHost(
            name=name, container=f"cw-lab-{name}", ip=str(hv["lab_ip"]), ssh_port=int(hv["lab_ssh_port"]),
            image=str(hv.get("lab_image", "localhost/cityward-debian:bookworm")), capabilities=caps,
            zone=str(hv.get("cityward_zone", "")), network=str(hv["lab_network"]), subnet=str(hv["lab_subnet"]),
        ))
    return hosts


def _say(msg: str) -> None:
    print(f"cityward lab: {msg}", file=sys.stderr, flush=True)


def _states() -> dict[str, str]:
    out = podman("ps", "-a", "--filter", f"label={LAB_LABEL}", "--format", "json").stdout
    return {c["Names"][0]: c["State"] for c in json.loads(out or b"[]")}


def _ensure_network(name: str, subnet: str) -> None:
    if podman("network", "exists", name, check=False).returncode == 0:
        return
    _say(f"creating network {name} ({subnet})")
    podman("network", "create", "--subnet", subnet, "--label", f"{LAB_LABEL}=1", name)


def up(inventory: Path) -> list[LabHost]:
    hosts = lab_hosts(inventory)
    for release in sorted({h.image.rsplit(":", 1)[-1] for h in hosts}):
        build_image(release)
    for network, subnet in sorted({(h.network, h.subnet) for h in hosts}):
        _ensure_network(network, subnet)
    states = _states()
    for host in hosts:
        state = states.get(host.container)
        if state == "running":
            continue
        if state is not None:
            _say(f"starting {host.container}")
            podman("start", host.container)
            continue
        _say(f"creating {host.container} ({host.zone}, {host.ip}, ssh on 127.0.0.1:{host.ssh_port})")
        caps = [arg for cap in host.capabilities for arg in ("--cap-add", cap)]
        podman(
            "run", "-d", "--name", host.container, "--hostname", host.name,
            "--label", f"{LAB_LABEL}=1", "--label", f"io.cityward.zone={host.zone}",
            "--network", host.network, "--ip", host.ip,
            "--publish", f"127.0.0.1:{host.ssh_port}:22",
            "--systemd=always", *caps, host.image, "/lib/systemd/systemd",
        )
    # systemd boots every container at once: on two cores twenty take well over a minute.
    _wait_running(hosts, timeout=60 + 5 * len(hosts))
    return hosts


def _wait_running(hosts: list[LabHost], timeout: float = 60) -> None:
    """Wait until systemd in each container has finished booting (sshd up)."""
    import time
    deadline = time.monotonic() + timeout
    pending = {h.container for h in hosts}
    while pending and time.monotonic() < deadline:
        for container in sorted(pending):
            state = podman("exec", container, "systemctl", "is-system-running", check=False).stdout
            if state.decode().strip() in ("running", "degraded"):
                pending.discard(container)
        if pending:
            time.sleep(1)
    if pending:
        raise CitywardError(f"systemd did not finish booting in: {', '.join(sorted(pending))}")


def down(inventory: Path) -> None:
    hosts = lab_hosts(inventory)
    existing = _states()
    for host in hosts:
        if host.container in existing:
            _say(f"removing {host.container}")
            podman("rm", "-f", "-t", "5", host.container)
    for network in sorted({h.network for h in hosts}):
        if podman("network", "exists", network, check=False).returncode == 0:
            podman("network", "rm", network, check=False)


def status(inventory: Path) -> list[dict]:
    states = _states()
    return [
        {"host": h.name, "container": h.container, "zone": h.zone, "ip": h.ip,
         "ssh": f"127.0.0.1:{h.ssh_port}", "state": states.get(h.container, "absent")}
        for h in lab_hosts(inventory)
    ]
