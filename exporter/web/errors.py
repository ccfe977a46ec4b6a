"""The one error a web config file can raise."""

from __future__ import annotations


class WebConfigError(Exception):
    """A web config file that cannot be used; ``str()`` is the message for the user."""
