"""dockyard: a Docker-compatible container engine."""

from dockyard.imports import install

install()  # our modules load through dockyard/imports.py's finder

__version__ = "0.1.0"
