"""Reading a YAML file as a tree of nodes, for both config files: every error names the file,
the line (and, for the config file, the column), the key and what was expected, and a key set
twice in one mapping is refused, as Prometheus refuses it.

:class:`NodeReader` walks the tree (mappings with known keys, merge keys, lists) and reads
scalars in two ways: as the Go exporters' strict decoding reads them into typed fields
(:meth:`NodeReader.string`, :meth:`NodeReader.boolean`, ..., for the web config), or as
PyYAML's safe loader constructs them (:meth:`NodeReader.value`, for the config file, whose
reader checks the Python types). No error shows a value that could be a secret unless the
caller decides it may.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import yaml

# PyYAML's loader on libyaml, where the wheel has it: it marks plain scalars with the style
# "" where PyYAML's own marks them None.
_FastLoader: Any = getattr(yaml, "CSafeLoader", None)
_SHOWABLE_KEY = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")
_MERGE = "tag:yaml.org,2002:merge"


class YamlFileError(Exception):
    """A file that cannot be used; ``str()`` is the message for the user."""


class NodeReader:
    """Generic readers of YAML nodes; None and YAML null mean "not set"."""

    error_type: ClassVar[type[YamlFileError]] = YamlFileError
    """What :meth:`error` raises: each file has its own kind of error."""
    columns: ClassVar[bool] = False
    """Whether a position names the column too (``file:line:column``), not only the line."""
    single_document: ClassVar[bool] = False
    """Whether a second YAML document is refused; else only the first counts, as in Go."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dir = os.path.dirname(path)
        self._constructor = yaml.SafeLoader("")
        self._merges: dict[int, list[tuple[yaml.Node, yaml.Node]]] = {}

    def where(self, mark: yaml.Mark | None) -> str:
        """``path:line`` (``path:line:column`` with :attr:`columns`), or the path alone."""
        if mark is None:
            return self.path
        column = f":{mark.column + 1}" if self.columns else ""
        return f"{self.path}:{mark.line + 1}{column}"

    def error(self, node: yaml.Node | None, key: str, detail: str) -> YamlFileError:
        where = self.where(node.start_mark if node is not None else None)
        return self.error_type(f"{where}: {key}: {detail}")

    def show_key(self, name: str) -> str:
        """A key as a message shows it (see :func:`show`)."""
        return show(name)

    def compose(self, text: str) -> yaml.Node | None:
        try:
            # The loader checks every character of the text at once.
            loader = yaml.SafeLoader(text)
        except yaml.reader.ReaderError as err:
            line = text.count("\n", 0, err.position)
            column = err.position - (text.rfind("\n", 0, err.position) + 1)
            where = self.where(yaml.Mark("", err.position, line, column, "", 0))
            raise self.error_type(
                f"{where}: expected valid YAML: special character #x{err.character:04x} is not "
                "allowed"
            ) from None
        if _FastLoader is not None:
            # libyaml composes the same nodes about ten times as fast (a config of thousands
            # of jobs); what it refuses is composed again below, for PyYAML's own message.
            fast = _FastLoader(text)
            try:
                return self._first(fast)
            except (yaml.YAMLError, RecursionError):
                pass
            finally:
                fast.dispose()
        try:
            return self._first(loader)
        except yaml.MarkedYAMLError as err:
            # The problem only: PyYAML's snippet of the line could show a password hash.
            where = self.where(err.problem_mark or err.context_mark)
            detail = err.problem or err.context
            if err.context and err.problem and err.context.startswith("expected"):
                detail = f"{err.context}, {err.problem}"  # "expected a single document ..."
            raise self.error_type(f"{where}: expected valid YAML: {detail}") from None
        except yaml.YAMLError:
            raise self.error_type(f"{self.path}: expected valid YAML") from None
        except RecursionError:
            raise self.error_type(f"{self.path}: expected valid YAML: nested too deeply") from None
        finally:
            loader.dispose()

    def _first(self, loader: Any) -> yaml.Node | None:
        if self.single_document:
            node: yaml.Node | None = loader.get_single_node()
            return node
        # Like Go's decoder, only the first document counts.
        return loader.get_node() if loader.check_node() else None

    def fields(
        self, node: yaml.Node | None, key: str, allowed: tuple[str, ...]
    ) -> dict[str, yaml.Node]:
        """The keys of a mapping read into a structure: only ``allowed`` ones, each set once.
        A key merged in (``<<``) may be set again beside the merge, which then wins, as in
        Go's decoder and Prometheus."""
        found: dict[str, yaml.Node] = {}
        merged: set[str] = set()
        for name, name_node, value, from_merge in self._entries(node, key or "the top level"):
            full = f"{key}.{self.show_key(name)}" if key else self.show_key(name)
            if name not in allowed:
                raise self.error(
                    name_node,
                    full,
                    f"unknown key; expected one of {', '.join(allowed)}",
                )
            if name in found and not from_merge and name not in merged:
                raise self.error(name_node, full, "set twice")
            found[name] = value  # a later entry wins over one merged in before it
            if from_merge:
                merged.add(name)
            else:
                merged.discard(name)
        return found

    def mapping(self, node: yaml.Node | None, key: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """Every entry of a mapping read as a map, the entries merged in (``<<``) first."""
        return [(name, name_node, value) for name, name_node, value, _ in self._entries(node, key)]

    def _entries(
        self, node: yaml.Node | None, key: str
    ) -> list[tuple[str, yaml.Node, yaml.Node, bool]]:
        """(name, key node, value node, whether merged in) of each entry."""
        if node is None or is_null(node):
            return []
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, key, f"expected a mapping, got {kind(node)}")
        try:
            pairs = self._pairs(node, key, set())
        except RecursionError:
            raise self.error(
                node, key, "expected a valid merge (<<), got merges nested too deeply"
            ) from None
        entries: list[tuple[str, yaml.Node, yaml.Node, bool]] = []
        for name_node, value, from_merge in pairs:
            if not isinstance(name_node, yaml.ScalarNode):
                raise self.error(name_node, key, f"expected text keys, got {kind(name_node)}")
            entries.append((scalar_text(name_node), name_node, value, from_merge))
        return entries

    def _pairs(
        self, node: yaml.MappingNode, key: str, active: set[int]
    ) -> list[tuple[yaml.Node, yaml.Node, bool]]:
        """The pairs of a mapping with its merge keys (``<<``) resolved, in the order in which
        a later pair wins: what the mappings merged in give (the first listed wins, as YAML
        says), then the mapping's own."""
        if id(node) in active:
            raise self.error(
                node, key, "expected a valid merge (<<), got a mapping that merges itself"
            )
        active.add(id(node))
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node, bool]] = []
        for name_node, value in node.value:
            if name_node.tag != _MERGE:
                own.append((name_node, value, False))
                continue
            sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for source in reversed(sources):
                if not isinstance(source, yaml.MappingNode):
                    raise self.error(
                        source,
                        key,
                        f"expected a valid merge (<<): a mapping or a list of mappings, got "
                        f"{kind(source)}",
                    )
                merged += self._merged_in(source, key, active)
        active.discard(id(node))
        return [(k, v, True) for k, v in _last_wins(merged)] + own

    def _merged_in(
        self, source: yaml.MappingNode, key: str, active: set[int]
    ) -> list[tuple[yaml.Node, yaml.Node]]:
        """What merging ``source`` gives: each of its keys once, its own merges resolved.
        Kept per source, so that a chain of merges (each mapping merging the one before) is
        resolved once per link, not once per reader of the chain."""
        given = self._merges.get(id(source))
        if given is None:
            given = _last_wins([(k, v) for k, v, _ in self._pairs(source, key, active)])
            self._merges[id(source)] = given
        return given

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
            if node.tag == "tag:yaml.org,2002:str" and not node.style:  # plain
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

    def value(self, node: yaml.Node, key: str) -> Any:
        """A scalar as PyYAML's safe loader constructs it (``'10'`` a string, ``10`` an int,
        ``yes`` a boolean, ``2001-02-03`` a date); a mapping or a list is returned as its node,
        unread."""
        if not isinstance(node, yaml.ScalarNode):
            return node
        try:
            return self._constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError, TypeError):
            # An impossible date or number, or a tag the safe loader does not know. The
            # exception's text may quote the value, so it is not repeated.
            raise self.error(
                node, key, "expected a value YAML can read, got an impossible date, number or tag"
            ) from None

    def file(self, node: yaml.Node | None, key: str) -> str:
        """A path, relative to the directory of the file read unless absolute."""
        value = self.string(node, key)
        if not value or os.path.isabs(value):
            return value
        return os.path.join(self.dir, value)


def _last_wins(pairs: list[tuple[yaml.Node, yaml.Node]]) -> list[tuple[yaml.Node, yaml.Node]]:
    """Each text key once, at its last place; other keys (refused when read) as they are."""
    seen: set[str] = set()
    kept: list[tuple[yaml.Node, yaml.Node]] = []
    for name_node, value in reversed(pairs):
        if isinstance(name_node, yaml.ScalarNode):
            name = scalar_text(name_node)
            if name in seen:
                continue
            seen.add(name)
        kept.append((name_node, value))
    kept.reverse()
    return kept


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
