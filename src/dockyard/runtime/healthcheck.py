"""A container's health check as its monitor runs it: Docker's rules (moby daemon/health.go),
with nothing but the standard library (the monitor runs as ``python -I -S``; it imports this
module only for a container that has a check).

* The check runs every ``Interval`` after the previous one ended, the first one an interval
  after the start; ``CMD`` runs its arguments, ``CMD-SHELL`` runs ``/bin/sh -c``, inside the
  container with its environment, user and working directory (``runc exec``).
* Exit 0 is healthy: the failing streak goes back to 0. Anything else (a check that could not
  run or exceeded ``Timeout``: -1) is a failure: the streak grows, and reaching ``Retries``
  makes the container unhealthy. Failures while still ``starting`` within ``StartPeriod`` of
  the start do not count.
* Output (stdout and stderr together) keeps its first 4096 bytes; the log its last 5 results.
* A paused container's check fails as Docker's does (an exec into a paused container is
  refused), and is not run.

The state is written to ``health.json`` in the run dir after each check (Docker's
``State.Health``), where the engine reads it. Each change of status (``starting`` to
``healthy``, ``healthy`` to ``unhealthy``...; not every check, not the start, not the stop)
is a ``health_status: <status>`` event in the store's event journal, as Docker's daemon logs
it: ``healthcheck.json`` names the journal's directory (``Journal``) and the container's
attributes (``Attributes``), read again at each event since ``rename`` rewrites them.
"""

from __future__ import annotations

import _json
import os
import time

from dockyard.fastjson import scan
from dockyard.store.journal import append

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

MAX_OUTPUT = 4096  # moby: maxOutputLen
LOG_ENTRIES = 5  # moby: maxLogEntries
EXIT_TIMEOUT = -1  # the result of a check that ran out of time or could not run


def _scan_json(text: str) -> object:
    try:
        value, _ = scan(text.strip(), 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    return value


class Check:
    """``healthcheck.json`` as the engine wrote it (durations in nanoseconds)."""

    def __init__(self, doc: dict[str, object]) -> None:
        test = doc.get("Test")
        if not isinstance(test, list) or not test or not all(isinstance(t, str) for t in test):
            raise ValueError("Test must be a list of strings")
        self.test: list[str] = test
        self.interval = _ns(doc, "Interval")
        self.timeout = _ns(doc, "Timeout")
        self.start_period = _ns(doc, "StartPeriod")
        retries = doc.get("Retries")
        self.retries = retries if isinstance(retries, int) and retries > 0 else 1
        journal = doc.get("Journal")
        self.journal = journal if isinstance(journal, str) and journal else None
        self.attributes = _attributes(doc)

    def argv(self) -> list[str]:
        """The process the check runs in the container."""
        kind, args = self.test[0], self.test[1:]
        if kind == "CMD-SHELL":
            return ["/bin/sh", "-c", *args]
        if kind == "CMD":
            return args
        raise ValueError(f"unknown Healthcheck test {kind!r}")


def _attributes(doc: dict[str, object]) -> dict[str, str]:
    attrs = doc.get("Attributes")
    if not isinstance(attrs, dict):
        return {}
    return {str(k): str(v) for k, v in attrs.items()}


def _ns(doc: dict[str, object], key: str) -> int:
    value = doc.get(key)
    return value if isinstance(value, int) and value > 0 else 0


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): "200ms", "30s", "1m30s", "1.5s", "2h0m0s"."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _fraction(ns, size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _fraction(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


class Tracker:
    """The health of one run of the container: results in, ``health.json`` out."""

    def __init__(self, path: str, check: Check, started: float, state: object) -> None:
        self.path = path
        self.check = check
        self.started = started  # time.time() of the container's start
        self.status = "starting"
        self.streak = 0
        # (start, end, exit code, output) of the last checks, the earlier runs' first.
        self.log: list[tuple[str, str, int, str]] = []
        if isinstance(state, dict) and isinstance(state.get("Log"), list):
            for e in state["Log"][-LOG_ENTRIES:]:
                if isinstance(e, dict):
                    code = e.get("ExitCode")
                    self.log.append(
                        (
                            str(e.get("Start", "")),
                            str(e.get("End", "")),
                            code if isinstance(code, int) else EXIT_TIMEOUT,
                            str(e.get("Output", "")),
                        )
                    )

    def record(self, start_ns: int, end_ns: int, exit_code: int, output: str) -> str | None:
        """One result (moby: handleProbeResult); the new status if it changed."""
        before = self.status
        if exit_code == 0:
            self.streak = 0
            self.status = "healthy"
        else:
            counts = True
            if self.status == "starting":
                # Within the start period, failures of a container never healthy yet are
                # not counted.
                since_start = start_ns / 1e9 - self.started
                counts = since_start >= self.check.start_period / 1e9
            if counts:
                self.streak += 1
                if self.streak >= self.check.retries:
                    self.status = "unhealthy"
        self.log.append((_rfc3339(start_ns), _rfc3339(end_ns), exit_code, output))
        del self.log[:-LOG_ENTRIES]
        self.save()
        return self.status if self.status != before else None

    def save(self) -> None:
        entries = ", ".join(
            f'{{"Start": "{start}", "End": "{end}", "ExitCode": {code}, '
            f'"Output": {_json.encode_basestring(output)}}}'
            for start, end, code, output in self.log
        )
        text = (
            f'{{"Status": "{self.status}", "FailingStreak": {self.streak}, "Log": [{entries}]}}\n'
        )
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                f.write(text)
            os.rename(tmp, self.path)
        except OSError:
            pass  # a full disk must not stop the container; the next check writes again


def timeout_message(check: Check) -> str:
    return f"Health check exceeded timeout ({go_duration(check.timeout)})"


def paused_message(cid: str) -> str:
    return f"Container {cid} is paused, unpause the container before exec"


def _rfc3339(ns: int) -> str:
    """Go's RFC3339Nano, as Docker's JSON has it: trailing zeros of the fraction dropped."""
    sec, frac = divmod(ns, 1_000_000_000)
    t = time.gmtime(sec)
    fraction = f".{frac:09d}".rstrip("0").rstrip(".")
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}{fraction}Z"
    )


class Prober:
    """Runs the checks of one container for its monitor, without blocking it: the monitor's
    poll loop asks :meth:`wait_ms` how long it may sleep, polls :meth:`fds`, and hands over
    readable fds, reaped children and the passing of time."""

    def __init__(
        self,
        run_dir: str,
        cid: str,
        runtime: list[str],
        spawn: Callable[[list[str], tuple[int, int, int]], int],
        devnull: int,
        runtime_message: Callable[[str], str],
    ) -> None:
        with open(os.path.join(run_dir, "healthcheck.json")) as f:
            self.check = Check(_load(f.read()))
        state: object = None
        try:
            with open(os.path.join(run_dir, "health.json")) as f:
                state = _load(f.read())
        except (OSError, ValueError):
            pass
        self.tracker = Tracker(os.path.join(run_dir, "health.json"), self.check, 0.0, state)
        self.run_dir = run_dir
        self.cid = cid
        self.runtime = runtime  # [runc, --root, DIR]
        self.spawn = spawn
        self.devnull = devnull
        self.runtime_message = runtime_message
        self.next_at: float | None = None  # monotonic time of the next check
        self.pid = 0  # the running check's runtime process
        self.fd = -1  # its output
        self.output = bytearray()
        self.status: int | None = None
        self.start_ns = 0
        self.deadline = 0.0

    def started(self) -> None:
        """The container runs: the first check is due an interval from now."""
        self.tracker.started = time.time()
        self.next_at = time.monotonic() + self.check.interval / 1e9

    def wait_ms(self) -> int | None:
        now = time.monotonic()
        if self.pid:
            due = self.deadline
        elif self.next_at is not None:
            due = self.next_at
        else:
            return None
        return max(1, int((due - now) * 1000) + 1)

    def fds(self) -> list[int]:
        return [self.fd] if self.fd >= 0 else []

    def tick(self) -> None:
        now = time.monotonic()
        if self.pid:
            if self.fd < 0 and self.status is not None:
                self._finish()
            elif now >= self.deadline:
                self._abandon()
                self._done(EXIT_TIMEOUT, timeout_message(self.check))
        elif self.next_at is not None and now >= self.next_at:
            self._begin()

    def readable(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            os.close(self.fd)
            self.fd = -1
            self.tick()
            return
        room = MAX_OUTPUT - len(self.output)
        if room > 0:
            self.output += data[:room]

    def reaped(self, pid: int, status: int) -> bool:
        if not self.pid or pid != self.pid:
            return False
        self.status = status
        if self.fd < 0:
            self._finish()
        return True

    def stop(self) -> None:
        """The container is gone: a check under way is given up (its result is not kept)."""
        self.next_at = None
        if self.pid:
            self._abandon()
            self.pid = 0

    # ------------------------------------------------------------------ one check

    def _begin(self) -> None:
        self.next_at = None
        self.start_ns = time.time_ns()
        if os.path.exists(os.path.join(self.run_dir, "paused")):
            self._record(EXIT_TIMEOUT, paused_message(self.cid))
            return
        for name in (".health.pid", ".health-exec.log"):
            try:
                os.unlink(os.path.join(self.run_dir, name))
            except FileNotFoundError:
                pass
        r, w = os.pipe()
        argv = [
            *self.runtime,
            "--log",
            os.path.join(self.run_dir, ".health-exec.log"),
            "--log-format",
            "json",
            "exec",
            "--pid-file",
            os.path.join(self.run_dir, ".health.pid"),
            self.cid,
            *self.check.argv(),
        ]
        try:
            self.pid = self.spawn(argv, (self.devnull, w, w))
        except OSError as e:
            os.close(r)
            self._record(EXIT_TIMEOUT, str(e))
            return
        finally:
            os.close(w)
        os.set_blocking(r, False)
        self.fd = r
        self.output = bytearray()
        self.status = None
        self.deadline = time.monotonic() + (self.check.timeout / 1e9 if self.check.timeout else 1e9)

    def _finish(self) -> None:
        status = self.status or 0
        code = os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else EXIT_TIMEOUT
        output = self.output.decode("utf-8", "replace")
        try:
            with open(os.path.join(self.run_dir, ".health-exec.log"), errors="replace") as f:
                failure = self.runtime_message(f.read())
        except OSError:
            failure = ""
        if failure:
            # The runtime could not run the check (a command missing...): Docker reports
            # the exec's error with -1.
            code, output = EXIT_TIMEOUT, f"OCI runtime exec failed: {failure}: unknown"
        self._done(code, output)

    def _abandon(self) -> None:
        """Kill the check's process in the container and the runtime process running it."""
        try:
            with open(os.path.join(self.run_dir, ".health.pid")) as f:
                inner = int(f.read().strip() or 0)
        except (OSError, ValueError):
            inner = 0
        for pid in (inner, self.pid):
            if pid > 0:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _done(self, code: int, output: str) -> None:
        self.pid = 0
        self._record(code, output)

    def _record(self, code: int, output: str) -> None:
        changed = self.tracker.record(self.start_ns, time.time_ns(), code, output)
        if changed is not None:
            self._event(changed)
        self.next_at = time.monotonic() + self.check.interval / 1e9

    def _event(self, status: str) -> None:
        """Docker's ``health_status: <status>`` event (moby: handleProbeResult logs one
        when the status differs from the one before the check)."""
        if self.check.journal is None:
            return  # a check written without a journal (an engine before events)
        attributes = self.check.attributes
        try:
            # The attributes as they are now: a rename rewrites them (engine's health.py).
            with open(os.path.join(self.run_dir, "healthcheck.json")) as f:
                attributes = _attributes(_load(f.read())) or attributes
        except (OSError, ValueError):
            pass
        append(self.check.journal, "container", f"health_status: {status}", self.cid, attributes)


def _load(text: str) -> dict[str, object]:
    doc = _scan_json(text)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc
