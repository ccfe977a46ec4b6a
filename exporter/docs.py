"""Generates the reference sections of README.md from the code, so they cannot drift.

``python -m exporter.docs`` rewrites the parts of README.md between the markers
``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``; ``--check`` exits non-zero
when they are out of date (the test suite runs the same check).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .cli import build_parser, shown_default
from .exposition import metrics


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


SECTIONS = {"metrics": metrics_table, "flags": flags_table}


def render(text: str) -> str:
    for name, produce in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- generated:{name} -->\n)(?:.*?\n)?(<!-- /generated:{name} -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise ValueError(f"README.md has no generated:{name} section")
        text = pattern.sub(lambda m, p=produce: m.group(1) + p() + "\n" + m.group(2), text)  # type: ignore[misc]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when README.md is stale")
    parser.add_argument("--readme", default="README.md")
    args = parser.parse_args(argv)
    path = Path(args.readme)
    current = path.read_text(encoding="utf-8")
    wanted = render(current)
    if args.check:
        if wanted != current:
            print(f"{path} is out of date: run python -m exporter.docs", file=sys.stderr)
            return 1
        return 0
    path.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
