"""dockyard/sqlite.py: _sqlite3 loaded without functools, and nothing else changed by it."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import bare_python

PROGRAM = """
import sys
from dockyard.sqlite import sqlite3
assert "functools" not in sys.modules and "collections" not in sys.modules, "loaded them"
conn = sqlite3.connect(":memory:")
conn.execute("CREATE TABLE t (n INTEGER)")
# More distinct statements than the statement cache holds (128), each run twice: the cache
# built on the stand-in's lru_cache evicts and hits as the real one does.
for rounds in range(2):
    for i in range(300):
        conn.execute(f"INSERT INTO t (n) VALUES ({i})")
assert conn.execute("SELECT count(*), sum(n) FROM t").fetchone() == (600, 2 * sum(range(300)))
import functools  # the real module, not the stand-in
assert functools.partial(int, base=2)("101") == 5 and functools.lru_cache.__module__ == "functools"
print("ok")
"""


def test_sqlite_is_loaded_without_functools_and_works() -> None:
    r = bare_python(PROGRAM)
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok\n", "")


def test_with_functools_already_loaded_the_ordinary_way() -> None:
    r = subprocess.run(
        [sys.executable, "-c", "import functools\nfrom dockyard.sqlite import sqlite3\n"
         "print(sqlite3.connect(':memory:').execute('SELECT 1').fetchone())"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "(1,)\n"), r.stderr
