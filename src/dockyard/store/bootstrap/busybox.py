"""``dockyard image bootstrap busybox``: busybox:latest from Debian's busybox-static, offline.

The same host binary always gives the same image ID: file times are clamped to the binary's
mtime and the config's "created" is that time too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

from dockyard.errors import Unavailable
from dockyard.image.config import DEFAULT_PATH_ENV, new_config
from dockyard.image.layer import write_layer
from dockyard.image.manifest import OCI_LAYER
from dockyard.image.reference import parse_reference
from dockyard.store.archives import adding
from dockyard.store.images import LayerBlob
from dockyard.store.store import Store

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
users:x:100:
nogroup:x:65534:
"""


def is_static_elf(path: str) -> bool:
    """True for a 64-bit little-endian ELF with no PT_INTERP (no dynamic loader needed)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return False
        phoff = int.from_bytes(head[32:40], "little")
        phentsize = int.from_bytes(head[54:56], "little")
        phnum = int.from_bytes(head[56:58], "little")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    pt_interp = 3
    return all(
        int.from_bytes(table[i * phentsize : i * phentsize + 4], "little") != pt_interp
        for i in range(phnum)
    )


def find_static_busybox() -> str:
    for path in BUSYBOX_CANDIDATES:
        if os.path.isfile(path) and is_static_elf(path):
            return path
    raise Unavailable(
        "a static busybox is needed: install Debian's busybox-static"
        " (apt-get install busybox-static)"
    )


def make_rootfs(dest: str, busybox: str) -> None:
    for d, mode in (
        ("bin", 0o755),
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("root", 0o700),
        ("home", 0o755),
        ("usr", 0o755),
        ("usr/sbin", 0o755),
        ("var", 0o755),
        ("var/spool", 0o755),
        ("var/spool/mail", 0o755),
        ("var/www", 0o755),
    ):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
        os.chmod(os.path.join(dest, d), mode)
    target = os.path.join(dest, "bin", "busybox")
    shutil.copyfile(busybox, target)
    os.chmod(target, 0o755)
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for name in sorted(set(applets.stdout.split())):
        if name != "busybox" and "/" not in name:
            os.link(target, os.path.join(dest, "bin", name))
    for name, text in (("passwd", PASSWD), ("group", GROUP)):
        with open(os.path.join(dest, "etc", name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(dest, "etc", name), 0o644)


def bootstrap_busybox(store: Store, tag: str = "busybox:latest") -> str:
    busybox = find_static_busybox()
    stamp = int(os.stat(busybox).st_mtime)
    version = subprocess.run([busybox], capture_output=True, text=True).stdout.split("\n", 1)[0]
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
    ref = parse_reference(tag)
    with tempfile.TemporaryDirectory(prefix="dockyard-bootstrap-") as tmp:
        rootfs = os.path.join(tmp, "rootfs")
        os.mkdir(rootfs)
        make_rootfs(rootfs, busybox)
        for dirpath, dirnames, filenames in os.walk(rootfs):
            for n in dirnames + filenames + ["."]:
                os.utime(os.path.join(dirpath, n), (stamp, stamp), follow_symlinks=False)
        with adding(store) as new_blobs, store.content.writer() as w:
            written = write_layer(rootfs, w, from_overlay_upper=False, mtime_clamp=stamp)
            digest = w.commit()
            new_blobs.append(digest)
            history = [
                {
                    "created": created,
                    "created_by": f"dockyard image bootstrap busybox ({version.strip()})",
                }
            ]
            config = new_config(
                [written.diff_id],
                {"Env": [DEFAULT_PATH_ENV], "Cmd": ["sh"]},
                history,
                created=created,
            )
            return store.images.add(config, [LayerBlob(digest, OCI_LAYER, w.size)], tags=[ref])
