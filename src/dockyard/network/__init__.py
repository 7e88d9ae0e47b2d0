"""Container networking: address management (ipam) and the host's bridge devices (bridge)."""
