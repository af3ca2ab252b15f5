"""Host firewall controls (role firewall), read from the kernel's live ruleset (`nft -j list ruleset`)
and compared with the zones policy the host's zone belongs to. Read-only: never changes the host."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

import pytest

from cityward.checks.outcomes import not_applicable
from cityward.errors import CitywardError
from cityward.zones import policy_for_hosts

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


def _net(cidr: str) -> frozenset:
    return frozenset({ipaddress.ip_network(cidr)})


@pytest.fixture(scope="module")
def zone(hostvars):
    name = hostvars.get("cityward_zone")
    if not name:
        not_applicable("not applicable: the host has no cityward_zone (the firewall role does not manage it)")
    return name


@pytest.fixture(scope="module")
def expected(hostvars, zone, inventory_path):
    try:
        policy = policy_for_hosts({hostvars["inventory_hostname"]: hostvars}, inventory_path)
    except CitywardError as exc:  # the evidence to judge the ruleset by is missing: say so, no traceback
        pytest.fail(f"evidence missing: {exc}", pytrace=False)
    rules = policy.host_rules(zone, hostvars.get("cityward_service_hosts") or {})
    extra = [s for s in hostvars.get("cityward_management_sources") or [] if ":" not in str(s)]
    rules["management"] += [str(ipaddress.ip_network(s)) for s in extra]
    return rules


@pytest.fixture(scope="module")
def ssh_port(hostvars):
    return int(hostvars.get("cityward_ssh_port", 22))


@pytest.fixture(scope="module")
def live(host, zone):
    result = host.run("nft -j list ruleset")
    assert result.rc == 0, f"cannot read the ruleset: {result.stderr}"
    ruleset = Ruleset.parse(json.loads(result.stdout))
    assert {"input", "forward", "output"} <= set(ruleset.chains), "no table inet cityward with its three chains"
    return ruleset


def _management(expected) -> frozenset:
    return frozenset(ipaddress.ip_network(c) for c in expected["management"])


def _ssh_reply(rule: Rule, management: frozenset, ssh_port: int) -> bool:
    """sshd's replies to the management zones, or to the controller's own address (one address)."""
    if (rule.verdict, rule.proto, rule.sport, rule.port, rule.other) != ("accept", "tcp", ssh_port, None, False):
        return False
    return rule.address == management or bool(
        rule.address and len(rule.address) == 1 and next(iter(rule.address)).num_addresses == 1)


@pytest.mark.control("CW-FW-01", "CW-FW-02")
def test_input_is_default_deny_and_opens_only_the_conduits_into_the_zone(live, expected, ssh_port):
    chain = live.chains["input"]
    assert (chain["hook"], chain["policy"]) == ("input", "drop")
    assert live.chains["forward"]["policy"] == "drop"
    wanted = {(c["source"] and _net(c["source"]), c["protocol"], c["port"]) for c in expected["inbound"]}
    wanted.add((_management(expected), "tcp", ssh_port))
    accepted = live.flows("input")
    assert wanted <= accepted, f"conduits missing from the live ruleset: {wanted - accepted}"
    # Besides them: only the controller's own address on SSH (CW-FW-04, kept during a run).
    extra = {f for f in accepted - wanted
             if not (f[1:] == ("tcp", ssh_port) and f[0] and len(f[0]) == 1 and next(iter(f[0])).num_addresses == 1)}
    assert not extra, f"accept rules no conduit into zone {expected['zone']} explains: {extra}"
    unexplained = [r for r in live.rules["input"] if r.verdict == "accept" and not r.port and not r.infrastructure
                   and not (r.icmp == {"echo-request"} and r.address == _management(expected))]
    assert not unexplained, f"accept rules that open more than replies, loopback and ICMP: {unexplained}"


@pytest.mark.control("CW-FW-03")
def test_ot_egress_is_limited_to_the_zones_conduits(live, expected, ssh_port):
    if not expected["egress_limited"]:
        not_applicable(f"not applicable: zone {expected['zone']} is {expected['kind']}; only OT zones limit egress")
    assert live.chains["output"]["policy"] == "drop"
    wanted = {(frozenset(ipaddress.ip_network(d) for d in c["destinations"]), c["protocol"], c["port"])
              for c in expected["outbound"]}
    accepted = live.flows("output")
    assert wanted <= accepted, f"egress conduits missing: {wanted - accepted}"
    extra = {f for f in accepted - wanted if f[2] != 53}  # DNS to the configured resolvers
    assert not extra, f"egress no conduit from zone {expected['zone']} explains: {extra}"
    management = _management(expected)
    unexplained = [r for r in live.rules["output"] if r.verdict == "accept" and not r.port and not r.infrastructure
                   and not _ssh_reply(r, management, ssh_port)]
    assert not unexplained, f"egress accept rules beyond replies, loopback and ICMP: {unexplained}"


@pytest.mark.control("CW-FW-04")
def test_management_ssh_is_accepted_before_anything_is_dropped(live, expected, ssh_port):
    rules = live.rules["input"]
    management = _management(expected)
    ssh = ("tcp", ssh_port)
    index = next((i for i, r in enumerate(rules)
                  if r.verdict == "accept" and (r.proto, r.port) == ssh and r.address == management), None)
    assert index is not None, f"no rule accepts SSH from the management zones {sorted(map(str, management))}"
    # Before it, only drops of invalid packets (never a flow's first packet from management).
    early_drops = [r for r in rules[:index] if r.verdict in ("drop", "reject") and r.states != {"invalid"}]
    assert not early_drops, early_drops


@pytest.mark.control("CW-FW-04")
def test_management_ssh_replies_leave_an_egress_limited_host(live, expected, ssh_port):
    """Without connection tracking: it starts with the first ruleset, so the session of the run that
    loads it is first seen on one of sshd's outgoing packets, as new, and would hang on the drop policy."""
    if not expected["egress_limited"]:
        not_applicable(f"not applicable: zone {expected['zone']} is {expected['kind']}; its egress is not limited")
    management = _management(expected)
    rules = live.rules["output"]
    index = next((i for i, r in enumerate(rules) if _ssh_reply(r, management, ssh_port) and r.address == management),
                 None)
    assert index is not None, f"no output rule accepts sshd's replies to {sorted(map(str, management))}"
    early_drops = [r for r in rules[:index] if r.verdict in ("drop", "reject") and r.states != {"invalid"}]
    assert not early_drops, early_drops


@pytest.mark.control("CW-FW-02", "CW-FW-04")
def test_the_ruleset_is_persisted_and_loaded_at_boot(host, zone):
    config = host.file("/etc/nftables.conf")
    assert config.user == "root" and config.mode == 0o600
    body = [line for line in config.content_string.splitlines() if line.strip() and not line.startswith("#")]
    assert body[0] == "flush ruleset", "the file must replace the whole ruleset in one transaction"
    assert host.service("nftables").is_enabled
    check = host.run("nft -c -f /etc/nftables.conf")
    assert check.rc == 0, check.stderr


@pytest.mark.control("CW-FW-05")
def test_the_host_is_not_left_isolated(host, zone):
    tables = host.run("nft list tables")
    assert tables.rc == 0
    assert "cityward_isolation" not in tables.stdout, (
        "the host is isolated (playbooks/isolate.yml): run playbooks/restore.yml once the incident is closed")
