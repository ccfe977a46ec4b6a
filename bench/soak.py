#!/usr/bin/env python3
"""The chaos soak for people: the test suite's soak (tests/soak.py), minutes long.

Runs the exporter as its own process against the tests' simulated API with random faults, a
hung job, jobs that progress, finish, join and leave, reloads (valid and invalid, SIGHUP and
POST /-/reload), a token rotated through token_file, and a real Prometheus scraping it every
2 s; then prints what Prometheus recorded and the exporter's resources, and every rule broken.

    python bench/soak.py                  # 10 minutes
    python bench/soak.py --duration 30m   # longer
    python bench/soak.py --keep           # keep the work folder (logs, Prometheus data)

Needs the prometheus binary on the PATH (scripts/test unpacks Debian's into .tools/usr/bin).
Exit status 0 when every rule held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.soak, tests.fakeapi: the test suite's pieces

from exporter.durations import parse_duration  # noqa: E402
from tests.soak import Schedule, Soak  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", default="10m", help="how long, as 90s, 10m or 1h")
    parser.add_argument("--prometheus", default=None, help="the prometheus binary")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    tools = ROOT / ".tools" / "usr" / "bin"
    prometheus = args.prometheus or shutil.which(
        "prometheus", path=f"{os.environ.get('PATH', '')}:{tools}"
    )
    if prometheus is None:
        print("prometheus is not on the PATH (scripts/test unpacks it)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        report = Soak(workdir, prometheus, Schedule.over(parse_duration(args.duration))).run()
        print(report.summary())
    finally:
        if args.keep:
            print(f"work folder: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if not report.problems() else 1


if __name__ == "__main__":
    sys.exit(main())
