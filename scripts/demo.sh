#!/usr/bin/env bash
# The main job: the seeds' image workflow, as far as dockyard goes today, on a store of its own
# (demo-out/root), so it never touches /var/lib/dockyard. Every command is echoed before it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${DEMO_OUT:-$PWD/demo-out}
rm -rf "$OUT"
mkdir -p "$OUT"
export DOCKYARD_ROOT="$OUT/root" DOCKYARD_RUN_ROOT="$OUT/run"
PATH="$PWD/.venv/bin:$PATH"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step dockyard --version
step dockyard image bootstrap busybox
step dockyard images
step dockyard inspect --format '{{.Id}} {{json .RepoTags}} {{json .Config.Cmd}} {{json .RootFS.Layers}}' busybox
step dockyard tag busybox me/busybox:1.0
step dockyard images
step dockyard history busybox

# import: a rootfs tarball becomes a one-layer image, with Dockerfile-style --change edits.
mkdir -p "$OUT/app/app"
echo 'console.log("Hello from kubia")' >"$OUT/app/app/app.js"
tar -C "$OUT/app" -cf "$OUT/app.tar" .
step dockyard import "$OUT/app.tar" kubia-files:1 --change 'CMD ["node", "/app/app.js"]' --change 'EXPOSE 8080'
step dockyard images

step dockyard save -o "$OUT/bb.tar" busybox
step tar -tf "$OUT/bb.tar"
step dockyard save --format oci -o "$OUT/bb-oci.tar" busybox
if command -v skopeo >/dev/null; then
  step skopeo inspect --format '{{.Digest}} {{.Layers}}' "docker-archive:$OUT/bb.tar"
fi
step dockyard rmi me/busybox:1.0
step dockyard rmi busybox
step dockyard images
step dockyard load -i "$OUT/bb.tar"
step dockyard load -i "$OUT/bb-oci.tar"
step dockyard system df -v
step dockyard image prune -a -f
step dockyard system check
echo
echo "demo finished: store in $DOCKYARD_ROOT"
