"""What ``docker create``/``run`` flags resolve to, before the engine combines them with the
image (its own module: ``exec``, ``ps`` and ``stop`` never need it). A NamedTuple: its defaults are
shared, and nothing mutates them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple


class CreateOptions(NamedTuple):
    """``docker create``/``run`` options after flag parsing (units already converted)."""

    image: str
    cmd: Sequence[str] | None = None
    entrypoint: Sequence[str] | None = None  # None: the image's; []: none
    name: str = ""
    env: Sequence[str] = ()
    workdir: str = ""
    user: str = ""
    group_add: Sequence[str] = ()
    tty: bool = False
    stdin_open: bool = False
    attach: Sequence[str] = ()  # "stdin", "stdout", "stderr"
    hostname: str = ""
    domainname: str = ""
    volumes: Sequence[str] = ()  # -v specs
    tmpfs: Sequence[str] = ()  # --tmpfs /path[:opts]
    auto_remove: bool = False
    read_only: bool = False
    privileged: bool = False
    init: bool = False
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    security_opt: Sequence[str] = ()
    memory: int = 0
    memory_swap: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    pids_limit: int = 0
    ulimits: Sequence[str] = ()  # name=soft[:hard]
    shm_size: int = 0
    sysctls: Mapping[str, str] = {}  # shared default: read only
    network: str = "default"
    labels: Mapping[str, str] = {}  # shared default: read only
    stop_signal: str = ""
    stop_timeout: int | None = None
    runtime: str = ""
    publish: Sequence[str] = ()
    publish_all: bool = False
    expose: Sequence[str] = ()
    network_aliases: Sequence[str] = ()  # --network-alias (user-defined networks only)
    ip: str = ""  # --ip: a static IPv4 on a user-defined network with a user subnet
    extra_hosts: Sequence[str] = ()  # --add-host name:address|host-gateway
    dns: Sequence[str] = ()
    dns_search: Sequence[str] = ()
    dns_options: Sequence[str] = ()
    container_id: str = ""  # chosen by the caller (run launches the monitor first); "" = new
