"""The city's approved update mirrors (`cityward_update_mirrors`, control CW-PATCH-05), as
`cityward check` judges them before any host is touched.

- the declaration: a list of {name, url, host} (an internal mirror, run by an inventory host) or
  {name, url, zone: internet} (an outside archive, for the mirror hosts only);
- every host's effective apt mirrors (what the patching role renders) lie under an approved url;
- the host's zone reaches the mirror's zone through a conduit of the zones policy (tcp, the url's
  port), unless both are in one zone or the host runs that mirror.
A city that declares no mirrors is not judged here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.cityward.hardening.plugins.plugin_utils.openpgp import KeyReadError, read_key
from ansible_collections.cityward.hardening.plugins.plugin_utils.unwrap import plain
from jinja2.nativetypes import NativeEnvironment

from cityward.hostvar_specs import HOST, URL, role_defaults
from cityward.hostvars import format_problem
from cityward.problems import Problem
from cityward.zones import INTERNET, ZonesPolicy

VAR = "cityward_update_mirrors"
KEY_VAR = "cityward_update_mirror_public_key"
_NAME = re.compile(r"^[a-z0-9-]+$")
_KEYS = ("name", "url", "host", "zone")
DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class Mirror:
    name: str
    url: str  # without a trailing slash
    host: str | None  # the inventory host running it; None for an outside archive
    zone: str | None  # the mirror's zone: its host's cityward_zone, or internet

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or DEFAULT_PORTS[parts.scheme]

    def serves(self, uri: str) -> bool:
        """True when `uri` is this mirror's url or lies under it."""
        mine, theirs = urlsplit(self.url), urlsplit(uri)
        try:
            same = (mine.scheme, mine.hostname, self.port) == (theirs.scheme.lower(), theirs.hostname,
                                                               theirs.port or DEFAULT_PORTS.get(theirs.scheme.lower()))
        except ValueError:  # a bad port in the URI: the host-variable gate names it
            return False
        base, path = mine.path.rstrip("/"), theirs.path.rstrip("/")
        return same and (path == base or path.startswith(base + "/"))


def _show(value: Any) -> str:
    text = repr(value)  # escapes a newline: each problem stays one line
    return text if len(text) <= 60 else text[:57] + "..."


def url_problem(url: Any) -> str:
    """'' for an http(s) base URL with a host and an optional port, else why not."""
    if not isinstance(url, str) or not url:
        return f"expected an http(s) URL such as https://10.40.16.10 (got {_show(url)})"
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        return f"{_show(url)}: expected http:// or https://"
    if "@" in parts.netloc:
        return f"{_show(url)}: credentials do not belong in a mirror URL"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return f"{_show(url)}: a mirror URL has no query or fragment"
    try:
        port = parts.port
    except ValueError:
        return f"{_show(url)}: invalid port"
    if port == 0 or not parts.hostname or format_problem(HOST, parts.hostname):
        return f"{_show(url)}: expected a host name or IP address, and an optional port 1-65535"
    return format_problem(URL, url)


def _entry_problems(index: int, entry: Any, known_hosts: set[str] | None) -> Iterator[tuple[str, str]]:
    where = f"{VAR}[{index}]"
    if not isinstance(entry, dict):
        yield where, f"expected a mapping of name, url, and host or zone (got {_show(entry)})"
        return
    for key in sorted(set(map(str, entry)) - set(_KEYS)):
        shown = key if key.isprintable() else repr(key)
        yield f"{where}.{shown}", "unknown key (a mirror has name, url, and host or zone)"
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        yield f"{where}.name", f"expected a short id of [a-z0-9-] (got {_show(name)})"
    if why := url_problem(entry.get("url")):
        yield f"{where}.url", why
    host, zone = entry.get("host"), entry.get("zone")
    if (host is None) == (zone is None):
        yield where, ("give exactly one of host (the inventory host running the mirror) or zone: internet "
                      "(an outside archive)")
    elif zone is not None and zone != INTERNET:
        yield f"{where}.zone", f"only '{INTERNET}' (an outside archive) may be given (got {_show(zone)}); an "\
                               "internal mirror names its host"
    elif host is not None and not isinstance(host, str):
        yield f"{where}.host", f"expected an inventory host name (got {_show(host)})"
    elif host is not None and known_hosts is not None and host not in known_hosts:
        yield f"{where}.host", f"unknown host {_show(host)} (not in the inventory)"


def _label(index: int, entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"update mirror #{index} {_show(name)}" if isinstance(name, str) and name else f"update mirror #{index}"


def declaration_problems(raw: Any, known_hosts: set[str] | None) -> list[Problem]:
    """Every problem of a `cityward_update_mirrors` value, each naming the entry and field.
    `known_hosts`: the inventory's hosts (None: a slice of it, where a mirror host may be absent)."""
    if not isinstance(raw, list):
        return [Problem(f"expected a list of mirrors (got {_show(raw)})", field=VAR)]
    problems = []
    names: dict[str, int] = {}
    urls: dict[str, int] = {}
    for index, entry in enumerate(raw):
        label = _label(index, entry)
        problems += [Problem(msg, host=label, field=where) for where, msg in _entry_problems(index, entry, known_hosts)]
        if not isinstance(entry, dict):
            continue
        for key, seen in (("name", names), ("url", urls)):
            value = entry.get(key)
            if not isinstance(value, str):
                continue
            value = value.rstrip("/").lower() if key == "url" else value
            if value in seen:
                problems.append(Problem(f"the same {key} as update mirror #{seen[value]}: each mirror is listed once",
                                        host=label, field=f"{VAR}[{index}].{key}"))
            seen.setdefault(value, index)
    return problems


@cache
def _role_default_mirrors() -> Any:
    """The patching role's own default of patching_mirrors (roles/patching/defaults/main.yml),
    rendered as the role renders it when the inventory gives no mirrors."""
    return NativeEnvironment().from_string(role_defaults()["patching_mirrors"]).render()


def effective_mirrors(hostvars: Mapping[str, Any]) -> tuple[str, Any]:
    """(variable, {group: [URIs]}) the patching role renders for a host: patching_mirrors when the
    inventory sets it, else cityward_apt_mirrors unless empty, else the role's default."""
    if "patching_mirrors" in hostvars:
        return "patching_mirrors", hostvars["patching_mirrors"]
    if hostvars.get("cityward_apt_mirrors"):
        return "cityward_apt_mirrors", hostvars["cityward_apt_mirrors"]
    return "cityward_apt_mirrors", _role_default_mirrors()


def _mirrors(raw: list, hostvars: Mapping[str, Mapping[str, Any]]) -> list[Mirror]:
    """The declaration as Mirrors (call only on one without problems)."""
    found = []
    for entry in raw:
        host = entry.get("host")
        zone = entry.get("zone") or plain(hostvars.get(host, {}).get("cityward_zone"))
        found.append(Mirror(entry["name"], entry["url"].rstrip("/"), host, zone if isinstance(zone, str) else None))
    return found


def _uri_problems(name: str, v: Mapping[str, Any], mirrors: list[Mirror], zones: ZonesPolicy | None
                  ) -> Iterator[tuple[str, str]]:
    variable, groups = effective_mirrors(v)
    if not isinstance(groups, dict):
        return  # the host-variable gate names the type
    origin = "" if "patching_mirrors" in v or v.get("cityward_apt_mirrors") else " (the patching role's default)"
    zone = v.get("cityward_zone")
    mirror_hosts = {m.host for m in mirrors if m.host}
    for group, uris in groups.items():
        for index, uri in enumerate(uris if isinstance(uris, list) else []):
            where = f"{variable}.{group}[{index}]"
            if not isinstance(uri, str) or format_problem(URL, uri):
                continue  # the gate names it
            serving = [m for m in mirrors if m.serves(uri)]
            if not serving:
                approved = ", ".join(m.url for m in mirrors)
                yield where, f"a mirror URL outside the approved list: '{uri}'{origin} (approved: {approved})"
                continue
            mirror = max(serving, key=lambda m: len(m.url))
            if mirror.zone == INTERNET and name not in mirror_hosts:
                yield where, (f"'{uri}' is update mirror '{mirror.name}', an outside archive: only the city's "
                              f"mirror hosts ({', '.join(sorted(mirror_hosts)) or 'none'}) fetch from it")
                continue
            if zones is None or not isinstance(zone, str) or zone not in zones.zones \
                    or mirror.zone not in (*zones.zones, INTERNET):
                continue  # an unknown zone is named by the zone checks
            if zone == mirror.zone or mirror.host == name:
                continue
            label = f"{zone}->{mirror.zone}:tcp/{mirror.port}"
            if not any(c.label == label for c in zones.conduits):
                yield where, (f"update mirror '{mirror.name}' ({mirror.url}, zone '{mirror.zone}') is not reachable "
                              f"from this host's zone '{zone}': the zones policy has no conduit {label}")


def _uses_internal_mirror(v: Mapping[str, Any], mirrors: list[Mirror]) -> bool:
    """True when one of the host's apt URIs is served by one of the city's own mirrors."""
    _, groups = effective_mirrors(v)
    uris = [u for us in (groups.values() if isinstance(groups, dict) else []) if isinstance(us, list)
            for u in us if isinstance(u, str)]
    return any(m.host and m.serves(uri) for m in mirrors for uri in uris)


def _key_problems(v: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """The key a host pins when it takes updates from the city's mirror: present, readable, public, valid."""
    field = "patching_mirror_public_key" if "patching_mirror_public_key" in v else KEY_VAR
    text = v.get(field)
    if isinstance(text, str) and "{{" in text:
        return  # a template (lookup of the lab's key): the patching role's preflight reads it rendered
    if not isinstance(text, str) or not text.strip():
        yield field, ("missing: the host takes updates from the city's mirror, so it pins the key the mirror "
                      "signs with (ASCII-armored public key)")
        return
    try:
        key = read_key(text)
    except KeyReadError as exc:
        yield field, f"not a readable OpenPGP key: {exc}"
        return
    if key.secret:
        yield field, "holds a PRIVATE key: give the public half only (gpg --armor --export)"
    elif key.expires and key.expires <= datetime.now(UTC):
        yield field, f"the key {key.fingerprint} expired on {key.expires.date()}: rotate the mirror key first"


def mirror_problems(label: str, hostvars: Mapping[str, Mapping[str, Any]], everyone: Mapping[str, Mapping[str, Any]],
                    zones: ZonesPolicy | None, *, sliced: bool = False) -> list[Problem]:
    """Every problem of the city's update mirrors and of the hosts' apt mirrors against them.
    `hostvars`: the hosts judged (a --limit); `everyone`: the whole inventory (mirror hosts)."""
    declared: dict[str, list[str]] = {}
    for name in sorted(hostvars):
        value = plain(hostvars[name].get(VAR))
        try:
            key = json.dumps(value, sort_keys=True, default=str)
        except TypeError:  # keys of mixed types cannot be sorted
            key = repr(value)
        declared.setdefault(key, []).append(name)
    if len(declared) > 1:
        groups = "; ".join(", ".join(hosts) for hosts in declared.values())
        return [Problem(f"the hosts are given different lists ({groups}); a city has one: set it in group_vars/all",
                        file=label, field=VAR)]
    raw = plain(next(iter(hostvars.values()), {}).get(VAR))
    if raw is None:
        return []
    problems = [Problem(p.message, file=label, host=p.host, field=p.field)
                for p in declaration_problems(raw, None if sliced else set(everyone))]
    if problems:
        return problems  # hosts are judged against a valid list only
    mirrors = _mirrors(raw, everyone)
    for name in sorted(hostvars):
        v = plain(dict(hostvars[name]))
        found = [*_uri_problems(name, v, mirrors, zones),
                 *(_key_problems(v) if _uses_internal_mirror(v, mirrors) else ())]
        problems += [Problem(msg, file=label, host=name, field=where) for where, msg in found]
    return problems
