"""Health checks, on the engine's side: what a start hands the monitor, and ``State.Health``
read back.

The container's monitor runs the checks (runtime/monitor.py with runtime/healthcheck.py):
``runc exec`` of the test every interval, with its timeout, results kept as Docker keeps them.
The engine writes two files into the run dir before the monitor is let go:

* ``healthcheck.json``: the check to run (Docker's ``HealthConfig`` with the defaults filled
  in: interval and timeout 30 s, 3 retries), read once by the monitor; with it ``Journal``,
  the event journal's directory, and ``Attributes``, the container's attributes for its
  events (labels, ``image``, ``name``), for the ``health_status: <status>`` event the
  monitor appends at each change of status, as Docker's daemon does. ``rename`` rewrites
  ``Attributes`` (Docker's event after a rename carries the new name); the monitor reads
  them again when it emits;
* ``health.json``: Docker's ``State.Health`` (``starting``, a failing streak of 0, the log the
  container's last run ended with), which the monitor rewrites after every check.

``inspect``/``ps`` read ``health.json`` while the container runs; when it ends the last one is
kept in the container's record with the status ``unhealthy``, as Docker does when it stops a
container's health monitor.
"""

from __future__ import annotations

import os

from dockyard import fastjson as json
from dockyard.model.container import Health, Healthcheck, HealthResult, replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

DEFAULT_INTERVAL = 30_000_000_000  # ns; moby's defaultProbeInterval
DEFAULT_TIMEOUT = 30_000_000_000
DEFAULT_RETRIES = 3
MIN_DURATION = 1_000_000  # 1 ms: Docker's containertypes.MinimumDuration
LOG_ENTRIES = 5

CONFIG_FILE = "healthcheck.json"
STATE_FILE = "health.json"


def effective(check: Healthcheck | None) -> Healthcheck | None:
    """The check the container runs (None: none, ``NONE``, or a kind Docker does not run),
    with Docker's defaults."""
    if check is None or not check.test or check.test[0] not in ("CMD", "CMD-SHELL"):
        return None
    return replace(
        check,
        interval=check.interval or DEFAULT_INTERVAL,
        timeout=check.timeout or DEFAULT_TIMEOUT,
        retries=check.retries or DEFAULT_RETRIES,
    )


def seed(
    run_dir: str,
    check: Healthcheck,
    previous: Health | None,
    journal: str,
    attributes: Mapping[str, str],
) -> Health:
    """Write what the monitor needs for a run of a container with ``check`` (effective),
    whose events go to the journal in ``journal`` with ``attributes``; the health it starts
    with (Docker keeps the log of earlier runs)."""
    health = Health("starting", 0, previous.log if previous is not None else ())
    config = {
        "Test": list(check.test),
        "Interval": check.interval,
        "Timeout": check.timeout,
        "StartPeriod": check.start_period,
        "Retries": check.retries,
        "Journal": journal,
        "Attributes": dict(attributes),
    }
    _write(os.path.join(run_dir, CONFIG_FILE), config)
    _write(os.path.join(run_dir, STATE_FILE), to_json(health))
    return health


def relabel(run_dir: str, attributes: Mapping[str, str]) -> None:
    """The container was renamed: its next health events carry the new ``attributes``
    (nothing to do for a container without a check, or never started)."""
    path = os.path.join(run_dir, CONFIG_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return
    if not isinstance(config, dict):
        return
    config["Attributes"] = dict(attributes)
    try:
        _write(path, config)
    except OSError:
        pass  # the run dir went with the container: nothing reads it any more


def read(run_dir: str) -> Health | None:
    """``health.json`` of a run (None if missing or unreadable)."""
    try:
        with open(os.path.join(run_dir, STATE_FILE), encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    try:
        return from_json(doc)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def ended(run_dir: str, last: Health | None) -> Health | None:
    """What a run's health becomes when the container stops: the monitor's last word, with
    the status ``unhealthy`` (moby: CloseMonitorChannel)."""
    health = read(run_dir) or last
    if health is None:
        return None
    out: Health = replace(health, status="unhealthy")
    return out


def from_json(doc: dict[str, Any]) -> Health:
    return Health(
        status=str(doc["Status"]),
        failing_streak=int(doc.get("FailingStreak") or 0),
        log=tuple(
            HealthResult(
                start=str(e["Start"]),
                end=str(e["End"]),
                exit_code=int(e["ExitCode"]),
                output=str(e.get("Output") or ""),
            )
            for e in (doc.get("Log") or [])[-LOG_ENTRIES:]
        ),
    )


def to_json(h: Health) -> dict[str, Any]:
    """Docker's ``State.Health``."""
    return {
        "Status": h.status,
        "FailingStreak": h.failing_streak,
        "Log": [
            {"Start": r.start, "End": r.end, "ExitCode": r.exit_code, "Output": r.output}
            for r in h.log
        ],
    }


def _write(path: str, doc: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(doc))
    os.rename(tmp, path)
