"""dockyard: a Docker-compatible container engine."""

__version__ = "0.1.0"
