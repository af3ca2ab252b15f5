"""plugins/action/packages.py: a role's packages in one task; on a host that already has
them, one shell command and no apt module. Driven through ansible-playbook on this Debian machine
(local connection): what it reads from dpkg, what it refuses, and how apt's own failure is named.
Installing and purging for real happens in every Molecule scenario (first run, then idempotence)."""

from __future__ import annotations

import subprocess

import pytest
from local_play import assert_refused, load_action, run_task

PLUGIN = load_action("packages")
NO_SUCH = "cityward-no-such-package"


def packages(lab, args: dict, *flags: str):
    return run_task(lab, {"name": "CW-TEST-01 | packages", "cityward.hardening.packages": args}, "-vvv", *flags)


def test_nothing_to_do_costs_one_command_and_no_apt_module(tmp_path):
    code, result, output = packages(tmp_path, {"present": ["dpkg", "bash", "coreutils"], "absent": [NO_SUCH],
                                               "purge": True, "update_cache": False})
    assert code == 0, output
    assert result["changed"] is False
    assert result["to_install"] == [] and result["to_remove"] == []
    assert result["cache_updated"] is False
    assert output.count("dpkg-query -W") == 1
    assert "AnsiballZ_apt" not in output


@pytest.mark.skipif(subprocess.run(["/usr/bin/python3", "-c", "import apt"], capture_output=True).returncode != 0,
                    reason="apt's check mode needs python3-apt in the system Python")
def test_work_goes_to_apt_which_predicts_it_under_check(tmp_path):
    """less is installed here: asked to be absent, the action hands it (and only it) to apt, which
    under --check predicts the removal and removes nothing."""
    code, result, output = packages(tmp_path, {"absent": ["less", NO_SUCH], "cache_valid_time": 10**9}, "--check")
    assert code == 0, output
    assert result["to_remove"] == ["less"]
    assert result["changed"] is True
    assert "AnsiballZ_apt" in output
    assert subprocess.run(["dpkg-query", "-W", "less"], capture_output=True).returncode == 0


@pytest.mark.parametrize(("args", "message"), [
    ({"present": ["nginx=1.22"]}, "present[0] ('nginx=1.22') is not a plain Debian package name"),
    ({"absent": ["telnet", "rsh*"]}, "absent[1] ('rsh*') is not a plain Debian package name"),
    ({"present": "sudo", "absent": ["sudo"]}, "sudo in both present and absent"),
    ({"present": {"sudo": 1}}, "field present must be a list of package names"),
    ({"present": ["sudo"], "purge": "perhaps"}, "purge, update_cache (true/false) or cache_valid_time"),
    ({"present": ["sudo"], "cache_valid_time": "an hour"}, "purge, update_cache (true/false) or cache_valid_time"),
    ({}, "give present or absent packages, or update_cache: true"),
])
def test_bad_input_is_refused_before_the_host_is_asked(tmp_path, args, message):
    code, _, output = packages(tmp_path, args)
    assert_refused(code, output, message, "dpkg-query")


def test_reads_dpkg_states_and_the_index_age():
    status, age = PLUGIN.parse("sudo\tii \nlibfoo\trc \nlibbar\tun \nlibbar\tii \n--cityward--\n1000\n4600\n")
    assert status == {"sudo": "ii", "libfoo": "rc", "libbar": "ii"}
    assert age == 3600
    assert PLUGIN.parse("--cityward--\n0\n4600\n")[1] == 4600
    assert PLUGIN.parse("")[1] > 10**9  # no answer: treat the index as stale
