#!/usr/bin/env bash
# Run everything CI runs: lint, unit and cloud tests, then every Molecule scenario in Podman.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

say "lint: ruff, yamllint, ansible-lint (production profile)"
ruff check .
yamllint --strict .
ansible-lint --offline -q

say "molecule: every scenario under molecule/ (Podman containers, Debian 12 and 13)"
molecule test --all

say "pytest: unit, catalog traceability, cloud plan"
pytest -q
