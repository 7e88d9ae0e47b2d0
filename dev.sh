#!/usr/bin/env bash
# One entry point for people and CI: set up this machine, then run the demo, tests or benchmarks.
#   ./dev.sh setup | demo | test | bench
# Needs root (containers, overlayfs and apt). Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(python3 python3-venv python3-pip busybox-static runc crun skopeo golang-go
              golang-github-containers-common tini iproute2 iptables ca-certificates
              docker-registry apache2-utils curl git openssl gcc libc6-dev mmdebstrap
              docker-compose)  # Debian's Compose 1.29: a client the daemon is tested with

setup() {
  if [[ $(id -u) != 0 ]]; then echo "dev.sh: run as root (containers need it)" >&2; exit 1; fi
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    echo "dev.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  local py=python3
  command -v python3.11 >/dev/null && py=python3.11
  if [[ ! -x .venv/bin/python ]]; then "$py" -m venv .venv; fi
  if ! .venv/bin/python -c 'import dockyard, pytest, hypothesis, mypy, ruff, importlinter, testcontainers' 2>/dev/null \
     || [[ ! -x .venv/bin/docker-compose ]] \
     || [[ pyproject.toml -nt .venv/.installed ]]; then
    .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
    touch .venv/.installed
  fi
  # pip's console-script wrapper imports re (to strip Windows suffixes from argv[0]): ~3 ms of
  # every command's start-up; `site` (the venv's .pth files, setuptools' distutils hack) ~3 ms
  # more. The same entry point without either: python -S, with what site would have put on
  # sys.path (site-packages, then the editable install's src) listed once, here.
  local site_paths
  site_paths=$(.venv/bin/python -c 'import json, subprocess, sys
bare = subprocess.run([sys.executable, "-S", "-c", "import json, sys; print(json.dumps(sys.path))"],
                      capture_output=True, text=True, check=True).stdout
print(repr([p for p in sys.path if p and p not in json.loads(bare)]))')
  printf '#!%s -S\nimport sys\n\nsys.path += %s\n\nfrom dockyard.main import main\n\nsys.exit(main())\n' \
    "$PWD/.venv/bin/python" "$site_paths" >.venv/bin/dockyard
  # Byte-compile up front: start-up time is a feature, and some environments set
  # PYTHONDONTWRITEBYTECODE, which would make every command recompile its modules.
  .venv/bin/python -m compileall -q src >/dev/null
}

case "${1:-}" in
  setup) setup ;;
  demo) setup; exec bash scripts/demo.sh ;;
  test)
    setup
    .venv/bin/ruff check src tests bench
    .venv/bin/mypy
    .venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
    shift
    exec .venv/bin/pytest -q -p no:cacheprovider "$@" ;;
  bench) setup; shift; exec .venv/bin/python bench/run.py "$@" ;;
  *) echo "usage: $0 setup|demo|test|bench" >&2; exit 2 ;;
esac
