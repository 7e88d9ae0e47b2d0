"""RUN: the step's command in a container on the step's root, through the OCI runtime.

Build containers are short-lived and attached, so they skip the per-container monitor: the
spec comes from ``runtime.spec.build_spec`` (the same namespaces, capabilities, seccomp
profile and masked paths as ``dockyard run``), and ``runc run`` runs in the foreground with
its output on a pipe. The container never gets a row in the containers table; whatever
happens, it is deleted before the step returns.
"""

from __future__ import annotations

import os
import subprocess
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from dockyard.builder.layerfs import StepFS
from dockyard.runtime.options import Mount

if TYPE_CHECKING:
    from dockyard.builder.host import BuildHost
    from dockyard.builder.state import Flag

HOSTS = (
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
TAIL_LINES = 20


class BridgeAttachment:
    """A network namespace on one of the engine's bridge networks for a build container, as
    ``dockyard run`` wires one (a sandbox helper holds the namespace with its veth pair);
    leaving it ends the helper (the kernel drops the veth with the namespace) and frees the
    address lease."""

    def __init__(self, engine: BuildHost, network: str, owner: str) -> None:
        self.engine = engine
        self.network = network
        self.owner = owner  # the lease's container id: the build container's
        self.sandbox: Any = None
        self.name = ""
        self.address = ""

    def __enter__(self) -> BridgeAttachment:
        from ipaddress import IPv4Network

        from dockyard.network.sandbox import Endpoint, Sandbox, mac_for

        svc = self.engine.networks
        row = svc.for_container(self.network)
        svc.ensure_device(row)  # a bridge lost since it was made (a reboot) comes back
        self.name = str(row["name"])
        self.address = svc.lease(self.name, self.owner)
        try:
            endpoint = Endpoint(
                ifname="eth0",
                host_veth=f"veth{self.owner[-8:]}0",
                bridge=str(row["bridge"]),
                address=self.address,
                prefixlen=IPv4Network(str(row["subnet"])).prefixlen,
                gateway=str(row["gateway"]),
                mac=mac_for(self.address),
            )
            self.sandbox = Sandbox([endpoint])
            self.sandbox.wait_configured()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @property
    def netns_path(self) -> str:
        return str(self.sandbox.netns_path)

    def __exit__(self, *exc: object) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
        if self.name:
            self.engine.networks.release(self.name, self.owner)
            self.name = ""


def _read_interruptibly(fd: int, cancel: Flag | None) -> bytes:
    """``os.read`` that lets Ctrl-C in: a signal can land on a helper thread (the netlink
    library starts some), and then a blocked read in the main thread never sees EINTR.
    A stage told to stop (``cancel``) stops here too."""
    import select

    from dockyard.builder.state import Cancelled

    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            return os.read(fd, 65536)
        if cancel is not None and cancel.is_set():
            raise Cancelled()


class RunResult(NamedTuple):
    exit_code: int
    tail: list[str]  # the last lines of output, for the error message


def _etc_files(fs: StepFS, hostname: str, network: str, address: str) -> dict[str, str]:
    files = {}
    for name in ("hosts", "hostname", "resolv.conf"):
        path = os.path.join(fs.aux, name)
        if name == "hosts":
            text = HOSTS if network != "host" else _read("/etc/hosts", HOSTS)
            if network != "host":
                text += f"{address or '127.0.1.1'}\t{hostname}\n"
        elif name == "hostname":
            text = hostname + "\n"
        else:
            text = _read("/etc/resolv.conf", "")
        with open(path, "w") as f:
            f.write(text)
        files[f"/etc/{name}"] = path
    return files


def _read(path: str, default: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def run_in(
    fs: StepFS,
    engine: BuildHost,
    *,
    args: Sequence[str],
    env: Sequence[str],
    workdir: str,
    user: str,
    network: str,
    run_root: str,
    runtime: str,
    output: Callable[[bytes], None],
    mounts: Sequence[Mount] = (),
    cancel: Flag | None = None,
) -> RunResult:
    """Run ``args`` in ``fs.rootfs`` on ``network`` (none, host, or a bridge network of the
    engine's: "default" is Docker's "bridge"); returns the exit code and the output's last
    lines. Setting ``cancel`` kills the container (another stage failed)."""
    from dockyard.runtime.cleanup import build_container_id

    # The builder's pid is in the ID (the step's work dir name): what a killed build left
    # is known as such by `system check`.
    cid = build_container_id(fs.work)
    hostname = cid.rsplit("-", 1)[-1][:12]
    if network in ("none", "host"):
        return _run(fs, cid, hostname, network, network, args, env, workdir, user, run_root,
                    runtime, output, mounts, cancel)  # fmt: skip
    with BridgeAttachment(engine, network, cid) as net:
        return _run(fs, cid, hostname, f"netns:{net.netns_path}", network, args, env, workdir,
                    user, run_root, runtime, output, mounts, cancel, net.address)  # fmt: skip


def _run(
    fs: StepFS,
    cid: str,
    hostname: str,
    network_mode: str,
    network: str,
    args: Sequence[str],
    env: Sequence[str],
    workdir: str,
    user: str,
    run_root: str,
    runtime: str,
    output: Callable[[bytes], None],
    mounts: Sequence[Mount],
    cancel: Flag | None,
    address: str = "",
) -> RunResult:
    import json

    from dockyard.errors import Unavailable
    from dockyard.runtime.cgroups import container_path
    from dockyard.runtime.cleanup import release_container
    from dockyard.runtime.oci import OCIRuntime
    from dockyard.runtime.options import RunOptions
    from dockyard.runtime.spec import build_spec

    cwd = workdir or "/"
    opts = RunOptions(
        args=tuple(args),
        env=tuple(env),
        cwd=cwd,
        user=user,
        hostname=hostname if network != "host" else "",
        network_mode=network_mode,
        mounts=tuple(mounts),
    )
    spec = build_spec(
        opts,
        rootfs=fs.rootfs,
        rootfs_dir=fs.rootfs,
        container_id=cid,
        cgroups_path=container_path(cid),
        etc_files=_etc_files(fs, hostname, network, address),
        cache_dir=run_root,
    )
    with open(os.path.join(fs.aux, "config.json"), "w") as f:
        f.write(json.dumps(spec))  # json.dump would take the pure-Python encoder
    oci = OCIRuntime(runtime, os.path.join(run_root, runtime))
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    partial = b""
    try:
        proc = subprocess.Popen(
            [oci.binary, "--root", oci.state_root, "run", "--bundle", fs.aux, cid],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except OSError as e:
        raise Unavailable(f"cannot start the OCI runtime {oci.binary}: {e}") from None
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while chunk := _read_interruptibly(fd, cancel):
            output(chunk)
            data = partial + chunk
            lines = data.split(b"\n")
            partial = lines.pop()
            tail.extend(x.decode("utf-8", "replace") for x in lines)
        code = proc.wait()
    except BaseException:
        # Interrupted (Ctrl-C, an error in the output callback): no container outlives us.
        subprocess.run(
            [oci.binary, "--root", oci.state_root, "kill", cid, "KILL"],
            capture_output=True,
            check=False,
        )
        proc.kill()
        proc.wait()
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
        # `runc run` deletes the container as it exits, but drops its state dir even when
        # it could not remove the cgroups (a last task not yet reaped): release what is left.
        release_container(cid, runtime=oci.binary, state_root=oci.state_root)
    if partial:
        tail.append(partial.decode("utf-8", "replace"))
    return RunResult(code, list(tail))
