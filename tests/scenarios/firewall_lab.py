"""The molecule/firewall lab city: its containers, their zones, and real traffic between them.

Shared by test_firewall.py and test_mqtt.py, which run only inside that Molecule scenario. Every
probe runs inside a lab container (podman exec), so test traffic stays on the scenario's own
network. What a flow should do is computed from the lab's zones policy, never written by hand.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_network
from pathlib import Path

import yaml

from cityward.zones import ZonesPolicy, load_zones

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
LAB_POLICY = EPHEMERAL / "zones-lab.yml"
NOT_IN_LAB = "not applicable: needs the molecule/firewall lab (zones-lab.yml in the scenario's ephemeral folder)"
PROJECT = Path(__file__).resolve().parents[2]
LISTENER_UNIT = "cw-fw-probe-listener"
UNLISTED = ("tcp", 8080)  # a port no conduit names
TIMEOUT = 3.0

OPEN, DROPPED, REFUSED = "open", "dropped", "refused"

# Runs inside a source container: one thread per target; prints one verdict per target.
# EPERM on connect/send means the sender's own output chain dropped the packet.
PROBE = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
timeout = float(sys.argv[2])
def probe(target):
    address, proto, port = target
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(timeout)
    try:
        s.connect((address, port))
        if proto == "udp":
            s.send(b"cw-fw-probe")
            s.recv(64)
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except (PermissionError, TimeoutError, socket.timeout):
        return "dropped"
    except OSError as exc:
        return "error: " + str(exc)
    finally:
        s.close()
targets = json.loads(sys.argv[1])
with ThreadPoolExecutor(max(1, len(targets))) as pool:
    print(json.dumps(list(pool.map(probe, targets))))
"""

# Runs inside a target container under systemd-run: accepts TCP and echoes UDP on the given
# ports, skipping those a real service already holds (sshd on 22, mosquitto on 8883).
LISTENER = r"""
import socket, sys, threading
def tcp(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", port))
    except OSError:
        return
    s.listen(128)
    while True:
        conn, _ = s.accept()
        conn.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("0.0.0.0", port))
    except OSError:
        return
    while True:
        _, peer = s.recvfrom(64)
        s.sendto(b"pong", peer)
threads = []
for spec in sys.argv[1:]:
    proto, port = spec.split("/")
    threads.append(threading.Thread(target=tcp if proto == "tcp" else udp, args=(int(port),)))
for t in threads:
    t.start()
"""


def lab_available() -> bool:
    return LAB_POLICY.is_file() and "MOLECULE_FILE" in os.environ


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    zone: str
    groups: tuple[str, ...]
    firewalled: bool  # the firewall role manages it (it has a cityward_zone)


Flow = tuple[str, str, str, int]  # source node, destination node, protocol, port


class Lab:
    def __init__(self) -> None:
        self.policy: ZonesPolicy = load_zones(LAB_POLICY)
        config = yaml.safe_load(Path(os.environ["MOLECULE_FILE"]).read_text())
        self.config = config  # the scenario's molecule.yml (its platforms: how create.yml made each container)
        host_vars = config["provisioner"]["inventory"].get("host_vars", {})
        group_vars = config["provisioner"]["inventory"].get("group_vars", {})
        self.service_hosts = group_vars.get("all", {}).get("cityward_service_hosts", {})
        self.nodes: dict[str, Node] = {}
        for platform in config["platforms"]:
            name = platform["name"]
            address = self.address_of(name)
            zone = self.zone_of(address)
            declared = host_vars.get(name, {}).get("cityward_zone")
            assert declared in (None, zone), f"{name} ({address}) sits in zone {zone}, not {declared}"
            self.nodes[name] = Node(name, address, zone, tuple(platform.get("groups", [])), declared is not None)

    # --- the lab ---------------------------------------------------------------------------
    @staticmethod
    def address_of(name: str) -> str:
        out = subprocess.run(["podman", "inspect", name], capture_output=True, text=True, check=True).stdout
        networks = json.loads(out)[0]["NetworkSettings"]["Networks"]
        return next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))

    def zone_of(self, address: str) -> str:
        ip = IPv4Address(address)
        return next(z.name for z in self.policy.zones.values() if ip in z.cidr)

    def in_group(self, group: str) -> list[Node]:
        return [n for n in self.nodes.values() if group in n.groups]

    def ports(self) -> list[tuple[str, int]]:
        """Every protocol/port a conduit names, plus one no conduit names."""
        return sorted({(c.protocol, c.port) for c in self.policy.conduits} | {UNLISTED})

    # --- running things in the containers --------------------------------------------------
    def exec(self, name: str, command: str | list[str], stdin: str | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess:
        argv = ["bash", "-c", command] if isinstance(command, str) else command
        return subprocess.run(["podman", "exec", "-i", name, *argv], input=stdin, capture_output=True,
                               text=True, timeout=timeout)

    def ruleset(self, name: str) -> str:
        result = self.exec(name, ["nft", "list", "ruleset"])
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start_listeners(self) -> None:
        """A throwaway TCP/UDP listener on every port a probe may reach, on every lab host."""
        specs = [f"{proto}/{port}" for proto, port in self.ports()]

        def start(name: str) -> None:
            self.exec(name, f"systemctl stop {LISTENER_UNIT} 2>/dev/null; systemctl reset-failed {LISTENER_UNIT} "
                            "2>/dev/null; true")
            result = self.exec(name, ["systemd-run", "--quiet", "--collect", f"--unit={LISTENER_UNIT}",
                                      "python3", "-c", LISTENER, *specs])
            assert result.returncode == 0, f"{name}: {result.stderr}"
            for _ in range(50):
                listening = self.exec(name, ["ss", "-Hltn", "sport = :8080"]).stdout
                if ":8080" in listening:
                    return
                time.sleep(0.2)
            raise AssertionError(f"{name}: the probe listener did not start")

        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(start, self.nodes))

    def probe(self, flows: Iterable[Flow]) -> dict[Flow, str]:
        """Real connections from each source container; all sources at once."""
        by_source: dict[str, list[Flow]] = {}
        for flow in flows:
            by_source.setdefault(flow[0], []).append(flow)

        def run(source: str) -> dict[Flow, str]:
            flows_here = by_source[source]
            targets = [[self.nodes[d].address, proto, port] for _, d, proto, port in flows_here]
            result = self.exec(source, ["python3", "-c", PROBE, json.dumps(targets), str(TIMEOUT)])
            assert result.returncode == 0, f"{source}: {result.stderr}"
            return dict(zip(flows_here, json.loads(result.stdout), strict=True))

        observed: dict[Flow, str] = {}
        with ThreadPoolExecutor(len(by_source) or 1) as pool:
            for part in pool.map(run, by_source):
                observed.update(part)
        return observed

    def all_flows(self) -> list[Flow]:
        return [(s, d, proto, port) for s in self.nodes for d in self.nodes if s != d for proto, port in self.ports()]

    def matrix(self) -> dict[Flow, str]:
        return self.probe(self.all_flows())

    # --- what the policy says --------------------------------------------------------------
    def conduit(self, source: Node, destination: Node, proto: str, port: int) -> bool:
        return any(c.from_ == source.zone and c.to == destination.zone and c.protocol == proto and c.port == port
                   for c in self.policy.conduits)

    def management_ssh(self, source: Node, proto: str, port: int) -> bool:
        return (proto, port) == ("tcp", 22) and self.policy.kind_of(source.zone) == "management"

    def log_forwarding(self, source: Node, destination: Node, proto: str, port: int) -> bool:
        rules = self.policy.host_rules(source.zone, self.service_hosts)["logging"]
        return any(proto == r["protocol"] and port == r["port"]
                   and any(IPv4Address(destination.address) in ip_network(d) for d in r["destinations"])
                   for r in rules)

    def expected(self, flow: Flow, isolated: frozenset[str] = frozenset()) -> str:
        source, destination = self.nodes[flow[0]], self.nodes[flow[1]]
        proto, port = flow[2], flow[3]
        allowed = self.conduit(source, destination, proto, port)
        if source.name in isolated and not self.log_forwarding(source, destination, proto, port):
            return DROPPED
        if destination.name in isolated and not self.management_ssh(source, proto, port):
            return DROPPED
        if source.firewalled and self.policy.zone(source.zone).is_ot and not allowed:
            return DROPPED  # OT egress: only the conduits from the zone (CW-FW-03)
        if destination.firewalled and not (allowed or self.management_ssh(source, proto, port)):
            return DROPPED  # input default-deny (CW-FW-02), management SSH always (CW-FW-04)
        return OPEN

    # --- Ansible, as an operator runs it ---------------------------------------------------
    def playbook(self, playbook: str | Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
        tool = Path(sys.executable).parent / "ansible-playbook"
        command = [str(tool), "-i", str(inventory), str(playbook), *args]
        env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, cwd=PROJECT)


def recap(result: subprocess.CompletedProcess, host: str) -> dict[str, int]:
    """The PLAY RECAP counters of one host."""
    for line in result.stdout.splitlines():
        if line.startswith(host + " ") and "ok=" in line:
            return {k: int(v) for k, v in (part.split("=") for part in line.split(":", 1)[1].split())}
    raise AssertionError(f"no recap for {host}:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")


def describe(flows: Iterable[Flow], observed: dict[Flow, str], expected) -> str:
    rows = [f"  {s} -> {d} {proto}/{port}: observed {observed[(s, d, proto, port)]}, "
            f"policy says {expected((s, d, proto, port))}" for s, d, proto, port in flows]
    return "\n".join(rows)


def quote(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)


# Runs inside the management container: opens an SSH connection, reads the server's banner, waits
# for a trigger file, then sends its own identification; the server's KEXINIT coming back proves
# the established session survived whatever happened in between (a reload, an isolation).
SESSION = r"""
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], 22), timeout=10)
banner = b""
while not banner.endswith(b"\n"):
    banner += s.recv(1)
print("BANNER " + banner.decode(errors="replace").strip(), flush=True)
deadline = time.time() + 120
while not os.path.exists(sys.argv[2]) and time.time() < deadline:
    time.sleep(0.1)
s.settimeout(15)
s.sendall(b"SSH-2.0-cityward-probe\r\n")
try:
    data = s.recv(4096)
except OSError as exc:
    print("LOST " + str(exc), flush=True)
else:
    print("KEXINIT" if len(data) > 5 and data[5] == 20 else "OTHER %r" % data[:16], flush=True)
"""


class HeldSession:
    """An SSH connection from `source` to `destination` held open across an operation."""

    def __init__(self, lab: Lab, source: str, destination: str):
        self.lab, self.source = lab, source
        self.trigger = f"/run/cw-fw-session-{destination}"  # inside the lab container
        lab.exec(source, ["rm", "-f", self.trigger])
        self.proc = subprocess.Popen(
            ["podman", "exec", "-i", source, "python3", "-c", SESSION, lab.nodes[destination].address, self.trigger],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.banner = self.proc.stdout.readline().strip()
        assert self.banner.startswith("BANNER SSH-2.0-"), f"no SSH from {source} to {destination}: {self.banner}"

    def finish(self) -> str:
        """Send the client identification now; 'KEXINIT' when the server still answers."""
        self.lab.exec(self.source, ["touch", self.trigger])
        out, _ = self.proc.communicate(timeout=60)
        return out.strip()
