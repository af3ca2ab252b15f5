"""`cityward bench`: how long hardening and auditing take, measured on lab containers.

Nothing here asserts a time: the numbers are written next to their targets (issue 9) for people
to read, in docs/benchmarks.md and as JSON. The bench hosts are extra lab containers
(cw-lab-bench-NN on the lab network, zone ot-operations) with an inventory of their own under
.cache/bench/, and their own fact cache, so that "fresh" really means fresh.

Ansible reaches them the way it reaches a city's hosts: over SSH (pipelining, one multiplexed
connection per host) as the documented automation account, which the bench grants each fresh
container first, as an installer would (cityward.lab.automation; `--connection podman` measures
`podman exec` instead).
"""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from cityward.changes import OVERRIDE_ENV
from cityward.errors import CitywardError
from cityward.lab import containers
from cityward.lab.automation import automation_key, grant_automation, ssh_vars

# Measured: a booted systemd container holds 6 to 7 inotify instances.
INOTIFY_PER_CONTAINER = 8
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)
# Issue 9's and issue 17's targets on a 2-core machine, in seconds (rss in bytes; the controller's
# CPU-seconds per host of an idempotent fleet run for the measure named *_cpu_per_host).
TARGETS = {
    "first_converge_1": 60.0,
    "idempotent_rerun_1": 20.0,
    "audit_1": 10.0,
    "audit_fleet": 60.0,
    # Issue 19: the plan of the whole stack (network, sites, detection) and the pack, either way.
    "cloud_plan": 3.0,
    "cloud_plan_first_preview": 3.0,
    # Issue 23: the whole input check of a 40-host city answers in seconds.
    "check_city": 5.0,
    "fleet_peak_rss": 1.5 * 2**30,
    "fleet_controller_cpu_per_host": 6.0,
}
# The fleet's idempotent run is also measured as this many slices, the way AWX runs a sliced job
# (cityward.slices, through ansible-runner): past one controller, slices run on separate nodes.
FLEET_SLICES = 2


@dataclass
class Measure:
    name: str
    what: str
    value: float  # seconds; bytes for a memory measure (name ending in rss or pss); CPU-s (*_cpu_per_host)
    target: float | None
    detail: dict = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.value <= self.target


def _say(msg: str) -> None:
    print(f"cityward bench: {msg}", file=sys.stderr, flush=True)


def _pss(pid: int) -> int:
    """Proportional set size in bytes: each page shared by n processes counts 1/n to each."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_memory(root_pid: int) -> tuple[int, int]:
    """(RSS, PSS) summed over a process and all its descendants, in bytes (from /proc). The RSS
    sum counts every page a fork shares with its parent once per process; PSS counts it once."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total_rss = total_pss = 0
    stack = [root_pid]
    while stack:
        pid = stack.pop()
        total_rss += rss.get(pid, 0)
        total_pss += _pss(pid)
        stack.extend(children.get(pid, []))
    return total_rss, total_pss


def busy_cpu_seconds(stat_line: str | None = None) -> float:
    """CPU time the whole machine has spent busy since boot (all cores; /proc/stat's first line):
    the controller, the containers and the kernel's work for both."""
    if stat_line is None:
        with open("/proc/stat", encoding="ascii") as stat:
            stat_line = stat.readline()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in stat_line.split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass
class Timed:
    seconds: float
    exit: int
    output: str
    peak_rss: int  # bytes, summed over the process tree
    peak_pss: int
    cpu: float  # the machine's busy CPU-seconds meanwhile
    own_cpu: float  # CPU-seconds of the command's own process tree (user + system)


def run_timed(cmd: list[str], env: dict[str, str], log: Path) -> Timed:
    """Time one command, following the memory of its process tree and the machine's CPU."""
    log.parent.mkdir(parents=True, exist_ok=True)
    busy = busy_cpu_seconds()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    peak_rss = peak_pss = 0
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        while proc.poll() is None:
            rss, pss = tree_memory(proc.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.25)
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The command and the descendants it waited for (Ansible's forks and their ssh clients; not the
    # ssh connection masters, which detach): what this machine did as the controller.
    own = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Timed(seconds, proc.returncode, log.read_text(encoding="utf-8", errors="replace"),
                 peak_rss, peak_pss, busy_cpu_seconds() - busy, own)


def recap(output: str) -> dict[str, int]:
    """Totals of the last PLAY RECAP of an ansible-playbook run."""
    rows = RECAP.findall(output.rsplit("PLAY RECAP", 1)[-1])
    return {
        "hosts": len(rows),
        "changed": sum(int(r[2]) for r in rows),
        "unreachable": sum(int(r[3]) for r in rows),
        "failed": sum(int(r[4]) for r in rows),
    }


def inotify_shortfall(containers_total: int, have: int) -> str | None:
    need = INOTIFY_PER_CONTAINER * containers_total + 32
    if have >= need:
        return None
    return (f"{containers_total} systemd containers need about {need} inotify instances, the kernel allows {have}: "
            f"run `sysctl -w fs.inotify.max_user_instances={need}` (or bench a smaller --fleet)")


# The lab's own network and image settings, read from its inventory rather than stated again here.
LAB_VARS = ("ansible_python_interpreter", "lab_network", "lab_subnet", "lab_image", "lab_capabilities")
CONNECTIONS = {
    "ssh": "SSH with pipelining to lab containers, as the automation account",
    "podman": "Podman connection (podman exec) to lab containers",
}


def _ssh_vars(key: Path, subnet: str) -> dict:
    """SSH as the automation account from the lab network's gateway (where connections to the
    ports published on 127.0.0.1 come from, as the hosts see them)."""
    gateway = str(ipaddress.ip_network(subnet)[1])
    return ssh_vars(key, [gateway], known_hosts=str(key.parent / "known_hosts"), key_file=str(key))


def write_inventory(folder: Path, count: int, lab: Path, key: Path | None = None) -> Path:
    """A lab inventory of `count` bench hosts that shares the group_vars, vault and zones policy of
    the lab inventory `lab`; over SSH with `key` (the automation account's private key), else over
    the Podman connection."""
    lab = lab.resolve()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "group_vars").symlink_to(lab / "group_vars")
    (folder / "vault-password.txt").symlink_to(lab / "vault-password.txt")
    record = yaml.safe_load((lab / "host_vars" / "scada-01.yml").read_text(encoding="utf-8"))
    lab_vars = yaml.safe_load((lab / "hosts.yml").read_text(encoding="utf-8"))["all"]["vars"]
    hosts = {}
    for i in range(1, count + 1):
        address = {"ansible_host": "127.0.0.1", "ansible_port": 2300 + i} if key else \
            {"ansible_host": f"cw-lab-bench-{i:02d}"}
        hosts[f"bench-{i:02d}"] = {**address, "lab_ip": f"10.40.64.{100 + i}", "lab_ssh_port": 2300 + i,
                                   "cityward_zone": "ot-operations", **record}
    connection = _ssh_vars(key, lab_vars["lab_subnet"]) if key else {"ansible_connection": "containers.podman.podman"}
    inventory = {"all": {
        "children": {"ot_servers": {"hosts": hosts}},
        "vars": {**connection, **{name: lab_vars[name] for name in LAB_VARS}, "cityward_patch_serial": "100%",
                 "cityward_zones_file": os.path.normpath(lab / lab_vars["cityward_zones_file"])},
    }}
    (folder / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    return folder


class Bench:
    def __init__(self, work: Path, lab: Path, connection: str = "ssh"):
        self.work = work
        self.lab = lab
        self.connection = connection
        self.results: list[Measure] = []

    def env(self) -> dict[str, str]:
        env = containers.lab_env(self.lab)
        env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(self.work / "facts")
        env["ANSIBLE_FORCE_COLOR"] = "0"
        # Fresh containers from an inventory the bench writes: site.yml's change gate (CW-GOV-10)
        # lets the timed runs go ahead with this reason, kept in each run's change record.
        env[OVERRIDE_ENV] = "cityward bench: disposable benchmark containers, timed without a dry run"
        return env

    @staticmethod
    def check_inotify(count: int) -> None:
        """Each systemd container takes several inotify instances (all of them root's); when they run
        out, systemd never finishes booting. Say so before starting, with the fix, rather than change
        a kernel setting of the operator's machine."""
        running = len(containers.podman("ps", "-q").stdout.split())
        have = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text(encoding="ascii"))
        problem = inotify_shortfall(running + count, have)
        if problem:
            raise CitywardError(problem)

    def fresh_hosts(self, count: int) -> Path:
        """Remove any bench container and cached facts, then start `count` fresh ones."""
        key = automation_key(self.work, "cityward-bench") if self.connection == "ssh" else None
        inventory = write_inventory(self.work / f"inventory-{count}", count, self.lab, key)
        for name in containers.status(inventory):
            containers.podman("rm", "-f", "-t", "0", name["container"], check=False)
        self.check_inotify(count)
        shutil.rmtree(self.work / "facts", ignore_errors=True)
        (self.work / "known_hosts").unlink(missing_ok=True)
        _say(f"starting {count} fresh bench container(s)")
        containers.up(inventory)
        if key:
            for row in containers.status(inventory):
                grant_automation(row["container"], key)
        return inventory

    def remove_hosts(self, inventory: Path) -> None:
        for row in containers.status(inventory):
            containers.podman("rm", "-f", "-t", "0", row["container"], check=False)

    def converge(self, name: str, what: str, inventory: Path, forks: int, target: float | None) -> Measure:
        _say(f"{what} ...")
        cmd = ["ansible-playbook", "-i", str(inventory), "--forks", str(forks), "cityward.hardening.site"]
        log = self.work / "logs" / f"{name}.log"
        run = run_timed(cmd, self.env(), log)
        totals = recap(run.output)
        detail = {"exit": run.exit, **totals, "peak_rss_bytes": run.peak_rss, "peak_pss_bytes": run.peak_pss,
                  "machine_cpu_seconds": round(run.cpu, 1), "controller_cpu_seconds": round(run.own_cpu, 1),
                  "log": str(log)}
        measure = Measure(name, what, round(run.seconds, 1), target, detail)
        _say(f"{what}: {run.seconds:.1f} s, {totals['changed']} changed, {totals['failed']} failed (exit {run.exit})")
        self.results.append(measure)
        return measure

    def controller_cpu_per_host(self, run: Measure, hosts: int, what: str) -> Measure:
        """The controller's CPU-seconds per host of an idempotent fleet run, the hosts' apart: where
        every host has CPUs of its own, as in a city, the controller's share is what limits a fleet."""
        controller = run.detail["controller_cpu_seconds"]
        machine = run.detail["machine_cpu_seconds"]
        measure = Measure(f"{run.name}_cpu_per_host", what, round(controller / hosts, 2),
                          TARGETS["fleet_controller_cpu_per_host"] if run.name.startswith("idempotent_rerun")
                          else None,
                          {"controller_cpu_seconds": controller, "hosts_cpu_seconds_per_host":
                           round(max(machine - controller, 0) / hosts, 2), "hosts": hosts})
        self.results.append(measure)
        return measure

    def sliced(self, name: str, what: str, inventory: Path, count: int, forks: int) -> Measure:
        """site.yml over `inventory` as `count` slices at once through ansible-runner, as AWX runs a
        sliced job; timed like converge(), the runs' own CPU-seconds from the children it reaped."""
        from cityward.slices import run_slices

        _say(f"{what} ...")
        env = self.env()
        # The slices' inventory is read in this process, as AWX's inventory sync reads it.
        os.environ.update({k: v for k, v in env.items() if k.startswith("ANSIBLE_VAULT")})
        busy = busy_cpu_seconds()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        runs = run_slices("cityward.hardening.site", inventory, count, envvars=env, forks=forks)
        seconds = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        log = self.work / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("\n".join(run.output for run in runs), encoding="utf-8")
        totals = {key: sum(stats.get(key, 0) for run in runs for stats in run.stats.values())
                  for key in ("changed", "failed", "unreachable")}
        failed = [run.number for run in runs if not run.ok]
        detail = {"exit": 1 if failed else 0, "slices": len(runs), **totals,
                  "machine_cpu_seconds": round(busy_cpu_seconds() - busy, 1),
                  "controller_cpu_seconds": round(own, 1), "log": str(log)}
        measure = Measure(name, what, round(seconds, 1), None, detail)
        _say(f"{what}: {seconds:.1f} s, {totals['changed']} changed, slices failed: {failed or 'none'}")
        self.results.append(measure)
        return measure

    def command(self, name: str, what: str, args: list[str], target: float | None) -> Measure:
        _say(f"{what} ...")
        cmd = [sys.executable, "-m", "cityward", *args]
        run = run_timed(cmd, self.env(), self.work / "logs" / f"{name}.log")
        measure = Measure(name, what, round(run.seconds, 1), target,
                          {"exit": run.exit, "peak_rss_bytes": run.peak_rss, "machine_cpu_seconds": round(run.cpu, 1)})
        _say(f"{what}: {run.seconds:.1f} s (exit {run.exit})")
        self.results.append(measure)
        return measure

    def run(self, fleet: int) -> list[Measure]:
        one = self.fresh_hosts(1)
        first = self.converge("first_converge_1", "site.yml, first run on 1 fresh Debian 12 container", one, 5,
                              TARGETS["first_converge_1"])
        self.converge("idempotent_rerun_1", "site.yml, second run on the same container (0 changed expected)", one,
                      5, TARGETS["idempotent_rerun_1"])
        # Issue 18: the audit of one host stays within its target with the scanners off; with them
        # (ssh-audit from here, Lynis on the host) it is recorded beside it, without a target.
        self.command("audit_1", "cityward audit on 1 host, scanners off (--no-scanners)",
                     ["audit", "-i", str(one), "--format", "json", "--no-scanners", "--out",
                      str(self.work / "audit-1")], TARGETS["audit_1"])
        self.command("audit_1_scanners", "cityward audit on 1 host with its scanners (ssh-audit and Lynis)",
                     ["audit", "-i", str(one), "--format", "json", "--out", str(self.work / "audit-1-scanners")],
                     None)
        self.remove_hosts(one)
        if fleet > 1:
            many = self.fresh_hosts(fleet)
            converge = self.converge(f"first_converge_{fleet}", f"site.yml, first run on {fleet} fresh containers",
                                     many, fleet, 3 * first.value)
            # The lab's hosts share this machine's cores with the controller: no schedule can
            # beat the CPU work of one host's run, times the fleet, spread over every core.
            converge.detail["cpu_floor_seconds"] = round(
                fleet * first.detail["machine_cpu_seconds"] / (os.cpu_count() or 1), 1)
            self.results.append(Measure("fleet_peak_rss", f"controller peak memory during the {fleet}-host run "
                                        "(RSS summed over its processes)", converge.detail["peak_rss_bytes"],
                                        TARGETS["fleet_peak_rss"]))
            self.results.append(Measure("fleet_peak_pss", f"controller peak memory during the {fleet}-host run "
                                        "(PSS: pages its forks share counted once)", converge.detail["peak_pss_bytes"],
                                        None))
            rerun = self.converge(f"idempotent_rerun_{fleet}",
                                  f"site.yml, second run on the {fleet} containers (0 changed expected)", many, fleet,
                                  None)
            self.controller_cpu_per_host(rerun, fleet, "controller CPU-seconds per host of that second run "
                                         "(the hosts' own apart)")
            sliced = self.sliced(f"idempotent_sliced_{fleet}", f"the same second run as {FLEET_SLICES} slices "
                                 "through ansible-runner, at once (AWX job slicing)", many, FLEET_SLICES, fleet)
            self.controller_cpu_per_host(sliced, fleet, f"controller CPU-seconds per host of the {FLEET_SLICES} "
                                         "slices, all together")
            self.command("audit_fleet", f"cityward audit on {fleet} hosts, scanners off (--no-scanners)",
                         ["audit", "-i", str(many), "--format", "json", "--no-scanners", "--out",
                          str(self.work / "audit-fleet")],
                         TARGETS["audit_fleet"])
            self.remove_hosts(many)
        self.command("cloud_plan", "cityward cloud plan (Pulumi mocks and the policy pack)",
                     ["cloud", "plan", "--format", "json"], TARGETS["cloud_plan"])
        self.command("cloud_plan_first_preview", "cityward cloud plan --first-preview (ids and ARNs unknown)",
                     ["cloud", "plan", "--first-preview", "--format", "json"], TARGETS["cloud_plan_first_preview"])
        city = self.lab.parent / "example-city"
        self.command("check_city", f"cityward check of {city.name} (its inventory, zones policy and catalog)",
                     ["check", "-i", str(city), "--format", "json"], TARGETS["check_city"])
        return self.results


def machine() -> dict:
    mem = 0
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    ansible = subprocess.run(["ansible", "--version"], capture_output=True, text=True, check=False).stdout
    return {"cores": os.cpu_count(), "memory_bytes": mem, "python": platform.python_version(),
            "ansible": ansible.splitlines()[0] if ansible else "", "kernel": platform.release()}


def _value(m: Measure, number: float | None) -> str:
    if number is None:
        return "-"
    if m.name.endswith(("rss", "pss")):
        return f"{number / 2**20:.0f} MiB"
    if m.name.endswith("cpu_per_host"):
        return f"{number:.2f} CPU-s"
    return f"{number:.1f} s"


def markdown(results: list[Measure], info: dict, when: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {when} by `cityward bench` on {info['cores']} cores and "
        f"{info['memory_bytes'] / 2**30:.1f} GiB ({info['ansible']}, Python {info['python']}, "
        f"{CONNECTIONS[info.get('connection', 'podman')]}). Re-run it to refresh this page; nothing here is a test.",
        "",
        "| measure | result | target | met | notes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in results:
        notes = []
        if "changed" in m.detail:
            notes.append(f"{m.detail['changed']} changed, {m.detail['failed']} failed, "
                         f"{m.detail['unreachable']} unreachable")
        if "machine_cpu_seconds" in m.detail:
            notes.append(f"machine busy {m.detail['machine_cpu_seconds']:.0f} CPU-s")
        if "hosts_cpu_seconds_per_host" in m.detail:
            notes.append(f"{m.detail['controller_cpu_seconds']:.0f} CPU-s over {m.detail['hosts']} hosts; the hosts "
                         f"{m.detail['hosts_cpu_seconds_per_host']:.2f} CPU-s each")
        elif "controller_cpu_seconds" in m.detail:
            notes.append(f"controller {m.detail['controller_cpu_seconds']:.0f} CPU-s of it")
        if "slices" in m.detail:
            notes.append(f"{m.detail['slices']} slices")
        if "cpu_floor_seconds" in m.detail:
            notes.append(f"no less than {m.detail['cpu_floor_seconds']:.0f} s on these {info['cores']} cores "
                         "(the hosts' CPU work, shared)")
        if m.detail.get("exit"):
            notes.append(f"exit {m.detail['exit']}")
        met = {None: "-", True: "yes", False: "**no**"}[m.met]
        lines.append(f"| {m.what} | {_value(m, m.value)} | {_value(m, m.target)} | {met} | {'; '.join(notes)} |")
    return "\n".join(lines) + "\n"


def written_notes(markdown_path: Path) -> str:
    """The sections people wrote under the table of an earlier run (from the first `## ` heading):
    a new measurement replaces the table, never the reading of it."""
    if not markdown_path.is_file():
        return ""
    text = markdown_path.read_text(encoding="utf-8")
    start = text.find("\n## ")
    return "" if start < 0 else text[start:]


def save(results: list[Measure], markdown_path: Path, json_path: Path, connection: str = "ssh") -> None:
    info = {**machine(), "connection": connection}
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(markdown(results, info, when) + written_notes(markdown_path), encoding="utf-8")
    data = {"measured": when, "machine": info,
            "results": [{**asdict(m), "met": m.met} for m in results]}
    json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
