"""Dockerfile -> image: the parser, the build context, the step cache and the executors.

A regular package named ``builder``, not ``build``: pytest and packaging tools skip
directories named ``build`` (as output), and that once kept this package's tests from running.
"""
