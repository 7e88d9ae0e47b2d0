"""Restart policies (``--restart no|always|on-failure[:N]|unless-stopped``): Docker's restart
manager, for an engine with no daemon to keep it in memory.

Who does what:

* The decision is taken where an exit is recorded (:meth:`Lifecycle.on_exit`, run by the
  container's monitor, by an attached ``run``, or by whoever notices a dead monitor), in the
  same transaction: the container becomes ``restarting``, its restart count grows, and a
  *restarter* is spawned and named as the container's owner (``State.monitor_pid``).
* The restarter (``dockyard container _restart``, :func:`run_restarter`) waits for the
  previous run's monitor to finish, waits out the back-off, then starts the container again
  through the engine's ordinary start: mounts, network, bundle, a new monitor. This is what
  Docker's daemon does from its restart manager (``containerStart`` after the timer), so a
  restart is a start in every respect: the network is set up afresh, ``docker update``'s
  limits apply, the health check starts over.
* ``stop``/``kill`` of a restarting container call the next run off (the row leaves
  ``restarting``; the restarter sees it and leaves); a run already on its way is taken down by
  the restarter itself when it finds it no longer owns the container.

The back-off is Docker's: 100 ms before the first restart, doubled before each next one up to
1 minute, back to 100 ms once a run lasted 10 s. ``system restore`` (run at boot) starts what
Docker's daemon starts when it comes up: ``always`` containers, ``unless-stopped`` ones no
user stopped, and ``on-failure`` ones that failed and have retries left.
"""

from __future__ import annotations

import os
import time

from dockyard.errors import DockyardError, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.engine.containers.lifecycle import Lifecycle
    from dockyard.model.container import Container, ContainerState, RestartPolicy

INTERRUPTED = "the restart was interrupted: the process restarting the container is gone"

FIRST_DELAY_MS = 100  # moby restartmanager: defaultTimeout
MAX_DELAY_MS = 60_000  # maxRestartTimeout
RESET_AFTER_SECONDS = 10.0  # a run this long starts the back-off over
POLL_SECONDS = 0.05  # how often a waiting restarter looks whether it was called off
OLD_MONITOR_SECONDS = 30.0  # the previous run's monitor releasing the runtime


def next_delay_ms(last_ms: int, ran_for: float) -> int:
    """The back-off before the next restart, after one of ``last_ms`` (0: none yet) and a
    run of ``ran_for`` seconds."""
    if ran_for >= RESET_AFTER_SECONDS or last_ms <= 0:
        return FIRST_DELAY_MS
    return min(last_ms * 2, MAX_DELAY_MS)


def restarts_after_exit(
    policy: RestartPolicy, state: ContainerState, exit_code: int, restart_count: int
) -> bool:
    """Whether a run that ended with ``exit_code`` is followed by another (moby's
    restartmanager.ShouldRestart). ``state`` is the container's before the exit: a stop or
    kill asked for this run (``stop_requested``) ends the loop whatever the policy."""
    if state.stop_requested:
        return False
    return _wanted(policy, exit_code, restart_count, state.manually_stopped)


def starts_at_boot(ctr: Container) -> bool:
    """Whether ``system restore`` starts ``ctr`` (moby's daemon restore: a container started
    before, not running, that its policy would restart; a user's stop holds back only
    unless-stopped, as in Docker)."""
    st = ctr.state
    if st.running or not st.ever_started:
        return False
    return _wanted(ctr.spec.restart_policy, st.exit_code, ctr.restart_count, st.manually_stopped)


def _wanted(policy: RestartPolicy, exit_code: int, count: int, manually_stopped: bool) -> bool:
    name = policy.name
    if name == "always":
        return True
    if name == "unless-stopped":
        return not manually_stopped
    if name == "on-failure":
        limit = policy.maximum_retry_count
        return exit_code != 0 and (limit <= 0 or count < limit)
    return False


def spawn_restarter(command: list[str], cid: str, due: float, previous: tuple[int, str]) -> int:
    """Start the process that restarts ``cid`` at ``due`` (epoch seconds) once the previous
    run's monitor ``previous`` (pid, start time) has gone; its pid. Detached: its own
    session, no stdio of ours (an attached ``run`` that recorded the exit returns at once)."""
    import subprocess

    argv = [*command, "_restart", cid, f"{due:.6f}", str(previous[0]), previous[1] or "-"]
    # Not waited for: a CLI exits long before it ends (init reaps it); in the daemon,
    # subprocess reaps it at a later spawn.
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        cwd="/",
    )
    return proc.pid


def run_restarter(lifecycle: Lifecycle, cid: str, due: float, previous: tuple[int, str]) -> None:
    """The body of ``dockyard container _restart``: see the module's docstring."""
    from dockyard.engine.containers.lifecycle import wait_until
    from dockyard.engine.containers.records import alive

    me = os.getpid()

    def owned() -> bool:
        try:
            st = lifecycle.records.load(cid).state
        except NotFound:
            return False
        return st.restarting and st.monitor_pid == me

    # The transaction that named us may still be committing.
    if not wait_until(owned, 10):
        return
    wait_until(lambda: not alive(*previous), OLD_MONITOR_SECONDS)
    while True:
        left = due - time.time()
        if left <= 0:
            break
        time.sleep(min(left, POLL_SECONDS))
        if not owned():
            return  # stopped, killed or removed meanwhile
    try:
        lifecycle.start(cid, restarting=True)
    except DockyardError as e:
        # Docker: a restart that fails leaves the container stopped, with the error.
        failed(lifecycle, cid, str(e))


def restarting(lc: Lifecycle, ctr: Container, ended: ContainerState) -> ContainerState:
    """The state of ``ctr`` (whose run just ended as ``ended``) when its policy restarts it:
    the back-off chosen, and a restarter spawned to wait it out and start the next run. Called
    inside the transaction that records the exit, so the restarter owns it from the start."""
    from dockyard.engine.containers.records import pid_start_time
    from dockyard.model.container import replace
    from dockyard.units import parse_time

    started, finished = parse_time(ctr.state.started_at), parse_time(ended.finished_at)
    ran_for = finished - started if started is not None and finished is not None else 0.0
    delay = next_delay_ms(ctr.state.restart_delay_ms, ran_for)
    previous = (ctr.state.monitor_pid, ctr.state.monitor_start)
    pid = spawn_restarter(lc.command, ctr.id, time.time() + delay / 1000, previous)
    out: ContainerState = replace(
        ended,
        status="restarting",
        restart_delay_ms=delay,
        monitor_pid=pid,
        monitor_start=pid_start_time(pid),
    )
    return out


def interrupted(lc: Lifecycle, cid: str, owner: int) -> None:
    """The restarter ``owner`` of a restarting container died before its next run was
    recorded (killed, a reboot): the container is stopped, as Docker leaves a container whose
    restart did not happen, once what that restarter may have begun is released."""
    from dockyard.engine.containers.lifecycle import read_int, wait_until
    from dockyard.engine.containers.records import alive, pid_start_time
    from dockyard.model.container import replace

    mpid = read_int(os.path.join(lc.records.run_dir_of(cid), "monitor.pid"))
    if mpid:
        # A monitor it launched takes its container down itself once its starter is gone
        # (or the previous run's is still finishing): let it, then release the rest.
        started = pid_start_time(mpid)
        wait_until(lambda: not alive(mpid, started), 30)

    def stopped(c: Container) -> Container:
        if not (c.state.restarting and c.state.monitor_pid == owner):
            return c
        state = replace(
            c.state, status="exited", monitor_pid=0, monitor_start="", error=INTERRUPTED
        )
        out: Container = replace(c, state=state)
        return out

    ctr = lc.records.load(cid)
    if ctr.state.restarting and ctr.state.monitor_pid == owner:
        lc.cleanup_runtime(ctr)
    lc.records.update(cid, stopped)


def failed(lc: Lifecycle, cid: str, error: str) -> None:
    """The restarter's start failed: stopped, with the error (Docker's SetError)."""
    from dockyard.model.container import replace

    me = os.getpid()

    def stopped(c: Container) -> Container:
        if not (c.state.restarting and c.state.monitor_pid == me):
            return c
        state = replace(c.state, status="exited", monitor_pid=0, monitor_start="", error=error)
        out: Container = replace(c, state=state)
        return out

    lc.records.update(cid, stopped)


def call_off(lc: Lifecycle, cid: str) -> bool:
    """``stop``/``kill``/``rm -f`` of a restarting container: its next run is called off (it
    stays stopped, by a user). Returns once its restarter is gone; False when the container
    was not restarting (any more)."""
    from dockyard.engine.containers.lifecycle import wait_until
    from dockyard.engine.containers.records import alive
    from dockyard.model.container import replace

    owner: tuple[int, str] | None = None

    def stopped(c: Container) -> Container:
        nonlocal owner
        if not c.state.restarting:
            return c
        owner = (c.state.monitor_pid, c.state.monitor_start)
        state = replace(
            c.state,
            status="exited",
            monitor_pid=0,
            monitor_start="",
            manually_stopped=True,
            stop_requested=False,
        )
        out: Container = replace(c, state=state)
        return out

    lc.records.update(cid, stopped)
    if owner is None:
        return False
    pid, start = owner
    # A run it was starting is taken down by itself once it sees it was called off.
    wait_until(lambda: not alive(pid, start), 30)
    return True


def restore(lc: Lifecycle) -> tuple[list[str], list[str]]:
    """``system restore``, run at boot: what a reboot left recorded as running is reconciled
    (no restart policy applied: that is this decision), then the containers Docker's daemon
    would start when it comes up are started (:func:`starts_at_boot`). Returns (names
    started, errors)."""
    from dockyard.engine.containers.records import alive

    names: list[str] = []
    errors: list[str] = []
    for ctr in lc.records.all():
        st = ctr.state
        if st.restarting and not alive(st.monitor_pid, st.monitor_start):
            interrupted(lc, ctr.id, st.monitor_pid)
        elif st.running and not st.restarting:
            exited = os.path.exists(os.path.join(lc.records.run_dir_of(ctr.id), "exit.json"))
            if exited or not alive(st.monitor_pid, st.monitor_start):
                lc.on_exit(ctr.id, monitor_pid=st.monitor_pid, apply_policy=False)
        try:
            ctr = lc.records.load(ctr.id)
        except NotFound:
            continue
        if not starts_at_boot(ctr):
            continue
        try:
            lc.start(ctr.id)
            names.append(ctr.name)
        except DockyardError as e:
            errors.append(f"{ctr.name}: {e}")
    return names, errors
