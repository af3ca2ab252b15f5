#!/usr/bin/python3
"""cityward update mirror (role update_mirror, CW-PATCH-06): stage a set of updates for approval.
One run; prints one JSON object.

    cityward_mirror_stage.py STAGE_JSON

STAGE_JSON: {"id": "2026-12-06", "upstreams": [...], "repos": [...], "incoming": DIR, "published": [...]}.
Creates the upstream mirrors and local repositories that are missing, downloads each upstream
(signatures checked against its keyring: the mirror alone reaches the outside), adds the packages
waiting in INCOMING/<repo>/ to their repository, and takes one snapshot of each as <name>-<id>.
Nothing is published: a city publishes a snapshot only after approving it (update_mirror_publications).
For each new snapshot it reports what it changes against the snapshot published from the same source.
"""

import glob
import json
import os
import subprocess
import sys

APTLY = ["aptly", "-config=/etc/aptly.conf"]
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class Failed(Exception):
    """An aptly command failed: the run stops and reports it."""


def run(*args, ok=(0,)):
    result = subprocess.run([*APTLY, *args], capture_output=True, text=True, check=False)
    if result.returncode not in ok:
        # aptly prints the reason per package on stdout ("[!] ..."), the summary on stderr.
        reasons = [line.strip() for line in result.stdout.splitlines() if line.startswith("[!]")]
        raise Failed(f"aptly {' '.join(args[:3])}: {' '.join([*reasons, (result.stderr or result.stdout).strip()])}")
    return result


def exists(kind, name):
    return run(kind, "show", name, ok=(0, 1)).returncode == 0


def follow_upstream(upstream):
    """Bring an existing aptly mirror to its upstream's settings: the filter is edited in place;
    an archive, distribution or components aptly cannot change stop the run, naming the fix."""
    name = upstream["name"]
    now = json.loads(run("mirror", "show", "-json", name).stdout)
    want = (upstream["url"].rstrip("/"), upstream["distribution"], upstream.get("components", ["main"]))
    have = (now["ArchiveRoot"].rstrip("/"), now["Distribution"], now["Components"])
    if want != have:
        raise Failed(f"update_mirror_upstreams '{name}': the mirror on this host follows {have}, the inventory says "
                     f"{want}; aptly cannot change that in place: run `aptly mirror drop -force {name}` on the mirror, "
                     "then stage again (published snapshots are kept)")
    filter_, deps = upstream.get("filter", ""), bool(upstream.get("with_deps"))
    if (now.get("Filter", ""), bool(now.get("FilterWithDeps"))) == (filter_, deps):
        return []
    run("mirror", "edit", f"-filter={filter_}", f"-filter-with-deps={'true' if deps else 'false'}", name)
    return [f"edited the filter of mirror {name}"]


def source_of(snapshot):
    """The mirror or repository a snapshot was taken from ("Sources:" of aptly snapshot show)."""
    lines = run("snapshot", "show", snapshot).stdout.splitlines()
    after = lines[lines.index("Sources:") + 1:] if "Sources:" in lines else []
    return after[0].split()[0] if after else ""


def main(stage):
    changed, snapshots = [], []
    for upstream in stage["upstreams"]:
        name = upstream["name"]
        keyring = f"-keyring={upstream.get('keyring', DEBIAN_KEYRING)}"
        if not exists("mirror", name):
            args = [keyring, f"-architectures={stage['architectures']}"]
            if upstream.get("force_components"):
                # Debian's security archive announces updates/main but serves main/ at the same place.
                args.append("-force-components")
            if upstream.get("filter"):
                args += [f"-filter={upstream['filter']}", "-filter-with-deps" if upstream.get("with_deps") else ""]
            run("mirror", "create", *[a for a in args if a], name, upstream["url"], upstream["distribution"],
                *upstream.get("components", ["main"]))
            changed.append(f"created mirror {name}")
        else:
            changed += follow_upstream(upstream)
        run("mirror", "update", keyring, name)
        changed.append(f"updated mirror {name}")
        snapshots.append(("mirror", name))
    for repo in stage["repos"]:
        name = repo["name"]
        if not exists("repo", name):
            run("repo", "create", f"-distribution={repo.get('distribution', '')}",
                f"-component={repo.get('component', 'main')}", name)
            changed.append(f"created repository {name}")
        waiting = sorted(glob.glob(os.path.join(stage["incoming"], name, "*.deb")))
        if waiting:
            run("repo", "add", "-remove-files", name, *waiting)
            changed.append(f"added {len(waiting)} package(s) to {name}")
        snapshots.append(("repo", name))
    # What approving a new snapshot would change: against the approved one taken from the same source.
    approved = {}
    for entry in stage["published"]:
        if exists("snapshot", entry["snapshot"]):
            approved.setdefault(source_of(entry["snapshot"]), entry["snapshot"])
    staged = []
    for kind, name in snapshots:
        snapshot = f"{name}-{stage['id']}"
        if not exists("snapshot", snapshot):
            run("snapshot", "create", snapshot, "from", kind, name)
            changed.append(f"snapshot {snapshot}")
        before = approved.get(name, "")
        diff = run("snapshot", "diff", before, snapshot).stdout.strip() if before and before != snapshot else ""
        staged.append({"snapshot": snapshot, "source": f"{kind} {name}", "against": before,
                       "changes": diff or ("(first snapshot)" if not before else "(no change)")})
    return {"changed": bool(changed), "failed": False, "done": changed, "staged": staged}


if __name__ == "__main__":
    try:
        print(json.dumps(main(json.loads(sys.argv[1]))))
    except Failed as exc:
        print(json.dumps({"failed": True, "changed": False, "msg": str(exc)}))
