"""Generates the reference tables of the docs from the code, so they cannot drift.

``python -m exporter.docs`` rewrites, in each file of ``FILES``, the parts between the markers
``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``; ``--check`` exits non-zero
when one is out of date (the test suite runs the same check).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from .cli import EXIT_STATUSES, build_parser, shown_default
from .exposition import metrics
from .web.debug import EXPLAIN


def metrics_table() -> str:
    lines = [
        "| metric | type | labels | help | from |",
        "|---|---|---|---|---|",
    ]
    for definition in metrics.ALL:
        labels = ", ".join(f"`{label}`" for label in definition.labels) or "none"
        lines.append(
            f"| `{definition.name}` | {definition.type} | {labels} | {definition.help} "
            f"| {definition.source} |"
        )
    lines.append("")
    lines.append(
        "`reason` is one of "
        + ", ".join(f"`{reason}`" for reason in metrics.REASONS)
        + ". The exporter also serves the standard `process_*` and `python_*` metrics."
    )
    return "\n".join(lines)


def flags_table() -> str:
    parser = build_parser()
    lines = ["| flag | default | meaning |", "|---|---|---|"]
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        flag = max(action.option_strings, key=len)
        if action.metavar and action.nargs != 0:
            flag = f"{flag} {action.metavar}"
        shown = shown_default(action)
        meaning = action.help or ""
        if action.choices:
            meaning += "; one of " + ", ".join(f"`{choice}`" for choice in action.choices)
        lines.append(f"| `{flag}` | {f'`{shown}`' if shown else ''} | {meaning} |")
    return "\n".join(lines)


def exit_statuses_table() -> str:
    lines = ["| status | when | what is printed |", "|---|---|---|"]
    for status, when, printed in EXIT_STATUSES:
        lines.append(f"| {status} | {when} | {printed} |")
    return "\n".join(lines)


def reasons_table() -> str:
    lines = ["| `reason` | the debug report says |", "|---|---|"]
    for reason in metrics.REASONS:
        lines.append(f"| `{reason}` | {EXPLAIN[reason]} |")
    return "\n".join(lines)


# Each generated table, by the file (relative to the repository root) that holds it.
FILES: dict[str, dict[str, Callable[[], str]]] = {
    "docs/configuration.md": {"flags": flags_table, "exit-statuses": exit_statuses_table},
    "docs/metrics.md": {"metrics": metrics_table},
    "docs/troubleshooting.md": {"reasons": reasons_table},
}


def render(text: str, sections: dict[str, Callable[[], str]], name: str = "the file") -> str:
    """``text`` with each of ``sections`` regenerated; ValueError when a marker is missing."""
    for section, produce in sections.items():
        pattern = re.compile(
            rf"(<!-- generated:{section} -->\n)(?:.*?\n)?(<!-- /generated:{section} -->)",
            re.DOTALL,
        )
        if not pattern.search(text):
            raise ValueError(f"{name} has no generated:{section} section")
        text = pattern.sub(lambda m, p=produce: m.group(1) + p() + "\n" + m.group(2), text)  # type: ignore[misc]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when a table is stale")
    parser.add_argument("--root", default=".", help="the repository root (default: .)")
    args = parser.parse_args(argv)
    stale = []
    for name, sections in FILES.items():
        path = Path(args.root, name)
        current = path.read_text(encoding="utf-8")
        wanted = render(current, sections, name)
        if wanted == current:
            continue
        if args.check:
            stale.append(name)
        else:
            path.write_text(wanted, encoding="utf-8")
    for name in stale:
        print(f"{name} is out of date: run python -m exporter.docs", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
