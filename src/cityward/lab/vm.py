"""`cityward lab vm up|down|status`: boot the lab VM image with QEMU in software emulation.

Each `up` boots a fresh copy-on-write overlay of the cached image (cityward.lab.vm_image), so no
run sees another's state. sshd is forwarded on 127.0.0.1 only; the guest sees the controller as
10.0.2.2. A fresh ed25519 key (0600, never printed) is made for every boot and its public half
handed to the guest through QEMU's fw_cfg, where a first-boot unit makes it the automation
account's only key. An instance's files (overlay, key, console log, pid) live in
cache_dir()/vm/instances/<name>/ and are removed by `down`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cityward.errors import CitywardError
from cityward.lab.automation import AUTOMATION_USER
from cityward.lab.tools import ensure_commands, run_step
from cityward.lab.vm_image import VmImage, build_vm_image, in_folder
from cityward.paths import cache_dir

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# The guest's view of QEMU user-mode networking: the controller's connections come from here.
GUEST_GATEWAY = "10.0.2.2"


@dataclass(frozen=True)
class VmSpec:
    """What one VM is booted with."""

    name: str = "cityward-vm"
    port: int = 0  # 0: any free port on 127.0.0.1
    user: str = AUTOMATION_USER
    memory_mb: int = 2048
    cpus: int = 2
    release: str = "bookworm"

    def check(self) -> None:
        if not NAME.match(self.name):
            raise CitywardError(f"VM name {self.name!r}: use 1-40 lowercase letters, digits and '-'")
        if not USER.match(self.user) or self.user == "root":
            raise CitywardError(f"VM user {self.user!r}: a Linux user name other than root")
        if not 0 <= self.port <= 65535:
            raise CitywardError(f"port {self.port}: between 1 and 65535 (0: any free port)")


def instance_dir(name: str) -> Path:
    return cache_dir() / "vm" / "instances" / name


@dataclass(frozen=True)
class Instance:
    """The files of one booted VM."""

    folder: Path
    overlay = in_folder("overlay.qcow2")
    key = in_folder("id_ed25519")
    console = in_folder("console.log")
    pidfile = in_folder("qemu.pid")
    record = in_folder("instance.json")


def kernel_cmdline(spec: VmSpec) -> str:
    return f"root=/dev/vda rw console=ttyS0 systemd.hostname={spec.name}"


def qemu_args(spec: VmSpec, image: VmImage, inst: Instance, port: int) -> list[str]:
    """The QEMU command line: TCG (nested KVM hangs on the machines this runs on), no display,
    the serial console to a file, sshd forwarded on 127.0.0.1 only, daemonized with a pidfile."""
    return [
        "qemu-system-x86_64", "-name", spec.name, "-nodefaults", "-display", "none", "-monitor", "none",
        "-accel", "tcg", "-cpu", "max", "-smp", str(spec.cpus), "-m", str(spec.memory_mb),
        "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", kernel_cmdline(spec),
        # A throwaway overlay: no need to flush it to the host's disk.
        "-drive", f"file={inst.overlay},format=qcow2,if=virtio,cache=unsafe",
        "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:22", "-device", "virtio-net-pci,netdev=net0",
        "-device", "virtio-rng-pci",
        "-fw_cfg", f"name=opt/io.cityward/user,string={spec.user}",
        "-fw_cfg", f"name=opt/io.cityward/authorized_keys,file={inst.key}.pub",
        "-serial", f"file:{inst.console}",
        "-pidfile", str(inst.pidfile), "-daemonize",
    ]


def ssh_args(inst: Instance, user: str, port: int) -> list[str]:
    """A batch-mode SSH login as the automation user (the host key is new at every boot)."""
    return [
        "ssh", "-i", str(inst.key), "-p", str(port), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=10", f"{user}@127.0.0.1",
    ]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _say(msg: str) -> None:
    print(f"cityward lab vm: {msg}", file=sys.stderr, flush=True)


def _pid(inst: Instance) -> int | None:
    """The QEMU process of this instance, if it runs (the pid must still be our QEMU, on our overlay)."""
    try:
        pid = int(inst.pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return None
    return pid if str(inst.overlay) in cmdline else None


def _console_tail(inst: Instance, lines: int = 25) -> str:
    try:
        text = inst.console.read_text(errors="replace")
    except OSError:
        return "(no console output)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no console output)"


def _wait_for_ssh(inst: Instance, spec: VmSpec, port: int, timeout: float) -> float:
    started = time.monotonic()
    while True:
        result = subprocess.run([*ssh_args(inst, spec.user, port), "true"], capture_output=True, check=False,
                                stdin=subprocess.DEVNULL)
        if result.returncode == 0:
            return time.monotonic() - started
        if _pid(inst) is None:
            raise CitywardError(f"VM {spec.name}: QEMU exited while booting; the console's last lines:\n"
                                f"{_console_tail(inst)}")
        if time.monotonic() - started > timeout:
            raise CitywardError(f"VM {spec.name}: no SSH login on 127.0.0.1:{port} after {timeout:.0f} s "
                                f"(it stays up for a look: `cityward lab vm down --name {spec.name}`); "
                                f"the console's last lines:\n{_console_tail(inst)}")
        time.sleep(2)


def up(spec: VmSpec, timeout: float = 300) -> dict:
    """Boot `spec` from a fresh overlay and wait for an SSH login; a running VM is left as it is."""
    spec.check()
    inst = Instance(instance_dir(spec.name))
    if _pid(inst) is not None:
        _say(f"{spec.name} is already running (down, then up, for a fresh disk)")
        return status_of(spec.name)
    ensure_commands("qemu-system-x86_64", "qemu-img", "ssh", "ssh-keygen")
    image, _ = build_vm_image(spec.release)
    remove(inst)
    inst.folder.mkdir(parents=True, mode=0o700)
    port = spec.port or free_port()
    run_step(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.disk), "-F", "raw", str(inst.overlay)],
             "qemu-img create (the overlay)")
    run_step(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"cityward-vm-{spec.name}", "-f", str(inst.key)],
             "ssh-keygen (the automation key)")
    inst.key.chmod(0o600)
    inst.record.write_text(json.dumps({**asdict(spec), "port": port, "image": image.digest}, indent=2) + "\n")
    _say(f"booting {spec.name} (image {image.digest}, TCG, {spec.cpus} CPUs, {spec.memory_mb} MiB), "
         f"ssh on 127.0.0.1:{port}")
    result = subprocess.run(qemu_args(spec, image, inst, port), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        remove(inst)
        raise CitywardError(f"QEMU did not start {spec.name}: {result.stderr.strip()[-600:]}")
    seconds = _wait_for_ssh(inst, spec, port, timeout)
    _say(f"{spec.name}: SSH login as {spec.user} works, {seconds:.0f} s after QEMU started")
    return status_of(spec.name)


def remove(inst: Instance) -> bool:
    """Stop the instance's QEMU (by its own pid) and delete its files; True when a VM was running."""
    pid = _pid(inst)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _pid(inst) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid(inst) is not None:
            os.kill(pid, signal.SIGKILL)
    if inst.folder.exists():
        for child in inst.folder.iterdir():
            child.unlink()
        inst.folder.rmdir()
    return pid is not None


def down(name: str) -> None:
    if not NAME.match(name):
        raise CitywardError(f"VM name {name!r}: use 1-40 lowercase letters, digits and '-'")
    inst = Instance(instance_dir(name))
    if not inst.folder.exists():
        _say(f"{name}: no such VM, nothing to do")
        return
    stopped = remove(inst)
    _say(f"{name}: {'stopped and ' if stopped else ''}removed (overlay, key, console log)")


def status_of(name: str) -> dict:
    inst = Instance(instance_dir(name))
    try:
        record = json.loads(inst.record.read_text())
    except (OSError, ValueError):
        return {"name": name, "state": "absent"}
    return {
        "name": name, "state": "running" if _pid(inst) is not None else "stopped",
        "address": "127.0.0.1", "port": record["port"], "user": record["user"],
        "identity_file": str(inst.key), "image": record["image"], "console": str(inst.console),
    }


def status(name: str | None = None) -> list[dict]:
    if name:
        return [status_of(name)]
    folder = instance_dir("x").parent
    names = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return [status_of(n) for n in names]
