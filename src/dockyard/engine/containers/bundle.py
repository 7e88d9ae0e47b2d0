"""What a container's run is made of: its RunOptions from the model, the OCI bundle
(config.json) next to the mounted root, the volumes' copy-up, the init binary, and lo up
for ``--network none``. Lifecycle's start calls these in order."""

from __future__ import annotations

import os

from dockyard import fastjson as json  # the C codec without json's re and enum
from dockyard.errors import Conflict

TYPE_CHECKING = False  # not typing's: ~2 ms of `run`'s start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from dockyard.model.container import Container
    from dockyard.runtime.options import RunOptions


def run_options(
    ctr: Container,
    get: Callable[[str], Container],
    container_dir: Callable[[str], str],
    volume_path: Callable[[str], str],
) -> RunOptions:
    """What the runtime runs the container with. ``get`` finds the containers it joins."""
    from dockyard.runtime.options import Mount, RunOptions, Ulimit

    spec = ctr.spec
    mounts = []
    for m in spec.mounts:
        if m.type == "tmpfs":
            opts = [*m.tmpfs_options]
            if m.tmpfs_size:
                opts.append(f"size={m.tmpfs_size}")
            if m.tmpfs_mode:
                opts.append(f"mode={m.tmpfs_mode:o}")
            mounts.append(Mount("tmpfs", "", m.target, m.read_only, options=tuple(opts)))
            continue
        source = volume_path(m.source) if m.type == "volume" else m.source
        mounts.append(
            Mount(
                m.type,
                source,
                m.target,
                m.read_only,
                m.source if m.type == "volume" else "",
                m.propagation or "rprivate",
            )
        )
    network = spec.network_mode
    if network.startswith("container:"):
        other = get(network.split(":", 1)[1])
        if not other.running:
            raise Conflict(f"cannot join network of a non running container: {other.id}")
        network = f"container:{other.state.pid}"  # its namespace, not one of our own
    elif network not in ("none", "host"):
        network = "none"  # a bridge network: start() points the spec at its sandbox
    sec, res = spec.security, spec.resources
    from dockyard.engine.containers.hostopts import host_run_options

    more = host_run_options(ctr, get, container_dir)
    return RunOptions(
        args=spec.args,
        env=spec.env,
        cwd=spec.working_dir or "/",
        user=spec.user,
        group_add=spec.group_add,
        tty=spec.tty,
        open_stdin=spec.open_stdin,
        hostname=spec.hostname,
        domainname=spec.domainname,
        read_only=spec.read_only,
        privileged=sec.privileged,
        cap_add=sec.cap_add,
        cap_drop=sec.cap_drop,
        no_new_privileges=sec.no_new_privileges,
        seccomp_profile=sec.seccomp,
        ulimits=tuple(Ulimit(u.name, u.soft, u.hard) for u in res.ulimits),
        network_mode=network,
        mounts=tuple(mounts),
        init=spec.init,
        sysctls=spec.sysctls,
        shm_size=spec.shm_size or 64 * 1024 * 1024,
        masked_paths=sec.masked_paths,
        readonly_paths=sec.readonly_paths,
        **more,  # namespaces, devices, cgroup limits (hostopts.py)
    )


def write_bundle(
    bundle_dir: str,
    cid: str,
    opts: RunOptions,
    rootfs: str,
    etc_files: Mapping[str, str],
    run_root: str,
) -> None:
    """config.json for the OCI runtime, next to the mounted rootfs."""
    from dockyard.runtime.cgroups import container_path
    from dockyard.runtime.spec import build_spec

    ensure_workdir(rootfs, opts.cwd)
    spec = build_spec(
        opts,
        rootfs="rootfs",
        rootfs_dir=rootfs,
        container_id=cid,
        cgroups_path=container_path(cid),
        cache_dir=run_root,
        etc_files=etc_files,
        init_path=init_binary() if opts.init else None,
    )
    with open(os.path.join(bundle_dir, "config.json"), "w") as f:
        f.write(json.dumps(spec))  # json.dump would take the pure-Python encoder


def populate_volumes(
    rootfs: str, ctr: Container, layers: list[str], volume_path: Callable[[str], str]
) -> None:
    """Docker's copy-up: a volume that is still empty gets what the image has at its mount
    point (files, owners, modes), so ``VOLUME /data`` or ``-v vol:/etc`` starts with the image's
    content. Files are read through the container's root with every symlink resolved inside
    it; the volume's own owner and mode come from the image's layers (``layers``: the upper dir
    then the snapshots, top first), because the init layer's placeholder masks them in the
    merged view."""
    import stat
    import subprocess

    from dockyard.runtime.fs import lookup_in_layers
    from dockyard.runtime.paths import resolve_in_root

    for m in ctr.spec.mounts:
        if m.type != "volume" or not m.source or m.no_copy:
            continue
        source = volume_path(m.source)
        if not os.path.isdir(source) or os.listdir(source):
            continue
        src = resolve_in_root(rootfs, m.target)
        if os.path.isdir(src) and os.listdir(src):
            subprocess.run(["cp", "-a", "--", f"{src}/.", source], check=True)
        st = lookup_in_layers(layers, [p for p in m.target.split("/") if p])
        if st is not None and stat.S_ISDIR(st.st_mode):
            os.chown(source, st.st_uid, st.st_gid)
            os.chmod(source, stat.S_IMODE(st.st_mode))


def ensure_workdir(rootfs: str, cwd: str) -> None:
    """Docker creates a missing WORKDIR at start; resolve it inside the container root. A
    file there is Docker's "Cannot mkdir: /app is not a directory", not a traceback."""
    from dockyard.errors import InvalidArgument
    from dockyard.runtime.paths import resolve_in_root

    path = resolve_in_root(rootfs, cwd)
    if os.path.isdir(path):
        return
    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidArgument(f"Cannot mkdir: {cwd} is not a directory") from None


def init_binary() -> str:
    for p in (
        "/usr/bin/tini-static",
        "/usr/bin/tini",
        "/sbin/tini",
        "/usr/libexec/podman/catatonit",
        "/usr/bin/catatonit",
    ):
        if os.path.exists(p):
            return p
    from dockyard.errors import Unavailable

    raise Unavailable("--init needs a static init binary: install Debian's tini package")


def loopback_up(pid: int) -> None:
    """A new network namespace starts with lo down; Docker's "none" network has it up.

    A forked child joins the container's network namespace (setns) and sets IFF_UP on lo with
    two ioctls: no ip/nsenter processes to exec on every start.
    """
    import fcntl
    import socket
    import struct

    clone_newnet = 0x40000000
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 1
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            from dockyard.libc import function

            if function("setns")(fd, clone_newnet) == 0:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    req = fcntl.ioctl(s, siocgifflags, struct.pack("16sH14x", b"lo", 0))
                    flags = struct.unpack("16sH14x", req)[1] | iff_up
                    fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags))
                code = 0
        finally:
            os._exit(code)
    os.waitpid(child, 0)
