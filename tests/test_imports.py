"""dockyard/imports.py: our modules load through a finder of our own, with the spec Python's
would make, the bytecode when it matches the source as it is now, and the source otherwise."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import dockyard.cli.columns
from dockyard.imports import Finder


def _load(name: str, directory: Path) -> ModuleType:
    spec = Finder.find_spec(name, [str(directory)])
    assert spec is not None
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[attr-defined]
    return module


def test_our_modules_have_the_spec_pythons_finder_gives() -> None:
    mod = dockyard.cli.columns
    theirs = importlib.machinery.PathFinder.find_spec(mod.__name__, dockyard.cli.__path__)
    assert theirs is not None
    ours = mod.__spec__
    assert type(ours.loader).__name__ == "_Loader"  # loaded by our finder
    assert isinstance(ours.loader, importlib.machinery.SourceFileLoader)
    assert (ours.name, ours.origin, ours.cached, ours.parent, ours.has_location) == (
        theirs.name,
        theirs.origin,
        theirs.cached,
        theirs.parent,
        theirs.has_location,
    )
    assert mod.__file__ == theirs.origin and mod.__cached__ == theirs.cached
    assert (
        dockyard.cli.__path__ == importlib.util.find_spec("dockyard.cli").submodule_search_locations
    )  # type: ignore[union-attr]
    assert ours.loader.get_source(mod.__name__) == Path(mod.__file__).read_text()


def test_bytecode_is_used_only_while_it_matches_the_source(tmp_path: Path) -> None:
    src = tmp_path / "probe.py"
    src.write_text("VALUE = 1\n")
    py_compile.compile(str(src), invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    pyc = Path(importlib.util.cache_from_source(str(src)))
    # Bytecode from other source, with the header of this one: the finder trusts the header,
    # as CPython does, which shows the .pyc was what ran.
    other = tmp_path / "other" / "probe.py"
    other.parent.mkdir()
    other.write_text("VALUE = 2\n")
    stat = src.stat()
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    py_compile.compile(str(other), cfile=str(pyc))
    assert _load("dockyard.probe", tmp_path).VALUE == 2

    src.write_text("VALUE = 333\n")  # edited: another size and time
    os.utime(src, (stat.st_atime + 10, stat.st_mtime + 10))
    assert _load("dockyard.probe", tmp_path).VALUE == 333
    if not sys.dont_write_bytecode:
        assert _load("dockyard.probe", tmp_path).VALUE == 333  # from the .pyc written again

    pyc.unlink()
    assert _load("dockyard.probe", tmp_path).VALUE == 333  # no .pyc: the source

    pyc.write_bytes(b"junk")
    assert _load("dockyard.probe", tmp_path).VALUE == 333


def test_packages_missing_modules_and_other_names(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("INIT = True\n")
    pkg = _load("dockyard.pkg", tmp_path)
    assert pkg.INIT and pkg.__path__ == [str(tmp_path / "pkg")]
    assert pkg.__spec__.submodule_search_locations == [str(tmp_path / "pkg")]
    assert Finder.find_spec("dockyard.nothing", [str(tmp_path)]) is None
    (tmp_path / "json.py").write_text("")
    assert Finder.find_spec("json", [str(tmp_path)]) is None  # not ours: Python's finder
    assert Finder.find_spec("dockyard.x", None) is None


def test_not_installed_where_bytecode_lives_elsewhere() -> None:
    """Under -O (opt-1 .pyc files) and with a pycache prefix, Python's own finder loads."""
    code = "import sys, dockyard.imports as i; print(i.Finder in sys.meta_path)"
    src = str(Path(dockyard.__file__).parent.parent)
    for args, env in (
        ([], {}),
        (["-O"], {}),
        ([], {"PYTHONPYCACHEPREFIX": "/nonexistent-dockyard-test"}),
    ):
        out = subprocess.run(
            [sys.executable, *args, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": src, **env},
        ).stdout
        assert out.strip() == ("True" if not args and not env else "False"), (args, env)
