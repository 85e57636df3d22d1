"""Benchmark grids: datasets × models × seeds from a TOML spec, locally or on Ray."""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_DATASET = Path("data/stampscenes")


def add_commands(commands) -> None:
    p = commands.add_parser(
        "grid",
        help="run a benchmark grid (datasets × models × backbones × seeds) locally or on a Ray cluster",
        description="Every cell of the TOML spec becomes an ordinary run folder in --results. Finished cells are "
        "skipped, so a stopped grid resumes; a failed cell is recorded with its error (RESULTS/grids/NAME/cells.json, "
        "logs beside it) and the others go on. At the end the per-model table and the paired comparisons are printed "
        "and written to RESULTS/grids/NAME/summary.md. Example: benchmarks/grids/reference.toml.",
    )
    p.add_argument("spec", type=Path, help="grid spec (TOML)")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local: child processes here; ray: one Ray task per cell with the cell's cpus/gpus (default local)",
    )
    p.add_argument(
        "--address", default=None, help="Ray cluster address (ray start --head prints it); default: a local Ray"
    )
    p.add_argument(
        "--max-parallel",
        type=int,
        default=None,
        help="cells at once (default: 1 locally — 2 cores fit one training — and as Ray's resources allow on Ray)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the cells and the estimated time, run nothing")
    p.set_defaults(handler=cmd_grid)


def cmd_grid(args) -> int:
    from benchmarks.runner.grid import run_grid
    from benchmarks.runner.spec import read_spec
    from benchmarks.runner.summary import grid_summary, write_summary

    spec = read_spec(args.spec)
    ledger = run_grid(
        spec,
        args.results,
        executor=args.executor,
        address=args.address,
        max_parallel=args.max_parallel,
        dry_run=args.dry_run,
    )
    if args.dry_run:
        return 0
    print("\n" + grid_summary(spec, ledger, args.results))
    print(f"summary written: {write_summary(spec, ledger, args.results)}")
    failed = [e for e in ledger["cells"].values() if e.get("status") == "failed"]
    if failed:
        print(
            f"error: {len(failed)} cell(s) failed (listed above); fix and run the grid again: finished cells are kept",
            file=sys.stderr,
        )
        return 1
    return 0
