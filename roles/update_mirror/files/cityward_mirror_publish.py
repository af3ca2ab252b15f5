#!/usr/bin/python3
"""cityward update mirror (role update_mirror, CW-PATCH-06): make aptly publish exactly the approved
snapshots, signed by the city's key. One run for all publications; prints one JSON object.

    cityward_mirror_publish.py APPROVED_JSON FINGERPRINT ARCHITECTURES [--check]

APPROVED_JSON is the list of {prefix, distribution, snapshot, origin, label}. For each one: the
snapshot must exist (else nothing is changed and the run fails, naming the entry); a publication
that is missing is published, one that shows another snapshot is switched, one whose Release
fields differ is dropped and published again, one whose InRelease is not signed by FINGERPRINT is
signed again. A publication nobody approved is dropped: hosts see only approved snapshots.
--check reports the same actions without doing them.
"""

import json
import os
import subprocess
import sys

APTLY = ["aptly", "-config=/etc/aptly.conf"]


class Failed(Exception):
    """An aptly command failed: the run stops and reports it."""


def run(*args):
    result = subprocess.run([*APTLY, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # aptly prints the reason per package on stdout ("[!] ..."), the summary on stderr.
        reasons = [line.strip() for line in result.stdout.splitlines() if line.startswith("[!]")]
        raise Failed(f"aptly {' '.join(args[:3])}: {' '.join([*reasons, (result.stderr or result.stdout).strip()])}")
    return result.stdout


def published():
    """{(prefix, distribution): {snapshot, origin, label}} of what aptly publishes now."""
    found = {}
    for entry in json.loads(run("publish", "list", "-json") or "[]"):
        sources = [s["Name"] for s in entry.get("Sources") or []] if entry.get("SourceKind") == "snapshot" else []
        found[(entry["Prefix"], entry["Distribution"])] = {
            "snapshot": sources[0] if len(sources) == 1 else "", "origin": entry.get("Origin", ""),
            "label": entry.get("Label", "")}
    return found


def public_dir(prefix, distribution):
    with open("/etc/aptly.conf", encoding="utf-8") as handle:
        root = json.load(handle)["rootDir"]
    return os.path.join(root, "public", "" if prefix == "." else prefix, "dists", distribution)


def signer(prefix, distribution):
    """The primary fingerprint that signed InRelease, or '' when it does not verify here."""
    result = subprocess.run(["gpg", "--batch", "--status-fd", "1", "--verify",
                             os.path.join(public_dir(prefix, distribution), "InRelease")],
                            capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("[GNUPG:] VALIDSIG "):
            return line.split()[-1].upper()
    return ""


def main(argv):
    approved, fingerprint, architectures = json.loads(argv[1]), argv[2].upper(), argv[3]
    check = "--check" in argv[4:]
    snapshots = set(run("snapshot", "list", "-raw").split())
    missing = [f"update_mirror_publications[{i}] ({entry['prefix']}/{entry['distribution']}): snapshot "
               f"'{entry['snapshot']}' does not exist on this mirror "
               "(stage it first: playbooks/update_mirror_stage.yml)"
               for i, entry in enumerate(approved) if entry["snapshot"] not in snapshots]
    if missing:
        return {"failed": True, "msg": "; ".join(missing), "changed": False}
    sign = ["-batch", f"-gpg-key={fingerprint}"]
    current, actions = published(), []
    for entry in approved:
        key = (entry["prefix"], entry["distribution"])
        now = current.pop(key, None)
        fields = {"origin": entry.get("origin", ""), "label": entry.get("label", "")}
        publish = ["publish", "snapshot", *sign, f"-distribution={entry['distribution']}",
                   f"-origin={fields['origin']}", f"-label={fields['label']}",
                   f"-architectures={architectures}", entry["snapshot"], entry["prefix"]]
        if now is None:
            actions.append(("publish", entry, [publish]))
        elif {"origin": now["origin"], "label": now["label"]} != fields:
            drop = ["publish", "drop", entry["distribution"], entry["prefix"]]
            actions.append(("republish", entry, [drop, publish]))
        elif now["snapshot"] != entry["snapshot"]:
            actions.append(("switch", entry, [["publish", "switch", *sign, *key[::-1], entry["snapshot"]]]))
        elif signer(*key) != fingerprint:
            # Switching to the same snapshot signs its Release files again.
            actions.append(("sign", entry, [["publish", "switch", *sign, *key[::-1], entry["snapshot"]]]))
    for (prefix, distribution), now in sorted(current.items()):
        actions.append(("drop", {"prefix": prefix, "distribution": distribution, "snapshot": now["snapshot"]},
                        [["publish", "drop", distribution, prefix]]))
    if not check:
        for _, _, commands in actions:
            for command in commands:
                run(*command)
    done = [f"{verb} {entry['prefix']}/{entry['distribution']} {entry['snapshot']}" for verb, entry, _ in actions]
    return {"changed": bool(actions), "failed": False, "actions": done}


if __name__ == "__main__":
    try:
        print(json.dumps(main(sys.argv)))
    except Failed as exc:
        print(json.dumps({"failed": True, "changed": False, "msg": str(exc)}))
