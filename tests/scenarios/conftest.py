"""Fixtures for scenario tests: they act like a person at the keyboard (log in over SSH,
type a TOTP code, sit at the console). They run only inside Molecule, never in `cityward audit`."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import paramiko
import pyotp
import pytest
import yaml

from cityward.changes import OVERRIDE_ENV
from cityward.checks.fixtures import host, hostvars

__all__ = ["host", "hostvars"]


@pytest.fixture(scope="module")
def container(hostvars):
    return hostvars.get("ansible_host", hostvars["inventory_hostname"])


@pytest.fixture(scope="module")
def published_ssh(container):
    """127.0.0.1 and the port Podman published for the container's sshd."""
    return _published(container)


@pytest.fixture(scope="session")
def keys_dir():
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "keys"


def _published(container: str) -> tuple[str, int]:
    out = subprocess.run(["podman", "port", container, "22/tcp"], capture_output=True, text=True, check=True)
    address, _, port = out.stdout.strip().splitlines()[0].rpartition(":")
    return address, int(port)


def write_automation_inventory(folder: Path, names: list[str], keys: Path) -> Path:
    """An inventory of these scenario hosts as a city's controller reaches them: over each one's
    published sshd as the automation account, with the lab's group_vars and each host's own
    variables (its operators, automation account, device record and zone)."""
    root = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    records = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "host_vars"
    (folder / "group_vars").symlink_to(root / "inventories" / "lab" / "group_vars")
    hosts = {}
    for name in names:
        record = yaml.safe_load((records / f"{name}.yml").read_text())
        address, port = _published(name)
        hosts[name] = {
            **record,
            "ansible_host": address, "ansible_port": port, "ansible_user": "cityward-automation",
            "ansible_ssh_private_key_file": str(keys / "automation"),
            # Only the automation key: keys an ssh-agent may hold would count as failed attempts.
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                       "-o IdentitiesOnly=yes",
            # sshd >= 9.8 (Debian 13) turns a source away for a while after failed logins, which the
            # access tests cause on purpose from this machine, and a loaded CI machine can be slow to
            # answer: Ansible waits longer for a connection and retries it.
            "ansible_ssh_retries": 8, "ansible_timeout": 60,
        }
    inventory = folder / "hosts.yml"
    # The lab's zones policy, as the lab inventory names it (an inventory input, not a group_vars one).
    zones = {"cityward_zones_file": str(root / "policies" / "zones.yml")}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": zones}}, sort_keys=False))
    return inventory


@pytest.fixture
def automation_inventory(hostvars, keys_dir, tmp_path):
    """This host alone, reached as the automation account (write_automation_inventory)."""
    return write_automation_inventory(tmp_path, [hostvars["inventory_hostname"]], keys_dir)


@pytest.fixture(scope="session")
def run_playbook():
    """ansible-playbook from the project folder, as an operator runs it."""

    def run(inventory: Path, playbook: str, *args: str, timeout: int = 300,
            override: bool = True) -> subprocess.CompletedProcess:
        # Plain text (no colour codes), so that tests can read the play recap.
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        if not override:  # without the scenario's change override: the change gate judges the run
            env.pop(OVERRIDE_ENV, None)
        return subprocess.run(["ansible-playbook", "-i", str(inventory), f"playbooks/{playbook}", *args],
                              capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=os.environ["MOLECULE_PROJECT_DIRECTORY"])

    return run


class Totp:
    """TOTP codes for one seed that PAM has not seen yet (it refuses a reused code)."""

    def __init__(self, seed: str):
        self._totp = pyotp.TOTP(seed)
        self._used: set[str] = set()

    def fresh(self) -> str:
        now = time.time()
        for offset in (0, 30, -30):
            code = self._totp.at(now + offset)
            if code not in self._used:
                self._used.add(code)
                return code
        time.sleep(30)
        return self.fresh()

    def wrong(self) -> str:
        now = time.time()
        valid = {self._totp.at(now + o) for o in (-60, -30, 0, 30, 60)}
        return next(c for c in (f"{n:06d}" for n in range(123456, 999999, 7919)) if c not in valid)


@pytest.fixture(scope="module")
def totp(hostvars):
    seeds = hostvars["vault_totp_secrets"]
    return {name: Totp(seed) for name, seed in seeds.items()}


def _handshake(endpoint, patience: float = 120) -> paramiko.Transport:
    """Open an SSH transport, waiting out sshd's PerSourcePenalties (OpenSSH >= 9.8 refuses a
    source for a while after failed logins, which these tests cause on purpose)."""
    deadline = time.monotonic() + patience
    while True:
        transport = None
        try:
            transport = paramiko.Transport(socket.create_connection(endpoint, timeout=10))
            transport.start_client(timeout=10)
            return transport
        except (paramiko.SSHException, EOFError, ConnectionError, OSError):
            if transport is not None:
                transport.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(3)


def wait_for_sshd(container: str) -> None:
    """Wait (up to two minutes) until the container's published sshd takes a connection from this
    machine again: Debian 13's sshd turns a source away for a while after failed logins."""
    _handshake(_published(container)).close()


class Session:
    """An SSH connection authenticated (or refused) the way a person would be."""

    def __init__(self, endpoint, user, key_path=None, code=None, password=None):
        self.transport = _handshake(endpoint)
        self.remaining = None
        try:
            if password is not None:
                self.transport.auth_password(user, password)
                return
            key = paramiko.Ed25519Key.from_private_key_file(str(key_path))
            self.remaining = self.transport.auth_publickey(user, key)
            if self.remaining and code is not None:
                self.transport.auth_interactive(user, lambda _t, _i, prompts: [code for _ in prompts])
        except Exception:
            self.transport.close()
            raise

    @property
    def authenticated(self) -> bool:
        return self.transport.is_authenticated()

    def run(self, command: str, stdin: str | None = None) -> tuple[int, str, str]:
        channel = self.transport.open_session()
        channel.settimeout(60)
        channel.exec_command(command)
        if stdin is not None:
            channel.sendall(stdin.encode())
        channel.shutdown_write()  # EOF: a prompt asking again gets nothing more, never hangs
        out = channel.makefile().read().decode()
        err = channel.makefile_stderr().read().decode()
        return channel.recv_exit_status(), out, err

    def close(self):
        self.transport.close()


@pytest.fixture
def ssh(published_ssh, keys_dir):
    sessions = []

    def connect(user, key=None, code=None, password=None):
        key_path = keys_dir / (key or user) if password is None else None
        session = Session(published_ssh, user, key_path, code, password)
        sessions.append(session)
        return session

    yield connect
    for session in sessions:
        session.close()


def pytest_terminal_summary(terminalreporter):
    """What scenario tests measured (`record_property("seconds", ...)`), after the results: the
    time a proof adds to its scenario is reported, not asserted."""
    reports = [report for outcome in ("passed", "failed") for report in terminalreporter.stats.get(outcome, [])]
    timed = [(report.nodeid, value) for report in reports
             for name, value in getattr(report, "user_properties", []) if name == "seconds"]
    if timed:
        terminalreporter.write_sep("-", "seconds measured")
        for nodeid, value in timed:
            terminalreporter.write_line(f"{value:8.1f} s  {nodeid}")
        terminalreporter.write_line(f"{sum(value for _, value in timed):8.1f} s  in all")
