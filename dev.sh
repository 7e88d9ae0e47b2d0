#!/usr/bin/env bash
# One entry point for people and CI: set up this machine, then run the demo, tests or benchmarks.
#   ./dev.sh setup | demo | test | bench
# Needs root (containers, overlayfs and apt). Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(python3 python3-venv python3-pip busybox-static runc crun skopeo golang-go
              golang-github-containers-common tini iproute2 iptables ca-certificates
              docker-registry apache2-utils curl git openssl gcc libc6-dev mmdebstrap zstd
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
  # Debian's interpreter (the apt package python3): built with PGO and LTO and linked
  # statically, it starts ~1.5 ms sooner and runs our code ~10% faster than a default source
  # build (pyenv's: --enable-shared, no PGO), which may come first on PATH. A venv made from
  # another interpreter is made again.
  local py=/usr/bin/python3
  if [[ -x .venv/bin/python ]] && ! grep -qx "home = ${py%/*}" .venv/pyvenv.cfg; then
    rm -rf .venv
  fi
  if [[ ! -x .venv/bin/python ]]; then "$py" -m venv .venv; fi
  if ! .venv/bin/python -c 'import dockyard, zstandard, pytest, hypothesis, mypy, ruff, importlinter, testcontainers' 2>/dev/null \
     || [[ ! -x .venv/bin/docker-compose ]] \
     || [[ pyproject.toml -nt .venv/.installed ]]; then
    .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
    touch .venv/.installed
  fi
  # pip's console-script wrapper imports re (to strip Windows suffixes from argv[0]): ~3 ms of
  # every command's start-up. The same entry point without it, and without `site` (-S):
  # processing the venv's .pth files (setuptools' distutils hack among them) and Debian's
  # sitecustomize cost another ~3 ms; the two paths they would add are added here instead.
  # Our sources take the script's own directory's place at the front, so finding dockyard
  # never lists site-packages. The collector is off while the command's modules load (it
  # would walk every new object several times, ~1 ms); main() turns it back on for any
  # command that may run long.
  local site_dir
  site_dir=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  printf '#!%s -S\nimport gc\nimport sys\n\ngc.disable()\nsys.path[0] = "%s"\nsys.path.append("%s")\nfrom dockyard.main import main\n\nsys.exit(main())\n' \
    "$PWD/.venv/bin/python" "$PWD/src" "$site_dir" >.venv/bin/dockyard
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
