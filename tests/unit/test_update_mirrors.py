"""The city's approved update mirrors in `cityward check` (CW-PATCH-05): a bad declaration, a host
mirror outside the approved list, or an approved mirror no conduit of the zones policy reaches is
refused with one line naming the entry or host and the field; a good city passes, and a city that
declares no mirrors is not judged. Also the device record's patch SLA (CW-PATCH-07)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_check import EXAMPLE, ZONES, edit
from test_check import world as world  # noqa: PLC0414 (the example city's writable copy, a fixture)

from cityward.check import run_check
from cityward.device import PATCH_SLA_DAYS_DEFAULT, patch_sla_days
from cityward.governance import assess
from cityward.inventory import validate_inventory
from cityward.mirrors import declaration_problems

TODAY = date(2026, 11, 24)
pytestmark = pytest.mark.control("CW-PATCH-05")
CITY = "city/group_vars/all/city.yml"
DMZ = "update mirror #0 'dmz-mirror'"


def problems(world, limit=None) -> list[str]:
    return [str(p) for p in validate_inventory(world / "city", limit=limit, today=TODAY).problems]


def mirror(index, **fields):
    """Change entry `index` of cityward_update_mirrors (None deletes a key)."""
    def change(data):
        entry = data["cityward_update_mirrors"][index]
        for key, value in fields.items():
            entry.pop(key) if value is None else entry.update({key: value})
    return CITY, change


def city(change):
    return CITY, change


def host_var(host, name, value):
    return f"city/host_vars/{host}.yml", lambda data: data.update({name: value})


def no_conduit(label):
    def change(data):
        data["conduits"] = [c for c in data["conduits"]
                            if f"{c['from']}->{c['to']}:{c['protocol']}/{c['port']}" != label]
    return "project/policies/zones.yml", change


def plain_http(data):
    data["cityward_update_mirrors"][0]["url"] = "http://10.40.16.10"
    data["cityward_apt_mirrors"] = {"debian": ["http://10.40.16.10/debian"],
                                    "security": ["http://10.40.16.10/debian-security"]}


APPROVED = "(approved: https://10.40.16.10, https://deb.debian.org)"

# (case, (file, change), fragments of one problem line)
CORPUS = [
    ("unknown-host", mirror(0, host="ghost-99"),
     [DMZ, "field cityward_update_mirrors[0].host", "unknown host 'ghost-99'"]),
    ("url-ftp", mirror(0, url="ftp://10.40.16.10"), [DMZ, "field cityward_update_mirrors[0].url", "http"]),
    ("url-credentials", mirror(0, url="https://apt:secret@10.40.16.10"),
     [DMZ, "cityward_update_mirrors[0].url", "credentials"]),
    ("url-query", mirror(0, url="https://10.40.16.10/?dist=bookworm"),
     [DMZ, "cityward_update_mirrors[0].url", "query"]),
    ("url-fragment", mirror(0, url="https://10.40.16.10#top"), [DMZ, "cityward_update_mirrors[0].url", "fragment"]),
    ("url-no-host", mirror(0, url="https://:443"), [DMZ, "cityward_update_mirrors[0].url", "host"]),
    ("url-bad-port", mirror(0, url="https://10.40.16.10:70000"), [DMZ, "cityward_update_mirrors[0].url", "port"]),
    ("url-not-text", mirror(0, url=443), [DMZ, "cityward_update_mirrors[0].url", "443"]),
    ("name-bad", mirror(0, name="DMZ Mirror"), ["update mirror #0 'DMZ Mirror'", "cityward_update_mirrors[0].name"]),
    ("name-duplicate", mirror(1, name="dmz-mirror"),
     ["update mirror #1 'dmz-mirror'", "field cityward_update_mirrors[1].name", "same name as update mirror #0"]),
    ("url-duplicate", mirror(1, url="https://10.40.16.10/", zone=None, host="dmz-mirror-01"),
     ["update mirror #1 'debian-upstream'", "field cityward_update_mirrors[1].url", "same url as update mirror #0"]),
    ("host-and-zone", mirror(0, zone="internet"), [DMZ, "field cityward_update_mirrors[0]:", "exactly one of host"]),
    ("neither-host-nor-zone", mirror(0, host=None), [DMZ, "field cityward_update_mirrors[0]:", "exactly one of host"]),
    ("zone-not-internet", mirror(1, zone="dmz"),
     ["update mirror #1 'debian-upstream'", "cityward_update_mirrors[1].zone", "only 'internet'"]),
    ("unknown-key", mirror(0, port=443), [DMZ, "cityward_update_mirrors[0].port", "unknown key"]),
    ("entry-not-a-mapping", city(lambda d: d["cityward_update_mirrors"].append("https://10.40.16.10")),
     ["update mirror #2", "field cityward_update_mirrors[2]", "expected a mapping"]),
    ("not-a-list", city(lambda d: d.update(cityward_update_mirrors="https://10.40.16.10")),
     ["field cityward_update_mirrors", "expected a list"]),
    ("uri-outside-the-list", host_var("historian-01", "cityward_apt_mirrors",
                                      {"debian": ["https://10.40.16.10/debian"],
                                       "security": ["http://mirror.example.org/debian-security"]}),
     ["host historian-01, field cityward_apt_mirrors.security[0]", "a mirror URL outside the approved list",
      "'http://mirror.example.org/debian-security'", APPROVED]),
    ("uri-other-port", host_var("historian-01", "cityward_apt_mirrors", {"debian": ["https://10.40.16.10:8443/debian"]}),
     ["host historian-01, field cityward_apt_mirrors.debian[0]", "outside the approved list"]),
    ("uri-prefix-is-not-a-folder", host_var("historian-01", "cityward_apt_mirrors",
                                            {"debian": ["https://10.40.16.100/debian"]}),
     ["host historian-01, field cityward_apt_mirrors.debian[0]", "outside the approved list"]),
    ("patching-mirrors-wins", host_var("historian-01", "patching_mirrors", {"debian": ["http://evil.example/debian"]}),
     ["host historian-01, field patching_mirrors.debian[0]", "outside the approved list"]),
    ("role-default-outside", city(lambda d: d.pop("cityward_apt_mirrors")),
     ["host historian-01, field cityward_apt_mirrors.debian[0]", "'http://deb.debian.org/debian' (the patching "
      "role's default)", APPROVED]),
    ("outside-archive-for-a-plain-host", host_var("historian-01", "cityward_apt_mirrors",
                                                  {"debian": ["https://deb.debian.org/debian"]}),
     ["host historian-01, field cityward_apt_mirrors.debian[0]", "outside archive", "dmz-mirror-01"]),
    ("no-conduit-from-field", no_conduit("field->dmz:tcp/443"),
     ["host tl-ctrl-014, field cityward_apt_mirrors.debian[0]", "update mirror 'dmz-mirror'",
      "zone 'field'", "no conduit field->dmz:tcp/443"]),
    ("http-port-80-while-the-conduit-is-443", city(plain_http),
     ["host historian-01, field cityward_apt_mirrors.debian[0]", "zone 'ot-operations'",
      "no conduit ot-operations->dmz:tcp/80"]),
    ("mirror-host-without-its-upstream", no_conduit("dmz->internet:tcp/443"),
     ["host dmz-mirror-01, field cityward_apt_mirrors.debian[0]", "update mirror 'debian-upstream'",
      "no conduit dmz->internet:tcp/443"]),
    ("hosts-given-different-lists", host_var("historian-01", "cityward_update_mirrors", []),
     ["field cityward_update_mirrors", "different lists", "historian-01", "a city has one"]),
]


def test_the_example_city_declares_its_mirrors_and_passes(world):
    assert problems(world) == []


@pytest.mark.parametrize(("case", "mutation", "fragments"), CORPUS, ids=[c for c, _, _ in CORPUS])
def test_each_bad_input_is_refused_with_its_line(world, case, mutation, fragments):
    relative, change = mutation
    edit(world / relative, change)
    found = problems(world)
    assert any(all(f in line for f in fragments) for line in found), f"{case}: no line names {fragments}: {found}"
    assert all("\n" not in line and "Traceback" not in line for line in found)


def test_a_bad_declaration_is_one_line_not_one_per_host(world):
    edit(world / CITY, mirror(0, host="ghost-99")[1])
    assert problems(world) == [f"{world / 'city'}: {DMZ}, field cityward_update_mirrors[0].host: unknown host "
                               "'ghost-99' (not in the inventory)"]


def test_each_host_and_uri_is_named_once(world):
    edit(world / "project/policies/zones.yml", no_conduit("siem->dmz:tcp/443")[1])
    found = problems(world)
    named = sorted(re.findall(r"host (siem-0\d), field (\S+):", "\n".join(found)))
    assert named == [(host, f"cityward_apt_mirrors.{group}[0]")
                     for host in ("siem-01", "siem-02") for group in ("debian", "security")]
    assert len(found) == 4


def test_a_city_without_mirrors_is_not_judged(world):
    def change(data):
        data.pop("cityward_update_mirrors")
        data["cityward_apt_mirrors"] = {"debian": ["http://mirror.example.org/debian"]}
    edit(world / CITY, change)
    edit(world / "project/policies/zones.yml", no_conduit("field->dmz:tcp/443")[1])
    assert problems(world) == []


def test_a_mirror_host_outside_the_limit_is_still_known(world):
    assert problems(world, limit="traffic_controllers") == []
    edit(world / "project/policies/zones.yml", no_conduit("field->dmz:tcp/443")[1])
    assert len(problems(world, limit="traffic_controllers")) == 6  # 3 controllers x debian, security


def test_cityward_check_refuses_before_any_host(world):
    edit(world / "project/policies/zones.yml", no_conduit("field->dmz:tcp/443")[1])
    result = run_check([world / "city"], policies=world / "project" / "policies", today=TODAY)
    assert not result.ok
    lines = [p for p in result.problems if p.host == "tl-ctrl-014"]
    assert {p.field for p in lines} == {"cityward_apt_mirrors.debian[0]", "cityward_apt_mirrors.security[0]"}
    assert all("field->dmz:tcp/443" in p.message for p in lines)


@settings(max_examples=200, deadline=None)
@given(raw=st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
                                  st.sampled_from(["internet", "dmz-mirror-01", "https://10.40.16.10", "host", "zone",
                                                   "url", "name"])),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                            st.sampled_from(["name", "url", "host", "zone", "x", "a\nb"]), inner, max_size=4),
                        max_leaves=8))
def test_generated_declarations_name_their_field(raw):
    for problem in declaration_problems(raw, {"dmz-mirror-01"}):
        assert problem.field and problem.field.startswith("cityward_update_mirrors"), problem
        assert "\n" not in str(problem)


# --- the device record's patch SLA (CW-PATCH-07) ---------------------------------------------------

HISTORIAN = {"cityward_zone": "ot-operations", "cityward_device": {
    "vendor": "AVEVA", "model": "Historian", "firmware": "2023 R2", "owner": "Water operations", "role": "historian",
    "criticality": "medium", "support_end_of_life": "2030-12-31", "vendor_sla": "SLA-1",
    "maintenance_window": {"days": ["Tue"], "start": "01:00", "duration_minutes": 90}}}


def _with_sla(value):
    return {**HISTORIAN, "cityward_device": {**HISTORIAN["cityward_device"], "patch_sla_days": value}}


@pytest.mark.control("CW-PATCH-07")
@pytest.mark.parametrize("value", [7, 1, 365])
def test_a_patch_sla_in_range_is_accepted(value):
    host = assess("historian-01", _with_sla(value), EXAMPLE, zones=ZONES, today=TODAY)
    assert host.problems == [] and host.device.patch_sla_days == value
    assert patch_sla_days(_with_sla(value)["cityward_device"]) == value


@pytest.mark.control("CW-PATCH-07")
@pytest.mark.parametrize("value", [0, 366, -3, "30", 7.5, True])
def test_a_bad_patch_sla_is_refused_naming_the_field(value):
    host = assess("historian-01", _with_sla(value), EXAMPLE, zones=ZONES, today=TODAY)
    assert [p.field for p in host.problems] == ["cityward_device.patch_sla_days"], host.problems
    assert patch_sla_days(_with_sla(value)["cityward_device"]) is None


@pytest.mark.control("CW-PATCH-07")
def test_a_device_without_a_patch_sla_has_the_default():
    host = assess("historian-01", HISTORIAN, EXAMPLE, zones=ZONES, today=TODAY)
    assert host.problems == [] and host.device.patch_sla_days == PATCH_SLA_DAYS_DEFAULT == 30
    assert patch_sla_days(HISTORIAN["cityward_device"]) == PATCH_SLA_DAYS_DEFAULT
