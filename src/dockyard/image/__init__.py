"""Pure image formats: references, digests, manifests, configs, layer tars and archives.

Nothing in here touches the store or spawns processes.
"""
