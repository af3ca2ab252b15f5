#!/usr/bin/env bash
# The main job. Until the demo city lands it prints how the control catalog covers both
# source checklists and checks that every implemented control is traceable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

say "control catalog coverage (policies/controls.yml)"
cityward controls --trace
