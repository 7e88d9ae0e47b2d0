"""The monitor's program: ``python -I -S run_monitor.py ARGS`` (ARGS as in monitor.py).

A script given on the command line is compiled from its source at every start, never read
from a cached .pyc: for monitor.py's ~1,300 lines that was ~7 ms of every ``run``, before
``runc create``. This file is the script; the monitor is imported as a module, from its
bytecode. (The name ends in "monitor.py": that is how ``system check`` and the tests tell
a monitor among processes.)
"""

import os
import sys

# -I leaves the script's directory off sys.path, and site-packages: only our package is added.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from dockyard.runtime.monitor import main  # noqa: E402

sys.exit(main())
