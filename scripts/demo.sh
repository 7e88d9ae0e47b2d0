#!/usr/bin/env bash
# The main job: the seeds' workflow as far as dockyard goes today (images, containers, commit,
# archives, networks, builds, registries, the Engine API), on a store of its own (demo-out/) so
# it never touches /var/lib/dockyard.
# Every command is echoed before it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${DEMO_OUT:-$PWD/demo-out}
PATH="$PWD/.venv/bin:$PATH"
export DOCKYARD_ROOT="$OUT/root" DOCKYARD_RUN_ROOT="$OUT/run"

cleanup() {
  # Leave no container running behind the demo, whatever happened.
  ids=$(dockyard ps -aq 2>/dev/null || true)
  [[ -z $ids ]] || dockyard rm -f $ids >/dev/null 2>&1 || true
}
trap cleanup EXIT
if [[ -d $OUT ]]; then cleanup; rm -rf "$OUT"; fi
mkdir -p "$OUT"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

# Images: a base image made offline, inspected, tagged.
step dockyard --version
step dockyard image bootstrap busybox
step dockyard images
step dockyard inspect --format '{{.Id}} {{json .RepoTags}} {{json .Config.Cmd}} {{json .RootFS.Layers}}' busybox
step dockyard tag busybox me/busybox:1.0
step dockyard history busybox

# Containers: a one-shot run, then a long-running named one.
step dockyard run busybox echo "Hello world"
step dockyard run -d --name web -e GREETING=hi -w /tmp busybox sh -c \
  'while true; do echo "$GREETING from $(hostname) at $(date +%T)"; sleep 1; done'
step dockyard ps
sleep 1.5
step dockyard logs --tail 2 web
step dockyard exec web sh -c 'echo "PID 1 is: $(cat /proc/1/cmdline | tr "\0" " ")"; id; pwd'
step dockyard top web

# Files in and out, changes, and a new image that shares the busybox layer.
mkdir -p "$OUT/app"
echo 'console.log("Hello from kubia")' >"$OUT/app/app.js"
step dockyard cp "$OUT/app" web:/app
step dockyard exec web cat /app/app.js
step dockyard diff web
step dockyard commit -c 'CMD ["cat", "/app/app.js"]' web kubia:1
step dockyard run --rm kubia:1
step dockyard images
step dockyard system df -v

step dockyard stop -t 1 web
step dockyard ps -a
step dockyard rm web

# Archives: docker-archive and OCI, readable by skopeo, loaded back.
step dockyard save -o "$OUT/kubia.tar" kubia:1
step tar -tf "$OUT/kubia.tar"
step dockyard save --format oci -o "$OUT/busybox-oci.tar" busybox
if command -v skopeo >/dev/null; then
  step skopeo inspect --format '{{.Digest}} {{.Layers}}' "docker-archive:$OUT/kubia.tar"
fi
step dockyard rmi kubia:1
step dockyard rmi me/busybox:1.0
step dockyard load -i "$OUT/kubia.tar"
step dockyard run --rm kubia:1

# import: a rootfs tarball becomes a one-layer image, with Dockerfile-style --change edits.
tar -C "$OUT/app" -cf "$OUT/app.tar" .
step dockyard import "$OUT/app.tar" app-files:1 --change 'WORKDIR /' --change 'EXPOSE 8080'
step dockyard image prune -f
step dockyard images

# Networks: a published port reached from the host, and names that resolve on a user network.
PORT=${DEMO_PORT:-8080}
step dockyard run -d --name web -p "$PORT:80" busybox sh -c \
  'mkdir -p /www && echo "hello from $(hostname)" >/www/index.html && exec httpd -f -p 80 -h /www'
step dockyard port web
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
step curl -s "http://127.0.0.1:$PORT/"
step dockyard network create appnet
step dockyard run -d --network appnet --name db --network-alias database busybox httpd -f -p 80 -h /etc
step dockyard run --rm --network appnet busybox wget -qO- http://database/hostname
step dockyard inspect --format '{{.NetworkSettings.Networks.appnet.IPAddress}}' db
step dockyard rm -f web db
step dockyard network rm appnet

# build: a Dockerfile, every step cached; editing the app re-runs only the last COPY.
mkdir -p "$OUT/build"
printf 'FROM busybox\nWORKDIR /app\nCOPY package.json ./\nRUN echo "installing deps" && cp package.json deps.json\nCOPY app.js ./\nCMD ["cat", "/app/app.js"]\n' >"$OUT/build/Dockerfile"
echo '{"name": "kubia"}' >"$OUT/build/package.json"
echo 'console.log("v1")' >"$OUT/build/app.js"
step dockyard build -t kubia:build "$OUT/build"
echo 'console.log("v2")' >"$OUT/build/app.js"
step dockyard build -t kubia:build "$OUT/build"
step dockyard run --rm kubia:build
step dockyard history kubia:build

# Registries: our hub on loopback, an account, login, push (only missing layers), pull, run.
export DOCKER_CONFIG="$OUT/docker-config" DOCKYARD_HUB_DATA="$OUT/hub"
HUB=127.0.0.1:${DEMO_HUB_PORT:-5055}
dockyard hub serve --addr "$HUB" -q >"$OUT/hub.log" 2>&1 &
HUB_PID=$!
trap 'kill $HUB_PID 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 50); do curl -s "http://$HUB/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
echo secret | dockyard hub user add alice --password-stdin
echo secret | step dockyard login "$HUB" -u alice --password-stdin
step dockyard tag kubia:1 "$HUB/alice/kubia:1"
step dockyard push "$HUB/alice/kubia:1"
step dockyard push "$HUB/alice/kubia:1"
step dockyard hub repo describe alice/kubia "kubia, the seeds' example app"
step dockyard search "$HUB/kubia"
step dockyard rmi "$HUB/alice/kubia:1" kubia:1
step dockyard run --rm "$HUB/alice/kubia:1"
step dockyard logout "$HUB"
kill $HUB_PID; wait $HUB_PID 2>/dev/null || true

# The same engine behind Docker's API: docker-py (and the docker CLI, where installed) drive it.
SOCK="$OUT/dockyard.sock"
dockyard daemon -H "unix://$SOCK" >"$OUT/daemon.log" 2>&1 &
DAEMON_PID=$!
trap 'kill $DAEMON_PID 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 50); do [[ -S $SOCK ]] && break; sleep 0.1; done
step curl -s --unix-socket "$SOCK" http://dockyard/v1.41/version
echo
step python -c "import docker; c = docker.DockerClient(base_url='unix://$SOCK'); \
print(c.containers.run('busybox', ['echo', 'hello from docker-py'], remove=True).decode(), end='')"
if command -v docker >/dev/null; then
  step env DOCKER_HOST="unix://$SOCK" docker run --rm busybox echo "hello from the docker CLI"
  step env DOCKER_HOST="unix://$SOCK" docker images
fi
kill $DAEMON_PID; wait $DAEMON_PID 2>/dev/null || true

step dockyard system prune -f
step dockyard system check
echo
echo "demo finished: store in $DOCKYARD_ROOT"
