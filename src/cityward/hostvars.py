"""The host-variable schema gate (CW-RES-04): everything the roles read from an inventory is
checked before any host is touched, each problem naming the host and the variable path.

- every string of every host variable: no control characters (newlines only in banners and PEM);
- host names (inventory keys) from a conservative ASCII set;
- the variables the roles read (types from their argument specs, formats from
  cityward.hostvar_specs.FORMATS) and the connection variables: no template syntax in data;
- across hosts: an address outside its zone, shared by two hosts, a host in two zone groups or
  contradicting its zone group, service hosts outside the zones their service reaches;
- what the roles' preflights refuse (operators, MFA, break-glass, automation user), earlier.
Values come as `ansible-inventory --list` gives them ({'__ansible_unsafe': ...} unwrapped; a vault
value {'__ansible_vault': ...} stays opaque and is accepted only where a secret may be).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import struct
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from ansible_collections.cityward.hardening.plugins.plugin_utils.text import breaking_character, template_mark
from ansible_collections.cityward.hardening.plugins.plugin_utils.unwrap import plain
from ansible_collections.cityward.hardening.plugins.plugin_utils.zones_sense import judge_sources

from cityward.hostvar_specs import (
    ADDRESS,
    HOST,
    MFA,
    MULTILINE,
    NAME,
    PEM,
    PERCENT,
    PORT,
    ROLE_PREFIXES,
    SECRET,
    SSHKEY,
    TEXT,
    URL,
    WORD,
    ZONE,
    Format,
    format_of,
    role_defaults,
    spec_of,
)
from cityward.problems import Problem
from cityward.zones import ZonesPolicy

HOSTNAME_CHARS = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,252})$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")  # as the accounts role's preflight
_WORD = re.compile(r"^[A-Za-z0-9_.:@%+*/=!,;#-]*$")
_PORT = re.compile(r"^(?:(?:tcp|udp)/)?(\d{1,5})$")
_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?(?:/[A-Za-z0-9._~%/+-]*)?$")
_CRYPT = re.compile(r"^\$y\$[^$]+\$[^$]+\$[^$]+$")
# A TOTP seed pam_google_authenticator decodes: base32 (RFC 4648), 80 bits or more.
_TOTP_SEED = re.compile(r"^[A-Z2-7]{16,}=*$")
MFA_METHODS = ("totp", "fido2")
SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                 "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
# Connections that never use ansible_host as a network address of the zone.
LOCAL_CONNECTIONS = ("local", "containers.podman.podman", "podman", "community.docker.docker", "docker")
# ssh options that run a command on the controller.
_SSH_COMMANDS = re.compile(r"(ProxyCommand|LocalCommand|PermitLocalCommand|KnownHostsCommand|Match\s+exec)",
                           re.IGNORECASE)


def _vault(value: Any) -> bool:
    return isinstance(value, dict) and "__ansible_vault" in value


def _templated(value: Any) -> bool:
    return isinstance(value, str) and template_mark(value) is not None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad_char(text: str, newlines: bool = False) -> str:
    """'' or what is wrong with a character of `text` (control or invisible format characters)."""
    found = breaking_character(text, newlines)
    if found is None:
        return ""
    char = found[1]
    if unicodedata.category(char) == "Cc":
        return f"control character {char!r}"
    return f"invisible character U+{ord(char):04X}"


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(path, string) for every string of a value, keys included."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield f"{where} (key)", key
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


# --- formats -------------------------------------------------------------------------------------


def _host_name(text: str) -> bool:
    return len(text) <= 253 and all(_LABEL.match(label) for label in text.rstrip(".").split("."))


def _looks_ip(text: str) -> bool:
    return ":" in text or bool(re.fullmatch(r"[0-9.]+", text))


def ssh_key_problem(text: str) -> str:
    """'' for an OpenSSH public key line 'type base64 [comment]', else why not."""
    parts = text.split(None, 2)
    if len(parts) < 2:
        return "not an SSH public key (expected 'type base64 [comment]')"
    kind, blob = parts[0], parts[1]
    if kind not in SSH_KEY_TYPES:
        return f"unknown SSH key type {_show(kind)} (known: {', '.join(SSH_KEY_TYPES)})"
    try:
        raw = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", raw[:4])
        embedded = raw[4:4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        return "SSH key blob is not valid base64 of a key"
    if embedded != kind:
        return f"SSH key blob is a {_show(embedded)} key, not {kind}"
    return ""


def format_problem(kind: str, text: str) -> str:
    """'' when `text` has the format `kind`, else why not."""
    if kind == ADDRESS:
        try:
            ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            return f"not an IP address or network: {exc}"
        return ""
    if kind == HOST:
        if text == "" or _ip(text) is not None:
            return ""
        if _looks_ip(text):
            return f"invalid IP address {_show(text)}"
        return "" if _host_name(text) else f"invalid host name {_show(text)} (letters, digits, '-', '.')"
    if kind == NAME:
        return "" if _NAME.match(text) else f"invalid user or group name {_show(text)} (expected [a-z_][a-z0-9_-]*)"
    if kind == WORD:
        return "" if _WORD.match(text) else f"unexpected characters in {_show(text)} (one token expected)"
    if kind == PORT:
        match = _PORT.match(text)
        return "" if match and 1 <= int(match.group(1)) <= 65535 else f"invalid port {_show(text)}"
    if kind == URL:
        return "" if _URL.match(text) else f"invalid URL {_show(text)} (expected http(s)://host/path)"
    if kind == SSHKEY:
        return ssh_key_problem(text)
    if kind == MFA:
        return "" if text in MFA_METHODS else f"unsupported MFA method {_show(text)} (supported: totp, fido2)"
    if kind == ZONE:
        return "" if re.fullmatch(r"[a-z][a-z0-9-]{0,30}", text) else f"invalid zone name {_show(text)}"
    if kind == PERCENT:
        return "" if re.fullmatch(r"\d{1,3}%", text) else f"invalid batch {_show(text)} (an integer or N%)"
    if kind == PEM:  # empty: none given (the role then uses its fallback or refuses in its preflight)
        return "" if not text or text.lstrip().startswith("-----BEGIN ") else "not a PEM certificate or key"
    return ""  # TEXT, MULTILINE, PATH, SECRET: the character checks are all


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# --- one variable against its spec --------------------------------------------------------------


def _check(value: Any, key: str, spec: Mapping[str, Any], where: str, fmt: Format | None) -> Iterator[tuple[str, str]]:
    """(field, message) for a value against its type (`spec`) and format."""
    kind = spec.get("type", "str")
    if kind in ("dict", "list") and (_vault(value) or _templated(value)):
        # A whole mapping or list from a template (groups, vault): as its elements may be.
        fmt = fmt or format_of(f"{key}.*") or format_of(f"{key}[]")
    if _vault(value):
        if not (fmt and fmt.kind in (SECRET, PEM)):
            yield where, "vault-encrypted value where data is expected: write the value itself"
        return
    if _templated(value):
        if not (fmt and fmt.templated):
            yield where, f"template syntax in a data field ({_show(value)}): write the value itself"
        return
    if kind == "raw":
        if isinstance(value, bool) or not isinstance(value, int | str):
            yield where, f"expected an integer or a string (got {_show(value)})"
        elif isinstance(value, str) and fmt:
            yield from _string(value, fmt, where)
        return
    if kind == "bool":
        if not isinstance(value, bool):
            yield where, f"expected true or false (got {_show(value)})"
        return
    if kind in ("int", "port"):
        if isinstance(value, str) and kind == "port" and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            yield where, f"expected an integer (got {_show(value)})"
        elif kind == "port" and not 1 <= value <= 65535:
            yield where, f"port {value} out of range 1-65535"
        elif spec.get("choices") and value not in spec["choices"]:
            yield where, f"{value} is not one of {spec['choices']}"
        return
    if kind in ("str", "path"):
        if not isinstance(value, str):
            yield where, f"expected a string (got {_show(value)})"
        elif spec.get("choices") and value not in spec["choices"]:
            yield where, f"{_show(value)} is not one of {', '.join(map(str, spec['choices']))}"
        elif fmt:
            yield from _string(value, fmt, where)
        return
    if kind == "list":
        if not isinstance(value, list):
            yield where, f"expected a list (got {_show(value)})"
            return
        elements = spec.get("elements", "str")
        for index, item in enumerate(value):
            at = f"{where}[{index}]"
            if elements == "dict":
                yield from _entry(item, f"{key}[]", at)
            else:
                yield from _check(item, key, {"type": elements}, at, fmt or format_of(f"{key}[]"))
        return
    if kind == "dict":
        if not isinstance(value, dict):
            yield where, f"expected a mapping (got {_show(value)})"
            return
        yield from _entry(value, key, where)


def _entry(value: Any, key: str, where: str) -> Iterator[tuple[str, str]]:
    """A mapping whose keys have formats `key.name`, `key.*`, lists `key.name[]`/`key.*[]`."""
    if _templated(value) or _vault(value):
        yield from _check(value, key, {"type": "str"}, where, format_of(f"{key}.*"))
        return
    if not isinstance(value, dict):
        yield where, f"expected a mapping (got {_show(value)})"
        return
    for name, item in value.items():
        for pattern in (f"{key}.{name}", f"{key}.*"):
            if format_of(f"{pattern}[]"):
                yield from _check(item, pattern, {"type": "list"}, f"{where}.{name}", format_of(f"{pattern}[]"))
                break
            if fmt := format_of(pattern):
                if isinstance(item, bool | int) and fmt.kind in (WORD, PERCENT):
                    break  # numbers and switches in settings mappings are plain YAML scalars
                yield from _check(item, pattern, {"type": "str"}, f"{where}.{name}", fmt)
                break


def _string(text: str, fmt: Format, where: str) -> Iterator[tuple[str, str]]:
    if why := format_problem(fmt.kind, text):
        yield where, why


# --- per host ------------------------------------------------------------------------------------


def _effective(variables: Mapping[str, Any], role_var: str, api_var: str, default: Any) -> Any:
    """What a role reads: its own variable when the inventory sets it, else the inventory API's."""
    if role_var in variables:
        return variables[role_var]
    return variables.get(api_var, default)


def _host_problems(name: str, variables: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    if not HOSTNAME_CHARS.match(name) or _templated(name):
        yield "(host name)", "host name must be ASCII letters, digits, '.', '_' or '-' (no shell or template syntax)"
    for var, value in sorted(variables.items()):
        if var == "group_names":
            continue
        newlines = (format_of(spec_of(var)[0]) if spec_of(var) else None) or Format(TEXT)
        for where, text in _strings(value, var):
            if why := _bad_char(text, newlines=newlines.kind in (MULTILINE, PEM)):
                yield where, f"{why} in a value (a value must stay on its line)"
                break
        found = spec_of(var)
        if found:
            key, spec = found
            yield from _check(value, key, spec, var, format_of(key))
        elif var.startswith("ansible_") and _templated(value):
            yield var, "template syntax in a connection variable"
        elif var.startswith(ROLE_PREFIXES) and var not in role_defaults():
            yield var, "not a variable of any cityward role (a misspelt option is silently ignored)"
    yield from _access(variables)


def _access(v: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """What the accounts and ssh preflights refuse, refused before any host is touched."""
    connection = v.get("ansible_connection", "ssh")
    user = v.get("ansible_user")
    for var in ("ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_ssh_args"):
        if isinstance(v.get(var), str) and _SSH_COMMANDS.search(v[var]):
            yield var, "an ssh option that runs a command on the controller is not accepted"
    operators = _effective(v, "accounts_operators", "cityward_operators", [])
    automation = _effective(v, "accounts_automation_user", "cityward_automation_user", "")
    breakglass = _effective(v, "accounts_breakglass_user", "cityward_breakglass_user", "breakglass")
    hash_var = "accounts_breakglass_password_hash" if "accounts_breakglass_password_hash" in v \
        else "cityward_breakglass_password_hash"
    if breakglass in ("", None):
        yield "cityward_breakglass_user", "no break-glass account: the console must stay usable if SSH or MFA fails"
    hashed = v.get(hash_var)
    if isinstance(hashed, str) and not _templated(hashed) and not _CRYPT.match(hashed):
        yield hash_var, "not a yescrypt hash (make it with `mkpasswd -m yescrypt`, keep it in ansible-vault; CW-ACC-02)"
    seeds_var = "mfa_totp_secrets" if "mfa_totp_secrets" in v else "cityward_totp_secrets"
    seeds = v.get(seeds_var)
    for name, seed in seeds.items() if isinstance(seeds, dict) else ():
        # Named, never shown: the value is a secret.
        if not _vault(seed) and not _templated(seed) and not (isinstance(seed, str) and _TOTP_SEED.match(seed)):
            yield f"{seeds_var}.{name}", ("not a base32 TOTP seed of at least 16 characters (A-Z, 2-7): "
                                          "that operator would be locked out at the next login")
    names: list[str] = []
    field = "accounts_operators" if "accounts_operators" in v else "cityward_operators"
    for index, entry in enumerate(operators if isinstance(operators, list) else []):
        if not isinstance(entry, dict):
            continue
        label = f"{field}[{index}]"
        keys = entry.get("ssh_keys")
        if "name" not in entry:
            yield f"{label}.name", "required field missing"
        if not keys:
            yield f"{label}.ssh_keys", "an operator needs at least one SSH public key"
        for unknown in sorted(set(entry) - {"name", "ssh_keys", "mfa"}):
            yield f"{label}.{unknown}", "unknown key (an operator has name, ssh_keys, mfa)"
        if isinstance(entry.get("name"), str):
            if entry["name"] in names:
                yield f"{label}.name", f"operator '{entry['name']}' is listed twice"
            names.append(entry["name"])
            if isinstance(automation, str) and automation and entry["name"] == automation:
                yield f"{label}.name", f"'{automation}' is the automation user: it must not also be an operator"
            if entry["name"] == breakglass:
                yield f"{label}.name", f"'{breakglass}' is the break-glass account: it must not also be an operator"
    if user == "root" and connection in ("ssh", "paramiko", "smart"):
        yield "ansible_user", "root cannot log in over SSH once hardened: connect as the automation user or an operator"
    elif isinstance(user, str) and connection in ("ssh", "paramiko", "smart") and operators != [] \
            and not _templated(operators) and user != automation and user not in names:
        yield "ansible_user", f"'{user}' is neither the automation user nor an operator: it would be locked out"


# --- across hosts --------------------------------------------------------------------------------


def _zone_group(group: str) -> str | None:
    return group.removeprefix("zone_").replace("_", "-") if group.startswith("zone_") else None


def _zone_problems(name: str, v: Mapping[str, Any], groups: list[str], zones: ZonesPolicy | None
                   ) -> Iterator[tuple[str, str]]:
    zone_groups = [g for g in groups if _zone_group(g)]
    zone = v.get("cityward_zone")
    if len(zone_groups) > 1:
        yield "cityward_zone", f"host is in more than one zone group ({', '.join(zone_groups)}): a host has one zone"
    elif zone_groups and isinstance(zone, str) and _zone_group(zone_groups[0]) != zone:
        yield "cityward_zone", (f"'{zone}' contradicts its zone group {zone_groups[0]}: move the host to the "
                                "group of its zone instead of overriding it")
    if zones is None or not isinstance(zone, str) or zone not in zones.zones:
        return
    address = _ip(str(v.get("ansible_host", "")))
    if address is None or address.is_loopback or v.get("ansible_connection") in LOCAL_CONNECTIONS:
        return
    # The controller may reach a host on its own zone's address or on a management interface; an
    # address of another zone contradicts the host's zone, and a public one is never an OT host's.
    # A private address outside every zone (a NAT, a container bridge) cannot be judged here.
    cidr = zones.cidr_of(zone)
    if address.version == cidr.version and address in cidr:
        return
    other = next((z for z in zones.zones.values() if address.version == z.cidr.version and address in z.cidr), None)
    if other is not None and other.kind != "management":
        yield "ansible_host", (f"address {address} is outside zone '{zone}' ({cidr}): it is in zone "
                               f"'{other.name}' ({other.cidr})")
    elif other is None and address.is_global:
        yield "ansible_host", f"address {address} is outside zone '{zone}' ({cidr}) and public"


def _service_problems(v: Mapping[str, Any], zones: ZonesPolicy) -> Iterator[tuple[str, str]]:
    var = "firewall_service_hosts" if "firewall_service_hosts" in v else "cityward_service_hosts"
    hosts = v.get(var)
    if not isinstance(hosts, dict):
        return
    for service, addresses in hosts.items():
        targets = [zones.cidr_of(c.to) for c in zones.conduits if c.service == service and c.to != "internet"]
        if not targets:
            yield f"{var}.{service}", "no conduit of the zones policy names this service"
            continue
        for index, text in enumerate(addresses if isinstance(addresses, list) else []):
            try:
                net = ipaddress.ip_network(str(text), strict=True)
            except ValueError:
                continue  # the format check names it
            if not any(net.version == t.version and net.subnet_of(t) for t in targets):
                yield f"{var}.{service}[{index}]", (f"{text} lies in no zone the service '{service}' reaches "
                                                    f"({', '.join(map(str, targets))})")


def _backup_problems(v: Mapping[str, Any], inventory: Mapping[str, Mapping[str, Any]] | None,
                     zones: ZonesPolicy | None) -> Iterator[tuple[str, str]]:
    """CW-RES-02: the backup server a host names is a host of the management zone its zone may reach
    on the backup port, and the retention keeps something. `inventory`: every host's variables (a
    --limit run checks fewer hosts, not fewer servers); None for a slice, whose server may be
    another slice's host (the unsliced check judges it)."""
    var = "backup_server" if "backup_server" in v else "cityward_backup_server"
    server = v.get(var)
    if not isinstance(server, str) or not server or _templated(server):
        return
    if inventory is None or server not in inventory:
        if inventory is not None:
            yield var, f"{server} is not a host of this inventory"
        return
    server_zone = str(inventory[server].get("cityward_zone", ""))
    if zones is not None:
        kind = zones.zones[server_zone].kind if server_zone in zones.zones else "none"
        if kind != "management":
            yield var, (f"{server} is in zone {server_zone or '(none)'} (kind {kind}): a backup repository must be "
                        "in a zone of kind management")
            return
        # The port the server's own variables give it, else the host's (as the role reads them).
        keys = ("backup_server_port", "cityward_backup_port")
        port = next((where[key] for where in (inventory[server], v) for key in keys if key in where), 2222)
        zone = str(v.get("cityward_zone", ""))
        if zone and zone != server_zone and not any(
                c.from_ == zone and c.to == server_zone and c.protocol == "tcp" and str(c.port) == str(port)
                for c in zones.conduits):
            yield var, (f"the zones policy has no conduit from {zone} to {server_zone} on tcp/{port} "
                        "(service borg-backup): the backups could not reach it")
    retention = v.get("backup_retention")
    if isinstance(retention, dict):
        for key, least in (("daily", 1), ("weekly", 0), ("monthly", 0)):
            value = retention.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                yield f"backup_retention.{key}", (f"{_show(value)} must be a whole number >= {least}"
                                                  + (" (a retention of zero keeps no backup)" if least else ""))


def _endpoint(v: Mapping[str, Any], name: str) -> tuple[str, str] | None:
    if v.get("ansible_connection") == "local":
        return None
    host = v.get("ansible_host", name)
    return (str(host).lower(), str(v.get("ansible_port", 22))) if isinstance(host, str) else None


# --- records and dates ---------------------------------------------------------------------------


def records_problem(dirs: list[Path], relative: Any) -> str:
    """'' when `relative` names a file inside the inventory's records/ folder, else why not."""
    if not isinstance(relative, str) or not relative:
        return ""
    path = Path(relative)
    if path.is_absolute():
        return f"absolute path {_show(relative)}: give a path inside the inventory's records/ folder"
    if ".." in path.parts or path.parts[0] != "records":
        return f"{_show(relative)} is not inside the inventory's records/ folder"
    for base in dirs:
        if (base / path).exists() or (base / path).is_symlink():
            records = (base / "records").resolve()
            if not (base / path).resolve().is_relative_to(records):
                return f"{_show(relative)} leaves the records/ folder (a symbolic link out of it)"
            return ""
    return ""


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _record_problems(v: Mapping[str, Any], dirs: list[Path] | None, today: date) -> Iterator[tuple[str, str]]:
    device, city = v.get("cityward_device"), v.get("cityward_city")
    device = device if isinstance(device, dict) else {}
    runbook = device.get("runbook") if isinstance(device.get("runbook"), dict) else {}
    review = device.get("risk_review") if isinstance(device.get("risk_review"), dict) else {}
    paths = {"cityward_device.runbook.path": runbook.get("path")}
    if isinstance(city, dict):
        for key in ("incident_contacts_file", "vendor_requirements_file"):
            paths[f"cityward_city.{key}"] = city.get(key)
    for where, relative in paths.items():
        if dirs and (why := records_problem(dirs, relative)):
            yield where, why
    for where, value in (("cityward_device.training_last_completed", device.get("training_last_completed")),
                         ("cityward_device.runbook.last_exercised", runbook.get("last_exercised")),
                         ("cityward_device.risk_review.date", review.get("date"))):
        when = _date(value)
        if when and when > today:
            yield where, f"{when} is in the future (it records when something happened)"


# --- the gate ------------------------------------------------------------------------------------


def host_variable_problems(label: str, hostvars_by_host: Mapping[str, Mapping[str, Any]],
                           zones: ZonesPolicy | None, *, groups: Mapping[str, list[str]] | None = None,
                           dirs: list[Path] | None = None, today: date | None = None,
                           inventory: Mapping[str, Mapping[str, Any]] | None | bool = True) -> list[Problem]:
    """Every problem of the hosts' variables, one Problem each (file=label, host, field).
    `inventory`: every host's variables when `hostvars_by_host` is a --limit of them (True: they are
    all; None: a slice, whose other hosts are not known)."""
    others = hostvars_by_host if inventory is True else inventory
    today = today or date.today()
    problems: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    if zones is not None and not zones.management_cidrs():
        problems.append(Problem("the zones policy has no management zone (kind: management): SSH and "
                                "automation would be reachable from nowhere", file=label, field="cityward_zones_file"))
    for name in sorted(hostvars_by_host):
        v = plain(dict(hostvars_by_host[name]))
        host_groups = list((groups or {}).get(name) or v.get("group_names") or [])
        found = list(_host_problems(name, v))
        found += _zone_problems(name, v, host_groups, zones)
        if zones is not None:
            found += _service_problems(v, zones)
            found += judge_sources(zones, v, today)[0]  # wider than the management zone, unwaived
        found += _record_problems(v, dirs, today)
        found += _backup_problems(v, others, zones)
        endpoint = _endpoint(v, name)
        if endpoint and endpoint in seen:
            found.append(("ansible_host", f"{endpoint[0]} port {endpoint[1]} is also the address of host "
                                          f"{seen[endpoint]}: two hosts cannot share one"))
        elif endpoint:
            seen[endpoint] = name
        problems += [Problem(message, file=label, host=name, field=where) for where, message in found]
    return problems
