"""A fast writer of the Prometheus text format 0.0.4 and OpenMetrics 1.0.0.

prometheus-client's writers format every sample through generic objects, which costs
seconds at 200,000 samples. Here a family is one of two kinds:

- *plain samples* ``(suffix, labels, value)``, formatted as they are written (the exporter's
  own metrics, the per-workspace families: few samples);
- *rendered parts* (:class:`Parts`): each job's lines of the family, rendered by
  :func:`render_tail` when the job changed and kept (see ``collect.rendered``), written as
  they are, so a scrape of unchanged jobs formats nothing.

Both kinds go through the same line formatting, so the output is the same bytes either way.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.registry import Collector

from .metrics import MetricDef

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

FamilyType = Literal["gauge", "counter", "histogram", "gaugehistogram", "untyped"]
Sample = tuple[str, str, float]
_ZERO = "0"


@dataclass(frozen=True, slots=True)
class Parts:
    """A family's lines rendered already, job by job, kept small: a line is written as
    ``prefix + head + tail``, where the prefix (the name) is the column's, the head (``{`` and
    the job's label set) is the job's, shared by all its families, and only the tail (the rest:
    ``} 42\n``, or ``,status="queued"} 0\n``, and any further lines of the job) is kept per
    job and family, often one object shared by many jobs.

    Each column is one line of the family for each job (the five ``status`` lines are five
    columns; a gauge histogram's ``_bucket``, ``_gcount`` and ``_gsum`` lines three, which
    the text format writes as three families and OpenMetrics job by job). A job has lines in
    every column of its family or in none."""

    heads: Sequence[bytes]
    """Per job: ``b'{workspace_id="w",job_id="j"'``."""
    columns: tuple[tuple[bytes, Callable[[], Sequence[bytes]]], ...]
    """``(prefix, tails)``: the name (and suffix) that starts the column's lines, and what
    gives, per job (in the order of ``heads``), the tail of its line: :func:`render_tail`'s
    bytes, ``b""`` for none."""


@dataclass(slots=True)
class Family:
    """A metric family. For counters ``name`` ends in ``_total`` (the text format's name)."""

    name: str
    type: FamilyType
    help: str
    samples: Iterable[Sample] = field(default_factory=list)
    """``(suffix, rendered labels without braces, value)``: a list, or a generator that
    produces the samples only while they are written (so the samples of 10,000 jobs never
    exist all at once)."""
    parts: Parts | None = None
    """Lines rendered already, in place of ``samples``. Never a counter: rendered parts are
    not checked again."""

    def add(self, labels: str, value: float, suffix: str = "") -> None:
        cast("list[Sample]", self.samples).append((suffix, labels, value))


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_labels(names: Iterable[str], values: Iterable[str]) -> str:
    """``a="x",b="y"``: rendered once, then shared by every sample of that label set."""
    return ",".join(
        f'{name}="{escape_label_value(value)}"' for name, value in zip(names, values, strict=True)
    )


def _escape_help(text: str, openmetrics: bool) -> str:
    """HELP text: the text format 0.0.4 escapes only ``\\`` and newline there; OpenMetrics'
    escaped-string (its ABNF) also escapes ``"``."""
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if openmetrics else text


def format_value(value: float) -> str:
    """A sample value as both formats write it; parsing the text gives back the same float.

    ``int`` and ``bool`` are taken too (as ``float()`` takes them: Python 3.11's ``int`` has
    no ``is_integer``). Whole numbers below 1e15 are written without a fraction; others as
    ``repr`` writes them, the shortest text that reads back as the same float. Negative zero
    keeps its sign as ``-0``, as Go's ``strconv.FormatFloat(f, 'g', -1, 64)`` writes it and
    Prometheus' parser (``strconv.ParseFloat``) reads it back; client_python writes
    ``-0.0`` (its ``repr``) and client_golang's expfmt ``0`` (its ``f == 0`` shortcut).
    """
    if type(value) is not float:
        value = float(value)
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else _ZERO
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


_GAUGE_HISTOGRAM_IN_TEXT: tuple[tuple[str, FamilyType], ...] = (
    ("_bucket", "histogram"),
    ("_gcount", "gauge"),
    ("_gsum", "gauge"),
)


def _text_families(families: Iterable[Family]) -> Iterator[Family]:
    """Text format 0.0.4 has no gauge histogram: as prometheus_client writes one there, its
    ``_bucket`` samples become a histogram and ``_gcount`` and ``_gsum`` gauges of their own."""
    for family in families:
        if family.type != "gaugehistogram":
            yield family
            continue
        if family.parts is not None:
            heads, columns = family.parts.heads, family.parts.columns
            for suffix, kind in _GAUGE_HISTOGRAM_IN_TEXT:
                chosen = tuple(c for c in columns if c[0] == (family.name + suffix).encode())
                name = family.name if suffix == "_bucket" else family.name + suffix
                yield Family(name, kind, family.help, parts=Parts(heads, chosen))
            continue
        samples = list(family.samples)
        yield Family(
            family.name, "histogram", family.help, [s for s in samples if s[0] == "_bucket"]
        )
        for suffix in ("_gcount", "_gsum"):
            picked = [("", labels, value) for kind, labels, value in samples if kind == suffix]
            yield Family(family.name + suffix, "gauge", family.help, picked)


PARTS_PER_PIECE = 2048
"""Jobs' parts joined into one piece of a streamed exposition (a few hundred KB)."""


def _format_lines(
    name: str, samples: Iterable[Sample], counter: bool, append: Callable[[str], object]
) -> None:
    """Each sample's line, the one formatting of both kinds of family and both formats.

    A counter sample that is NaN or negative raises :class:`ValueError` naming it."""
    # 0.0 and -0.0 are one key here: a zero found is checked for its sign.
    cache: dict[float, str] = {0.0: _ZERO}
    for suffix, labels, value in samples:
        if counter and not value >= 0:
            shown = f"{name}{suffix}{{{labels}}}" if labels else f"{name}{suffix}"
            raise ValueError(
                f"metric family {name!r}: counter sample {shown} is "
                f"{format_value(value)}; a counter is a number >= 0"
            )
        text = cache.get(value)
        if text is None:
            text = format_value(value)
            if len(cache) < 64:
                cache[value] = text
        elif text is _ZERO and math.copysign(1.0, value) < 0:
            text = "-0"
        if labels:
            append(f"{name}{suffix}{{{labels}}} {text}\n")
        else:
            append(f"{name}{suffix} {text}\n")


def render_tail(name: str, labels: str, samples: Sequence[Sample]) -> bytes:
    """The lines of ``samples`` of the (non-counter) family ``name`` as the exposition writes
    them, less the first line's ``name``, suffix, ``{`` and ``labels`` (the job's label set,
    with which every sample's labels start): a :class:`Parts` tail. ``b""`` for no samples."""
    if not samples:
        return b""
    out: list[str] = []
    _format_lines(name, samples, False, out.append)
    text = "".join(out)
    head = f"{name}{samples[0][0]}{{{labels}"
    if not text.startswith(head):
        raise ValueError(f"metric family {name!r}: a sample without the labels {labels}")
    return text[len(head) :].encode("utf-8")


_VALUE_TAILS: dict[float, bytes] = {}
_VALUE_TAILS_MAX = 4096


def value_tail(value: float) -> bytes:
    """``} <value>\n``: :func:`render_tail` of one sample whose labels are exactly the job's.
    Small whole numbers (counts, flags: the values many jobs share) are formatted once and
    the one object kept (a few thousand at most); timestamps and the like are not."""
    if type(value) is not float:
        value = float(value)
    tail = _VALUE_TAILS.get(value)  # never holds 0: 0.0 and -0.0 are one key
    if tail is not None:
        return tail
    if value == 0:
        return b"} -0\n" if math.copysign(1.0, value) < 0 else b"} 0\n"
    tail = f"}} {format_value(value)}\n".encode()
    if len(_VALUE_TAILS) < _VALUE_TAILS_MAX and -1e6 < value < 1e6 and value.is_integer():
        _VALUE_TAILS[value] = tail
    return tail


def _joined_parts(parts: Parts) -> Iterator[bytes]:
    """The lines of ``parts``, a batch of :data:`PARTS_PER_PIECE` jobs at a time, joined
    without a Python step per line; empty pieces are not yielded."""
    heads = parts.heads
    columns = [(prefix, tails()) for prefix, tails in parts.columns]
    if not columns:
        return
    first = columns[0][1]
    for start in range(0, len(heads), PARTS_PER_PIECE):
        stop = start + PARTS_PER_PIECE
        batch = heads[start:stop]
        fields: list[Iterable[bytes]] = []
        for prefix, tails in columns:
            fields += (itertools.repeat(prefix), batch, tails[start:stop])
        rows = itertools.compress(zip(*fields, strict=False), first[start:stop])
        piece = b"".join(itertools.chain.from_iterable(rows))
        if piece:
            yield piece


def iter_exposition(families: Iterable[Family], openmetrics: bool) -> Iterator[bytes]:
    """The exposition in encoded pieces: a family of plain samples, or a batch of
    :data:`PARTS_PER_PIECE` jobs' rendered parts.

    A server streams these pieces, so neither the samples nor the text of a large scrape
    exist all at once: the peak is one plain family's lines, or one batch.

    A family the format cannot carry raises :class:`ValueError` naming it, before any of
    its text is yielded: a name already used in this exposition, a counter sample that is
    NaN or negative, and in OpenMetrics a counter whose name does not end in ``_total``.
    """
    if not openmetrics:
        families = _text_families(families)
    seen: set[str] = set()
    for family in families:
        name = family.name
        kind = family.type
        meta_name = name
        if kind == "counter" and openmetrics:
            if not name.endswith("_total"):
                raise ValueError(
                    f"metric family {name!r}: an OpenMetrics counter's name must end in _total"
                )
            meta_name = name[: -len("_total")]
        if meta_name in seen:
            raise ValueError(f"metric family {meta_name!r}: the name is used twice")
        seen.add(meta_name)
        shown_kind = "unknown" if kind == "untyped" and openmetrics else kind
        header = (
            f"# HELP {meta_name} {_escape_help(family.help, openmetrics)}\n"
            f"# TYPE {meta_name} {shown_kind}\n"
        )
        if family.parts is not None:
            if kind == "counter":
                raise ValueError(f"metric family {name!r}: a counter is written from samples")
            pieces = _joined_parts(family.parts)
            first_piece = next(pieces, None)
            if first_piece is None:
                continue
            yield header.encode("utf-8") + first_piece
            yield from pieces
            continue
        samples = iter(family.samples)
        first = next(samples, None)
        if first is None:
            continue
        out = [header]
        _format_lines(name, itertools.chain((first,), samples), kind == "counter", out.append)
        yield "".join(out).encode("utf-8")
    if openmetrics:
        yield b"# EOF\n"


def write_text(families: Iterable[Family]) -> bytes:
    return b"".join(iter_exposition(families, openmetrics=False))


def write_openmetrics(families: Iterable[Family]) -> bytes:
    return b"".join(iter_exposition(families, openmetrics=True))


def counter(definition: MetricDef, registry: CollectorRegistry) -> Counter:
    """A prometheus_client counter for one of our definitions, in ``registry``."""
    return Counter(definition.name, definition.help, definition.labels, registry=registry)


def gauge(definition: MetricDef, registry: CollectorRegistry) -> Gauge:
    """A prometheus_client gauge for one of our definitions, in ``registry``."""
    return Gauge(definition.name, definition.help, definition.labels, registry=registry)


def from_client_collector(collector: Collector) -> list[Family]:
    """Families of a prometheus-client collector (process, platform and GC metrics)."""
    families: list[Family] = []
    for metric in collector.collect():
        kind = metric.type if metric.type in ("gauge", "counter", "histogram") else "untyped"
        name = metric.name + "_total" if kind == "counter" else metric.name
        family = Family(name, kind, metric.documentation)  # type: ignore[arg-type]
        for sample in metric.samples:
            if sample.name.endswith("_created"):
                continue
            suffix = sample.name[len(name) :] if sample.name.startswith(name) else ""
            family.add(
                render_labels(sample.labels.keys(), sample.labels.values()),
                float(sample.value),
                suffix,
            )
        families.append(family)
    return families
