"""The distribution API client: pull, push, login and search against OCI registries.

``hub/`` is the server side. The client modules import only the standard library, and only
when a registry command runs.
"""
