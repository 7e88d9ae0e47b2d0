"""What ``docker create``/``run`` flags resolve to, before the engine combines them with the
image (its own module: ``exec``, ``ps`` and ``stop`` never need it, nor dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CreateOptions:
    """``docker create``/``run`` options after flag parsing (units already converted)."""

    image: str
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None  # None: the image's; []: none
    name: str = ""
    env: list[str] = field(default_factory=list)
    workdir: str = ""
    user: str = ""
    group_add: list[str] = field(default_factory=list)
    tty: bool = False
    stdin_open: bool = False
    attach: list[str] = field(default_factory=list)  # "stdin", "stdout", "stderr"
    hostname: str = ""
    domainname: str = ""
    volumes: list[str] = field(default_factory=list)  # -v specs
    tmpfs: list[str] = field(default_factory=list)  # --tmpfs /path[:opts]
    auto_remove: bool = False
    read_only: bool = False
    privileged: bool = False
    init: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    memory: int = 0
    memory_swap: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    pids_limit: int = 0
    ulimits: list[str] = field(default_factory=list)  # name=soft[:hard]
    shm_size: int = 0
    sysctls: dict[str, str] = field(default_factory=dict)
    network: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    stop_timeout: int | None = None
    runtime: str = ""
    publish: list[str] = field(default_factory=list)
    publish_all: bool = False
    expose: list[str] = field(default_factory=list)
