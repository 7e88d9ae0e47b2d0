"""The row contexts of Docker's list commands (docker/cli ``formatter.ContainerContext``,
``imageContext``, ``networkContext``, ``volumeContext``, ``searchContext``,
``historyContext``): what ``{{.Name}}`` means in ``--format``, built from the shapes the
engine returns. Each has the header map its ``table`` line is made from and the default
table format."""

from __future__ import annotations

import time

from dockyard.cli import columns
from dockyard.cli.columns import ellipsis as _ellipsis
from dockyard.cli.gotemplate.values import GoMap, GoStruct, StructDict
from dockyard.cli.output import ago, human_size, parse_time

TYPE_CHECKING = False  # not typing's: `ps` and `images` load this module
if TYPE_CHECKING:
    from typing import Any


def _methods(names: str, **with_args: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """A context's methods: ``names`` take no argument, ``with_args`` list their types."""
    out: dict[str, tuple[str, ...]] = dict.fromkeys(names.split(), ())
    out.update(with_args)
    return out


def _unix_string(text: str) -> str:
    """Go's time.Unix(t, 0).String() in the local zone: "2024-01-02 15:04:05 +0000 UTC"."""
    t = parse_time(text)
    if t is None:
        return "1970-01-01 00:00:00 +0000 UTC"
    lt = time.localtime(int(t))
    return time.strftime("%Y-%m-%d %H:%M:%S %z ", lt) + (lt.tm_zone or "")


def _labels(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in (labels or {}).items())


class ContainerRow(GoStruct):
    go_type = "*formatter.ContainerContext"
    go_methods = _methods(
        "ID Names Image Command CreatedAt RunningFor Ports State Status Size Labels Mounts "
        "LocalVolumes Networks",
        Label=("string",),
    )
    header = {
        **columns.HEADERS,
        "CreatedAt": "CREATED AT",
        "State": "STATE",
        "Labels": "LABELS",
        "Mounts": "MOUNTS",
        "LocalVolumes": "LOCAL VOLUMES",
        "Networks": "NETWORKS",
    }
    table = (
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t"
        "{{.Names}}"
    )

    def __init__(self, data: dict[str, Any], trunc: bool = True) -> None:
        """``data``: an entry of ``GET /containers/json`` (the engine's list_shapes), as
        Docker's CLI builds its rows from the API's list."""
        self.d = data
        self.trunc = trunc

    def ID(self) -> str:  # noqa: N802 - the template names are Go's
        return columns.container_id(self.d, self.trunc)

    def Names(self) -> str:  # noqa: N802
        return columns.names(self.d, self.trunc)

    def Image(self) -> str:  # noqa: N802
        return columns.image(self.d, self.trunc)

    def Command(self) -> str:  # noqa: N802
        return columns.command(self.d, self.trunc)

    def CreatedAt(self) -> str:  # noqa: N802
        lt = time.localtime(int(self.d["Created"]))
        return time.strftime("%Y-%m-%d %H:%M:%S %z ", lt) + (lt.tm_zone or "")

    def RunningFor(self) -> str:  # noqa: N802
        return columns.running_for(self.d, self.trunc)

    def Ports(self) -> str:  # noqa: N802
        return columns.ports(self.d, self.trunc)

    def State(self) -> str:  # noqa: N802
        return str(self.d["State"])

    def Status(self) -> str:  # noqa: N802
        return columns.status(self.d, self.trunc)

    def Size(self) -> str:  # noqa: N802
        return columns.size(self.d, self.trunc)

    def Labels(self) -> str:  # noqa: N802
        return _labels(self.d.get("Labels"))

    def Label(self, name: str) -> str:  # noqa: N802
        return str((self.d.get("Labels") or {}).get(name, ""))

    def Mounts(self) -> str:  # noqa: N802
        names = []
        for m in self.d.get("Mounts") or ():
            name = m.get("Name") or m.get("Source", "")
            names.append(_ellipsis(name, 15) if self.trunc else name)
        return ",".join(names)

    def LocalVolumes(self) -> str:  # noqa: N802
        return str(sum(1 for m in self.d.get("Mounts") or () if m.get("Driver") == "local"))

    def Networks(self) -> str:  # noqa: N802
        return ",".join(sorted((self.d.get("NetworkSettings") or {}).get("Networks") or {}))


class ImageRow(GoStruct):
    """One (repository, tag) line of ``images``; ``row`` is the engine's image row."""

    go_type = "*formatter.imageContext"
    go_methods = _methods(
        "ID Repository Tag Digest CreatedSince CreatedAt Size Containers VirtualSize "
        "SharedSize UniqueSize"
    )
    header = {
        "ID": "IMAGE ID",
        "Repository": "REPOSITORY",
        "Tag": "TAG",
        "Digest": "DIGEST",
        "CreatedSince": "CREATED",
        "CreatedAt": "CREATED AT",
        "Size": "SIZE",
        "Containers": "CONTAINERS",
        "VirtualSize": "SIZE",
        "SharedSize": "SHARED SIZE",
        "UniqueSize": "UNIQUE SIZE",
    }
    table = (
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t"
        "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
    )
    table_digests = (
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t"
        "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
    )

    def __init__(self, row: Any, trunc: bool = True) -> None:
        self.r = row
        self.trunc = trunc

    def ID(self) -> str:  # noqa: N802
        i = str(self.r.id)
        return i.split(":", 1)[-1][:12] if self.trunc else i

    def Repository(self) -> str:  # noqa: N802
        return str(self.r.repository)

    def Tag(self) -> str:  # noqa: N802
        return str(self.r.tag)

    def Digest(self) -> str:  # noqa: N802
        return str(self.r.digest or "<none>")

    def CreatedSince(self) -> str:  # noqa: N802
        return ago(self.r.created)

    def CreatedAt(self) -> str:  # noqa: N802
        return _unix_string(self.r.created)

    def Size(self) -> str:  # noqa: N802
        return human_size(self.r.size)

    def VirtualSize(self) -> str:  # noqa: N802
        # units.HumanSize: four significant digits where Size has three
        n, units = float(self.r.size), ["B", "kB", "MB", "GB", "TB", "PB"]
        i = 0
        while n >= 1000 and i < len(units) - 1:
            n, i = n / 1000.0, i + 1
        return f"{float(f'{n:.4g}'):g}{units[i]}"

    def Containers(self) -> str:  # noqa: N802
        return "N/A"

    def SharedSize(self) -> str:  # noqa: N802
        return "N/A"

    UniqueSize = SharedSize


class NetworkRow(GoStruct):
    go_type = "*network.networkContext"
    go_methods = _methods("ID Name Driver Scope IPv6 Internal Labels CreatedAt", Label=("string",))
    header = {
        "ID": "NETWORK ID",
        "Name": "NAME",
        "Driver": "DRIVER",
        "Scope": "SCOPE",
        "IPv6": "IPV6",
        "Internal": "INTERNAL",
        "Labels": "LABELS",
        "CreatedAt": "CREATED AT",
    }
    table = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

    def __init__(self, data: dict[str, Any], trunc: bool = True) -> None:
        self.d = data
        self.trunc = trunc

    def ID(self) -> str:  # noqa: N802
        return str(self.d["ID"][:12] if self.trunc else self.d["ID"])

    def Name(self) -> str:  # noqa: N802
        return str(self.d["Name"])

    def Driver(self) -> str:  # noqa: N802
        return str(self.d["Driver"])

    def Scope(self) -> str:  # noqa: N802
        return str(self.d["Scope"])

    def IPv6(self) -> str:  # noqa: N802
        return str(self.d.get("IPv6", "false"))

    def Internal(self) -> str:  # noqa: N802
        return str(self.d.get("Internal", "false"))

    def Labels(self) -> str:  # noqa: N802
        return str(self.d.get("Labels", ""))

    def Label(self, name: str) -> str:  # noqa: N802
        for pair in str(self.d.get("Labels", "")).split(","):
            k, _, v = pair.partition("=")
            if k == name:
                return v
        return ""

    def CreatedAt(self) -> str:  # noqa: N802
        return str(self.d.get("CreatedAt", ""))


class VolumeRow(GoStruct):
    go_type = "*formatter.volumeContext"
    go_methods = _methods("Name Driver Scope Mountpoint Labels Links Size", Label=("string",))
    header = {
        "Name": "VOLUME NAME",
        "Driver": "DRIVER",
        "Scope": "SCOPE",
        "Mountpoint": "MOUNTPOINT",
        "Labels": "LABELS",
        "Links": "LINKS",
        "Size": "SIZE",
    }
    table = "table {{.Driver}}\t{{.Name}}"

    def __init__(self, data: dict[str, Any]) -> None:
        self.d = data

    def Name(self) -> str:  # noqa: N802
        return str(self.d["Name"])

    def Driver(self) -> str:  # noqa: N802
        return str(self.d["Driver"])

    def Scope(self) -> str:  # noqa: N802
        return str(self.d.get("Scope", "local"))

    def Mountpoint(self) -> str:  # noqa: N802
        return str(self.d.get("Mountpoint", ""))

    def Labels(self) -> str:  # noqa: N802
        return _labels(self.d.get("Labels"))

    def Label(self, name: str) -> str:  # noqa: N802
        return str((self.d.get("Labels") or {}).get(name, ""))

    def Links(self) -> str:  # noqa: N802
        return "N/A"

    def Size(self) -> str:  # noqa: N802
        return "N/A"


class SearchRow(GoStruct):
    go_type = "*registry.searchContext"
    go_methods = _methods("Name Description StarCount IsOfficial IsAutomated")
    header = {
        "Name": "NAME",
        "Description": "DESCRIPTION",
        "StarCount": "STARS",
        "IsOfficial": "OFFICIAL",
        "IsAutomated": "AUTOMATED",
    }
    table = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}\t{{.IsAutomated}}"

    def __init__(self, result: dict[str, Any], trunc: bool = True) -> None:
        self.r = result
        self.trunc = trunc
        self.json = False

    def marshal(self) -> dict[str, Any]:
        self.json = True  # searchContext.MarshalJSON: booleans as true/false
        return super().marshal()

    def Name(self) -> str:  # noqa: N802
        return str(self.r["name"])

    def Description(self) -> str:  # noqa: N802
        desc = str(self.r.get("description") or "").replace("\n", " ").replace("\r", " ")
        return _ellipsis(desc, 45) if self.trunc else desc

    def StarCount(self) -> str:  # noqa: N802
        return str(self.r.get("star_count", 0))

    def _bool(self, value: bool) -> str:
        if self.json:
            return "true" if value else "false"
        return "[OK]" if value else ""

    def IsOfficial(self) -> str:  # noqa: N802
        return self._bool(bool(self.r.get("is_official")))

    def IsAutomated(self) -> str:  # noqa: N802
        return self._bool(bool(self.r.get("is_automated")))


class DictRow(GoStruct):
    """A context whose methods are the keys of a dict of strings (``history``)."""

    def __init__(self, fields: dict[str, str], go_type: str) -> None:
        self.fields = fields
        self.go_type = go_type
        self.go_methods = _methods(" ".join(fields))

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return lambda: fields[name]
        raise AttributeError(name)


class EventRow(GoStruct):
    """An event (api/types/events.Message) as ``events --format`` sees it: Go's field
    names (``.Type``, ``.Action``, ``.Actor.Attributes.name``, ``.ID``, ``.TimeNano``...),
    and ``{{json .}}`` the message as the API sends it."""

    go_type = "events.Message"
    go_methods = _methods("Status ID From Type Action Actor Scope Time TimeNano")

    def __init__(self, msg: dict[str, Any]) -> None:
        self.m = msg

    def Status(self) -> str:  # noqa: N802 - the template names are Go's
        return str(self.m.get("status", ""))

    def ID(self) -> str:  # noqa: N802
        return str(self.m.get("id", ""))

    def From(self) -> str:  # noqa: N802
        return str(self.m.get("from", ""))

    def Type(self) -> str:  # noqa: N802
        return str(self.m.get("Type", ""))

    def Action(self) -> str:  # noqa: N802
        return str(self.m.get("Action", ""))

    def Actor(self) -> StructDict:  # noqa: N802
        actor = self.m.get("Actor") or {}
        return StructDict(ID=actor.get("ID", ""), Attributes=GoMap(actor.get("Attributes") or {}))

    def Scope(self) -> str:  # noqa: N802
        return str(self.m.get("scope", ""))

    def Time(self) -> int:  # noqa: N802
        return int(self.m.get("time") or 0)

    def TimeNano(self) -> int:  # noqa: N802
        return int(self.m.get("timeNano") or 0)

    def marshal(self) -> dict[str, Any]:
        """The message's own JSON (omitempty fields left out, as Go leaves them)."""
        out = StructDict({k: v for k, v in self.m.items() if v not in ("", None)})
        if "Actor" in out:
            actor = out["Actor"]
            out["Actor"] = StructDict(
                ID=actor.get("ID", ""), Attributes=actor.get("Attributes") or {}
            )
        return out


class StatsRow(GoStruct):
    """A ``docker stats`` row (docker/cli's container.statsContext) over one frame of the
    stats JSON: the figures are computed from it as Docker's CLI computes them."""

    go_type = "*container.statsContext"  # docker/cli 20.10: cli/command/container
    go_methods = _methods("Container Name ID CPUPerc MemUsage MemPerc NetIO BlockIO PIDs")
    header = {
        "Container": "CONTAINER",
        "Name": "NAME",
        "ID": "CONTAINER ID",
        "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT",
        "MemPerc": "MEM %",
        "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O",
        "PIDs": "PIDS",
    }
    table = (
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t"
        "{{.BlockIO}}\t{{.PIDs}}"
    )

    def __init__(self, container: str, doc: dict[str, Any], trunc: bool = True) -> None:
        from dockyard.model.docker.stats import stats_figures

        self.container = container
        self.d = doc
        self.f = stats_figures(doc)
        self.trunc = trunc

    def Container(self) -> str:  # noqa: N802 - the template names are Go's
        return self.container

    def Name(self) -> str:  # noqa: N802
        name = str(self.d.get("name", ""))
        return name[1:] if len(name) > 1 else "--"

    def ID(self) -> str:  # noqa: N802
        cid = str(self.d.get("id", ""))
        return cid[:12] if self.trunc else cid

    def CPUPerc(self) -> str:  # noqa: N802
        return f"{self.f.cpu:.2f}%"

    def MemUsage(self) -> str:  # noqa: N802
        from dockyard.units import bytes_size

        return f"{bytes_size(self.f.mem)} / {bytes_size(self.f.mem_limit)}"

    def MemPerc(self) -> str:  # noqa: N802
        return f"{self.f.mem_percent:.2f}%"

    def NetIO(self) -> str:  # noqa: N802
        return f"{human_size(self.f.net[0])} / {human_size(self.f.net[1])}"

    def BlockIO(self) -> str:  # noqa: N802
        return f"{human_size(self.f.block[0])} / {human_size(self.f.block[1])}"

    def PIDs(self) -> str:  # noqa: N802
        return str(self.f.pids)
