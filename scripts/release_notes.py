#!/usr/bin/env python3
"""Print the CHANGELOG.md section of one version: the body of the GitHub release.

    python scripts/release_notes.py 0.1.0 > notes.md

Exits 1, naming the file and the version, when CHANGELOG.md has no `## [VERSION]` section or
the section is empty, so a tag whose changes were never written down is not released.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"


def section(text: str, version: str) -> str | None:
    """The lines between ``## [version]`` (optionally followed by a date) and the next ``## ``."""
    heading = re.compile(rf"^## \[{re.escape(version)}\](?: - \d{{4}}-\d{{2}}-\d{{2}})?$")
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if heading.match(line)]
    if len(starts) != 1:
        return None
    body: list[str] = []
    for line in lines[starts[0] + 1 :]:
        if line.startswith("## ") or re.match(r"^\[[^\]]+\]: ", line):
            break
        body.append(line)
    return "\n".join(body).strip() or None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: release_notes.py VERSION", file=sys.stderr)
        return 2
    notes = section(CHANGELOG.read_text(encoding="utf-8"), argv[0])
    if notes is None:
        print(f"{CHANGELOG.name}: no section '## [{argv[0]}]' with any content", file=sys.stderr)
        return 1
    print(notes)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
