"""Search (``/v1/search``, what ``docker search host/term`` calls), descriptions, stars, and
the admin verbs of ``dockyard hub``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

from tests.conftest import BIN
from tests.hub.conftest import Hub, basic, sha, start_hub, stop_hub


def test_search_descriptions_and_stars(hub: Hub, layers: list[bytes]) -> None:
    hub.push_image("alice/findme-web", "1", layers, hub.bearer("alice", "alice/findme-web"))
    hub.push_image("library/findme-base", "1", layers, hub.bearer("root", "library/findme-base"))
    hub.push_image("bob/findme-hidden", "1", layers, hub.bearer("bob", "bob/findme-hidden"))
    assert hub.cli("repo", "private", "bob/findme-hidden").returncode == 0
    assert hub.cli("repo", "describe", "library/findme-base", "The base image").returncode == 0
    # The owner describes over HTTP; someone else may not.
    body = json.dumps({"description": "A web server"}).encode()
    path = "/hub/repositories/alice/findme-web/description"
    assert hub.request("PUT", path, body, auth=basic("bob")).status == 403
    assert hub.request("PUT", path, body).status == 401
    assert hub.request("PUT", path, body, auth=basic("alice")).status == 204
    # Stars: two over HTTP, one by the admin CLI, one removed.
    star = "/hub/repositories/alice/findme-web/star"
    assert hub.request("PUT", star, auth=basic("alice")).status == 204
    assert hub.request("PUT", star, auth=basic("bob")).status == 204
    assert hub.request("PUT", star, auth=basic("bob")).status == 204  # idempotent
    assert hub.cli("repo", "star", "library/findme-base", "--user", "bob").returncode == 0
    assert (
        hub.request("PUT", "/hub/repositories/alice/findme-base/star", auth=basic("bob")).status
        == 404
    )
    assert hub.cli("repo", "star", "alice/findme-web", "--user", "nobody").returncode == 125

    r = hub.request("GET", "/v1/search?q=findme&n=25")
    assert r.status == 200
    res = r.json()
    assert res["num_results"] == 2 and res["query"] == "findme" and res["page"] == 1
    assert res["results"] == [
        {"name": "alice/findme-web", "description": "A web server", "star_count": 2,
         "is_official": False, "is_automated": False},
        {"name": "library/findme-base", "description": "The base image", "star_count": 1,
         "is_official": True, "is_automated": False},
    ]  # fmt: skip
    # The description is searched too; paging; the private repository only for its owner.
    assert [x["name"] for x in hub.request("GET", "/v1/search?q=web+server").json()["results"]] == [
        "alice/findme-web"
    ]
    r = hub.request("GET", "/v1/search?q=findme&n=1&page=2").json()
    assert r["num_pages"] == 2 and [x["name"] for x in r["results"]] == ["library/findme-base"]
    mine = hub.request("GET", "/v1/search?q=findme", auth=basic("bob")).json()
    assert "bob/findme-hidden" in [x["name"] for x in mine["results"]]
    assert hub.request("GET", "/v1/_ping").status == 200

    out = hub.cli("repo", "ls").stdout
    assert "alice/findme-web" in out and "[OK]" in out and "private" in out
    assert hub.request("PUT", star, auth=basic("alice", "bad")).status == 401
    assert hub.request("DELETE", star, auth=basic("bob")).status == 204
    assert hub.request("GET", "/hub/repositories/alice/findme-web").json()["star_count"] == 1


def test_user_admin_verbs(hub: Hub) -> None:
    r = hub.cli("user", "add", "dave", "--password-stdin", stdin="pw-of-dave\n")
    assert r.returncode == 0 and "Created user dave" in r.stdout
    r = hub.cli("user", "add", "dave", "--password-stdin", stdin="x\n")
    assert r.returncode == 125 and "already exists" in r.stderr
    for bad in ("Dave", "../x", "library", "a b", ""):
        r = hub.cli("user", "add", bad, "--password-stdin", stdin="x\n")
        assert r.returncode == 125, bad
    r = hub.cli("user", "add", "erin", "--password-stdin", stdin="\n")
    assert r.returncode == 125 and "empty" in r.stderr
    r = hub.cli("user", "add", "erin", stdin="")  # stdin is not a terminal
    assert r.returncode == 125 and "--password-stdin" in r.stderr
    r = hub.cli("user", "ls")
    assert r.stdout.splitlines()[0].split() == ["NAME", "ADMIN", "CREATED"]
    assert "root" in r.stdout and "erin" not in r.stdout
    assert hub.token("dave", password="pw-of-dave").status == 200
    r = hub.cli("user", "passwd", "dave", "--password-stdin", stdin="new-pw\n")
    assert r.returncode == 0
    assert hub.token("dave", password="pw-of-dave").status == 401
    assert hub.token("dave", password="new-pw").status == 200
    assert hub.cli("user", "rm", "dave").returncode == 0
    assert hub.cli("user", "rm", "dave").returncode == 125
    assert hub.cli("user", "frobnicate").returncode == 125


def test_serve_refuses_bad_addresses(tmp_path: Path) -> None:
    def serve(addr: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), "hub", "serve", "--addr", addr, "--data", str(tmp_path / "d")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    r = subprocess.run(
        [str(BIN), "hub", "user", "ls", "--data", "/proc/no-such-dir"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 125 and "cannot open the hub data dir" in r.stderr
    for addr in ("nonsense", "127.0.0.1:99999", "127.0.0.1:"):
        r = serve(addr)
        assert r.returncode == 125 and "--addr" in r.stderr, addr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = serve(f"127.0.0.1:{s.getsockname()[1]}")
        assert r.returncode == 125 and "cannot listen" in r.stderr


def test_hub_restart_keeps_data_and_tokens(hub: Hub, tmp_path: Path, layers: list[bytes]) -> None:
    """A second server on the same data dir (as after a restart) serves what the first took,
    and honours its tokens: the key lives in the data dir."""
    hub.push_image("alice/restart", "1", layers, hub.bearer("alice", "alice/restart"))
    token = hub.bearer("alice", "alice/restart", "pull")
    # An upload half done on the first server...
    push = hub.bearer("alice", "alice/restart")
    blob = layers[0] + layers[1]
    loc = hub.request("POST", "/v2/alice/restart/blobs/uploads/", auth=push).headers["location"]
    assert hub.request("PATCH", loc, blob[:5000], auth=push).status == 202
    proc, port = start_hub(hub.data, tmp_path / "second.log", "--quiet")
    try:
        other = Hub("127.0.0.1", port, hub.data, proc)
        r = other.request("GET", "/v2/alice/restart/manifests/1", auth=token)
        assert r.status == 200
        # ...is finished on the second, which rebuilds the running hash from the file.
        r = other.request("PATCH", loc, blob[5000:], {"Content-Range": f"5000-{len(blob) - 1}"},
                          auth=push)  # fmt: skip
        assert r.status == 202, r.body
        r = other.request("PUT", f"{loc}?digest={sha(blob)}", b"", auth=push)
        assert r.status == 201, r.body
        assert hub.request("GET", f"/v2/alice/restart/blobs/{sha(blob)}").body == blob
    finally:
        stop_hub(proc)
    assert proc.returncode == 0


def test_user_add_prompts_on_a_terminal(hub: Hub) -> None:
    """Without --password-stdin, `hub user add` asks twice on the terminal, without echo."""
    import fcntl
    import select
    import termios

    def run_on_pty(name: str, answers: list[str]) -> tuple[int, str]:
        master, slave = os.openpty()

        def make_controlling_tty() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        proc = subprocess.Popen(
            [str(BIN), "hub", "user", "add", name, "--data", str(hub.data)],
            stdin=slave, stdout=slave, stderr=slave,
            start_new_session=True, preexec_fn=make_controlling_tty,
        )  # fmt: skip
        os.close(slave)
        out = b""
        pending = list(answers)
        try:
            while True:
                ready, _, _ = select.select([master], [], [], 30)
                if not ready:
                    break
                try:
                    data = os.read(master, 1024)
                except OSError:
                    break  # the child closed the terminal
                if not data:
                    break
                out += data
                if data.rstrip().endswith(b":") and pending:  # a prompt, echo now off
                    os.write(master, pending.pop(0).encode() + b"\n")
        finally:
            os.close(master)
            if proc.poll() is None:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        return proc.wait(30), out.decode(errors="replace")

    code, out = run_on_pty("frank", ["frank-pw", "frank-pw"])
    assert code == 0, out
    assert "Password:" in out and "Retype password:" in out
    assert "frank-pw" not in out  # not echoed
    assert hub.token("frank", password="frank-pw").status == 200
    code, out = run_on_pty("grace", ["one", "two"])
    assert code == 125 and "passwords do not match" in out
    assert "grace" not in hub.cli("user", "ls").stdout
