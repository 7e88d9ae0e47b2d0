import sys

from dockyard.main import main

sys.exit(main())
