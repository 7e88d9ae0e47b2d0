"""A container's list entry (``docker ps``, ``GET /containers/json``) from its stored form,
without the model.

The store keeps, with each container's row, the entry ``shapes.list_entry`` made of it when
the row was written: everything ``GET /containers/json`` shows but the STATUS text, which
moves with the clock, and in its place the few state fields that text is made of (under
``STATE``, with the monitor's identity the engine checks a running row by). Listing turns
such an entry into the API's with :func:`finish`, so ``ps`` decodes no container and loads
none of the model's classes: with one running container they were a sixth of its time, as
much as the rest of the listing (docker's own ``ps`` asks a daemon that holds its snapshots
in memory). The model's ``list_shape`` goes through :func:`finish` too: one text, one
entry, whichever way a row is read.
"""

from __future__ import annotations

from dockyard.units import human_duration, parse_time

TYPE_CHECKING = False  # not typing's: `ps` loads this module
if TYPE_CHECKING:
    from typing import Any

# The key of an entry's state fields while it is stored; :func:`finish` takes it out.
STATE = "_state"
# The stored entry's form, kept in its state fields: a row whose entry has another (a newer
# release wrote it) is listed from the row itself.
VERSION = 1


def finish(entry: dict[str, Any], now: float) -> dict[str, Any]:
    """A stored entry as ``GET /containers/json`` shows it at ``now``: its STATUS written in
    (in place: the key keeps Docker's order), the state fields taken out."""
    st = entry.pop(STATE)
    entry["Status"] = status_line(
        entry["State"], st["exit_code"], st["started_at"], st["finished_at"], st["health"], now
    )
    return entry


def status_line(
    status: str, exit_code: int, started_at: str, finished_at: str, health: str, now: float
) -> str:
    """The STATUS of ``docker ps`` and of ``GET /containers/json``: "Up 2 minutes",
    "Up 5 seconds (healthy)", "Restarting (1) 2 seconds ago", "Created", "Exited (0) 5
    seconds ago" (moby's State.String). ``health``: the health check's status, "" without
    one."""
    if status == "restarting":
        exited = parse_time(finished_at) or now
        return f"Restarting ({exit_code}) {human_duration(now - exited)} ago"
    if status in ("running", "paused"):
        since = parse_time(started_at) or now
        text = "Up " + human_duration(now - since)
        if status == "paused":
            return text + " (Paused)"
        if health:
            return f"{text} ({'health: starting' if health == 'starting' else health})"
        return text
    if status == "created":
        return "Created"
    if status == "dead":
        return "Dead"
    finished = parse_time(finished_at)
    ago = human_duration(now - finished) + " ago" if finished is not None else "N/A"
    return f"Exited ({exit_code}) {ago}"
