"""Host firewall controls (role firewall), read from the kernel's live ruleset (`nft -j list ruleset`)
and compared with the ruleset the role recorded it rendered (/etc/ansible/facts.d/cityward_firewall.fact:
zone, management sources, SSH port, conduits in and out, DNS resolvers). Read-only: never changes the host."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from cityward.checks.applied import applied
from cityward.checks.outcomes import not_applicable

TABLE = "cityward"
ICMP_ERRORS = {"destination-unreachable", "time-exceeded", "parameter-problem", "packet-too-big"}
NEIGHBOUR = {"nd-router-advert", "nd-router-solicit", "nd-neighbor-solicit", "nd-neighbor-advert"}


@dataclass(frozen=True)
class Rule:
    """One rule, reduced to what a firewall decision depends on."""

    verdict: str | None
    address: frozenset | None = None  # the saddr (input) or daddr (output) networks, None: any
    proto: str | None = None
    port: int | None = None
    sport: int | None = None  # only sshd's replies to management (CW-FW-04)
    loopback: bool = False
    states: frozenset = frozenset()
    icmp: frozenset = frozenset()
    other: bool = False  # a match this reading does not understand
    log: str | None = None  # the prefix of a log statement

    @property
    def infrastructure(self) -> bool:
        """Loopback, replies to allowed flows, ICMP errors and neighbour discovery."""
        if self.other or self.port is not None:
            return False
        return (self.loopback or (self.states and self.states <= {"established", "related"})
                or bool(self.icmp and self.icmp <= ICMP_ERRORS | NEIGHBOUR))


def _networks(value, sets) -> frozenset | None:
    if isinstance(value, str) and value.startswith("@"):
        return sets[value[1:]]
    values = value["set"] if isinstance(value, dict) and "set" in value else [value]
    result = set()
    for item in values:
        if isinstance(item, dict) and "prefix" in item:
            result.add(ipaddress.ip_network(f"{item['prefix']['addr']}/{item['prefix']['len']}"))
        elif isinstance(item, dict) and "range" in item:
            return None  # not something the role renders
        else:
            result.add(ipaddress.ip_network(str(item)))
    return frozenset(result)


def _rule(expr, sets) -> Rule:
    fields: dict = {"verdict": None}
    for e in expr:
        for verdict in ("accept", "drop", "reject"):
            if verdict in e:
                fields["verdict"] = verdict
        if isinstance(e.get("log"), dict):
            fields["log"] = e["log"].get("prefix")
        match = e.get("match")
        if not match:
            if not any(k in e for k in ("accept", "drop", "reject", "limit", "log", "counter")):
                fields["other"] = True
            continue
        left, right = match["left"], match["right"]
        if "payload" in left:
            protocol, field = left["payload"]["protocol"], left["payload"]["field"]
            if protocol in ("ip", "ip6") and field in ("saddr", "daddr"):
                fields["address"] = _networks(right, sets)
            elif field == "dport" and isinstance(right, int):
                fields["proto"], fields["port"] = protocol, right
            elif field == "sport" and isinstance(right, int):
                fields["proto"], fields["sport"] = protocol, right
            elif protocol in ("icmp", "icmpv6") and field == "type":
                fields["icmp"] = frozenset(right["set"] if isinstance(right, dict) else [right])
            else:
                fields["other"] = True
        elif "meta" in left and left["meta"]["key"] in ("iif", "oif", "iifname", "oifname") and right == "lo":
            fields["loopback"] = True
        elif "ct" in left and left["ct"]["key"] == "state":
            fields["states"] = frozenset(right if isinstance(right, list) else [right])
        else:
            fields["other"] = True
    return Rule(**fields)


@dataclass
class Ruleset:
    chains: dict
    rules: dict

    @classmethod
    def parse(cls, document: dict) -> Ruleset:
        items = document["nftables"]
        sets = {}
        for item in items:
            if "set" in item and item["set"]["table"] == TABLE:
                elems = item["set"].get("elem", [])
                sets[item["set"]["name"]] = _networks({"set": elems}, {}) if elems else frozenset()
        chains = {i["chain"]["name"]: i["chain"] for i in items
                  if "chain" in i and i["chain"]["table"] == TABLE and i["chain"]["family"] == "inet"}
        rules: dict[str, list[Rule]] = {name: [] for name in chains}
        for item in items:
            if "rule" in item and item["rule"]["table"] == TABLE and item["rule"]["chain"] in rules:
                rules[item["rule"]["chain"]].append(_rule(item["rule"]["expr"], sets))
        return cls(chains, rules)

    def flows(self, chain: str) -> set[tuple]:
        """(networks, protocol, port) of every accept rule with a destination port."""
        return {(r.address, r.proto, r.port) for r in self.rules[chain] if r.verdict == "accept" and r.port}


def _net(address: str) -> frozenset:
    return frozenset({ipaddress.ip_network(address)})


@dataclass(frozen=True)
class Expected:
    """The ruleset the firewall role recorded it rendered, as the flows a live ruleset must hold."""

    zone: str
    kind: str
    ssh_port: int
    management: tuple  # one frozenset of networks per address family the role opened SSH to
    controller: frozenset | None  # the controller's own address, kept open on SSH during a run
    inbound: frozenset  # (networks or None for any, protocol, port) accepted into the host
    egress_limited: bool
    outbound: frozenset  # (networks or None for any, protocol, port) accepted out, where egress is limited
    forward_policy: str
    log_dropped: bool

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Expected:
        """From the settings of cityward_firewall.fact; KeyError, TypeError or ValueError when the
        record lacks a field or holds one the role never writes."""
        port = record["ssh_port"]
        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"ssh_port is {port!r}, not a port number")
        sources = [ipaddress.ip_network(s) for s in record["management_sources"]]
        management = tuple(frozenset(n for n in sources if n.version == v) for v in (4, 6)
                           if any(n.version == v for n in sources))
        controller = _net(record["controller"]) if record["controller"] else None
        ssh = {(networks, "tcp", port) for networks in management + ((controller,) if controller else ())}
        inbound = {(_net(c["source"]) if c["source"] else None, c["protocol"], int(c["port"]))
                   for c in record["inbound"]}
        outbound = {(frozenset(ipaddress.ip_network(d) for d in c["destinations"]) or None, c["protocol"],
                     int(c["port"])) for c in record["outbound"]}
        outbound |= {(_net(r), protocol, 53) for r in record["dns_resolvers"] for protocol in ("udp", "tcp")}
        return cls(zone=str(record["zone"]), kind=str(record["zone_kind"]), ssh_port=port, management=management,
                   controller=controller, inbound=frozenset(inbound | ssh),
                   egress_limited=bool(record["egress_limited"]), outbound=frozenset(outbound),
                   forward_policy=str(record["forward_policy"]), log_dropped=bool(record["log_dropped"]))

    @property
    def ssh_peers(self) -> tuple:
        """The address sets sshd may answer without connection tracking: management and the controller."""
        return self.management + ((self.controller,) if self.controller else ())


def _shown(flows) -> list[str]:
    """Flows as sorted, readable strings for an assertion message."""
    return sorted(f"{'any' if n is None else ','.join(sorted(map(str, n)))} {proto}/{port}" for n, proto, port in flows)


@pytest.fixture(scope="module")
def zoned(hostvars):
    # Which hosts the firewall role manages is the inventory's to say (site.yml runs it on every
    # host, which then needs a zone); what it applied there is the record's.
    if not (hostvars.get("firewall_zone") or hostvars.get("cityward_zone")):
        not_applicable("not applicable: the host has no cityward_zone or firewall_zone (the firewall role does not "
                       "manage it)")
    return True


@pytest.fixture(scope="module")
def applied_firewall(host, zoned):
    return applied(host, "firewall")


@pytest.fixture(scope="module")
def expected(applied_firewall) -> Expected:
    try:
        return Expected.from_record(applied_firewall)
    except (KeyError, TypeError, ValueError) as exc:
        pytest.fail(f"evidence missing: /etc/ansible/facts.d/cityward_firewall.fact does not hold the ruleset "
                    f"the firewall role records ({type(exc).__name__}: {exc}): re-apply the role", pytrace=False)


@pytest.fixture(scope="module")
def live(host, zoned):
    result = host.run("nft -j list ruleset")
    assert result.rc == 0, f"cannot read the ruleset: {result.stderr}"
    ruleset = Ruleset.parse(json.loads(result.stdout))
    assert {"input", "forward", "output"} <= set(ruleset.chains), "no table inet cityward with its three chains"
    return ruleset


def _ssh_reply(rule: Rule, peers: tuple, ssh_port: int) -> bool:
    """sshd's replies to the management sources or to the controller's own address."""
    if (rule.verdict, rule.proto, rule.sport, rule.port, rule.other) != ("accept", "tcp", ssh_port, None, False):
        return False
    return rule.address in peers


def _compare_flows(accepted: set, wanted: frozenset, where: str, expected: Expected) -> None:
    __tracebackhide__ = True
    missing, extra = wanted - accepted, accepted - wanted
    assert not (missing or extra), (
        f"{where} differ from those the firewall role applied (zone {expected.zone}): "
        f"expected {_shown(missing)} not found; found {_shown(extra)} not expected")


def _drop_log(rules: list[Rule], prefix: str, expected: Expected, where: str) -> None:
    __tracebackhide__ = True
    found = any(r.log == prefix for r in rules)
    assert found == expected.log_dropped, (
        f"{where}: expected {'a' if expected.log_dropped else 'no'} log of dropped packets (prefix {prefix!r}, "
        f"log_dropped {expected.log_dropped} applied by the firewall role), found {'one' if found else 'none'}")


@pytest.mark.control("CW-FW-01", "CW-FW-02")
def test_input_is_default_deny_and_opens_only_the_conduits_into_the_zone(live, expected):
    chain = live.chains["input"]
    assert (chain["hook"], chain["policy"]) == ("input", "drop"), f"input chain: expected policy drop, found {chain}"
    forward = live.chains["forward"]["policy"]
    assert forward == expected.forward_policy, (
        f"forward chain: expected policy {expected.forward_policy!r} (applied by the firewall role), found {forward!r}")
    # The conduits into the zone, management SSH and the controller's address: exactly those.
    _compare_flows(live.flows("input"), expected.inbound, "input accept rules", expected)
    echo = next((m for m in expected.management if next(iter(m)).version == 4), None)  # ping from management_v4
    unexplained = [r for r in live.rules["input"] if r.verdict == "accept" and not r.port and not r.infrastructure
                   and not (r.icmp == {"echo-request"} and r.address == echo)]
    assert not unexplained, f"input accept rules that open more than replies, loopback and ICMP: {unexplained}"
    _drop_log(live.rules["input"], "cityward-drop-in: ", expected, "input chain")


@pytest.mark.control("CW-FW-03")
def test_ot_egress_is_limited_to_the_zones_conduits(live, expected):
    if not expected.egress_limited:
        not_applicable(f"not applicable: zone {expected.zone} is {expected.kind}; only OT zones limit egress")
    policy = live.chains["output"]["policy"]
    assert policy == "drop", f"output chain of OT zone {expected.zone}: expected policy drop, found {policy!r}"
    # The conduits out of the zone and DNS to the resolvers the role applied: exactly those.
    _compare_flows(live.flows("output"), expected.outbound, "output accept rules", expected)
    unexplained = [r for r in live.rules["output"] if r.verdict == "accept" and not r.port and not r.infrastructure
                   and not _ssh_reply(r, expected.ssh_peers, expected.ssh_port)]
    assert not unexplained, f"egress accept rules beyond replies, loopback and ICMP: {unexplained}"
    _drop_log(live.rules["output"], "cityward-drop-out: ", expected, "output chain")


def _early_drops(rules: list[Rule], index: int) -> list[Rule]:
    """Drops before rule `index` other than of invalid packets (never a flow's first packet)."""
    return [r for r in rules[:index] if r.verdict in ("drop", "reject") and r.states != {"invalid"}]


@pytest.mark.control("CW-FW-04")
def test_management_ssh_is_accepted_before_anything_is_dropped(live, expected):
    rules = live.rules["input"]
    assert expected.management, "the record names no management source: the role refuses such a ruleset"
    for management in expected.management:
        shown = sorted(map(str, management))
        index = next((i for i, r in enumerate(rules) if r.verdict == "accept"
                      and (r.proto, r.port) == ("tcp", expected.ssh_port) and r.address == management), None)
        assert index is not None, (f"expected a rule accepting tcp/{expected.ssh_port} from {shown} (applied by the "
                                   f"firewall role), found none")
        early = _early_drops(rules, index)
        assert not early, f"SSH from {shown} is dropped before it is accepted: {early}"


@pytest.mark.control("CW-FW-04")
def test_management_ssh_replies_leave_an_egress_limited_host(live, expected):
    """Without connection tracking: it starts with the first ruleset, so the session of the run that
    loads it is first seen on one of sshd's outgoing packets, as new, and would hang on the drop policy."""
    if not expected.egress_limited:
        not_applicable(f"not applicable: zone {expected.zone} is {expected.kind}; its egress is not limited")
    rules = live.rules["output"]
    for management in expected.management:
        shown = sorted(map(str, management))
        index = next((i for i, r in enumerate(rules)
                      if _ssh_reply(r, (management,), expected.ssh_port)), None)
        assert index is not None, (f"expected an output rule accepting sshd's replies (tcp sport {expected.ssh_port}) "
                                   f"to {shown} (applied by the firewall role), found none")
        early = _early_drops(rules, index)
        assert not early, f"sshd's replies to {shown} are dropped before they are accepted: {early}"


@pytest.mark.control("CW-FW-02", "CW-FW-04")
def test_the_ruleset_is_persisted_and_loaded_at_boot(host, zoned):
    config = host.file("/etc/nftables.conf")
    assert config.user == "root" and config.mode == 0o600
    body = [line for line in config.content_string.splitlines() if line.strip() and not line.startswith("#")]
    assert body[0] == "flush ruleset", "the file must replace the whole ruleset in one transaction"
    assert host.service("nftables").is_enabled
    check = host.run("nft -c -f /etc/nftables.conf")
    assert check.rc == 0, check.stderr


@pytest.mark.control("CW-FW-05")
def test_the_host_is_not_left_isolated(host, zoned):
    tables = host.run("nft list tables")
    assert tables.rc == 0
    assert "cityward_isolation" not in tables.stdout, (
        "the host is isolated (playbooks/isolate.yml): run playbooks/restore.yml once the incident is closed")
