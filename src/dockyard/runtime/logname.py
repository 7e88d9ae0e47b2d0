"""Where Docker's log drivers keep a container's log: the names alone, apart from the log code
(runtime/logfile.py), so that ``create`` (which makes the empty file) and ``logs`` (which finds
it) do not load the writer and the formats for one path."""

from __future__ import annotations

import os


def log_path(container_dir: str, cid: str, driver: str) -> str:
    """Where ``driver`` writes a container's log, Docker's names ("" for none: nothing is)."""
    if driver == "local":
        return os.path.join(container_dir, "local-logs", "container.log")
    if driver == "none":
        return ""
    return os.path.join(container_dir, f"{cid}-json.log")
