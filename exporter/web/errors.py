"""The one error a web config file can raise."""

from __future__ import annotations

from ..yamlnodes import YamlFileError


class WebConfigError(YamlFileError):
    """A web config file that cannot be used; ``str()`` is the message for the user."""
