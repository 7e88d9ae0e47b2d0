"""Containers: OCI bundles, the OCI runtime driver, the per-container monitor, exec, cp."""
