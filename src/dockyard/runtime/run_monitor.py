"""The monitor's program file: ``python -I -S run_monitor.py ARGS`` runs
:func:`dockyard.runtime.monitor.main` from the module's cached bytecode.

A program file is compiled on every run (only imported modules are cached): monitor.py's
~1,300 lines cost ~5 ms of CPU at each container start when it was the program itself,
this file a fraction of one. The name ends in ``monitor.py`` on purpose: that is how system
check (runtime/leftovers.py) knows a monitor by its command line.
"""

import sys
from os.path import dirname

if __name__ == "__main__":
    # -I leaves the package off sys.path: put its parent there (the path is absolute).
    sys.path.insert(0, dirname(dirname(dirname(__file__))))
    from dockyard.runtime.monitor import main

    sys.exit(main())
