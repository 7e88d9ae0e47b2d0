"""``docker exec``: run a process in a running container through the OCI runtime.

In the foreground the runtime itself proxies the process's stdio, or with ``-t`` the pty it
allocates (runc puts our terminal in raw mode and forwards window size changes), so exec needs
no monitor; ``-d`` leaves the process running on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from dockyard.runtime.oci import ExecProcess

if TYPE_CHECKING:
    from dockyard.runtime.oci import OCIRuntime


def run_exec(
    runtime: OCIRuntime,
    cid: str,
    process: dict[str, Any],
    run_dir: str,
    *,
    tty: bool,
    interactive: bool,
    detach: bool,
) -> int:
    """Run ``process`` in container ``cid``; its exit code (0 once started when detached)."""
    spec_path = os.path.join(run_dir, f"exec-{os.urandom(6).hex()}.json")
    with open(spec_path, "w") as f:
        json.dump(process, f)
    try:
        if detach:
            proc = runtime.exec(
                cid,
                spec_path,
                detach=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            _, err = proc.communicate()
            if proc.returncode and err:
                sys.stderr.write(err.decode(errors="replace"))
            return proc.returncode
        proc = runtime.exec(
            cid,
            spec_path,
            tty=tty,
            stdin=0 if interactive else subprocess.DEVNULL,
            stdout=1,
            stderr=2,
        )
        code = proc.wait()
        failure = proc.runtime_error() if isinstance(proc, ExecProcess) else None
        if failure is not None:
            # The process never ran (not found, not executable): Docker's 127/126.
            raise failure
        return code
    finally:
        try:
            os.unlink(spec_path)
        except FileNotFoundError:
            pass
