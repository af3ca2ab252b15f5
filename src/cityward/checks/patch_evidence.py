"""Pure rules the patching and update-mirror checks (CW-PATCH-02/05/06/07) apply to what they read from
a host: approved mirror URLs, deb822 sources, OpenPGP fingerprints of a keyring, pending-update age against the
SLA, aptly's publication list, gpgv's status lines and nginx's directory listing. No host access
here, so each rule is unit-tested on its own (tests/unit/test_patching_checks.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ansible_collections.cityward.hardening.plugins.plugin_utils.openpgp import keyring_fingerprints

from cityward.mirrors import Mirror

# --- CW-PATCH-05: approved mirrors and pinned keys -----------------------------------------------


def approved_mirrors(declared: Any) -> list:
    """cityward_update_mirrors as cityward.mirrors.Mirror objects (the rule `cityward check` applies)."""
    if not isinstance(declared, list) or not declared:
        raise ValueError(f"cityward_update_mirrors: expected a non-empty list of mirrors (got {declared!r})")
    mirrors = []
    for index, entry in enumerate(declared):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("url"), str):
            raise ValueError(f"cityward_update_mirrors[{index}].url: missing (run `cityward check` on the inventory)")
        name, url = str(entry.get("name", index)), entry["url"].rstrip("/")
        mirrors.append(Mirror(name, url, entry.get("host"), entry.get("zone")))
    return mirrors


def recorded_mirrors(recorded: Any) -> list:
    """The approved mirrors the patching role recorded ({url: the inventory host running it, or ''
    for an outside archive}) as cityward.mirrors.Mirror objects; ValueError when not that shape."""
    if not isinstance(recorded, Mapping):
        raise ValueError(f"approved_mirrors: expected a mapping of mirror URL to host (got {recorded!r})")
    return [Mirror(url.rstrip("/"), url.rstrip("/"), host or None, None) for url, host in sorted(recorded.items())]


def deb822_stanzas(text: str) -> list[dict[str, str]]:
    """The enabled entries (stanzas with Types) of a deb822 .sources file, field -> value (a
    continued value joined with newlines); comment lines are dropped, as apt does."""
    stanzas = []
    for block in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        last = None
        for line in block.splitlines():
            if line.lstrip().startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and last:
                fields[last] += "\n" + line.strip()
                continue
            key, _, value = line.partition(":")
            last = key.strip()
            fields[last] = value.strip()
        if "Types" in fields and fields.get("Enabled", "yes").strip().lower() not in ("no", "false", "0"):
            stanzas.append(fields)
    return stanzas


def mirrors_for(host: str, mirrors: list) -> list:
    """The mirrors `host` may use: the internal ones; an outside archive only on a host that runs a mirror."""
    runs_one = any(mirror.host == host for mirror in mirrors)
    return [mirror for mirror in mirrors if mirror.host is not None or runs_one]


def unapproved_uris(sources: Iterable[Mapping[str, Any]], mirrors: list) -> list[str]:
    """'file: uri' for every source URI that none of `mirrors` serves."""
    return [f"{source.get('file', '?')}: {uri}" for source in sources for uri in source.get("uris", [])
            if not any(mirror.serves(uri) for mirror in mirrors)]


def openpgp_fingerprints(data: bytes) -> list[str]:
    """Fingerprints (upper-case hex) of the primary keys of a keyring, armored or binary, in order;
    ValueError when it cannot be read (the one OpenPGP reader is the collection's)."""
    return keyring_fingerprints(data)


# --- CW-PATCH-07: pending updates against the SLA --------------------------------------------------


def parse_published(text: str) -> datetime:
    """The fact's ISO 8601 UTC date (2026-12-04T03:54:28Z) as an aware datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def overdue(packages: Iterable[Mapping[str, Any]], sla_days: int, now: datetime) -> list[str]:
    """One line per pending security update published more than `sla_days` ago, or of unknown date."""
    late = []
    for pkg in packages:
        what = f"{pkg.get('name')} {pkg.get('installed')} -> {pkg.get('available')}"
        published = pkg.get("published") or ""
        try:
            when = parse_published(published)
        except ValueError:
            late.append(f"{what}: publication date unknown ({published!r}), not shown within the {sla_days}-day SLA")
            continue
        age = now - when
        if age > timedelta(days=sla_days):
            late.append(f"{what}: published {published}, pending {age.days} days, over the {sla_days}-day SLA")
    return late


# --- CW-PATCH-06: the mirror's publications, signatures and listing --------------------------------


def publish_snapshots(text: str) -> dict[tuple[str, str], list[str]]:
    """(prefix, distribution) -> sorted snapshot names, from `aptly publish list -json`; a
    publication of a local repo (SourceKind local) maps to ["local:<repo>", ...]."""
    found = {}
    for repo in json.loads(text):
        kind = repo.get("SourceKind", "")
        names = [s["Name"] if kind == "snapshot" else f"{kind}:{s['Name']}" for s in repo.get("Sources") or []]
        found[(repo.get("Prefix") or ".", repo["Distribution"])] = sorted(names)
    return found


def fact_publications(published: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """The mirror fact's `published` list in the shape of publish_snapshots."""
    found: dict[tuple[str, str], list[str]] = {}
    for entry in published:
        found.setdefault((entry.get("prefix") or ".", entry["distribution"]), []).append(entry["snapshot"])
    return {key: sorted(names) for key, names in found.items()}


def valid_signer(status: str) -> str:
    """The primary-key fingerprint of a good signature in gpgv's --status-fd output, '' when none."""
    if re.search(r"^\[GNUPG:\] (BADSIG|ERRSIG|EXPKEYSIG|REVKEYSIG|NO_PUBKEY)\b", status, re.MULTILINE):
        return ""
    valid = re.search(r"^\[GNUPG:\] VALIDSIG (\S+)(?: \S+){8}(?: (\S+))?", status, re.MULTILINE)
    if not valid or not re.search(r"^\[GNUPG:\] GOODSIG ", status, re.MULTILINE):
        return ""
    return (valid[2] or valid[1]).upper()


def key_expiry_problem(expires: str, today: datetime, margin_days: int = 7) -> str:
    """'' when the key never expires or expires after `margin_days`, else why it fails."""
    if not expires:
        return ""
    try:
        when = datetime.fromisoformat(expires)
    except ValueError:
        return f"key_expires {expires!r} is not an ISO 8601 date"
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= today:
        return f"the signing key expired on {expires}"
    if when - today <= timedelta(days=margin_days):
        return f"the signing key expires on {expires}, within {margin_days} days"
    return ""


def listed_outside(listing: str, prefixes: Iterable[str]) -> list[str]:
    """Entries of an nginx autoindex page of / that lie outside the published prefixes."""
    allowed = set()
    for prefix in prefixes:
        allowed |= {"dists/", "pool/"} if prefix in (".", "") else {prefix.strip("/").split("/")[0] + "/"}
    entries = re.findall(r'<a href="([^"]+)"', listing)
    return [entry for entry in entries if entry not in ("../", "./") and entry not in allowed]


def listening_ports(ss_output: str, process: str) -> set[int]:
    """TCP ports `process` listens on, from `ss -Hltnp` (State Recv-Q Send-Q Local Peer Process)."""
    ports = set()
    for line in ss_output.splitlines():
        fields = line.split()
        if len(fields) >= 6 and f'("{process}",' in " ".join(fields[5:]):
            port = fields[3].rpartition(":")[2]
            if port.isdigit():
                ports.add(int(port))
    return ports
