"""``python -m benchmarks`` (or the ``imgbench`` command): build, import, inspect and score datasets and runs (the
subcommands live in ``benchmarks/commands/``, one module per concern)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.commands import data, grids, results, robustness, runs, tuning
from benchmarks.errors import run_cli


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.handler(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgbench" if Path(sys.argv[0]).name == "imgbench" else "python -m benchmarks",
        description="Multi-label image-classification benchmark: datasets, EDA, baselines, one evaluator, leaderboard.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (data, runs, results, robustness, grids, tuning):
        module.add_commands(commands)
    return parser
