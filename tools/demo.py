"""``python -m tools.demo``: what ``make demo`` runs after the dataset and EDA — every registered family's demo
steps in registry order (each skips itself when its run already exists), then the latency of every served model
by one protocol (``benchmarks measure``), then the leaderboard."""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.atomic import atomic_write_json
from benchmarks.evaluation.machine import environment
from benchmarks.evaluation.results import Stopwatch
from benchmarks.models.registry import families
from benchmarks.runner.figures import DEMO_TIMING


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo", description=__doc__.split(": ", 1)[1].replace("\n", " ")
    )
    parser.add_argument("--dataset", type=Path, default=Path("data/stampscenes"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    args = parser.parse_args(argv)
    steps: dict[str, float] = {}  # wall seconds per step, for docs/figures.md
    for family in families().values():
        for title, argv in family.demo_commands(args.dataset, args.results):
            command = [sys.executable, "-m", *argv]
            print(f"== {title} ==", flush=True)
            if args.dry_run:
                print("   " + " ".join(command[1:]))
                continue
            clock = Stopwatch()
            failed = subprocess.call(command) != 0
            steps[family.title] = clock.seconds()
            if failed:
                print(
                    f"error: {family.title} failed (the command above); fix it and run `make demo` again: finished "
                    "steps are reused",
                    file=sys.stderr,
                )
                return 1
    where = ["--results", str(args.results)]
    measure = [sys.executable, "-m", "benchmarks", "measure", str(args.dataset), *where, "--missing"]
    print("== Latency of every served model, one protocol (about 15 s per model) ==", flush=True)
    if args.dry_run:
        print("   " + " ".join(measure[1:]))
        return 0
    clock = Stopwatch()
    if subprocess.call(measure) != 0:
        print("error: measuring latency failed (the command above); the runs themselves are kept", file=sys.stderr)
        return 1
    steps["latency"] = clock.seconds()
    record_timing(args.results, steps)
    if not args.dry_run:
        print(f"\n== Leaderboard ({args.dataset}, test split, thresholds tuned on valid) ==", flush=True)
        return subprocess.call(
            [
                sys.executable,
                "-m",
                "benchmarks",
                "leaderboard",
                "--dataset",
                str(args.dataset),
                "--results",
                str(args.results),
            ]
        )
    return 0


def record_timing(results: Path, steps: dict[str, float]) -> None:
    """What each step of this ``make demo`` took, and where (a step that reused its run takes seconds)."""
    record = {
        "steps_s": {name: round(seconds, 1) for name, seconds in steps.items()},
        "total_s": round(sum(steps.values()), 1),
        "environment": environment(),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write_json(results / DEMO_TIMING, record)


if __name__ == "__main__":
    raise SystemExit(main())
