"""The dataset argument of every family's CLI: ``--dataset DIR``, the one convention the registry builds commands
with; a bare ``DATASET`` is still read, so commands typed before it keep working."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.errors import BenchmarkError


def add_dataset_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", nargs="?", type=Path, help="dataset folder (the same as --dataset DIR)")
    parser.add_argument("--dataset", dest="dataset_option", type=Path, metavar="DIR", help="dataset folder")


def dataset_argument(args: argparse.Namespace) -> Path:
    """The dataset folder given either way; one line when none (or two different ones) were given."""
    given = {path for path in (args.dataset, args.dataset_option) if path is not None}
    if len(given) != 1:
        raise BenchmarkError("give the dataset folder once: --dataset DIR" if given else "--dataset DIR is required")
    return given.pop()
