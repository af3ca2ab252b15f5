"""Bad backup input is refused by the inventory gate (`cityward check`, which site.yml runs before
any host is touched), one line naming the host and the field (CW-RES-02): a backup server that is
not an inventory host or not in the management zone, a zone with no conduit to it, a retention
that keeps nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cityward.hostvars import host_variable_problems
from cityward.zones import load_zones

ROOT = Path(__file__).resolve().parents[2]
ZONES = load_zones(ROOT / "policies" / "zones.yml")
pytestmark = pytest.mark.control("CW-RES-02")

SERVER = {"ansible_host": "10.40.32.20", "cityward_zone": "management"}
GATEWAY = {"ansible_host": "10.40.80.14", "cityward_zone": "field", "cityward_backup_server": "backup-01"}


def problems(gateway: dict, server: dict | None = None, zones=ZONES) -> list[str]:
    hosts = {"gw-01": gateway, "backup-01": server or SERVER, "scada-01": {"ansible_host": "10.40.64.10",
                                                                           "cityward_zone": "ot-operations"}}
    found = host_variable_problems("hosts.yml", hosts, zones, today=date(2026, 12, 7))
    return [str(p) for p in found if p.host == "gw-01"]


def test_a_gateway_backed_up_to_a_management_host_passes():
    assert problems(GATEWAY) == []
    assert problems({**GATEWAY, "backup_retention": {"daily": 7, "weekly": 0, "monthly": 0}}) == []


@pytest.mark.parametrize(("changes", "field", "phrase"), [
    ({"cityward_backup_server": "scada-01"}, "cityward_backup_server",
     "scada-01 is in zone ot-operations (kind ot): a backup repository must be in a zone of kind management"),
    ({"cityward_backup_server": "nas-07"}, "cityward_backup_server", "nas-07 is not a host of this inventory"),
    ({"backup_server": "scada-01"}, "backup_server", "must be in a zone of kind management"),
    ({"backup_retention": {"daily": 0, "weekly": 4, "monthly": 12}}, "backup_retention.daily",
     "0 must be a whole number >= 1 (a retention of zero keeps no backup)"),
    ({"backup_retention": {"daily": 7, "weekly": -1, "monthly": 12}}, "backup_retention.weekly", ">= 0"),
    ({"cityward_backup_port": 2223}, "cityward_backup_server",
     "no conduit from field to management on tcp/2223 (service borg-backup)"),
])
def test_bad_backup_input_is_refused_naming_host_and_field(changes, field, phrase):
    found = problems({**GATEWAY, **changes})
    assert any("host gw-01" in p and field in p and phrase in p for p in found), found


def test_a_zones_policy_without_the_backup_conduit_is_named(tmp_path):
    text = (ROOT / "policies" / "zones.yml").read_text()
    kept = "\n".join(line for line in text.splitlines() if "service: borg-backup" not in line)
    (tmp_path / "zones.yml").write_text(kept)
    found = problems(GATEWAY, zones=load_zones(tmp_path / "zones.yml"))
    assert any("no conduit from field to management on tcp/2222" in p for p in found), found


def test_the_port_is_the_one_the_server_is_given():
    # The server's inventory moves its service to 2223; the zones policy opens 2222 only.
    assert any("no conduit from field to management on tcp/2223" in p
               for p in problems(GATEWAY, server={**SERVER, "backup_server_port": 2223}))
