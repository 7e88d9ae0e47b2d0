"""The one error of the template engine."""

from __future__ import annotations


class TemplateError(Exception):
    """A parse or execution error, worded as Go's (``template: :1: unclosed action``)."""
