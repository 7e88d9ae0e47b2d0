"""The Docker tutorials users learn from (../shared/seeds), command for command.

Their Dockerfiles and commands are used as written; only the app files (which the notes do
not show) are ours, and the Docker Hub account is the test hub's `alice`. Each test
bootstraps its base image from the bootstrap cache (built once per mirror state).
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.e2e.conftest import Tutorial, host_port
from tests.helpers import wait_until
from tests.hub.conftest import Hub
from tests.runtime.test_tty import Terminal

pytestmark = pytest.mark.slow

# The node tutorial's app (note 000): server.js on port 80, one dependency from the registry.
SERVER_JS = """const http = require('http');
const greeting = require('kubia-greeting');
http.createServer((req, res) => {
  res.end(greeting + ' (server.js v1)\\n');
}).listen(80);
"""
PACKAGE_JSON = '{"name": "node-hello-world", "version": "1.0.0", "dependencies": %s}\n'

# Note 000's first Dockerfile, as written (its trailing spaces too).
NODE_DOCKERFILE = (
    "FROM node \n"
    " \n"
    "WORKDIR /app\n"
    " \n"
    "COPY . /app\n"
    "\n"
    "RUN npm install \n"
    "\n"
    "EXPOSE 80\n"
    "\n"
    'CMD ["node","server.js"]\n'
)

# Note 000's second Dockerfile: package.json first, so editing the code keeps npm install.
NODE_DOCKERFILE_CACHED = (
    "FROM node \n"
    "\n"
    "WORKDIR /app\n"
    "\n"
    "COPY package.json /app\n"
    "\n"
    "RUN npm install \n"
    "\n"
    "COPY . /app\n"
    "\n"
    "EXPOSE 80\n"
    "\n"
    'CMD ["node","server.js"]\n'
)

# Note 001: the kubia app (Kubernetes in Action). The note writes `ENTRYPOINT [...];` with a
# stray semicolon, which makes it shell form in Docker too (the JSON does not parse); the
# book's line has none, and that is the one users run.
KUBIA_DOCKERFILE = """FROM node

ADD ./app.js /app.js

ENTRYPOINT ["node", "app.js"]
"""
KUBIA_APP_JS = """const http = require('http');
const os = require('os');
console.log('kubia server starting');
http.createServer((req, res) => {
  res.writeHead(200);
  res.end('You hit ' + os.hostname() + '\\n');
}).listen(8080);
"""

# Note 004: the Flask app (with `FROM python`: Debian's python is 3.11, not 3.8).
FLASK_DOCKERFILE = (
    "# Step 1 : Base image\n"
    "FROM python\n"
    "\n"
    "# Step 2 : copy package list \n"
    "COPY ./requirements.txt ./requirements.txt\n"
    "\n"
    "# Step 3 : package install\n"
    "RUN pip install -r requirements.txt\n"
    "\n"
    "# Step 4 : copy source file \n"
    "COPY ./flask /flask\n"
    "\n"
    "# Step 5 : designate work directory\n"
    "WORKDIR /flask\n"
    "\n"
    'CMD [ "python3", "-m", "flask", "run", "--host=0.0.0.0" ]\n'
)
FLASK_APP = """from flask import Flask

app = Flask(__name__)

@app.route('/')
def index():
    return "Hello docker image"

if __name__ == "__main__":
    app.run()
"""


def fetch(port: int) -> str:
    """What curl shows for http://localhost:PORT/ once the server answers."""
    answer: list[str] = []

    def answered() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                answer.append(r.read().decode())
            return True
        except OSError:
            return False

    wait_until(answered, timeout=60, what=f"an answer on port {port}")
    return answer[0]


def publish_greeting(t: Tutorial, version: str) -> None:
    t.packages.publish(
        "kubia-greeting", version, f"module.exports = 'Hello from kubia-greeting {version}';\n"
    )


def test_node_tutorial_build_run_exec_inspect_stop_rm_tag_push(
    tutorial: Tutorial, hub: Hub, docker_config: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    t, dy = tutorial, tutorial.cli
    publish_greeting(t, "1.0.0")
    t.bootstrap("node")
    t.write(
        {
            "Dockerfile": NODE_DOCKERFILE,
            "package.json": PACKAGE_JSON % '{"kubia-greeting": "^1.0.0"}',
            "server.js": SERVER_JS,
        }
    )
    r = dy("build", "-t", "kubia", str(t.app), timeout=600)
    assert "Step 4/6 : RUN npm install" in r.stdout, r.stdout
    assert any("kubia-greeting-1.0.0.tgz" in p for p in t.packages.npm_requests())

    port = host_port(8080)
    dy("run", "--name", "kubia-container", "-p", f"{port}:80", "-d", "kubia")
    assert fetch(port) == "Hello from kubia-greeting 1.0.0 (server.js v1)\n"

    term = Terminal(dy, "exec", "-it", "kubia-container", "/bin/bash")
    try:
        term.expect(b"# ")
        term.send(b"pwd; ls node_modules\n")
        out = term.expect(b"# ")
        assert b"/app" in out and b"kubia-greeting" in out, out
        term.send(b"exit\n")
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    [info] = json.loads(dy("inspect", "kubia-container").stdout)
    assert info["State"]["Running"] is True
    assert info["Config"]["Cmd"] == ["node", "server.js"]
    assert info["Config"]["Entrypoint"] == ["docker-entrypoint.sh"]
    assert info["Config"]["WorkingDir"] == "/app"
    assert "80/tcp" in info["Config"]["ExposedPorts"]
    assert info["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"] == str(port)

    dy("stop", "kubia-container")
    dy("rm", "kubia-container")
    assert dy("ps", "-aq").stdout.strip() == ""

    # Docker Hub is the test hub here (DOCKYARD_REGISTRY_MIRROR), and `alice` the user's ID.
    monkeypatch.setenv("DOCKYARD_REGISTRY_MIRROR", f"http://{hub.addr}")
    dy("login", "-u", "alice", "--password-stdin", input=b"alice-pw\n")
    dy("tag", "kubia", "alice/kubia")
    r = dy("push", "alice/kubia", timeout=600)
    assert "latest: digest: sha256:" in r.stdout, r.stdout
    assert hub.request("GET", "/v2/alice/kubia/tags/list").json()["tags"] == ["latest"]


def test_node_tutorial_rebuilds_reuse_npm_install_until_package_json_changes(
    tutorial: Tutorial,
) -> None:
    t, dy = tutorial, tutorial.cli
    publish_greeting(t, "1.0.0")
    publish_greeting(t, "1.1.0")
    t.bootstrap("node")
    t.write(
        {
            "Dockerfile": NODE_DOCKERFILE_CACHED,
            "package.json": PACKAGE_JSON % '{"kubia-greeting": "1.0.0"}',
            "server.js": SERVER_JS,
        }
    )
    dy("build", "-t", "kubia", str(t.app), timeout=600)
    assert t.packages.npm_requests()
    port = host_port(8080)
    dy("run", "--name", "kubia-container", "-p", f"{port}:80", "-d", "kubia")
    assert fetch(port) == "Hello from kubia-greeting 1.0.0 (server.js v1)\n"
    dy("rm", "-f", "kubia-container")

    # Edit the code: the npm install layer comes from the cache; the registry hears nothing.
    t.packages.requests.clear()
    t.write({"server.js": SERVER_JS.replace("v1", "v2")})
    r = dy("build", "-t", "kubia", str(t.app), timeout=600)
    step = r.stdout.split("RUN npm install", 1)[1].split("Step", 1)[0]
    assert "Using cache" in step and "Running in" not in step, r.stdout
    assert t.packages.npm_requests() == []
    dy("run", "--name", "kubia-container", "-p", f"{port}:80", "-d", "kubia")
    assert fetch(port) == "Hello from kubia-greeting 1.0.0 (server.js v2)\n"
    dy("rm", "-f", "kubia-container")

    # Edit package.json: npm install runs again and gets the new version.
    t.write({"package.json": PACKAGE_JSON % '{"kubia-greeting": "1.1.0"}'})
    r = dy("build", "-t", "kubia", str(t.app), timeout=600)
    step = r.stdout.split("RUN npm install", 1)[1].split("Step", 1)[0]
    assert "Running in" in step and "Using cache" not in step, r.stdout
    assert any("kubia-greeting-1.1.0.tgz" in p for p in t.packages.npm_requests())
    dy("run", "--name", "kubia-container", "-p", f"{port}:80", "-d", "kubia")
    assert fetch(port) == "Hello from kubia-greeting 1.1.0 (server.js v2)\n"


def test_kubia_add_entrypoint_run_ps_stop_rm(tutorial: Tutorial) -> None:
    t, dy = tutorial, tutorial.cli
    t.bootstrap("node")
    t.write({"Dockerfile": KUBIA_DOCKERFILE, "app.js": KUBIA_APP_JS})
    dy("build", "-t", "kubia", str(t.app), timeout=600)
    port = host_port(8080)
    cid = dy("run", "--name", "kubia-container", "-p", f"{port}:8080", "-d", "kubia").stdout
    answer = fetch(port)
    assert answer == f"You hit {cid.strip()[:12]}\n"
    ps = dy("ps").stdout
    assert "kubia-container" in ps and '"node app.js"' in ps, ps
    assert "kubia server starting" in dy("logs", "kubia-container").stdout
    top = dy("exec", "kubia-container", "ps", "-o", "pid,args", check=False)
    if top.returncode == 0:  # procps is not in a minbase image; /proc tells the same
        assert "node app.js" in top.stdout
    pid1 = dy("exec", "kubia-container", "cat", "/proc/1/cmdline").stdout
    assert pid1.split("\0")[:2] == ["node", "app.js"]
    dy("stop", "kubia-container")
    dy("rm", "kubia-container")


def test_flask_tutorial(tutorial: Tutorial) -> None:
    t, dy = tutorial, tutorial.cli
    t.bootstrap("python")
    t.write(
        {
            "Dockerfile": FLASK_DOCKERFILE,
            "requirements.txt": "# requirements.txt\nFlask\n",
            "flask/app.py": FLASK_APP,
        }
    )
    r = dy("build", "-t", "flask", str(t.app), timeout=900)
    assert "Successfully tagged flask:latest" in r.stdout, r.stdout
    assert any(p.startswith("/files/flask-") for p in t.packages.requests)
    lines = dy("image", "ls").stdout.splitlines()
    assert any(line.split()[:2] == ["flask", "latest"] for line in lines)
    port = host_port(5000)
    dy("run", "-d", "-p", f"{port}:5000/tcp", "--name", "flask", "flask:latest")
    assert fetch(port) == "Hello docker image"
