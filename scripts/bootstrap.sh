#!/usr/bin/env bash
# Sourced by demo.sh and test.sh: install what is missing, skip what is there.
#   system packages (podman, runc, debootstrap, ssh-audit, whois for mkpasswd), the .venv, the lab images.
set -euo pipefail

CITYWARD_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CITYWARD_HOME
cd "$CITYWARD_HOME"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_pkgs=()
for pkg in podman runc debootstrap ssh-audit chromium python3-venv whois; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
# A non-Debian Python (pyenv, ...) brings its own venv; python3-venv is only for Debian's.
if [[ " ${need_pkgs[*]} " == *" python3-venv "* ]] && python3 -c 'import ensurepip' 2>/dev/null; then
  need_pkgs=("${need_pkgs[@]/python3-venv}")
fi
read -r -a need_pkgs <<< "${need_pkgs[*]}"
if ((${#need_pkgs[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "cityward: missing system packages: ${need_pkgs[*]}; run as root or: sudo apt-get install -y ${need_pkgs[*]}" >&2
    exit 2
  fi
  say "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# Lynis for the audit's scanners (CW-GOV-07): Debian's package, downloaded, never installed here
# (`cityward audit` unpacks it and copies it to each host for the run; it fetches it too if missing).
lynis_cache="${XDG_CACHE_HOME:-$HOME/.cache}/cityward/lynis"
if ! compgen -G "$lynis_cache/lynis_*_all.deb" >/dev/null; then
  say "downloading Debian's lynis package into $lynis_cache (for the audit's scanners)"
  mkdir -p "$lynis_cache"
  (cd "$lynis_cache" && apt-get download lynis >/dev/null 2>&1) \
    || echo "cityward: could not download lynis; the audit will report Lynis as missing" >&2
fi

# The virtualenv is rebuilt only when the packaging (pyproject.toml, setup.py, galaxy.yml) changed
# since it was made. The cityward package is installed editable, and this checkout is linked in as
# the collection cityward.hardening, where the wheel would install it (site-packages/ansible_collections),
# so that Ansible, the CLI and the tests use the files being edited.
stamp=".venv/.cityward-stamp"
want="$(cat pyproject.toml setup.py galaxy.yml | sha256sum | cut -d' ' -f1)"
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  say "preparing the virtualenv (.venv)"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev,cloud]'
  echo "$want" > "$stamp"
fi
site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p "$site/ansible_collections/cityward"
[[ "$(readlink "$site/ansible_collections/cityward/hardening" 2>/dev/null)" == "$CITYWARD_HOME" ]] ||
  ln -sfn "$CITYWARD_HOME" "$site/ansible_collections/cityward/hardening"
export PATH="$CITYWARD_HOME/.venv/bin:$PATH"
export CONTAINERS_CONF="$CITYWARD_HOME/src/cityward/data/containers.conf"

say "lab images (built offline once, then reused)"
cityward lab image --release all
