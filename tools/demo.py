"""``python -m tools.demo``: what ``make demo`` runs after the dataset and EDA — every registered family's demo
steps in registry order (each skips itself when its run already exists), then the latency of every served model
by one protocol (``benchmarks measure``), then the leaderboard."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from benchmarks.models.registry import families


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo", description=__doc__.split(": ", 1)[1].replace("\n", " ")
    )
    parser.add_argument("--dataset", type=Path, default=Path("data/stampscenes"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    args = parser.parse_args(argv)
    for family in families().values():
        for title, argv in family.demo_commands(args.dataset, args.results):
            command = [sys.executable, "-m", *argv]
            print(f"== {title} ==", flush=True)
            if args.dry_run:
                print("   " + " ".join(command[1:]))
                continue
            if subprocess.call(command) != 0:
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
    elif subprocess.call(measure) != 0:
        print("error: measuring latency failed (the command above); the runs themselves are kept", file=sys.stderr)
        return 1
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


if __name__ == "__main__":
    raise SystemExit(main())
