"""System verbs: version, system df, system check, system prune, system restore."""

from __future__ import annotations

import os
import sys

from dockyard.cli.context import Context
from dockyard.cli.output import ago, confirm, human_size, print_deleted, table, trunc_id


def cmd_version(ctx: Context, argv: list[str]) -> int:
    from dockyard import __version__

    ctx.args("version", argv)
    # platform.python_version()/machine() without `platform` (it imports re: ~3 ms)
    print(
        f"Client and engine:\n Version:     {__version__}\n Python:      "
        f"{sys.version.split()[0]}\n OS/Arch:     linux/{os.uname().machine}\n"
        f" Root:        {ctx.engine.root}"
    )
    return 0


def _pct(part: int, whole: int) -> str:
    return f"{human_size(part)} ({round(100 * part / whole) if whole else 0}%)"


def cmd_df(ctx: Context, argv: list[str]) -> int:
    a = ctx.args("system df", argv)
    du = ctx.engine.system.df()
    active = sum(1 for i in du.images if i.containers)
    print(
        table(
            ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
            [
                [
                    "Images",
                    str(len(du.images)),
                    str(active),
                    human_size(du.images_disk),
                    _pct(du.images_reclaimable, du.images_disk),
                ],
                [
                    "Containers",
                    str(du.containers_total),
                    str(du.containers_running),
                    human_size(du.containers_size),
                    _pct(du.containers_reclaimable, du.containers_size),
                ],
                [
                    "Local Volumes",
                    str(du.volumes_total),
                    str(du.volumes_active),
                    human_size(du.volumes_size),
                    _pct(du.volumes_reclaimable, du.volumes_size),
                ],
                [
                    "Build Cache",
                    "0",
                    "0",
                    human_size(du.build_cache_size),
                    human_size(du.build_cache_size),
                ],
            ],
        )
    )
    if a.verbose:
        from dockyard.image.reference import Reference, parse_reference

        rows = []
        for i in du.images:
            refs: list[Reference | None] = [parse_reference(t) for t in i.tags] or [None]
            for t in refs:
                rows.append(
                    [
                        t.familiar_name() if t else "<none>",
                        (t.tag or "<none>") if t else "<none>",
                        trunc_id(i.id),
                        ago(i.created),
                        human_size(i.size),
                        human_size(i.shared_size),
                        human_size(i.unique_size),
                        str(i.containers),
                    ]
                )
        print("\nImages space usage:\n")
        print(
            table(
                [
                    "REPOSITORY",
                    "TAG",
                    "IMAGE ID",
                    "CREATED",
                    "SIZE",
                    "SHARED SIZE",
                    "UNIQUE SIZE",
                    "CONTAINERS",
                ],
                rows,
            )
        )
    return 0


def cmd_check(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "Check the store for consistency and leftovers")
    p.add_argument("--repair", action="store_true", help="Remove leftovers of interrupted work")
    p.add_argument("--verify", action="store_true", help="Re-hash every blob")
    a = p.parse_args(argv)
    r = ctx.engine.system.check(repair=a.repair, verify_blobs=a.verify)
    for line in r.problems:
        print(f"problem: {line}")
    repaired = set(r.repaired)
    for line in r.leftovers:
        print(f"{'removed' if line in repaired else 'leftover'}: {line}")
    if r.consistent:
        state = "consistent"
        if r.leftovers and not a.repair:
            state += f", {len(r.leftovers)} leftovers (run with --repair to remove them)"
        print(f"store {state}")
        return 0
    print(f"store inconsistent: {len(r.problems)} problems", file=sys.stderr)
    return 1


def cmd_prune(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "Remove unused data")
    p.add_argument(
        "-a", "--all", action="store_true", help="Remove all unused images not just dangling ones"
    )
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--volumes", action="store_true", help="Prune volumes")
    a = p.parse_args(argv)
    what = ["all stopped containers", "all networks not used by at least one container"]
    if a.volumes:
        what.append("all volumes not used by at least one container")
    if a.all:
        what += ["all images without at least one container associated to them", "all build cache"]
    else:
        what += ["all dangling images", "all dangling build cache"]
    lines = "".join(f"  - {w}\n" for w in what)
    if not a.force and not confirm(f"This will remove:\n{lines}"):
        return 0
    engine = ctx.engine
    removed, reclaimed = engine.containers.prune()
    print_deleted("Containers", removed)
    print_deleted("Networks", engine.networks.prune())
    if a.volumes:
        # Docker 20.10's system prune --volumes removed every unused volume, named ones too.
        removed, size = engine.volumes.prune(all_volumes=True)
        print_deleted("Volumes", removed)
        reclaimed += size
    from dockyard.cli.images import print_deleted_images

    report = engine.images.prune(all_images=a.all)
    print_deleted_images(report)
    reclaimed += report.reclaimed
    cache = engine.builder.prune(all_entries=a.all)
    print_deleted("build cache objects", cache.deleted)
    reclaimed += cache.reclaimed
    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


def cmd_restore(ctx: Context, argv: list[str]) -> int:
    """``system restore``: what Docker's daemon does when it comes up, for a daemonless
    engine; the boot unit (contrib/systemd/dockyard-restore.service) runs it."""
    ctx.parser(
        "",
        "Start the containers whose restart policy brings them back after a reboot "
        "(always, unless-stopped unless stopped by a user, on-failure after a failure)",
    ).parse_args(argv)
    started, errors = ctx.engine.containers.restore()
    for name in started:
        print(name)
    for e in errors:
        print(f"Error: {e}", file=sys.stderr)
    return 1 if errors else 0
