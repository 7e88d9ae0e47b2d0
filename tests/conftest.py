"""Shared fixtures: an isolated store per test, the real CLI, a busybox image.

Tests run as root against real overlayfs and real processes; each gets its own ``--root`` and
``--run-root`` under pytest's tmp dir, never /var/lib/dockyard.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "dockyard"

# Containers join a bridge network by default: test stores name their bridges dyt* and take
# subnets from 10.213.128.0/17, so they never meet a real dockyard0 or Docker's docker0.
os.environ.setdefault("DOCKYARD_BRIDGE_PREFIX", "dyt")
os.environ.setdefault("DOCKYARD_ADDRESS_POOL", "10.213.128.0/17")
# Containers' cgroups go under a parent of this session's own (runtime/cgroups.py): a test's
# `system check --repair` never judges another store's cgroups, and tests can count theirs.
os.environ.setdefault("DOCKYARD_CGROUP_PARENT", f"dyt-{os.getpid()}")
# docker.io is served by a closed loopback port: a test that would pull from Docker Hub fails
# fast instead of sending traffic off this machine.
os.environ["DOCKYARD_REGISTRY_MIRROR"] = "http://127.0.0.1:9"


@dataclass
class CLI:
    """Runs the real ``dockyard`` command against one store."""

    root: Path
    run_root: Path

    def __call__(
        self, *args: str, input: bytes | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN), "--root", str(self.root), "--run-root", str(self.run_root), *args],
            input=input.decode("latin-1") if input is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"dockyard {' '.join(args)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def raw(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [str(BIN), "--root", str(self.root), "--run-root", str(self.run_root), *args],
            input=stdin,
            capture_output=True,
            timeout=120,
        )


def terminate(proc: subprocess.Popen[bytes], timeout: float = 10, *, group: bool = False) -> int:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; with ``group``, to the
    whole process group of a process started with ``start_new_session``. Its exit status."""
    if proc.poll() is None:
        kill = (lambda s: os.killpg(proc.pid, s)) if group else proc.send_signal
        kill(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill(signal.SIGKILL)
            proc.wait()
    return proc.returncode


def tree_snapshot(path: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under ``path`` with its mode, size and (for links) target: to show that a
    failed operation changed nothing."""
    out: dict[str, tuple[int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, path)
            if rel in ("metadata.db-shm", "metadata.db-wal", "metadata.db", "store.lock"):
                continue
            st = os.lstat(full)
            link = os.readlink(full) if os.path.islink(full) else ""
            out[rel] = (st.st_mode, st.st_size if not os.path.isdir(full) else 0, link)
    return out


def db_snapshot(root: Path) -> dict[str, list[tuple[object, ...]]]:
    import sqlite3

    conn = sqlite3.connect(root / "metadata.db")
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            t: sorted(tuple(r) for r in conn.execute(f"SELECT * FROM {t}"))  # noqa: S608
            for t in tables
            if t != "sqlite_sequence"
        }
    finally:
        conn.close()


# ``./dev.sh test --fast``: the inner loop's lane, about a minute on a quiet machine. Modules
# whose tests each take a fraction of a second (measured with --junitxml), the engine driven
# in-process, and no test marked slow. CI runs everything.
FAST_MODULES = {
    "tests/test_collection.py",
    "tests/test_fastjson.py",
    "tests/test_gojson.py",
    "tests/model/test_values.py",
    "tests/model/test_codec.py",
    "tests/model/test_docker.py",
    "tests/engine/test_containers.py",
    "tests/engine/test_migration.py",
    "tests/image/test_reference.py",
    "tests/image/test_layer.py",
    "tests/image/test_archive.py",
    "tests/image/test_unpack.py",
    "tests/store/test_content.py",
    "tests/store/test_images.py",
    "tests/runtime/test_spec.py",
    "tests/runtime/test_fs.py",
    "tests/runtime/test_oci.py",
    "tests/runtime/test_seccomp_compact.py",
    "tests/runtime/test_isolation.py",
    "tests/runtime/test_monitor.py",
    "tests/builder/test_units.py",
    "tests/cli/test_errors.py",
    "tests/cli/test_gotemplate_oracle.py",
    "tests/cli/test_run_flags.py",
    "tests/network/test_ipam.py",
    "tests/network/test_networks.py",
    "tests/httpd/test_router_json.py",
    "tests/httpd/test_server.py",
    "tests/hub/test_paths.py",
    "tests/hub/test_protocol.py",
    "tests/hub/test_auth.py",
    "tests/hub/test_server_limits.py",
    "tests/registry_client/test_units.py",
    "tests/registry_client/test_retries.py",
    "tests/registry_client/test_credhelpers.py",
    "tests/api/test_errors.py",
    "tests/api/test_daemon.py",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast", action="store_true", help="the inner loop's lane: fast modules, not slow"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--fast"):
        return
    root = Path(__file__).resolve().parent.parent
    keep, drop = [], []
    for item in items:
        module = str(Path(str(item.path)).resolve().relative_to(root))
        fast = module in FAST_MODULES and item.get_closest_marker("slow") is None
        (keep if fast else drop).append(item)
    items[:] = keep
    config.hook.pytest_deselected(items=drop)


@pytest.fixture(scope="session", autouse=True)
def session_cgroup_parent() -> Iterator[str]:
    """The session's cgroup parent, taken away at the end (with anything a test leaked)."""
    parent = os.environ["DOCKYARD_CGROUP_PARENT"]
    yield parent
    if parent.startswith("dyt-"):  # ours, not one the caller set
        from tests.runtime.leftovers import remove_cgroup_parent

        remove_cgroup_parent(parent)


@pytest.fixture(scope="session")
def busybox_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with busybox:latest bootstrapped once per session; tests copy it."""
    base = tmp_path_factory.mktemp("template")
    cli = CLI(base / "root", base / "run")
    cli("image", "bootstrap", "busybox")
    return base / "root"


@pytest.fixture
def dy(tmp_path: Path) -> Iterator[CLI]:
    """The CLI on an empty store (apart from the one ``bb`` and ``ctr`` use)."""
    yield CLI(tmp_path / "empty-root", tmp_path / "empty-run")
    remove_networks(tmp_path / "empty-root", tmp_path / "empty-run")


@pytest.fixture
def bb(tmp_path: Path, busybox_template: Path) -> Iterator[CLI]:
    """The CLI on a store that has busybox:latest."""
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", str(busybox_template), str(root)], check=True)
    yield CLI(root, tmp_path / "run")
    remove_networks(root, tmp_path / "run")
    shutil.rmtree(root, ignore_errors=True)


def remove_networks(root: Path, run_root: Path) -> None:
    """Stop the run root's network helper; delete the bridge devices and iptables rules of
    the store's networks."""
    import sqlite3

    from dockyard.network import bridge, firewall, netd

    netd.stop(str(run_root))

    if not (root / "metadata.db").exists():
        return
    conn = sqlite3.connect(root / "metadata.db")
    try:
        names = [r[0] for r in conn.execute("SELECT bridge FROM networks")]
    except sqlite3.Error:
        names = []
    finally:
        conn.close()
    for name in names:
        bridge.delete_bridge(name)
        firewall.teardown_network(name)


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tar holding ``files`` (parent dirs added)."""
    from tests.helpers import tar_of

    return tar_of(files)


def add_child_image(
    root: Path, base: str, files: dict[str, bytes], tag: str, *, parent: bool = True
) -> str:
    """An image made of ``base``'s layers plus one layer with ``files``, as a build or commit
    would record it (its parent is ``base`` when ``parent``)."""
    from dockyard.image.config import new_config
    from dockyard.image.digest import digest_bytes
    from dockyard.image.manifest import OCI_LAYER
    from dockyard.image.reference import parse_reference
    from dockyard.store import Store
    from dockyard.store.images import LayerBlob

    store = Store(str(root))
    try:
        base_id = store.images.resolve(base)
        base_cfg = store.images.config(base_id)
        blobs = [
            LayerBlob(la.blob, store.images.blob_media_type(la.blob), store.content.size(la.blob))
            for la in store.images.layers(base_id)
        ]
        data = layer_tar(files)
        digest = store.content.ingest_bytes(data)
        history = [*base_cfg.history, {"created_by": f"COPY {' '.join(files)} /"}]
        cfg = new_config([*base_cfg.diff_ids, digest_bytes(data)], base_cfg.config, history)
        return store.images.add(
            cfg,
            [*blobs, LayerBlob(digest, OCI_LAYER, len(data))],
            tags=[parse_reference(tag)],
            parent=base_id if parent else None,
        )
    finally:
        store.close()


def _cleanup_containers(cli: CLI) -> None:
    """Remove every container of this store and anything the runtime left behind."""
    ids = cli("ps", "-aq", "--no-trunc", check=False).stdout.split()
    if ids:
        cli("rm", "-f", *ids, check=False)
    remove_runtime_leftovers(cli)
    remove_networks(cli.root, cli.run_root)


def remove_runtime_leftovers(cli: CLI) -> None:
    """Force-delete every runc container of the run root (also build steps', which have no
    container row), then lazily unmount whatever is still mounted under the store."""
    state = cli.run_root / "runc"
    if state.is_dir():
        for cid in os.listdir(state):
            subprocess.run(
                ["runc", "--root", str(state), "delete", "-f", cid],
                check=False,
                capture_output=True,
            )
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    for m in sorted(mounts, reverse=True):
        if m.startswith(str(cli.root)):
            subprocess.run(["umount", "-l", m], check=False)


@pytest.fixture
def ctr(tmp_path: Path, busybox_template: Path) -> Iterator[CLI]:
    """The CLI on a busybox store; every container is force-removed afterwards."""
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", str(busybox_template), str(root)], check=True)
    cli = CLI(root, tmp_path / "run")
    try:
        yield cli
    finally:
        _cleanup_containers(cli)
