"""The container model: typed values between the front ends and the engine.

``container.py`` holds the values (``ContainerSpec``, ``Container``, ``ContainerState``,
``Mount``, ``PortBinding``...), ``codec.py`` their stored form, ``docker.py`` Docker's JSON
both ways, ``mounts.py`` the bind and tmpfs grammars, ``values.py`` the frozen dataclasses
they are made with. Pure: no I/O, no imports from the rest of dockyard but ``errors``.
"""
