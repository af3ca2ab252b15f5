#!/usr/bin/env bash
# The main job: a small smart city on this machine, hardened and audited.
#   1. the lab city up (Podman containers in the zones of policies/zones.yml)
#   2. the lab CA and SIEM, the update mirror's first snapshot, then playbooks/site.yml over inventories/lab
#   3. cityward audit, reports in reports/lab/
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
# The lab's vault password is committed for the lab only; a real city never does this.
export ANSIBLE_VAULT_PASSWORD_FILE="$CITYWARD_HOME/inventories/lab/vault-password.txt"

say "1/3 lab city up (cityward lab up)"
cityward lab up

say "2/3 hardening the lab (ansible-playbook -i inventories/lab cityward.hardening.site)"
# The collection's playbooks by FQCN, as a city runs them (this checkout is the installed collection).
ansible-playbook -i inventories/lab cityward.hardening.lab_pki    # the lab's own CA, once
ansible-playbook -i inventories/lab cityward.hardening.lab_siem   # the lab's SIEM (syslog over mutual TLS)
# The lab's update mirror takes what the lab runs from Debian and snapshots it as "lab", the set
# inventories/lab approves; every host then takes its updates from the mirror only.
ansible-playbook -i inventories/lab cityward.hardening.update_mirror_stage -e update_mirror_stage_id=lab
# Change control (CW-GOV-10, docs/change-records.md): the dry run first, the apply of the same
# inputs after it; each leaves its change record in inventories/lab/records/changes.
dry_run_log="$CITYWARD_HOME/.cache/demo/site-check-diff.log"
mkdir -p "$(dirname "$dry_run_log")"
echo "dry run (--check --diff), its output in $dry_run_log"
if ! ansible-playbook -i inventories/lab cityward.hardening.site --check --diff > "$dry_run_log" 2>&1; then
  tail -n 40 "$dry_run_log"
  echo "the dry run failed: nothing was applied (its whole output: $dry_run_log)" >&2
  exit 1
fi
tail -n 1 "$dry_run_log"
ansible-playbook -i inventories/lab cityward.hardening.site

say "3/3 auditing every control (cityward audit -i inventories/lab)"
cityward audit -i inventories/lab --out reports/lab
