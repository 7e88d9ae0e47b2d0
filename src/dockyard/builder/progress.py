"""How a build reports itself: Docker's classic step lines, BuildKit's plain and tty forms,
or nothing (``-q``).

The builder calls the same few methods whatever the form: ``step`` when an instruction
starts, ``cached`` / ``done`` when it ends, ``output`` for a RUN's bytes, ``finish`` with the
image. Classic output goes to stdout (as ``docker build`` without BuildKit); BuildKit's forms
go to stderr.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


class Progress:
    """The quiet form: nothing is shown, the output is kept for an error message."""

    def __init__(self) -> None:
        self.tail: deque[str] = deque(maxlen=20)

    def step(self, n: int, total: int, text: str, stage: str) -> None: ...

    def base(self, image_id: str) -> None: ...

    def running(self, container_id: str) -> None: ...

    def output(self, data: bytes) -> None: ...

    def cached(self, image_id: str) -> None: ...

    def done(self, image_id: str, container_id: str = "") -> None: ...

    def message(self, text: str) -> None: ...

    def warning(self, text: str) -> None:
        print(f"[Warning] {text}", file=sys.stderr)

    def failed(self, text: str) -> None: ...

    def finish(self, image_id: str, tags: list[str]) -> None: ...


class ClassicProgress(Progress):
    """Docker 20.10's builder: ``Step 2/5 : RUN ...``, `` ---> Using cache``, `` ---> id``."""

    def __init__(self, out: TextIO | None = None) -> None:
        super().__init__()
        self.out = out or sys.stdout
        self.at_line_start = True
        import codecs

        # A RUN's output arrives in arbitrary chunks: keep a character split between two.
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def _w(self, text: str) -> None:
        if not self.at_line_start:
            text = "\n" + text
            self.at_line_start = True
        self.out.write(text)
        self.out.flush()

    def step(self, n: int, total: int, text: str, stage: str) -> None:
        self._w(f"Step {n}/{total} : {text}\n")

    def base(self, image_id: str) -> None:
        self._w(f" ---> {short_id(image_id)}\n" if image_id else " ---> \n")

    def running(self, container_id: str) -> None:
        self._w(f" ---> Running in {container_id[:12]}\n")

    def output(self, data: bytes) -> None:
        text = self.decoder.decode(data)
        if not text:
            return
        self.out.write(text)
        self.out.flush()
        self.at_line_start = text.endswith("\n")

    def cached(self, image_id: str) -> None:
        self._w(f" ---> Using cache\n ---> {short_id(image_id)}\n")

    def done(self, image_id: str, container_id: str = "") -> None:
        if container_id:
            self._w(f"Removing intermediate container {container_id[:12]}\n")
        self._w(f" ---> {short_id(image_id)}\n")

    def message(self, text: str) -> None:
        self._w(text + "\n")

    def warning(self, text: str) -> None:
        self._w(f"[Warning] {text}\n")

    def finish(self, image_id: str, tags: list[str]) -> None:
        self._w(f"Successfully built {short_id(image_id)}\n")
        for t in tags:
            self._w(f"Successfully tagged {t}\n")


class PlainProgress(Progress):
    """BuildKit's ``--progress plain``: one line per event, ``#N`` per step."""

    def __init__(self, out: TextIO | None = None) -> None:
        super().__init__()
        self.out = out or sys.stderr
        self.n = 0
        self.start = time.monotonic()
        self.t0 = self.start
        self.partial = b""

    def _w(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def step(self, n: int, total: int, text: str, stage: str) -> None:
        self.n += 1
        self.t0 = time.monotonic()
        self._w(f"#{self.n} [{stage}] {text}")

    def base(self, image_id: str) -> None:
        self._w(f"#{self.n} resolve {short_id(image_id)} done")
        self._w(f"#{self.n} DONE 0.0s")

    def output(self, data: bytes) -> None:
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            self._w(f"#{self.n} {time.monotonic() - self.t0:.3f} {line.decode('utf-8', 'replace')}")

    def _flush_partial(self) -> None:
        if self.partial:
            self.output(b"\n")

    def cached(self, image_id: str) -> None:
        self._w(f"#{self.n} CACHED")

    def done(self, image_id: str, container_id: str = "") -> None:
        self._flush_partial()
        self._w(f"#{self.n} DONE {time.monotonic() - self.t0:.1f}s")

    def message(self, text: str) -> None:
        self._w(f"#{self.n} {text}")

    def warning(self, text: str) -> None:
        self._w(f"WARNING: {text}")

    def failed(self, text: str) -> None:
        self._flush_partial()
        self._w(f"#{self.n} ERROR: {text}")

    def finish(self, image_id: str, tags: list[str]) -> None:
        self.n += 1
        self._w(f"#{self.n} exporting to image")
        self._w(f"#{self.n} writing image {image_id} done")
        for t in tags:
            self._w(f"#{self.n} naming to {t} done")
        self._w(f"#{self.n} DONE 0.0s")


class TtyProgress(Progress):
    """BuildKit's ``--progress tty``: a live block of step lines, redrawn in place."""

    def __init__(self, out: TextIO | None = None) -> None:
        super().__init__()
        self.out = out or sys.stderr
        self.start = time.monotonic()
        self.rows: list[list[object]] = []  # [label, state, started, ended]
        self.logs: deque[str] = deque(maxlen=6)
        self.partial = b""
        self.drawn = 0
        self.last_draw = 0.0
        self.total = 0
        try:
            self.width = os.get_terminal_size(self.out.fileno()).columns
        except (OSError, ValueError):
            self.width = 100

    def _draw(self, force: bool = False, final: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        lines = []
        done = sum(1 for r in self.rows if r[1] != "run")
        head = "FINISHED" if final else ""
        lines.append(f"[+] Building {now - self.start:.1f}s ({done}/{self.total}) {head}".rstrip())
        for label, state, started, ended in self.rows:
            t = (ended if isinstance(ended, float) else now) - float(started)  # type: ignore[arg-type]
            prefix = "=> CACHED " if state == "cached" else "=> "
            if state == "error":
                prefix = "=> ERROR "
            text = f"{prefix}{label}"
            timing = f"{t:.1f}s" if state != "cached" else "0.0s"
            room = self.width - len(timing) - 2
            if len(text) > room:
                text = text[: max(room - 3, 10)] + "..."
            lines.append(f"{text:<{room}} {timing}")
            if state == "run":
                lines += [f" => => # {x}"[: self.width - 1] for x in self.logs]
        out = ""
        if self.drawn:
            out += f"\x1b[{self.drawn}A\x1b[J"
        out += "\n".join(lines) + "\n"
        self.drawn = len(lines)
        self.out.write(out)
        self.out.flush()

    def step(self, n: int, total: int, text: str, stage: str) -> None:
        self.total = total
        self.logs.clear()
        self.rows.append([f"[{stage}] {text}", "run", time.monotonic(), None])
        self._draw(force=True)

    def base(self, image_id: str) -> None:
        self._end("done")

    def _end(self, state: str) -> None:
        if self.rows:
            self.rows[-1][1] = state
            self.rows[-1][3] = time.monotonic()
        self._draw(force=True)

    def output(self, data: bytes) -> None:
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        self.logs.extend(x.decode("utf-8", "replace") for x in lines)
        self._draw()

    def cached(self, image_id: str) -> None:
        self._end("cached")

    def done(self, image_id: str, container_id: str = "") -> None:
        self.partial = b""
        self._end("done")

    def message(self, text: str) -> None:
        self.logs.append(text)
        self._draw()

    def failed(self, text: str) -> None:
        self._end("error")
        self.out.write(f"------\n > {self.rows[-1][0] if self.rows else ''}:\n")
        for x in self.logs:
            self.out.write(f"#{len(self.rows)} {x}\n")
        self.out.write("------\n")

    def finish(self, image_id: str, tags: list[str]) -> None:
        self.total += 1
        self.rows.append(["exporting to image", "done", time.monotonic(), time.monotonic()])
        self._draw(force=True, final=True)
        self.out.write(f" => => writing image {image_id}\n")
        for t in tags:
            self.out.write(f" => => naming to {t}\n")
        self.out.flush()


class JsonProgress(Progress):
    """The classic builder as ``POST /build`` streams it: Docker's JSON messages, one per
    write of Docker 20.10's builder (``{"stream": "Step 1/2 : FROM busybox"}``, then
    ``{"stream": "\n"}``...), the image as ``{"aux": {"ID": ...}}`` before "Successfully
    built". ``quiet`` (``q=1``): only the image ID, at the end."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], *, quiet: bool = False) -> None:
        super().__init__()
        self.emit = emit
        self.quiet = quiet
        # Quiet: the messages are kept, for the failure that needs them (moby shows a
        # quiet build's output when it fails).
        self.held: list[dict[str, Any]] = []
        import codecs

        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def _s(self, *texts: str) -> None:
        for text in texts:
            if self.quiet:
                self.held.append({"stream": text})
            else:
                self.emit({"stream": text})

    def step(self, n: int, total: int, text: str, stage: str) -> None:
        self._s(f"Step {n}/{total} : {text}", "\n")

    def base(self, image_id: str) -> None:
        self._s(f" ---> {short_id(image_id)}\n" if image_id else " ---> \n")

    def running(self, container_id: str) -> None:
        self._s(f" ---> Running in {container_id[:12]}\n")

    def output(self, data: bytes) -> None:
        text = self.decoder.decode(data)
        self.tail.append(text)
        if text:
            self._s(text)

    def cached(self, image_id: str) -> None:
        self._s(" ---> Using cache\n", f" ---> {short_id(image_id)}\n")

    def done(self, image_id: str, container_id: str = "") -> None:
        if container_id:
            self._s(f"Removing intermediate container {container_id[:12]}\n")
        self._s(f" ---> {short_id(image_id)}\n")

    def message(self, text: str) -> None:
        self._s(text + "\n")

    def warning(self, text: str) -> None:
        self._s(f"[Warning] {text}\n")

    def finish(self, image_id: str, tags: list[str]) -> None:
        if self.quiet:
            self.emit({"stream": image_id + "\n"})
            return
        self.emit({"aux": {"ID": image_id}})
        self._s(f"Successfully built {short_id(image_id)}\n")
        for t in tags:
            self._s(f"Successfully tagged {t}\n")


def make_progress(mode: str, quiet: bool, *, stderr: bool = False) -> Progress:
    """``stderr``: stdout carries the result (``--output type=tar,dest=-``)."""
    if quiet:
        return Progress()
    if mode == "plain":
        return PlainProgress()
    if mode == "tty":
        return TtyProgress()
    return ClassicProgress(sys.stderr if stderr else None)
