"""Reading a YAML node tree with the rules of the Go exporters' strict YAML decoding.

Every error names the file, the line, the key and what was expected, and never shows a value
that could be a secret.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

from .errors import WebConfigError

_SHOWABLE_KEY = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")


class NodeReader:
    """Generic readers of YAML nodes; None and YAML null mean "not set"."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dir = os.path.dirname(path)

    def error(self, node: yaml.Node | None, key: str, detail: str) -> WebConfigError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        return WebConfigError(f"{self.path}{line}: {key}: {detail}")

    def compose(self, text: str) -> yaml.Node | None:
        loader = yaml.SafeLoader(text)
        try:
            # Like Go's decoder, only the first document counts.
            return loader.get_node() if loader.check_node() else None
        except yaml.MarkedYAMLError as err:
            # The problem only: PyYAML's snippet of the line could show a password hash.
            mark = err.problem_mark or err.context_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            raise WebConfigError(
                f"{self.path}{line}: expected valid YAML: {err.problem or err.context}"
            ) from None
        except yaml.YAMLError:
            raise WebConfigError(f"{self.path}: expected valid YAML") from None
        finally:
            loader.dispose()

    def fields(
        self, node: yaml.Node | None, key: str, allowed: tuple[str, ...]
    ) -> dict[str, yaml.Node]:
        found: dict[str, yaml.Node] = {}
        for name, name_node, value in self.mapping(node, key or "the top level"):
            full = f"{key}.{show(name)}" if key else show(name)
            if name not in allowed:
                raise self.error(
                    name_node,
                    full,
                    f"unknown key; expected one of {', '.join(allowed)}",
                )
            if name in found:
                raise self.error(name_node, full, "set twice")
            found[name] = value
        return found

    def mapping(self, node: yaml.Node | None, key: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        if node is None or is_null(node):
            return []
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, key, f"expected a mapping, got {kind(node)}")
        try:
            _flatten_merge_keys(node)
        except yaml.MarkedYAMLError as err:
            raise self.error(node, key, f"expected a valid merge (<<): {err.problem}") from None
        entries: list[tuple[str, yaml.Node, yaml.Node]] = []
        for name_node, value in node.value:
            if not isinstance(name_node, yaml.ScalarNode):
                raise self.error(name_node, key, f"expected text keys, got {kind(name_node)}")
            entries.append((scalar_text(name_node), name_node, value))
        return entries

    def string(self, node: yaml.Node | None, key: str) -> str:
        if node is None or is_null(node):
            return ""
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, key, f"expected a string, got {kind(node)}")
        return scalar_text(node)

    def boolean(self, node: yaml.Node | None, key: str, default: bool) -> bool:
        if node is None:
            return default
        if is_null(node):
            return False
        if isinstance(node, yaml.ScalarNode):
            if node.tag == "tag:yaml.org,2002:bool":
                return bool(node.value.lower() in ("yes", "true", "on"))
            # YAML 1.1 booleans that Go's decoder knows and PyYAML does not.
            if node.tag == "tag:yaml.org,2002:str" and node.style is None:
                if node.value in ("y", "Y"):
                    return True
                if node.value in ("n", "N"):
                    return False
        raise self.error(node, key, f"expected true or false, got {kind(node)}")

    def integer(self, node: yaml.Node | None, key: str) -> int:
        if node is None or is_null(node):
            return 0
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int":
            value = yaml.SafeLoader("").construct_yaml_int(node)
            if isinstance(value, int) and -(2**63) <= value < 2**63:
                return value
        raise self.error(node, key, f"expected a whole number, got {kind(node)}")

    def string_list(self, node: yaml.Node | None, key: str) -> list[tuple[str, yaml.Node]]:
        if node is None or is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, key, f"expected a list, got {kind(node)}")
        return [(self.string(item, key), item) for item in node.value if not is_null(item)]

    def choice(
        self, node: yaml.Node | None, key: str, choices: Mapping[str, Any], shown: tuple[str, ...]
    ) -> str | None:
        if node is None or is_null(node):
            return None
        value = self.string(node, key)
        if value not in choices:
            raise self.error(node, key, f"expected one of {', '.join(shown)}, got {value!r}")
        return value

    def file(self, node: yaml.Node | None, key: str) -> str:
        """A path, relative to the directory of the web config file unless absolute."""
        value = self.string(node, key)
        if not value or os.path.isabs(value):
            return value
        return os.path.join(self.dir, value)


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def scalar_text(node: yaml.ScalarNode) -> str:
    """A scalar as a Go string field receives it: its text as written, null as empty."""
    if node.tag == "tag:yaml.org,2002:null":
        return ""
    if node.tag == "tag:yaml.org,2002:binary":
        try:
            return base64.b64decode(node.value).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return str(node.value)
    return str(node.value)


def kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    kinds = {
        "tag:yaml.org,2002:str": "a string",
        "tag:yaml.org,2002:int": "a number",
        "tag:yaml.org,2002:float": "a number",
        "tag:yaml.org,2002:bool": "a boolean",
        "tag:yaml.org,2002:null": "nothing",
    }
    return kinds.get(node.tag, "a scalar")


def show(name: str) -> str:
    """A key as it may appear in a message: plain names only, so no secret is ever echoed."""
    return name if _SHOWABLE_KEY.fullmatch(name) else "<key not shown>"


def _flatten_merge_keys(node: yaml.MappingNode) -> None:
    """Apply YAML merge keys (``<<``), which Go's decoder supports, in place."""
    if any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value):
        yaml.SafeLoader("").flatten_mapping(node)
