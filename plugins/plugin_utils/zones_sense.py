"""Policy sense: a well-formed zones policy that is still dangerous is refused (issue 23).

Four rules, each waivable only by an explicit, reasoned, dated exception in the policy:

- `ot-protocol`: a conduit from an it, dmz or internet zone into an OT zone carrying an OT control
  protocol, known by its service name or by its well-known port whatever the service is called;
- `admin-service`: a conduit opening an interactive administration service (by name on any port,
  or by well-known port) from an it, dmz or internet zone: only management administers hosts;
- `public-cidr`: a zone whose CIDR is not inside the private, shared or unique-local ranges;
- `wide-source`: a host's management or automation source wider than the management zone
  (judged per host by `source_problems`, as the sources live in the inventory).

The lists below are the documented ones (docs/adopt.md, "Policy sense"); keep both in step.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, NamedTuple

from ansible_collections.cityward.hardening.plugins.plugin_utils.text import breaking_character
from ansible_collections.cityward.hardening.plugins.plugin_utils.unwrap import plain
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

RULES = ("ot-protocol", "admin-service", "public-cidr", "wide-source")
Rule = Literal["ot-protocol", "admin-service", "public-cidr", "wide-source"]

# Zones (and the internet pseudo-zone) that must not reach into OT control or host administration.
UNTRUSTED_KINDS = ("it", "dmz", "internet")

# Ports that give an interactive administrative shell: refused from every zone but management.
ADMIN_PORTS = {22: "SSH", 3389: "RDP"}

# An exception is a decision to revisit: it may not be approved for longer than this.
MAX_EXCEPTION_DAYS = 3 * 366


class KnownService(NamedTuple):
    label: str
    names: tuple[str, ...]  # service-name spellings, compared without '-' (see service_tokens)
    ports: tuple[str, ...]  # "tcp/502"


OT_PROTOCOLS: tuple[KnownService, ...] = (
    KnownService("Modbus/TCP", ("modbus", "modbus-tcp", "mbap"), ("tcp/502", "tcp/802")),
    KnownService("DNP3", ("dnp3", "dnp"), ("tcp/20000", "udp/20000", "tcp/19999")),
    KnownService("OPC UA", ("opc-ua", "opcua"), ("tcp/4840", "tcp/4843")),
    KnownService("BACnet/IP", ("bacnet", "bacnet-ip"), ("udp/47808",)),
    KnownService("IEC 60870-5-104", ("iec-104", "iec-60870-5-104", "iec-60870"), ("tcp/2404", "tcp/19998")),
    KnownService("EtherNet/IP (CIP)", ("ethernet-ip", "enip", "cip"), ("tcp/44818", "udp/44818", "udp/2222")),
    # tcp/102 (ISO-TSAP) carries S7comm, IEC 61850 MMS and ICCP (TASE.2) alike.
    KnownService("S7comm / IEC 61850 MMS / ICCP (ISO-TSAP)",
                 ("s7", "s7comm", "s7comm-plus", "iso-tsap", "iec-61850", "iec-61850-mms", "mms", "iccp", "tase2"),
                 ("tcp/102",)),
    KnownService("PROFINET", ("profinet", "pn-io"), ("udp/34962", "udp/34963", "udp/34964")),
    KnownService("HART-IP", ("hart-ip", "hart"), ("tcp/5094", "udp/5094")),
    KnownService("OMRON FINS", ("fins", "omron-fins"), ("udp/9600", "tcp/9600")),
    KnownService("GE SRTP", ("srtp", "ge-srtp"), ("tcp/18245", "tcp/18246")),
    KnownService("KNXnet/IP", ("knx", "knxnet-ip"), ("udp/3671",)),
    KnownService("Niagara Fox", ("fox", "niagara-fox"), ("tcp/1911", "tcp/4911")),
)

ADMIN_SERVICES: tuple[KnownService, ...] = (
    KnownService("SSH, NETCONF over SSH", ("ssh", "sshd", "sftp", "scp", "netconf"), ("tcp/22", "tcp/830")),
    KnownService("Telnet", ("telnet",), ("tcp/23",)),
    KnownService("RDP", ("rdp", "ms-wbt-server", "terminal-services"), ("tcp/3389", "udp/3389")),
    KnownService("VNC", ("vnc", "rfb"), tuple(f"tcp/{p}" for p in range(5900, 5910))),
    KnownService("WinRM", ("winrm", "wsman", "ps-remoting"), ("tcp/5985", "tcp/5986")),
    KnownService("r-commands", ("rsh", "rlogin", "rexec"), ("tcp/512", "tcp/513", "tcp/514")),
    KnownService("X11", ("x11",), ("tcp/6000",)),
    KnownService("IPMI", ("ipmi", "rmcp"), ("udp/623",)),
    KnownService("remote desktop tools", ("teamviewer", "anydesk"), ("tcp/5938",)),
)

PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
    "100.64.0.0/10",  # RFC 6598 shared address space (carrier-grade NAT)
    "fc00::/7",  # RFC 4193 unique local addresses
))

# The host variables that admit management or automation SSH (roles' inventory API and role vars).
SOURCE_VARIABLES = ("cityward_management_sources", "cityward_automation_sources", "firewall_management_sources",
                    "ssh_automation_sources", "accounts_automation_sources")


def service_tokens(service: str) -> set[str]:
    """Every run of consecutive '-'-separated words of a service name, joined without '-':
    'plant-opc-ua' -> {plant, opc, ua, plantopc, opcua, plantopcua}; names match whole words only."""
    words = service.lower().split("-")
    return {"".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}


def identify(service: str, protocol: str, port: int,
             catalogue: tuple[KnownService, ...]) -> tuple[KnownService, str] | None:
    """(known service, conduit field that gave it away: 'service' or 'port'), or None."""
    tokens = service_tokens(service)
    for known in catalogue:
        if any(name.replace("-", "") in tokens for name in known.names):
            return known, "service"
    for known in catalogue:
        if f"{protocol}/{port}" in known.ports:
            return known, "port"
    return None


def is_private(cidr: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return any(cidr.version == n.version and cidr.subnet_of(n) for n in PRIVATE_NETWORKS)


# --- exceptions ------------------------------------------------------------------------------


def _iso_date(value: Any) -> datetime.date:
    # YAML gives a date; JSON (a policy through Ansible) an ISO string. Nothing else (no timestamps).
    if isinstance(value, datetime.datetime):
        raise ValueError("expected a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"not a real date ({exc})") from None
    raise ValueError("expected a date (YYYY-MM-DD)")


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str):
        raise ValueError("expected an address or CIDR string")
    try:
        return ipaddress.ip_network(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def one_line(value: Any) -> Any:
    """Free text of the policy is printed in one-line problems, the audit and cloud tags: no control
    characters (newlines included)."""
    if isinstance(value, str) and breaking_character(value):
        raise ValueError("must be one line of text, without control characters")
    return value


def _not_blank(value: Any) -> Any:
    if isinstance(value, str) and value and not value.strip():
        raise ValueError("must not be blank")
    return one_line(value)


Text = Annotated[str, Field(min_length=3, max_length=500), BeforeValidator(_not_blank)]


class PolicyException(BaseModel):
    """One knowingly kept departure from a rule: `rule`, the `conduit` (its label
    'from->to:proto/port'), `zone` or `source` (a CIDR) it applies to, and who approved it, why
    and until when. An expired exception waives nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: Rule
    conduit: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,40}->[a-z0-9-]{1,40}:(tcp|udp)/[0-9]{1,5}$")] | None = None
    zone: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,40}$")] | None = None
    source: Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network | None, BeforeValidator(
        lambda v: None if v is None else _network(v))] = None
    reason: Text
    approved_by: Text
    expires: Annotated[datetime.date, BeforeValidator(_iso_date)]

    @model_validator(mode="after")
    def _one_target(self) -> PolicyException:
        wanted = {"ot-protocol": "conduit", "admin-service": "conduit", "public-cidr": "zone",
                  "wide-source": "source"}[self.rule]
        given = [f for f in ("conduit", "zone", "source") if getattr(self, f) is not None]
        if given != [wanted]:
            raise ValueError(f"rule '{self.rule}' is waived for one {wanted}: give '{wanted}' "
                             f"(and no other target), got {', '.join(given) or 'none'}")
        return self

    @property
    def target(self) -> str:
        return str(self.conduit or self.zone or self.source)

    def expired(self, today: datetime.date | None = None) -> bool:
        return self.expires < (today or datetime.date.today())

    def describe(self) -> str:
        """One line for the check output and the audit."""
        return (f"exception to {self.rule} for {self.target}: {self.reason} "
                f"(approved by {self.approved_by}, expires {self.expires.isoformat()})")


class Finding(NamedTuple):
    rule: str
    target: str  # conduit label, zone name or source CIDR, as an exception names it
    entry: str  # "conduit #3 (enterprise->field:502)", "zone 'it'"
    field: str
    message: str


class UsedException(NamedTuple):
    index: int  # position in the policy's `exceptions` list
    exception: PolicyException
    finding: Finding


def exception_errors(policy: Any, today: datetime.date | None = None) -> list[str]:
    """The exceptions themselves: each names a conduit or zone of the policy, expires within
    MAX_EXCEPTION_DAYS, and no two waive the same rule for the same target."""
    today = today or datetime.date.today()
    labels = {c.label for c in policy.conduits}
    errors, seen = [], {}
    for index, exc in enumerate(policy.exceptions):
        entry = f"exception #{index} ({exc.rule} for {exc.target})"
        if exc.conduit is not None and exc.conduit not in labels:
            errors.append(f"{entry}, field 'conduit': no conduit '{exc.conduit}' in the policy "
                          "(name it as from->to:protocol/port)")
        if exc.zone is not None and exc.zone not in policy.zones:
            errors.append(f"{entry}, field 'zone': no zone '{exc.zone}' in the policy")
        if (exc.expires - today).days > MAX_EXCEPTION_DAYS:
            errors.append(f"{entry}, field 'expires': {exc.expires} is more than {MAX_EXCEPTION_DAYS} days "
                          "ahead; an exception is reviewed at least every three years")
        key = (exc.rule, exc.target)
        if key in seen:
            errors.append(f"{entry}, field '(exception)': duplicate of exception #{seen[key]}")
        seen.setdefault(key, index)
    return errors


# --- the rules over a loaded policy ------------------------------------------------------------


def conduit_findings(policy: Any) -> Iterator[Finding]:
    """ot-protocol and admin-service over the conduits, public-cidr over the zones."""
    for index, c in enumerate(policy.conduits):
        entry = f"conduit #{index} ({c.from_}->{c.to}:{c.port})"
        source, dest = policy.kind_of(c.from_), policy.kind_of(c.to)
        if c.protocol == "tcp" and c.port in ADMIN_PORTS and source != "management":
            # The original rule (CW-FW-01): a shell port from any zone but management, OT included.
            yield Finding("admin-service", c.label, entry, "from",
                          f"{ADMIN_PORTS[c.port]} ({c.port}) may only come from a management zone, "
                          f"'{c.from_}' is {source}")
            continue
        if source not in UNTRUSTED_KINDS:
            continue
        where = f"'{c.from_}' is {source}" if source != "internet" else "'internet'"
        if dest == "ot" and (hit := identify(c.service, c.protocol, c.port, OT_PROTOCOLS)):
            yield Finding("ot-protocol", c.label, entry, hit[1],
                          f"{_what(c, hit)} OT control protocol {hit[0].label}: an it, dmz or internet zone "
                          f"must not reach OT control in '{c.to}' ({where})")
        if hit := identify(c.service, c.protocol, c.port, ADMIN_SERVICES):
            yield Finding("admin-service", c.label, entry, hit[1],
                          f"{_what(c, hit)} admin service {hit[0].label}: only a management zone "
                          f"administers hosts ({where})")


def _what(c: Any, hit: tuple[KnownService, str]) -> str:
    if hit[1] == "service":
        return f"service '{c.service}' is"
    return f"{c.protocol}/{c.port} (service '{c.service}') is the port of"


def zone_findings(policy: Any) -> Iterator[Finding]:
    for name, zone in policy.zones.items():
        if not is_private(zone.cidr):
            yield Finding("public-cidr", name, f"zone '{name}'", "cidr",
                          f"{zone.cidr} overlaps public address space; a zone lies inside 10.0.0.0/8, "
                          "172.16.0.0/12, 192.168.0.0/16 (RFC 1918), 100.64.0.0/10 (RFC 6598) or fc00::/7")


def judge(findings: Iterator[Finding], exceptions: list[PolicyException],
          today: datetime.date | None = None) -> tuple[list[Finding], list[UsedException]]:
    """(findings no valid exception waives, exceptions used). A finding whose exception expired
    stays, its message saying so."""
    refused, used = [], []
    for finding in findings:
        match = [(i, e) for i, e in enumerate(exceptions) if e.rule == finding.rule and _covers(e, finding.target)]
        valid = [(i, e) for i, e in match if not e.expired(today)]
        if valid:
            used.append(UsedException(valid[0][0], valid[0][1], finding))
            continue
        note = f"; exception #{match[0][0]} expired on {match[0][1].expires}" if match else ""
        refused.append(Finding(*finding[:4], f"{finding.message}{note} (rule {finding.rule})"))
    return refused, used


def _covers(exc: PolicyException, target: str) -> bool:
    if exc.source is None:
        return exc.target == target
    net = ipaddress.ip_network(target)
    return net.version == exc.source.version and net.subnet_of(exc.source)


def policy_sense(policy: Any, today: datetime.date | None = None) -> tuple[list[str], list[UsedException]]:
    """(error lines 'ENTRY, field 'F': MESSAGE', exceptions used) for a policy that passed its schema."""
    errors = exception_errors(policy, today)
    refused, used = judge([*zone_findings(policy), *conduit_findings(policy)], list(policy.exceptions), today)
    return errors + [f"{f.entry}, field '{f.field}': {f.message}" for f in refused], used


# --- per host: management and automation sources ----------------------------------------------


def source_findings(policy: Any, hostvars: Mapping[str, Any]) -> Iterator[Finding]:
    """wide-source over one host's variables. Entries that are not addresses are left to the
    host-variable schema, which names them."""
    management = [z for z in policy.zones.values() if z.kind == "management"]
    widest = max(management, key=lambda z: z.cidr.num_addresses, default=None)
    limit = widest.cidr.num_addresses if widest else 1
    than = (f"the management zone '{widest.name}' ({widest.cidr}, {limit} addresses)" if widest
            else "a single address (the zones policy has no management zone)")
    for variable in SOURCE_VARIABLES:
        values = plain(hostvars.get(variable))
        if not isinstance(values, list | tuple):
            continue
        for i, value in enumerate(values):
            try:
                net = ipaddress.ip_network(str(plain(value)), strict=False)
            except ValueError:
                continue
            if net.num_addresses > limit:
                yield Finding("wide-source", str(net), variable, f"{variable}[{i}]",
                              f"{net} ({net.num_addresses} addresses) is wider than {than}; "
                              "narrow it or add a wide-source exception to the zones policy")


def judge_sources(policy: Any, hostvars: Mapping[str, Any],
                  today: datetime.date | None = None) -> tuple[list[tuple[str, str]], list[UsedException]]:
    refused, used = judge(source_findings(policy, hostvars), list(policy.exceptions), today)
    return [(f.field, f.message) for f in refused], used


def source_problems(policy: Any, hostvars: Mapping[str, Any]) -> list[tuple[str, str]]:
    """[(field, message)] for one host's management and automation sources wider than the
    management zone that no exception of the policy covers."""
    return judge_sources(policy, hostvars)[0]
