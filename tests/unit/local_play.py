"""Run a one-task role through ansible-playbook on this machine (local connection), with the
project's ansible.cfg; the actions are the installed collection's (cityward.hardening.*), as a
city's play finds them. Used by the tests of plugins/action."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK_BIN = Path(sys.executable).parent / "ansible-playbook"


def load_action(name: str):
    """plugins/action/<name>.py as a Python module, to test its pure functions directly."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / "action" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def playbook(lab: Path, *args: str) -> subprocess.CompletedProcess:
    """Run lab/play.yml on this machine with the project's ansible.cfg."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_CACHE_PLUGIN_CONNECTION=str(lab / "facts"),
               ANSIBLE_LOCAL_TEMP=str(lab / "tmp"), ANSIBLE_FORCE_COLOR="0")
    return subprocess.run([str(PLAYBOOK_BIN), "-i", "localhost,", "-c", "local", "-e",
                           f"ansible_python_interpreter={sys.executable}", *args, str(lab / "play.yml")],
                          capture_output=True, text=True, env=env, cwd=lab, timeout=300)


def run_task(lab: Path, task: dict, *args: str, play_vars: dict | None = None):
    """Make `task` the only task of role lab/roles/demo, run it, return (exit, its result, output)."""
    tasks = [dict(task, register="out"),
             {"name": "Show the result", "ansible.builtin.copy": {
                 "content": "{{ out | to_json }}", "dest": str(lab / "result.json"), "mode": "0600"},
              "check_mode": False}]
    (lab / "roles" / "demo" / "tasks").mkdir(parents=True, exist_ok=True)
    (lab / "roles" / "demo" / "tasks" / "main.yml").write_text(yaml.safe_dump(tasks))
    play = [{"hosts": "localhost", "gather_facts": False, "roles": ["demo"], "vars": play_vars or {}}]
    (lab / "play.yml").write_text(yaml.safe_dump(play))
    (lab / "result.json").unlink(missing_ok=True)
    proc = playbook(lab, *args)
    result = json.loads((lab / "result.json").read_text()) if (lab / "result.json").exists() else None
    return proc.returncode, result, proc.stdout + proc.stderr


def assert_refused(code: int, output: str, message: str, host_command: str) -> None:
    """The run failed with `message`, without a traceback and before `host_command` reached the host."""
    assert code != 0
    assert message in output
    assert host_command not in output
    assert "Traceback" not in output
