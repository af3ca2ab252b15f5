"""cityward bench's bookkeeping: the recap it reads, the inventory it writes, the page it renders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from cityward import bench
from cityward.lab import automation

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"

RUN = """
PLAY RECAP *********************************************************************
bench-01                   : ok=12   changed=3    unreachable=0    failed=0    skipped=2    rescued=0    ignored=0
bench-02                   : ok=10   changed=0    unreachable=1    failed=1    skipped=0    rescued=0    ignored=0
"""


def test_recap_totals_the_last_play_recap():
    earlier = "PLAY RECAP\nold : ok=1 changed=9 unreachable=0 failed=0\n"
    assert bench.recap(earlier + RUN) == {"hosts": 2, "changed": 3, "unreachable": 1, "failed": 1}


def test_inventory_has_the_bench_hosts_and_shares_the_lab_vault(tmp_path):
    folder = bench.write_inventory(tmp_path / "inv", 3, LAB)
    data = yaml.safe_load((folder / "hosts.yml").read_text())
    hosts = data["all"]["children"]["ot_servers"]["hosts"]
    assert sorted(hosts) == ["bench-01", "bench-02", "bench-03"]
    assert len({h["lab_ip"] for h in hosts.values()}) == 3
    assert all(h["lab_ip"].startswith("10.40.64.") and h["cityward_zone"] == "ot-operations" for h in hosts.values())
    assert all("cityward_device" in h for h in hosts.values()), "the audit needs each device's record"
    assert os.path.islink(folder / "group_vars") and (folder / "vault-password.txt").is_file()
    # The lab's zones policy, by an absolute path: the bench inventory lives elsewhere.
    assert data["all"]["vars"]["cityward_zones_file"] == str(LAB.parents[1] / "policies" / "zones.yml")
    # Writing again replaces the folder (a smaller fleet leaves no stale host behind).
    again = yaml.safe_load((bench.write_inventory(tmp_path / "inv", 1, LAB) / "hosts.yml").read_text())
    assert list(again["all"]["children"]["ot_servers"]["hosts"]) == ["bench-01"]


def test_ssh_inventory_logs_in_as_the_automation_account_from_the_lab_gateway(tmp_path):
    key = automation.automation_key(tmp_path / "work")
    assert key.stat().st_mode & 0o777 == 0o600
    assert automation.automation_key(tmp_path / "work").read_bytes() == key.read_bytes(), "made once, then reused"
    data = yaml.safe_load((bench.write_inventory(tmp_path / "inv", 2, LAB, key) / "hosts.yml").read_text())
    hosts, common = data["all"]["children"]["ot_servers"]["hosts"], data["all"]["vars"]
    addresses = [(h["ansible_host"], h["ansible_port"]) for h in hosts.values()]
    assert addresses == [("127.0.0.1", 2301), ("127.0.0.1", 2302)]
    assert common["ansible_connection"] == "ssh" and common["ansible_become"] is True
    assert common["ansible_user"] == common["cityward_automation_user"] == automation.AUTOMATION_USER
    # The hosts see the published port's connections coming from the lab network's gateway: the
    # ssh and firewall roles must admit the automation account from there, and only there.
    assert common["cityward_automation_sources"] == ["10.40.0.1"]
    assert common["accounts_automation_ssh_keys"] == [key.with_suffix(".pub").read_text().strip()]
    assert "PRIVATE KEY" not in (tmp_path / "inv" / "hosts.yml").read_text()


def test_markdown_shows_missed_targets_and_memory_in_mib():
    results = [
        bench.Measure("first_converge_1", "first run", 75.0, 60.0, {"exit": 0, "changed": 90, "failed": 0,
                                                                    "unreachable": 0}),
        bench.Measure("cloud_plan", "cloud plan", 2.1, 5.0, {"exit": 0}),
        bench.Measure("fleet_peak_rss", "peak memory", 512 * 2**20, bench.TARGETS["fleet_peak_rss"]),
        bench.Measure("first_converge_20", "fleet", 600.0, 225.0, {"exit": 0, "changed": 9, "failed": 0,
                                                                   "unreachable": 0, "machine_cpu_seconds": 1180.0,
                                                                   "controller_cpu_seconds": 301.4,
                                                                   "cpu_floor_seconds": 560.0}),
    ]
    page = bench.markdown(results, {"cores": 2, "memory_bytes": 8 * 2**30, "ansible": "ansible [core 2.19]",
                                    "python": "3.11"}, "2026-11-24 10:00 UTC")
    assert "| first run | 75.0 s | 60.0 s | **no** | 90 changed, 0 failed, 0 unreachable |" in page
    assert "| cloud plan | 2.1 s | 5.0 s | yes |" in page
    assert "| peak memory | 512 MiB | 1536 MiB | yes |" in page
    assert "2 cores" in page
    assert ("| fleet | 600.0 s | 225.0 s | **no** | 9 changed, 0 failed, 0 unreachable; machine busy 1180 CPU-s; "
            "controller 301 CPU-s of it; no less than 560 s on these 2 cores (the hosts' CPU work, shared) |") in page


def test_too_few_inotify_instances_is_explained_before_anything_starts():
    assert bench.inotify_shortfall(6, 128) is None
    problem = bench.inotify_shortfall(26, 128)
    assert "26 systemd containers" in problem and "sysctl -w fs.inotify.max_user_instances=240" in problem


def test_a_new_run_replaces_the_table_and_keeps_the_written_notes(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\n| old table |\n\n## Reading these numbers\n\nWhy it is slow.\n")
    bench.save([bench.Measure("cloud_plan", "cloud plan", 1.5, 5.0)], page, page.with_suffix(".json"))
    text = page.read_text()
    assert "| old table |" not in text and "| cloud plan | 1.5 s | 5.0 s | yes |" in text
    assert text.endswith("\n## Reading these numbers\n\nWhy it is slow.\n")


def test_busy_cpu_counts_every_state_but_idle_and_iowait():
    # user nice system idle iowait irq softirq steal (in clock ticks)
    ticks = bench.busy_cpu_seconds("cpu  300 10 100 5000 40 5 5 80 0 0")
    assert ticks * bench.os.sysconf("SC_CLK_TCK") == 500


def test_run_timed_counts_the_command_trees_own_cpu(tmp_path):
    """A child that burns CPU in a grandchild: the controller CPU counts the grandchild too, and
    idle waiting counts for nothing."""
    burn = "import time; end = time.process_time() + 0.4\nwhile time.process_time() < end: pass"
    cmd = [sys.executable, "-c", f"import subprocess, sys, time; subprocess.run([sys.executable, '-c', {burn!r}]); "
                                 "time.sleep(0.3)"]
    timed = bench.run_timed(cmd, dict(os.environ), tmp_path / "log")
    assert timed.exit == 0
    assert 0.35 <= timed.own_cpu < timed.seconds


def test_controller_cpu_per_host_of_a_fleet_run_keeps_the_hosts_apart(tmp_path):
    runner = bench.Bench(tmp_path, LAB)
    rerun = bench.Measure("idempotent_rerun_20", "second run", 180.0, None,
                          {"controller_cpu_seconds": 150.0, "machine_cpu_seconds": 210.0})
    per_host = runner.controller_cpu_per_host(rerun, 20, "controller CPU-seconds per host")
    assert (per_host.value, per_host.target, per_host.met) == (7.5, 6.0, False)
    assert per_host.detail["hosts_cpu_seconds_per_host"] == 3.0
    sliced = bench.Measure("idempotent_sliced_20", "as slices", 190.0, None,
                           {"controller_cpu_seconds": 100.0, "machine_cpu_seconds": 160.0, "slices": 2})
    assert runner.controller_cpu_per_host(sliced, 20, "slices").target is None  # reported beside it, not judged
    page = bench.markdown(runner.results, {"cores": 2, "memory_bytes": 2**33, "ansible": "core", "python": "3.11"},
                          "now")
    assert ("| controller CPU-seconds per host | 7.50 CPU-s | 6.00 CPU-s | **no** | 150 CPU-s over 20 hosts; "
            "the hosts 3.00 CPU-s each |") in page
