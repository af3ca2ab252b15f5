"""Patching controls (role patching), read from the host and never changed: the sources APT
trusts and the index it verified, what unattended-upgrades may install and when the timers
really fire (systemd's own schedule), the reboot policy, needrestart listing (never restarting)
the services running replaced code, the local fact and the pending report.

The expected values (origins, maintenance window, reboot policy, mirrors, keyring, pinned key,
report path) are what the patching role recorded it applied (cityward_patching.fact, after every
inventory override); the pending updates and the APT sources in effect come from the role's
scanner (cityward_patching_pending.fact), run on the host."""

from __future__ import annotations

import base64
import json
import re
import shlex
from datetime import UTC, datetime

import pytest

from cityward.checks.applied import applied
from cityward.checks.hoststate import snapshot
from cityward.checks.outcomes import not_applicable
from cityward.checks.patch_evidence import (
    approved_mirrors,
    deb822_stanzas,
    mirrors_for,
    openpgp_fingerprints,
    overdue,
    recorded_mirrors,
    unapproved_uris,
)
from cityward.device import patch_sla_days

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
TIMERS = ("apt-daily.timer", "apt-daily-upgrade.timer")
# The role's pending-updates scanner, an executable local fact: run here as the audit user.
FACT = "/etc/ansible/facts.d/cityward_patching_pending.fact"
SOURCES = "/etc/apt/sources.list.d/debian.sources"
APPLIED = "the patching role's record (cityward_patching.fact)"
# needrestart reads needrestart.conf, whose last lines evaluate conf.d/*.conf in sorted order (Perl's
# sort: byte order): for each setting the last assignment read wins.
NEEDRESTART_CONF = "/etc/needrestart/needrestart.conf"
NEEDRESTART_DROPINS = "/etc/needrestart/conf.d"
NRCONF = re.compile(r"""^[ \t]*\$nrconf\{\s*(['"]?)(\w+)\1\s*\}\s*=\s*(?:'([^']*)'|"([^"]*)"|(-?\d+))\s*;""",
                    re.MULTILINE)
UNSIGNED = re.compile(r'Allow(Unauthenticated|InsecureRepositories|DowngradeToInsecureRepositories) "(1|true|yes|on)"',
                      re.IGNORECASE)


@pytest.fixture(scope="module")
def state(host):
    props = "-p Id -p ActiveState -p UnitFileState -p TimersCalendar -p NextElapseUSecRealtime -p RandomizedDelayUSec"
    return snapshot(host, {
        "apt_config": "apt-config dump",
        "uu_installed": "dpkg-query -W -f='${db:Status-Status}' unattended-upgrades",
        "timers": f"systemctl show {' '.join(TIMERS)} {props} -p Persistent",
        "sources": "for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; "
                   "do [ -e \"$f\" ] && printf '@@file %s\\n' \"$f\" && cat \"$f\"; done; true",
        "legacy": "grep -E '^[[:space:]]*deb(-src)?[[:space:]]' /etc/apt/sources.list",
        "trusted_gpg": "test -s /etc/apt/trusted.gpg",
        "policy": "apt-cache policy",
        "fact": FACT,
        "fact_mode": f"stat -c '%U %a' {FACT}",
        "needrestart_installed": "dpkg-query -W -f='${db:Status-Status}' needrestart",
        # Each file framed by a marker line (cat; echo: a file without a final newline ends before it).
        "needrestart_conf": f"for f in {NEEDRESTART_CONF} {NEEDRESTART_DROPINS}/*.conf; "
                            "do [ -f \"$f\" ] && printf '@@file %s\\n' \"$f\" && cat \"$f\" && echo; done; true",
    })


@pytest.fixture(scope="module")
def recorded(host):
    """What the patching role recorded it applied, or the failure reading it: judged inside each
    check (`_applied`), since a failing fixture would report the check as an error, not a failed control."""
    try:
        return applied(host, "patching")
    except pytest.fail.Exception as exc:
        return exc


def _applied(recorded) -> dict:
    __tracebackhide__ = True
    if isinstance(recorded, pytest.fail.Exception):
        pytest.fail(recorded.msg, pytrace=False)
    return recorded


@pytest.fixture(scope="module")
def apt_config(state):
    return state["apt_config"][1]


def _framed_files(text: str) -> dict[str, str]:
    """path -> content of the files a snapshot printed each after an '@@file <path>' line."""
    return dict(re.findall(r"^@@file (\S+)\n(.*?)(?=^@@file |\Z)", text, re.MULTILINE | re.DOTALL))


def _minute_of_week(day: str, hhmm: str) -> int:
    hours, minutes = hhmm.split(":")[:2]
    return DAYS.index(day) * 1440 + int(hours) * 60 + int(minutes)


def _inside(window, day: str, hhmm: str, slack: int = 0) -> bool:
    """Whether day+time (plus `slack` minutes) falls inside the weekly window (which may cross midnight)."""
    hours, minutes = window["start"].split(":")
    at = (_minute_of_week(day, hhmm) + slack) % (7 * 1440)
    for start_day in window["days"]:
        start = DAYS.index(start_day) * 1440 + int(hours) * 60 + int(minutes)
        if (at - start) % (7 * 1440) < int(window["duration_minutes"]):
            return True
    return False


def _timers(text: str) -> dict[str, dict[str, str]]:
    units = {}
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        units[props["Id"]] = props
    return units


def _minutes(span: str) -> int:
    """systemd time span (30min, 1h 30min, 45s) in whole minutes, rounded up."""
    seconds = 0
    for value, unit in re.findall(r"(\d+)\s*(h|min|s|ms|us)\b", span):
        seconds += int(value) * {"h": 3600, "min": 60, "s": 1, "ms": 0, "us": 0}[unit]
    return -(-seconds // 60)


@pytest.mark.control("CW-PATCH-01")
def test_unattended_upgrades_installs_security_origins_only(state, apt_config, recorded):
    expected = _applied(recorded)["origins"]
    assert state["uu_installed"] == (0, "installed\n") or state["uu_installed"][1].startswith("installed")
    origins = re.findall(r'^Unattended-Upgrade::Origins-Pattern:: "(.*)";$', apt_config, re.MULTILINE)
    allowed = re.findall(r'^Unattended-Upgrade::Allowed-Origins:: "(.*)";$', apt_config, re.MULTILINE)
    assert origins == expected, (
        f"Unattended-Upgrade::Origins-Pattern: expected {expected!r} (applied by the patching role), found {origins!r}")
    assert not allowed, f"legacy Allowed-Origins add origins: {allowed}"
    assert all("security" in origin.lower() for origin in origins), origins
    assert 'APT::Periodic::Unattended-Upgrade "1";' in apt_config
    assert 'APT::Periodic::Update-Package-Lists "1";' in apt_config


@pytest.mark.control("CW-PATCH-01")
def test_apt_timers_fire_only_inside_the_maintenance_window(state, recorded):
    """systemd's own view of the running timers: one calendar each, its next elapse plus the
    random delay inside the window the role applied, no catch-up at boot."""
    window = _applied(recorded)["maintenance_window"]
    units = _timers(state["timers"][1])
    assert set(units) == set(TIMERS)
    for name, unit in units.items():
        assert unit["ActiveState"] == "active", f"{name} is {unit['ActiveState']}"
        calendars = re.findall(r"OnCalendar=([^;]+);", unit["TimersCalendar"])
        assert len(calendars) == 1, f"{name}: {unit['TimersCalendar']} (the vendor schedule was not reset)"
        planned = re.search(r"next_elapse=(\w{3}) \S+ (\d\d:\d\d)", unit["TimersCalendar"])
        assert planned, f"{name} has no next elapse: {unit['TimersCalendar']}"
        delay = _minutes(unit["RandomizedDelayUSec"])
        assert _inside(window, planned[1], planned[2]), f"{name} starts at {planned[1]} {planned[2]}, outside {window}"
        assert _inside(window, planned[1], planned[2], slack=delay), f"{name}: + {delay} min leaves {window}"
        actual = re.match(r"(\w{3}) \S+ (\d\d:\d\d)", unit["NextElapseUSecRealtime"])
        assert actual and _inside(window, actual[1], actual[2]), f"{name} fires at {unit['NextElapseUSecRealtime']}"
        assert unit["Persistent"] == "no", f"{name} would catch a missed window up at boot, outside the window"


@pytest.mark.control("CW-PATCH-01")
def test_no_automatic_reboot_outside_the_window(apt_config, recorded):
    settings = _applied(recorded)
    window, expected = settings["maintenance_window"], settings["automatic_reboot"]
    reboot = re.search(r'^Unattended-Upgrade::Automatic-Reboot "(\w+)";$', apt_config, re.MULTILINE)
    assert reboot, "Unattended-Upgrade::Automatic-Reboot is not set explicitly"
    found = reboot[1].lower() not in ("false", "0", "no", "off")
    assert found == expected, (
        f"Unattended-Upgrade::Automatic-Reboot: expected {expected!r} (applied by the patching role), "
        f"found {reboot[1]!r}")
    if not found:
        return
    at = re.search(r'^Unattended-Upgrade::Automatic-Reboot-Time "(\d\d:\d\d)";$', apt_config, re.MULTILINE)
    assert at, "automatic reboot without Automatic-Reboot-Time reboots whenever the upgrade ends"
    assert at[1] == settings["reboot_time"], (
        f"Unattended-Upgrade::Automatic-Reboot-Time: expected {settings['reboot_time']!r} "
        f"(applied by the patching role), found {at[1]!r}")
    start_day = window["days"][0]
    hours, minutes = window["start"].split(":")
    offset = (int(at[1][:2]) * 60 + int(at[1][3:]) - int(hours) * 60 - int(minutes)) % 1440
    assert offset < int(window["duration_minutes"]), f"reboot at {at[1]} is outside {window}"
    assert _inside(window, start_day, window["start"], slack=offset)


@pytest.mark.control("CW-PATCH-02")
def test_every_source_is_signed_by_a_keyring_and_none_is_trusted(host, state, recorded):
    settings = _applied(recorded)
    text = state["sources"][1]
    if settings["replace_legacy_sources"]:
        assert state["legacy"][0] != 0, (
            f"the legacy one-line /etc/apt/sources.list still has entries (the patching role applied "
            f"replace_legacy_sources: true): {state['legacy'][1]}")
    files = _framed_files(text)
    assert SOURCES in files, f"{SOURCES} is missing; sources found: {sorted(files)}"
    for path, content in files.items():
        assert not re.search(r"trusted\s*[=:]\s*(yes|true|1)", content, re.IGNORECASE), f"{path} marks a source trusted"
        if path.endswith(".sources"):
            stanzas = [s for s in re.split(r"\n\s*\n", content) if re.search(r"^Types:", s, re.MULTILINE)]
            for stanza in stanzas:
                if re.search(r"^Enabled:\s*no", stanza, re.MULTILINE | re.IGNORECASE):
                    continue
                assert re.search(r"^Signed-By:\s*/\S+", stanza, re.MULTILINE), f"{path}: entry without Signed-By"
        else:
            for line in content.splitlines():
                if re.match(r"\s*deb(-src)?\s", line):
                    assert re.search(r"signed-by=/\S+", line), f"{path}: {line}"
    keyring, components = settings["keyring"], settings["components"]
    expected = sorted({u.rstrip("/") for uris in settings["mirrors"].values() for u in uris})
    stanzas = deb822_stanzas(files[SOURCES])
    used = sorted({u.rstrip("/") for stanza in stanzas for u in stanza.get("URIs", "").split()})
    assert used == expected, f"{SOURCES} URIs: expected {expected} (mirrors applied by the patching role), found {used}"
    for stanza in stanzas:
        where = f"{SOURCES} ({stanza.get('URIs', '')})"
        assert stanza.get("Signed-By") == keyring, (
            f"{where}: Signed-By expected {keyring!r} (applied by the patching role), "
            f"found {stanza.get('Signed-By')!r}")
        found = stanza.get("Components", "").split()
        assert found == components, (
            f"{where}: Components expected {components} (applied by the patching role), found {found}")
    rc, out = snapshot(host, {"keyring": f"test -s {shlex.quote(keyring)}"})["keyring"]
    assert rc == 0, f"keyring: expected {keyring} (pinned by the patching role), found it missing or empty"
    assert state["trusted_gpg"][0] != 0, "keys in the legacy /etc/apt/trusted.gpg are trusted for every source"


@pytest.mark.control("CW-PATCH-02")
def test_apt_never_accepts_unsigned_packages(apt_config):
    assert not UNSIGNED.findall(apt_config), UNSIGNED.findall(apt_config)


@pytest.mark.control("CW-PATCH-02", "CW-PATCH-03")
def test_the_security_index_was_fetched_and_verified(state):
    """apt-cache policy lists a release only when its signed InRelease verified."""
    policy = state["policy"][1]
    assert re.search(r"release .*l=Debian-Security", policy), policy[-1500:]


@pytest.mark.control("CW-PATCH-03")
def test_fact_reports_reboot_and_pending_security_updates(state):
    rc, out = state["fact"]
    assert rc == 0, out
    fact = json.loads(out)
    assert isinstance(fact["reboot_required"], bool)
    assert "error" not in fact, fact.get("error")
    assert fact["pending_security"] == len(fact["packages"]) >= 0
    assert state["fact_mode"][1].split() == ["root", "755"]


@pytest.mark.control("CW-PATCH-03")
def test_pending_report_is_kept_root_only_on_the_host(host, recorded, hostvars):
    path = _applied(recorded)["report_path"]
    read = snapshot(host, {"report": f"cat {shlex.quote(path)}", "mode": f"stat -c '%U %G %a' {shlex.quote(path)}"})
    rc, out = read["report"]
    assert rc == 0, f"the report {path} (report_path applied by the patching role) is missing: {out.strip()[:200]}"
    report = json.loads(out)
    assert report["host"] == hostvars["inventory_hostname"]
    assert report["pending_security"] == len(report["packages"])
    assert all(p["archive"].endswith("-security") for p in report["packages"]), report["packages"]
    found = read["mode"][1].split()
    assert found == ["root", "root", "640"], f"{path}: expected owner root:root mode 640, found {' '.join(found)}"


def nrconf_assignments(text: str) -> dict[str, str]:
    """The scalar $nrconf{...} assignments of one needrestart configuration file, the last one of
    each setting winning; a commented line is none."""
    return {match[2]: next(group for group in match.groups()[2:] if group is not None)
            for match in NRCONF.finditer(text)}


def needrestart_settings(files: dict[str, str]) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """The scalar $nrconf{...} settings in effect as needrestart reads `files` (path -> content):
    needrestart.conf up to the line that includes conf.d, the conf.d/*.conf files in sorted order,
    then the rest of needrestart.conf; the last assignment wins. Returns ({setting: (value, the file
    that set it last)}, the files in the order read). Without that include line in needrestart.conf
    no conf.d file is read at all."""
    lines = files.get(NEEDRESTART_CONF, "").splitlines(keepends=True)
    include = next((i for i, line in enumerate(lines)
                    if NEEDRESTART_DROPINS in line and not line.lstrip().startswith("#")), None)
    dropins = sorted(path for path in files if path.startswith(NEEDRESTART_DROPINS + "/") and path.endswith(".conf"))
    parts = [(NEEDRESTART_CONF, "".join(lines))] if include is None else (
        [(NEEDRESTART_CONF, "".join(lines[:include]))] + [(path, files[path]) for path in dropins]
        + [(NEEDRESTART_CONF, "".join(lines[include:]))])
    settings: dict[str, tuple[str, str]] = {}
    for path, text in parts:
        settings.update((key, (value, path)) for key, value in nrconf_assignments(text).items())
    read = list(dict.fromkeys(path for path, _text in parts if path in files))
    return settings, read


@pytest.mark.control("CW-PATCH-03")
def test_needrestart_only_lists_the_services_to_restart(state, recorded):
    """needrestart (run by apt after every package change) is installed and, all its configuration
    files read in its order, only lists the services running replaced code: the restart belongs in
    the maintenance window (CW-PATCH-01), never in an apt hook. Expected values: the role's record."""
    settings = _applied(recorded)
    dropin = settings["needrestart_conf"]
    expected = {"restart": str(settings["needrestart_restart"]),
                "kernelhints": str(settings["needrestart_kernelhints"])}
    rc, out = state["needrestart_installed"]
    installed = out.strip() if rc == 0 else ""
    assert installed == "installed", (
        f"needrestart: expected installed (by the patching role), found {installed or 'not installed'}")
    files = _framed_files(state["needrestart_conf"][1])
    assert dropin in files, (
        f"{dropin}: expected (written by the patching role), found missing; needrestart reads {sorted(files)}")
    effective, read = needrestart_settings(files)
    assert dropin in read, (
        f"{NEEDRESTART_CONF}: expected it to read {NEEDRESTART_DROPINS}/*.conf (so {dropin} applies), "
        f"found no include: needrestart reads only {read}")
    own = nrconf_assignments(files[dropin])
    for key, value in expected.items():
        mine = own.get(key, "unset")
        assert mine == value, (
            f"{dropin}: $nrconf{{{key}}} expected {value!r} (applied by the patching role), found {mine!r}")
        found, where = effective.get(key, ("unset", "-"))
        assert found == value, (
            f"needrestart's effective $nrconf{{{key}}}: expected {value!r} (from {dropin}, applied by the patching "
            f"role), found {found!r} set last by {where} (files read in order: {', '.join(read)})")


@pytest.mark.control("CW-PATCH-03")
def test_fact_lists_the_services_running_replaced_code(state):
    """The pending fact's restart_needed is needrestart's list (possibly empty), never an unknown:
    null means needrestart could not answer, and the fact says why (restart_error)."""
    fact = _fact(state)
    assert "restart_needed" in fact, f"restart_needed: expected in {FACT}, found no such key (an older script?)"
    found = fact["restart_needed"]
    assert isinstance(found, list), (
        f"restart_needed: expected the list of services needrestart reports running replaced code, found {found!r}: "
        f"{fact.get('restart_error') or 'no restart_error given'}")
    assert all(isinstance(name, str) and name for name in found), (
        f"restart_needed: expected service names, found {found!r}")
    kernel = fact.get("kernel_status")
    assert kernel is None or (type(kernel) is int and 0 <= kernel <= 3), (
        f"kernel_status: expected needrestart's NEEDRESTART-KSTA (0-3) or null, found {kernel!r}")


# --- CW-PATCH-05 / CW-PATCH-07: approved mirrors, pinned keys, the patch SLA ---------------------
# The evidence: the scanner's APT sources in effect and each pending security update with its
# Release file's Date, and what the role recorded it pinned.


# Read inside the tests, not in fixtures: a missing fact must fail the control ("evidence missing"),
# and a fixture that fails is reported as a crashed check instead.
def _fact(state) -> dict:
    rc, out = state["fact"]
    assert rc == 0, f"evidence missing: {FACT} did not run (exit {rc}): {out.strip()[-300:]}"
    try:
        found = json.loads(out)
    except ValueError:
        pytest.fail(f"evidence missing: {FACT} printed no JSON: {out.strip()[-300:]}", pytrace=False)
    assert "error" not in found, f"evidence missing: {FACT} failed: {found['error']}"
    for field in ("sources", "packages"):
        assert isinstance(found.get(field), list), f"evidence missing: {FACT} gives no '{field}' (an older script?)"
    return found


def _keyrings(host, fact) -> dict:
    """path -> (stat 'uid gid mode type', base64 of the file) for every Signed-By keyring of the sources."""
    paths = sorted({p for source in fact["sources"] for p in source.get("signed_by", []) if p.startswith("/")})
    if not paths:
        return {}
    read = snapshot(host, {f"k{i}": f"stat -L -c '%u %g %a %F' {shlex.quote(p)} && base64 -w0 {shlex.quote(p)}"
                           for i, p in enumerate(paths)})
    return {p: read[f"k{i}"] for i, p in enumerate(paths)}


@pytest.mark.control("CW-PATCH-05")
def test_every_source_is_signed_by_a_root_owned_keyring(host, state):
    fact = _fact(state)
    keyrings = _keyrings(host, fact)
    assert fact["sources"], f"{FACT} lists no APT source in effect"
    for source in fact["sources"]:
        where = f"{source['file']} ({' '.join(source.get('uris', []))})"
        assert source.get("signed_by"), f"{where}: no Signed-By: any key APT trusts could sign it"
        for path in source["signed_by"]:
            assert path.startswith("/"), f"{where}: Signed-By {path!r} is not a keyring file"
            rc, out = keyrings[path]
            assert rc == 0, f"{where}: keyring {path} cannot be read: {out.strip()[:200]}"
            uid, _gid, mode, *kind = out.splitlines()[0].split()
            assert " ".join(kind) == "regular file", f"{where}: keyring {path} is a {' '.join(kind)}"
            assert uid == "0", f"{where}: keyring {path} is owned by uid {uid}, not root"
            assert int(mode, 8) & 0o022 == 0, f"{where}: keyring {path} is group/world writable (mode {mode})"


def _fingerprints(keyrings, path: str) -> list[str]:
    try:
        return openpgp_fingerprints(base64.b64decode(keyrings[path][1].splitlines()[1]))
    except (IndexError, ValueError) as exc:
        pytest.fail(f"keyring {path}: no OpenPGP key can be read from it ({exc})", pytrace=False)


@pytest.mark.control("CW-PATCH-05")
def test_sources_are_approved_mirrors_pinned_to_the_key_the_role_pinned(host, state, hostvars, recorded):
    settings = _applied(recorded)
    mirrors = recorded_mirrors(settings["approved_mirrors"])
    # The inventory is read only to tell a record older than the city's current list (re-run the role).
    declared = hostvars.get("cityward_update_mirrors") or []
    if not mirrors and not declared:
        not_applicable("not applicable: the city declares no cityward_update_mirrors")
    declared_urls = sorted(m.url for m in approved_mirrors(declared)) if declared else []
    applied_urls = sorted(m.url for m in mirrors)
    assert applied_urls == declared_urls, (
        f"approved mirrors: expected {declared_urls} (cityward_update_mirrors), the patching role last applied "
        f"{applied_urls}: run the role again")
    fact = _fact(state)
    keyrings = _keyrings(host, fact)
    usable = mirrors_for(hostvars["inventory_hostname"], mirrors)
    outside = unapproved_uris(fact["sources"], usable)
    assert not outside, f"APT sources outside the approved mirrors {[m.url for m in usable]}: {outside}"
    keyring, pinned = settings["keyring"], str(settings["key_fingerprint"] or "").upper()
    assert keyring, f"evidence missing: {APPLIED} gives no keyring"
    for source in fact["sources"]:
        assert source["signed_by"] == [keyring], (
            f"{source['file']} ({' '.join(source['uris'])}): Signed-By {source['signed_by']}, not the pinned {keyring}")
    internal = [m for m in mirrors if m.host is not None]
    if not pinned:
        # Only a host that takes updates from the outside archive alone (the mirror) keeps Debian's keyring.
        inside = [u for s in fact["sources"] for u in s["uris"] if any(m.serves(u) for m in internal)]
        assert not inside, f"{APPLIED}: no mirror key pinned, yet {inside} come from the city's mirror"
        return
    assert keyring in keyrings, f"the pinned keyring {keyring} signs no source"
    found = _fingerprints(keyrings, keyring)
    assert found == [pinned], f"keyring {keyring} holds {found}, not only the key the patching role pinned {pinned}"


def _sla_days(hostvars) -> int:
    days = patch_sla_days(hostvars.get("cityward_device") or {})
    assert days is not None, "cityward_device.patch_sla_days is invalid (an integer 1..365; run `cityward check`)"
    return days


@pytest.mark.control("CW-PATCH-07")
def test_no_security_update_pending_longer_than_the_patch_sla(state, hostvars):
    fact = _fact(state)
    sla = _sla_days(hostvars)
    late = overdue(fact["packages"], sla, datetime.now(UTC))
    assert not late, f"{len(late)} pending security update(s) over the SLA: " + "; ".join(late)
